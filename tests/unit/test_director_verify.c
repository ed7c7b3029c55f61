/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fota_director_verify and fota_director_keys_parse (include/fota/
 * director.h). Documents are built here with jansson and the generic TUF
 * signing path (fota_tuf_sign), not with the server's hand-written writer,
 * so that the two sides are checked against each other (the server's test
 * tests/server/test_director.c runs its own documents through the verifier).
 * Each rule is broken on its own in an otherwise valid, validly signed
 * document, so that the result names that rule.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fota/crypto.h"
#include "fota/director.h"
#include "fota/json.h"
#include "fota/tuf.h"

#include "test_util.h"

#define DEVICE_ID "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
#define OTHER_DEVICE "f123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
#define NONCE "00112233445566778899aabbccddeeff"
#define SHA_HEX "a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f90"
#define ISSUED 1795496400       /* 2026-11-24T05:00:00Z */
#define EXPIRES (ISSUED + 3600)
#define TARGET "fw/board-a/fw-1.1.0.img"

struct key {
    fota_privkey *priv;
    json_t *obj;                /* TUF key object */
    char id[FOTA_TUF_KEYID_HEX_LEN + 1];
};

static struct key k1, k2, k_other;
static char k1_alt_id[FOTA_TUF_KEYID_HEX_LEN + 1];  /* k1 under a second key object */
static json_t *k1_alt_obj;

static void key_new(struct key *k, fota_key_type type)
{
    assert_int_equal(fota_privkey_generate(type, &k->priv), FOTA_OK);
    assert_int_equal(fota_tuf_key_json(k->priv, &k->obj), FOTA_OK);
    assert_int_equal(fota_tuf_keyid(k->obj, k->id), FOTA_OK);
}

static void key_free(struct key *k)
{
    fota_privkey_free(k->priv);
    json_decref(k->obj);
}

static int group_setup(void **state)
{
    (void)state;
    key_new(&k1, FOTA_KEY_ED25519);
    key_new(&k2, FOTA_KEY_ECDSA_P256);
    key_new(&k_other, FOTA_KEY_ED25519);
    /* the same public key, another key object (TUF's optional
     * keyid_hash_algorithms member): another key id */
    k1_alt_obj = json_deep_copy(k1.obj);
    json_object_set_new(k1_alt_obj, "keyid_hash_algorithms",
                        json_pack("[s,s]", "sha256", "sha512"));
    assert_int_equal(fota_tuf_keyid(k1_alt_obj, k1_alt_id), FOTA_OK);
    assert_string_not_equal(k1_alt_id, k1.id);
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    key_free(&k1);
    key_free(&k2);
    key_free(&k_other);
    json_decref(k1_alt_obj);
    return 0;
}

/* ---- key sets ------------------------------------------------------------- */

/* {"keys":{...},"threshold":n} as text, parsed with fota_director_keys_parse. */
static json_t *keyset_of(json_t *keys, int threshold)
{
    json_t *ks = json_pack("{s:o,s:i}", "keys", keys, "threshold", threshold);
    char *text = json_dumps(ks, JSON_COMPACT);
    json_t *out = NULL;

    assert_non_null(text);
    assert_int_equal(fota_director_keys_parse((const uint8_t *)text, strlen(text), &out), FOTA_OK);
    free(text);
    json_decref(ks);
    return out;
}

static json_t *keyset1(void)
{
    return keyset_of(json_pack("{s:O}", k1.id, k1.obj), 1);
}

/* ---- documents ------------------------------------------------------------ */

static json_t *time_json(int64_t t)
{
    char iso[21];

    fota_tuf_format_time(t, iso);
    return json_string(iso);
}

static json_t *signed_stay(void)
{
    return json_pack("{s:s,s:s,s:s,s:o,s:o,s:s,s:I,s:s}", "_type", "director", "action", "stay",
                     "device", DEVICE_ID, "expires", time_json(EXPIRES), "issued",
                     time_json(ISSUED), "nonce", NONCE, "reports", (json_int_t)41,
                     "spec_version", "1.0");
}

