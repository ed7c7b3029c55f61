/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The crypto interface (include/fota/crypto.h) on OpenSSL 3 libcrypto.
 * Everything OpenSSL-specific stays in this file so that another backend
 * (mbedTLS/PSA on a microcontroller) can replace it whole.
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "fota/crypto.h"

/* Public keys read from metadata are capped well above any real PEM key. */
#define PUBLIC_VALUE_MAX 8192
#define RSA_MIN_BITS 2048
#define ED25519_KEY_LEN 32
#define ED25519_SIG_LEN 64

struct fota_pubkey {
    fota_key_type type;
    EVP_PKEY *pkey;
    uint8_t *id;       /* raw key (ed25519) or DER SubjectPublicKeyInfo: compared by fota_pubkey_equal */
    size_t id_len;
};

struct fota_privkey {
    fota_key_type type;
    EVP_PKEY *pkey;
};

static fota_err key_type_of(const EVP_PKEY *pkey, fota_key_type *ret_type)
{
    if (EVP_PKEY_is_a(pkey, "ED25519")) {
        *ret_type = FOTA_KEY_ED25519;
        return FOTA_OK;
    }
    if (EVP_PKEY_is_a(pkey, "EC")) {
        char group[64];
        size_t glen = 0;

        if (EVP_PKEY_get_utf8_string_param(pkey, OSSL_PKEY_PARAM_GROUP_NAME, group,
                                           sizeof(group), &glen) != 1)
            return FOTA_E_KEY;
        if (strcmp(group, "prime256v1") != 0 && strcmp(group, "P-256") != 0)
            return FOTA_E_UNSUPPORTED;
        *ret_type = FOTA_KEY_ECDSA_P256;
        return FOTA_OK;
    }
    if (EVP_PKEY_is_a(pkey, "RSA")) {
        if (EVP_PKEY_get_bits(pkey) < RSA_MIN_BITS)
            return FOTA_E_KEY;
        *ret_type = FOTA_KEY_RSA_PSS;
        return FOTA_OK;
    }
    return FOTA_E_UNSUPPORTED;
}

/* Wrap pkey (ownership taken, also on failure). */
static fota_err pubkey_wrap(EVP_PKEY *pkey, fota_key_type expect, fota_pubkey **ret_key)
{
    fota_pubkey *k = NULL;
    fota_key_type type;
    /* The keytype/scheme pair was accepted already: whatever is wrong now
     * (another curve, a short RSA modulus) is wrong with the key itself. */
    fota_err err = key_type_of(pkey, &type) == FOTA_OK ? FOTA_OK : FOTA_E_KEY;

    if (err != FOTA_OK)
        goto out;
    if (type != expect) {
        err = FOTA_E_KEY;
        goto out;
    }
    k = calloc(1, sizeof(*k));
    if (k == NULL) {
        err = FOTA_E_NOMEM;
        goto out;
    }
    k->type = type;
    if (type == FOTA_KEY_ED25519) {
        k->id_len = ED25519_KEY_LEN;
        k->id = malloc(k->id_len);
        if (k->id == NULL) {
            err = FOTA_E_NOMEM;
            goto out;
        }
        if (EVP_PKEY_get_raw_public_key(pkey, k->id, &k->id_len) != 1) {
            err = FOTA_E_KEY;
            goto out;
        }
    } else {
        unsigned char *der = NULL;
        int len = i2d_PUBKEY(pkey, &der);
        if (len <= 0) {
            err = FOTA_E_KEY;
            goto out;
        }
        k->id = malloc((size_t)len);
        if (k->id == NULL) {
            OPENSSL_free(der);
            err = FOTA_E_NOMEM;
            goto out;
        }
        memcpy(k->id, der, (size_t)len);
        k->id_len = (size_t)len;
        OPENSSL_free(der);
    }
    k->pkey = pkey;
    pkey = NULL;
    *ret_key = k;
    k = NULL;
out:
    EVP_PKEY_free(pkey);
    if (k != NULL) {
        free(k->id);
        free(k);
    }
    return err;
}

