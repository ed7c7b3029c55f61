/* SPDX-License-Identifier: Apache-2.0 */
/*
 * SQLite backend core: opening a connection (WAL, pragmas, busy handling),
 * versioned schema migrations, the per-connection prepared-statement cache,
 * transactions with savepoint nesting, and the per-thread connections the
 * HTTP pool uses. The schema and the migration rule are documented in
 * docs/server-storage.md.
 */
#include "store.h"
#include "store_sqlite.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* How long a statement waits for another writer before FOTA_STORE_BUSY. */
#define STORE_BUSY_TIMEOUT_NS (5000LL * 1000000LL)

/*
 * Migrations, applied in order, each in its own write transaction together
 * with its schema_version row. NEVER edit a migration that has shipped: add
 * a new one. Only portable DDL (PostgreSQL accepts every statement except
 * that an id column written "INTEGER PRIMARY KEY" here - SQLite's row id -
 * becomes "BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY" there).
 */
static const char *const migrations[] = {
    /* 1: the initial schema. */
    "CREATE TABLE meta ("
    "  key TEXT PRIMARY KEY,"
    "  value BLOB NOT NULL);"

    "CREATE TABLE tuf_state ("
    "  id INTEGER PRIMARY KEY CHECK (id = 1),"
    "  root_version BIGINT NOT NULL,"
    "  targets_version BIGINT NOT NULL,"
    "  snapshot_version BIGINT NOT NULL,"
    "  timestamp_version BIGINT NOT NULL,"
    "  snapshot_expires BIGINT NOT NULL,"
    "  timestamp_expires BIGINT NOT NULL,"
    "  updated BIGINT NOT NULL);"

    "CREATE TABLE tokens ("
    "  sha256 TEXT PRIMARY KEY,"
    "  name TEXT NOT NULL,"
    "  scope TEXT NOT NULL CHECK (scope IN ('read', 'deploy', 'admin')),"
    "  created BIGINT NOT NULL,"
    "  expires BIGINT NOT NULL,"
    "  revoked BIGINT NOT NULL DEFAULT 0);"
    "CREATE UNIQUE INDEX tokens_live_name ON tokens (name) WHERE revoked = 0;"

    "CREATE TABLE devices ("
    "  id TEXT PRIMARY KEY,"
    "  key_json TEXT NOT NULL,"
    "  hardware_id TEXT NOT NULL,"
    "  status TEXT NOT NULL"
    "    CHECK (status IN ('pending', 'accepted', 'rejected', 'decommissioned')),"
    "  version TEXT NOT NULL,"
    "  security_counter BIGINT NOT NULL,"
    "  stored_counter BIGINT NOT NULL,"
    "  session_counter BIGINT NOT NULL DEFAULT 0,"
    "  seq BIGINT NOT NULL DEFAULT 0,"
    "  slots_json TEXT NOT NULL DEFAULT '[]',"
    "  tags_json TEXT NOT NULL DEFAULT '[]',"
    "  created BIGINT NOT NULL,"
    "  updated BIGINT NOT NULL,"
    "  last_seen BIGINT NOT NULL DEFAULT 0,"
    "  last_fresh BIGINT NOT NULL DEFAULT 0);"
    "CREATE INDEX devices_status ON devices (status, id);"
    "CREATE INDEX devices_hardware ON devices (hardware_id, id);"
    "CREATE INDEX devices_version ON devices (version, id);"
    "CREATE INDEX devices_fresh ON devices (status, last_fresh);"

    "CREATE TABLE device_tags ("
    "  device_id TEXT NOT NULL REFERENCES devices (id),"
    "  tag TEXT NOT NULL,"
    "  PRIMARY KEY (device_id, tag));"
    "CREATE INDEX device_tags_tag ON device_tags (tag, device_id);"

    "CREATE TABLE device_history ("
    "  id INTEGER PRIMARY KEY,"
    "  device_id TEXT NOT NULL REFERENCES devices (id),"
    "  time BIGINT NOT NULL,"
    "  event TEXT NOT NULL,"
    "  target TEXT NOT NULL,"
    "  version TEXT NOT NULL,"
    "  reason TEXT NOT NULL,"
    "  detail TEXT);"
    "CREATE INDEX device_history_device ON device_history (device_id, id);"

    "CREATE TABLE releases ("
    "  id TEXT PRIMARY KEY,"
    "  target_name TEXT NOT NULL,"
    "  length BIGINT NOT NULL,"
    "  sha256 TEXT NOT NULL,"
    "  version TEXT NOT NULL,"
    "  security_counter BIGINT NOT NULL,"
    "  targets_version BIGINT NOT NULL,"
    "  created BIGINT NOT NULL,"
    "  UNIQUE (target_name, sha256));"
    "CREATE INDEX releases_target ON releases (target_name, created);"

    "CREATE TABLE release_hardware ("
    "  release_id TEXT NOT NULL REFERENCES releases (id),"
    "  hardware_id TEXT NOT NULL,"
    "  PRIMARY KEY (release_id, hardware_id));"

    "CREATE TABLE rollouts ("
    "  id TEXT PRIMARY KEY,"
    "  release_id TEXT NOT NULL REFERENCES releases (id),"
    "  state TEXT NOT NULL CHECK (state IN ('active', 'paused', 'aborted', 'completed')),"
    "  current_wave INTEGER NOT NULL,"
    "  wave_count INTEGER NOT NULL,"
    "  waves TEXT NOT NULL,"
    "  success_threshold DOUBLE PRECISION NOT NULL,"
    "  failure_limit DOUBLE PRECISION NOT NULL,"
    "  rollback INTEGER NOT NULL,"
    "  device_count BIGINT NOT NULL,"
    "  created_by TEXT NOT NULL,"
    "  group_json TEXT NOT NULL,"
    "  created BIGINT NOT NULL,"
    "  updated BIGINT NOT NULL);"
    /* No index on rollouts.state on purpose: with one, SQLite drives the
     * check-in assignment query from the active rollouts (probing each for
     * the device) instead of from the device's few rollout_devices rows.
     * Listing rollouts by state scans a table of at most thousands. */

    "CREATE TABLE rollout_devices ("
    "  rollout_id TEXT NOT NULL REFERENCES rollouts (id),"
    "  device_id TEXT NOT NULL REFERENCES devices (id),"
    "  wave INTEGER NOT NULL,"
    "  status TEXT NOT NULL CHECK (status IN ('assigned', 'downloading', 'installed',"
    "    'rebooted', 'confirmed', 'rolled_back', 'failed')),"
    "  reason TEXT NOT NULL DEFAULT '',"
    "  updated BIGINT NOT NULL,"
    "  PRIMARY KEY (rollout_id, device_id));"
    "CREATE INDEX rollout_devices_device ON rollout_devices (device_id, rollout_id);"
    "CREATE INDEX rollout_devices_progress ON rollout_devices (rollout_id, wave, status);"

    "CREATE TABLE audit ("
    "  id INTEGER PRIMARY KEY,"
    "  time BIGINT NOT NULL,"
    "  actor TEXT NOT NULL,"
    "  action TEXT NOT NULL,"
    "  object TEXT NOT NULL,"
    "  detail TEXT);",

    /* 2: rollouts become visible only once all their members are stored
     * (written in chunks, so that a rollout of millions of devices never
     * holds the write lock for long): ready = 0 while being created. */
    "ALTER TABLE rollouts ADD COLUMN ready INTEGER NOT NULL DEFAULT 1;",

    /* 3: the seq of the device's last stored report, echoed in the signed
     * Director document so the device knows its reports arrived (a
     * refusal report an attacker swallowed is sent again). */
    "ALTER TABLE devices ADD COLUMN report_seq BIGINT NOT NULL DEFAULT 0;",
};

