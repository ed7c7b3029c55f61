/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Flash areas: every request is checked against the area and the device's
 * alignment before it reaches the port, so a bug in the boot logic cannot
 * touch the other slot or program half a write unit.
 */
#include <stddef.h>

#include "fota/flash.h"

static int is_pow2(uint32_t v)
{
    return v != 0 && (v & (v - 1)) == 0;
}

int fota_flash_area_valid(const struct fota_flash_area *a)
{
    const struct fota_flash *d;

    if (a == NULL || a->dev == NULL)
        return 0;
    d = a->dev;
    if (d->read == NULL || d->write == NULL || d->erase == NULL)
        return 0;
    if (!is_pow2(d->sector_size) || !is_pow2(d->write_align) || d->write_align > d->sector_size)
        return 0;
    if (a->size == 0 || a->off % d->sector_size != 0 || a->size % d->sector_size != 0)
        return 0;
    /* off + size <= dev size, written so that it cannot wrap */
    return a->off <= d->size && a->size <= d->size - a->off;
}

/* [off, off + len) inside the area, without overflow. */
static int range_ok(const struct fota_flash_area *a, uint32_t off, size_t len)
{
    return off <= a->size && len <= (size_t)(a->size - off);
}

fota_err fota_flash_area_read(const struct fota_flash_area *a, uint32_t off, void *buf, size_t len)
{
    if (!fota_flash_area_valid(a) || !range_ok(a, off, len))
        return FOTA_E_FLASH;
    if (len == 0)
        return FOTA_OK;
    if (buf == NULL)
        return FOTA_E_INVALID;
    return a->dev->read(a->dev->ctx, a->off + off, buf, len);
}

fota_err fota_flash_area_write(const struct fota_flash_area *a, uint32_t off, const void *buf,
                               size_t len)
{
    uint32_t align;

    if (!fota_flash_area_valid(a) || !range_ok(a, off, len))
        return FOTA_E_FLASH;
    align = a->dev->write_align;
    if (off % align != 0 || len % align != 0)
        return FOTA_E_FLASH;
    if (len == 0)
        return FOTA_OK;
    if (buf == NULL)
        return FOTA_E_INVALID;
    return a->dev->write(a->dev->ctx, a->off + off, buf, len);
}

fota_err fota_flash_area_erase(const struct fota_flash_area *a, uint32_t off, size_t len)
{
    uint32_t sec;

    if (!fota_flash_area_valid(a) || !range_ok(a, off, len))
        return FOTA_E_FLASH;
    sec = a->dev->sector_size;
    if (off % sec != 0 || len % sec != 0)
        return FOTA_E_FLASH;
    if (len == 0)
        return FOTA_OK;
    return a->dev->erase(a->dev->ctx, a->off + off, len);
}
