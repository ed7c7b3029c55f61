/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fota/crypto.h against vectors made by openssl and python-cryptography
 * (tests/vectors, see gen.sh there), and fota's own signatures checked by the
 * openssl command.
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

#include "test_util.h"

#define VEC FOTA_TEST_VECTORS

/* A failure leaves ret_* untouched: the tests check that against this. */
static char untouched_marker;
#define UNTOUCHED_PUB ((fota_pubkey *)(void *)&untouched_marker)
#define UNTOUCHED_PRIV ((fota_privkey *)(void *)&untouched_marker)

/* ---- helpers -------------------------------------------------------------- */

/* Decode a hex file (one line) into a malloc'ed buffer. */
static uint8_t *read_vector_hex(const char *rel, size_t *ret_len)
{
    char *hex = tu_read_vector_line(rel);
    size_t hlen = strlen(hex);
    uint8_t *out = malloc(hlen / 2 + 1);

    assert_non_null(out);
    assert_int_equal(hlen % 2, 0);
    assert_int_equal(fota_hex_decode(hex, hlen, out, hlen / 2), FOTA_OK);
    *ret_len = hlen / 2;
    free(hex);
    return out;
}

struct key_info {
    const char *prefix;
    fota_key_type type;
    const char *keytype;
    const char *scheme;
};

static const struct key_info key_infos[] = {
    { "ed25519", FOTA_KEY_ED25519, "ed25519", "ed25519" },
    { "p256", FOTA_KEY_ECDSA_P256, "ecdsa", "ecdsa-sha2-nistp256" },
    { "rsa", FOTA_KEY_RSA_PSS, "rsa", "rsassa-pss-sha256" },
};

static const struct key_info *key_info_of(const char *name)
{
    for (size_t i = 0; i < TU_ARRAY_LEN(key_infos); i++) {
        if (strncmp(name, key_infos[i].prefix, strlen(key_infos[i].prefix)) == 0) {
            return &key_infos[i];
        }
    }
    fail_msg("no key type for %s", name);
    return NULL;
}

/* The TUF "public" value of key NAME: raw hex for ed25519, PEM otherwise. */
static char *tuf_public_of(const char *name)
{
    char rel[256];
    const struct key_info *ki = key_info_of(name);

    if (ki->type == FOTA_KEY_ED25519) {
        snprintf(rel, sizeof(rel), "keys/%s.pub.raw.hex", name);
        return tu_read_vector_line(rel);
    }
    snprintf(rel, sizeof(rel), "keys/%s.pub.pem", name);
    return tu_read_vector(rel, NULL);
}

static fota_pubkey *pubkey_from_tuf_vec(const char *name)
{
    const struct key_info *ki = key_info_of(name);
    char *pub = tuf_public_of(name);
    fota_pubkey *key = NULL;
    fota_err rc = fota_pubkey_from_tuf(ki->keytype, ki->scheme, pub, &key);

    if (rc != FOTA_OK) {
        fail_msg("fota_pubkey_from_tuf(%s): %s", name, fota_strerror(rc));
    }
    free(pub);
    return key;
}

static fota_pubkey *pubkey_from_raw_vec(const char *name)
{
    char rel[256];
    const struct key_info *ki = key_info_of(name);
    uint8_t *der = NULL;
    size_t len = 0;
    fota_pubkey *key = NULL;
    fota_err rc;

    if (ki->type == FOTA_KEY_ED25519) {
        snprintf(rel, sizeof(rel), "keys/%s.pub.raw.hex", name);
    } else {
        snprintf(rel, sizeof(rel), "keys/%s.pub.der.hex", name);
    }
    der = read_vector_hex(rel, &len);
    rc = fota_pubkey_from_raw(ki->type, der, len, &key);
    if (rc != FOTA_OK) {
        fail_msg("fota_pubkey_from_raw(%s): %s", name, fota_strerror(rc));
    }
    free(der);
    return key;
}

static fota_privkey *privkey_from_vec(const char *rel)
{
    size_t len = 0;
    char *pem = tu_read_vector(rel, &len);
    fota_privkey *key = NULL;
    fota_err rc = fota_privkey_from_pem(pem, len, &key);

    if (rc != FOTA_OK) {
        fail_msg("fota_privkey_from_pem(%s): %s", rel, fota_strerror(rc));
    }
    free(pem);
    return key;
}

/* The 1 MiB message "@lcg1m" of gen.sh. */
static uint8_t *lcg1m(size_t *ret_len)
{
    size_t len = (size_t)1 << 20;
    uint8_t *buf = malloc(len);
    uint32_t x = 1;

    assert_non_null(buf);
    for (size_t i = 0; i < len; i++) {
        x = x * 1103515245u + 12345u;
        buf[i] = (uint8_t)(x >> 24);
    }
    *ret_len = len;
    return buf;
}

/* ---- openssl as an independent verifier ------------------------------------ */

static int have_openssl(void)
{
    static int cached = -1;

    if (cached < 0) {
        cached = tu_run_ok("openssl version >/dev/null 2>&1");
    }
    return cached;
}

/*
 * Ask `openssl pkeyutl -verify` whether sig is valid over msg. key_path is a
 * public key (pubin) or a private key file. RSA-PSS is checked with a salt of
 * exactly 32 bytes, which is what fota_sign promises. Returns 1 when openssl
 * says the signature verifies.
 */
