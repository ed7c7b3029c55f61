/* SPDX-License-Identifier: Apache-2.0 */
/*
 * server/director.c and server/session.c on their own:
 *  - the Director writer's bytes equal the generic path (a jansson tree,
 *    fota_tuf_sign, fota_json_canonical of the whole envelope), byte for byte
 *    with Ed25519 (deterministic signatures), and verify with
 *    fota_tuf_verify_role for Ed25519 and ECDSA P-256;
 *  - session tokens: a vector made with Python's hmac/base64 modules, round
 *    trip, and every way a token can be wrong.
 * With FOTA_DIRECTOR_BENCH=1 in the environment it also prints how many
 * documents per second each path builds on one core.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fota/crypto.h"
#include "fota/director.h"
#include "fota/json.h"
#include "fota/tuf.h"

#include "director.h"
#include "session.h"

#define DEVICE_ID "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
#define NONCE "00112233445566778899aabbccddeeff"

static void key_setup(struct fota_server_key *k, fota_key_type type)
{
    memset(k, 0, sizeof(*k));
    assert_int_equal(fota_privkey_generate(type, &k->key), FOTA_OK);
    assert_int_equal(fota_tuf_key_json(k->key, &k->pub), FOTA_OK);
    assert_int_equal(fota_tuf_keyid(k->pub, k->keyid), FOTA_OK);
}

static void key_teardown(struct fota_server_key *k)
{
    fota_privkey_free(k->key);
    json_decref(k->pub);
}

static json_t *time_json(int64_t t)
{
    char iso[21];

    fota_tuf_format_time(t, iso);
    return json_string(iso);
}

/* The same document through jansson and the generic TUF signing code. */
static char *reference_doc(const struct fota_server_key *k, const struct fota_director_doc *doc,
                           size_t *ret_len)
{
    json_t *env = json_object();
    json_t *sig = json_object();
    char *buf = NULL;
    size_t len = 0;

    json_object_set_new(sig, "_type", json_string("director"));
    json_object_set_new(sig, "spec_version", json_string("1.0"));
    json_object_set_new(sig, "device", json_string(doc->device_id));
    json_object_set_new(sig, "nonce", json_string(doc->nonce));
    json_object_set_new(sig, "issued", time_json(doc->issued));
    json_object_set_new(sig, "expires", time_json(doc->expires));
    json_object_set_new(sig, "reports", json_integer((json_int_t)doc->reports));
    if (doc->target == NULL) {
        json_object_set_new(sig, "action", json_string("stay"));
    } else {
        const struct fota_director_target *t = doc->target;
        json_object_set_new(sig, "action", json_string("install"));
        json_object_set_new(sig, "rollout", json_string(t->rollout));
        json_object_set_new(sig, "target",
                            json_pack("{s:s, s:I, s:{s:s}, s:s, s:I}", "name", t->name, "length",
                                      (json_int_t)t->length, "hashes", "sha256", t->sha256,
                                      "version", t->version, "security_counter",
                                      (json_int_t)t->security_counter));
    }
    json_object_set_new(env, "signed", sig);
    json_object_set_new(env, "signatures", json_array());
    assert_int_equal(fota_tuf_sign(env, k->key, k->keyid), FOTA_OK);
    assert_int_equal(fota_json_canonical(env, 1 << 20, &buf, &len), FOTA_OK);
    json_decref(env);
    *ret_len = len;
    return buf;
}

static void verify_doc(const struct fota_server_key *k, const char *buf, size_t len)
{
    json_t *env = NULL;
    json_t *keys = json_object();
    json_t *role = json_pack("{s:[s], s:i}", "keyids", k->keyid, "threshold", 1);
    unsigned valid = 0;

    assert_int_equal(fota_json_parse((const uint8_t *)buf, len, 1 << 20, 16, &env), FOTA_OK);
    json_object_set(keys, k->keyid, k->pub);
    assert_int_equal(fota_tuf_verify_role(env, keys, role, &valid), FOTA_OK);
    assert_int_equal(valid, 1);
    json_decref(env);
    json_decref(keys);
    json_decref(role);
}

