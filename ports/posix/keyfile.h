/* SPDX-License-Identifier: Apache-2.0 */
#ifndef FOTA_KEYFILE_H
#define FOTA_KEYFILE_H

/*
 * Key files as the fota CLI writes and reads them, for host programs that
 * must not depend on tools/ (fota-boot, fota-sim):
 *   - a TUF public key object (.pub JSON: keytype, scheme, keyval.public);
 *   - a PEM public key ("BEGIN PUBLIC KEY": Ed25519 or ECDSA P-256, or RSA);
 *   - a PEM private key (PKCS#8 or the traditional EC/RSA forms), whose
 *     public half is taken.
 * Files are capped at FOTA_KEYFILE_MAX bytes.
 */

#include <stddef.h>

#include "fota/crypto.h"
#include "fota/error.h"
#include "fota/image.h"

#define FOTA_KEYFILE_MAX 65536u

/* Load a public key from any of the three forms. FOTA_E_NOT_FOUND,
 * FOTA_E_IO, FOTA_E_LENGTH (over the cap), FOTA_E_PARSE (none of the forms),
 * or the crypto layer's FOTA_E_KEY / FOTA_E_UNSUPPORTED. */
fota_err fota_keyfile_load_pubkey(const char *path, fota_pubkey **ret_key);

/* Load a PEM private key. The file's bytes are wiped after parsing. */
fota_err fota_keyfile_load_privkey(const char *path, fota_privkey **ret_key);

/*
 * The trusted keys of an image verifier (fota-boot's device, `fota image
 * verify`): keys[i].key loaded from paths[i] as fota_keyfile_load_pubkey
 * does, keys[i].id its image key id. FOTA_E_UNSUPPORTED for an RSA key
 * (images carry no RSA signatures), FOTA_E_DUPLICATE when a path holds a key
 * an earlier one did, otherwise the loader's error. On failure nothing stays
 * allocated, keys[0..n) is zeroed and *ret_failed (may be NULL) is the index
 * of the path at fault. Release with fota_keyfile_free_image_keys.
 */
fota_err fota_keyfile_load_image_keys(const char *const *paths, size_t n,
                                      struct fota_image_key *keys, size_t *ret_failed);
void fota_keyfile_free_image_keys(struct fota_image_key *keys, size_t n);

#endif