static int openssl_verifies(fota_key_type type, const char *key_path, int pubin,
                            const uint8_t *msg, size_t msg_len,
                            const uint8_t *sig, size_t sig_len)
{
    char dir[] = "/tmp/fota-test-crypto-XXXXXX";
    char msg_path[PATH_MAX], sig_path[PATH_MAX], cmd[3 * PATH_MAX];
    int ok;

    assert_non_null(mkdtemp(dir));
    snprintf(msg_path, sizeof(msg_path), "%s/msg", dir);
    snprintf(sig_path, sizeof(sig_path), "%s/sig", dir);
    tu_write_file(sig_path, sig, sig_len);
    if (type == FOTA_KEY_ED25519) {
        tu_write_file(msg_path, msg, msg_len);
        snprintf(cmd, sizeof(cmd),
                 "openssl pkeyutl -verify %s -inkey '%s' -rawin -in '%s' -sigfile '%s' >/dev/null 2>&1",
                 pubin ? "-pubin" : "", key_path, msg_path, sig_path);
    } else {
        uint8_t digest[FOTA_HASH_MAX_LEN];

        assert_int_equal(fota_hash(FOTA_HASH_SHA256, msg, msg_len, digest), FOTA_OK);
        tu_write_file(msg_path, digest, 32);
        snprintf(cmd, sizeof(cmd),
                 "openssl pkeyutl -verify %s -inkey '%s' -in '%s' -sigfile '%s' -pkeyopt digest:sha256 %s"
                 " >/dev/null 2>&1",
                 pubin ? "-pubin" : "", key_path, msg_path, sig_path,
                 type == FOTA_KEY_RSA_PSS
                     ? "-pkeyopt rsa_padding_mode:pss -pkeyopt rsa_pss_saltlen:32 -pkeyopt rsa_mgf1_md:sha256"
                     : "");
    }
    ok = tu_run_ok(cmd);
    unlink(msg_path);
    unlink(sig_path);
    rmdir(dir);
    return ok;
}

/* ---- signatures made by openssl -------------------------------------------- */

static void test_openssl_signature_vectors(void **state)
{
    struct tu_lines it;
    char *text = tu_lines_of_vector(&it, "signatures.txt");
    unsigned n = 0, failures = 0;

    (void)state;
    for (char *line = tu_lines_next_record(&it); line != NULL; line = tu_lines_next_record(&it)) {
        char *field[4]; /* KEY MSG ok|bad SIGHEX */
        const char *key_name, *msg_name, *sighex;
        char rel[256];
        size_t msg_len = 0, sig_len = 0;
        char *msg;
        uint8_t *sig;
        fota_pubkey *keys[3] = { NULL, NULL, NULL };
        fota_err expect;
        const char *note = strchr(line, '#');

        if (note == NULL) {
            note = "";
        }
        tu_split_fields(line, field, 4, it.lineno);
        key_name = field[0];
        msg_name = field[1];
        sighex = field[3];
        expect = strcmp(field[2], "ok") == 0 ? FOTA_OK : FOTA_E_SIGNATURE;

        snprintf(rel, sizeof(rel), "msg/%s", msg_name);
        msg = tu_read_vector(rel, &msg_len);
        sig_len = strcmp(sighex, "-") == 0 ? 0 : strlen(sighex) / 2;
        sig = malloc(sig_len + 1);
        assert_non_null(sig);
        assert_int_equal(fota_hex_decode(sighex, 2 * sig_len, sig, sig_len), FOTA_OK);

        keys[0] = pubkey_from_tuf_vec(key_name);
        keys[1] = pubkey_from_raw_vec(key_name);
        if (key_info_of(key_name)->type == FOTA_KEY_ECDSA_P256) {
            /* The other keytype spelling TUF allows for the same key. */
            char *pub = tuf_public_of(key_name);

            assert_int_equal(fota_pubkey_from_tuf("ecdsa-sha2-nistp256", "ecdsa-sha2-nistp256", pub, &keys[2]),
                             FOTA_OK);
            free(pub);
        }
        for (int k = 0; k < 3; k++) {
            fota_err rc;

            if (keys[k] == NULL) {
                continue;
            }
            rc = fota_verify(keys[k], (const uint8_t *)msg, msg_len, sig, sig_len);
            if (rc != expect) {
                fprintf(stderr, "signatures.txt: key %s (loaded %s) msg %s: got %s, want %s %s\n", key_name,
                            k == 1 ? "raw" : "from TUF", msg_name, fota_strerror(rc), fota_strerror(expect), note);
                failures++;
            }
            fota_pubkey_free(keys[k]);
        }
        free(sig);
        free(msg);
        n++;
    }
    free(text);
    assert_true(n >= 90);
    assert_int_equal(failures, 0);
}

static void test_pubkey_equal_and_type(void **state)
{
    static const char *names[] = { "ed25519", "ed25519-b", "p256", "p256-b", "rsa2048", "rsa2048-b", "rsa3072" };
    enum { N = TU_ARRAY_LEN(names) };
    fota_pubkey *tuf[N], *raw[N];

    (void)state;
    for (int i = 0; i < N; i++) {
        tuf[i] = pubkey_from_tuf_vec(names[i]);
        raw[i] = pubkey_from_raw_vec(names[i]);
        assert_int_equal(fota_pubkey_type(tuf[i]), key_info_of(names[i])->type);
        assert_int_equal(fota_pubkey_type(raw[i]), key_info_of(names[i])->type);
    }
    for (int i = 0; i < N; i++) {
        for (int j = 0; j < N; j++) {
            int want = (i == j);

            if (fota_pubkey_equal(tuf[i], raw[j]) != want || fota_pubkey_equal(raw[i], tuf[j]) != want) {
                fail_msg("fota_pubkey_equal(%s, %s) != %d", names[i], names[j], want);
            }
        }
    }
    for (int i = 0; i < N; i++) {
        fota_pubkey_free(tuf[i]);
        fota_pubkey_free(raw[i]);
    }
    fota_pubkey_free(NULL);
}

/* ---- keys refused ----------------------------------------------------------- */

