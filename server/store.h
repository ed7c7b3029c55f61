/* SPDX-License-Identifier: Apache-2.0 */
#ifndef FOTA_SERVER_STORE_H
#define FOTA_SERVER_STORE_H

/*
 * The storage interface of fota-server: every piece of fleet state goes
 * through the functions declared here and in server/store_<domain>.h. The
 * SQLite backend lives in server/store_sqlite*.c; a PostgreSQL backend would
 * implement the same headers in store_pg*.c, chosen at build time (see
 * docs/server-storage.md). Nothing above this interface knows SQL.
 *
 * Connections. A struct fota_store is one database connection and must be
 * used by one thread at a time. The server gives every MHD pool thread its
 * own connection with fota_store_thread_get(); tools (`fota-server token
 * new`, `init`) open one with fota_store_open(). Several connections, threads
 * or processes may share one database file: every function is correct under
 * that sharing (guards are in the SQL, never in process memory).
 *
 * Errors. Every function that can fail returns an enum fota_store_err.
 * Outputs named ret_* are written only on FOTA_STORE_OK (lists: also only on
 * success; on failure they are left untouched and nothing is allocated).
 *
 * Strings. Every input string is NUL-terminated and capped by the
 * FOTA_STORE_*_MAX constants below (in bytes, without the NUL); a longer or
 * missing (NULL) required string is refused with FOTA_STORE_INVALID and
 * nothing is written. Outputs of fixed size are char arrays of MAX + 1 bytes.
 * Fields holding JSON text (key objects, slots, tags, details) are stored and
 * returned verbatim as text; the store never parses them, callers do (with
 * fota_json_parse) and callers validate them before storing.
 *
 * Times are int64_t seconds since the epoch, UTC. 0 means "never".
 */

#include <stddef.h>
#include <stdint.h>

enum fota_store_err {
    FOTA_STORE_OK = 0,
    FOTA_STORE_NOT_FOUND = 1,  /* no such row (device, token, rollout, key, ...) */
    FOTA_STORE_CONFLICT = 2,   /* unique or foreign-key violation, stale guard
                                * (seq/counter not higher, expected state or
                                * wave no longer current): someone else won */
    FOTA_STORE_BUSY = 3,       /* the database stayed locked past the busy
                                * timeout (5 s); retrying later may succeed */
    FOTA_STORE_ERROR = 4,      /* anything else: I/O, corruption, out of memory,
                                * a caller buffer too small */
    FOTA_STORE_STATE = 5,      /* the row exists but is not in a state the
                                * operation accepts (e.g. check-in of a device
                                * that is not accepted) */
    FOTA_STORE_INVALID = 6,    /* bad argument: NULL, over a cap, bad enum,
                                * limit 0 or over FOTA_STORE_PAGE_MAX */
};

/* A short constant name for logs: "ok", "not_found", "conflict", "busy",
 * "error", "state", "invalid". */
const char *fota_store_strerror(enum fota_store_err err);

/* Caps on stored strings, in bytes without the terminating NUL. */
#define FOTA_STORE_ID_MAX          128   /* device id (64 hex), release, rollout ids */
#define FOTA_STORE_HWID_MAX        128   /* hardware id */
#define FOTA_STORE_VERSION_MAX     64    /* version strings */
#define FOTA_STORE_TARGET_MAX      255   /* TUF target path */
#define FOTA_STORE_TAG_MAX         64    /* one device tag */
#define FOTA_STORE_NAME_MAX        128   /* token name, audit actor */
#define FOTA_STORE_EVENT_MAX       32    /* history event, audit action */
#define FOTA_STORE_REASON_MAX      64    /* fota_strerror name */
#define FOTA_STORE_OBJECT_MAX      255   /* audit object ("device/ab12..") */
#define FOTA_STORE_JSON_MAX        65536 /* any JSON text field (key, slots, detail, group) */
#define FOTA_STORE_PAGE_MAX        1000  /* most rows one list call returns */
#define FOTA_STORE_WAVES_MAX       16    /* waves per rollout */
#define FOTA_STORE_META_KEY_MAX    64    /* meta key */
#define FOTA_STORE_META_VALUE_MAX  65536 /* meta value bytes */
#define FOTA_STORE_SHA256_HEX      64    /* lowercase hex SHA-256 */

struct fota_store;   /* opaque: one connection */

/*
 * Open (creating if absent) the database file at path; the directory must
 * exist. Sets WAL mode, synchronous=NORMAL, foreign_keys=ON, a 5 s busy
 * timeout, and applies the numbered schema migrations that this build knows
 * and the file lacks, each in its own write transaction (several processes
 * opening a fresh file at once agree: the first migrates, the others see the
 * version and skip). A file whose schema version is NEWER than this build
 * knows is refused (FOTA_STORE_STATE): an old binary must not write a newer
 * schema.
 * Returns OK (*ret = new connection, free with fota_store_close), INVALID,
 * BUSY, STATE, ERROR.
 */
enum fota_store_err fota_store_open(const char *path, struct fota_store **ret);

/* Close a connection (NULL is fine). Rolls back an open transaction. */
void fota_store_close(struct fota_store *st);

/* The schema version of the open database (the highest migration applied). */
enum fota_store_err fota_store_schema_version(struct fota_store *st, int64_t *ret_version);

/* The highest schema version this build knows. */
int64_t fota_store_schema_latest(void);

/*
 * Transactions. begin starts a WRITE transaction (SQLite: BEGIN IMMEDIATE,
 * so the write lock is taken at once and a later statement cannot fail with
 * a stale snapshot); nesting is allowed and maps to savepoints, so a domain
 * function that uses a transaction internally can be called inside the
 * caller's. commit/rollback end the innermost level. Every domain function
 * called outside a transaction is atomic on its own.
 * A caller that gets an error inside a transaction must call rollback.
 * Returns OK, BUSY (begin: lock not obtained in 5 s), STATE (commit/rollback
 * without begin), ERROR.
 */
enum fota_store_err fota_store_begin(struct fota_store *st);
enum fota_store_err fota_store_commit(struct fota_store *st);
enum fota_store_err fota_store_rollback(struct fota_store *st);

/* 1 inside a transaction opened with fota_store_begin, else 0. */
int fota_store_in_transaction(const struct fota_store *st);

/*
 * The calling thread's connection to path, opened on first use (lazily) and
 * kept for the thread's life: it is closed by fota_store_thread_release() or
 * automatically when the thread exits (a pthread key destructor). If the
 * thread's connection is to a different path it is replaced. Returns NULL on
 * failure (the reason is logged to stderr once per failure). The pointer
 * must not be passed to another thread.
 */
struct fota_store *fota_store_thread_get(const char *path);

/* Close the calling thread's connection now (no-op if none). */
void fota_store_thread_release(void);

/* The last SQLite error text of the connection, for logs ("" if none). */
const char *fota_store_last_error(const struct fota_store *st);

#endif