static const struct fota_director_target sample_target = {
    .name = "fw/board-a/fw-1.1.0.img",
    .length = 1048576,
    .sha256 = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
    .version = "1.1.0",
    .security_counter = 2,
    .rollout = "r-000017",
};

/* Both signers (OpenSSL, then libsodium after fota_server_key_fast) must
 * give the reference bytes: Ed25519 is deterministic. */
static void check_equal_to_reference(const struct fota_director_doc *doc)
{
    struct fota_server_key k;
    char *fast = NULL, *ref;
    size_t fast_len = 0, ref_len = 0;

    key_setup(&k, FOTA_KEY_ED25519);
    ref = reference_doc(&k, doc, &ref_len);
    for (int sodium = 0; sodium <= 1; sodium++) {
        if (sodium) {
            assert_int_equal(fota_server_key_fast(&k), FOTA_OK);
            assert_int_equal(k.fast, 1);
        }
        assert_int_equal(fota_director_build(&k, doc, &fast, &fast_len), FOTA_OK);
        assert_int_equal(fast_len, ref_len);
        assert_int_equal(strlen(fast), fast_len);
        assert_string_equal(fast, ref);
        verify_doc(&k, fast, fast_len);
        free(fast);
        fast = NULL;
    }
    free(ref);
    key_teardown(&k);
}

static void test_stay_matches_reference(void **state)
{
    struct fota_director_doc doc = { DEVICE_ID, NONCE, 1800000000, 1800003600, 0, NULL };

    (void)state;
    check_equal_to_reference(&doc);
}

static void test_install_matches_reference(void **state)
{
    struct fota_director_doc doc = { DEVICE_ID, NONCE, 1800000000, 1800003600, 7, &sample_target };

    (void)state;
    check_equal_to_reference(&doc);
}

static void test_escaping_matches_reference(void **state)
{
    struct fota_director_target t = sample_target;
    struct fota_director_doc doc = { DEVICE_ID, NONCE, 0, 253402300799, (uint64_t)INT64_MAX, &t };

    (void)state;
    t.name = "odd \"name\" with \\ back\\slash and UTF-8 \xc3\xa9";
    t.version = "2.0.0-rc.1+build.5";
    t.rollout = "r\"1";
    t.length = UINT64_C(0);
    t.security_counter = (uint64_t)INT64_MAX;
    check_equal_to_reference(&doc);
}

static void test_ecdsa_verifies(void **state)
{
    struct fota_server_key k;
    struct fota_director_doc doc = { DEVICE_ID, NONCE, 1800000000, 1800003600, 7, &sample_target };
    char *buf = NULL;
    size_t len = 0;

    (void)state;
    key_setup(&k, FOTA_KEY_ECDSA_P256);
    assert_int_equal(fota_server_key_fast(&k), FOTA_OK);    /* not Ed25519: OpenSSL signs */
    assert_int_equal(k.fast, 0);
    assert_int_equal(fota_director_build(&k, &doc, &buf, &len), FOTA_OK);
    verify_doc(&k, buf, len);
    free(buf);
    key_teardown(&k);
}

static void test_refusals(void **state)
{
    struct fota_server_key k;
    struct fota_server_key nokey;
    struct fota_director_target t = sample_target;
    struct fota_director_doc doc = { DEVICE_ID, NONCE, 1800000000, 1800003600, 3, &t };
    char long_name[FOTA_DIRECTOR_NAME_MAX + 2];
    char *buf = (char *)&doc;            /* must stay untouched */
    size_t len = 77;

    (void)state;
    key_setup(&k, FOTA_KEY_ED25519);
    memset(&nokey, 0, sizeof(nokey));
    assert_int_equal(fota_director_build(&nokey, &doc, &buf, &len), FOTA_E_INVALID);

    t.name = "line\nbreak";
    assert_int_equal(fota_director_build(&k, &doc, &buf, &len), FOTA_E_INVALID);
    memset(long_name, 'a', sizeof(long_name) - 1);
    long_name[sizeof(long_name) - 1] = '\0';
    t.name = long_name;
    assert_int_equal(fota_director_build(&k, &doc, &buf, &len), FOTA_E_TOO_BIG);
    long_name[FOTA_DIRECTOR_NAME_MAX] = '\0';          /* exactly at the cap: fine */
    assert_int_equal(fota_director_build(&k, &doc, &buf, &len), FOTA_OK);
    free(buf);
    buf = (char *)&doc;
    len = 77;
    t.name = NULL;
    assert_int_equal(fota_director_build(&k, &doc, &buf, &len), FOTA_E_INVALID);
    t.name = sample_target.name;
    doc.nonce = NULL;
    assert_int_equal(fota_director_build(&k, &doc, &buf, &len), FOTA_E_INVALID);
    doc.nonce = NONCE;
    doc.device_id = DEVICE_ID "00";                   /* over the key id length */
    assert_int_equal(fota_director_build(&k, &doc, &buf, &len), FOTA_E_TOO_BIG);
    assert_ptr_equal(buf, (char *)&doc);
    assert_int_equal(len, 77);
    key_teardown(&k);
}