struct bad_pub {
    const char *keytype;
    const char *scheme;
    const char *public_file; /* read from tests/vectors, or NULL: use literal */
    const char *literal;
    fota_err want;
};

static void test_bad_public_keys(void **state)
{
    static const struct bad_pub cases[] = {
        /* unknown keytype/scheme pairs, with a public value that is fine for the
         * keytype, so only the pair can be the reason */
        { "ed25519", "ecdsa-sha2-nistp256", "keys/ed25519.pub.raw.hex", NULL, FOTA_E_UNSUPPORTED },
        { "ed25519", "rsassa-pss-sha256", "keys/ed25519.pub.raw.hex", NULL, FOTA_E_UNSUPPORTED },
        { "ed25519", "Ed25519", "keys/ed25519.pub.raw.hex", NULL, FOTA_E_UNSUPPORTED },
        { "Ed25519", "ed25519", "keys/ed25519.pub.raw.hex", NULL, FOTA_E_UNSUPPORTED },
        { "ed25519", "", "keys/ed25519.pub.raw.hex", NULL, FOTA_E_UNSUPPORTED },
        { "", "ed25519", "keys/ed25519.pub.raw.hex", NULL, FOTA_E_UNSUPPORTED },
        { "ecdsa", "ecdsa-sha2-nistp384", "keys/p256.pub.pem", NULL, FOTA_E_UNSUPPORTED },
        { "ecdsa-sha2-nistp384", "ecdsa-sha2-nistp384", "keys/p384.pub.pem", NULL, FOTA_E_UNSUPPORTED },
        { "ecdsa-sha2-nistp384", "ecdsa-sha2-nistp256", "keys/p256.pub.pem", NULL, FOTA_E_UNSUPPORTED },
        { "ecdsa", "ed25519", "keys/p256.pub.pem", NULL, FOTA_E_UNSUPPORTED },
        { "rsa", "rsassa-pss-sha512", "keys/rsa2048.pub.pem", NULL, FOTA_E_UNSUPPORTED },
        { "rsa", "rsa-pkcs1v15-sha256", "keys/rsa2048.pub.pem", NULL, FOTA_E_UNSUPPORTED },
        { "rsa", "rsassa-pss-sha384", "keys/rsa2048.pub.pem", NULL, FOTA_E_UNSUPPORTED },
        { "rsa", "ecdsa-sha2-nistp256", "keys/rsa2048.pub.pem", NULL, FOTA_E_UNSUPPORTED },
        { "RSA", "rsassa-pss-sha256", "keys/rsa2048.pub.pem", NULL, FOTA_E_UNSUPPORTED },
        { "sphincs", "sphincs-shake-128s", NULL, "00", FOTA_E_UNSUPPORTED },
        { "foo", "bar", NULL, "00", FOTA_E_UNSUPPORTED },
        /* malformed public values for a supported pair */
        { "rsa", "rsassa-pss-sha256", "keys/rsa1024.pub.pem", NULL, FOTA_E_KEY },
        { "rsa", "rsassa-pss-sha256", "keys/p256.pub.pem", NULL, FOTA_E_KEY },
        { "rsa", "rsassa-pss-sha256", "keys/ed25519.pub.pem", NULL, FOTA_E_KEY },
        { "rsa", "rsassa-pss-sha256", NULL, "", FOTA_E_KEY },
        { "rsa", "rsassa-pss-sha256", NULL, "-----BEGIN PUBLIC KEY-----\nnot base64 !!\n-----END PUBLIC KEY-----\n",
          FOTA_E_KEY },
        { "rsa", "rsassa-pss-sha256", "keys/rsa2048.key.pem", NULL, FOTA_E_KEY },
        { "ecdsa", "ecdsa-sha2-nistp256", "keys/p384.pub.pem", NULL, FOTA_E_KEY },
        { "ecdsa", "ecdsa-sha2-nistp256", "keys/secp256k1.pub.pem", NULL, FOTA_E_KEY },
        { "ecdsa", "ecdsa-sha2-nistp256", "keys/rsa2048.pub.pem", NULL, FOTA_E_KEY },
        { "ecdsa", "ecdsa-sha2-nistp256", "keys/ed25519.pub.pem", NULL, FOTA_E_KEY },
        { "ecdsa", "ecdsa-sha2-nistp256", "keys/p256.pub.der.hex", NULL, FOTA_E_KEY },
        { "ecdsa", "ecdsa-sha2-nistp256", NULL, "garbage", FOTA_E_KEY },
        { "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp256", "keys/p384.pub.pem", NULL, FOTA_E_KEY },
        { "ed25519", "ed25519", "keys/ed25519.pub.pem", NULL, FOTA_E_KEY },
        { "ed25519", "ed25519", "keys/ed25519.pub.der.hex", NULL, FOTA_E_KEY },
        { "ed25519", "ed25519", NULL, "", FOTA_E_KEY },
        { "ed25519", "ed25519", NULL, "zz73f6dd80fb0e010cec32750b3759d6c3331b4af791256e49254a0351bf5eef", FOTA_E_KEY },
        { "ed25519", "ed25519", NULL, "a373f6dd80fb0e010cec32750b3759d6c3331b4af791256e49254a0351bf5ee", FOTA_E_KEY },
        { "ed25519", "ed25519", NULL, "a373f6dd80fb0e010cec32750b3759d6c3331b4af791256e49254a0351bf5e", FOTA_E_KEY },
        { "ed25519", "ed25519", NULL, "a373f6dd80fb0e010cec32750b3759d6c3331b4af791256e49254a0351bf5eef00",
          FOTA_E_KEY },
        { "ed25519", "ed25519", NULL, " a373f6dd80fb0e010cec32750b3759d6c3331b4af791256e49254a0351bf5eef",
          FOTA_E_KEY },
    };
    unsigned failures = 0;

    (void)state;
    for (size_t i = 0; i < TU_ARRAY_LEN(cases); i++) {
        char *value = cases[i].public_file ? tu_read_vector(cases[i].public_file, NULL) : strdup(cases[i].literal);
        fota_pubkey *key = UNTOUCHED_PUB;
        fota_err rc;

        /* the raw ed25519 hex files end with a newline: that is not hex */
        if (cases[i].public_file != NULL && strstr(cases[i].public_file, ".raw.hex") != NULL) {
            value[strcspn(value, "\n")] = '\0';
        }
        rc = fota_pubkey_from_tuf(cases[i].keytype, cases[i].scheme, value, &key);
        if (rc != cases[i].want || key != UNTOUCHED_PUB) {
            fprintf(stderr, "case %zu (%s, %s, %s): got %s, want %s%s\n", i, cases[i].keytype, cases[i].scheme,
                        cases[i].public_file ? cases[i].public_file : cases[i].literal, fota_strerror(rc),
                        fota_strerror(cases[i].want), key != UNTOUCHED_PUB ? " (and ret_key written)" : "");
            failures++;
            if (rc == FOTA_OK) {
                fota_pubkey_free(key);
            }
        }
        free(value);
    }
    assert_int_equal(failures, 0);
}

