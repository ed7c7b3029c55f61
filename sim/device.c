/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The simulated device: an in-memory flash from ports/posix/flash_file.h,
 * seen by libfota through a thin port of our own that forwards every call
 * and, in the reference run, records each counted write and erase. The
 * trace maps an operation index to what it did (which write to tear, what
 * a failing cut hit) without relying on anything inside libfota. The port
 * also counts FOTA_E_FLASH answers: a rule of flash broken by the code
 * under test is a bug even when it is later retried.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sim.h"

#define TRACE_CAP (1u << 20)        /* operations kept in a trace */

static void trace_add(struct sim_device *d, int is_erase, uint32_t off, size_t len)
{
    struct sim_op *grown;
    size_t cap;

    if (!d->trace_on || len == 0)
        return;
    if (d->n_trace == d->cap_trace) {
        cap = d->cap_trace == 0 ? 256 : d->cap_trace * 2;
        if (cap > TRACE_CAP) {
            d->trace_overflow = 1;
            return;
        }
        grown = realloc(d->trace, cap * sizeof *grown);
        if (grown == NULL) {
            d->trace_overflow = 1;
            return;
        }
        d->trace = grown;
        d->cap_trace = cap;
    }
    d->trace[d->n_trace].is_erase = (uint8_t)(is_erase != 0);
    d->trace[d->n_trace].off = off;
    d->trace[d->n_trace].len = (uint32_t)len;
    d->n_trace++;
}

static void note_result(struct sim_device *d, fota_err err, int is_erase, uint32_t off, size_t len)
{
    if (err == FOTA_E_FLASH) {
        d->rule_violations++;
        d->last_violation.is_erase = (uint8_t)(is_erase != 0);
        d->last_violation.off = off;
        d->last_violation.len = (uint32_t)len;
    }
    if (err == FOTA_OK)
        trace_add(d, is_erase, off, len);
}

static fota_err port_read(void *ctx, uint32_t off, void *buf, size_t len)
{
    struct sim_device *d = ctx;

    return d->raw->read(d->raw->ctx, off, buf, len);
}

static fota_err port_write(void *ctx, uint32_t off, const void *buf, size_t len)
{
    struct sim_device *d = ctx;
    fota_err err = d->raw->write(d->raw->ctx, off, buf, len);

    note_result(d, err, 0, off, len);
    return err;
}

static fota_err port_erase(void *ctx, uint32_t off, size_t len)
{
    struct sim_device *d = ctx;
    fota_err err = d->raw->erase(d->raw->ctx, off, len);

    note_result(d, err, 1, off, len);
    return err;
}

fota_err sim_area_read(void *ctx, uint32_t offset, void *buf, size_t len)
{
    return fota_flash_area_read(ctx, offset, buf, len);
}

fota_err sim_device_create(const struct sim_device_config *cfg, const struct sim_signer *trusted,
                           struct sim_device **ret_device)
{
    struct fota_flash_geometry g;
    struct sim_device *d = NULL;
    uint64_t slot_size;
    uint64_t size;
    fota_err err = FOTA_E_INVALID;

    if (cfg == NULL || trusted == NULL || cfg->sector_size == 0 || cfg->image_len == 0)
        goto out;
    slot_size = ((uint64_t)cfg->image_len + cfg->sector_size - 1) / cfg->sector_size *
                cfg->sector_size;
    size = 2u * (uint64_t)cfg->sector_size + 2u * slot_size;
    if (size > UINT32_MAX / 2)
        goto out;

    d = calloc(1, sizeof *d);
    if (d == NULL) {
        err = FOTA_E_NOMEM;
        goto out;
    }
    g.size = (uint32_t)size;
    g.sector_size = cfg->sector_size;
    g.write_align = cfg->write_align;
    g.erased_value = 0xff;
    err = fota_flash_mem_create(&g, &d->flash);
    if (err != FOTA_OK)
        goto out;
    d->size = g.size;
    d->raw = fota_flash_sim_dev(d->flash);
    d->port = *d->raw;
    d->port.ctx = d;
    d->port.read = port_read;
    d->port.write = port_write;
    d->port.erase = port_erase;

    err = fota_flash_default_layout(&d->port, (uint32_t)slot_size, d->dev.state, d->dev.slot);
    if (err != FOTA_OK)
        goto out;
    d->key.key = trusted->img.pub;
    memcpy(d->key.id, trusted->img.id, sizeof d->key.id);
    d->dev.keys = &d->key;
    d->dev.n_keys = 1;
    d->dev.threshold = 1;
    d->dev.hardware_id = cfg->hardware_id;
    d->dev.trial_attempts = 0;
    d->dev.scratch = d->scratch;
    d->dev.scratch_len = sizeof d->scratch;

    d->snapshot = malloc(d->size);
    if (d->snapshot == NULL) {
        err = FOTA_E_NOMEM;
        goto out;
    }
    *ret_device = d;
    d = NULL;
    err = FOTA_OK;
out:
    sim_device_free(d);
    return err;
}

void sim_device_free(struct sim_device *d)
{
    if (d == NULL)
        return;
    fota_flash_sim_close(d->flash);
    free(d->trace);
    free(d->snapshot);
    free(d);
}

fota_err sim_device_save(struct sim_device *d)
{
    return fota_flash_sim_snapshot(d->flash, d->snapshot, d->size);
}

fota_err sim_device_load(struct sim_device *d)
{
    fota_err err = fota_flash_sim_restore(d->flash, d->snapshot, d->size);

    fota_flash_sim_power_on(d->flash);
    fota_flash_sim_cut_after(d->flash, 0, FOTA_FLASH_CUT_CLEAN);
    fota_flash_sim_reset_stats(d->flash);
    return err;
}

uint64_t sim_device_ops(const struct sim_device *d)
{
    struct fota_flash_stats st;

    fota_flash_sim_stats(d->flash, &st);
    return st.writes + st.erases;
}

fota_err sim_device_plant(struct sim_device *d, int slot, const uint8_t *data, uint32_t len)
{
    const struct fota_flash_area *a;
    uint8_t erased[256];
    fota_err err = FOTA_E_INVALID;

    if (slot < 0 || slot > 1)
        return err;
    a = &d->dev.slot[slot];
    if (len > a->size)
        return FOTA_E_LENGTH;
    memset(erased, d->raw->erased_value, sizeof erased);
    for (uint32_t off = 0; off < a->size; off += (uint32_t)sizeof erased) {
        uint32_t n = a->size - off < sizeof erased ? a->size - off : (uint32_t)sizeof erased;
        err = fota_flash_sim_poke(d->flash, a->off + off, erased, n);
        if (err != FOTA_OK)
            return err;
    }
    return fota_flash_sim_poke(d->flash, a->off, data, len);
}

void sim_device_where(const struct sim_device *d, uint32_t off, char *buf, size_t len)
{
    static const char *const names[4] = {"state copy 0", "state copy 1", "slot A", "slot B"};
    const struct fota_flash_area *areas[4] = {&d->dev.state[0], &d->dev.state[1],
                                              &d->dev.slot[0], &d->dev.slot[1]};

    for (int i = 0; i < 4; i++) {
        if (off >= areas[i]->off && off - areas[i]->off < areas[i]->size) {
            snprintf(buf, len, "%s +0x%x", names[i], (unsigned)(off - areas[i]->off));
            return;
        }
    }
    snprintf(buf, len, "flash 0x%x", (unsigned)off);
}