#define MIGRATION_COUNT ((int64_t)(sizeof(migrations) / sizeof(migrations[0])))

const char *fota_store_strerror(enum fota_store_err err)
{
    switch (err) {
    case FOTA_STORE_OK: return "ok";
    case FOTA_STORE_NOT_FOUND: return "not_found";
    case FOTA_STORE_CONFLICT: return "conflict";
    case FOTA_STORE_BUSY: return "busy";
    case FOTA_STORE_ERROR: return "error";
    case FOTA_STORE_STATE: return "state";
    case FOTA_STORE_INVALID: return "invalid";
    }
    return "unknown";
}

int64_t fota_store_schema_latest(void)
{
    return MIGRATION_COUNT;
}

const char *fota_store_last_error(const struct fota_store *st)
{
    if (st == NULL || st->db == NULL)
        return "";
    return sqlite3_errmsg(st->db);
}

/* ---- small shared helpers ---------------------------------------------- */

enum fota_store_err store_rc(int rc)
{
    switch (rc & 0xff) {
    case SQLITE_OK:
    case SQLITE_DONE:
    case SQLITE_ROW:
        return FOTA_STORE_OK;
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
        return FOTA_STORE_BUSY;
    case SQLITE_CONSTRAINT:
        if (rc == SQLITE_CONSTRAINT_CHECK || rc == SQLITE_CONSTRAINT_NOTNULL)
            return FOTA_STORE_INVALID;
        return FOTA_STORE_CONFLICT;
    case SQLITE_TOOBIG:
    case SQLITE_RANGE:
    case SQLITE_MISMATCH:
        return FOTA_STORE_INVALID;
    default:
        return FOTA_STORE_ERROR;
    }
}

static void autocommit_release(struct fota_store *st);

void store_done(struct fota_store *st, sqlite3_stmt *stmt)
{
    if (stmt != NULL)
        sqlite3_reset(stmt);
    autocommit_release(st);
}

enum fota_store_err store_exec_stmt(struct fota_store *st, sqlite3_stmt *stmt)
{
    int rc;

    do {
        rc = sqlite3_step(stmt);
    } while (rc == SQLITE_ROW);
    /* sqlite3_step already reported the extended code; reset returns it
     * again, keep the step's. */
    sqlite3_reset(stmt);
    autocommit_release(st);
    if (rc != SQLITE_DONE)
        return store_rc(rc);
    return FOTA_STORE_OK;
}

int store_str_ok(const char *s, size_t max, int allow_empty)
{
    size_t len;

    if (s == NULL)
        return 0;
    len = strnlen(s, max + 1);
    if (len > max)
        return 0;
    if (len == 0 && !allow_empty)
        return 0;
    return 1;
}

