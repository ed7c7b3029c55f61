/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ports/posix/keyfile.c: public keys from a TUF key object (.pub JSON), a PEM
 * public key and a PEM private key, for ed25519, ECDSA P-256 and RSA; private
 * keys from PEM. The keys are the openssl-made ones of tests/vectors/keys (and
 * the securesystemslib key objects of tests/vectors/tuf_keys.json); every
 * form of one key must give the same key, whose image key id must be the
 * SHA-256 of the DER openssl wrote. Broken, empty, oversized and non-regular
 * files must fail with the documented reason and leave *ret_key alone.
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
#include <sys/stat.h>
#include <unistd.h>

#include "fota/crypto.h"
#include "fota/error.h"
#include "fota/json.h"
#include "keyfile.h"

#include "test_util.h"

static char g_dir[64];

static int group_setup(void **state)
{
    (void)state;
    snprintf(g_dir, sizeof(g_dir), "/tmp/fota-test-keyfile-XXXXXX");
    return mkdtemp(g_dir) != NULL ? 0 : -1;
}

static int group_teardown(void **state)
{
    char cmd[128];

    (void)state;
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", g_dir);
    return tu_run_ok(cmd) ? 0 : -1;
}

/* g_dir/name, in a static buffer (one at a time). */
static const char *tmp_path(const char *name)
{
    static char path[PATH_MAX];
    int n = snprintf(path, sizeof(path), "%s/%s", g_dir, name);

    assert_true(n > 0 && (size_t)n < sizeof(path));
    return path;
}

static const char *vector_path(const char *rel)
{
    static char path[PATH_MAX];
    int n = snprintf(path, sizeof(path), "%s/%s", FOTA_TEST_VECTORS, rel);

    assert_true(n > 0 && (size_t)n < sizeof(path));
    return path;
}

static const char *write_tmp(const char *name, const void *data, size_t len)
{
    const char *path = tmp_path(name);

    tu_write_file(path, data, len);
    return path;
}

/* A fake pointer: a failing loader must leave *ret_key as it was. */
#define UNTOUCHED ((fota_pubkey *)(uintptr_t)0x5a5a)
#define UNTOUCHED_PRIV ((fota_privkey *)(uintptr_t)0x5a5a)

static fota_err load_pub(const char *path, fota_pubkey **ret)
{
    *ret = UNTOUCHED;
    return fota_keyfile_load_pubkey(path, ret);
}

static fota_pubkey *must_load(const char *path)
{
    fota_pubkey *k = NULL;
    fota_err err = load_pub(path, &k);

    if (err != FOTA_OK) {
        fail_msg("%s: %s", path, fota_strerror(err));
    }
    assert_non_null(k);
    assert_true(k != UNTOUCHED);
    return k;
}

static void expect_pub_error(const char *path, fota_err want)
{
    fota_pubkey *k = NULL;
    fota_err err = load_pub(path, &k);

    if (err != want) {
        fail_msg("%s: got %s, want %s", path, fota_strerror(err), fota_strerror(want));
    }
    assert_ptr_equal(k, UNTOUCHED);
}

/* Any failure at all (the crypto layer decides between KEY and UNSUPPORTED). */
static void expect_pub_refused(const char *path)
{
    fota_pubkey *k = NULL;
    fota_err err = load_pub(path, &k);

    if (err == FOTA_OK) {
        fota_pubkey_free(k);
        fail_msg("%s: loaded, want an error", path);
    }
    assert_ptr_equal(k, UNTOUCHED);
}

/* The key object tuf_keys.json lists under name, written to a .pub file;
 * prefix goes before it (white space a loader must skip). */
static const char *write_pub_json(const char *name, const char *prefix, const char *file)
{
    size_t len = 0;
    char *text = tu_read_vector("tuf_keys.json", &len);
    json_t *root = NULL;
    const char *keyid;
    json_t *obj;
    char *dump;
    char *out;
    const char *path;

    assert_int_equal(fota_json_parse((const uint8_t *)text, len, TU_MAX_FILE, 16, &root),
                     FOTA_OK);
    keyid = json_string_value(json_object_get(json_object_get(root, "keyids"), name));
    assert_non_null(keyid);
    obj = json_object_get(json_object_get(root, "keys"), keyid);
    assert_non_null(obj);
    dump = json_dumps(obj, JSON_SORT_KEYS | JSON_INDENT(2));
    assert_non_null(dump);
    out = malloc(strlen(prefix) + strlen(dump) + 1);
    assert_non_null(out);
    memcpy(out, prefix, strlen(prefix));
    memcpy(out + strlen(prefix), dump, strlen(dump) + 1);
    path = write_tmp(file, out, strlen(out));
    free(out);
    free(dump);
    json_decref(root);
    free(text);
    return path;
}

