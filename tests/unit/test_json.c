/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fota/json.h: the strict parser's refusals and caps, and the canonical
 * encoder against tests/vectors/canonical.txt (written by hand, checked
 * against securesystemslib by tests/vectors/gen.sh).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fota/crypto.h"
#include "fota/error.h"
#include "fota/json.h"

#include "test_util.h"

#define BIG (1u << 20)

static char untouched_marker;
#define UNTOUCHED_JSON ((json_t *)(void *)&untouched_marker)
#define UNTOUCHED_STR ((char *)&untouched_marker)

/* ---- helpers -------------------------------------------------------------- */

/* Parse len bytes with the given caps; the value is released. Checks that a
 * failure leaves *ret_value untouched. */
static fota_err parse_n(const char *s, size_t len, size_t max_len, unsigned max_depth)
{
    json_t *v = UNTOUCHED_JSON;
    fota_err rc = fota_json_parse((const uint8_t *)s, len, max_len, max_depth, &v);

    if (rc == FOTA_OK) {
        assert_true(v != UNTOUCHED_JSON && v != NULL);
        json_decref(v);
    } else {
        assert_ptr_equal(v, UNTOUCHED_JSON);
    }
    return rc;
}

static fota_err parse_depth(const char *s, unsigned max_depth)
{
    return parse_n(s, strlen(s), BIG, max_depth);
}

static fota_err parse(const char *s)
{
    return parse_n(s, strlen(s), BIG, FOTA_JSON_MAX_DEPTH);
}

struct parse_case {
    const char *text;
    fota_err want;
};

static unsigned check_cases(const struct parse_case *cases, size_t n)
{
    unsigned failures = 0;

    for (size_t i = 0; i < n; i++) {
        fota_err rc = parse(cases[i].text);

        if (rc != cases[i].want) {
            fprintf(stderr, "parse(%s): got %s, want %s\n", cases[i].text, fota_strerror(rc),
                        fota_strerror(cases[i].want));
            failures++;
        }
    }
    return failures;
}

#define CHECK_CASES(c) assert_int_equal(check_cases((c), TU_ARRAY_LEN(c)), 0)

/* "[[[...]]]" (or objects {"a":{"a":...}}) n deep; malloc'ed. */
static char *nest(size_t n, int objects, int closed)
{
    size_t cap = n * 6 + 3;
    char *s = malloc(cap);
    size_t at = 0;

    assert_non_null(s);
    for (size_t i = 0; i < n; i++) {
        if (objects && i > 0) {
            memcpy(s + at, "\"a\":", 4);
            at += 4;
        }
        s[at++] = objects ? '{' : '[';
    }
    for (size_t i = 0; closed && i < n; i++) {
        s[at++] = objects ? '}' : ']';
    }
    s[at] = '\0';
    return s;
}

/* ---- duplicates ------------------------------------------------------------- */

static void test_duplicate_keys(void **state)
{
    static const struct parse_case cases[] = {
        { "{\"a\":1,\"a\":2}", FOTA_E_DUPLICATE },
        { "{\"a\":1,\"a\":1}", FOTA_E_DUPLICATE },
        { "{\"a\":1,\"b\":2,\"a\":{}}", FOTA_E_DUPLICATE },
        { "{\"x\":{\"a\":1,\"a\":1}}", FOTA_E_DUPLICATE },
        { "{\"x\":{\"y\":{\"z\":[{\"k\":null,\"k\":null}]}}}", FOTA_E_DUPLICATE },
        { "[{\"k\":1,\"k\":2}]", FOTA_E_DUPLICATE },
        { "[{}, {\"k\":1}, {\"k\":1,\"j\":2,\"k\":3}]", FOTA_E_DUPLICATE },
        /* the same key spelled with escapes */
        { "{\"a\":1,\"\\u0061\":2}", FOTA_E_DUPLICATE },
        { "{\"\\u00fc\":1,\"\xc3\xbc\":2}", FOTA_E_DUPLICATE },
        { "{\"/\":1,\"\\/\":2}", FOTA_E_DUPLICATE },
        { "{\"signed\":{},\"signatures\":[],\"signed\":{}}", FOTA_E_DUPLICATE },
        /* not duplicates */
        { "{\"a\":1,\"A\":1}", FOTA_OK },
        { "{\"a\":1,\"a \":1}", FOTA_OK },
        { "{\"a\":{\"a\":{\"a\":1}}}", FOTA_OK },
        { "[{\"a\":1},{\"a\":1}]", FOTA_OK },
        { "{\"a\":1,\"b\":{\"a\":2}}", FOTA_OK },
    };

    (void)state;
    CHECK_CASES(cases);
}