static json_t *signed_install(void)
{
    json_t *s = signed_stay();

    json_object_set_new(s, "action", json_string("install"));
    json_object_set_new(s, "rollout", json_string("r-17"));
    json_object_set_new(s, "target",
                        json_pack("{s:{s:s},s:I,s:s,s:I,s:s}", "hashes", "sha256", SHA_HEX,
                                  "length", (json_int_t)1048576, "name", TARGET,
                                  "security_counter", (json_int_t)2, "version", "1.1.0"));
    return s;
}

static json_t *target_of(json_t *s)
{
    return json_object_get(s, "target");
}

/* The envelope of s (reference taken), signed by each key id / key pair
 * given (NULL-terminated), as canonical bytes. */
static uint8_t *envelope_bytes(json_t *s, size_t *ret_len, ...)
{
    json_t *env = json_pack("{s:[],s:o}", "signatures", "signed", s);
    const struct key *k;
    char *buf = NULL;
    va_list ap;

    assert_non_null(env);
    va_start(ap, ret_len);
    for (k = va_arg(ap, const struct key *); k != NULL; k = va_arg(ap, const struct key *))
        assert_int_equal(fota_tuf_sign(env, k->priv, k->id), FOTA_OK);
    va_end(ap);
    assert_int_equal(fota_json_canonical(env, 1u << 20, &buf, ret_len), FOTA_OK);
    json_decref(env);
    return (uint8_t *)buf;
}

/* Sign s by k1 alone and verify against the one-key set. */
static fota_err verify_with(json_t *s, int64_t now, struct fota_director_decision *d)
{
    json_t *ks = keyset1();
    size_t len = 0;
    uint8_t *doc = envelope_bytes(s, &len, &k1, NULL);
    fota_err err = fota_director_verify(doc, len, ks, DEVICE_ID, NONCE, now, d);

    free(doc);
    json_decref(ks);
    return err;
}

/* Expect err for s (consumed), and that *ret was not touched. */
static void expect(json_t *s, int64_t now, fota_err want, const char *what)
{
    struct fota_director_decision d;
    fota_err err;

    memset(&d, 0x5a, sizeof d);
    err = verify_with(s, now, &d);
    if (err != want)
        fail_msg("%s: got %s, want %s", what, fota_strerror(err), fota_strerror(want));
    if (want != FOTA_OK) {
        struct fota_director_decision untouched;

        memset(&untouched, 0x5a, sizeof untouched);
        assert_memory_equal(&d, &untouched, sizeof d);
    }
}

/* ---- accepted ------------------------------------------------------------- */

static void test_stay_ok(void **state)
{
    struct fota_director_decision d;

    (void)state;
    memset(&d, 0x5a, sizeof d);
    assert_int_equal(verify_with(signed_stay(), ISSUED + 10, &d), FOTA_OK);
    assert_int_equal(d.action, FOTA_DIRECTOR_STAY);
    assert_int_equal(d.issued, ISSUED);
    assert_int_equal(d.expires, EXPIRES);
    assert_string_equal(d.target, "");
    assert_int_equal(d.length, 0);
    assert_int_equal(d.reports, 41);
}

static void test_install_ok(void **state)
{
    struct fota_director_decision d;
    uint8_t sha[32];

    (void)state;
    assert_int_equal(fota_hex_decode(SHA_HEX, 64, sha, sizeof sha), FOTA_OK);
    assert_int_equal(verify_with(signed_install(), ISSUED + 10, &d), FOTA_OK);
    assert_int_equal(d.action, FOTA_DIRECTOR_INSTALL);
    assert_int_equal(d.issued, ISSUED);
    assert_int_equal(d.expires, EXPIRES);
    assert_string_equal(d.target, TARGET);
    assert_int_equal(d.length, 1048576);
    assert_memory_equal(d.sha256, sha, 32);
    assert_string_equal(d.version, "1.1.0");
    assert_int_equal(d.security_counter, 2);
    assert_string_equal(d.rollout, "r-17");
    assert_int_equal(d.reports, 41);
}

