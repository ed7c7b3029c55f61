/* SPDX-License-Identifier: Apache-2.0 */
#ifndef FOTA_SERVER_ROLLOUT_H
#define FOTA_SERVER_ROLLOUT_H

/*
 * The rollout planner (server/rollout.c): which release a device should
 * install, in which wave, and when a rollout advances, pauses itself or ends.
 * The rules are in docs/rollouts.md; in short:
 *
 *  - the group is fixed when the rollout is created (only accepted devices
 *    whose hardware id the release lists; a rollout whose release security
 *    counter is below any member's stored counter is refused);
 *  - members are ordered by SHA-256(rollout id || device id); wave k covers
 *    the first ceil(pct_k * n / 100) of them;
 *  - success is a `confirmed` report AND a later check-in running the
 *    release version; `installed` or `rebooted` are not success;
 *  - the next wave opens when the share of succeeded members among those
 *    the current wave covers reaches success_threshold; the rollout pauses
 *    itself when (failed + rolled_back) / (members in open waves) exceeds
 *    failure_limit.
 *
 * Transactions: every function here that writes opens its own store
 * transaction (fota_store_begin nests as a savepoint), so it is atomic on
 * its own; call it inside YOUR transaction to make it atomic with your own
 * writes (the check-in handler: the check-in record and the rollout
 * transition, one commit; the operator API: the change and its audit entry).
 * On failure the function has rolled back its own level; the caller rolls
 * back its own. Each write is also guarded by its expected old state
 * (compare-and-set in the store), so several server processes sharing one
 * database agree on every transition.
 *
 * Errors (fota_err), and the HTTP status the API maps them to:
 *   FOTA_E_INVALID / FOTA_E_PARSE  bad request body                     400
 *   FOTA_E_NOT_FOUND               unknown rollout, release or device   404
 *   FOTA_E_ROLLBACK                release counter below a member's     409
 *   FOTA_E_HARDWARE                explicit device lacks the hardware id 409
 *   FOTA_E_STATE                   operation not allowed in this state  409
 *   FOTA_E_IO / FOTA_E_NOMEM       store failure                        500
 */

#include <stdint.h>

#include <jansson.h>

#include "fota/error.h"

struct fota_store;

#define FOTA_ROLLOUT_ID_MAX 64       /* rollout id, printable ASCII */
#define FOTA_ROLLOUT_NAME_MAX 255    /* TUF target path */
#define FOTA_ROLLOUT_VERSION_MAX 64  /* version string */
#define FOTA_ROLLOUT_MAX_WAVES 16
#define FOTA_ROLLOUT_MAX_GROUP 1000000 /* members per rollout */

/* What the Director should name in an "install" answer. */
struct fota_rollout_target {
    char rollout_id[FOTA_ROLLOUT_ID_MAX + 1];
    char name[FOTA_ROLLOUT_NAME_MAX + 1];         /* TUF target path */
    uint64_t length;
    char sha256[65];                              /* lower-case hex */
    char version[FOTA_ROLLOUT_VERSION_MAX + 1];
    uint64_t security_counter;
};

enum fota_rollout_action {
    FOTA_ROLLOUT_STAY = 0,
    FOTA_ROLLOUT_INSTALL = 1,
};

/*
 * The check-in decision for one device. Call it after the check-in itself is
 * recorded, in the same transaction. device_id: the enrolled device;
 * hardware_id: its enrolled hardware id (NULL: looked up in the store);
 * running_version: the version the device just reported running.
 *
 * Which rollout: the newest active or paused rollout that lists the device
 * and whose release lists the device's hardware id. INSTALL when the
 * rollout is active, the device's wave is open, it is not running the
 * release version and has not failed; while paused only members already
 * downloading or installed keep INSTALL (so an interrupted install ends
 * cleanly); aborted and completed rollouts answer STAY to everyone.
 *
 * Also applies the transitions a check-in proves: a member that reported
 * `confirmed` and now runs the release version counts as confirmed (success;
 * may open the next wave); a member that reported `rebooted` (or confirmed)
 * but now runs another version counts as rolled_back (may pause the
 * rollout); a member not yet rebooted that runs the release version moves
 * to rebooted (it still has to confirm).
 *
 * On FOTA_OK *ret_action is STAY or INSTALL, and ret_target is filled for
 * INSTALL only. A device in no rollout gets FOTA_OK + STAY. Never INSTALL
 * for a release whose hardware ids do not include hardware_id.
 */