/* ---- depth ---------------------------------------------------------------------- */

static void test_depth_cap(void **state)
{
    static const unsigned depths[] = { 1, 2, 3, 5, 31, FOTA_JSON_MAX_DEPTH, 33, 100 };

    (void)state;
    for (size_t i = 0; i < TU_ARRAY_LEN(depths); i++) {
        unsigned d = depths[i];

        for (int objects = 0; objects < 2; objects++) {
            char *ok = nest(d, objects, 1);
            char *deep = nest(d + 1, objects, 1);
            fota_err rc_ok = parse_n(ok, strlen(ok), BIG, d);
            fota_err rc_deep = parse_n(deep, strlen(deep), BIG, d);

            if (rc_ok != FOTA_OK || rc_deep != FOTA_E_DEPTH) {
                fail_msg("max_depth %u, %s: %u deep gives %s, %u deep gives %s", d, objects ? "objects" : "arrays",
                         d, fota_strerror(rc_ok), d + 1, fota_strerror(rc_deep));
            }
            free(ok);
            free(deep);
        }
    }
    /* the default cap */
    {
        char *ok = nest(FOTA_JSON_MAX_DEPTH, 0, 1);
        char *deep = nest(FOTA_JSON_MAX_DEPTH + 1, 1, 1);

        assert_int_equal(parse(ok), FOTA_OK);
        assert_int_equal(parse(deep), FOTA_E_DEPTH);
        free(ok);
        free(deep);
    }
    /* mixed objects and arrays, scalars at the bottom do not add a level */
    assert_int_equal(parse_depth("{\"a\":[{\"b\":[1,\"x\",null]}]}", 4), FOTA_OK);
    assert_int_equal(parse_depth("{\"a\":[{\"b\":[1,\"x\",null]}]}", 3), FOTA_E_DEPTH);
    assert_int_equal(parse_depth("[[1],[2],[3],[[4]]]", 3), FOTA_OK);
    assert_int_equal(parse_depth("[[1],[2],[3],[[4]]]", 2), FOTA_E_DEPTH);
    /* brackets inside strings and keys are not nesting */
    assert_int_equal(parse_depth("[\"[[[[[[[[{{{{{{\"]", 1), FOTA_OK);
    assert_int_equal(parse_depth("{\"[[[[{{{{\":\"]]]]}}}}\"}", 1), FOTA_OK);
    assert_int_equal(parse_depth("[\"\\\"[[[[[[\"]", 1), FOTA_OK);
    assert_int_equal(parse_depth("[\"\\\\\",[[]]]", 2), FOTA_E_DEPTH);
    assert_int_equal(parse_depth("[\"\\\\\",[[]]]", 3), FOTA_OK);
}

static void test_depth_hostile(void **state)
{
    const size_t n = 100000;
    char *closed = nest(n, 0, 1);
    char *open = nest(n, 0, 0);
    char *objects = nest(n, 1, 1);
    fota_err rc;

    (void)state;
    assert_int_equal(parse_n(closed, strlen(closed), 16u << 20, FOTA_JSON_MAX_DEPTH), FOTA_E_DEPTH);
    assert_int_equal(parse_n(objects, strlen(objects), 16u << 20, FOTA_JSON_MAX_DEPTH), FOTA_E_DEPTH);
    rc = parse_n(open, strlen(open), 16u << 20, FOTA_JSON_MAX_DEPTH);
    assert_true(rc == FOTA_E_DEPTH || rc == FOTA_E_PARSE);
    /* even with no depth cap to speak of, it must fail cleanly, not crash */
    rc = parse_n(closed, strlen(closed), 16u << 20, UINT_MAX);
    assert_true(rc == FOTA_OK || rc == FOTA_E_DEPTH || rc == FOTA_E_PARSE);
    rc = parse_n(open, strlen(open), 16u << 20, UINT_MAX);
    assert_true(rc == FOTA_E_DEPTH || rc == FOTA_E_PARSE);
    free(closed);
    free(open);
    free(objects);
}

/* ---- size cap ------------------------------------------------------------------ */

