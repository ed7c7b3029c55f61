/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fota/tuf.h "names", "keys and signatures" and "time", against vectors from
 * securesystemslib (key ids, an envelope it signed) and python datetime
 * (tests/vectors, see gen.sh there). What fota_tuf_sign writes is checked by
 * securesystemslib too, when /usr/bin/python3 has it.
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
#include <sys/wait.h>
#include <unistd.h>

#include "fota/crypto.h"
#include "fota/error.h"
#include "fota/json.h"
#include "fota/tuf.h"

#include "test_util.h"

#define PYTHON "/usr/bin/python3"

static char untouched_marker;
#define UNTOUCHED_PUB ((fota_pubkey *)(void *)&untouched_marker)
#define UNTOUCHED_TIME ((int64_t)0x5a5a5a5a5a5a)

/* ---- helpers -------------------------------------------------------------- */

/* Vector JSON files are read with jansson itself, not fota_json_parse: the
 * parser has its own tests. */
static json_t *load_json(const char *rel)
{
    size_t len = 0;
    char *text = tu_read_vector(rel, &len);
    json_error_t jerr;
    json_t *v = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);

    if (v == NULL) {
        fail_msg("%s:%d: %s", rel, jerr.line, jerr.text);
    }
    free(text);
    return v;
}

static fota_privkey *privkey_from_vec(const char *name)
{
    char rel[256];
    size_t len = 0;
    char *pem;
    fota_privkey *key = NULL;

    snprintf(rel, sizeof(rel), "keys/%s.key.pem", name);
    pem = tu_read_vector(rel, &len);
    assert_int_equal(fota_privkey_from_pem(pem, len, &key), FOTA_OK);
    free(pem);
    return key;
}

struct fixture {
    json_t *tuf_keys; /* tuf_keys.json */
    json_t *keys;     /* its "keys": keyid -> key object */
    json_t *envelope; /* tuf_envelope.json */
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));

    if (f == NULL) {
        return -1;
    }
    f->tuf_keys = load_json("tuf_keys.json");
    f->keys = json_object_get(f->tuf_keys, "keys");
    f->envelope = load_json("tuf_envelope.json");
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;

    json_decref(f->tuf_keys);
    json_decref(f->envelope);
    free(f);
    return 0;
}

static const char *keyid_of(const struct fixture *f, const char *name)
{
    const char *id = json_string_value(json_object_get(json_object_get(f->tuf_keys, "keyids"), name));

    if (id == NULL) {
        fail_msg("no key id for %s in tuf_keys.json", name);
    }
    return id;
}

/* {"keyids": [keyid of each name], "threshold": threshold}; names end with NULL. */
static json_t *role_of(const struct fixture *f, json_int_t threshold, ...)
{
    json_t *ids = json_array();
    va_list ap;
    const char *name;

    va_start(ap, threshold);
    for (name = va_arg(ap, const char *); name != NULL; name = va_arg(ap, const char *)) {
        json_array_append_new(ids, json_string(keyid_of(f, name)));
    }
    va_end(ap);
    return json_pack("{s:o, s:I}", "keyids", ids, "threshold", threshold);
}

/* A deep copy of the vector envelope whose signatures are only those by the
 * named keys (NULL-terminated). */
static json_t *envelope_with(const struct fixture *f, ...)
{
    json_t *env = json_deep_copy(f->envelope);
    json_t *sigs = json_array();
    const json_t *all = json_object_get(f->envelope, "signatures");
    va_list ap;
    const char *name;

    va_start(ap, f);
    for (name = va_arg(ap, const char *); name != NULL; name = va_arg(ap, const char *)) {
        const char *id = keyid_of(f, name);
        size_t i;

        for (i = 0; i < json_array_size(all); i++) {
            const json_t *s = json_array_get(all, i);

            if (strcmp(json_string_value(json_object_get(s, "keyid")), id) == 0) {
                json_array_append_new(sigs, json_deep_copy(s));
                break;
            }
        }
        if (i == json_array_size(all)) {
            fail_msg("the vector envelope has no signature by %s", name);
        }
    }
    va_end(ap);
    json_object_set_new(env, "signatures", sigs);
    return env;
}

static const char *sig_hex_of(const json_t *env, const char *keyid)
{
    const json_t *sigs = json_object_get(env, "signatures");

    for (size_t i = 0; i < json_array_size(sigs); i++) {
        const json_t *s = json_array_get(sigs, i);

        if (strcmp(json_string_value(json_object_get(s, "keyid")), keyid) == 0) {
            return json_string_value(json_object_get(s, "sig"));
        }
    }
    return NULL;
}

static void add_signature(json_t *env, const char *keyid, const char *sig_hex)
{
    json_array_append_new(json_object_get(env, "signatures"),
                          json_pack("{s:s, s:s}", "keyid", keyid, "sig", sig_hex));
}