static fota_err scheme_to_type(const char *keytype, const char *scheme, fota_key_type *ret_type)
{
    if (strcmp(keytype, "ed25519") == 0 && strcmp(scheme, "ed25519") == 0) {
        *ret_type = FOTA_KEY_ED25519;
        return FOTA_OK;
    }
    if ((strcmp(keytype, "ecdsa") == 0 || strcmp(keytype, "ecdsa-sha2-nistp256") == 0) &&
        strcmp(scheme, "ecdsa-sha2-nistp256") == 0) {
        *ret_type = FOTA_KEY_ECDSA_P256;
        return FOTA_OK;
    }
    if (strcmp(keytype, "rsa") == 0 && strcmp(scheme, "rsassa-pss-sha256") == 0) {
        *ret_type = FOTA_KEY_RSA_PSS;
        return FOTA_OK;
    }
    return FOTA_E_UNSUPPORTED;
}

fota_err fota_pubkey_from_tuf(const char *keytype, const char *scheme,
                              const char *public_value, fota_pubkey **ret_key)
{
    fota_key_type type;
    EVP_PKEY *pkey = NULL;
    BIO *bio = NULL;
    size_t len;
    fota_err err;

    if (keytype == NULL || scheme == NULL || public_value == NULL || ret_key == NULL)
        return FOTA_E_INVALID;
    err = scheme_to_type(keytype, scheme, &type);
    if (err != FOTA_OK)
        return err;
    len = strnlen(public_value, PUBLIC_VALUE_MAX + 1);
    if (len > PUBLIC_VALUE_MAX)
        return FOTA_E_KEY;

    if (type == FOTA_KEY_ED25519) {
        uint8_t raw[ED25519_KEY_LEN];
        if (fota_hex_decode(public_value, len, raw, sizeof(raw)) != FOTA_OK)
            return FOTA_E_KEY;
        return fota_pubkey_from_raw(type, raw, sizeof(raw), ret_key);
    }

    bio = BIO_new_mem_buf(public_value, (int)len);
    if (bio == NULL)
        return FOTA_E_NOMEM;
    pkey = PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL);
    BIO_free(bio);
    if (pkey == NULL)
        return FOTA_E_KEY;
    return pubkey_wrap(pkey, type, ret_key);
}

fota_err fota_pubkey_from_raw(fota_key_type type, const uint8_t *der, size_t len,
                              fota_pubkey **ret_key)
{
    EVP_PKEY *pkey;

    if (der == NULL || ret_key == NULL)
        return FOTA_E_INVALID;
    if (type == FOTA_KEY_ED25519) {
        if (len != ED25519_KEY_LEN)
            return FOTA_E_KEY;
        pkey = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, der, len);
    } else {
        const unsigned char *p = der;
        if (len > PUBLIC_VALUE_MAX)
            return FOTA_E_KEY;
        pkey = d2i_PUBKEY(NULL, &p, (long)len);
        if (pkey != NULL && p != der + len) {
            EVP_PKEY_free(pkey);   /* trailing bytes after the DER structure */
            pkey = NULL;
        }
    }
    if (pkey == NULL)
        return FOTA_E_KEY;
    return pubkey_wrap(pkey, type, ret_key);
}

void fota_pubkey_free(fota_pubkey *key)
{
    if (key == NULL)
        return;
    EVP_PKEY_free(key->pkey);
    free(key->id);
    free(key);
}

fota_key_type fota_pubkey_type(const fota_pubkey *key)
{
    return key->type;
}

int fota_pubkey_equal(const fota_pubkey *a, const fota_pubkey *b)
{
    if (a == NULL || b == NULL)
        return 0;
    return a->type == b->type && a->id_len == b->id_len &&
           memcmp(a->id, b->id, a->id_len) == 0;
}

static const EVP_MD *digest_for(fota_key_type type)
{
    return type == FOTA_KEY_ED25519 ? NULL : EVP_sha256();
}