/* Strings at their caps pass; one byte more does not. */
static void test_caps(void **state)
{
    char name[FOTA_DIRECTOR_TARGET_NAME_MAX + 2];
    char version[FOTA_DIRECTOR_VERSION_MAX + 2];
    char rollout[FOTA_DIRECTOR_ROLLOUT_MAX + 2];
    struct fota_director_decision d;
    json_t *s;

    (void)state;
    memset(name, 'n', sizeof name - 1);
    name[sizeof name - 1] = '\0';
    memset(version, '1', sizeof version - 1);
    version[sizeof version - 1] = '\0';
    memset(rollout, 'r', sizeof rollout - 1);
    rollout[sizeof rollout - 1] = '\0';

    s = signed_install();
    json_object_set_new(target_of(s), "name", json_string(name + 1));
    json_object_set_new(target_of(s), "version", json_string(version + 1));
    json_object_set_new(s, "rollout", json_string(rollout + 1));
    assert_int_equal(verify_with(s, 0, &d), FOTA_OK);
    assert_int_equal(strlen(d.target), FOTA_DIRECTOR_TARGET_NAME_MAX);
    assert_int_equal(strlen(d.version), FOTA_DIRECTOR_VERSION_MAX);
    assert_int_equal(strlen(d.rollout), FOTA_DIRECTOR_ROLLOUT_MAX);

    s = signed_install();
    json_object_set_new(target_of(s), "name", json_string(name));
    expect(s, 0, FOTA_E_PARSE, "name over the cap");
    s = signed_install();
    json_object_set_new(target_of(s), "version", json_string(version));
    expect(s, 0, FOTA_E_PARSE, "version over the cap");
    s = signed_install();
    json_object_set_new(s, "rollout", json_string(rollout));
    expect(s, 0, FOTA_E_PARSE, "rollout over the cap");
    s = signed_install();
    json_object_set_new(target_of(s), "name", json_string(""));
    expect(s, 0, FOTA_E_PARSE, "empty name");
}

/* ---- step 2: signatures --------------------------------------------------- */

static fota_err verify_bytes(const uint8_t *doc, size_t len, const json_t *ks)
{
    struct fota_director_decision d;

    return fota_director_verify(doc, len, ks, DEVICE_ID, NONCE, ISSUED + 1, &d);
}

static void test_signatures(void **state)
{
    json_t *ks = keyset1();
    size_t len = 0;
    uint8_t *doc;
    json_t *env;
    char *text;

    (void)state;
    /* another key */
    doc = envelope_bytes(signed_install(), &len, &k_other, NULL);
    assert_int_equal(verify_bytes(doc, len, ks), FOTA_E_SIGNATURE);
    free(doc);
    /* no signature */
    doc = envelope_bytes(signed_install(), &len, NULL);
    assert_int_equal(verify_bytes(doc, len, ks), FOTA_E_SIGNATURE);
    free(doc);
    /* the trusted key's signature, then a signed field changed */
    doc = envelope_bytes(signed_install(), &len, &k1, NULL);
    assert_int_equal(verify_bytes(doc, len, ks), FOTA_OK);
    assert_int_equal(fota_json_parse(doc, len, len, 16, &env), FOTA_OK);
    free(doc);
    json_object_set_new(target_of(json_object_get(env, "signed")), "length", json_integer(1048577));
    text = json_dumps(env, JSON_COMPACT);
    assert_int_equal(verify_bytes((const uint8_t *)text, strlen(text), ks), FOTA_E_SIGNATURE);
    free(text);
    /* the signature moved under another key id */
    json_object_set_new(target_of(json_object_get(env, "signed")), "length", json_integer(1048576));
    json_object_set_new(json_array_get(json_object_get(env, "signatures"), 0), "keyid",
                        json_string(k_other.id));
    text = json_dumps(env, JSON_COMPACT);
    assert_int_equal(verify_bytes((const uint8_t *)text, strlen(text), ks), FOTA_E_SIGNATURE);
    free(text);
    /* the same signature entry twice */
    json_object_set_new(json_array_get(json_object_get(env, "signatures"), 0), "keyid",
                        json_string(k1.id));
    json_array_append(json_object_get(env, "signatures"),
                      json_array_get(json_object_get(env, "signatures"), 0));
    text = json_dumps(env, JSON_COMPACT);
    assert_int_equal(verify_bytes((const uint8_t *)text, strlen(text), ks), FOTA_E_DUPLICATE);
    free(text);
    json_decref(env);
    json_decref(ks);
}