/* verify_role, checking the count of valid keys too (want_valid < 0: any). */
static void expect_verify(const json_t *env, const json_t *keys, json_t *role, fota_err want, int want_valid,
                          const char *what)
{
    unsigned valid = 12345;
    fota_err rc = fota_tuf_verify_role(env, keys, role, &valid);

    if (rc != want || (want_valid >= 0 && valid != (unsigned)want_valid)) {
        fail_msg("%s: got %s with %u valid, want %s with %d valid", what, fota_strerror(rc), valid,
                 fota_strerror(want), want_valid);
    }
    /* and the count is optional */
    assert_int_equal(fota_tuf_verify_role(env, keys, role, NULL), want);
    json_decref(role);
}

/* ---- names --------------------------------------------------------------------- */

static void test_encode_name(void **state)
{
    static const struct {
        const char *in;
        const char *out;
    } cases[] = {
        { "targets", "targets" },
        { "root", "root" },
        { "a/b", "a%2Fb" },
        { "a b", "a%20b" },
        { " ", "%20" },
        { "\xc3\xbc", "%C3%BC" },
        { "gr\xc3\xbc\xc3\x9f" "e", "gr%C3%BC%C3%9Fe" },
        { "\xf0\x9f\x98\x80", "%F0%9F%98%80" },
        { "~._-", "~._-" },
        { "AZaz09", "AZaz09" },
        { "%", "%25" },
        { "%2F", "%252F" },
        { "..", ".." },
        { "../etc/passwd", "..%2Fetc%2Fpasswd" },
        { "a\\b", "a%5Cb" },
        { "+:?#[]@!$&'()*,;=", "%2B%3A%3F%23%5B%5D%40%21%24%26%27%28%29%2A%2C%3B%3D" },
        { "\x01\x1f\x7f\x80\xff", "%01%1F%7F%80%FF" },
        { "fw/app-1.2.3.bin", "fw%2Fapp-1.2.3.bin" },
        { "", "" },
    };
    char out[256];

    (void)state;
    for (size_t i = 0; i < TU_ARRAY_LEN(cases); i++) {
        size_t need = strlen(cases[i].out) + 1;
        fota_err rc;

        memset(out, 'x', sizeof(out));
        rc = fota_tuf_encode_name(cases[i].in, out, sizeof(out));
        if (rc != FOTA_OK || strcmp(out, cases[i].out) != 0) {
            fail_msg("encode(\"%s\"): %s \"%s\", want \"%s\"", cases[i].in, fota_strerror(rc), out, cases[i].out);
        }
        /* exactly big enough, then one byte short */
        memset(out, 'x', sizeof(out));
        assert_int_equal(fota_tuf_encode_name(cases[i].in, out, need), FOTA_OK);
        assert_string_equal(out, cases[i].out);
        if (need > 1) {
            assert_int_equal(fota_tuf_encode_name(cases[i].in, out, need - 1), FOTA_E_TOO_BIG);
        }
    }
    assert_int_equal(fota_tuf_encode_name("targets", out, 7), FOTA_E_TOO_BIG);
    assert_int_equal(fota_tuf_encode_name("a/b", out, 5), FOTA_E_TOO_BIG);
    assert_int_equal(fota_tuf_encode_name("a/b", out, 3), FOTA_E_TOO_BIG);
}

/* ---- key ids ------------------------------------------------------------------------ */

static void test_keyids_match_securesystemslib(void **state)
{
    struct fixture *f = *state;
    const char *name;
    json_t *id;
    unsigned n = 0;

    json_object_foreach(json_object_get(f->tuf_keys, "keyids"), name, id) {
        char got[FOTA_TUF_KEYID_HEX_LEN + 1];
        const json_t *obj = json_object_get(f->keys, json_string_value(id));

        assert_non_null(obj);
        memset(got, 'x', sizeof(got));
        assert_int_equal(fota_tuf_keyid(obj, got), FOTA_OK);
        if (strcmp(got, json_string_value(id)) != 0) {
            fail_msg("key id of %s: fota %s, securesystemslib %s", name, got, json_string_value(id));
        }
        n++;
    }
    assert_int_equal(n, 5);
}

static void test_key_json_of_openssl_keys(void **state)
{
    static const char *names[] = { "ed25519", "p256", "rsa2048" };
    struct fixture *f = *state;

    for (size_t i = 0; i < TU_ARRAY_LEN(names); i++) {
        fota_privkey *priv = privkey_from_vec(names[i]);
        json_t *obj = NULL;
        char id[FOTA_TUF_KEYID_HEX_LEN + 1];
        const json_t *want = json_object_get(f->keys, keyid_of(f, names[i]));

        assert_int_equal(fota_tuf_key_json(priv, &obj), FOTA_OK);
        if (!json_equal(obj, (json_t *)want)) {
            char *a = json_dumps(obj, JSON_SORT_KEYS);
            char *b = json_dumps(want, JSON_SORT_KEYS);

            fail_msg("key object of %s:\n fota %s\n want %s", names[i], a, b);
        }
        assert_int_equal(fota_tuf_keyid(obj, id), FOTA_OK);
        assert_string_equal(id, keyid_of(f, names[i]));
        json_decref(obj);
        fota_privkey_free(priv);
    }
}