/* RSA-PSS parameters on a digest-sign/verify context. */
static int set_pss(EVP_PKEY_CTX *pctx, int saltlen)
{
    return EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) == 1 &&
           EVP_PKEY_CTX_set_rsa_mgf1_md(pctx, EVP_sha256()) == 1 &&
           EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, saltlen) == 1;
}

fota_err fota_verify(const fota_pubkey *key, const uint8_t *msg, size_t msg_len,
                     const uint8_t *sig, size_t sig_len)
{
    fota_err err = FOTA_E_SIGNATURE;
    EVP_MD_CTX *ctx = NULL;
    EVP_PKEY_CTX *pctx = NULL;

    if (key == NULL || (msg == NULL && msg_len > 0) || sig == NULL || sig_len == 0)
        return FOTA_E_SIGNATURE;
    if (key->type == FOTA_KEY_ED25519 && sig_len != ED25519_SIG_LEN)
        return FOTA_E_SIGNATURE;

    ctx = EVP_MD_CTX_new();
    if (ctx == NULL)
        return FOTA_E_NOMEM;
    if (EVP_DigestVerifyInit(ctx, &pctx, digest_for(key->type), NULL, key->pkey) != 1)
        goto out;
    /* Verification accepts any salt length: the signer chose it. */
    if (key->type == FOTA_KEY_RSA_PSS && !set_pss(pctx, RSA_PSS_SALTLEN_AUTO))
        goto out;
    if (EVP_DigestVerify(ctx, sig, sig_len, msg, msg_len) == 1)
        err = FOTA_OK;
out:
    EVP_MD_CTX_free(ctx);
    return err;
}

/* ---- private keys ---------------------------------------------------- */

static fota_err privkey_wrap(EVP_PKEY *pkey, fota_privkey **ret_key)
{
    fota_privkey *k;
    fota_key_type type;
    fota_err err = key_type_of(pkey, &type);

    if (err != FOTA_OK) {
        EVP_PKEY_free(pkey);
        return err;
    }
    k = calloc(1, sizeof(*k));
    if (k == NULL) {
        EVP_PKEY_free(pkey);
        return FOTA_E_NOMEM;
    }
    k->type = type;
    k->pkey = pkey;
    *ret_key = k;
    return FOTA_OK;
}

fota_err fota_privkey_generate(fota_key_type type, fota_privkey **ret_key)
{
    EVP_PKEY *pkey = NULL;

    if (ret_key == NULL)
        return FOTA_E_INVALID;
    switch (type) {
    case FOTA_KEY_ED25519:
        pkey = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
        break;
    case FOTA_KEY_ECDSA_P256:
        pkey = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
        break;
    case FOTA_KEY_RSA_PSS:
        pkey = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)3072);
        break;
    default:
        return FOTA_E_INVALID;
    }
    if (pkey == NULL)
        return FOTA_E_CRYPTO;
    return privkey_wrap(pkey, ret_key);
}

/* Never prompt for a passphrase: encrypted keys are refused. */
static int no_passphrase(char *buf, int size, int rwflag, void *u)
{
    (void)buf;
    (void)size;
    (void)rwflag;
    (void)u;
    return -1;
}

fota_err fota_privkey_from_pem(const char *pem, size_t pem_len, fota_privkey **ret_key)
{
    BIO *bio;
    EVP_PKEY *pkey;

    if (pem == NULL || ret_key == NULL || pem_len == 0 || pem_len > 65536)
        return FOTA_E_INVALID;
    bio = BIO_new_mem_buf(pem, (int)pem_len);
    if (bio == NULL)
        return FOTA_E_NOMEM;
    pkey = PEM_read_bio_PrivateKey(bio, NULL, no_passphrase, NULL);
    BIO_free(bio);
    if (pkey == NULL)
        return FOTA_E_KEY;
    return privkey_wrap(pkey, ret_key);
}