static void test_threshold(void **state)
{
    json_t *two = keyset_of(json_pack("{s:O,s:O}", k1.id, k1.obj, k2.id, k2.obj), 2);
    json_t *same = keyset_of(json_pack("{s:O,s:O}", k1.id, k1.obj, k1_alt_id, k1_alt_obj), 2);
    struct key k1_alt = k1;
    size_t len = 0;
    uint8_t *doc;

    (void)state;
    memcpy(k1_alt.id, k1_alt_id, sizeof k1_alt.id);
    /* two distinct keys */
    doc = envelope_bytes(signed_install(), &len, &k1, &k2, NULL);
    assert_int_equal(verify_bytes(doc, len, two), FOTA_OK);
    free(doc);
    doc = envelope_bytes(signed_install(), &len, &k2, NULL);
    assert_int_equal(verify_bytes(doc, len, two), FOTA_E_THRESHOLD);
    free(doc);
    /* one key signing under both of its key ids counts once */
    doc = envelope_bytes(signed_install(), &len, &k1, &k1_alt, NULL);
    assert_int_equal(verify_bytes(doc, len, same), FOTA_E_THRESHOLD);
    free(doc);
    json_decref(two);
    json_decref(same);
}

/* ---- steps 3 to 6 --------------------------------------------------------- */

static void test_binding(void **state)
{
    json_t *s;

    (void)state;
    s = signed_install();
    json_object_set_new(s, "_type", json_string("timestamp"));
    expect(s, 0, FOTA_E_TYPE, "_type");
    s = signed_stay();
    json_object_del(s, "_type");
    expect(s, 0, FOTA_E_TYPE, "no _type");
    s = signed_install();
    json_object_set_new(s, "spec_version", json_string("1.1"));
    expect(s, 0, FOTA_E_TYPE, "spec_version");
    s = signed_install();
    json_object_set_new(s, "spec_version", json_integer(1));
    expect(s, 0, FOTA_E_TYPE, "spec_version not a string");

    s = signed_install();
    json_object_set_new(s, "device", json_string(OTHER_DEVICE));
    expect(s, 0, FOTA_E_DEVICE, "another device");
    s = signed_stay();
    json_object_set_new(s, "device", json_string(DEVICE_ID "0"));
    expect(s, 0, FOTA_E_DEVICE, "device id with a byte more");
    s = signed_stay();
    json_object_del(s, "device");
    expect(s, 0, FOTA_E_DEVICE, "no device");

    s = signed_install();
    json_object_set_new(s, "nonce", json_string("00112233445566778899aabbccddeeef"));
    expect(s, 0, FOTA_E_NONCE, "another nonce");
    s = signed_install();
    json_object_set_new(s, "nonce", json_string("00112233445566778899aabbccddee"));
    expect(s, 0, FOTA_E_NONCE, "a prefix of the nonce");
    s = signed_install();
    json_object_set_new(s, "nonce", json_string(NONCE "00"));
    expect(s, 0, FOTA_E_NONCE, "the nonce and more");
    s = signed_stay();
    json_object_set_new(s, "nonce", json_integer(1));
    expect(s, 0, FOTA_E_NONCE, "nonce not a string");
}

