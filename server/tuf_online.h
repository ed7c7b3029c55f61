/* SPDX-License-Identifier: Apache-2.0 */
#ifndef FOTA_SERVER_TUF_ONLINE_H
#define FOTA_SERVER_TUF_ONLINE_H

/*
 * The online TUF roles of the served repository (data_dir/repo): the server
 * holds the snapshot and timestamp keys (never root or targets), re-signs
 * snapshot and timestamp when an operator publishes metadata signed offline
 * (targets, delegated roles, a new root: server/publish.c), and renews
 * timestamp (and snapshot, when it would expire before a new timestamp) in
 * a background thread.
 *
 * Files are built by lib/tuf_repo.c, exactly as `fota repo publish` builds
 * them, and written atomically (temp file, fsync, rename): root first, then
 * in the order a client reads them backwards: targets roles, snapshot,
 * timestamp last.
 *
 * Every change to repo/metadata happens under the repository lock: an
 * in-process mutex (fcntl locks belong to the process, not to a thread) plus
 * an fcntl write lock on data_dir/repo.lock (outside the served tree), so
 * that two server processes on one data_dir never interleave a publish or a
 * renewal. The lock is released by the kernel if a process dies holding it.
 * Whoever holds the lock re-reads the files first: a process that finds the
 * timestamp already renewed by another does nothing.
 */

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "fota/error.h"
#include "server.h"

struct fota_store;

/* The repository lock (see above). */
struct fota_repo_lock {
    int fd;
};

/* Wait for the lock. 0, or -1 with errno (logged). */
int fota_repo_lock_take(const struct fota_server *srv, struct fota_repo_lock *ret_lock);
void fota_repo_lock_release(struct fota_repo_lock *lock);

/* data_dir/repo/metadata/<name> into *ret_buf (malloc'ed, NUL-terminated),
 * capped at FOTA_TUF_REPO_MAX_METADATA. FOTA_E_NOT_FOUND when absent. */
fota_err fota_tuf_online_read(const struct fota_server *srv, const char *name, uint8_t **ret_buf,
                              size_t *ret_len);

/* The served root (metadata/root.json, the latest), strictly parsed and
 * shape-checked. */
fota_err fota_tuf_online_root(const struct fota_server *srv, json_t **ret_root);

/*
 * Check that the server can serve and maintain the repository: root.json,
 * targets.json, snapshot.json and timestamp.json present and well formed,
 * and the configured snapshot and timestamp keys loaded and meeting their
 * role's threshold in root. On failure writes a one-line reason into err
 * (naming `fota-server init` when the repository is missing) and returns -1.
 */
int fota_tuf_online_check(const struct fota_server *srv, char *err, size_t errlen);

/*
 * The key half of fota_tuf_online_check against any root envelope (a new
 * root an operator sends, before it is served): the server's snapshot and
 * timestamp keys are each listed for their role in root, whose threshold for
 * the role is 1. -1 with a one-line reason in err otherwise.
 */
int fota_tuf_online_check_keys(const struct fota_server *srv, const json_t *root, char *err,
                               size_t errlen);

/* Longest encoded role name (fota_tuf_encode_name) the server writes, so
 * that "<version>.<encoded>.json" stays one file name. */
#define FOTA_TUF_ONLINE_ROLE_FILE_MAX 200

/* A targets role to publish: "targets" or a delegated role's name, its
 * version, and the exact bytes to serve (what the operator signed,
 * serialised by fota_tuf_repo_bytes). */
struct fota_tuf_online_role {
    const char *name;
    int64_t version;
    const char *bytes;
    size_t len;
};

/*
 * Publish what the caller verified (the caller holds the repository lock):
 *   - new_root (may be NULL) with root_bytes: metadata/N.root.json and
 *     root.json, written first; snapshot and timestamp are then signed for
 *     it (its snapshot and timestamp roles must list the server's keys:
 *     fota_tuf_online_check_keys);
 *   - each of roles: metadata/V.<encoded name>.json and <encoded name>.json;
 *   - ONE new snapshot (version + 1) whose meta is the served one with the
 *     entry of every role in roles replaced or added, and a new timestamp
 *     (version + 1), written last.
 * nroles may be 0 (a new root alone: snapshot and timestamp re-signed).
 * st (may be NULL) gets the new versions in its TUF state row (best
 * effort). *ret_snapshot_version / *ret_timestamp_version (may be NULL) get
 * the new versions. FOTA_E_IO when a file could not be written (files
 * already written stay: each is a complete, valid file, and timestamp is
 * written last, so clients still see the previous release until it is).
 */
fota_err fota_tuf_online_publish(const struct fota_server *srv, struct fota_store *st,
                                 const json_t *new_root, const char *root_bytes, size_t root_len,
                                 const struct fota_tuf_online_role *roles, size_t nroles,
                                 int64_t *ret_snapshot_version, int64_t *ret_timestamp_version);

/*
 * Renew under the repository lock: when timestamp expires within
 * timestamp_renew_before, a new timestamp version over the same snapshot;
 * when snapshot would expire before timestamp_expiry + renew_before from
 * now, first a new snapshot version with the same meta. A snapshot or
 * timestamp that the served root's keys for its role do not sign (after a
 * root that rotated them was put in place) is renewed at once. force renews
 * timestamp whatever its expiry. *ret_renewed (may be NULL) = 1 when a file
 * was written; *ret_next_due (may be NULL) = when the next renewal is due
 * (epoch seconds).
 */
fota_err fota_tuf_online_renew(const struct fota_server *srv, struct fota_store *st, int force,
                               int *ret_renewed, int64_t *ret_next_due);

/*
 * Start-up: fota_tuf_online_check (printing its reason on stderr as
 * "fota-server: <reason>" and returning -1 on failure), one renewal at
 * once, then a background thread that renews whenever due, waking at least
 * every minute. 0 on success. Call once, after the keys are loaded.
 */
int fota_tuf_online_start(struct fota_server *srv);

/* Stop and join the thread (no-op when not started). */
void fota_tuf_online_stop(void);

#endif
