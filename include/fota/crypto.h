/* SPDX-License-Identifier: Apache-2.0 */
#ifndef FOTA_CRYPTO_H
#define FOTA_CRYPTO_H

/*
 * The one crypto interface of libfota. The host implementation is
 * lib/crypto_openssl.c (OpenSSL libcrypto); a microcontroller port
 * (mbedTLS/PSA) implements the same functions.
 *
 * Key and signature encodings follow the TUF specification:
 *   keytype "ed25519",  scheme "ed25519":              public = hex of the raw 32-byte key
 *   keytype "ecdsa" or "ecdsa-sha2-nistp256",
 *                       scheme "ecdsa-sha2-nistp256":  public = PEM SubjectPublicKeyInfo,
 *                                                      signature = DER (ECDSA-Sig-Value)
 *   keytype "rsa",      scheme "rsassa-pss-sha256":    public = PEM SubjectPublicKeyInfo,
 *                                                      signature = RSASSA-PSS, SHA-256, MGF1-SHA-256,
 *                                                      any salt length accepted when verifying
 * Signatures travel as lower-case hex in metadata; these functions take raw bytes.
 */

#include <stddef.h>
#include <stdint.h>

#include "fota/error.h"

typedef enum fota_key_type {
    FOTA_KEY_ED25519 = 0,
    FOTA_KEY_ECDSA_P256 = 1,
    FOTA_KEY_RSA_PSS = 2,
} fota_key_type;

/* ---- public keys ------------------------------------------------------ */

typedef struct fota_pubkey fota_pubkey;

/* Build a public key from the three TUF fields. Returns FOTA_E_UNSUPPORTED
 * for an unknown keytype/scheme pair and FOTA_E_KEY for a malformed public
 * value (bad hex, bad PEM, wrong curve, RSA below 2048 bits). */
fota_err fota_pubkey_from_tuf(const char *keytype, const char *scheme,
                              const char *public_value, fota_pubkey **ret_key);

/* Build a public key from raw bytes: 32 bytes for ed25519, a DER
 * SubjectPublicKeyInfo for the others. */
fota_err fota_pubkey_from_raw(fota_key_type type, const uint8_t *der, size_t len,
                              fota_pubkey **ret_key);

void fota_pubkey_free(fota_pubkey *key);
fota_key_type fota_pubkey_type(const fota_pubkey *key);

/* 1 when both keys are the same key (same type and same public material). */
int fota_pubkey_equal(const fota_pubkey *a, const fota_pubkey *b);

/* Verify sig over msg. FOTA_OK only when the signature is valid;
 * FOTA_E_SIGNATURE otherwise (including malformed signatures). */
fota_err fota_verify(const fota_pubkey *key, const uint8_t *msg, size_t msg_len,
                     const uint8_t *sig, size_t sig_len);

/* ---- private keys (tools and tests only; devices never sign metadata) -- */

typedef struct fota_privkey fota_privkey;

fota_err fota_privkey_generate(fota_key_type type, fota_privkey **ret_key);

/* Parse a PEM private key (PKCS#8 "PRIVATE KEY", or the traditional
 * "EC PRIVATE KEY"/"RSA PRIVATE KEY" forms openssl writes). The type is
 * taken from the key; EC keys must be on P-256, RSA keys at least 2048 bits. */
fota_err fota_privkey_from_pem(const char *pem, size_t pem_len, fota_privkey **ret_key);

/* Unencrypted PKCS#8 PEM. *ret_pem is NUL-terminated, owned by the caller,
 * and must be released with fota_secret_free(*ret_pem, *ret_len). */
fota_err fota_privkey_to_pem(const fota_privkey *key, char **ret_pem, size_t *ret_len);

fota_key_type fota_privkey_type(const fota_privkey *key);

/* The 32-byte seed of an Ed25519 private key (RFC 8032 section 5.1.5), for
 * a signer that runs outside OpenSSL (fota-server's Director signs with
 * libsodium). Secret: the caller wipes it. FOTA_E_UNSUPPORTED for other keys. */
fota_err fota_privkey_ed25519_seed(const fota_privkey *key, uint8_t seed[32]);

/* The TUF public fields of the key: *ret_keytype and *ret_scheme point to
 * static strings ("ed25519"/"ed25519", "ecdsa"/"ecdsa-sha2-nistp256",
 * "rsa"/"rsassa-pss-sha256"); *ret_public is malloc'ed (free()). */