static void test_key_parse(void **state)
{
    struct fixture *f = *state;
    fota_pubkey *ed = NULL, *ed_legacy = NULL, *p = NULL, *p_alt = NULL, *rsa = NULL;
    static const struct {
        const char *json;
        fota_err want;
    } bad[] = {
        { "{\"keytype\":\"ed25519\",\"scheme\":\"ed25519\"}", FOTA_E_PARSE },
        { "{\"keytype\":\"ed25519\",\"keyval\":{\"public\":\"00\"}}", FOTA_E_PARSE },
        { "{\"scheme\":\"ed25519\",\"keyval\":{\"public\":\"00\"}}", FOTA_E_PARSE },
        { "{\"keytype\":\"ed25519\",\"scheme\":\"ed25519\",\"keyval\":{}}", FOTA_E_PARSE },
        { "{\"keytype\":\"ed25519\",\"scheme\":\"ed25519\",\"keyval\":\"00\"}", FOTA_E_PARSE },
        { "{\"keytype\":\"ed25519\",\"scheme\":\"ed25519\",\"keyval\":{\"public\":1}}", FOTA_E_PARSE },
        { "{\"keytype\":1,\"scheme\":\"ed25519\",\"keyval\":{\"public\":\"00\"}}", FOTA_E_PARSE },
        { "{\"keytype\":\"ed25519\",\"scheme\":null,\"keyval\":{\"public\":\"00\"}}", FOTA_E_PARSE },
        { "[]", FOTA_E_PARSE },
        { "{\"keytype\":\"ed448\",\"scheme\":\"ed448\",\"keyval\":{\"public\":\"00\"}}", FOTA_E_UNSUPPORTED },
        { "{\"keytype\":\"ed25519\",\"scheme\":\"ed25519\",\"keyval\":{\"public\":\"00\"}}", FOTA_E_KEY },
    };

    assert_int_equal(fota_tuf_key_parse(json_object_get(f->keys, keyid_of(f, "ed25519")), &ed), FOTA_OK);
    assert_int_equal(fota_tuf_key_parse(json_object_get(f->keys, keyid_of(f, "ed25519-legacy")), &ed_legacy),
                     FOTA_OK);
    assert_int_equal(fota_tuf_key_parse(json_object_get(f->keys, keyid_of(f, "p256")), &p), FOTA_OK);
    assert_int_equal(fota_tuf_key_parse(json_object_get(f->keys, keyid_of(f, "p256-alt")), &p_alt), FOTA_OK);
    assert_int_equal(fota_tuf_key_parse(json_object_get(f->keys, keyid_of(f, "rsa2048")), &rsa), FOTA_OK);
    assert_int_equal(fota_pubkey_type(ed), FOTA_KEY_ED25519);
    assert_int_equal(fota_pubkey_type(p), FOTA_KEY_ECDSA_P256);
    assert_int_equal(fota_pubkey_type(rsa), FOTA_KEY_RSA_PSS);
    /* different key ids, same keys */
    assert_int_equal(fota_pubkey_equal(ed, ed_legacy), 1);
    assert_int_equal(fota_pubkey_equal(p, p_alt), 1);
    assert_int_equal(fota_pubkey_equal(p, rsa), 0);
    assert_int_equal(fota_pubkey_equal(ed, p), 0);
    fota_pubkey_free(ed);
    fota_pubkey_free(ed_legacy);
    fota_pubkey_free(p);
    fota_pubkey_free(p_alt);
    fota_pubkey_free(rsa);

    for (size_t i = 0; i < TU_ARRAY_LEN(bad); i++) {
        json_t *obj = json_loads(bad[i].json, 0, NULL);
        fota_pubkey *key = UNTOUCHED_PUB;
        fota_err rc;

        assert_non_null(obj);
        rc = fota_tuf_key_parse(obj, &key);
        if (rc != bad[i].want || key != UNTOUCHED_PUB) {
            fail_msg("key_parse(%s): got %s, want %s", bad[i].json, fota_strerror(rc), fota_strerror(bad[i].want));
        }
        json_decref(obj);
    }
}

/* ---- verify_role -------------------------------------------------------------------- */