static void test_times(void **state)
{
    json_t *s;

    (void)state;
    expect(signed_install(), EXPIRES - 1, FOTA_OK, "one second left");
    expect(signed_install(), EXPIRES, FOTA_E_EXPIRED, "expired now");
    expect(signed_stay(), EXPIRES + 86400, FOTA_E_EXPIRED, "expired yesterday");
    /* no clock: the nonce is the proof */
    expect(signed_install(), 0, FOTA_OK, "no clock");
    s = signed_install();
    json_object_set_new(s, "expires", time_json(ISSUED - 100));
    json_object_set_new(s, "issued", time_json(ISSUED - 200));
    expect(s, 0, FOTA_OK, "old, no clock");

    s = signed_stay();
    json_object_set_new(s, "expires", json_string("2026-11-24 06:00:00"));
    expect(s, 0, FOTA_E_PARSE, "expires malformed");
    s = signed_stay();
    json_object_set_new(s, "issued", json_integer(ISSUED));
    expect(s, 0, FOTA_E_PARSE, "issued a number");
    s = signed_stay();
    json_object_del(s, "expires");
    expect(s, 0, FOTA_E_PARSE, "no expires");
    s = signed_stay();
    json_object_set_new(s, "expires", time_json(ISSUED - 1));
    expect(s, 0, FOTA_E_PARSE, "expires before issued");
}

/* ---- step 7: the instruction ---------------------------------------------- */

static void test_shape(void **state)
{
    json_t *s;

    (void)state;
    s = signed_install();
    json_object_del(s, "target");
    expect(s, 0, FOTA_E_PARSE, "install without target");
    s = signed_install();
    json_object_del(s, "rollout");
    expect(s, 0, FOTA_E_PARSE, "install without rollout");
    s = signed_install();
    json_object_set_new(s, "action", json_string("stay"));
    expect(s, 0, FOTA_E_PARSE, "stay with a target");
    s = signed_stay();
    json_object_set_new(s, "rollout", json_string("r-1"));
    expect(s, 0, FOTA_E_PARSE, "stay with a rollout");
    s = signed_stay();
    json_object_set_new(s, "action", json_string("reboot"));
    expect(s, 0, FOTA_E_PARSE, "unknown action");
    s = signed_stay();
    json_object_del(s, "action");
    expect(s, 0, FOTA_E_PARSE, "no action");
    s = signed_install();
    json_object_set_new(s, "priority", json_integer(1));
    expect(s, 0, FOTA_E_PARSE, "unknown field in signed (install)");
    s = signed_stay();
    json_object_set_new(s, "note", json_string("x"));
    expect(s, 0, FOTA_E_PARSE, "unknown field in signed (stay)");
    s = signed_install();
    json_object_set_new(target_of(s), "custom", json_object());
    expect(s, 0, FOTA_E_PARSE, "unknown field in target");
    s = signed_install();
    json_object_set_new(json_object_get(target_of(s), "hashes"), "sha512", json_string("00"));
    expect(s, 0, FOTA_E_PARSE, "another hash in hashes");
    s = signed_install();
    json_object_set_new(s, "target", json_string(TARGET));
    expect(s, 0, FOTA_E_PARSE, "target not an object");
    s = signed_stay();
    json_object_del(s, "reports");
    expect(s, 0, FOTA_E_PARSE, "no reports");
    s = signed_stay();
    json_object_set_new(s, "reports", json_integer(-1));
    expect(s, 0, FOTA_E_PARSE, "negative reports");
    s = signed_install();
    json_object_set_new(s, "reports", json_string("41"));
    expect(s, 0, FOTA_E_PARSE, "reports not an integer");
}