static void test_bad_raw_public_keys(void **state)
{
    struct {
        fota_key_type type;
        const char *hex_file;
    } cases[] = {
        { FOTA_KEY_ECDSA_P256, "keys/p384.pub.der.hex" },
        { FOTA_KEY_ECDSA_P256, "keys/secp256k1.pub.der.hex" },
        { FOTA_KEY_ECDSA_P256, "keys/rsa2048.pub.der.hex" },
        { FOTA_KEY_ECDSA_P256, "keys/ed25519.pub.der.hex" },
        { FOTA_KEY_ECDSA_P256, "keys/ed25519.pub.raw.hex" },
        { FOTA_KEY_RSA_PSS, "keys/rsa1024.pub.der.hex" },
        { FOTA_KEY_RSA_PSS, "keys/p256.pub.der.hex" },
        { FOTA_KEY_ED25519, "keys/ed25519.pub.der.hex" },
        { FOTA_KEY_ED25519, "keys/p256.pub.der.hex" },
    };
    unsigned failures = 0;

    (void)state;
    for (size_t i = 0; i < TU_ARRAY_LEN(cases); i++) {
        size_t len = 0;
        uint8_t *der = read_vector_hex(cases[i].hex_file, &len);
        fota_pubkey *key = UNTOUCHED_PUB;
        fota_err rc = fota_pubkey_from_raw(cases[i].type, der, len, &key);

        if (rc != FOTA_E_KEY || key != UNTOUCHED_PUB) {
            fprintf(stderr, "raw %s as type %d: got %s, want key\n", cases[i].hex_file, (int)cases[i].type,
                        fota_strerror(rc));
            failures++;
            if (rc == FOTA_OK) {
                fota_pubkey_free(key);
            }
        }
        /* the same bytes truncated */
        key = UNTOUCHED_PUB;
        rc = fota_pubkey_from_raw(cases[i].type, der, len - 1, &key);
        if (rc != FOTA_E_KEY || key != UNTOUCHED_PUB) {
            fprintf(stderr, "raw %s truncated as type %d: got %s, want key\n", cases[i].hex_file, (int)cases[i].type,
                        fota_strerror(rc));
            failures++;
            if (rc == FOTA_OK) {
                fota_pubkey_free(key);
            }
        }
        free(der);
    }
    /* a DER with a byte appended, and ed25519 of the wrong length */
    {
        size_t len = 0;
        uint8_t *der = read_vector_hex("keys/p256.pub.der.hex", &len);
        uint8_t *longer = calloc(len + 1, 1);
        fota_pubkey *key = UNTOUCHED_PUB;

        assert_non_null(longer);
        memcpy(longer, der, len);
        assert_int_equal(fota_pubkey_from_raw(FOTA_KEY_ECDSA_P256, longer, len + 1, &key), FOTA_E_KEY);
        assert_ptr_equal(key, UNTOUCHED_PUB);
        free(longer);
        free(der);
    }
    for (size_t len = 0; len <= 32 + 1; len++) {
        fota_pubkey *key = UNTOUCHED_PUB;
        uint8_t buf[33] = { 0 };

        if (len == 32) {
            continue;
        }
        if (fota_pubkey_from_raw(FOTA_KEY_ED25519, buf, len, &key) != FOTA_E_KEY || key != UNTOUCHED_PUB) {
            fprintf(stderr, "raw ed25519 of %zu bytes accepted\n", len);
            failures++;
        }
    }
    assert_int_equal(failures, 0);
}