static void test_verify_securesystemslib_envelope(void **state)
{
    struct fixture *f = *state;
    const json_t *env = f->envelope;

    expect_verify(env, f->keys, role_of(f, 3, "ed25519", "p256", "rsa2048", NULL), FOTA_OK, 3, "all three");
    expect_verify(env, f->keys, role_of(f, 1, "ed25519", NULL), FOTA_OK, 1, "ed25519 alone");
    expect_verify(env, f->keys, role_of(f, 1, "p256", NULL), FOTA_OK, 1, "p256 alone");
    expect_verify(env, f->keys, role_of(f, 1, "p256-alt", NULL), FOTA_OK, 1, "p256-alt alone");
    expect_verify(env, f->keys, role_of(f, 1, "rsa2048", NULL), FOTA_OK, 1, "rsa2048 alone");
    expect_verify(env, f->keys, role_of(f, 2, "rsa2048", "p256", NULL), FOTA_OK, 2, "rsa2048 + p256");
    /* more keys in the role than needed */
    expect_verify(env, f->keys, role_of(f, 1, "ed25519", "p256", "rsa2048", NULL), FOTA_OK, 3, "1 of 3");
    /* a role key that did not sign */
    expect_verify(env, f->keys, role_of(f, 2, "ed25519", "ed25519-legacy", NULL), FOTA_E_THRESHOLD, 1,
                  "ed25519-legacy did not sign");
    expect_verify(env, f->keys, role_of(f, 4, "ed25519", "p256", "rsa2048", NULL), FOTA_E_THRESHOLD, 3,
                  "threshold above the number of keys");
}

static void test_threshold_not_met(void **state)
{
    struct fixture *f = *state;
    json_t *env = envelope_with(f, "ed25519", NULL);

    expect_verify(env, f->keys, role_of(f, 2, "ed25519", "p256", NULL), FOTA_E_THRESHOLD, 1, "2 of 2, one signed");
    expect_verify(env, f->keys, role_of(f, 1, "ed25519", "p256", NULL), FOTA_OK, 1, "1 of 2, one signed");
    expect_verify(env, f->keys, role_of(f, 1, "p256", "rsa2048", NULL), FOTA_E_THRESHOLD, 0, "signer not in role");
    json_decref(env);

    env = envelope_with(f, NULL);
    expect_verify(env, f->keys, role_of(f, 1, "ed25519", NULL), FOTA_E_THRESHOLD, 0, "no signatures");
    json_decref(env);
}

static void test_duplicate_signature_keyids(void **state)
{
    struct fixture *f = *state;
    json_t *env = envelope_with(f, "ed25519", "p256", "rsa2048", NULL);
    const char *ed = keyid_of(f, "ed25519");

    /* the same valid signature twice */
    add_signature(env, ed, sig_hex_of(env, ed));
    expect_verify(env, f->keys, role_of(f, 1, "ed25519", NULL), FOTA_E_DUPLICATE, -1, "ed25519 twice");
    expect_verify(env, f->keys, role_of(f, 1, "p256", "rsa2048", NULL), FOTA_E_DUPLICATE, -1,
                  "duplicate outside the role");
    json_decref(env);

    /* a second, invalid, signature under a key id */
    env = envelope_with(f, "p256", "ed25519", NULL);
    add_signature(env, keyid_of(f, "p256"), sig_hex_of(env, ed));
    expect_verify(env, f->keys, role_of(f, 1, "ed25519", NULL), FOTA_E_DUPLICATE, -1, "p256 twice");
    json_decref(env);

    /* an unknown key id twice */
    env = envelope_with(f, "ed25519", NULL);
    add_signature(env, "00000000000000000000000000000000000000000000000000000000000000ff", "00");
    add_signature(env, "00000000000000000000000000000000000000000000000000000000000000ff", "01");
    expect_verify(env, f->keys, role_of(f, 1, "ed25519", NULL), FOTA_E_DUPLICATE, -1, "unknown key id twice");
    json_decref(env);
}

static void test_bad_signatures_ignored(void **state)
{
    struct fixture *f = *state;
    json_t *env = envelope_with(f, "ed25519", "rsa2048", NULL);
    const char *ed = keyid_of(f, "ed25519");
    const char *rsa = keyid_of(f, "rsa2048");
    char *bad_ed = strdup(sig_hex_of(env, ed));

    /* an invalid signature by p256 (the ed25519 one, one bit flipped) */
    assert_non_null(bad_ed);
    bad_ed[10] = bad_ed[10] == '0' ? '1' : '0';
    add_signature(env, keyid_of(f, "p256"), bad_ed);
    /* a key id nobody knows, carrying a signature that is valid for ed25519 */
    add_signature(env, "ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff", sig_hex_of(env, ed));
    /* a key id the role names but the keys object lacks */
    add_signature(env, "eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee", sig_hex_of(env, rsa));
    /* not hex at all, under a known key id */
    add_signature(env, keyid_of(f, "p256-alt"), "zz-not-hex");
    {
        json_t *role = role_of(f, 2, "ed25519", "p256", "rsa2048", "p256-alt", NULL);

        json_array_append_new(json_object_get(role, "keyids"),
                              json_string("eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee"));
        expect_verify(env, f->keys, json_incref(role), FOTA_OK, 2, "invalid and unknown signatures ignored");
        json_object_set_new(role, "threshold", json_integer(3));
        expect_verify(env, f->keys, role, FOTA_E_THRESHOLD, 2, "invalid signatures do not count");
    }
    json_decref(env);

    /* a signature valid for rsa2048 carried under the ed25519 key id */
    env = envelope_with(f, "p256", NULL);
    add_signature(env, ed, sig_hex_of(f->envelope, rsa));
    expect_verify(env, f->keys, role_of(f, 2, "ed25519", "p256", NULL), FOTA_E_THRESHOLD, 1,
                  "signature by another key under a key id");
    json_decref(env);
    free(bad_ed);
}