static void test_target_fields(void **state)
{
    static const char *const bad_sha[] = {
        "A1B2C3D4E5F60718293A4B5C6D7E8F90A1B2C3D4E5F60718293A4B5C6D7E8F90",   /* upper case */
        "a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f9",    /* 63 */
        "a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f900",  /* 65 */
        "g1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f90",   /* not hex */
        "",
    };
    json_t *s;

    (void)state;
    for (size_t i = 0; i < TU_ARRAY_LEN(bad_sha); i++) {
        s = signed_install();
        json_object_set_new(json_object_get(target_of(s), "hashes"), "sha256",
                            json_string(bad_sha[i]));
        expect(s, 0, FOTA_E_PARSE, bad_sha[i]);
    }
    s = signed_install();
    json_object_del(json_object_get(target_of(s), "hashes"), "sha256");
    expect(s, 0, FOTA_E_PARSE, "no sha256");
    s = signed_install();
    json_object_set_new(target_of(s), "length", json_integer(-1));
    expect(s, 0, FOTA_E_PARSE, "negative length");
    s = signed_install();
    json_object_set_new(target_of(s), "length", json_integer(0));
    expect(s, 0, FOTA_E_PARSE, "zero length");
    s = signed_install();
    json_object_set_new(target_of(s), "length", json_string("1048576"));
    expect(s, 0, FOTA_E_PARSE, "length as a string");
    s = signed_install();
    json_object_del(target_of(s), "length");
    expect(s, 0, FOTA_E_PARSE, "no length");
    s = signed_install();
    json_object_set_new(target_of(s), "security_counter", json_integer(-2));
    expect(s, 0, FOTA_E_PARSE, "negative counter");
    s = signed_install();
    json_object_set_new(target_of(s), "version", json_null());
    expect(s, 0, FOTA_E_PARSE, "version null");
    s = signed_install();
    json_object_set_new(target_of(s), "name", json_integer(5));
    expect(s, 0, FOTA_E_PARSE, "name a number");
}

/* A real number cannot be signed by fota_tuf_sign (canonical JSON has
 * none): put one into a signed document by hand. */
static void test_non_integer_length(void **state)
{
    json_t *ks = keyset1();
    size_t len = 0;
    uint8_t *doc = envelope_bytes(signed_install(), &len, &k1, NULL);
    char *text = malloc(len + 8);
    char *at;
    fota_err err;

    (void)state;
    assert_non_null(text);
    memcpy(text, doc, len);
    text[len] = '\0';
    at = strstr(text, "\"length\":1048576");
    assert_non_null(at);
    memmove(at + 18, at + 16, strlen(at + 16) + 1);
    memcpy(at + 16, ".5", 2);
    err = verify_bytes((const uint8_t *)text, strlen(text), ks);
    assert_int_equal(err, FOTA_E_PARSE);
    free(text);
    free(doc);
    json_decref(ks);
}

/* ---- step 1: bytes ---------------------------------------------------------- */