static void test_bad_private_keys(void **state)
{
    static const char *files[] = {
        "keys/rsa1024.key.pem", "keys/p384.key.pem", "keys/secp256k1.key.pem",
        "keys/p256.enc.pem",    "keys/p256.pub.pem", "keys/ed25519.pub.pem",
        "keys/rsa2048.pub.pem", "keys/p256.pub.der.hex",
    };
    static const char *literals[] = {
        "",
        "garbage",
        "-----BEGIN PRIVATE KEY-----\n-----END PRIVATE KEY-----\n",
        "-----BEGIN PRIVATE KEY-----\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\n-----END PRIVATE KEY-----\n",
        "-----BEGIN PRIVATE KEY-----\nnot base64 at all !!\n-----END PRIVATE KEY-----\n",
    };
    unsigned failures = 0;

    (void)state;
    for (size_t i = 0; i < TU_ARRAY_LEN(files) + TU_ARRAY_LEN(literals); i++) {
        int from_file = i < TU_ARRAY_LEN(files);
        const char *what = from_file ? files[i] : literals[i - TU_ARRAY_LEN(files)];
        size_t len = 0;
        char *pem = from_file ? tu_read_vector(what, &len) : strdup(what);
        fota_privkey *key = UNTOUCHED_PRIV;
        fota_err rc;

        if (!from_file) {
            len = strlen(pem);
        }
        rc = fota_privkey_from_pem(pem, len, &key);
        /* an empty buffer may also be refused as a bad argument */
        if ((rc != FOTA_E_KEY && rc != FOTA_E_UNSUPPORTED && !(len == 0 && rc == FOTA_E_INVALID)) ||
            key != UNTOUCHED_PRIV) {
            fprintf(stderr, "fota_privkey_from_pem(%s): got %s, want key or unsupported\n", what, fota_strerror(rc));
            failures++;
            if (rc == FOTA_OK) {
                fota_privkey_free(key);
            }
        }
        free(pem);
    }
    assert_int_equal(failures, 0);
}

/* ---- private keys made by openssl: parse, sign, verify both ways ------------- */

struct priv_case {
    const char *file;
    const char *name; /* the public files keys/NAME.pub.* */
};

static const struct priv_case priv_cases[] = {
    { "keys/ed25519.key.pem", "ed25519" },   { "keys/ed25519-b.key.pem", "ed25519-b" },
    { "keys/p256.key.pem", "p256" },         { "keys/p256-b.key.pem", "p256-b" },
    { "keys/p256.trad.pem", "p256" },        { "keys/rsa2048.key.pem", "rsa2048" },
    { "keys/rsa2048.trad.pem", "rsa2048" }, { "keys/rsa3072.key.pem", "rsa3072" },
};

static void test_openssl_private_keys(void **state)
{
    static const char *msgs[] = { "msg/empty.bin", "msg/abc.txt", "msg/bytes.bin", "msg/canonical.json" };

    (void)state;
    for (size_t i = 0; i < TU_ARRAY_LEN(priv_cases); i++) {
        const struct key_info *ki = key_info_of(priv_cases[i].name);
        fota_privkey *priv = privkey_from_vec(priv_cases[i].file);
        fota_pubkey *pub = pubkey_from_tuf_vec(priv_cases[i].name);
        char *want_public = tuf_public_of(priv_cases[i].name);
        const char *keytype = NULL, *scheme = NULL;
        char *public_value = NULL;
        char pub_path[PATH_MAX];

        assert_int_equal(fota_privkey_type(priv), ki->type);
        assert_int_equal(fota_privkey_public_tuf(priv, &keytype, &scheme, &public_value), FOTA_OK);
        assert_string_equal(keytype, ki->keytype);
        assert_string_equal(scheme, ki->scheme);
        /* byte for byte what openssl wrote: key ids are hashes of this text */
        assert_string_equal(public_value, want_public);
        free(public_value);
        free(want_public);

        snprintf(pub_path, sizeof(pub_path), "%s/keys/%s.pub.pem", VEC, priv_cases[i].name);
        for (size_t m = 0; m < TU_ARRAY_LEN(msgs); m++) {
            size_t msg_len = 0, sig_len = 0;
            char *msg = tu_read_vector(msgs[m], &msg_len);
            uint8_t *sig = NULL;
            fota_err rc = fota_sign(priv, (const uint8_t *)msg, msg_len, &sig, &sig_len);

            if (rc != FOTA_OK) {
                fail_msg("fota_sign(%s, %s): %s", priv_cases[i].file, msgs[m], fota_strerror(rc));
            }
            assert_int_equal(fota_verify(pub, (const uint8_t *)msg, msg_len, sig, sig_len), FOTA_OK);
            /* and not over another message */
            assert_int_equal(fota_verify(pub, (const uint8_t *)"abd", 3, sig, sig_len), FOTA_E_SIGNATURE);
            if (ki->type == FOTA_KEY_RSA_PSS) {
                /* the signature is as long as the modulus */
                assert_int_equal(sig_len, strstr(priv_cases[i].name, "3072") ? 384 : 256);
            }
            if (ki->type == FOTA_KEY_ED25519) {
                assert_int_equal(sig_len, 64);
            }
            /* openssl cannot take an empty -rawin message (3.0) */
            if (have_openssl() && !(ki->type == FOTA_KEY_ED25519 && msg_len == 0)) {
                if (!openssl_verifies(ki->type, pub_path, 1, (const uint8_t *)msg, msg_len, sig, sig_len)) {
                    fail_msg("openssl does not verify fota_sign(%s, %s)", priv_cases[i].file, msgs[m]);
                }
            }
            free(sig);
            free(msg);
        }
        fota_pubkey_free(pub);
        fota_privkey_free(priv);
    }
    fota_privkey_free(NULL);
}