static void test_same_key_counts_once(void **state)
{
    struct fixture *f = *state;
    json_t *env;

    /* p256 signed under both of its key ids ("ecdsa" and "ecdsa-sha2-nistp256") */
    expect_verify(f->envelope, f->keys, role_of(f, 2, "p256", "p256-alt", NULL), FOTA_E_THRESHOLD, 1,
                  "p256 under two key ids");
    expect_verify(f->envelope, f->keys, role_of(f, 3, "p256", "p256-alt", "ed25519", NULL), FOTA_E_THRESHOLD,
                  2, "p256 twice + ed25519");
    expect_verify(f->envelope, f->keys, role_of(f, 2, "p256", "p256-alt", "ed25519", NULL), FOTA_OK, 2,
                  "p256 twice + ed25519, threshold 2");
    expect_verify(f->envelope, f->keys, role_of(f, 4, "ed25519", "p256", "rsa2048", "p256-alt", NULL),
                  FOTA_E_THRESHOLD, 3, "four key ids, three keys");

    /* ed25519's signature under its legacy key id as well: bytes identical */
    env = envelope_with(f, "ed25519", NULL);
    add_signature(env, keyid_of(f, "ed25519-legacy"), sig_hex_of(env, keyid_of(f, "ed25519")));
    expect_verify(env, f->keys, role_of(f, 2, "ed25519", "ed25519-legacy", NULL), FOTA_E_THRESHOLD, 1,
                  "ed25519 under two key ids");
    expect_verify(env, f->keys, role_of(f, 1, "ed25519-legacy", NULL), FOTA_OK, 1, "legacy key id alone");
    json_decref(env);
}

static void test_changed_signed_is_not_valid(void **state)
{
    struct fixture *f = *state;
    json_t *env;
    json_t *signed_part;

    /* a field added after signing */
    env = json_deep_copy(f->envelope);
    json_object_set_new(json_object_get(env, "signed"), "extra", json_true());
    expect_verify(env, f->keys, role_of(f, 1, "ed25519", "p256", "rsa2048", NULL), FOTA_E_THRESHOLD, 0,
                  "field added");
    json_decref(env);

    /* a field removed */
    env = json_deep_copy(f->envelope);
    json_object_del(json_object_get(json_object_get(env, "signed"), "targets"), "a/b c.txt");
    expect_verify(env, f->keys, role_of(f, 1, "ed25519", "p256", "rsa2048", NULL), FOTA_E_THRESHOLD, 0,
                  "target removed");
    json_decref(env);

    /* a value changed */
    env = json_deep_copy(f->envelope);
    json_object_set_new(json_object_get(env, "signed"), "version", json_integer(4));
    expect_verify(env, f->keys, role_of(f, 1, "ed25519", "p256", "rsa2048", NULL), FOTA_E_THRESHOLD, 0,
                  "version changed");
    json_decref(env);

    /* a deep string changed by one byte */
    env = json_deep_copy(f->envelope);
    signed_part = json_object_get(json_object_get(json_object_get(env, "signed"), "targets"), "fw/app-1.2.3.bin");
    json_object_set_new(json_object_get(signed_part, "custom"), "ctl", json_string("tab\there\nnewline\x01\x7e"));
    expect_verify(env, f->keys, role_of(f, 1, "ed25519", "p256", "rsa2048", NULL), FOTA_E_THRESHOLD, 0,
                  "deep string changed");
    json_decref(env);

    /* key order does not matter: "signed" rebuilt with keys inserted backwards */
    {
        json_t *orig = json_object_get(f->envelope, "signed");
        json_t *rebuilt = json_object();
        const char *keys[16];
        size_t n = 0;
        const char *k;
        json_t *v;

        json_object_foreach(orig, k, v) {
            assert_true(n < 16);
            keys[n++] = k;
        }
        while (n > 0) {
            n--;
            json_object_set(rebuilt, keys[n], json_object_get(orig, keys[n]));
        }
        env = json_pack("{s:o, s:O}", "signed", rebuilt, "signatures", json_object_get(f->envelope, "signatures"));
        expect_verify(env, f->keys, role_of(f, 3, "ed25519", "p256", "rsa2048", NULL), FOTA_OK, 3,
                      "keys reordered");
        json_decref(env);
    }
}