/* Copy a memory BIO's content into a NUL-terminated malloc'ed string. */
static fota_err bio_to_string(BIO *bio, char **ret_buf, size_t *ret_len)
{
    char *data = NULL;
    long len = BIO_get_mem_data(bio, &data);
    char *copy;

    if (len <= 0 || data == NULL)
        return FOTA_E_CRYPTO;
    copy = malloc((size_t)len + 1);
    if (copy == NULL)
        return FOTA_E_NOMEM;
    memcpy(copy, data, (size_t)len);
    copy[len] = '\0';
    *ret_buf = copy;
    if (ret_len != NULL)
        *ret_len = (size_t)len;
    return FOTA_OK;
}

fota_err fota_privkey_to_pem(const fota_privkey *key, char **ret_pem, size_t *ret_len)
{
    fota_err err = FOTA_E_CRYPTO;
    BIO *bio;

    if (key == NULL || ret_pem == NULL || ret_len == NULL)
        return FOTA_E_INVALID;
    /* A secure-heap BIO: the key text is cleared when the BIO is freed. */
    bio = BIO_new(BIO_s_secmem());
    if (bio == NULL)
        return FOTA_E_NOMEM;
    if (PEM_write_bio_PrivateKey(bio, key->pkey, NULL, NULL, 0, NULL, NULL) == 1)
        err = bio_to_string(bio, ret_pem, ret_len);
    BIO_free(bio);
    return err;
}

fota_key_type fota_privkey_type(const fota_privkey *key)
{
    return key->type;
}

fota_err fota_privkey_ed25519_seed(const fota_privkey *key, uint8_t seed[32])
{
    size_t len = 32;

    if (key == NULL || seed == NULL)
        return FOTA_E_INVALID;
    if (key->type != FOTA_KEY_ED25519)
        return FOTA_E_UNSUPPORTED;
    if (EVP_PKEY_get_raw_private_key(key->pkey, seed, &len) != 1 || len != 32) {
        fota_wipe(seed, 32);
        return FOTA_E_CRYPTO;
    }
    return FOTA_OK;
}

fota_err fota_privkey_public_tuf(const fota_privkey *key, const char **ret_keytype,
                                 const char **ret_scheme, char **ret_public)
{
    fota_err err = FOTA_E_CRYPTO;
    char *pub = NULL;

    if (key == NULL || ret_keytype == NULL || ret_scheme == NULL || ret_public == NULL)
        return FOTA_E_INVALID;
    if (key->type == FOTA_KEY_ED25519) {
        uint8_t raw[ED25519_KEY_LEN];
        size_t len = sizeof(raw);
        if (EVP_PKEY_get_raw_public_key(key->pkey, raw, &len) != 1 || len != sizeof(raw))
            return FOTA_E_CRYPTO;
        pub = malloc(2 * sizeof(raw) + 1);
        if (pub == NULL)
            return FOTA_E_NOMEM;
        fota_hex_encode(raw, sizeof(raw), pub);
        *ret_keytype = "ed25519";
        *ret_scheme = "ed25519";
    } else {
        BIO *bio = BIO_new(BIO_s_mem());
        if (bio == NULL)
            return FOTA_E_NOMEM;
        if (PEM_write_bio_PUBKEY(bio, key->pkey) == 1)
            err = bio_to_string(bio, &pub, NULL);
        BIO_free(bio);
        if (err != FOTA_OK)
            return err;
        if (key->type == FOTA_KEY_ECDSA_P256) {
            *ret_keytype = "ecdsa";
            *ret_scheme = "ecdsa-sha2-nistp256";
        } else {
            *ret_keytype = "rsa";
            *ret_scheme = "rsassa-pss-sha256";
        }
    }
    *ret_public = pub;
    return FOTA_OK;
}