/* SHA-256 of the DER in keys/<name>.pub.der.hex (written by openssl). */
static void openssl_image_id(const char *name, uint8_t id[32])
{
    char rel[128];
    char *hex;
    uint8_t der[2048];
    size_t n;
    fota_sha256 sha;

    snprintf(rel, sizeof(rel), "keys/%s.pub.der.hex", name);
    hex = tu_read_vector_line(rel);
    n = strlen(hex) / 2;
    assert_true(n > 0 && n <= sizeof(der));
    assert_int_equal(fota_hex_decode(hex, strlen(hex), der, n), FOTA_OK);
    fota_sha256_init(&sha);
    fota_sha256_update(&sha, der, n);
    fota_sha256_final(&sha, id);
    free(hex);
}

/* ---- every form of one key is the same key -------------------------------- */

struct key_case {
    const char *name;       /* tests/vectors/keys/<name>.* and tuf_keys.json */
    fota_key_type type;
    const char *trad;       /* traditional private PEM, or NULL */
    const char *alt_json;   /* another tuf_keys.json object of the key, or NULL */
};

static const struct key_case key_cases[] = {
    {"ed25519", FOTA_KEY_ED25519, NULL, NULL},
    {"p256", FOTA_KEY_ECDSA_P256, "keys/p256.trad.pem", "p256-alt"},
    {"rsa2048", FOTA_KEY_RSA_PSS, "keys/rsa2048.trad.pem", NULL},
};

static void check_key_forms(const struct key_case *c)
{
    char rel[128];
    fota_pubkey *forms[6];
    size_t n = 0;
    uint8_t want_id[32];
    uint8_t id[32];

    snprintf(rel, sizeof(rel), "keys/%s.pub.pem", c->name);
    forms[n++] = must_load(vector_path(rel));
    snprintf(rel, sizeof(rel), "keys/%s.key.pem", c->name);
    forms[n++] = must_load(vector_path(rel));
    forms[n++] = must_load(write_pub_json(c->name, "", "compact.pub"));
    /* A .pub file that starts with white space is still a key object. */
    forms[n++] = must_load(write_pub_json(c->name, "\n \t\r\n", "spaced.pub"));
    if (c->trad != NULL) {
        forms[n++] = must_load(vector_path(c->trad));
    }
    if (c->alt_json != NULL) {
        forms[n++] = must_load(write_pub_json(c->alt_json, "", "alt.pub"));
    }
    openssl_image_id(c->name, want_id);
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(fota_pubkey_type(forms[i]), c->type);
        if (!fota_pubkey_equal(forms[0], forms[i])) {
            fail_msg("%s: form %zu is another key", c->name, i);
        }
        assert_int_equal(fota_pubkey_image_id(forms[i], id), FOTA_OK);
        assert_memory_equal(id, want_id, 32);
    }
    for (size_t i = 0; i < n; i++) {
        fota_pubkey_free(forms[i]);
    }
}

static void test_ed25519_forms(void **state)
{
    (void)state;
    check_key_forms(&key_cases[0]);
}

static void test_p256_forms(void **state)
{
    (void)state;
    check_key_forms(&key_cases[1]);
}

static void test_rsa_forms(void **state)
{
    (void)state;
    check_key_forms(&key_cases[2]);
}

/* Regression: an ECDSA or RSA key object carries "-----BEGIN PUBLIC KEY-----"
 * inside its keyval. It was taken for a PEM file and refused (FOTA_E_PARSE),
 * so fota-boot could not trust the .pub file `fota key new` writes for them. */
static void test_key_object_holding_pem_is_json(void **state)
{
    static const char *const names[] = {"p256", "rsa2048"};

    (void)state;
    for (size_t i = 0; i < TU_ARRAY_LEN(names); i++) {
        fota_pubkey *k = must_load(write_pub_json(names[i], "", "pem-inside.pub"));

        fota_pubkey_free(k);
    }
}