static void test_size_cap(void **state)
{
    const char *doc = "{\"a\":[1,2,3]}";
    size_t len = strlen(doc);
    char *big = malloc(BIG + 16);

    (void)state;
    assert_int_equal(parse_n(doc, len, len, FOTA_JSON_MAX_DEPTH), FOTA_OK);
    assert_int_equal(parse_n(doc, len, len - 1, FOTA_JSON_MAX_DEPTH), FOTA_E_TOO_BIG);
    assert_int_equal(parse_n(doc, len, 0, FOTA_JSON_MAX_DEPTH), FOTA_E_TOO_BIG);
    /* the cap is checked before the content: garbage over the cap is too big */
    assert_int_equal(parse_n("xxxxxxxxxx", 10, 9, FOTA_JSON_MAX_DEPTH), FOTA_E_TOO_BIG);

    /* a 1 MiB document: one long string */
    assert_non_null(big);
    big[0] = '[';
    big[1] = '"';
    memset(big + 2, 'a', BIG - 4);
    big[BIG - 2] = '"';
    big[BIG - 1] = ']';
    big[BIG] = '\0';
    assert_int_equal(parse_n(big, BIG, BIG, FOTA_JSON_MAX_DEPTH), FOTA_OK);
    assert_int_equal(parse_n(big, BIG, BIG - 1, FOTA_JSON_MAX_DEPTH), FOTA_E_TOO_BIG);
    free(big);
}

/* ---- syntax ----------------------------------------------------------------------- */

static void test_refused_syntax(void **state)
{
    static const struct parse_case cases[] = {
        /* trailing bytes */
        { "{}x", FOTA_E_PARSE },
        { "{}{}", FOTA_E_PARSE },
        { "[1],", FOTA_E_PARSE },
        { "{} 1", FOTA_E_PARSE },
        { "[] []", FOTA_E_PARSE },
        { "{\"a\":1}}", FOTA_E_PARSE },
        { "[1]]", FOTA_E_PARSE },
        { "{}\xef\xbb\xbf", FOTA_E_PARSE },
        /* a top level that is not an object or an array */
        { "1", FOTA_E_PARSE },
        { "-1", FOTA_E_PARSE },
        { "\"s\"", FOTA_E_PARSE },
        { "true", FOTA_E_PARSE },
        { "false", FOTA_E_PARSE },
        { "null", FOTA_E_PARSE },
        { "1.5", FOTA_E_PARSE },
        { "", FOTA_E_PARSE },
        { "   ", FOTA_E_PARSE },
        { "\n", FOTA_E_PARSE },
        /* not JSON */
        { "[1,]", FOTA_E_PARSE },
        { "{\"a\":1,}", FOTA_E_PARSE },
        { "[,1]", FOTA_E_PARSE },
        { "[01]", FOTA_E_PARSE },
        { "[+1]", FOTA_E_PARSE },
        { "[.5]", FOTA_E_PARSE },
        { "[1.]", FOTA_E_PARSE },
        { "[0x10]", FOTA_E_PARSE },
        { "['a']", FOTA_E_PARSE },
        { "{a:1}", FOTA_E_PARSE },
        { "{1:1}", FOTA_E_PARSE },
        { "[NaN]", FOTA_E_PARSE },
        { "[Infinity]", FOTA_E_PARSE },
        { "[-Infinity]", FOTA_E_PARSE },
        { "[True]", FOTA_E_PARSE },
        { "[nul]", FOTA_E_PARSE },
        { "/* c */ []", FOTA_E_PARSE },
        { "[] // c", FOTA_E_PARSE },
        { "[1 2]", FOTA_E_PARSE },
        { "{\"a\" 1}", FOTA_E_PARSE },
        { "{\"a\":}", FOTA_E_PARSE },
        { "[\"\\x41\"]", FOTA_E_PARSE },
        { "[\"\\u12\"]", FOTA_E_PARSE },
        { "[\"\\u12g4\"]", FOTA_E_PARSE },
        { "[\"\\U0041\"]", FOTA_E_PARSE },
        { "[\"\\'\"]", FOTA_E_PARSE },
        { "[\"unterminated]", FOTA_E_PARSE },
        { "[\"raw\ttab\"]", FOTA_E_PARSE },
        { "[\"raw\nnewline\"]", FOTA_E_PARSE },
        { "[\"raw\x01" "control\"]", FOTA_E_PARSE },
        { "[\"raw\x1f\"]", FOTA_E_PARSE },
        { "[", FOTA_E_PARSE },
        { "{", FOTA_E_PARSE },
        { "{\"a\":[}", FOTA_E_PARSE },
        { "]", FOTA_E_PARSE },
        /* NUL in strings, as an escape */
        { "[\"\\u0000\"]", FOTA_E_PARSE },
        { "[\"a\\u0000b\"]", FOTA_E_PARSE },
        { "{\"a\\u0000\":1}", FOTA_E_PARSE },
        { "{\"\\u0000\":1}", FOTA_E_PARSE },
        /* lone or reversed surrogates */
        { "[\"\\ud800\"]", FOTA_E_PARSE },
        { "[\"\\udc00\"]", FOTA_E_PARSE },
        { "[\"\\ud800\\u0041\"]", FOTA_E_PARSE },
        { "[\"\\ude00\\ud83d\"]", FOTA_E_PARSE },
        { "{\"\\ud800\":1}", FOTA_E_PARSE },
        /* invalid UTF-8, in values and in keys */
        { "[\"\xff\"]", FOTA_E_PARSE },
        { "[\"\xfe\"]", FOTA_E_PARSE },
        { "[\"\x80\"]", FOTA_E_PARSE },
        { "[\"\xc3\"]", FOTA_E_PARSE },
        { "[\"\xc3(\"]", FOTA_E_PARSE },
        { "[\"\xc0\xaf\"]", FOTA_E_PARSE },
        { "[\"\xc1\xbf\"]", FOTA_E_PARSE },
        { "[\"\xe0\x80\xaf\"]", FOTA_E_PARSE },
        { "[\"\xed\xa0\x80\"]", FOTA_E_PARSE },
        { "[\"\xed\xbf\xbf\"]", FOTA_E_PARSE },
        { "[\"\xf0\x80\x80\xaf\"]", FOTA_E_PARSE },
        { "[\"\xf4\x90\x80\x80\"]", FOTA_E_PARSE },
        { "[\"\xf8\x88\x80\x80\x80\"]", FOTA_E_PARSE },
        { "[\"\xe2\x82\"]", FOTA_E_PARSE },
        { "{\"\xff\":1}", FOTA_E_PARSE },
        { "{\"k\xc3\":1}", FOTA_E_PARSE },
        { "[1, \xc3\xbc]", FOTA_E_PARSE },
        /* valid UTF-8 of every length is fine */
        { "[\"\x7f \xc2\x80 \xdf\xbf \xe0\xa0\x80 \xef\xbf\xbd \xf0\x90\x80\x80 \xf4\x8f\xbf\xbf\"]", FOTA_OK },
        { "[\"\\ud83d\\ude00\", \"\\u0001\", \"\\u007f\"]", FOTA_OK },
        /* whitespace around the value is not a trailing byte */
        { " \t\r\n{} \t\r\n", FOTA_OK },
        /* the int64 bounds */
        { "[9223372036854775807, -9223372036854775808]", FOTA_OK },
    };

    (void)state;
    CHECK_CASES(cases);
}

