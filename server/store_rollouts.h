/* SPDX-License-Identifier: Apache-2.0 */
#ifndef FOTA_SERVER_STORE_ROLLOUTS_H
#define FOTA_SERVER_STORE_ROLLOUTS_H

/*
 * Rollouts: a release assigned to a fixed device list in waves, and each
 * listed device's progress. State changes are guarded in SQL (expected
 * state, expected wave) so that several threads or processes evaluating the
 * same rollout agree: exactly one wins, the others get CONFLICT. See store.h
 * for the conventions.
 */

#include <stddef.h>
#include <stdint.h>

#include "store.h"

enum fota_store_rollout_state {
    FOTA_STORE_ROLLOUT_ACTIVE = 0,
    FOTA_STORE_ROLLOUT_PAUSED = 1,
    FOTA_STORE_ROLLOUT_ABORTED = 2,
    FOTA_STORE_ROLLOUT_COMPLETED = 3,
};
#define FOTA_STORE_ROLLOUT_STATE_COUNT 4
#define FOTA_STORE_ROLLOUT_BIT(s) (1u << (unsigned)(s))

/* "active", "paused", "aborted", "completed" (NULL for a bad value). */
const char *fota_store_rollout_state_name(enum fota_store_rollout_state s);
enum fota_store_err fota_store_rollout_state_parse(const char *name,
                                                   enum fota_store_rollout_state *ret);

/* A listed device's progress in a rollout. */
enum fota_store_rd_status {
    FOTA_STORE_RD_ASSIGNED = 0,
    FOTA_STORE_RD_DOWNLOADING = 1,
    FOTA_STORE_RD_INSTALLED = 2,
    FOTA_STORE_RD_REBOOTED = 3,
    FOTA_STORE_RD_CONFIRMED = 4,
    FOTA_STORE_RD_ROLLED_BACK = 5,
    FOTA_STORE_RD_FAILED = 6,
};
#define FOTA_STORE_RD_STATUS_COUNT 7
#define FOTA_STORE_RD_BIT(s) (1u << (unsigned)(s))

/* "assigned", "downloading", "installed", "rebooted", "confirmed",
 * "rolled_back", "failed" (NULL for a bad value). */
const char *fota_store_rd_status_name(enum fota_store_rd_status s);
enum fota_store_err fota_store_rd_status_parse(const char *name, enum fota_store_rd_status *ret);

struct fota_store_rollout {
    char id[FOTA_STORE_ID_MAX + 1];
    char release_id[FOTA_STORE_ID_MAX + 1];
    enum fota_store_rollout_state state;
    int current_wave;                        /* open wave, 0-based, < wave_count */
    int wave_count;                          /* 1..FOTA_STORE_WAVES_MAX */
    int waves[FOTA_STORE_WAVES_MAX];         /* percentages, 1..100, ascending */
    double success_threshold;                /* 0..1 */
    double failure_limit;                    /* 0..1 */
    int rollback;                            /* 1: a rollback rollout */
    int64_t device_count;                    /* devices listed */
    char created_by[FOTA_STORE_NAME_MAX + 1];/* token name of the operator */
    int64_t created;
    int64_t updated;                         /* last state or wave change */
    char *group_json;                        /* the group as requested (JSON text),
                                              * malloc'ed; free with fota_store_rollout_clear */
};

void fota_store_rollout_clear(struct fota_store_rollout *r);
void fota_store_rollout_list_free(struct fota_store_rollout *items, size_t n);

struct fota_store_rollout_member {
    const char *device_id;
    int wave;                                /* 0..wave_count-1 */
};

/*
 * Create a rollout and its device list in one transaction (all or nothing).
 * Reads from r: id, release_id, state (normally ACTIVE), current_wave,
 * wave_count, waves, success_threshold, failure_limit, rollback, created_by,
 * created (also updated), group_json (NULL: "{}"); device_count is set to n.
 * Every member starts ASSIGNED (updated = created). n may be 0.
 * Returns OK, CONFLICT (id exists, unknown release or device, a device listed
 * twice), INVALID, BUSY, ERROR.
 *
 * The rollout is created HIDDEN: no query (get, list, assignment, state
 * changes) sees it until fota_store_rollout_reveal. Called outside a
 * transaction, the members are written 2,000 per transaction, so the write
 * lock is never held for long whatever the group's size; inside the
 * caller's transaction, everything goes into it. On failure what was
 * written is removed (fota_store_rollout_discard).
 */
enum fota_store_err fota_store_rollout_create(struct fota_store *st,
                                              const struct fota_store_rollout *r,
                                              const struct fota_store_rollout_member *members,
                                              size_t n);

/* Make a hidden rollout visible (one UPDATE, meant to share the caller's
 * transaction with the audit entry). NOT_FOUND when id is not hidden. */
enum fota_store_err fota_store_rollout_reveal(struct fota_store *st, const char *id);

/* Delete a HIDDEN rollout and its members (members in chunks, each in its
 * own transaction: call it outside a transaction). A visible rollout is
 * never touched. */
enum fota_store_err fota_store_rollout_discard(struct fota_store *st, const char *id);

/* Discard every hidden rollout created before created_before (left by a
 * process that died while creating it); *ret_n (may be NULL): how many. */
enum fota_store_err fota_store_rollout_sweep(struct fota_store *st, int64_t created_before,
                                             size_t *ret_n);