/* ed25519 is deterministic: fota_sign must give openssl's very bytes. */
static void test_ed25519_signature_is_openssl_s(void **state)
{
    struct tu_lines it;
    char *text = tu_lines_of_vector(&it, "signatures.txt");
    unsigned n = 0;

    (void)state;
    for (char *line = tu_lines_next_record(&it); line != NULL; line = tu_lines_next_record(&it)) {
        char *field[4]; /* KEY MSG ok|bad SIGHEX */
        const char *key_name, *msg_name, *sighex;
        char rel[256], *msg;
        size_t msg_len = 0, sig_len = 0;
        uint8_t *sig = NULL;
        char hex[129];
        fota_privkey *priv;

        tu_split_fields(line, field, 4, it.lineno);
        key_name = field[0];
        msg_name = field[1];
        sighex = field[3];
        if (strncmp(key_name, "ed25519", 7) != 0 || strcmp(field[2], "ok") != 0) {
            continue;
        }
        snprintf(rel, sizeof(rel), "keys/%s.key.pem", key_name);
        priv = privkey_from_vec(rel);
        snprintf(rel, sizeof(rel), "msg/%s", msg_name);
        msg = tu_read_vector(rel, &msg_len);
        assert_int_equal(fota_sign(priv, (const uint8_t *)msg, msg_len, &sig, &sig_len), FOTA_OK);
        assert_int_equal(sig_len, 64);
        fota_hex_encode(sig, sig_len, hex);
        if (strcmp(hex, sighex) != 0) {
            fail_msg("ed25519 %s over %s: fota %s, openssl %s", key_name, msg_name, hex, sighex);
        }
        free(sig);
        free(msg);
        fota_privkey_free(priv);
        n++;
    }
    free(text);
    assert_true(n >= 8);
}

static void test_private_key_pem_round_trip(void **state)
{
    char dir[] = "/tmp/fota-test-pem-XXXXXX";
    char path[PATH_MAX], cmd[3 * PATH_MAX];

    (void)state;
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/key.pem", dir);
    for (size_t i = 0; i < TU_ARRAY_LEN(priv_cases); i++) {
        fota_privkey *priv = privkey_from_vec(priv_cases[i].file);
        fota_privkey *again = NULL;
        fota_pubkey *pub = pubkey_from_tuf_vec(priv_cases[i].name);
        char *pem = NULL;
        size_t pem_len = 0;
        uint8_t *sig = NULL;
        size_t sig_len = 0;

        assert_int_equal(fota_privkey_to_pem(priv, &pem, &pem_len), FOTA_OK);
        assert_int_equal(strlen(pem), pem_len);
        assert_non_null(strstr(pem, "-----BEGIN PRIVATE KEY-----"));
        assert_int_equal(fota_privkey_from_pem(pem, pem_len, &again), FOTA_OK);
        assert_int_equal(fota_sign(again, (const uint8_t *)"abc", 3, &sig, &sig_len), FOTA_OK);
        assert_int_equal(fota_verify(pub, (const uint8_t *)"abc", 3, sig, sig_len), FOTA_OK);
        free(sig);

        /* openssl reads what we wrote and finds the same public key */
        if (have_openssl()) {
            char out_path[PATH_MAX];
            char *got = NULL, *want = NULL;

            snprintf(out_path, sizeof(out_path), "%s/pub.pem", dir);
            tu_write_file(path, pem, pem_len);
            snprintf(cmd, sizeof(cmd), "openssl pkey -in '%s' -pubout -out '%s' 2>/dev/null", path, out_path);
            assert_true(tu_run_ok(cmd));
            got = tu_read_file(out_path, NULL);
            snprintf(out_path, sizeof(out_path), "keys/%s.pub.pem", priv_cases[i].name);
            want = tu_read_vector(out_path, NULL);
            assert_string_equal(got, want);
            free(got);
            free(want);
            snprintf(out_path, sizeof(out_path), "%s/pub.pem", dir);
            unlink(out_path);
            unlink(path);
        }
        fota_secret_free(pem, pem_len);
        fota_privkey_free(again);
        fota_privkey_free(priv);
        fota_pubkey_free(pub);
    }
    rmdir(dir);
}

static void test_generated_keys(void **state)
{
    static const fota_key_type types[] = { FOTA_KEY_ED25519, FOTA_KEY_ECDSA_P256, FOTA_KEY_RSA_PSS };
    char dir[] = "/tmp/fota-test-gen-XXXXXX";
    char path[PATH_MAX];

    (void)state;
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/key.pem", dir);
    for (size_t i = 0; i < TU_ARRAY_LEN(types); i++) {
        fota_privkey *priv = NULL, *other = NULL;
        fota_pubkey *pub = NULL, *other_pub = NULL;
        const char *keytype = NULL, *scheme = NULL;
        char *public_value = NULL, *other_value = NULL;
        uint8_t *sig = NULL;
        size_t sig_len = 0;
        char *pem = NULL;
        size_t pem_len = 0;
        const uint8_t msg[] = "firmware 1.2.3";

        assert_int_equal(fota_privkey_generate(types[i], &priv), FOTA_OK);
        assert_int_equal(fota_privkey_generate(types[i], &other), FOTA_OK);
        assert_int_equal(fota_privkey_type(priv), types[i]);
        assert_int_equal(fota_privkey_public_tuf(priv, &keytype, &scheme, &public_value), FOTA_OK);
        assert_int_equal(fota_pubkey_from_tuf(keytype, scheme, public_value, &pub), FOTA_OK);
        assert_int_equal(fota_privkey_public_tuf(other, &keytype, &scheme, &other_value), FOTA_OK);
        assert_int_equal(fota_pubkey_from_tuf(keytype, scheme, other_value, &other_pub), FOTA_OK);
        assert_string_not_equal(public_value, other_value);
        assert_int_equal(fota_pubkey_equal(pub, other_pub), 0);

        assert_int_equal(fota_sign(priv, msg, sizeof(msg), &sig, &sig_len), FOTA_OK);
        assert_int_equal(fota_verify(pub, msg, sizeof(msg), sig, sig_len), FOTA_OK);
        assert_int_equal(fota_verify(other_pub, msg, sizeof(msg), sig, sig_len), FOTA_E_SIGNATURE);
        assert_int_equal(fota_verify(pub, msg, sizeof(msg) - 1, sig, sig_len), FOTA_E_SIGNATURE);
        assert_int_equal(fota_verify(pub, msg, sizeof(msg), sig, sig_len - 1), FOTA_E_SIGNATURE);
        if (types[i] == FOTA_KEY_RSA_PSS) {
            /* a freshly generated RSA key is at least 2048 bits */
            assert_true(sig_len >= 256);
        }
        if (have_openssl()) {
            assert_int_equal(fota_privkey_to_pem(priv, &pem, &pem_len), FOTA_OK);
            tu_write_file(path, pem, pem_len);
            if (!openssl_verifies(types[i], path, 0, msg, sizeof(msg), sig, sig_len)) {
                fail_msg("openssl does not verify a signature by a generated key of type %d", (int)types[i]);
            }
            unlink(path);
            fota_secret_free(pem, pem_len);
        }
        free(sig);
        free(public_value);
        free(other_value);
        fota_pubkey_free(pub);
        fota_pubkey_free(other_pub);
        fota_privkey_free(priv);
        fota_privkey_free(other);
    }
    rmdir(dir);
}