/* Integers that do not fit an int64 are refused, not silently rounded. */
static void test_integer_overflow(void **state)
{
    (void)state;
    assert_int_not_equal(parse("[9223372036854775808]"), FOTA_OK);
    assert_int_not_equal(parse("[-9223372036854775809]"), FOTA_OK);
    assert_int_not_equal(parse("{\"version\":99999999999999999999999}"), FOTA_OK);
}

static void test_raw_nul_bytes(void **state)
{
    static const char in_string[] = "[\"a\0b\"]";
    static const char after[] = "{}\0";
    static const char before[] = "\0{}";
    static const char in_key[] = "{\"a\0\":1}";

    (void)state;
    assert_int_equal(parse_n(in_string, sizeof(in_string) - 1, BIG, 32), FOTA_E_PARSE);
    assert_int_equal(parse_n(after, sizeof(after) - 1, BIG, 32), FOTA_E_PARSE);
    assert_int_equal(parse_n(before, sizeof(before) - 1, BIG, 32), FOTA_E_PARSE);
    assert_int_equal(parse_n(in_key, sizeof(in_key) - 1, BIG, 32), FOTA_E_PARSE);
    /* the length, not a NUL, ends the input: a prefix parses */
    assert_int_equal(parse_n("[1]xyz", 3, BIG, 32), FOTA_OK);
    assert_int_equal(parse_n("[1]xyz", 4, BIG, 32), FOTA_E_PARSE);
}