int store_sha256_hex_ok(const char *s)
{
    size_t i;

    if (!store_str_ok(s, FOTA_STORE_SHA256_HEX, 0) || strlen(s) != FOTA_STORE_SHA256_HEX)
        return 0;
    for (i = 0; i < FOTA_STORE_SHA256_HEX; i++) {
        char c = s[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
            return 0;
    }
    return 1;
}

int store_bind_text(sqlite3_stmt *stmt, int idx, const char *s)
{
    if (s == NULL)
        return sqlite3_bind_null(stmt, idx);
    return sqlite3_bind_text(stmt, idx, s, -1, SQLITE_STATIC);
}

void store_col_text(sqlite3_stmt *stmt, int col, char *dst, size_t cap)
{
    const unsigned char *txt = sqlite3_column_text(stmt, col);
    size_t len;

    if (cap == 0)
        return;
    if (txt == NULL) {
        dst[0] = '\0';
        return;
    }
    len = (size_t)sqlite3_column_bytes(stmt, col);
    /* Inputs were capped on the way in; truncating here only guards a file
     * written by something else. */
    if (len > cap - 1)
        len = cap - 1;
    memcpy(dst, txt, len);
    dst[len] = '\0';
}

char *store_col_dup(sqlite3_stmt *stmt, int col, int *ret_oom)
{
    const unsigned char *txt = sqlite3_column_text(stmt, col);
    size_t len;
    char *out;

    if (txt == NULL)
        return NULL;
    len = (size_t)sqlite3_column_bytes(stmt, col);
    out = malloc(len + 1);
    if (out == NULL) {
        *ret_oom = 1;
        return NULL;
    }
    memcpy(out, txt, len);
    out[len] = '\0';
    return out;
}

int store_bind_mask(sqlite3_stmt *stmt, int first, unsigned mask,
                    const char *const *names, int count)
{
    int i, rc;

    if (mask == 0)
        mask = (1u << (unsigned)count) - 1u;
    for (i = 0; i < count; i++) {
        if (mask & (1u << (unsigned)i))
            rc = sqlite3_bind_text(stmt, first + i, names[i], -1, SQLITE_STATIC);
        else
            rc = sqlite3_bind_null(stmt, first + i);
        if (rc != SQLITE_OK)
            return rc;
    }
    return SQLITE_OK;
}

int store_col_enum(sqlite3_stmt *stmt, int col, const char *const *names, int count)
{
    const unsigned char *txt = sqlite3_column_text(stmt, col);
    int i;

    if (txt == NULL)
        return -1;
    for (i = 0; i < count; i++) {
        if (strcmp((const char *)txt, names[i]) == 0)
            return i;
    }
    return -1;
}

/* ---- the in-process writer lock ----------------------------------------- */

/*
 * SQLite admits one writer per database at a time; a connection that finds
 * the write lock taken can only sleep and retry (the busy handler). Between
 * threads of one process that wastes CPU on failed lock attempts and adds
 * sleep latency, so writers of this process queue on a mutex first: the
 * waiting thread sleeps in the kernel and wakes when the writer is done.
 * It is only a queue, not state: other processes still meet SQLite's own
 * locking (and the busy handler), and correctness never depends on it.
 * Recursive, so two connections used by one thread (a tool, a test) cannot
 * deadlock on it; timed, so a stuck writer yields FOTA_STORE_BUSY like
 * SQLite's timeout would.
 */
static pthread_once_t write_once = PTHREAD_ONCE_INIT;
static pthread_mutex_t write_mutex;
static int write_mutex_ok;

static void write_mutex_init(void)
{
    pthread_mutexattr_t attr;

    if (pthread_mutexattr_init(&attr) != 0)
        return;
    if (pthread_mutexattr_settype(&attr, PTHREAD_MUTEX_RECURSIVE) == 0 &&
        pthread_mutex_init(&write_mutex, &attr) == 0)
        write_mutex_ok = 1;
    pthread_mutexattr_destroy(&attr);
}

static enum fota_store_err write_lock(struct fota_store *st)
{
    struct timespec deadline;

    if (st->write_locked)
        return FOTA_STORE_OK;
    pthread_once(&write_once, write_mutex_init);
    if (!write_mutex_ok)
        return FOTA_STORE_OK;   /* no queue: SQLite's locking alone still holds */
    if (pthread_mutex_trylock(&write_mutex) != 0) {
        clock_gettime(CLOCK_REALTIME, &deadline);
        deadline.tv_sec += STORE_BUSY_TIMEOUT_NS / 1000000000LL;
        if (pthread_mutex_timedlock(&write_mutex, &deadline) != 0) {
            st->queue_timed_out = 1;
            return FOTA_STORE_BUSY;
        }
    }
    st->write_locked = 1;
    return FOTA_STORE_OK;
}

static void write_unlock(struct fota_store *st)
{
    st->queue_timed_out = 0;
    if (!st->write_locked)
        return;
    st->write_locked = 0;
    pthread_mutex_unlock(&write_mutex);
}

/* Autocommit writes take the lock when their statement is handed out and
 * release it when the statement is reset (store_done/store_exec_stmt);
 * explicit transactions hold it from begin to commit/rollback. */
static void autocommit_release(struct fota_store *st)
{
    if (st->tx_depth == 0)
        write_unlock(st);
}

static sqlite3_stmt *autocommit_acquire(struct fota_store *st, sqlite3_stmt *stmt)
{
    /* On a timeout go on without the queue: SQLite's busy handling then
     * decides, and reports FOTA_STORE_BUSY through the statement. */
    if (st->tx_depth == 0 && !sqlite3_stmt_readonly(stmt))
        write_lock(st);
    return stmt;
}

/* ---- prepared-statement cache ------------------------------------------ */

static uint32_t sql_hash(const char *s)
{
    uint32_t h = 2166136261u;    /* FNV-1a */

    while (*s != '\0') {
        h ^= (uint8_t)*s++;
        h *= 16777619u;
    }
    return h;
}

/*
 * Statements of string literals are keyed by the pointer (no hashing of a
 * few hundred bytes of SQL per call on the hot path); built SQL texts (the
 * device-list filters) by their text. The two kinds share the table.
 */
static sqlite3_stmt *stmt_lookup(struct fota_store *st, const char *sql, int by_pointer)
{
    uint32_t h = by_pointer ? (uint32_t)(((uintptr_t)sql >> 3) * 2654435761u) : sql_hash(sql);
    size_t i = h & (STORE_STMT_SLOTS - 1);
    size_t probes;
    struct store_stmt_slot *slot;
    sqlite3_stmt *stmt = NULL;
    char *copy = NULL;

    for (probes = 0; probes < STORE_STMT_SLOTS; probes++) {
        slot = &st->stmts[i];
        if (slot->stmt == NULL)
            break;
        if (slot->hash == h &&
            (by_pointer ? slot->key == sql : slot->key == NULL && strcmp(slot->sql, sql) == 0)) {
            sqlite3_reset(slot->stmt);
            return autocommit_acquire(st, slot->stmt);
        }
        i = (i + 1) & (STORE_STMT_SLOTS - 1);
    }
    /* Keep the table at most three quarters full so probes stay short. */
    if (st->stmt_count >= STORE_STMT_SLOTS / 4 * 3) {
        fprintf(stderr, "fota-server: store: statement cache full\n");
        return NULL;
    }
    if (sqlite3_prepare_v3(st->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &stmt, NULL) != SQLITE_OK) {
        fprintf(stderr, "fota-server: store: prepare failed: %s\n", sqlite3_errmsg(st->db));
        sqlite3_finalize(stmt);
        return NULL;
    }
    if (!by_pointer) {
        copy = strdup(sql);
        if (copy == NULL) {
            sqlite3_finalize(stmt);
            return NULL;
        }
    }
    slot = &st->stmts[i];
    slot->key = by_pointer ? sql : NULL;
    slot->sql = copy;
    slot->hash = h;
    slot->stmt = stmt;
    st->stmt_count++;
    return autocommit_acquire(st, stmt);
}

sqlite3_stmt *store_stmt(struct fota_store *st, const char *sql)
{
    return stmt_lookup(st, sql, 1);
}

sqlite3_stmt *store_stmt_text(struct fota_store *st, const char *sql)
{
    return stmt_lookup(st, sql, 0);
}

static void stmt_cache_free(struct fota_store *st)
{
    size_t i;

    for (i = 0; i < STORE_STMT_SLOTS; i++) {
        if (st->stmts[i].stmt != NULL) {
            sqlite3_finalize(st->stmts[i].stmt);
            free(st->stmts[i].sql);
            st->stmts[i].stmt = NULL;
            st->stmts[i].sql = NULL;
        }
    }
    st->stmt_count = 0;
}

/* ---- busy handling ------------------------------------------------------ */

static int64_t mono_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/*
 * SQLite's default busy handler sleeps at least a millisecond per retry,
 * which is an eternity next to a 20 us check-in write: with several pool
 * threads contending for the write lock, throughput would collapse to the
 * sleep granularity. Retry after short, growing sleeps instead, up to the
 * same 5 s budget. The handler keeps its start time per connection; n == 0
 * marks the first retry of a new wait.
 */
static int busy_handler(void *arg, int n)
{
    struct fota_store *st = arg;
    struct timespec ts;
    int64_t delay_ns;
    int shift;

    /* Already waited the whole budget in the writer queue. */
    if (st->queue_timed_out)
        return 0;
    if (n == 0)
        st->busy_start_ns = mono_ns();
    else if (mono_ns() - st->busy_start_ns > STORE_BUSY_TIMEOUT_NS)
        return 0;
    shift = n < 10 ? n : 10;
    delay_ns = 10000LL << shift;              /* 10 us, 20 us, ... ~10 ms */
    ts.tv_sec = 0;
    ts.tv_nsec = (long)delay_ns;
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
    return 1;
}

/* ---- commits and checkpoints -------------------------------------------- */

/* WAL pages after which the WAL is checkpointed (SQLite's default). */
#define STORE_CHECKPOINT_PAGES 1000
/*
 * WAL pages past which the committing writer itself runs a RESTART
 * checkpoint (4000 pages of 4 KiB: ~16 MiB). Under sustained check-ins the
 * background PASSIVE checkpoints never catch up with the appends (measured:
 * 1.2 GB of WAL after 10 s under wrk, throughput falling as it grew); a
 * RESTART by the writer, with this process's writer queue still held, makes
 * the next commit start again at the head of the WAL (measured: ~16 MB at
 * ~8,700 check-ins/s). The file keeps its size (no truncation: reusing it
 * is cheaper than regrowing it), so the bound is this many pages.
 */
#define STORE_WAL_MAX_PAGES 4000
/* Databases with a checkpoint pending at once (more: checkpoint inline). */
#define CKPT_PATHS 8

/*
 * Checkpoints run on a background thread. With synchronous=NORMAL a commit
 * never waits for the disk; a checkpoint does (it syncs the WAL and the
 * database file), and under I/O load that takes tens of milliseconds. Run
 * in the committing thread, as SQLite's built-in auto-checkpoint does, it
 * would stall whichever check-in happened to cross the threshold. The
 * thread opens its own connection per checkpoint (PASSIVE: it never blocks
 * readers or writers). It is a helper, not state: if it cannot be started
 * or its queue is full, the committing thread checkpoints itself.
 */
static struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    pid_t pid;                   /* process whose thread runs (0: none) */
    char *pending[CKPT_PATHS];   /* database paths waiting for a checkpoint */
} ckpt = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, { NULL } };