fota_err fota_rollout_decide(struct fota_store *st, const char *device_id,
                             const char *hardware_id, const char *running_version,
                             int64_t now, enum fota_rollout_action *ret_action,
                             struct fota_rollout_target *ret_target);

/*
 * A device report (POST /device/v1/report), after it is appended to the
 * device's history, in the same transaction. event: "downloading",
 * "installed", "rebooted", "confirmed", "rolled_back" or "failed"; target
 * and version: what the report is about (either may be NULL). A report that
 * does not name the device's current rollout release (by target name or
 * version) changes nothing. A report for a device in no rollout is FOTA_OK.
 * An unknown event is FOTA_E_INVALID. Failures may pause the rollout.
 */
fota_err fota_rollout_report(struct fota_store *st, const char *device_id,
                             const char *event, const char *target,
                             const char *version, int64_t now);

/*
 * Create a rollout from the operator's request body (POST /api/v1/rollouts):
 *   {"release":id, "group":{"devices":[..]} | {"hardware_id":..,"version":..,"tags":[..]},
 *    "waves":[5,25,100], "success_threshold":0.9, "failure_limit":0.1, "rollback":false}
 * (waves default [100], success_threshold 1.0, failure_limit 0.0,
 * rollback false). Evaluates the group now and stores the members with their
 * waves: accepted devices only, whose hardware id the release lists and that
 * do not already run the release version (a filter group silently leaves the
 * others out; an explicit list naming an unknown device is FOTA_E_NOT_FOUND,
 * one that is not accepted FOTA_E_STATE, one of other hardware
 * FOTA_E_HARDWARE). An empty group is FOTA_E_STATE. actor (the operator
 * token's name) is recorded as created_by. On failure a human-readable reason
 * is written to errbuf (may be NULL) and nothing is stored. On FOTA_OK ret_id
 * holds the new id.
 */
fota_err fota_rollout_create(struct fota_store *st, const json_t *request, const char *actor,
                             int64_t now, char ret_id[FOTA_ROLLOUT_ID_MAX + 1],
                             char *errbuf, size_t errlen);

/*
 * fota_rollout_create without the last step: the rollout is stored hidden
 * (fota_store_rollout_create) and the caller reveals it
 * (fota_store_rollout_reveal, in the transaction that also writes the audit
 * entry) or discards it (fota_store_rollout_discard). Called outside a
 * transaction (the API does), the group is read without holding the write
 * lock and the members are written in short transactions: creating a
 * rollout of a million devices does not stall check-ins.
 */
fota_err fota_rollout_prepare(struct fota_store *st, const json_t *request, const char *actor,
                              int64_t now, char ret_id[FOTA_ROLLOUT_ID_MAX + 1],
                              char *errbuf, size_t errlen);

/*
 * Operator state changes: op is "pause", "resume" or "abort".
 * pause: active -> paused; resume: paused -> active (then re-evaluates the
 * wave and failure rules); abort: active|paused -> aborted. Anything else,
 * e.g. resuming an aborted or completed rollout, is FOTA_E_STATE; an
 * unknown id is FOTA_E_NOT_FOUND; an unknown op FOTA_E_INVALID.
 */
fota_err fota_rollout_set_state(struct fota_store *st, const char *rollout_id,
                                const char *op, int64_t now);

/*
 * The rollout as JSON (GET /api/v1/rollouts/{id}): its fields, state,
 * current wave, and progress: per wave {"percent","size","open",counts per
 * member state} plus totals. *ret_json is a new reference.
 */
fota_err fota_rollout_get_json(struct fota_store *st, const char *rollout_id,
                               json_t **ret_json);

/*
 * Rollouts (GET /api/v1/rollouts), ordered by id (which sorts by creation
 * time), ids after `after` (NULL: from the start), at most limit (1..1000),
 * optionally only those in state (NULL: any; else FOTA_E_INVALID for an
 * unknown state name): {"rollouts":[summary..],"next":<last id or null>},
 * each summary being get_json without the progress fields. *ret_json is a
 * new reference.
 */
fota_err fota_rollout_list_json(struct fota_store *st, const char *state,
                                const char *after, unsigned limit, json_t **ret_json);

/*
 * The members of a rollout (GET /api/v1/rollouts/{id}/devices), ordered by
 * device id, ids after `after`, at most limit, optionally only those in
 * status (NULL: any): {"devices":[{"device","wave","status","reason",
 * "updated"}],"next":<last id or null>}. *ret_json is a new reference.
 */
fota_err fota_rollout_devices_json(struct fota_store *st, const char *rollout_id,
                                   const char *status, const char *after, unsigned limit,
                                   json_t **ret_json);

#endif
