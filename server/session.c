/* SPDX-License-Identifier: Apache-2.0 */
/* Stateless device session tokens: see session.h for the format. */
#include <pthread.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#include "fota/crypto.h"
#include "session.h"

#define ID_LEN 32
#define EXPIRY_LEN 8
#define MAC_LEN 32
#define RAW_LEN (ID_LEN + EXPIRY_LEN + MAC_LEN)   /* 72: a multiple of 3, so no padding */

_Static_assert(RAW_LEN % 3 == 0 && RAW_LEN / 3 * 4 == FOTA_SESSION_TOKEN_LEN,
               "token length must be exact base64 without padding");

/* Fetching the HMAC implementation takes a lock inside OpenSSL; doing it once
 * keeps concurrent check-ins from contending on it. */
static pthread_once_t mac_once = PTHREAD_ONCE_INIT;
static EVP_MAC *mac_impl;

static void mac_fetch(void)
{
    mac_impl = EVP_MAC_fetch(NULL, OSSL_MAC_NAME_HMAC, NULL);
}

static fota_err hmac_sha256(const uint8_t key[FOTA_SESSION_SECRET_LEN], const uint8_t *msg,
                            size_t len, uint8_t out[MAC_LEN])
{
    fota_err err = FOTA_E_CRYPTO;
    EVP_MAC_CTX *ctx = NULL;
    OSSL_PARAM params[2];
    char digest[] = "SHA256";
    size_t out_len = 0;

    if (pthread_once(&mac_once, mac_fetch) != 0 || mac_impl == NULL)
        return FOTA_E_CRYPTO;
    ctx = EVP_MAC_CTX_new(mac_impl);
    if (ctx == NULL)
        return FOTA_E_NOMEM;
    params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0);
    params[1] = OSSL_PARAM_construct_end();
    if (EVP_MAC_init(ctx, key, FOTA_SESSION_SECRET_LEN, params) != 1)
        goto out;
    if (EVP_MAC_update(ctx, msg, len) != 1)
        goto out;
    if (EVP_MAC_final(ctx, out, &out_len, MAC_LEN) != 1 || out_len != MAC_LEN)
        goto out;
    err = FOTA_OK;
out:
    EVP_MAC_CTX_free(ctx);
    return err;
}

static const char b64url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

static void b64url_encode(const uint8_t in[RAW_LEN], char out[FOTA_SESSION_TOKEN_LEN + 1])
{
    size_t o = 0;

    for (size_t i = 0; i < RAW_LEN; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
        out[o++] = b64url[v >> 18 & 63];
        out[o++] = b64url[v >> 12 & 63];
        out[o++] = b64url[v >> 6 & 63];
        out[o++] = b64url[v & 63];
    }
    out[o] = '\0';
}

static int b64url_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '-')
        return 62;
    if (c == '_')
        return 63;
    return -1;
}

/* Exactly FOTA_SESSION_TOKEN_LEN characters of the alphabet, else -1. */
static int b64url_decode(const char *in, uint8_t out[RAW_LEN])
{
    size_t o = 0;

    for (size_t i = 0; i < FOTA_SESSION_TOKEN_LEN; i += 4) {
        uint32_t v = 0;
        for (size_t k = 0; k < 4; k++) {
            int d = b64url_value((unsigned char)in[i + k]);
            if (d < 0)
                return -1;   /* also stops at a NUL of a short token */
            v = v << 6 | (uint32_t)d;
        }
        out[o++] = (uint8_t)(v >> 16);
        out[o++] = (uint8_t)(v >> 8);
        out[o++] = (uint8_t)v;
    }
    return in[FOTA_SESSION_TOKEN_LEN] == '\0' ? 0 : -1;
}

fota_err fota_session_token_make(const uint8_t secret[FOTA_SESSION_SECRET_LEN],
                                 const char *device_id, int64_t expires,
                                 char ret_token[FOTA_SESSION_TOKEN_LEN + 1])
{
    uint8_t raw[RAW_LEN];
    fota_err err;

    if (secret == NULL || device_id == NULL || ret_token == NULL || expires < 0)
        return FOTA_E_INVALID;
    if (strlen(device_id) != 2 * ID_LEN)
        return FOTA_E_INVALID;
    if (fota_hex_decode(device_id, 2 * ID_LEN, raw, ID_LEN) != FOTA_OK)
        return FOTA_E_INVALID;
    for (int i = 0; i < EXPIRY_LEN; i++)
        raw[ID_LEN + i] = (uint8_t)((uint64_t)expires >> (56 - 8 * i));
    err = hmac_sha256(secret, raw, ID_LEN + EXPIRY_LEN, raw + ID_LEN + EXPIRY_LEN);
    if (err == FOTA_OK)
        b64url_encode(raw, ret_token);
    fota_wipe(raw, sizeof(raw));
    return err;
}

fota_err fota_session_token_check(const uint8_t secret[FOTA_SESSION_SECRET_LEN],
                                  const char *token, int64_t now,
                                  char ret_device_id[FOTA_TUF_KEYID_HEX_LEN + 1],
                                  int64_t *ret_expires)
{
    fota_err err = FOTA_E_SIGNATURE;
    uint8_t raw[RAW_LEN];
    uint8_t mac[MAC_LEN];
    uint64_t expires = 0;

    if (secret == NULL || token == NULL || ret_device_id == NULL)
        return FOTA_E_INVALID;
    if (b64url_decode(token, raw) != 0)
        return FOTA_E_PARSE;
    err = hmac_sha256(secret, raw, ID_LEN + EXPIRY_LEN, mac);
    if (err != FOTA_OK)
        goto out;
    err = FOTA_E_SIGNATURE;
    if (!fota_ct_equal(mac, raw + ID_LEN + EXPIRY_LEN, MAC_LEN))
        goto out;
    for (int i = 0; i < EXPIRY_LEN; i++)
        expires = expires << 8 | raw[ID_LEN + i];
    /* An expiry beyond INT64_MAX was never made by token_make. */
    if (expires > (uint64_t)INT64_MAX) {
        err = FOTA_E_PARSE;
        goto out;
    }
    if ((int64_t)expires <= now) {
        err = FOTA_E_EXPIRED;
        goto out;
    }
    fota_hex_encode(raw, ID_LEN, ret_device_id);
    if (ret_expires != NULL)
        *ret_expires = (int64_t)expires;
    err = FOTA_OK;
out:
    fota_wipe(mac, sizeof(mac));
    return err;
}