/* The cross-check between the two sides: what the server's writer signs
 * (OpenSSL, then libsodium) is what the device's verifier accepts, with the
 * key set in the shape of fota/director.json, every field read back. */
static void test_device_verifies_server_doc(void **state)
{
    struct fota_server_key k;
    struct fota_director_doc stay = { DEVICE_ID, NONCE, 1800000000, 1800003600, 0, NULL };
    struct fota_director_doc install = { DEVICE_ID, NONCE, 1800000000, 1800003600, 12,
                                         &sample_target };
    json_t *ks_json;
    json_t *keyset = NULL;
    char *ks_text;
    uint8_t sha[32];

    (void)state;
    key_setup(&k, FOTA_KEY_ED25519);
    ks_json = json_pack("{s:{s:O}, s:i}", "keys", k.keyid, k.pub, "threshold", 1);
    ks_text = json_dumps(ks_json, JSON_COMPACT);
    assert_non_null(ks_text);
    assert_int_equal(fota_director_keys_parse((const uint8_t *)ks_text, strlen(ks_text), &keyset),
                     FOTA_OK);
    assert_int_equal(fota_hex_decode(sample_target.sha256, 64, sha, sizeof(sha)), FOTA_OK);
    for (int sodium = 0; sodium <= 1; sodium++) {
        struct fota_director_decision d;
        char *buf = NULL;
        size_t len = 0;

        if (sodium) {
            assert_int_equal(fota_server_key_fast(&k), FOTA_OK);
            assert_int_equal(k.fast, 1);
        }
        assert_int_equal(fota_director_build(&k, &stay, &buf, &len), FOTA_OK);
        assert_int_equal(fota_director_verify((const uint8_t *)buf, len, keyset, DEVICE_ID, NONCE,
                                              1800000001, &d),
                         FOTA_OK);
        assert_int_equal(d.action, FOTA_DIRECTOR_STAY);
        assert_int_equal(d.reports, 0);
        assert_int_equal(d.issued, 1800000000);
        assert_int_equal(d.expires, 1800003600);
        free(buf);

        assert_int_equal(fota_director_build(&k, &install, &buf, &len), FOTA_OK);
        assert_int_equal(fota_director_verify((const uint8_t *)buf, len, keyset, DEVICE_ID, NONCE,
                                              0, &d),
                         FOTA_OK);
        assert_int_equal(d.action, FOTA_DIRECTOR_INSTALL);
        assert_string_equal(d.target, sample_target.name);
        assert_int_equal(d.length, sample_target.length);
        assert_memory_equal(d.sha256, sha, 32);
        assert_string_equal(d.version, sample_target.version);
        assert_int_equal(d.security_counter, sample_target.security_counter);
        assert_string_equal(d.rollout, sample_target.rollout);
        /* and the binding still holds */
        assert_int_equal(fota_director_verify((const uint8_t *)buf, len, keyset, DEVICE_ID,
                                              "00112233445566778899aabbccddeefe", 0, &d),
                         FOTA_E_NONCE);
        assert_int_equal(fota_director_verify((const uint8_t *)buf, len, keyset, DEVICE_ID, NONCE,
                                              1800003600, &d),
                         FOTA_E_EXPIRED);
        free(buf);
    }
    free(ks_text);
    json_decref(ks_json);
    json_decref(keyset);
    key_teardown(&k);
}

