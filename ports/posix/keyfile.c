/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Key file loaders shared by host programs (see keyfile.h). The PEM public
 * key is decoded here, without the crypto backend's PEM reader, so that the
 * same code serves a port whose backend has none.
 */
#include "keyfile.h"

#include <stdlib.h>
#include <string.h>

#include "fota/json.h"
#include "fota/tuf.h"
#include "fota_posix.h"

static const char pem_pub_begin[] = "-----BEGIN PUBLIC KEY-----";
static const char pem_pub_end[] = "-----END PUBLIC KEY-----";

/* DER SubjectPublicKeyInfo prefix of an Ed25519 key (RFC 8410), followed by
 * the 32 raw key bytes. */
static const uint8_t ed25519_spki_prefix[12] = {0x30, 0x2a, 0x30, 0x05, 0x06, 0x03,
                                                0x2b, 0x65, 0x70, 0x03, 0x21, 0x00};

static const char *find(const uint8_t *buf, size_t len, const char *needle)
{
    size_t n = strlen(needle);

    for (size_t i = 0; i + n <= len; i++) {
        if (memcmp(buf + i, needle, n) == 0)
            return (const char *)buf + i;
    }
    return NULL;
}

/* 1 when the first byte that is not white space opens a JSON object. */
static int looks_like_json(const uint8_t *buf, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        if (buf[i] != ' ' && buf[i] != '\t' && buf[i] != '\r' && buf[i] != '\n')
            return buf[i] == '{';
    }
    return 0;
}

static int b64_value(char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

/* Decode base64 text with line breaks; '=' ends the data. */
static fota_err b64_decode(const char *s, size_t len, uint8_t *out, size_t cap,
                           size_t *ret_len)
{
    uint32_t acc = 0;
    int bits = 0;
    size_t n = 0;
    int done = 0;

    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        int v;

        if (c == '\n' || c == '\r' || c == ' ' || c == '\t')
            continue;
        if (c == '=') {
            done = 1;
            continue;
        }
        if (done)
            return FOTA_E_PARSE;
        v = b64_value(c);
        if (v < 0)
            return FOTA_E_PARSE;
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            if (n == cap)
                return FOTA_E_PARSE;
            out[n++] = (uint8_t)(acc >> bits);
        }
    }
    *ret_len = n;
    return FOTA_OK;
}

static fota_err pubkey_from_pem(const uint8_t *buf, size_t len, fota_pubkey **ret_key)
{
    uint8_t der[1024];
    const char *begin = find(buf, len, pem_pub_begin);
    const char *end;
    const char *body;
    size_t der_len = 0;
    fota_err err;

    if (begin == NULL)
        return FOTA_E_PARSE;
    body = begin + strlen(pem_pub_begin);
    end = find((const uint8_t *)body, len - (size_t)(body - (const char *)buf), pem_pub_end);
    if (end == NULL)
        return FOTA_E_PARSE;
    err = b64_decode(body, (size_t)(end - body), der, sizeof der, &der_len);
    if (err != FOTA_OK)
        return err;
    if (der_len == sizeof ed25519_spki_prefix + 32 &&
        memcmp(der, ed25519_spki_prefix, sizeof ed25519_spki_prefix) == 0)
        return fota_pubkey_from_raw(FOTA_KEY_ED25519, der + sizeof ed25519_spki_prefix, 32,
                                    ret_key);
    err = fota_pubkey_from_raw(FOTA_KEY_ECDSA_P256, der, der_len, ret_key);
    if (err != FOTA_OK)
        err = fota_pubkey_from_raw(FOTA_KEY_RSA_PSS, der, der_len, ret_key);
    return err;
}

static fota_err pubkey_from_private(const uint8_t *buf, size_t len, fota_pubkey **ret_key)
{
    fota_privkey *priv = NULL;
    const char *keytype;
    const char *scheme;
    char *pub = NULL;
    fota_err err;

    err = fota_privkey_from_pem((const char *)buf, len, &priv);
    if (err == FOTA_OK)
        err = fota_privkey_public_tuf(priv, &keytype, &scheme, &pub);
    if (err == FOTA_OK)
        err = fota_pubkey_from_tuf(keytype, scheme, pub, ret_key);
    free(pub);
    fota_privkey_free(priv);
    return err;
}