/* ---- digests ------------------------------------------------------------------ */

static void test_digest_vectors(void **state)
{
    static const size_t chunks[] = { 1, 2, 3, 7, 31, 63, 64, 65, 127, 128, 129, 1000, 4093, 65537 };
    struct tu_lines it;
    char *text = tu_lines_of_vector(&it, "digests.txt");
    unsigned n = 0;

    (void)state;
    for (char *line = tu_lines_next_record(&it); line != NULL; line = tu_lines_next_record(&it)) {
        char *field[3]; /* ALG MSG HEX */
        const char *alg_name, *msg_name, *want;
        fota_hash_alg alg;
        uint8_t *msg;
        size_t msg_len = 0;
        uint8_t out[FOTA_HASH_MAX_LEN];
        char hex[2 * FOTA_HASH_MAX_LEN + 1];

        tu_split_fields(line, field, 3, it.lineno);
        alg_name = field[0];
        msg_name = field[1];
        want = field[2];
        assert_int_equal(fota_hash_alg_from_name(alg_name, &alg), FOTA_OK);
        assert_string_equal(fota_hash_alg_name(alg), alg_name);
        assert_int_equal(2 * fota_hash_len(alg), strlen(want));
        if (strcmp(msg_name, "@lcg1m") == 0) {
            msg = lcg1m(&msg_len);
        } else {
            char rel[256];

            snprintf(rel, sizeof(rel), "msg/%s", msg_name);
            msg = (uint8_t *)tu_read_vector(rel, &msg_len);
        }

        memset(out, 0, sizeof(out));
        assert_int_equal(fota_hash(alg, msg, msg_len, out), FOTA_OK);
        fota_hex_encode(out, fota_hash_len(alg), hex);
        if (strcmp(hex, want) != 0) {
            fail_msg("%s(%s): fota %s, openssl %s", alg_name, msg_name, hex, want);
        }

        /* streaming in odd chunk sizes, with empty updates between */
        for (size_t c = 0; c < TU_ARRAY_LEN(chunks); c++) {
            fota_hash_ctx ctx;

            if (msg_len > 100000 && chunks[c] > 1 && chunks[c] < 64) {
                continue; /* the 1 MiB message in tiny chunks once is enough */
            }
            assert_int_equal(fota_hash_init(&ctx, alg), FOTA_OK);
            assert_int_equal(fota_hash_update(&ctx, msg, 0), FOTA_OK);
            for (size_t off = 0; off < msg_len; off += chunks[c]) {
                size_t len = msg_len - off < chunks[c] ? msg_len - off : chunks[c];

                assert_int_equal(fota_hash_update(&ctx, msg + off, len), FOTA_OK);
                if (off % 7 == 0) {
                    assert_int_equal(fota_hash_update(&ctx, msg + off + len, 0), FOTA_OK);
                }
            }
            memset(out, 0, sizeof(out));
            assert_int_equal(fota_hash_final(&ctx, out), FOTA_OK);
            fota_hex_encode(out, fota_hash_len(alg), hex);
            if (strcmp(hex, want) != 0) {
                fail_msg("%s(%s) in chunks of %zu: fota %s, openssl %s", alg_name, msg_name, chunks[c], hex, want);
            }
        }
        free(msg);
        n++;
    }
    free(text);
    assert_int_equal(n, 12);
}

static void test_hash_abort_and_names(void **state)
{
    fota_hash_ctx ctx;
    fota_hash_alg alg = FOTA_HASH_SHA512;
    static const char *bad[] = { "md5", "sha1", "SHA256", "sha-256", "sha256 ", "sha", "", "sha384", "sha3-256" };

    (void)state;
    assert_int_equal(fota_hash_init(&ctx, FOTA_HASH_SHA256), FOTA_OK);
    assert_int_equal(fota_hash_update(&ctx, "abc", 3), FOTA_OK);
    fota_hash_abort(&ctx);

    assert_int_equal(fota_hash_alg_from_name("sha256", &alg), FOTA_OK);
    assert_int_equal(alg, FOTA_HASH_SHA256);
    assert_int_equal(fota_hash_alg_from_name("sha512", &alg), FOTA_OK);
    assert_int_equal(alg, FOTA_HASH_SHA512);
    for (size_t i = 0; i < TU_ARRAY_LEN(bad); i++) {
        alg = (fota_hash_alg)77;
        if (fota_hash_alg_from_name(bad[i], &alg) != FOTA_E_UNSUPPORTED || (int)alg != 77) {
            fail_msg("fota_hash_alg_from_name(\"%s\") not refused as unsupported", bad[i]);
        }
    }
    assert_string_equal(fota_hash_alg_name(FOTA_HASH_SHA256), "sha256");
    assert_string_equal(fota_hash_alg_name(FOTA_HASH_SHA512), "sha512");
    assert_int_equal(fota_hash_len(FOTA_HASH_SHA256), 32);
    assert_int_equal(fota_hash_len(FOTA_HASH_SHA512), 64);
}