static double now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Not a test: documents per second of each path, printed. */
static void test_bench(void **state)
{
    struct fota_server_key k;
    struct fota_director_doc doc = { DEVICE_ID, NONCE, 1800000000, 1800003600, 7, &sample_target };
    const char *env = getenv("FOTA_DIRECTOR_BENCH");
    uint8_t secret[32] = { 1 };
    char token[FOTA_SESSION_TOKEN_LEN + 1];
    char id[FOTA_TUF_KEYID_HEX_LEN + 1];
    const int n = 20000;
    double t0;

    (void)state;
    if (env == NULL || strcmp(env, "1") != 0) {
        skip();
    }
    key_setup(&k, FOTA_KEY_ED25519);
    t0 = now_s();
    for (int i = 0; i < n; i++) {
        char *buf = NULL;
        size_t len = 0;
        assert_int_equal(fota_director_build(&k, &doc, &buf, &len), FOTA_OK);
        free(buf);
    }
    printf("director writer:    %.0f docs/s\n", n / (now_s() - t0));
    t0 = now_s();
    for (int i = 0; i < n; i++) {
        size_t len = 0;
        free(reference_doc(&k, &doc, &len));
    }
    printf("jansson + tuf_sign: %.0f docs/s\n", n / (now_s() - t0));
    t0 = now_s();
    for (int i = 0; i < 10 * n; i++) {
        int64_t exp = 0;
        assert_int_equal(fota_session_token_make(secret, DEVICE_ID, 1800000000, token), FOTA_OK);
        assert_int_equal(fota_session_token_check(secret, token, 1700000000, id, &exp), FOTA_OK);
    }
    printf("token make+check:   %.0f pairs/s\n", 10 * n / (now_s() - t0));
    key_teardown(&k);
}

/* ---- session tokens ------------------------------------------------------- */

static const uint8_t vec_secret[32] = {
    0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15,
    16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31,
};
#define VEC_ID "abababababababababababababababababababababababababababababababab"
#define VEC_EXPIRES 1800000000
/* Python: base64.urlsafe_b64encode(id + struct.pack('>Q', exp) +
 * hmac.new(secret, id + exp, sha256).digest()) */
#define VEC_TOKEN "q6urq6urq6urq6urq6urq6urq6urq6urq6urq6urq6sAAAAAa0nSAKiTGnU19ALxu9CpU2uCjRoNooFlYDTOMHRBTJGgndJ3"

static void test_token_vector(void **state)
{
    char token[FOTA_SESSION_TOKEN_LEN + 1];
    char id[FOTA_TUF_KEYID_HEX_LEN + 1];
    int64_t exp = 0;

    (void)state;
    assert_int_equal(fota_session_token_make(vec_secret, VEC_ID, VEC_EXPIRES, token), FOTA_OK);
    assert_string_equal(token, VEC_TOKEN);
    assert_int_equal(fota_session_token_check(vec_secret, VEC_TOKEN, VEC_EXPIRES - 1, id, &exp),
                     FOTA_OK);
    assert_string_equal(id, VEC_ID);
    assert_int_equal(exp, VEC_EXPIRES);
    /* Upper-case hex in, lower-case out. */
    assert_int_equal(fota_session_token_make(vec_secret, "ABABABABABABABABABABABABABABABAB"
                                                         "ABABABABABABABABABABABABABABABAB",
                                             VEC_EXPIRES, token),
                     FOTA_OK);
    assert_string_equal(token, VEC_TOKEN);
}