static void test_bytes(void **state)
{
    json_t *ks = keyset1();
    size_t len = 0;
    uint8_t *doc = envelope_bytes(signed_install(), &len, &k1, NULL);
    uint8_t *big = malloc(FOTA_DIRECTOR_DOC_MAX + 2);
    char *text = malloc(len + 64);
    json_t *env;
    char *extra;

    (void)state;
    assert_non_null(big);
    assert_non_null(text);
    assert_int_equal(verify_bytes(doc, len, ks), FOTA_OK);
    /* trailing bytes */
    memcpy(text, doc, len);
    memcpy(text + len, "{}", 2);
    assert_int_equal(verify_bytes((const uint8_t *)text, len + 2, ks), FOTA_E_PARSE);
    /* trailing white space is fine, as for any JSON text */
    text[len] = '\n';
    assert_int_equal(verify_bytes((const uint8_t *)text, len + 1, ks), FOTA_OK);
    /* truncated */
    assert_int_equal(verify_bytes(doc, len - 1, ks), FOTA_E_PARSE);
    /* a duplicate key inside signed, put in after signing */
    memcpy(text, doc, len);
    text[len] = '\0';
    {
        char *at = strstr(text, "\"nonce\":");
        const char *dup = "\"nonce\":\"ff\",";

        assert_non_null(at);
        memmove(at + strlen(dup), at, strlen(at) + 1);
        memcpy(at, dup, strlen(dup));
    }
    assert_int_equal(verify_bytes((const uint8_t *)text, strlen(text), ks), FOTA_E_DUPLICATE);
    /* over the cap: refused before parsing, however valid */
    memset(big, ' ', FOTA_DIRECTOR_DOC_MAX + 1);
    memcpy(big, doc, len);
    assert_int_equal(verify_bytes(big, FOTA_DIRECTOR_DOC_MAX, ks), FOTA_OK);
    assert_int_equal(verify_bytes(big, FOTA_DIRECTOR_DOC_MAX + 1, ks), FOTA_E_TOO_BIG);
    /* an unknown envelope member */
    assert_int_equal(fota_json_parse(doc, len, len, 16, &env), FOTA_OK);
    json_object_set_new(env, "comment", json_string("x"));
    extra = json_dumps(env, JSON_COMPACT);
    assert_int_equal(verify_bytes((const uint8_t *)extra, strlen(extra), ks), FOTA_E_PARSE);
    free(extra);
    json_decref(env);
    /* not an envelope */
    assert_int_equal(verify_bytes((const uint8_t *)"[]", 2, ks), FOTA_E_PARSE);
    assert_int_equal(verify_bytes((const uint8_t *)"{\"signed\":{}}", 13, ks), FOTA_E_PARSE);
    /* arguments */
    {
        struct fota_director_decision d;

        assert_int_equal(fota_director_verify(NULL, 0, ks, DEVICE_ID, NONCE, 0, &d),
                         FOTA_E_INVALID);
        assert_int_equal(fota_director_verify(doc, len, NULL, DEVICE_ID, NONCE, 0, &d),
                         FOTA_E_INVALID);
        assert_int_equal(fota_director_verify(doc, len, ks, NULL, NONCE, 0, &d), FOTA_E_INVALID);
        assert_int_equal(fota_director_verify(doc, len, ks, DEVICE_ID, NULL, 0, &d),
                         FOTA_E_INVALID);
        assert_int_equal(fota_director_verify(doc, len, ks, DEVICE_ID, NONCE, 0, NULL),
                         FOTA_E_INVALID);
    }
    free(big);
    free(text);
    free(doc);
    json_decref(ks);
}

/* ---- fota_director_keys_parse ---------------------------------------------- */

static fota_err keys_parse_json(json_t *ks, json_t **ret)
{
    char *text = json_dumps(ks, JSON_COMPACT);
    fota_err err;

    assert_non_null(text);
    err = fota_director_keys_parse((const uint8_t *)text, strlen(text), ret);
    free(text);
    json_decref(ks);
    return err;
}