/*
 * fork(): the child has no checkpoint thread and must not inherit a lock
 * held by one of the parent's threads (the child opens its own
 * connections; SQLite connections must not cross a fork).
 */
static void fork_prepare(void)
{
    pthread_mutex_lock(&ckpt.mu);
}

static void fork_parent(void)
{
    pthread_mutex_unlock(&ckpt.mu);
}

static void fork_child(void)
{
    pthread_mutex_init(&ckpt.mu, NULL);
    pthread_cond_init(&ckpt.cv, NULL);
    ckpt.pid = 0;
    if (write_mutex_ok) {
        write_mutex_ok = 0;
        write_mutex_init();
    }
}

static void checkpoint_path(const char *path)
{
    sqlite3 *db = NULL;

    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL) ==
        SQLITE_OK)
        sqlite3_wal_checkpoint_v2(db, NULL, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
    sqlite3_close(db);
}

static void *ckpt_main(void *arg)
{
    char *path;
    int i;

    (void)arg;
    for (;;) {
        path = NULL;
        pthread_mutex_lock(&ckpt.mu);
        while (path == NULL) {
            for (i = 0; i < CKPT_PATHS && path == NULL; i++) {
                if (ckpt.pending[i] != NULL) {
                    path = ckpt.pending[i];
                    ckpt.pending[i] = NULL;
                }
            }
            if (path == NULL)
                pthread_cond_wait(&ckpt.cv, &ckpt.mu);
        }
        pthread_mutex_unlock(&ckpt.mu);
        checkpoint_path(path);
        free(path);
    }
    return NULL;
}