fota_err fota_sign(const fota_privkey *key, const uint8_t *msg, size_t msg_len,
                   uint8_t **ret_sig, size_t *ret_sig_len)
{
    fota_err err = FOTA_E_CRYPTO;
    EVP_MD_CTX *ctx = NULL;
    EVP_PKEY_CTX *pctx = NULL;
    uint8_t *sig = NULL;
    size_t len = 0;

    if (key == NULL || (msg == NULL && msg_len > 0) || ret_sig == NULL || ret_sig_len == NULL)
        return FOTA_E_INVALID;
    ctx = EVP_MD_CTX_new();
    if (ctx == NULL)
        return FOTA_E_NOMEM;
    if (EVP_DigestSignInit(ctx, &pctx, digest_for(key->type), NULL, key->pkey) != 1)
        goto out;
    if (key->type == FOTA_KEY_RSA_PSS && !set_pss(pctx, RSA_PSS_SALTLEN_DIGEST))
        goto out;
    if (EVP_DigestSign(ctx, NULL, &len, msg, msg_len) != 1)
        goto out;
    sig = malloc(len);
    if (sig == NULL) {
        err = FOTA_E_NOMEM;
        goto out;
    }
    if (EVP_DigestSign(ctx, sig, &len, msg, msg_len) != 1)
        goto out;
    *ret_sig = sig;
    *ret_sig_len = len;
    sig = NULL;
    err = FOTA_OK;
out:
    free(sig);
    EVP_MD_CTX_free(ctx);
    return err;
}

void fota_privkey_free(fota_privkey *key)
{
    if (key == NULL)
        return;
    EVP_PKEY_free(key->pkey);   /* OpenSSL clears private key material on free */
    free(key);
}

/* ---- digests ---------------------------------------------------------- */

fota_err fota_hash_alg_from_name(const char *name, fota_hash_alg *ret_alg)
{
    if (name == NULL || ret_alg == NULL)
        return FOTA_E_INVALID;
    if (strcmp(name, "sha256") == 0) {
        *ret_alg = FOTA_HASH_SHA256;
        return FOTA_OK;
    }
    if (strcmp(name, "sha512") == 0) {
        *ret_alg = FOTA_HASH_SHA512;
        return FOTA_OK;
    }
    return FOTA_E_UNSUPPORTED;
}

const char *fota_hash_alg_name(fota_hash_alg alg)
{
    return alg == FOTA_HASH_SHA512 ? "sha512" : "sha256";
}

size_t fota_hash_len(fota_hash_alg alg)
{
    return alg == FOTA_HASH_SHA512 ? 64 : 32;
}

static const EVP_MD *md_of(fota_hash_alg alg)
{
    switch (alg) {
    case FOTA_HASH_SHA256: return EVP_sha256();
    case FOTA_HASH_SHA512: return EVP_sha512();
    }
    return NULL;
}

fota_err fota_hash_init(fota_hash_ctx *ctx, fota_hash_alg alg)
{
    const EVP_MD *md = md_of(alg);
    EVP_MD_CTX *mdctx;

    if (ctx == NULL || md == NULL)
        return FOTA_E_INVALID;
    mdctx = EVP_MD_CTX_new();
    if (mdctx == NULL)
        return FOTA_E_NOMEM;
    if (EVP_DigestInit_ex(mdctx, md, NULL) != 1) {
        EVP_MD_CTX_free(mdctx);
        return FOTA_E_CRYPTO;
    }
    ctx->impl = mdctx;
    ctx->alg = alg;
    return FOTA_OK;
}

fota_err fota_hash_update(fota_hash_ctx *ctx, const void *data, size_t len)
{
    if (ctx == NULL || ctx->impl == NULL || (data == NULL && len > 0))
        return FOTA_E_INVALID;
    if (EVP_DigestUpdate(ctx->impl, data, len) != 1)
        return FOTA_E_CRYPTO;
    return FOTA_OK;
}

fota_err fota_hash_final(fota_hash_ctx *ctx, uint8_t out[FOTA_HASH_MAX_LEN])
{
    fota_err err = FOTA_OK;

    if (ctx == NULL || ctx->impl == NULL || out == NULL)
        return FOTA_E_INVALID;
    if (EVP_DigestFinal_ex(ctx->impl, out, NULL) != 1)
        err = FOTA_E_CRYPTO;
    EVP_MD_CTX_free(ctx->impl);
    ctx->impl = NULL;
    return err;
}