static void test_token_refusals(void **state)
{
    char token[FOTA_SESSION_TOKEN_LEN + 2];
    char id[FOTA_TUF_KEYID_HEX_LEN + 1] = "untouched";
    uint8_t other[32];
    int64_t exp = 42;

    (void)state;
    /* Expired: at and after the expiry. */
    assert_int_equal(fota_session_token_check(vec_secret, VEC_TOKEN, VEC_EXPIRES, id, &exp),
                     FOTA_E_EXPIRED);
    assert_int_equal(fota_session_token_check(vec_secret, VEC_TOKEN, VEC_EXPIRES + 10, id, &exp),
                     FOTA_E_EXPIRED);
    /* Another secret. */
    memcpy(other, vec_secret, sizeof(other));
    other[31] ^= 1;
    assert_int_equal(fota_session_token_check(other, VEC_TOKEN, 0, id, &exp), FOTA_E_SIGNATURE);
    /* Every character changed in turn (id, expiry or MAC). */
    for (size_t i = 0; i < FOTA_SESSION_TOKEN_LEN; i++) {
        memcpy(token, VEC_TOKEN, sizeof(VEC_TOKEN));
        token[i] = token[i] == 'A' ? 'B' : 'A';
        fota_err err = fota_session_token_check(vec_secret, token, 0, id, &exp);
        assert_true(err == FOTA_E_SIGNATURE || err == FOTA_E_PARSE);
    }
    /* Wrong length, padding, other alphabets, empty. */
    memcpy(token, VEC_TOKEN, sizeof(VEC_TOKEN));
    token[FOTA_SESSION_TOKEN_LEN - 1] = '\0';
    assert_int_equal(fota_session_token_check(vec_secret, token, 0, id, &exp), FOTA_E_PARSE);
    memcpy(token, VEC_TOKEN, sizeof(VEC_TOKEN));
    token[FOTA_SESSION_TOKEN_LEN] = '=';
    token[FOTA_SESSION_TOKEN_LEN + 1] = '\0';
    assert_int_equal(fota_session_token_check(vec_secret, token, 0, id, &exp), FOTA_E_PARSE);
    memcpy(token, VEC_TOKEN, sizeof(VEC_TOKEN));
    token[10] = '+';
    assert_int_equal(fota_session_token_check(vec_secret, token, 0, id, &exp), FOTA_E_PARSE);
    token[10] = '/';
    assert_int_equal(fota_session_token_check(vec_secret, token, 0, id, &exp), FOTA_E_PARSE);
    assert_int_equal(fota_session_token_check(vec_secret, "", 0, id, &exp), FOTA_E_PARSE);
    assert_int_equal(fota_session_token_check(vec_secret, NULL, 0, id, &exp), FOTA_E_INVALID);
    assert_string_equal(id, "untouched");
    assert_int_equal(exp, 42);

    /* Making: bad ids and expiries. */
    assert_int_equal(fota_session_token_make(vec_secret, "abab", 1, token), FOTA_E_INVALID);
    assert_int_equal(fota_session_token_make(vec_secret, VEC_ID "ab", 1, token), FOTA_E_INVALID);
    memcpy(id, VEC_ID, sizeof(VEC_ID));
    id[0] = 'z';
    assert_int_equal(fota_session_token_make(vec_secret, id, 1, token), FOTA_E_INVALID);
    assert_int_equal(fota_session_token_make(vec_secret, VEC_ID, -1, token), FOTA_E_INVALID);
}

static void test_token_roundtrip(void **state)
{
    char token[FOTA_SESSION_TOKEN_LEN + 1];
    char id[FOTA_TUF_KEYID_HEX_LEN + 1];
    int64_t exp = 0;

    (void)state;
    assert_int_equal(fota_session_token_make(vec_secret, DEVICE_ID, INT64_MAX, token), FOTA_OK);
    assert_int_equal(fota_session_token_check(vec_secret, token, INT64_MAX - 1, id, &exp), FOTA_OK);
    assert_string_equal(id, DEVICE_ID);
    assert_int_equal(exp, INT64_MAX);
    assert_int_equal(fota_session_token_make(vec_secret, DEVICE_ID, 0, token), FOTA_OK);
    assert_int_equal(fota_session_token_check(vec_secret, token, -1, id, &exp), FOTA_OK);
    assert_int_equal(exp, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_stay_matches_reference),
        cmocka_unit_test(test_install_matches_reference),
        cmocka_unit_test(test_escaping_matches_reference),
        cmocka_unit_test(test_ecdsa_verifies),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_device_verifies_server_doc),
        cmocka_unit_test(test_token_vector),
        cmocka_unit_test(test_token_refusals),
        cmocka_unit_test(test_token_roundtrip),
        cmocka_unit_test(test_bench),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
