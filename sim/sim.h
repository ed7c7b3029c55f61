/* SPDX-License-Identifier: Apache-2.0 */
#ifndef FOTA_SIM_H
#define FOTA_SIM_H

/*
 * Private header of fota-sim (sim/). Nothing here is part of libfota:
 * symbols are prefixed sim_ and live only in this program.
 *
 * Conventions: functions that can fail return fota_err and write their
 * ret_* outputs only on FOTA_OK; commands return an exit status
 * (SIM_EXIT_OK, SIM_EXIT_FAIL, SIM_EXIT_USAGE) and print their own errors
 * as "fota-sim: <command>: <reason>" on stderr.
 */

#include <stddef.h>
#include <stdint.h>

#include "flash_file.h"
#include "fota/boot.h"
#include "fota/crypto.h"
#include "fota/error.h"
#include "fota/flash.h"
#include "fota/image.h"
#include "fota/image_build.h"

enum {
    SIM_EXIT_OK = 0,     /* the proof held */
    SIM_EXIT_FAIL = 1,   /* an invariant broke, or the simulator failed */
    SIM_EXIT_USAGE = 2,  /* bad or missing option */
};

/* ---- deterministic randomness (image payloads, cut schedules) ---------- */

struct sim_rng {
    uint64_t s;
};

void sim_rng_seed(struct sim_rng *r, uint64_t seed);
uint64_t sim_rng_next(struct sim_rng *r);
/* Uniform in [0, n) for n >= 1. */
uint64_t sim_rng_below(struct sim_rng *r, uint64_t n);

/* ---- signed test images (image_build.c) -------------------------------- */

/* A signing key together with its public half and image key id. */
struct sim_signer {
    fota_privkey *priv;             /* owned */
    struct fota_image_signer img;   /* img.priv == priv; img.pub, img.id */
};

/* Generate a fresh key of the given type. */
fota_err sim_signer_generate(fota_key_type type, struct sim_signer *ret_signer);
void sim_signer_free(struct sim_signer *s);

struct sim_image_spec {
    uint16_t major, minor, patch;
    uint32_t build;
    uint32_t security_counter;
    const char *hardware_id;
    uint32_t payload_len;           /* 1 .. SIM_IMAGE_PAYLOAD_MAX */
    uint64_t fill_seed;             /* payload bytes come from this seed */
};

#define SIM_IMAGE_PAYLOAD_MAX (16u * 1024u * 1024u)

/* A complete signed image in memory (header + payload + trailer). */
struct sim_image {
    uint8_t *data;                  /* malloc'ed, len bytes */
    uint32_t len;
    uint8_t digest[32];             /* SHA-256 of header and payload (signed) */
    uint8_t file_sha256[32];        /* SHA-256 of the whole image (as TUF lists it) */
    uint32_t security_counter;
};

/* Build an image per include/fota/image.h, signed by signer, with
 * fota_image_build. FOTA_E_INVALID for a bad spec. */
fota_err sim_image_build(const struct sim_image_spec *spec, const struct sim_signer *signer,
                         struct sim_image *ret_image);
void sim_image_free(struct sim_image *img);

/* ---- the simulated device (device.c) ----------------------------------- */

/* One flash operation seen by the device (traced in the reference run). */
struct sim_op {
    uint8_t is_erase;
    uint32_t off;
    uint32_t len;
};

struct sim_device_config {
    uint32_t image_len;             /* the slots must hold an image this long */
    uint32_t sector_size;
    uint32_t write_align;
    const char *hardware_id;
};

/*
 * In-memory flash (ports/posix flash_file.h) seen through a tracing port,
 * laid out as fota_flash_default_layout says: two boot-state copies, then
 * slots A and B. The device trusts exactly one key. Allocate with
 * sim_device_create (the struct refers to itself and must not move).
 */
struct sim_device {
    struct fota_flash_sim *flash;
    const struct fota_flash *raw;   /* the simulator's own port */
    struct fota_flash port;         /* tracing wrapper libfota sees */
    struct fota_device dev;
    struct fota_image_key key;
    uint32_t size;

    /* tracing: every counted write and erase while trace_on */
    int trace_on;
    struct sim_op *trace;
    size_t n_trace, cap_trace;
    int trace_overflow;

    /* flash rules broken by the code under test (FOTA_E_FLASH from the port) */
    uint64_t rule_violations;
    struct sim_op last_violation;

    uint8_t scratch[4096];          /* dev.scratch: libfota's */
    uint8_t *snapshot;              /* sim_device_save / _load */
};

fota_err sim_device_create(const struct sim_device_config *cfg, const struct sim_signer *trusted,
                           struct sim_device **ret_device);
void sim_device_free(struct sim_device *d);

/* Save / restore the whole flash (one memcpy each); restore also powers on,
 * disarms any cut and zeroes the operation counters. */
fota_err sim_device_save(struct sim_device *d);
fota_err sim_device_load(struct sim_device *d);

/* Counted operations (writes + erases) since the last load. */
uint64_t sim_device_ops(const struct sim_device *d);

/* Place an image in a slot, ignoring flash rules and counters (setup and
 * checks only): the slot is erased first. */
fota_err sim_device_plant(struct sim_device *d, int slot, const uint8_t *data, uint32_t len);

/* "slot B +0x1000" style name of a flash offset, for messages. */
void sim_device_where(const struct sim_device *d, uint32_t off, char *buf, size_t len);

/* Read callback over a struct fota_flash_area (ctx). */
fota_err sim_area_read(void *ctx, uint32_t offset, void *buf, size_t len);

/* ---- commands ---------------------------------------------------------- */

/* An option value of `fota-sim CMD` in [min, max]: 1, or 0 after saying
 * why on stderr ("fota-sim: CMD: NAME: ..."). */
int sim_parse_u64(const char *cmd, const char *name, const char *s, uint64_t min, uint64_t max,
                  uint64_t *ret);

int sim_powercut_main(int argc, char **argv);

/* ---- fota-sim fleet (fleet.c; built when the agent core is: agent/) ---- */

/* N simulated devices driven by the agent core against a fota-server
 * (docs/fleet.md). */
int sim_fleet_main(int argc, char **argv);

#endif