static void test_keys_parse(void **state)
{
    json_t *out = NULL;
    json_t *sentinel = (json_t *)&out;
    json_t *bad_key;

    (void)state;
    /* good: one key, and two with threshold 2 */
    assert_int_equal(keys_parse_json(json_pack("{s:{s:O},s:i}", "keys", k1.id, k1.obj,
                                               "threshold", 1), &out),
                     FOTA_OK);
    assert_int_equal(json_object_size(out), 2);
    assert_int_equal(json_integer_value(json_object_get(out, "threshold")), 1);
    assert_true(json_equal(json_object_get(json_object_get(out, "keys"), k1.id), k1.obj));
    json_decref(out);
    assert_int_equal(keys_parse_json(json_pack("{s:{s:O,s:O},s:i}", "keys", k1.id, k1.obj,
                                               k2.id, k2.obj, "threshold", 2), &out),
                     FOTA_OK);
    json_decref(out);

    out = sentinel;
    /* a key under another key's id */
    assert_int_equal(keys_parse_json(json_pack("{s:{s:O},s:i}", "keys", k2.id, k1.obj,
                                               "threshold", 1), &out),
                     FOTA_E_KEY);
    /* a key id in upper case is not the key id */
    {
        char upper[FOTA_TUF_KEYID_HEX_LEN + 1];

        for (size_t i = 0; i <= FOTA_TUF_KEYID_HEX_LEN; i++)
            upper[i] = (char)(k1.id[i] >= 'a' && k1.id[i] <= 'f' ? k1.id[i] - 32 : k1.id[i]);
        assert_int_equal(keys_parse_json(json_pack("{s:{s:O},s:i}", "keys", upper, k1.obj,
                                                   "threshold", 1), &out),
                         FOTA_E_KEY);
    }
    /* thresholds */
    assert_int_equal(keys_parse_json(json_pack("{s:{s:O},s:i}", "keys", k1.id, k1.obj,
                                               "threshold", 0), &out),
                     FOTA_E_PARSE);
    assert_int_equal(keys_parse_json(json_pack("{s:{s:O},s:i}", "keys", k1.id, k1.obj,
                                               "threshold", -1), &out),
                     FOTA_E_PARSE);
    assert_int_equal(keys_parse_json(json_pack("{s:{s:O},s:i}", "keys", k1.id, k1.obj,
                                               "threshold", 2), &out),
                     FOTA_E_PARSE);
    assert_int_equal(keys_parse_json(json_pack("{s:{},s:i}", "keys", "threshold", 1), &out),
                     FOTA_E_PARSE);
    assert_int_equal(keys_parse_json(json_pack("{s:{s:O},s:s}", "keys", k1.id, k1.obj,
                                               "threshold", "1"), &out),
                     FOTA_E_PARSE);
    /* unknown or missing fields */
    assert_int_equal(keys_parse_json(json_pack("{s:{s:O},s:i,s:i}", "keys", k1.id, k1.obj,
                                               "threshold", 1, "version", 3), &out),
                     FOTA_E_PARSE);
    assert_int_equal(keys_parse_json(json_pack("{s:{s:O}}", "keys", k1.id, k1.obj), &out),
                     FOTA_E_PARSE);
    assert_int_equal(keys_parse_json(json_pack("{s:[],s:i}", "keys", "threshold", 1), &out),
                     FOTA_E_PARSE);
    /* a key object this device cannot use */
    bad_key = json_pack("{s:s,s:s,s:{s:s}}", "keytype", "ed448", "scheme", "ed448", "keyval",
                        "public", "00");
    {
        char id[FOTA_TUF_KEYID_HEX_LEN + 1];

        assert_int_equal(fota_tuf_keyid(bad_key, id), FOTA_OK);
        assert_int_equal(keys_parse_json(json_pack("{s:{s:o},s:i}", "keys", id, bad_key,
                                                   "threshold", 1), &out),
                         FOTA_E_UNSUPPORTED);
    }
    /* not strict JSON */
    {
        static const char dup[] = "{\"threshold\":1,\"threshold\":1,\"keys\":{}}";
        static const char trail[] = "{\"threshold\":1,\"keys\":{}} x";

        assert_int_equal(fota_director_keys_parse((const uint8_t *)dup, strlen(dup), &out),
                         FOTA_E_DUPLICATE);
        assert_int_equal(fota_director_keys_parse((const uint8_t *)trail, strlen(trail), &out),
                         FOTA_E_PARSE);
        uint8_t *big = malloc(FOTA_DIRECTOR_KEYS_MAX + 1);

        assert_non_null(big);
        memset(big, ' ', FOTA_DIRECTOR_KEYS_MAX + 1);
        memcpy(big, trail, strlen(trail) - 2);
        assert_int_equal(fota_director_keys_parse(big, FOTA_DIRECTOR_KEYS_MAX + 1, &out),
                         FOTA_E_TOO_BIG);
        free(big);
        assert_int_equal(fota_director_keys_parse(NULL, 0, &out), FOTA_E_INVALID);
    }
    assert_ptr_equal(out, sentinel);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_stay_ok),
        cmocka_unit_test(test_install_ok),
        cmocka_unit_test(test_caps),
        cmocka_unit_test(test_signatures),
        cmocka_unit_test(test_threshold),
        cmocka_unit_test(test_binding),
        cmocka_unit_test(test_times),
        cmocka_unit_test(test_shape),
        cmocka_unit_test(test_target_fields),
        cmocka_unit_test(test_non_integer_length),
        cmocka_unit_test(test_bytes),
        cmocka_unit_test(test_keys_parse),
    };

    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
