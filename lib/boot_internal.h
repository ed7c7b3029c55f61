/* SPDX-License-Identifier: Apache-2.0 */
#ifndef FOTA_BOOT_INTERNAL_H
#define FOTA_BOOT_INTERNAL_H

/*
 * Helpers shared by lib/boot_state.c, lib/boot.c and lib/install.c; not part
 * of the public API.
 */

#include "fota/boot.h"

/* Smallest scratch buffer the boot logic accepts (the verifier's minimum). */
#define FOTA_BOOT_SCRATCH_MIN 256u

/* 1 when dev is usable: four valid, non-overlapping areas, state areas large
 * enough for one padded record, write_align <= FOTA_FLASH_MAX_ALIGN, keys,
 * threshold >= 1, hardware id, scratch of at least FOTA_BOOT_SCRATCH_MIN
 * bytes, trial_attempts <= 255. */
int fota_boot_device_ok(const struct fota_device *dev);

/* Verify the image in dev->slot[slot] under the device policy with the given
 * floor for the security counter (max_len = slot size; exact_len as given,
 * 0 for "any"). The verifier's result is returned unchanged. */
fota_err fota_boot_verify_slot(const struct fota_device *dev, int slot, uint32_t min_counter,
                               uint32_t exact_len, struct fota_image_info *ret_info);

/* 1 for a failure of the device or the caller rather than of the image
 * (power cut, I/O, broken flash rule, crypto backend, bad argument): the
 * boot logic must not conclude anything about the image from it. */
int fota_boot_env_error(fota_err err);

#endif