/* Queue a checkpoint of path; 0 when the caller must do it itself. */
static int ckpt_request(const char *path)
{
    pthread_attr_t attr;
    pthread_t thread;
    int i, free_slot = -1, queued = 0;
    pid_t me = getpid();

    pthread_mutex_lock(&ckpt.mu);
    if (ckpt.pid != me) {
        /* First use in this process (or in a forked child). */
        for (i = 0; i < CKPT_PATHS; i++) {
            free(ckpt.pending[i]);
            ckpt.pending[i] = NULL;
        }
        if (pthread_attr_init(&attr) == 0) {
            if (pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED) == 0 &&
                pthread_create(&thread, &attr, ckpt_main, NULL) == 0)
                ckpt.pid = me;
            pthread_attr_destroy(&attr);
        }
        if (ckpt.pid != me)
            goto out;
    }
    for (i = 0; i < CKPT_PATHS; i++) {
        if (ckpt.pending[i] != NULL && strcmp(ckpt.pending[i], path) == 0) {
            queued = 1;     /* already pending */
            break;
        }
        if (ckpt.pending[i] == NULL && free_slot < 0)
            free_slot = i;
    }
    if (!queued && free_slot >= 0) {
        ckpt.pending[free_slot] = strdup(path);
        queued = ckpt.pending[free_slot] != NULL;
    }
    if (queued)
        pthread_cond_signal(&ckpt.cv);
out:
    pthread_mutex_unlock(&ckpt.mu);
    return queued;
}

/*
 * Called by SQLite after every commit (it replaces the built-in
 * auto-checkpoint, which is the same hook). The commit is final here, so
 * this process's writer queue is released first.
 */