/* ---- hex, constant-time compare, wipe ------------------------------------------ */

static void test_hex(void **state)
{
    static const uint8_t bytes[] = { 0x00, 0x01, 0x7f, 0x80, 0xab, 0xcd, 0xef, 0xff };
    char hex[2 * sizeof(bytes) + 1];
    uint8_t out[sizeof(bytes)];
    uint8_t one[1];
    static const char *bad[] = { "0g", "g0", "0 ", " 0", "0x", "+1", "-1", "0G", "\xc3\xbc", ":0", "/0", "@0", "`0" };

    (void)state;
    memset(hex, 'x', sizeof(hex));
    fota_hex_encode(bytes, sizeof(bytes), hex);
    assert_string_equal(hex, "00017f80abcdefff");
    fota_hex_encode(bytes, 0, hex);
    assert_string_equal(hex, "");

    assert_int_equal(fota_hex_decode("00017f80abcdefff", 16, out, sizeof(out)), FOTA_OK);
    assert_memory_equal(out, bytes, sizeof(bytes));
    assert_int_equal(fota_hex_decode("00017F80ABCDEFFF", 16, out, sizeof(out)), FOTA_OK);
    assert_memory_equal(out, bytes, sizeof(bytes));
    assert_int_equal(fota_hex_decode("00017f80AbCdEfFf", 16, out, sizeof(out)), FOTA_OK);
    assert_memory_equal(out, bytes, sizeof(bytes));
    assert_int_equal(fota_hex_decode("", 0, out, 0), FOTA_OK);

    /* odd length, wrong length */
    assert_int_equal(fota_hex_decode("0", 1, one, 1), FOTA_E_PARSE);
    assert_int_equal(fota_hex_decode("001", 3, one, 1), FOTA_E_PARSE);
    assert_int_equal(fota_hex_decode("00017f80abcdeff", 15, out, sizeof(out)), FOTA_E_PARSE);
    assert_int_equal(fota_hex_decode("00017f80abcdef", 14, out, sizeof(out)), FOTA_E_PARSE);
    assert_int_equal(fota_hex_decode("00017f80abcdefff00", 18, out, sizeof(out)), FOTA_E_PARSE);
    assert_int_equal(fota_hex_decode("", 0, one, 1), FOTA_E_PARSE);
    /* a NUL inside the counted length */
    assert_int_equal(fota_hex_decode("0\0", 2, one, 1), FOTA_E_PARSE);
    assert_int_equal(fota_hex_decode("\0\0", 2, one, 1), FOTA_E_PARSE);
    for (size_t i = 0; i < TU_ARRAY_LEN(bad); i++) {
        one[0] = 0x5a;
        if (fota_hex_decode(bad[i], 2, one, 1) != FOTA_E_PARSE) {
            fail_msg("fota_hex_decode(\"%s\") accepted", bad[i]);
        }
    }
    /* every byte value round-trips */
    for (unsigned b = 0; b < 256; b++) {
        uint8_t in = (uint8_t)b, back = 0;
        char h[3];

        fota_hex_encode(&in, 1, h);
        assert_int_equal(fota_hex_decode(h, 2, &back, 1), FOTA_OK);
        assert_int_equal(back, in);
    }
}

static void test_ct_equal(void **state)
{
    uint8_t a[64], b[64];

    (void)state;
    for (size_t i = 0; i < sizeof(a); i++) {
        a[i] = (uint8_t)(i * 7);
        b[i] = (uint8_t)(i * 7);
    }
    assert_int_equal(fota_ct_equal(a, b, sizeof(a)), 1);
    assert_int_equal(fota_ct_equal(a, b, 0), 1);
    for (size_t i = 0; i < sizeof(a); i++) {
        for (unsigned bit = 0; bit < 8; bit++) {
            b[i] ^= (uint8_t)(1u << bit);
            if (fota_ct_equal(a, b, sizeof(a)) != 0) {
                fail_msg("fota_ct_equal misses a flip of bit %u of byte %zu", bit, i);
            }
            /* a prefix that stops before the difference is equal */
            assert_int_equal(fota_ct_equal(a, b, i), 1);
            b[i] ^= (uint8_t)(1u << bit);
        }
    }
}

static void test_wipe(void **state)
{
    uint8_t buf[33];
    uint8_t *secret = malloc(16);

    (void)state;
    memset(buf, 0xa5, sizeof(buf));
    fota_wipe(buf, sizeof(buf) - 1);
    for (size_t i = 0; i < sizeof(buf) - 1; i++) {
        assert_int_equal(buf[i], 0);
    }
    assert_int_equal(buf[sizeof(buf) - 1], 0xa5);
    fota_wipe(buf, 0);
    assert_non_null(secret);
    memset(secret, 0x5a, 16);
    fota_secret_free(secret, 16);
    fota_secret_free(NULL, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_openssl_signature_vectors),
        cmocka_unit_test(test_pubkey_equal_and_type),
        cmocka_unit_test(test_bad_public_keys),
        cmocka_unit_test(test_bad_raw_public_keys),
        cmocka_unit_test(test_bad_private_keys),
        cmocka_unit_test(test_openssl_private_keys),
        cmocka_unit_test(test_ed25519_signature_is_openssl_s),
        cmocka_unit_test(test_private_key_pem_round_trip),
        cmocka_unit_test(test_generated_keys),
        cmocka_unit_test(test_digest_vectors),
        cmocka_unit_test(test_hash_abort_and_names),
        cmocka_unit_test(test_hex),
        cmocka_unit_test(test_ct_equal),
        cmocka_unit_test(test_wipe),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
