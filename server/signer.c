/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Signing with an online key. The Director signs every check-in answer, so
 * its Ed25519 signature is on the hot path: OpenSSL 3.0 signs ~24,000/s per
 * core here, libsodium ~54,000/s (the figures in issue 4, and
 * docs/server.md). Ed25519 is deterministic (RFC 8032), so both give the
 * same bytes; tests/server/test_director.c checks that they do.
 */
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "server.h"

fota_err fota_server_key_fast(struct fota_server_key *k)
{
    uint8_t seed[32], pk[crypto_sign_PUBLICKEYBYTES];
    fota_err err;

    if (k == NULL || k->key == NULL)
        return FOTA_E_INVALID;
    k->fast = 0;
    if (fota_privkey_type(k->key) != FOTA_KEY_ED25519)
        return FOTA_OK;
    if (sodium_init() < 0)
        return FOTA_E_CRYPTO;
    err = fota_privkey_ed25519_seed(k->key, seed);
    if (err != FOTA_OK)
        return err;
    _Static_assert(sizeof(k->fast_sk) == crypto_sign_SECRETKEYBYTES, "libsodium key size");
    if (crypto_sign_seed_keypair(pk, k->fast_sk, seed) != 0)
        err = FOTA_E_CRYPTO;
    else
        k->fast = 1;
    fota_wipe(seed, sizeof(seed));
    return err;
}

fota_err fota_server_key_sign(const struct fota_server_key *k, const uint8_t *msg,
                              size_t msg_len, uint8_t **ret_sig, size_t *ret_sig_len)
{
    uint8_t *sig;
    unsigned long long len = 0;

    if (k == NULL || k->key == NULL || ret_sig == NULL || ret_sig_len == NULL)
        return FOTA_E_INVALID;
    if (!k->fast)
        return fota_sign(k->key, msg, msg_len, ret_sig, ret_sig_len);
    sig = malloc(crypto_sign_BYTES);
    if (sig == NULL)
        return FOTA_E_NOMEM;
    if (crypto_sign_detached(sig, &len, msg, msg_len, k->fast_sk) != 0 ||
        len != crypto_sign_BYTES) {
        free(sig);
        return FOTA_E_CRYPTO;
    }
    *ret_sig = sig;
    *ret_sig_len = (size_t)len;
    return FOTA_OK;
}