fota_err fota_privkey_public_tuf(const fota_privkey *key, const char **ret_keytype,
                                 const char **ret_scheme, char **ret_public);

/* Sign msg. *ret_sig is malloc'ed (free()). RSA-PSS signs with a salt as
 * long as the digest (32 bytes), which every verifier accepts. */
fota_err fota_sign(const fota_privkey *key, const uint8_t *msg, size_t msg_len,
                   uint8_t **ret_sig, size_t *ret_sig_len);

void fota_privkey_free(fota_privkey *key);

/* ---- digests ---------------------------------------------------------- */

typedef enum fota_hash_alg {
    FOTA_HASH_SHA256 = 0,
    FOTA_HASH_SHA512 = 1,
} fota_hash_alg;

#define FOTA_HASH_MAX_LEN 64

/* "sha256" / "sha512" -> alg. FOTA_E_UNSUPPORTED for anything else. */
fota_err fota_hash_alg_from_name(const char *name, fota_hash_alg *ret_alg);
const char *fota_hash_alg_name(fota_hash_alg alg);
size_t fota_hash_len(fota_hash_alg alg);

/* Streaming digest. The context is caller-owned; fota_hash_final or
 * fota_hash_abort must be called exactly once after a successful init. */
typedef struct fota_hash_ctx {
    void *impl;
    fota_hash_alg alg;
} fota_hash_ctx;

fota_err fota_hash_init(fota_hash_ctx *ctx, fota_hash_alg alg);
fota_err fota_hash_update(fota_hash_ctx *ctx, const void *data, size_t len);
fota_err fota_hash_final(fota_hash_ctx *ctx, uint8_t out[FOTA_HASH_MAX_LEN]);
void fota_hash_abort(fota_hash_ctx *ctx);

/* One-shot digest; out receives fota_hash_len(alg) bytes. */
fota_err fota_hash(fota_hash_alg alg, const void *data, size_t len,
                   uint8_t out[FOTA_HASH_MAX_LEN]);

/* ---- helpers ---------------------------------------------------------- */

/* Constant-time comparison: 1 when the n bytes are equal, 0 otherwise. The
 * time taken depends only on n. */
int fota_ct_equal(const void *a, const void *b, size_t n);

/* Overwrite memory in a way the compiler does not elide. */
void fota_wipe(void *p, size_t n);

/* Wipe then free a secret buffer (NULL is fine). */
void fota_secret_free(void *p, size_t n);

/* Lower-case hex. out must hold 2*len+1 bytes; it is NUL-terminated. */
void fota_hex_encode(const uint8_t *in, size_t len, char *out);

/* Decode hex (either case) of exactly 2*out_len characters into out.
 * FOTA_E_PARSE on odd length, wrong length or a non-hex character. */
fota_err fota_hex_decode(const char *hex, size_t hex_len, uint8_t *out, size_t out_len);

/* The value of one hex digit (either case), -1 for any other character. */
int fota_hex_value(char c);

/* ---- for signed firmware images (allocation-free paths) --------------- */

/* SHA-256 with caller-owned state: no allocation, usable in a bootloader.
 * The state is opaque; 128 bytes hold every backend's context. */
typedef struct fota_sha256 {
    _Alignas(8) unsigned char state[128];
} fota_sha256;

void fota_sha256_init(fota_sha256 *ctx);
void fota_sha256_update(fota_sha256 *ctx, const void *data, size_t len);
void fota_sha256_final(fota_sha256 *ctx, uint8_t out[32]);   /* also wipes ctx */

/* The key's image key id: SHA-256 of its DER SubjectPublicKeyInfo. */
fota_err fota_pubkey_image_id(const fota_pubkey *key, uint8_t ret_id[32]);

/* Signatures over a 32-byte SHA-256 digest, as firmware images carry them:
 * ed25519 signs the 32 digest bytes as its message (PureEdDSA); ECDSA P-256
 * signs the digest as the pre-computed hash (no second hashing); the
 * signature is DER. Equivalent openssl commands:
 *   openssl pkeyutl -sign -rawin -inkey ed25519.pem -in digest.bin
 *   openssl pkeyutl -sign -inkey p256.pem -in digest.bin
 * RSA keys are refused with FOTA_E_UNSUPPORTED. */
fota_err fota_verify_digest(const fota_pubkey *key, const uint8_t digest[32],
                            const uint8_t *sig, size_t sig_len);
fota_err fota_sign_digest(const fota_privkey *key, const uint8_t digest[32],
                          uint8_t **ret_sig, size_t *ret_sig_len);

#endif
