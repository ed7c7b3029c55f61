/* SPDX-License-Identifier: Apache-2.0 */
#ifndef FOTA_BOOT_H
#define FOTA_BOOT_H

/*
 * A/B slots, the boot state, the boot decision, and the install side the
 * agent drives. One module for the bootloader and the agent, so that both
 * read and write the boot state the same way. docs/boot.md holds the state
 * table, read top to bottom.
 *
 * Nothing here allocates; the caller owns every context and the scratch
 * buffer. Every change of state is written to flash before it is acted on.
 */

#include <stddef.h>
#include <stdint.h>

#include "fota/crypto.h"
#include "fota/error.h"
#include "fota/flash.h"
#include "fota/image.h"

/*
 * The boot-state record, FROZEN layout (32 bytes, little-endian), kept in
 * two copies (struct fota_device.state[0] and [1]); the valid copy with the
 * higher seq is the state. A store goes to the other copy (erase, then one
 * write), so a power cut at any point leaves the previous state readable.
 *   off size field
 *     0    4 magic             FOTA_BOOT_STATE_MAGIC
 *     4    4 seq               incremented by every store
 *     8    1 active            slot of the confirmed image: 0 or 1
 *     9    1 pending           1: the other slot holds an image to try
 *    10    1 attempts_left     trial boots left for the pending image
 *    11    1 trial             1: the pending image was booted on trial
 *    12    4 security_counter  the lowest counter an image may carry
 *    16   12 reserved          0
 *    28    4 crc32             IEEE CRC-32 of bytes 0..27
 */
#define FOTA_BOOT_STATE_MAGIC 0x54534246u   /* FROZEN: "FBST" in file order */
#define FOTA_BOOT_STATE_LEN 32u             /* FROZEN */
#define FOTA_BOOT_ATTEMPTS_DEFAULT 3u
#define FOTA_FLASH_MAX_ALIGN 64u            /* largest write_align supported */

struct fota_boot_state {
    uint32_t seq;
    uint8_t active;
    uint8_t pending;
    uint8_t attempts_left;
    uint8_t trial;
    uint32_t security_counter;
};

/* The device as the boot logic sees it. */
struct fota_device {
    struct fota_flash_area state[2];    /* the two boot-state copies */
    struct fota_flash_area slot[2];     /* image slots A (0) and B (1) */
    const struct fota_image_key *keys;  /* built-in trusted image keys */
    size_t n_keys;
    unsigned threshold;                 /* >= 1 */
    const char *hardware_id;
    unsigned trial_attempts;            /* 0 means FOTA_BOOT_ATTEMPTS_DEFAULT */
    uint8_t *scratch;                   /* caller-owned, >= 256 bytes */
    size_t scratch_len;
};

/* Record encoding (exposed for tests and tools). */
void fota_boot_state_encode(const struct fota_boot_state *st, uint8_t out[FOTA_BOOT_STATE_LEN]);
fota_err fota_boot_state_decode(const uint8_t raw[FOTA_BOOT_STATE_LEN],
                                struct fota_boot_state *ret_st);   /* FOTA_E_PARSE: magic, CRC, ranges */

/* The current state: the valid copy with the higher seq. When neither copy
 * is valid (a new device), the factory state: seq 0, active 0, nothing
 * pending, security counter 0. */
fota_err fota_boot_state_load(const struct fota_device *dev, struct fota_boot_state *ret_st);

/* Write st as the next state (st->seq is set to current seq + 1). */
fota_err fota_boot_state_store(const struct fota_device *dev, struct fota_boot_state *st);

enum fota_boot_reason {
    FOTA_BOOT_CONFIRMED = 0,        /* the active, confirmed image */
    FOTA_BOOT_TRIAL = 1,            /* the pending image, on trial */
    FOTA_BOOT_REVERTED_ATTEMPTS = 2,/* pending image ran out of attempts: back to active */
    FOTA_BOOT_REVERTED_INVALID = 3, /* pending image failed verification: back to active */
    FOTA_BOOT_FALLBACK = 4,         /* active image failed verification; the other slot verified */
};

const char *fota_boot_reason_name(enum fota_boot_reason r);

struct fota_boot_decision {
    int slot;                       /* 0 or 1 */
    enum fota_boot_reason reason;
    struct fota_image_info image;   /* the image that will run (verified) */
    struct fota_boot_state state;   /* the state as stored before booting */
    fota_err rejected;              /* why the other candidate was refused (FOTA_OK if none) */
};