/* Every field (free with fota_store_rollout_clear).
 * Returns OK, NOT_FOUND, INVALID, ERROR. */
enum fota_store_err fota_store_rollout_get(struct fota_store *st, const char *id,
                                           struct fota_store_rollout *ret);

/*
 * Rollouts whose state is in state_mask (0: any), ordered by id, id > after
 * (NULL or "": from the start), at most limit (1..FOTA_STORE_PAGE_MAX).
 * Items include group_json. Free with fota_store_rollout_list_free.
 * Returns OK, INVALID, ERROR.
 */
enum fota_store_err fota_store_rollout_list(struct fota_store *st, unsigned state_mask,
                                            const char *after, unsigned limit,
                                            struct fota_store_rollout **ret_items,
                                            size_t *ret_n, int *ret_more);

/*
 * Set the state to next if the current state is in from_mask (0: any);
 * updated = now. One statement.
 * Returns OK, NOT_FOUND, CONFLICT (state not in from_mask), INVALID, BUSY,
 * ERROR.
 */
enum fota_store_err fota_store_rollout_set_state(struct fota_store *st, const char *id,
                                                 enum fota_store_rollout_state next,
                                                 unsigned from_mask, int64_t now);

/*
 * Advance: set current_wave to next_wave only if the rollout is ACTIVE and
 * its current wave is still expected_wave (UPDATE ... WHERE current_wave = ?),
 * so of two concurrent advances only one wins. next_wave < wave_count.
 * Returns OK, NOT_FOUND, CONFLICT (wave moved on or not active), INVALID,
 * BUSY, ERROR.
 */
enum fota_store_err fota_store_rollout_set_wave(struct fota_store *st, const char *id,
                                                int expected_wave, int next_wave, int64_t now);

struct fota_store_rollout_device {
    char rollout_id[FOTA_STORE_ID_MAX + 1];
    char device_id[FOTA_STORE_ID_MAX + 1];
    int wave;
    enum fota_store_rd_status status;
    char reason[FOTA_STORE_REASON_MAX + 1];  /* "" when none */
    int64_t updated;
};

/* Returns OK, NOT_FOUND (device not listed), INVALID, ERROR. */
enum fota_store_err fota_store_rollout_device_get(struct fota_store *st, const char *rollout_id,
                                                  const char *device_id,
                                                  struct fota_store_rollout_device *ret);

/*
 * Set a listed device's status to next if its current status is in from_mask
 * (0: any); reason (NULL: "") and updated = now. One statement.
 * Returns OK, NOT_FOUND (not listed), CONFLICT (status not in from_mask),
 * INVALID, BUSY, ERROR.
 */
enum fota_store_err fota_store_rollout_device_set_status(struct fota_store *st,
                                                         const char *rollout_id,
                                                         const char *device_id,
                                                         enum fota_store_rd_status next,
                                                         unsigned from_mask, const char *reason,
                                                         int64_t now);

/*
 * The listed devices of a rollout whose status is in status_mask (0: any),
 * ordered by device id, device_id > after, at most limit. *ret_items is
 * malloc'ed (free with free()). Returns OK, INVALID, ERROR.
 */
enum fota_store_err fota_store_rollout_device_list(struct fota_store *st, const char *rollout_id,
                                                   unsigned status_mask, const char *after,
                                                   unsigned limit,
                                                   struct fota_store_rollout_device **ret_items,
                                                   size_t *ret_n, int *ret_more);

/* Progress: devices per wave and status (one GROUP BY query). */
struct fota_store_rollout_counts {
    int64_t n[FOTA_STORE_WAVES_MAX][FOTA_STORE_RD_STATUS_COUNT];
    int64_t total;
};

/* Returns OK (all zero for an unknown rollout), INVALID, ERROR. */
enum fota_store_err fota_store_rollout_counts(struct fota_store *st, const char *id,
                                              struct fota_store_rollout_counts *ret);

/* What the Director needs at check-in: the device's rollout, its place in
 * it, and the release's target info. */
struct fota_store_assignment {
    char rollout_id[FOTA_STORE_ID_MAX + 1];
    enum fota_store_rollout_state state;
    int current_wave;                        /* the rollout's open wave */
    int wave_count;
    int rollback;
    int wave;                                /* the device's wave */
    enum fota_store_rd_status status;        /* the device's progress */
    char release_id[FOTA_STORE_ID_MAX + 1];
    char target_name[FOTA_STORE_TARGET_MAX + 1];
    int64_t length;
    char sha256[FOTA_STORE_SHA256_HEX + 1];
    char version[FOTA_STORE_VERSION_MAX + 1];
    int64_t security_counter;
};

/*
 * The check-in hot path, one indexed query: the newest rollout (by created,
 * then id) that lists device_id, whose state is in state_mask (0 means
 * ACTIVE|PAUSED), and whose release lists the device's CURRENT hardware id
 * (a device never gets a release built for other hardware, even if the
 * rollout listed it). Whether to answer install (open wave, not running the
 * version yet, state) is the caller's decision.
 * Returns OK, NOT_FOUND (no such rollout), INVALID, ERROR.
 */
enum fota_store_err fota_store_rollout_assignment(struct fota_store *st, const char *device_id,
                                                  unsigned state_mask,
                                                  struct fota_store_assignment *ret);

#endif
