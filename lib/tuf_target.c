/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Checking a target while it streams in: every hash the trusted metadata
 * lists is computed (not only the first one), and the signed length is an
 * upper bound enforced on each update, so a caller can stop an endless
 * download as soon as it goes one byte over.
 */
#include "fota/tuf.h"

#include <string.h>

static void release(struct fota_tuf_target_check *c)
{
    size_t i;

    for (i = 0; i < c->n_active; i++)
        fota_hash_abort(&c->hash[i]);
    c->n_active = 0;
}

fota_err fota_tuf_target_check_init(struct fota_tuf_target_check *c,
                                    const struct fota_tuf_target *target)
{
    size_t i;
    fota_err err;

    if (c == NULL)
        return FOTA_E_INVALID;
    /* Cleared before anything can fail, so that final() and abort() after a
     * failed init find no hash context to release instead of stack garbage. */
    memset(c, 0, sizeof(*c));
    if (target == NULL || target->n_hashes == 0 || target->n_hashes > FOTA_TUF_MAX_HASHES)
        return FOTA_E_INVALID;
    c->target = target;
    for (i = 0; i < target->n_hashes; i++) {
        if (target->hashes[i].digest_len != fota_hash_len(target->hashes[i].alg)) {
            release(c);
            return FOTA_E_INVALID;
        }
        err = fota_hash_init(&c->hash[i], target->hashes[i].alg);
        if (err != FOTA_OK) {
            release(c);
            return err;
        }
        c->n_active = i + 1;
    }
    return FOTA_OK;
}

fota_err fota_tuf_target_check_update(struct fota_tuf_target_check *c,
                                      const void *data, size_t len)
{
    size_t i;
    fota_err err;

    if (c == NULL || (data == NULL && len > 0))
        return FOTA_E_INVALID;
    /* n_active == 0: never initialised, or already over the length */
    if (c->n_active == 0)
        return FOTA_E_LENGTH;
    if ((uint64_t)len > c->target->length - c->seen) {
        /* One byte over the signed length is already an attack or a broken
         * mirror: drop the digests so that final() cannot succeed. */
        release(c);
        return FOTA_E_LENGTH;
    }
    for (i = 0; i < c->n_active; i++) {
        err = fota_hash_update(&c->hash[i], data, len);
        if (err != FOTA_OK) {
            release(c);
            return err;
        }
    }
    c->seen += len;
    return FOTA_OK;
}

fota_err fota_tuf_target_check_final(struct fota_tuf_target_check *c)
{
    fota_err result = FOTA_E_HASH;
    int all_equal = 1;
    size_t i, n;

    if (c == NULL)
        return FOTA_E_INVALID;
    if (c->n_active == 0)
        return FOTA_E_LENGTH;
    n = c->n_active;
    c->n_active = 0;
    for (i = 0; i < n; i++) {
        uint8_t got[FOTA_HASH_MAX_LEN];
        const struct fota_tuf_hash *h = &c->target->hashes[i];
        fota_err err = fota_hash_final(&c->hash[i], got);

        if (err != FOTA_OK) {
            /* release the contexts still open, then report the failure */
            size_t j;
            for (j = i + 1; j < n; j++)
                fota_hash_abort(&c->hash[j]);
            return err;
        }
        if (!fota_ct_equal(got, h->digest, h->digest_len))
            all_equal = 0;
    }
    if (c->seen != c->target->length)
        result = FOTA_E_LENGTH;
    else if (all_equal)
        result = FOTA_OK;
    return result;
}

void fota_tuf_target_check_abort(struct fota_tuf_target_check *c)
{
    if (c == NULL)
        return;
    release(c);
}
