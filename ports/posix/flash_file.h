/* SPDX-License-Identifier: Apache-2.0 */
#ifndef FOTA_FLASH_FILE_H
#define FOTA_FLASH_FILE_H

/*
 * A simulated NOR flash for host programs (fota-boot, fota-sim, tests): the
 * contents live in memory (fota_flash_mem_create) or in a file mapped with
 * MAP_SHARED (fota_flash_file_open). Both variants enforce the same rules as
 * include/fota/flash.h and offer the same fault injection; the device seen by
 * libfota is fota_flash_sim_dev().
 *
 * Rules (checked in this order, nothing is changed when one is broken):
 *   - powered: after a cut every operation, reads included, is FOTA_E_POWER
 *     until fota_flash_sim_power_on();
 *   - bounds: [off, off + len) inside [0, size), overflow-safe (FOTA_E_FLASH);
 *   - write: off and len multiples of write_align, and every byte in the range
 *     equal to erased_value (FOTA_E_FLASH otherwise);
 *   - erase: off and len multiples of sector_size (FOTA_E_FLASH otherwise).
 * A zero-length write or erase is accepted and is not counted.
 *
 * Counters: every write and erase that passed the rules counts (a cut one
 * too); fota_flash_sim_reset_stats() sets them back to zero.
 *
 * Fault injection: fota_flash_sim_cut_after(s, n, mode) arms a cut at the
 * n-th counted operation (write or erase) from the arming call, counted from
 * 1; that operation is itself cut. What a cut operation leaves behind:
 *   FOTA_FLASH_CUT_CLEAN  write: nothing written.
 *                         erase: a prefix of the range erased (a random
 *                         length in [0, len)), the rest as it was.
 *   FOTA_FLASH_CUT_TORN   write: a prefix of the bytes written (a random
 *                         length in [0, len)), random garbage in the rest of
 *                         the range.
 *                         erase: a prefix of the range erased (random length
 *                         in [0, len)), random garbage in the rest.
 * The cut operation returns FOTA_E_POWER, and so does every later one until
 * power-on. Randomness comes from a PRNG seeded by fota_flash_sim_seed()
 * (seed 1 by default), so runs are deterministic.
 *
 * Nothing here is thread-safe; give each thread its own simulator.
 */

#include <stddef.h>
#include <stdint.h>

#include "fota/error.h"
#include "fota/flash.h"

struct fota_flash_sim;

struct fota_flash_geometry {
    uint32_t size;              /* bytes, a multiple of sector_size */
    uint32_t sector_size;       /* a power of two */
    uint32_t write_align;       /* a power of two, <= sector_size and <= FOTA_FLASH_MAX_ALIGN */
    uint8_t erased_value;       /* usually 0xff */
};

enum fota_flash_cut_mode {
    FOTA_FLASH_CUT_CLEAN = 0,
    FOTA_FLASH_CUT_TORN = 1,
};

struct fota_flash_stats {
    uint64_t writes;            /* write operations */
    uint64_t erases;            /* erase operations (one call may span sectors) */
    uint64_t bytes_written;
    uint64_t sectors_erased;
};

/* A flash held in memory, every byte erased. FOTA_E_INVALID for a bad
 * geometry, FOTA_E_NOMEM. Release with fota_flash_sim_close. */
fota_err fota_flash_mem_create(const struct fota_flash_geometry *g,
                               struct fota_flash_sim **ret_sim);

/*
 * A flash kept in the file at path, mapped MAP_SHARED (writes reach the file
 * when the simulator is closed, or earlier at the kernel's pace).
 * create != 0: create or truncate the file to g->size bytes, all erased.
 * create == 0: open an existing file; g->size 0 means "the file's size",
 * otherwise the file must be exactly g->size bytes (FOTA_E_INVALID).
 * FOTA_E_NOT_FOUND when the file is missing (create == 0), FOTA_E_IO.
 */
fota_err fota_flash_file_open(const char *path, const struct fota_flash_geometry *g,
                              int create, struct fota_flash_sim **ret_sim);

/* Release (msync and unmap a file). NULL is accepted. */
void fota_flash_sim_close(struct fota_flash_sim *s);

/* The port for libfota. Valid until fota_flash_sim_close. */
const struct fota_flash *fota_flash_sim_dev(const struct fota_flash_sim *s);

/* The raw contents (size bytes), for checks. */
const uint8_t *fota_flash_sim_data(const struct fota_flash_sim *s);

/* Overwrite bytes ignoring every rule and without counting (tests: corrupt
 * an image, plant garbage). FOTA_E_FLASH when out of bounds. */
fota_err fota_flash_sim_poke(struct fota_flash_sim *s, uint32_t off, const void *buf, size_t len);

/* Copy the whole contents out to / in from buf (len must equal size,
 * FOTA_E_INVALID otherwise). Restore does not touch counters or power. */
fota_err fota_flash_sim_snapshot(const struct fota_flash_sim *s, uint8_t *buf, size_t len);
fota_err fota_flash_sim_restore(struct fota_flash_sim *s, const uint8_t *buf, size_t len);

void fota_flash_sim_stats(const struct fota_flash_sim *s, struct fota_flash_stats *ret_stats);
void fota_flash_sim_reset_stats(struct fota_flash_sim *s);

/* Arm a cut at the n-th counted operation from now (n >= 1); n == 0 disarms. */
void fota_flash_sim_cut_after(struct fota_flash_sim *s, uint64_t n, enum fota_flash_cut_mode mode);
void fota_flash_sim_seed(struct fota_flash_sim *s, uint64_t seed);

/* 1 while power is cut. */
int fota_flash_sim_is_cut(const struct fota_flash_sim *s);

/* Power on again after a cut: operations work again; any armed cut is disarmed. */
void fota_flash_sim_power_on(struct fota_flash_sim *s);

/*
 * The default device layout of fota-boot and fota-sim on a flash:
 * boot-state copy 0 = sector 0, copy 1 = sector 1, slot A from sector 2,
 * slot B right after it. slot_size 0 means (size - 2 sectors) / 2 rounded
 * down to a sector; otherwise it must be a multiple of the sector size and
 * both slots must fit. FOTA_E_INVALID otherwise.
 */
fota_err fota_flash_default_layout(const struct fota_flash *f, uint32_t slot_size,
                                   struct fota_flash_area ret_state[2],
                                   struct fota_flash_area ret_slot[2]);

#endif
