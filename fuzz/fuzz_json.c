/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz_json: the strict parser and the canonical encoder (lib/json.c), the
 * first code every byte from the network meets.
 *
 * Invariants checked on every input the strict parser accepts:
 *  - canonical encoding succeeds unless the value holds a real number;
 *  - unless a string (or key) holds a control character, which canonical
 *    JSON writes raw and a strict parser refuses, the canonical bytes parse
 *    again, to an equal value, and encode to the very same bytes;
 *  - the parser refuses what is over its size cap and deeper than its
 *    depth cap.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fota/json.h"
#include "fuzz_common.h"

#define JSON_MAX (1u << 20)

static int has_control(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if ((unsigned char)s[i] < 0x20)
            return 1;
    }
    return 0;
}

/* 1 when a string or key anywhere in v holds a control character;
 * *real set when v holds a real number. */
static int scan(const json_t *v, int *real)
{
    const char *key;
    json_t *m;
    int found = 0;

    switch (json_typeof(v)) {
    case JSON_OBJECT:
        json_object_foreach((json_t *)v, key, m) {
            found |= has_control(key, strlen(key));
            found |= scan(m, real);
        }
        return found;
    case JSON_ARRAY:
        for (size_t i = 0; i < json_array_size(v); i++)
            found |= scan(json_array_get(v, i), real);
        return found;
    case JSON_STRING:
        return has_control(json_string_value(v), json_string_length(v));
    case JSON_REAL:
        *real = 1;
        return 0;
    default:
        return 0;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    json_t *v = NULL, *again = NULL;
    char *canon = NULL, *canon2 = NULL;
    size_t len = 0, len2 = 0;
    int real = 0, control;
    fota_err err;

    if (size > JSON_MAX)
        return 0;
    /* The caps: one byte short of the input is too big; depth 2 is a cap
     * most inputs pass. */
    if (size > 0 && fota_json_parse(data, size, size - 1, FOTA_JSON_MAX_DEPTH, &v) !=
                        FOTA_E_TOO_BIG)
        fz_fail("parse accepted an input over its size cap");
    err = fota_json_parse(data, size, 2, 2, &v);
    if (err == FOTA_OK)
        json_decref(v);
    v = NULL;

    err = fota_json_parse(data, size, JSON_MAX, FOTA_JSON_MAX_DEPTH, &v);
    if (err != FOTA_OK)
        return 0;
    if (!json_is_object(v) && !json_is_array(v))
        fz_fail("parse returned a top level that is neither object nor array");
    control = scan(v, &real);
    err = fota_json_canonical(v, JSON_MAX * 2, &canon, &len);
    if (real) {
        if (err != FOTA_E_UNSUPPORTED)
            fz_fail("canonical encoded a real number (%s)", fota_strerror(err));
        goto out;
    }
    if (err != FOTA_OK)
        fz_fail("canonical failed on a parsed value: %s", fota_strerror(err));
    if (strlen(canon) != len)
        fz_fail("canonical length %zu but a NUL at %zu", len, strlen(canon));
    /* The encoder's own cap. */
    if (len > 0) {
        char *small = NULL;
        size_t small_len = 0;
        if (fota_json_canonical(v, len - 1, &small, &small_len) != FOTA_E_TOO_BIG)
            fz_fail("canonical ignored its size cap");
        free(small);
    }
    err = fota_json_parse((const uint8_t *)canon, len, JSON_MAX * 2, FOTA_JSON_MAX_DEPTH, &again);
    if (control) {
        /* Raw control characters: no strict parser reads them back. */
        if (err == FOTA_OK)
            fz_fail("a canonical string with a raw control character parsed");
        goto out;
    }
    if (err != FOTA_OK)
        fz_fail("canonical output does not parse: %s", fota_strerror(err));
    if (!json_equal(v, again))
        fz_fail("canonical output parses to another value");
    if (fota_json_canonical(again, JSON_MAX * 2, &canon2, &len2) != FOTA_OK || len2 != len ||
        memcmp(canon, canon2, len) != 0)
        fz_fail("canonical form is not stable");
out:
    free(canon);
    free(canon2);
    json_decref(again);
    json_decref(v);
    return 0;
}