static int wal_hook(void *arg, sqlite3 *db, const char *name, int pages)
{
    struct fota_store *st = arg;

    /* Over the bound: checkpoint and restart the WAL now, before releasing
     * the writer queue, so that the other writers of this process wait on
     * the queue rather than in SQLite's busy handler. A failure (a reader
     * held on past the busy budget) leaves the WAL as it was; the next
     * commit tries again. */
    if (pages >= STORE_WAL_MAX_PAGES) {
        int log_frames = -1, done_frames = -1;

        if (sqlite3_wal_checkpoint_v2(db, name, SQLITE_CHECKPOINT_RESTART, &log_frames,
                                      &done_frames) == SQLITE_OK)
            st->ckpt_mark = 0;
    }
    if (st->tx_depth <= 1)
        write_unlock(st);
    /* Ask once per STORE_CHECKPOINT_PAGES of growth: while writers keep
     * appending, a PASSIVE checkpoint never quite catches up, and asking on
     * every commit past the threshold would checkpoint (and sync) a few
     * frames at a time, nonstop. */
    if (pages < st->ckpt_mark)
        st->ckpt_mark = 0;          /* the WAL was restarted */
    if (pages >= st->ckpt_mark + STORE_CHECKPOINT_PAGES) {
        st->ckpt_mark = pages;
        if (!ckpt_request(st->path))
            sqlite3_wal_checkpoint_v2(db, name, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
    }
    return SQLITE_OK;
}

/* ---- transactions ------------------------------------------------------- */

/* Transaction control: the writer lock is handled by the callers. */
static enum fota_store_err exec_text(struct fota_store *st, const char *sql)
{
    sqlite3_stmt *stmt = store_stmt(st, sql);
    int rc;

    if (stmt == NULL)
        return FOTA_STORE_ERROR;
    rc = sqlite3_step(stmt);
    sqlite3_reset(stmt);
    return rc == SQLITE_DONE ? FOTA_STORE_OK : store_rc(rc);
}

static const char *const savepoint_sql[][3] = {
    /* begin, release, rollback-to (a savepoint per nesting level) */
    { "SAVEPOINT fota_sp1", "RELEASE fota_sp1", "ROLLBACK TO fota_sp1" },
    { "SAVEPOINT fota_sp2", "RELEASE fota_sp2", "ROLLBACK TO fota_sp2" },
    { "SAVEPOINT fota_sp3", "RELEASE fota_sp3", "ROLLBACK TO fota_sp3" },
    { "SAVEPOINT fota_sp4", "RELEASE fota_sp4", "ROLLBACK TO fota_sp4" },
    { "SAVEPOINT fota_sp5", "RELEASE fota_sp5", "ROLLBACK TO fota_sp5" },
    { "SAVEPOINT fota_sp6", "RELEASE fota_sp6", "ROLLBACK TO fota_sp6" },
    { "SAVEPOINT fota_sp7", "RELEASE fota_sp7", "ROLLBACK TO fota_sp7" },
};
#define SAVEPOINT_LEVELS ((int)(sizeof(savepoint_sql) / sizeof(savepoint_sql[0])))

enum fota_store_err fota_store_begin(struct fota_store *st)
{
    enum fota_store_err err;

    if (st == NULL)
        return FOTA_STORE_INVALID;
    if (st->tx_depth == 0) {
        write_lock(st);
        err = exec_text(st, "BEGIN IMMEDIATE");
        if (err != FOTA_STORE_OK)
            write_unlock(st);
    } else if (st->tx_depth <= SAVEPOINT_LEVELS)
        err = exec_text(st, savepoint_sql[st->tx_depth - 1][0]);
    else
        return FOTA_STORE_STATE;
    if (err == FOTA_STORE_OK)
        st->tx_depth++;
    return err;
}

enum fota_store_err fota_store_commit(struct fota_store *st)
{
    enum fota_store_err err;

    if (st == NULL)
        return FOTA_STORE_INVALID;
    if (st->tx_depth == 0)
        return FOTA_STORE_STATE;
    if (st->tx_depth > 1) {
        err = exec_text(st, savepoint_sql[st->tx_depth - 2][1]);
        if (err == FOTA_STORE_OK)
            st->tx_depth--;
        return err;
    }
    err = exec_text(st, "COMMIT");
    if (err != FOTA_STORE_OK) {
        /* A failed COMMIT leaves the transaction open; end it so the
         * connection is usable and nothing is half-written. */
        exec_text(st, "ROLLBACK");
    }
    st->tx_depth = 0;
    write_unlock(st);
    return err;
}

enum fota_store_err fota_store_rollback(struct fota_store *st)
{
    enum fota_store_err err;

    if (st == NULL)
        return FOTA_STORE_INVALID;
    if (st->tx_depth == 0)
        return FOTA_STORE_STATE;
    if (sqlite3_get_autocommit(st->db)) {
        /* SQLite already rolled the whole transaction back (it does on
         * some I/O and memory errors): every level is gone. */
        st->tx_depth = 0;
        write_unlock(st);
        return FOTA_STORE_OK;
    }
    if (st->tx_depth > 1) {
        err = exec_text(st, savepoint_sql[st->tx_depth - 2][2]);
        if (err == FOTA_STORE_OK)
            err = exec_text(st, savepoint_sql[st->tx_depth - 2][1]);
        st->tx_depth--;
        return err;
    }
    err = exec_text(st, "ROLLBACK");
    st->tx_depth = 0;
    write_unlock(st);
    return err;
}

int fota_store_in_transaction(const struct fota_store *st)
{
    return st != NULL && st->tx_depth > 0;
}

enum fota_store_err store_tx_begin(struct fota_store *st)
{
    return fota_store_begin(st);
}

enum fota_store_err store_tx_end(struct fota_store *st, enum fota_store_err err)
{
    if (err == FOTA_STORE_OK)
        return fota_store_commit(st);
    fota_store_rollback(st);
    return err;
}

/* ---- open, migrate, close ---------------------------------------------- */

/* Read the schema version inside the caller's transaction. */
static enum fota_store_err read_version(struct fota_store *st, int64_t *ret_version)
{
    sqlite3_stmt *stmt = store_stmt(st, "SELECT COALESCE(MAX(version), 0) FROM schema_version");
    int rc;

    if (stmt == NULL)
        return FOTA_STORE_ERROR;
    rc = sqlite3_step(stmt);
    if (rc != SQLITE_ROW) {
        store_done(st, stmt);
        return store_rc(rc);
    }
    *ret_version = sqlite3_column_int64(stmt, 0);
    store_done(st, stmt);
    return FOTA_STORE_OK;
}

enum fota_store_err fota_store_schema_version(struct fota_store *st, int64_t *ret_version)
{
    if (st == NULL || ret_version == NULL)
        return FOTA_STORE_INVALID;
    return read_version(st, ret_version);
}

static enum fota_store_err apply_one(struct fota_store *st, int64_t version)
{
    sqlite3_stmt *stmt;
    char *msg = NULL;
    int rc;

    rc = sqlite3_exec(st->db, migrations[version - 1], NULL, NULL, &msg);
    if (rc != SQLITE_OK) {
        fprintf(stderr, "fota-server: store: migration %lld failed: %s\n",
                (long long)version, msg != NULL ? msg : "?");
        sqlite3_free(msg);
        return store_rc(rc) == FOTA_STORE_BUSY ? FOTA_STORE_BUSY : FOTA_STORE_ERROR;
    }
    stmt = store_stmt(st, "INSERT INTO schema_version (version, applied) VALUES (?1, ?2)");
    if (stmt == NULL)
        return FOTA_STORE_ERROR;
    sqlite3_bind_int64(stmt, 1, version);
    sqlite3_bind_int64(stmt, 2, (int64_t)time(NULL));
    return store_exec_stmt(st, stmt);
}

/*
 * Each step re-reads the version inside a write transaction, so of several
 * connections (threads or processes) opening a fresh file at once, the first
 * applies a migration and the others find it applied.
 */
static enum fota_store_err migrate(struct fota_store *st)
{
    enum fota_store_err err;
    int64_t version = 0;
    char *msg = NULL;
    int rc;

    rc = sqlite3_exec(st->db,
                      "CREATE TABLE IF NOT EXISTS schema_version ("
                      " version BIGINT PRIMARY KEY, applied BIGINT NOT NULL)",
                      NULL, NULL, &msg);
    if (rc != SQLITE_OK) {
        fprintf(stderr, "fota-server: store: %s\n", msg != NULL ? msg : "?");
        sqlite3_free(msg);
        return store_rc(rc) == FOTA_STORE_BUSY ? FOTA_STORE_BUSY : FOTA_STORE_ERROR;
    }
    for (;;) {
        err = fota_store_begin(st);
        if (err != FOTA_STORE_OK)
            return err;
        err = read_version(st, &version);
        if (err != FOTA_STORE_OK)
            return store_tx_end(st, err);
        if (version > MIGRATION_COUNT) {
            fprintf(stderr, "fota-server: store: database schema %lld is newer than this "
                    "build (%lld)\n", (long long)version, (long long)MIGRATION_COUNT);
            return store_tx_end(st, FOTA_STORE_STATE);
        }
        if (version == MIGRATION_COUNT)
            return store_tx_end(st, FOTA_STORE_OK);
        err = apply_one(st, version + 1);
        err = store_tx_end(st, err);
        if (err != FOTA_STORE_OK)
            return err;
    }
}

/* A pragma whose single result row must equal want (NULL: ignore rows). */
static enum fota_store_err pragma(struct fota_store *st, const char *sql, const char *want)
{
    sqlite3_stmt *stmt = NULL;
    enum fota_store_err err = FOTA_STORE_ERROR;
    int rc;

    if (sqlite3_prepare_v2(st->db, sql, -1, &stmt, NULL) != SQLITE_OK)
        goto out;
    rc = sqlite3_step(stmt);
    if (rc == SQLITE_ROW && want != NULL) {
        const unsigned char *txt = sqlite3_column_text(stmt, 0);
        if (txt == NULL || strcmp((const char *)txt, want) != 0) {
            fprintf(stderr, "fota-server: store: %s gave %s\n", sql,
                    txt != NULL ? (const char *)txt : "NULL");
            goto out;
        }
    } else if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
        err = store_rc(rc);
        goto out;
    }
    err = FOTA_STORE_OK;
out:
    sqlite3_finalize(stmt);
    return err;
}