void fota_hash_abort(fota_hash_ctx *ctx)
{
    if (ctx == NULL)
        return;
    EVP_MD_CTX_free(ctx->impl);
    ctx->impl = NULL;
}

fota_err fota_hash(fota_hash_alg alg, const void *data, size_t len,
                   uint8_t out[FOTA_HASH_MAX_LEN])
{
    const EVP_MD *md = md_of(alg);

    if (md == NULL || out == NULL || (data == NULL && len > 0))
        return FOTA_E_INVALID;
    if (EVP_Digest(data, len, out, NULL, md, NULL) != 1)
        return FOTA_E_CRYPTO;
    return FOTA_OK;
}

/* ---- firmware image signatures ---------------------------------------- */

fota_err fota_pubkey_image_id(const fota_pubkey *key, uint8_t ret_id[32])
{
    uint8_t digest[FOTA_HASH_MAX_LEN];
    unsigned char *der = NULL;
    int len;
    fota_err err;

    if (key == NULL || ret_id == NULL)
        return FOTA_E_INVALID;
    len = i2d_PUBKEY(key->pkey, &der);
    if (len <= 0)
        return FOTA_E_CRYPTO;
    err = fota_hash(FOTA_HASH_SHA256, der, (size_t)len, digest);
    OPENSSL_free(der);
    if (err == FOTA_OK)
        memcpy(ret_id, digest, 32);
    return err;
}

fota_err fota_verify_digest(const fota_pubkey *key, const uint8_t digest[32],
                            const uint8_t *sig, size_t sig_len)
{
    fota_err err = FOTA_E_SIGNATURE;
    EVP_PKEY_CTX *pctx;

    if (key == NULL || digest == NULL || sig == NULL || sig_len == 0)
        return FOTA_E_SIGNATURE;
    switch (key->type) {
    case FOTA_KEY_ED25519:
        return fota_verify(key, digest, 32, sig, sig_len);
    case FOTA_KEY_ECDSA_P256:
        break;
    default:
        return FOTA_E_UNSUPPORTED;
    }
    /* ECDSA over a pre-computed digest: EVP_PKEY_verify, no EVP_MD. */
    pctx = EVP_PKEY_CTX_new(key->pkey, NULL);
    if (pctx == NULL)
        return FOTA_E_NOMEM;
    if (EVP_PKEY_verify_init(pctx) == 1 &&
        EVP_PKEY_verify(pctx, sig, sig_len, digest, 32) == 1)
        err = FOTA_OK;
    EVP_PKEY_CTX_free(pctx);
    return err;
}

fota_err fota_sign_digest(const fota_privkey *key, const uint8_t digest[32],
                          uint8_t **ret_sig, size_t *ret_sig_len)
{
    fota_err err = FOTA_E_CRYPTO;
    EVP_PKEY_CTX *pctx = NULL;
    uint8_t *sig = NULL;
    size_t len = 0;

    if (key == NULL || digest == NULL || ret_sig == NULL || ret_sig_len == NULL)
        return FOTA_E_INVALID;
    switch (key->type) {
    case FOTA_KEY_ED25519:
        return fota_sign(key, digest, 32, ret_sig, ret_sig_len);
    case FOTA_KEY_ECDSA_P256:
        break;
    default:
        return FOTA_E_UNSUPPORTED;
    }
    pctx = EVP_PKEY_CTX_new(key->pkey, NULL);
    if (pctx == NULL)
        return FOTA_E_NOMEM;
    if (EVP_PKEY_sign_init(pctx) != 1 || EVP_PKEY_sign(pctx, NULL, &len, digest, 32) != 1)
        goto out;
    sig = malloc(len);
    if (sig == NULL) {
        err = FOTA_E_NOMEM;
        goto out;
    }
    if (EVP_PKEY_sign(pctx, sig, &len, digest, 32) != 1)
        goto out;
    *ret_sig = sig;
    *ret_sig_len = len;
    sig = NULL;
    err = FOTA_OK;
out:
    free(sig);
    EVP_PKEY_CTX_free(pctx);
    return err;
}