static void test_distinct_keys_differ(void **state)
{
    fota_pubkey *a;
    fota_pubkey *b;

    (void)state;
    a = must_load(vector_path("keys/ed25519.pub.pem"));
    b = must_load(vector_path("keys/ed25519-b.pub.pem"));
    assert_false(fota_pubkey_equal(a, b));
    fota_pubkey_free(b);
    b = must_load(vector_path("keys/p256-b.key.pem"));
    assert_false(fota_pubkey_equal(a, b));
    fota_pubkey_free(b);
    fota_pubkey_free(a);
}

/* Keys libfota does not take, in every form openssl wrote them. */
static void test_unsupported_keys_refused(void **state)
{
    static const char *const refused[] = {
        "keys/p384.pub.pem",      "keys/p384.key.pem",      "keys/secp256k1.pub.pem",
        "keys/secp256k1.key.pem", "keys/rsa1024.pub.pem",   "keys/rsa1024.key.pem",
        "keys/p256.enc.pem",      /* encrypted: no password is taken */
    };

    (void)state;
    for (size_t i = 0; i < TU_ARRAY_LEN(refused); i++) {
        expect_pub_refused(vector_path(refused[i]));
    }
}

/* ---- files that are not keys ---------------------------------------------- */

static void test_garbage_refused(void **state)
{
    static const char *const texts[] = {
        "hello, world\n",
        "[1, 2, 3]\n",                                          /* JSON, not an object */
        "{\"keytype\": \"ed25519\"}\n",                         /* object without the rest */
        "{\"keytype\": \"ed25519\", \"scheme\": \"ed25519\",",   /* cut short */
        "-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEA\n",       /* no END line */
        "-----BEGIN PUBLIC KEY-----\n!!!!\n-----END PUBLIC KEY-----\n",
        "-----BEGIN PUBLIC KEY-----\nMCow=BQ\n-----END PUBLIC KEY-----\n",  /* data after '=' */
        "-----BEGIN PUBLIC KEY-----\n-----END PUBLIC KEY-----\n",           /* empty body */
        "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
        "   \n\t\n",
    };
    uint8_t bin[512];
    char name[32];

    (void)state;
    for (size_t i = 0; i < TU_ARRAY_LEN(texts); i++) {
        fota_pubkey *k = NULL;
        fota_err err;

        snprintf(name, sizeof(name), "garbage-%zu", i);
        err = load_pub(write_tmp(name, texts[i], strlen(texts[i])), &k);
        if (err == FOTA_OK) {
            fota_pubkey_free(k);
            fail_msg("text %zu loaded as a key", i);
        }
        assert_ptr_equal(k, UNTOUCHED);
    }
    for (size_t i = 0; i < sizeof(bin); i++) {
        bin[i] = (uint8_t)(i * 151u + 7u);
    }
    expect_pub_error(write_tmp("binary", bin, sizeof(bin)), FOTA_E_PARSE);
    expect_pub_error(write_tmp("hello", texts[0], strlen(texts[0])), FOTA_E_PARSE);
    expect_pub_error(write_tmp("array", texts[1], strlen(texts[1])), FOTA_E_PARSE);
}

/* A PEM public key whose DER is longer than any key we take (the decoder's
 * 1 KiB buffer) is refused, not overrun. */
static void test_pem_body_too_long(void **state)
{
    static const char begin[] = "-----BEGIN PUBLIC KEY-----\n";
    static const char end[] = "-----END PUBLIC KEY-----\n";
    size_t body = 4000;
    char *text = malloc(sizeof(begin) + body + sizeof(end));

    (void)state;
    assert_non_null(text);
    memcpy(text, begin, sizeof(begin) - 1);
    for (size_t i = 0; i < body; i++) {
        text[sizeof(begin) - 1 + i] = (i % 65 == 64) ? '\n' : 'A';
    }
    memcpy(text + sizeof(begin) - 1 + body, end, sizeof(end));
    expect_pub_error(write_tmp("long.pem", text, strlen(text)), FOTA_E_PARSE);
    free(text);
}

