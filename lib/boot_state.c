/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The boot-state record and its two copies. The layout is FROZEN (see
 * include/fota/boot.h): devices in the field read what older code wrote.
 */
#include <string.h>

#include "boot_internal.h"

/* IEEE 802.3 CRC-32 (reflected, polynomial 0xEDB88320, init and final xor
 * 0xFFFFFFFF). Bitwise: the record is 28 bytes, a table would cost 1 KiB of
 * bootloader flash for nothing. */
static uint32_t crc32_ieee(const uint8_t *p, size_t len)
{
    uint32_t crc = 0xffffffffu;

    for (size_t i = 0; i < len; i++) {
        crc ^= p[i];
        for (int b = 0; b < 8; b++)
            crc = (crc >> 1) ^ (0xedb88320u & (0u - (crc & 1u)));
    }
    return crc ^ 0xffffffffu;
}

static void put_le32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

static uint32_t get_le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

void fota_boot_state_encode(const struct fota_boot_state *st, uint8_t out[FOTA_BOOT_STATE_LEN])
{
    memset(out, 0, FOTA_BOOT_STATE_LEN);
    put_le32(out + 0, FOTA_BOOT_STATE_MAGIC);
    put_le32(out + 4, st->seq);
    out[8] = st->active;
    out[9] = st->pending;
    out[10] = st->attempts_left;
    out[11] = st->trial;
    put_le32(out + 12, st->security_counter);
    put_le32(out + 28, crc32_ieee(out, 28));
}

fota_err fota_boot_state_decode(const uint8_t raw[FOTA_BOOT_STATE_LEN],
                                struct fota_boot_state *ret_st)
{
    struct fota_boot_state st;

    if (raw == NULL || ret_st == NULL)
        return FOTA_E_INVALID;
    if (get_le32(raw) != FOTA_BOOT_STATE_MAGIC)
        return FOTA_E_PARSE;
    if (get_le32(raw + 28) != crc32_ieee(raw, 28))
        return FOTA_E_PARSE;
    for (size_t i = 16; i < 28; i++) {
        if (raw[i] != 0)
            return FOTA_E_PARSE;
    }
    st.seq = get_le32(raw + 4);
    st.active = raw[8];
    st.pending = raw[9];
    st.attempts_left = raw[10];
    st.trial = raw[11];
    st.security_counter = get_le32(raw + 12);
    /* Ranges: flags are 0 or 1, and a trial needs a pending image. A record
     * that breaks them was not written by us: ignore it like a bad CRC. */
    if (st.active > 1 || st.pending > 1 || st.trial > 1 || (st.trial && !st.pending))
        return FOTA_E_PARSE;
    *ret_st = st;
    return FOTA_OK;
}

/* Read both copies. valid[i] says whether copy i decoded. A read failure is
 * returned: an unreadable copy is not the same as an invalid one, and
 * treating it so could make a store overwrite the newest record. */
static fota_err read_copies(const struct fota_device *dev, struct fota_boot_state st[2],
                            int valid[2])
{
    uint8_t raw[FOTA_BOOT_STATE_LEN];
    fota_err err;

    for (int i = 0; i < 2; i++) {
        err = fota_flash_area_read(&dev->state[i], 0, raw, sizeof raw);
        if (err != FOTA_OK)
            return err;
        valid[i] = fota_boot_state_decode(raw, &st[i]) == FOTA_OK;
    }
    return FOTA_OK;
}

/* Index of the copy holding the state, or -1 when neither is valid. On equal
 * seq (never written by us) copy 0 wins, so the choice is deterministic. */
static int newest_copy(const struct fota_boot_state st[2], const int valid[2])
{
    if (valid[0] && valid[1])
        return st[1].seq > st[0].seq ? 1 : 0;
    if (valid[0])
        return 0;
    if (valid[1])
        return 1;
    return -1;
}

fota_err fota_boot_state_load(const struct fota_device *dev, struct fota_boot_state *ret_st)
{
    static const struct fota_boot_state factory = {0};
    struct fota_boot_state st[2];
    int valid[2];
    int cur;
    fota_err err;

    if (!fota_boot_device_ok(dev) || ret_st == NULL)
        return FOTA_E_INVALID;
    err = read_copies(dev, st, valid);
    if (err != FOTA_OK)
        return err;
    cur = newest_copy(st, valid);
    *ret_st = cur < 0 ? factory : st[cur];
    return FOTA_OK;
}

fota_err fota_boot_state_store(const struct fota_device *dev, struct fota_boot_state *st)
{
    uint8_t unit[FOTA_FLASH_MAX_ALIGN > FOTA_BOOT_STATE_LEN ? FOTA_FLASH_MAX_ALIGN
                                                           : FOTA_BOOT_STATE_LEN];
    struct fota_boot_state copies[2];
    struct fota_boot_state next;
    const struct fota_flash_area *target;
    uint32_t align;
    uint32_t cur_seq;
    size_t len;
    int valid[2];
    int cur;
    fota_err err;

    if (!fota_boot_device_ok(dev) || st == NULL)
        return FOTA_E_INVALID;
    if (st->active > 1 || st->pending > 1 || st->trial > 1 || (st->trial && !st->pending))
        return FOTA_E_INVALID;
    err = read_copies(dev, copies, valid);
    if (err != FOTA_OK)
        return err;
    cur = newest_copy(copies, valid);
    cur_seq = cur < 0 ? 0 : copies[cur].seq;
    if (cur_seq == UINT32_MAX)
        return FOTA_E_LIMIT;    /* 4 billion stores: wrapping would lose the order */
    /* Never the copy that holds the current state: a cut from here on leaves it intact. */
    target = &dev->state[cur == 0 ? 1 : 0];

    next = *st;
    next.seq = cur_seq + 1;
    align = target->dev->write_align;
    len = (FOTA_BOOT_STATE_LEN + align - 1) / align * align;
    memset(unit, target->dev->erased_value, sizeof unit);
    fota_boot_state_encode(&next, unit);

    err = fota_flash_area_erase(target, 0, target->size);
    if (err != FOTA_OK)
        return err;
    err = fota_flash_area_write(target, 0, unit, len);
    if (err != FOTA_OK)
        return err;
    st->seq = next.seq;
    return FOTA_OK;
}