static void test_parsed_values(void **state)
{
    const char *doc = "{\"s\":\"gr\\u00fc\\u00dfe\",\"i\":-9223372036854775808,\"b\":true,\"n\":null,\"a\":[1,\"x\"]}";
    json_t *v = NULL;

    (void)state;
    assert_int_equal(fota_json_parse((const uint8_t *)doc, strlen(doc), BIG, 32, &v), FOTA_OK);
    assert_true(json_is_object(v));
    assert_string_equal(json_string_value(json_object_get(v, "s")), "gr\xc3\xbc\xc3\x9f" "e");
    assert_true(json_is_integer(json_object_get(v, "i")));
    assert_true(json_integer_value(json_object_get(v, "i")) == INT64_MIN);
    assert_true(json_is_true(json_object_get(v, "b")));
    assert_true(json_is_null(json_object_get(v, "n")));
    assert_int_equal(json_array_size(json_object_get(v, "a")), 2);
    json_decref(v);
}

/* ---- canonical form ---------------------------------------------------------------- */

static int unhex(const char *hex, uint8_t *out, size_t *ret_len)
{
    size_t n = strlen(hex);

    if (n % 2 != 0 || fota_hex_decode(hex, n, out, n / 2) != FOTA_OK) {
        return -1;
    }
    *ret_len = n / 2;
    return 0;
}

static int has_control_byte(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        if ((unsigned char)s[i] < 0x20) {
            return 1;
        }
    }
    return 0;
}

static void test_canonical_vectors(void **state)
{
    struct tu_lines it;
    char *text = tu_lines_of_vector(&it, "canonical.txt");
    const char *input = NULL;
    unsigned in_lineno = 0, n = 0, failures = 0;

    (void)state;
    for (char *line = tu_lines_next_record(&it); line != NULL; line = tu_lines_next_record(&it)) {
        if (strncmp(line, "in ", 3) == 0) {
            assert_null(input);
            input = line + 3;
            in_lineno = it.lineno;
        } else {
            json_t *v = NULL;
            char *out = UNTOUCHED_STR;
            size_t out_len = 12345;
            fota_err rc;
            uint8_t want[4096];
            size_t want_len = 0;
            fota_err want_rc = FOTA_OK;

            assert_non_null(input);
            if (strncmp(line, "out ", 4) == 0) {
                want_len = strlen(line + 4);
                assert_true(want_len < sizeof(want));
                memcpy(want, line + 4, want_len);
            } else if (strncmp(line, "outhex ", 7) == 0) {
                assert_int_equal(unhex(line + 7, want, &want_len), 0);
            } else if (strcmp(line, "err unsupported") == 0) {
                want_rc = FOTA_E_UNSUPPORTED;
            } else {
                fail_msg("canonical.txt:%u: unknown line", it.lineno);
            }

            rc = fota_json_parse((const uint8_t *)input, strlen(input), BIG, FOTA_JSON_MAX_DEPTH, &v);
            if (rc != FOTA_OK) {
                fprintf(stderr, "canonical.txt:%u: parse: %s\n", in_lineno, fota_strerror(rc));
                failures++;
                input = NULL;
                continue;
            }
            rc = fota_json_canonical(v, BIG, &out, &out_len);
            if (rc != want_rc) {
                fprintf(stderr, "canonical.txt:%u: got %s, want %s\n", in_lineno, fota_strerror(rc),
                            fota_strerror(want_rc));
                failures++;
            } else if (rc != FOTA_OK) {
                if (out != UNTOUCHED_STR || out_len != 12345) {
                    fprintf(stderr, "canonical.txt:%u: outputs written on failure\n", in_lineno);
                    failures++;
                }
            } else if (out_len != want_len || memcmp(out, want, want_len) != 0 || out[out_len] != '\0') {
                fprintf(stderr, "canonical.txt:%u: got '%s' (%zu bytes), want '%.*s' (%zu bytes)\n", in_lineno, out,
                            out_len, (int)want_len, (const char *)want, want_len);
                failures++;
            } else {
                /* the output cap: exactly the length is enough, one less is not */
                char *again = UNTOUCHED_STR;
                size_t again_len = 12345;

                rc = fota_json_canonical(v, want_len, &again, &again_len);
                if (rc != FOTA_OK) {
                    fprintf(stderr, "canonical.txt:%u: max_len = output length: %s\n", in_lineno, fota_strerror(rc));
                    failures++;
                } else {
                    free(again);
                }
                again = UNTOUCHED_STR;
                again_len = 12345;
                rc = fota_json_canonical(v, want_len - 1, &again, &again_len);
                if (rc != FOTA_E_TOO_BIG || again != UNTOUCHED_STR || again_len != 12345) {
                    fprintf(stderr, "canonical.txt:%u: max_len = output length - 1: %s\n", in_lineno,
                                fota_strerror(rc));
                    failures++;
                    if (rc == FOTA_OK) {
                        free(again);
                    }
                }
                /* canonical form is a fixed point (when it is JSON at all:
                 * raw control bytes in strings are canonical, not JSON) */
                if (!has_control_byte(out, out_len)) {
                    json_t *back = NULL;
                    char *twice = NULL;
                    size_t twice_len = 0;

                    assert_int_equal(fota_json_parse((const uint8_t *)out, out_len, BIG, 32, &back), FOTA_OK);
                    assert_int_equal(fota_json_canonical(back, BIG, &twice, &twice_len), FOTA_OK);
                    assert_int_equal(twice_len, out_len);
                    assert_memory_equal(twice, out, out_len);
                    free(twice);
                    json_decref(back);
                }
            }
            if (out != UNTOUCHED_STR) {
                free(out);
            }
            json_decref(v);
            input = NULL;
            n++;
        }
    }
    free(text);
    assert_null(input);
    assert_true(n >= 50);
    assert_int_equal(failures, 0);
}