/*
 * Switch a new file to WAL (a no-op once the file is in WAL: the mode is
 * stored in the file). The switch needs an exclusive lock, and while the
 * file is still in rollback-journal mode SQLite answers a conflicting
 * opener BUSY without calling the busy handler (to avoid deadlock), so
 * connections racing to create one file retry here, within the usual 5 s.
 */
static enum fota_store_err set_wal(struct fota_store *st)
{
    struct timespec ts = { 0, 1000000 };     /* 1 ms */
    int64_t start = mono_ns();
    enum fota_store_err err;

    for (;;) {
        err = pragma(st, "PRAGMA journal_mode=WAL", "wal");
        if (err != FOTA_STORE_BUSY || mono_ns() - start > STORE_BUSY_TIMEOUT_NS)
            return err;
        nanosleep(&ts, NULL);
    }
}

static pthread_once_t sqlite_once = PTHREAD_ONCE_INIT;

static void sqlite_global_init(void)
{
    /* Memory statistics put a global mutex around every allocation SQLite
     * makes, shared by all connections; nothing here reads them. Only
     * possible before SQLite initialises (else SQLITE_MISUSE, harmless). */
    sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
    sqlite3_initialize();
    pthread_atfork(fork_prepare, fork_parent, fork_child);
}

enum fota_store_err fota_store_open(const char *path, struct fota_store **ret)
{
    struct fota_store *st = NULL;
    enum fota_store_err err = FOTA_STORE_ERROR;
    int rc;