static fota_err pubkey_from_json(const uint8_t *buf, size_t len, fota_pubkey **ret_key)
{
    json_t *value = NULL;
    fota_err err;

    err = fota_json_parse(buf, len, FOTA_KEYFILE_MAX, FOTA_JSON_MAX_DEPTH, &value);
    if (err == FOTA_OK && !json_is_object(value))
        err = FOTA_E_PARSE;
    if (err == FOTA_OK)
        err = fota_tuf_key_parse(value, ret_key);
    json_decref(value);
    return err;
}

fota_err fota_keyfile_load_pubkey(const char *path, fota_pubkey **ret_key)
{
    uint8_t *buf = NULL;
    size_t len = 0;
    fota_err err;

    if (path == NULL || ret_key == NULL)
        return FOTA_E_INVALID;
    err = fota_posix_read_file(path, FOTA_KEYFILE_MAX, &buf, &len);
    if (err != FOTA_OK)
        return err;
    /* A key object first: an ECDSA or RSA one holds a PEM public key as
     * its keyval, markers included, so the PEM tests must not see it. */
    if (looks_like_json(buf, len))
        err = pubkey_from_json(buf, len, ret_key);
    else if (find(buf, len, "PRIVATE KEY-----") != NULL)
        err = pubkey_from_private(buf, len, ret_key);
    else if (find(buf, len, pem_pub_begin) != NULL)
        err = pubkey_from_pem(buf, len, ret_key);
    else
        err = FOTA_E_PARSE;
    fota_secret_free(buf, len);
    return err;
}

fota_err fota_keyfile_load_privkey(const char *path, fota_privkey **ret_key)
{
    uint8_t *buf = NULL;
    size_t len = 0;
    fota_err err;

    if (path == NULL || ret_key == NULL)
        return FOTA_E_INVALID;
    err = fota_posix_read_file(path, FOTA_KEYFILE_MAX, &buf, &len);
    if (err != FOTA_OK)
        return err;
    err = fota_privkey_from_pem((const char *)buf, len, ret_key);
    fota_secret_free(buf, len);
    return err;
}

fota_err fota_keyfile_load_image_keys(const char *const *paths, size_t n,
                                      struct fota_image_key *keys, size_t *ret_failed)
{
    fota_pubkey *key = NULL;
    size_t i = 0;
    fota_err err = FOTA_OK;

    if (n == 0)
        return FOTA_OK;
    if (paths == NULL || keys == NULL)
        return FOTA_E_INVALID;
    memset(keys, 0, n * sizeof *keys);
    for (i = 0; i < n; i++) {
        err = fota_keyfile_load_pubkey(paths[i], &key);
        if (err == FOTA_OK && fota_pubkey_type(key) == FOTA_KEY_RSA_PSS)
            err = FOTA_E_UNSUPPORTED;
        if (err == FOTA_OK)
            err = fota_pubkey_image_id(key, keys[i].id);
        /* The verifier counts distinct keys, so a key given twice adds
         * nothing to a threshold: report the caller's mistake. */
        for (size_t j = 0; err == FOTA_OK && j < i; j++) {
            if (memcmp(keys[j].id, keys[i].id, sizeof keys[i].id) == 0)
                err = FOTA_E_DUPLICATE;
        }
        if (err != FOTA_OK)
            goto out;
        keys[i].key = key;
        key = NULL;
    }
out:
    if (err != FOTA_OK) {
        fota_pubkey_free(key);
        fota_keyfile_free_image_keys(keys, n);
        if (ret_failed != NULL)
            *ret_failed = i;
    }
    return err;
}

void fota_keyfile_free_image_keys(struct fota_image_key *keys, size_t n)
{
    if (keys == NULL || n == 0)
        return;
    for (size_t i = 0; i < n; i++) {
        /* the keys were allocated here; the struct only lends them out as const */
        fota_pubkey_free((fota_pubkey *)(uintptr_t)keys[i].key);
    }
    memset(keys, 0, n * sizeof *keys);
}
