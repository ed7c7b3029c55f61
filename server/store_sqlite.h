/* SPDX-License-Identifier: Apache-2.0 */
#ifndef FOTA_SERVER_STORE_SQLITE_H
#define FOTA_SERVER_STORE_SQLITE_H

/*
 * Private to the SQLite backend (server/store_sqlite*.c): the connection
 * struct and the helpers every domain file shares. Nothing outside the
 * backend includes this header.
 */

#include <stddef.h>
#include <stdint.h>

#include <sqlite3.h>

#include "store.h"

struct store_stmt_slot {
    const char *key;          /* the string literal's address; NULL: keyed by text */
    char *sql;                /* owned copy of a built text (key == NULL) */
    uint32_t hash;
    sqlite3_stmt *stmt;
};

/* Distinct SQL texts are bounded by the code (fixed statements plus the
 * device-list filter variants), far below this. */
#define STORE_STMT_SLOTS 512

struct fota_store {
    sqlite3 *db;
    char *path;
    int tx_depth;             /* 0: autocommit; 1: BEGIN IMMEDIATE; >1: savepoints */
    int write_locked;         /* holds the process's writer lock (see store_sqlite.c) */
    int queue_timed_out;      /* the writer queue timed out: do not wait again in SQLite */
    int64_t busy_start_ns;    /* when the current busy wait began */
    int ckpt_mark;            /* WAL size (pages) at this connection's last checkpoint request */
    size_t stmt_count;
    struct store_stmt_slot stmts[STORE_STMT_SLOTS];
};

/*
 * The cached prepared statement for sql (prepared on first use on this
 * connection), reset and ready to bind. sql must be a string literal (or
 * otherwise never change for the process's life): it is cached by its
 * address. Use store_stmt_text for SQL built at run time. NULL when it cannot be prepared
 * (a bug in the SQL, or out of memory); the reason is in the connection's
 * error message. Callers must reset it when done (store_done or
 * store_exec_stmt) so that no read snapshot stays open and, for a write
 * outside a transaction, the process's writer lock is released.
 */
sqlite3_stmt *store_stmt(struct fota_store *st, const char *sql);

/* The same for SQL text built at run time (cached by its text). */
sqlite3_stmt *store_stmt_text(struct fota_store *st, const char *sql);

/* Reset a statement after use (NULL fine). */
void store_done(struct fota_store *st, sqlite3_stmt *stmt);

/* Map an SQLite result code to the store's error (constraint kinds:
 * UNIQUE/PRIMARY KEY/FOREIGN KEY -> CONFLICT, CHECK/NOT NULL -> INVALID). */
enum fota_store_err store_rc(int rc);

/* Step a statement that returns no rows (or whose rows are ignored) to the
 * end, reset it, and map the result. */
enum fota_store_err store_exec_stmt(struct fota_store *st, sqlite3_stmt *stmt);

/* Internal transactions (nesting via savepoints): store_tx_end commits on
 * err == OK, else rolls back, and returns err (or the commit's error). */
enum fota_store_err store_tx_begin(struct fota_store *st);
enum fota_store_err store_tx_end(struct fota_store *st, enum fota_store_err err);

/* 1 if s is a string of at most max bytes (and non-empty unless
 * allow_empty). */
int store_str_ok(const char *s, size_t max, int allow_empty);

/* 1 if s is 64 lowercase hex chars. */
int store_sha256_hex_ok(const char *s);

/* Bind helpers: SQLITE_OK or an SQLite error code. Text is bound
 * SQLITE_STATIC: it must outlive the statement's step. NULL text binds NULL. */
int store_bind_text(sqlite3_stmt *stmt, int idx, const char *s);

/* Copy a text column into dst (cap bytes incl. NUL); NULL column -> "". */
void store_col_text(sqlite3_stmt *stmt, int col, char *dst, size_t cap);

/* malloc'ed copy of a text column; NULL column -> NULL. On allocation
 * failure *ret_oom is set to 1. */
char *store_col_dup(sqlite3_stmt *stmt, int col, int *ret_oom);

/* Bind the names of the states whose bits are set in mask to
 * parameters first .. first + count - 1 (NULL for the rest), where names[i]
 * is the name of state i. mask 0 means all. Returns SQLITE_OK or an error. */
int store_bind_mask(sqlite3_stmt *stmt, int first, unsigned mask,
                    const char *const *names, int count);

/* Map a text column to an index in names (count entries); -1 if unknown. */
int store_col_enum(sqlite3_stmt *stmt, int col, const char *const *names, int count);

/* Shared enum <-> name mapping for the store's state tables (defined in
 * store_sqlite_meta.c). store_enum_name: names[i], or NULL when i is out of
 * [0, count). store_enum_parse: *ret_index = the index of name in names,
 * FOTA_STORE_INVALID when name is NULL or not listed. */
const char *store_enum_name(int i, const char *const *names, int count);
enum fota_store_err store_enum_parse(const char *name, const char *const *names, int count,
                                     int *ret_index);

/* Step an "INSERT ... RETURNING id" statement to the end and release it
 * (store_done). On success *ret_id (if not NULL) = the new row id. (Defined
 * in store_sqlite_meta.c.) */
enum fota_store_err store_insert_returning_id(struct fota_store *st, sqlite3_stmt *stmt,
                                              int64_t *ret_id);

/* Make room in a list array for item n (items holds *cap of size bytes):
 * when full, realloc to twice the size (16 at first), at most max items.
 * Returns 0 on allocation failure (*items is then unchanged). (Defined in
 * store_sqlite_meta.c.) */
int store_grow(void **items, size_t *cap, size_t n, size_t size, size_t max);

/* Step a statement expecting one row: FOTA_STORE_OK with the row ready to
 * read, FOTA_STORE_NOT_FOUND when there is none, else the mapped error.
 * (Defined in store_sqlite_meta.c.) */
enum fota_store_err store_step_row(sqlite3_stmt *stmt);

#endif