/* An Ed25519 SPKI whose key is a byte short is no Ed25519 key. */
static void test_pem_ed25519_short(void **state)
{
    /* 302a300506032b6570032100 + 31 bytes: base64 of a 43-byte DER */
    static const uint8_t der_prefix[12] = {0x30, 0x2a, 0x30, 0x05, 0x06, 0x03,
                                           0x2b, 0x65, 0x70, 0x03, 0x21, 0x00};
    static const char b64[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    uint8_t der[43];
    char text[256];
    size_t at;

    (void)state;
    memcpy(der, der_prefix, sizeof(der_prefix));
    for (size_t i = sizeof(der_prefix); i < sizeof(der); i++) {
        der[i] = (uint8_t)i;
    }
    at = (size_t)snprintf(text, sizeof(text), "-----BEGIN PUBLIC KEY-----\n");
    for (size_t i = 0; i < sizeof(der); i += 3) {
        uint32_t v = (uint32_t)der[i] << 16;
        size_t left = sizeof(der) - i;

        if (left > 1) {
            v |= (uint32_t)der[i + 1] << 8;
        }
        if (left > 2) {
            v |= der[i + 2];
        }
        text[at++] = b64[(v >> 18) & 63];
        text[at++] = b64[(v >> 12) & 63];
        text[at++] = left > 1 ? b64[(v >> 6) & 63] : '=';
        text[at++] = left > 2 ? b64[v & 63] : '=';
    }
    snprintf(text + at, sizeof(text) - at, "\n-----END PUBLIC KEY-----\n");
    expect_pub_refused(write_tmp("short-ed25519.pem", text, strlen(text)));
}

static void test_empty_file(void **state)
{
    (void)state;
    expect_pub_error(write_tmp("empty", "", 0), FOTA_E_PARSE);
}

/* FOTA_KEYFILE_MAX bytes load; one more is FOTA_E_LENGTH, before parsing. */
static void test_size_cap(void **state)
{
    size_t pem_len = 0;
    char *pem = tu_read_vector("keys/p256.pub.pem", &pem_len);
    char *buf = malloc(FOTA_KEYFILE_MAX + 1);
    fota_pubkey *k;

    (void)state;
    assert_non_null(buf);
    assert_true(pem_len < FOTA_KEYFILE_MAX);
    memcpy(buf, pem, pem_len);
    memset(buf + pem_len, '\n', FOTA_KEYFILE_MAX + 1 - pem_len);
    k = must_load(write_tmp("at-cap.pem", buf, FOTA_KEYFILE_MAX));
    fota_pubkey_free(k);
    expect_pub_error(write_tmp("over-cap.pem", buf, FOTA_KEYFILE_MAX + 1), FOTA_E_LENGTH);
    free(buf);
    free(pem);
}

static void test_not_a_regular_file(void **state)
{
    const char *dir = tmp_path("a-directory");
    fota_privkey *priv = UNTOUCHED_PRIV;

    (void)state;
    assert_int_equal(mkdir(dir, 0700), 0);
    expect_pub_error(dir, FOTA_E_IO);
    assert_int_equal(fota_keyfile_load_privkey(dir, &priv), FOTA_E_IO);
    assert_ptr_equal(priv, UNTOUCHED_PRIV);
    expect_pub_error(tmp_path("no-such-file"), FOTA_E_NOT_FOUND);
    assert_int_equal(fota_keyfile_load_privkey(tmp_path("no-such-file"), &priv),
                     FOTA_E_NOT_FOUND);
    assert_ptr_equal(priv, UNTOUCHED_PRIV);
}

static void test_bad_arguments(void **state)
{
    fota_pubkey *k = UNTOUCHED;
    fota_privkey *p = UNTOUCHED_PRIV;

    (void)state;
    assert_int_equal(fota_keyfile_load_pubkey(NULL, &k), FOTA_E_INVALID);
    assert_int_equal(fota_keyfile_load_pubkey(vector_path("keys/ed25519.pub.pem"), NULL),
                     FOTA_E_INVALID);
    assert_int_equal(fota_keyfile_load_privkey(NULL, &p), FOTA_E_INVALID);
    assert_int_equal(fota_keyfile_load_privkey(vector_path("keys/ed25519.key.pem"), NULL),
                     FOTA_E_INVALID);
    assert_ptr_equal(k, UNTOUCHED);
    assert_ptr_equal(p, UNTOUCHED_PRIV);
}

/* ---- private keys ---------------------------------------------------------- */

/* A private key loads, and what it signs verifies under the public key the
 * other loader reads from openssl's public PEM. */
static void test_privkey_signs_for_its_public_key(void **state)
{
    static const char *const names[] = {"ed25519", "p256"};
    uint8_t digest[32];

    (void)state;
    memset(digest, 0x3c, sizeof(digest));
    for (size_t i = 0; i < TU_ARRAY_LEN(names); i++) {
        char rel[128];
        fota_privkey *priv = NULL;
        fota_pubkey *pub;
        uint8_t *sig = NULL;
        size_t sig_len = 0;

        snprintf(rel, sizeof(rel), "keys/%s.key.pem", names[i]);
        assert_int_equal(fota_keyfile_load_privkey(vector_path(rel), &priv), FOTA_OK);
        assert_non_null(priv);
        snprintf(rel, sizeof(rel), "keys/%s.pub.pem", names[i]);
        pub = must_load(vector_path(rel));
        assert_int_equal(fota_privkey_type(priv), fota_pubkey_type(pub));
        assert_int_equal(fota_sign_digest(priv, digest, &sig, &sig_len), FOTA_OK);
        assert_int_equal(fota_verify_digest(pub, digest, sig, sig_len), FOTA_OK);
        free(sig);
        fota_pubkey_free(pub);
        fota_privkey_free(priv);
    }
}

static void test_privkey_forms(void **state)
{
    static const char *const ok[] = {"keys/rsa2048.key.pem", "keys/rsa2048.trad.pem",
                                     "keys/p256.trad.pem"};
    static const char *const refused[] = {"keys/ed25519.pub.pem", "keys/p256.enc.pem",
                                          "keys/p384.key.pem"};

    (void)state;
    for (size_t i = 0; i < TU_ARRAY_LEN(ok); i++) {
        fota_privkey *priv = NULL;

        if (fota_keyfile_load_privkey(vector_path(ok[i]), &priv) != FOTA_OK) {
            fail_msg("%s: not loaded", ok[i]);
        }
        fota_privkey_free(priv);
    }
    for (size_t i = 0; i < TU_ARRAY_LEN(refused); i++) {
        fota_privkey *priv = UNTOUCHED_PRIV;

        if (fota_keyfile_load_privkey(vector_path(refused[i]), &priv) == FOTA_OK) {
            fota_privkey_free(priv);
            fail_msg("%s: loaded as a private key", refused[i]);
        }
        assert_ptr_equal(priv, UNTOUCHED_PRIV);
    }
    {
        fota_privkey *priv = UNTOUCHED_PRIV;
        char *big = malloc(FOTA_KEYFILE_MAX + 1);

        assert_non_null(big);
        memset(big, '\n', FOTA_KEYFILE_MAX + 1);
        assert_int_equal(fota_keyfile_load_privkey(write_tmp("big.key", big,
                                                             FOTA_KEYFILE_MAX + 1), &priv),
                         FOTA_E_LENGTH);
        assert_ptr_equal(priv, UNTOUCHED_PRIV);
        free(big);
    }
}

/* ---- the trusted keys of an image verifier --------------------------------- */

static void expect_image_keys_error(const char *const *paths, size_t n, fota_err want,
                                    size_t want_failed)
{
    struct fota_image_key keys[4];
    size_t failed = 999;
    static const uint8_t zero[sizeof(keys)];

    assert_true(n <= TU_ARRAY_LEN(keys));
    memset(keys, 0x5a, sizeof(keys));
    assert_int_equal(fota_keyfile_load_image_keys(paths, n, keys, &failed), want);
    assert_int_equal(failed, want_failed);
    /* nothing stays allocated, nothing half-filled is handed out */
    assert_memory_equal(keys, zero, n * sizeof(keys[0]));
}

/* The path helpers return static buffers: copy each into its own. */
static void set_path(char paths[][PATH_MAX], size_t i, const char *path)
{
    snprintf(paths[i], PATH_MAX, "%s", path);
}

static const char *const *path_list(char paths[][PATH_MAX], size_t n)
{
    static const char *list[4];

    assert_true(n <= TU_ARRAY_LEN(list));
    for (size_t i = 0; i < n; i++) {
        list[i] = paths[i];
    }
    return list;
}

static void test_image_keys(void **state)
{
    struct fota_image_key keys[3];
    char paths[3][PATH_MAX];
    uint8_t want[32];
    size_t failed = 999;

    (void)state;
    set_path(paths, 0, vector_path("keys/ed25519.pub.pem"));
    set_path(paths, 1, write_pub_json("p256", "", "image-p256.pub"));
    set_path(paths, 2, vector_path("keys/ed25519-b.key.pem"));
    assert_int_equal(fota_keyfile_load_image_keys(path_list(paths, 3), 3, keys, &failed),
                     FOTA_OK);
    assert_int_equal(failed, 999);
    openssl_image_id("ed25519", want);
    assert_memory_equal(keys[0].id, want, 32);
    openssl_image_id("p256", want);
    assert_memory_equal(keys[1].id, want, 32);
    openssl_image_id("ed25519-b", want);
    assert_memory_equal(keys[2].id, want, 32);
    assert_int_equal(fota_pubkey_type(keys[1].key), FOTA_KEY_ECDSA_P256);
    fota_keyfile_free_image_keys(keys, 3);
    assert_null(keys[0].key);
    assert_int_equal(fota_keyfile_load_image_keys(NULL, 0, NULL, NULL), FOTA_OK);
    assert_int_equal(fota_keyfile_load_image_keys(NULL, 1, keys, NULL), FOTA_E_INVALID);
    fota_keyfile_free_image_keys(NULL, 3);
}

static void test_image_keys_refused(void **state)
{
    char paths[3][PATH_MAX];

    (void)state;
    /* the same key in two forms; and P-256 under both its TUF keytypes,
     * two TUF key ids but one image key */
    set_path(paths, 0, vector_path("keys/ed25519.pub.pem"));
    set_path(paths, 1, vector_path("keys/ed25519.key.pem"));
    expect_image_keys_error(path_list(paths, 2), 2, FOTA_E_DUPLICATE, 1);
    set_path(paths, 0, vector_path("keys/p256.pub.pem"));
    set_path(paths, 1, write_pub_json("p256", "", "dup-a.pub"));
    expect_image_keys_error(path_list(paths, 2), 2, FOTA_E_DUPLICATE, 1);
    set_path(paths, 1, write_pub_json("p256-alt", "", "dup-b.pub"));
    expect_image_keys_error(path_list(paths, 2), 2, FOTA_E_DUPLICATE, 1);
    /* RSA: no image carries an RSA signature */
    set_path(paths, 0, vector_path("keys/ed25519.pub.pem"));
    set_path(paths, 1, vector_path("keys/p256.pub.pem"));
    set_path(paths, 2, vector_path("keys/rsa2048.pub.pem"));
    expect_image_keys_error(path_list(paths, 3), 3, FOTA_E_UNSUPPORTED, 2);
    set_path(paths, 2, tmp_path("no-such-key"));
    expect_image_keys_error(path_list(paths, 3), 3, FOTA_E_NOT_FOUND, 2);
    set_path(paths, 0, write_tmp("junk.pub", "junk", 4));
    expect_image_keys_error(path_list(paths, 3), 3, FOTA_E_PARSE, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ed25519_forms),
        cmocka_unit_test(test_p256_forms),
        cmocka_unit_test(test_rsa_forms),
        cmocka_unit_test(test_key_object_holding_pem_is_json),
        cmocka_unit_test(test_distinct_keys_differ),
        cmocka_unit_test(test_unsupported_keys_refused),
        cmocka_unit_test(test_garbage_refused),
        cmocka_unit_test(test_pem_body_too_long),
        cmocka_unit_test(test_pem_ed25519_short),
        cmocka_unit_test(test_empty_file),
        cmocka_unit_test(test_size_cap),
        cmocka_unit_test(test_not_a_regular_file),
        cmocka_unit_test(test_bad_arguments),
        cmocka_unit_test(test_privkey_signs_for_its_public_key),
        cmocka_unit_test(test_privkey_forms),
        cmocka_unit_test(test_image_keys),
        cmocka_unit_test(test_image_keys_refused),
    };

    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