/* The fixture's envelope with member removed (replacement NULL) or replaced
 * (the reference is stolen) is refused as malformed. */
static void expect_member_refused(const struct fixture *f, const json_t *role, const char *member,
                                  json_t *replacement)
{
    json_t *env = json_deep_copy(f->envelope);

    if (replacement == NULL) {
        assert_int_equal(json_object_del(env, member), 0);
    } else {
        assert_int_equal(json_object_set_new(env, member, replacement), 0);
    }
    assert_int_equal(fota_tuf_verify_role(env, f->keys, role, NULL), FOTA_E_PARSE);
    json_decref(env);
}

/* A valid ed25519 envelope with one more signature object sig (stolen) is
 * refused as malformed. */
static void expect_signature_refused(const struct fixture *f, const json_t *role, json_t *sig)
{
    json_t *env = envelope_with(f, "ed25519", NULL);

    assert_non_null(sig);
    assert_int_equal(json_array_append_new(json_object_get(env, "signatures"), sig), 0);
    assert_int_equal(fota_tuf_verify_role(env, f->keys, role, NULL), FOTA_E_PARSE);
    json_decref(env);
}

static void test_malformed_role_or_envelope(void **state)
{
    struct fixture *f = *state;
    const char *ed = keyid_of(f, "ed25519");
    json_t *role;
    json_t *bad_roles[] = {
        json_pack("{s:[s], s:i}", "keyids", ed, "threshold", 0),
        json_pack("{s:[s], s:i}", "keyids", ed, "threshold", -1),
        json_pack("{s:[s], s:s}", "keyids", ed, "threshold", "1"),
        json_pack("{s:[s], s:f}", "keyids", ed, "threshold", 1.0),
        json_pack("{s:[s], s:b}", "keyids", ed, "threshold", 1),
        json_pack("{s:[s], s:n}", "keyids", ed, "threshold"),
        json_pack("{s:[s]}", "keyids", ed),
        json_pack("{s:s, s:i}", "keyids", ed, "threshold", 1),
        json_pack("{s:[s,i], s:i}", "keyids", ed, 1, "threshold", 1),
        json_pack("{s:i, s:s}", "threshold", 1, "x", ed),
        json_pack("[s]", ed),
    };

    for (size_t i = 0; i < TU_ARRAY_LEN(bad_roles); i++) {
        char what[64];

        assert_non_null(bad_roles[i]);
        snprintf(what, sizeof(what), "malformed role %zu", i);
        expect_verify(f->envelope, f->keys, bad_roles[i], FOTA_E_PARSE, -1, what);
    }

    /* keys is not an object */
    role = role_of(f, 1, "ed25519", NULL);
    {
        json_t *not_keys = json_array();

        assert_int_equal(fota_tuf_verify_role(f->envelope, not_keys, role, NULL), FOTA_E_PARSE);
        json_decref(not_keys);
    }

    /* envelopes: no signed, signed not an object, no signatures, signatures
     * not an array */
    expect_member_refused(f, role, "signed", NULL);
    expect_member_refused(f, role, "signed", json_array());
    expect_member_refused(f, role, "signatures", NULL);
    expect_member_refused(f, role, "signatures", json_object());

    /* a signature without "sig", a key id that is not a string */
    expect_signature_refused(f, role, json_pack("{s:s}", "keyid", ed));
    expect_signature_refused(f, role, json_pack("{s:i, s:s}", "keyid", 1, "sig", "00"));

    json_decref(role);
}

/* ---- sign -------------------------------------------------------------------------- */

/* Have securesystemslib verify every signature of env (key ids looked up in
 * tests/vectors/tuf_keys.json). Returns -1 when it is not installed. */
static int securesystemslib_verifies(const json_t *env, const json_t *keys)
{
    static const char script[] =
        "import json, sys\n"
        "from securesystemslib.formats import encode_canonical\n"
        "from securesystemslib.signer import Signature, SSlibKey\n"
        "env = json.load(open(sys.argv[1], encoding='utf-8'))\n"
        "keys = json.load(open(sys.argv[2], encoding='utf-8'))\n"
        "data = encode_canonical(env['signed']).encode('utf-8')\n"
        "for s in env['signatures']:\n"
        "    k = keys[s['keyid']]\n"
        "    SSlibKey(s['keyid'], k['keytype'], k['scheme'], k['keyval']).verify_signature(\n"
        "        Signature(s['keyid'], s['sig']), data)\n";
    char dir[] = "/tmp/fota-test-tuf-XXXXXX";
    char py[PATH_MAX], env_path[PATH_MAX], keys_path[PATH_MAX], cmd[4 * PATH_MAX];
    FILE *fp;
    int ok;

    if (!tu_run_ok(PYTHON " -c 'import securesystemslib.signer' >/dev/null 2>&1")) {
        return -1;
    }
    assert_non_null(mkdtemp(dir));
    snprintf(py, sizeof(py), "%s/verify.py", dir);
    snprintf(env_path, sizeof(env_path), "%s/env.json", dir);
    snprintf(keys_path, sizeof(keys_path), "%s/keys.json", dir);
    fp = fopen(py, "w");
    assert_non_null(fp);
    assert_int_equal(fputs(script, fp) >= 0, 1);
    assert_int_equal(fclose(fp), 0);
    assert_int_equal(json_dump_file(env, env_path, 0), 0);
    assert_int_equal(json_dump_file(keys, keys_path, 0), 0);
    snprintf(cmd, sizeof(cmd), PYTHON " '%s' '%s' '%s'", py, env_path, keys_path);
    ok = tu_run_ok(cmd);
    unlink(py);
    unlink(env_path);
    unlink(keys_path);
    rmdir(dir);
    return ok;
}