    if (path == NULL || path[0] == '\0' || ret == NULL)
        return FOTA_STORE_INVALID;
    pthread_once(&sqlite_once, sqlite_global_init);
    st = calloc(1, sizeof(*st));
    if (st == NULL)
        return FOTA_STORE_ERROR;
    st->path = strdup(path);
    if (st->path == NULL)
        goto out;
    /* NOMUTEX: a connection is used by one thread at a time (store.h). */
    rc = sqlite3_open_v2(path, &st->db,
                         SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                         NULL);
    if (rc != SQLITE_OK) {
        fprintf(stderr, "fota-server: store: cannot open %s: %s\n", path,
                st->db != NULL ? sqlite3_errmsg(st->db) : "out of memory");
        goto out;
    }
    sqlite3_extended_result_codes(st->db, 1);
    sqlite3_busy_handler(st->db, busy_handler, st);

    /* journal_mode=WAL persists in the file; readers then never block the
     * writer and a commit is one append. synchronous=NORMAL in WAL mode is
     * durable against a process crash; a power loss may lose the last
     * transactions but never corrupts (the trade the issue asks for). */
    err = set_wal(st);
    if (err == FOTA_STORE_OK)
        err = pragma(st, "PRAGMA synchronous=NORMAL", NULL);
    if (err == FOTA_STORE_OK)
        err = pragma(st, "PRAGMA foreign_keys=ON", NULL);
    if (err == FOTA_STORE_OK)
        err = pragma(st, "PRAGMA temp_store=MEMORY", NULL);
    /* 16 MiB of page cache per connection instead of SQLite's 2 MiB: a
     * fleet of a million devices is ~500 MB of database, and group
     * evaluation and listings page through it. */
    if (err == FOTA_STORE_OK)
        err = pragma(st, "PRAGMA cache_size=-16384", NULL);
    if (err != FOTA_STORE_OK) {
        fprintf(stderr, "fota-server: store: cannot configure %s: %s (%s)\n", path,
                fota_store_strerror(err), sqlite3_errmsg(st->db));
        goto out;
    }
    sqlite3_wal_hook(st->db, wal_hook, st);
    err = migrate(st);
    if (err != FOTA_STORE_OK)
        goto out;
    *ret = st;
    st = NULL;
out:
    fota_store_close(st);
    return err;
}

void fota_store_close(struct fota_store *st)
{
    if (st == NULL)
        return;
    if (st->tx_depth > 0 && st->db != NULL)
        sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
    st->tx_depth = 0;
    write_unlock(st);
    stmt_cache_free(st);
    if (st->db != NULL)
        sqlite3_close(st->db);
    free(st->path);
    free(st);
}

/* ---- per-thread connections -------------------------------------------- */

static pthread_once_t thread_once = PTHREAD_ONCE_INIT;
static pthread_key_t thread_key;
static int thread_key_ok;

static void thread_destroy(void *p)
{
    fota_store_close(p);
}

static void thread_key_init(void)
{
    thread_key_ok = pthread_key_create(&thread_key, thread_destroy) == 0;
}

struct fota_store *fota_store_thread_get(const char *path)
{
    struct fota_store *st;
    enum fota_store_err err;

    if (path == NULL)
        return NULL;
    pthread_once(&thread_once, thread_key_init);
    if (!thread_key_ok)
        return NULL;
    st = pthread_getspecific(thread_key);
    if (st != NULL && strcmp(st->path, path) == 0)
        return st;
    if (st != NULL) {
        pthread_setspecific(thread_key, NULL);
        fota_store_close(st);
        st = NULL;
    }
    err = fota_store_open(path, &st);
    if (err != FOTA_STORE_OK) {
        fprintf(stderr, "fota-server: store: thread connection to %s failed: %s\n", path,
                fota_store_strerror(err));
        return NULL;
    }
    if (pthread_setspecific(thread_key, st) != 0) {
        fota_store_close(st);
        return NULL;
    }
    return st;
}

void fota_store_thread_release(void)
{
    struct fota_store *st;

    pthread_once(&thread_once, thread_key_init);
    if (!thread_key_ok)
        return;
    st = pthread_getspecific(thread_key);
    if (st != NULL) {
        pthread_setspecific(thread_key, NULL);
        fota_store_close(st);
    }
}
