/* SPDX-License-Identifier: Apache-2.0 */
#ifndef FOTA_FLASH_H
#define FOTA_FLASH_H

/*
 * The flash port: the few functions libfota needs from a flash device, with
 * the rules of real NOR flash. A port implements struct fota_flash;
 * docs/porting.md says what each function must do.
 *
 * Rules every port enforces and every caller respects:
 *   - erase works on whole sectors (offset and length multiples of sector_size)
 *     and sets every byte to erased_value;
 *   - write offsets and lengths are multiples of write_align, and a write may
 *     only program bytes that are erased (a write to unerased bytes is
 *     FOTA_E_FLASH, whatever value it would write);
 *   - read works at any offset and length;
 *   - everything stays inside [0, size).
 * A port returns FOTA_E_FLASH for a broken rule, FOTA_E_IO for a device
 * failure, and (fault injection only) FOTA_E_POWER when the simulated power
 * was cut during or before the operation.
 */

#include <stddef.h>
#include <stdint.h>

#include "fota/error.h"

struct fota_flash {
    void *ctx;
    uint32_t size;              /* bytes */
    uint32_t sector_size;       /* erase unit, a power of two */
    uint32_t write_align;       /* program unit, a power of two, <= sector_size */
    uint8_t erased_value;       /* usually 0xff */

    fota_err (*read)(void *ctx, uint32_t off, void *buf, size_t len);
    fota_err (*write)(void *ctx, uint32_t off, const void *buf, size_t len);
    fota_err (*erase)(void *ctx, uint32_t off, size_t len);
};

/* A window of a flash device (a slot, the boot-state area), as MCUboot's
 * flash_area: offsets passed to the area functions are relative to it. */
struct fota_flash_area {
    const struct fota_flash *dev;
    uint32_t off;               /* sector aligned */
    uint32_t size;              /* multiple of the sector size */
};

/* Bounds- and alignment-checked access to an area (FOTA_E_FLASH when a
 * request leaves the area or breaks alignment; otherwise the port's result). */
fota_err fota_flash_area_read(const struct fota_flash_area *a, uint32_t off, void *buf, size_t len);
fota_err fota_flash_area_write(const struct fota_flash_area *a, uint32_t off, const void *buf, size_t len);
fota_err fota_flash_area_erase(const struct fota_flash_area *a, uint32_t off, size_t len);

/* 1 when the area is well formed on its device (aligned, inside). */
int fota_flash_area_valid(const struct fota_flash_area *a);

#endif