static void test_sign_round_trip(void **state)
{
    struct fixture *f = *state;
    fota_privkey *ed = privkey_from_vec("ed25519");
    fota_privkey *p256 = privkey_from_vec("p256");
    fota_privkey *rsa = privkey_from_vec("rsa2048");
    const char *ed_id = keyid_of(f, "ed25519");
    json_t *env = json_pack("{s:o}", "signed", json_deep_copy(json_object_get(f->envelope, "signed")));
    int sslib;

    /* no "signatures" member yet: fota_tuf_sign makes it */
    assert_int_equal(fota_tuf_sign(env, ed, ed_id), FOTA_OK);
    assert_int_equal(json_array_size(json_object_get(env, "signatures")), 1);
    /* ed25519 is deterministic: securesystemslib made the very same bytes */
    assert_string_equal(sig_hex_of(env, ed_id), sig_hex_of(f->envelope, ed_id));
    /* signing again under the same key id replaces */
    assert_int_equal(fota_tuf_sign(env, ed, ed_id), FOTA_OK);
    assert_int_equal(json_array_size(json_object_get(env, "signatures")), 1);

    assert_int_equal(fota_tuf_sign(env, p256, keyid_of(f, "p256")), FOTA_OK);
    assert_int_equal(fota_tuf_sign(env, rsa, keyid_of(f, "rsa2048")), FOTA_OK);
    assert_int_equal(json_array_size(json_object_get(env, "signatures")), 3);
    expect_verify(env, f->keys, role_of(f, 3, "ed25519", "p256", "rsa2048", NULL), FOTA_OK, 3, "signed by fota");

    /* re-signing p256 replaces its entry in place and keeps the others */
    assert_int_equal(fota_tuf_sign(env, p256, keyid_of(f, "p256")), FOTA_OK);
    assert_int_equal(json_array_size(json_object_get(env, "signatures")), 3);
    expect_verify(env, f->keys, role_of(f, 3, "ed25519", "p256", "rsa2048", NULL), FOTA_OK, 3, "re-signed");

    /* the same key under its second key id still counts once */
    assert_int_equal(fota_tuf_sign(env, p256, keyid_of(f, "p256-alt")), FOTA_OK);
    assert_int_equal(json_array_size(json_object_get(env, "signatures")), 4);
    expect_verify(env, f->keys, role_of(f, 2, "p256", "p256-alt", NULL), FOTA_E_THRESHOLD, 1,
                  "fota signed p256 twice");

    /* securesystemslib accepts every signature fota made */
    sslib = securesystemslib_verifies(env, f->keys);
    if (sslib == 0) {
        fail_msg("securesystemslib does not verify the envelope fota_tuf_sign made");
    }
    if (sslib < 0) {
        fprintf(stderr, "note: %s without securesystemslib: cross-check skipped\n", PYTHON);
    }

    /* signing after a change, then verifying */
    json_object_set_new(json_object_get(env, "signed"), "version", json_integer(99));
    expect_verify(env, f->keys, role_of(f, 1, "ed25519", NULL), FOTA_E_THRESHOLD, 0, "changed after signing");
    assert_int_equal(fota_tuf_sign(env, ed, ed_id), FOTA_OK);
    expect_verify(env, f->keys, role_of(f, 1, "ed25519", NULL), FOTA_OK, 1, "signed again after the change");

    json_decref(env);
    fota_privkey_free(ed);
    fota_privkey_free(p256);
    fota_privkey_free(rsa);
}