/* Values built in code, not parsed. */
static void test_canonical_built(void **state)
{
    json_t *v = json_object();
    json_t *arr = json_array();
    char *out = UNTOUCHED_STR;
    size_t out_len = 0;

    (void)state;
    assert_non_null(v);
    /* inserted in reverse order */
    json_object_set_new(v, "z", json_integer(INT64_MIN));
    json_object_set_new(v, "m", json_string("\xe2\x82\xac\"\\\n"));
    json_object_set_new(v, "a", arr);
    json_array_append_new(arr, json_true());
    json_array_append_new(arr, json_null());
    json_array_append_new(arr, json_integer(INT64_MAX));
    assert_int_equal(fota_json_canonical(v, BIG, &out, &out_len), FOTA_OK);
    assert_string_equal(out, "{\"a\":[true,null,9223372036854775807],\"m\":\"\xe2\x82\xac\\\"\\\\\n\","
                             "\"z\":-9223372036854775808}");
    assert_int_equal(out_len, strlen(out));
    free(out);

    /* a real anywhere is refused */
    out = UNTOUCHED_STR;
    json_array_append_new(arr, json_real(1.0));
    assert_int_equal(fota_json_canonical(v, BIG, &out, &out_len), FOTA_E_UNSUPPORTED);
    assert_ptr_equal(out, UNTOUCHED_STR);
    json_decref(v);

    v = json_real(0.0);
    assert_int_equal(fota_json_canonical(v, BIG, &out, &out_len), FOTA_E_UNSUPPORTED);
    assert_ptr_equal(out, UNTOUCHED_STR);
    json_decref(v);

    /* a small cap on a big value */
    v = json_array();
    for (int i = 0; i < 10000; i++) {
        json_array_append_new(v, json_string("0123456789"));
    }
    assert_int_equal(fota_json_canonical(v, 1000, &out, &out_len), FOTA_E_TOO_BIG);
    assert_ptr_equal(out, UNTOUCHED_STR);
    assert_int_equal(fota_json_canonical(v, 0, &out, &out_len), FOTA_E_TOO_BIG);
    assert_int_equal(fota_json_canonical(v, 10000 * 13 + 1, &out, &out_len), FOTA_OK);
    assert_int_equal(out_len, 10000 * 13 + 1);
    free(out);
    json_decref(v);

    /* {} and [] under a cap of 2 */
    v = json_object();
    out = NULL;
    assert_int_equal(fota_json_canonical(v, 2, &out, &out_len), FOTA_OK);
    assert_string_equal(out, "{}");
    free(out);
    out = UNTOUCHED_STR;
    assert_int_equal(fota_json_canonical(v, 1, &out, &out_len), FOTA_E_TOO_BIG);
    assert_ptr_equal(out, UNTOUCHED_STR);
    json_decref(v);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_duplicate_keys),
        cmocka_unit_test(test_depth_cap),
        cmocka_unit_test(test_depth_hostile),
        cmocka_unit_test(test_size_cap),
        cmocka_unit_test(test_refused_syntax),
        cmocka_unit_test(test_integer_overflow),
        cmocka_unit_test(test_raw_nul_bytes),
        cmocka_unit_test(test_parsed_values),
        cmocka_unit_test(test_canonical_vectors),
        cmocka_unit_test(test_canonical_built),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
