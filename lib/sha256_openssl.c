/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Allocation-free SHA-256 for the image verifier and the boot path.
 *
 * OpenSSL's EVP interface allocates a context per digest; its low-level
 * SHA256_* functions work on caller-owned state and run the same assembly
 * (SHA-NI where the CPU has it). They are deprecated in OpenSSL 3 in favour of
 * EVP, hence the suppression, confined to this file.
 */
#define OPENSSL_SUPPRESS_DEPRECATED 1
#include <openssl/sha.h>

#include "fota/crypto.h"

_Static_assert(sizeof(SHA256_CTX) <= sizeof(((fota_sha256 *)0)->state),
               "fota_sha256 too small for SHA256_CTX");
_Static_assert(_Alignof(SHA256_CTX) <= 8, "fota_sha256 alignment");

void fota_sha256_init(fota_sha256 *ctx)
{
    SHA256_Init((SHA256_CTX *)(void *)ctx->state);
}

void fota_sha256_update(fota_sha256 *ctx, const void *data, size_t len)
{
    SHA256_Update((SHA256_CTX *)(void *)ctx->state, data, len);
}

void fota_sha256_final(fota_sha256 *ctx, uint8_t out[32])
{
    SHA256_Final(out, (SHA256_CTX *)(void *)ctx->state);
    fota_wipe(ctx->state, sizeof(ctx->state));
}