static void test_sign_generated_keys(void **state)
{
    static const fota_key_type types[] = { FOTA_KEY_ED25519, FOTA_KEY_ECDSA_P256, FOTA_KEY_RSA_PSS };
    json_t *keys = json_object();
    json_t *ids = json_array();
    json_t *env = json_pack("{s:{s:s, s:i}, s:[]}", "signed", "_type", "timestamp", "version", 1, "signatures");

    (void)state;
    for (size_t i = 0; i < TU_ARRAY_LEN(types); i++) {
        fota_privkey *priv = NULL;
        json_t *obj = NULL;
        char id[FOTA_TUF_KEYID_HEX_LEN + 1];

        assert_int_equal(fota_privkey_generate(types[i], &priv), FOTA_OK);
        assert_int_equal(fota_tuf_key_json(priv, &obj), FOTA_OK);
        assert_int_equal(fota_tuf_keyid(obj, id), FOTA_OK);
        assert_int_equal(strlen(id), FOTA_TUF_KEYID_HEX_LEN);
        assert_int_equal(strspn(id, "0123456789abcdef"), FOTA_TUF_KEYID_HEX_LEN);
        json_object_set_new(keys, id, obj);
        json_array_append_new(ids, json_string(id));
        assert_int_equal(fota_tuf_sign(env, priv, id), FOTA_OK);
        fota_privkey_free(priv);
    }
    {
        json_t *role = json_pack("{s:O, s:i}", "keyids", ids, "threshold", 3);
        unsigned valid = 0;

        assert_int_equal(fota_tuf_verify_role(env, keys, role, &valid), FOTA_OK);
        assert_int_equal(valid, 3);
        json_decref(role);
    }
    json_decref(ids);
    json_decref(keys);
    json_decref(env);
}

/* ---- time ---------------------------------------------------------------------------- */

static void test_time_vectors(void **state)
{
    struct tu_lines it;
    char *text = tu_lines_of_vector(&it, "time.txt");
    unsigned ok = 0, bad = 0;

    (void)state;
    for (char *line = tu_lines_next_record(&it); line != NULL; line = tu_lines_next_record(&it)) {
        const unsigned lineno = it.lineno;

        if (strncmp(line, "ok ", 3) == 0) {
            char *end = NULL;
            long long want = strtoll(line + 3, &end, 10);
            const char *s = end + 1;
            int64_t t = UNTOUCHED_TIME;
            char out[21];
            fota_err rc;

            assert_true(end != line + 3 && *end == ' ');
            rc = fota_tuf_parse_time(s, &t);
            if (rc != FOTA_OK || t != (int64_t)want) {
                fail_msg("time.txt:%u: parse(%s): %s %lld, want %lld", lineno, s, fota_strerror(rc), (long long)t,
                         want);
            }
            memset(out, 'x', sizeof(out));
            fota_tuf_format_time((int64_t)want, out);
            if (memchr(out, '\0', sizeof(out)) == NULL || strcmp(out, s) != 0) {
                fail_msg("time.txt:%u: format(%lld) = %.21s, want %s", lineno, want, out, s);
            }
            ok++;
        } else if (strncmp(line, "bad ", 4) == 0) {
            const char *s = line + 4;
            int64_t t = UNTOUCHED_TIME;
            fota_err rc = fota_tuf_parse_time(s, &t);

            if (rc == FOTA_OK || t != UNTOUCHED_TIME) {
                fail_msg("time.txt:%u: parse(\"%s\") accepted (%lld)", lineno, s, (long long)t);
            }
            bad++;
        } else {
            fail_msg("time.txt:%u: unknown line", lineno);
        }
    }
    free(text);
    assert_true(ok >= 15);
    assert_true(bad >= 40);
}

static void test_time_round_trip(void **state)
{
    (void)state;
    /* every day of four years around a leap day, at a few times of day */
    for (int64_t day = 10957 - 800; day < 10957 + 800; day++) {
        static const int64_t secs[] = { 0, 1, 43199, 86399 };

        for (size_t i = 0; i < TU_ARRAY_LEN(secs); i++) {
            int64_t t = day * 86400 + secs[i];
            int64_t back = -1;
            char out[21];

            fota_tuf_format_time(t, out);
            assert_int_equal(strlen(out), 20);
            if (fota_tuf_parse_time(out, &back) != FOTA_OK || back != t) {
                fail_msg("round trip of %lld via %s gave %lld", (long long)t, out, (long long)back);
            }
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_encode_name),
        cmocka_unit_test(test_keyids_match_securesystemslib),
        cmocka_unit_test(test_key_json_of_openssl_keys),
        cmocka_unit_test(test_key_parse),
        cmocka_unit_test(test_verify_securesystemslib_envelope),
        cmocka_unit_test(test_threshold_not_met),
        cmocka_unit_test(test_duplicate_signature_keyids),
        cmocka_unit_test(test_bad_signatures_ignored),
        cmocka_unit_test(test_same_key_counts_once),
        cmocka_unit_test(test_changed_signed_is_not_valid),
        cmocka_unit_test(test_malformed_role_or_envelope),
        cmocka_unit_test(test_sign_round_trip),
        cmocka_unit_test(test_sign_generated_keys),
        cmocka_unit_test(test_time_vectors),
        cmocka_unit_test(test_time_round_trip),
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}