/*
 * Power-on: decide which slot to boot, per docs/boot.md. Verifies the image
 * before choosing it (signature with dev->keys, hardware id, security counter
 * not below the stored one) and stores any change of state (attempt counted,
 * revert) before returning. FOTA_E_NO_IMAGE when no slot holds an image that
 * verifies: the device must not boot anything.
 */
fota_err fota_boot(const struct fota_device *dev, struct fota_boot_decision *ret_decision);

/* The running image confirms itself (after its health check): the trial
 * slot becomes active and the stored security counter is raised to its
 * image's counter. FOTA_OK and no write when nothing is on trial. */
fota_err fota_boot_confirm(const struct fota_device *dev);

/* Operator-authorised rollback: make the other slot active if its image
 * verifies and its security counter is not below the stored one
 * (FOTA_E_ROLLBACK otherwise). Refused (FOTA_E_STATE) while an update is
 * pending or on trial: the other slot then holds the new image. */
fota_err fota_boot_rollback(const struct fota_device *dev);

/* The image on trial failed its health check: un-mark it (nothing pending,
 * attempts 0, trial 0) so that the next boot runs the confirmed image of the
 * active slot, as the bootloader would once the attempts ran out.
 * FOTA_E_STATE when nothing is on trial; no write then. */
fota_err fota_boot_reject(const struct fota_device *dev);

/* The slot the device runs now, from the stored state: the pending slot
 * while on trial, the active slot otherwise. */
fota_err fota_boot_running_slot(const struct fota_device *dev, int *ret_slot,
                                struct fota_boot_state *ret_state);

/* ---- install: the agent writes a new image into the inactive slot ------ */

struct fota_install {
    const struct fota_device *dev;
    int slot;                       /* the inactive slot being written */
    uint32_t expected_len;          /* from signed metadata */
    uint8_t expected_sha256[32];
    uint32_t written;               /* bytes accepted so far */
    uint32_t erased;                /* bytes of the slot erased so far */
    fota_sha256 hash;
    uint8_t pend[FOTA_FLASH_MAX_ALIGN];   /* bytes waiting for a full write unit */
    size_t n_pend;
    int open;
};

/* Start writing an image of exactly length bytes whose SHA-256 is sha256
 * into the inactive slot. Refused during a trial (FOTA_E_STATE) and when
 * length does not fit the slot (FOTA_E_LENGTH). A previously pending image
 * in that slot is un-marked (stored) before the slot is touched. */
fota_err fota_install_begin(struct fota_install *in, const struct fota_device *dev,
                            uint32_t length, const uint8_t sha256[32]);

/* Append bytes as they stream in; sectors are erased just ahead of the
 * writes. FOTA_E_LENGTH as soon as more than length bytes are given. */
fota_err fota_install_write(struct fota_install *in, const void *data, size_t len);

/* Check length and SHA-256, verify the image in flash (signature, hardware
 * id, security counter), then store the state with the slot pending and
 * dev->trial_attempts attempts. *ret_info (may be NULL) written on FOTA_OK. */
fota_err fota_install_finish(struct fota_install *in, struct fota_image_info *ret_info);

/* Give up an install; the slot is left unmarked. */
void fota_install_abort(struct fota_install *in);

/* Bytes of the image already programmed into the slot, rounded down to the
 * start of their sector: a safe resume point to record (the sector holding
 * the end of the data may be half-written when power is cut). */
uint32_t fota_install_resume_point(const struct fota_install *in);

/* Resume an install after a restart (dropped connection, power cut): like
 * fota_install_begin, then re-reads the first `from` bytes already in the
 * inactive slot into the running SHA-256 and continues after them. `from` is
 * rounded down to a sector boundary (the sector holding it is erased again
 * before its first write); the actual resume offset is in->written on
 * FOTA_OK and is where the caller's data must continue. The bytes re-read
 * are trusted for nothing: fota_install_finish checks the whole image's
 * length, SHA-256 and signature as always. FOTA_E_LENGTH when from >
 * length. from == 0 is fota_install_begin. */
fota_err fota_install_resume(struct fota_install *in, const struct fota_device *dev,
                             uint32_t length, const uint8_t sha256[32], uint32_t from);

#endif
