/* SPDX-License-Identifier: Apache-2.0 */
/* SQLite backend: server-wide key/value state and TUF publish bookkeeping. */
#include "store_meta.h"
#include "store_sqlite.h"

#include <stdlib.h>
#include <string.h>

const char *store_enum_name(int i, const char *const *names, int count)
{
    if (i < 0 || i >= count)
        return NULL;
    return names[i];
}

enum fota_store_err store_enum_parse(const char *name, const char *const *names, int count,
                                     int *ret_index)
{
    int i;

    if (name == NULL || ret_index == NULL)
        return FOTA_STORE_INVALID;
    for (i = 0; i < count; i++) {
        if (strcmp(name, names[i]) == 0) {
            *ret_index = i;
            return FOTA_STORE_OK;
        }
    }
    return FOTA_STORE_INVALID;
}

enum fota_store_err store_insert_returning_id(struct fota_store *st, sqlite3_stmt *stmt,
                                              int64_t *ret_id)
{
    enum fota_store_err err;
    int64_t id = 0;
    int rc = sqlite3_step(stmt);

    if (rc == SQLITE_ROW) {
        id = sqlite3_column_int64(stmt, 0);
        rc = sqlite3_step(stmt);
    }
    err = rc == SQLITE_DONE ? FOTA_STORE_OK : store_rc(rc);
    store_done(st, stmt);
    if (err == FOTA_STORE_OK && ret_id != NULL)
        *ret_id = id;
    return err;
}

int store_grow(void **items, size_t *cap, size_t n, size_t size, size_t max)
{
    size_t ncap;
    void *p;

    if (n < *cap)
        return 1;
    ncap = *cap == 0 ? 16 : *cap * 2;
    if (ncap > max)
        ncap = max;
    p = realloc(*items, ncap * size);
    if (p == NULL)
        return 0;
    *items = p;
    *cap = ncap;
    return 1;
}

enum fota_store_err store_step_row(sqlite3_stmt *stmt)
{
    int rc = sqlite3_step(stmt);

    if (rc == SQLITE_ROW)
        return FOTA_STORE_OK;
    if (rc == SQLITE_DONE)
        return FOTA_STORE_NOT_FOUND;
    return store_rc(rc);
}

static int meta_args_ok(const char *key, const void *value, size_t len)
{
    if (!store_str_ok(key, FOTA_STORE_META_KEY_MAX, 0))
        return 0;
    if (len > FOTA_STORE_META_VALUE_MAX)
        return 0;
    if (len > 0 && value == NULL)
        return 0;
    return 1;
}

static int bind_blob(sqlite3_stmt *stmt, int idx, const void *value, size_t len)
{
    /* A zero-length blob, not NULL: the column is NOT NULL. */
    return sqlite3_bind_blob(stmt, idx, len > 0 ? value : "", (int)len, SQLITE_STATIC);
}

/* Read key into buf; shared by get and insert_or_get. */
static enum fota_store_err meta_read(struct fota_store *st, const char *key, void *buf,
                                     size_t cap, size_t *ret_len)
{
    sqlite3_stmt *stmt = store_stmt(st, "SELECT value FROM meta WHERE key = ?1");
    enum fota_store_err err;
    const void *blob;
    size_t len;
    int rc;

    if (stmt == NULL)
        return FOTA_STORE_ERROR;
    store_bind_text(stmt, 1, key);
    rc = sqlite3_step(stmt);
    if (rc == SQLITE_DONE) {
        err = FOTA_STORE_NOT_FOUND;
        goto out;
    }
    if (rc != SQLITE_ROW) {
        err = store_rc(rc);
        goto out;
    }
    blob = sqlite3_column_blob(stmt, 0);
    len = (size_t)sqlite3_column_bytes(stmt, 0);
    if (len > cap) {
        err = FOTA_STORE_ERROR;
        goto out;
    }
    if (len > 0)
        memcpy(buf, blob, len);
    *ret_len = len;
    err = FOTA_STORE_OK;
out:
    store_done(st, stmt);
    return err;
}

enum fota_store_err fota_store_meta_get(struct fota_store *st, const char *key,
                                        void *buf, size_t cap, size_t *ret_len)
{
    if (st == NULL || !store_str_ok(key, FOTA_STORE_META_KEY_MAX, 0) || ret_len == NULL ||
        (buf == NULL && cap > 0))
        return FOTA_STORE_INVALID;
    return meta_read(st, key, buf, cap, ret_len);
}

enum fota_store_err fota_store_meta_set(struct fota_store *st, const char *key,
                                        const void *value, size_t len)
{
    sqlite3_stmt *stmt;

    if (st == NULL || !meta_args_ok(key, value, len))
        return FOTA_STORE_INVALID;
    stmt = store_stmt(st, "INSERT INTO meta (key, value) VALUES (?1, ?2) "
                          "ON CONFLICT (key) DO UPDATE SET value = excluded.value");
    if (stmt == NULL)
        return FOTA_STORE_ERROR;
    store_bind_text(stmt, 1, key);
    bind_blob(stmt, 2, value, len);
    return store_exec_stmt(st, stmt);
}

enum fota_store_err fota_store_meta_insert_or_get(struct fota_store *st, const char *key,
                                                  const void *value, size_t len,
                                                  void *buf, size_t cap, size_t *ret_len)
{
    enum fota_store_err err;
    sqlite3_stmt *stmt;

    if (st == NULL || !meta_args_ok(key, value, len) || ret_len == NULL ||
        (buf == NULL && cap > 0))
        return FOTA_STORE_INVALID;
    /* Insert and read back in one transaction so the value returned is the
     * one that is stored, whoever wrote it. */
    err = store_tx_begin(st);
    if (err != FOTA_STORE_OK)
        return err;
    stmt = store_stmt(st, "INSERT INTO meta (key, value) VALUES (?1, ?2) "
                          "ON CONFLICT (key) DO NOTHING");
    if (stmt == NULL) {
        err = FOTA_STORE_ERROR;
        goto out;
    }
    store_bind_text(stmt, 1, key);
    bind_blob(stmt, 2, value, len);
    err = store_exec_stmt(st, stmt);
    if (err == FOTA_STORE_OK)
        err = meta_read(st, key, buf, cap, ret_len);
out:
    return store_tx_end(st, err);
}

enum fota_store_err fota_store_meta_cas(struct fota_store *st, const char *key,
                                        const void *expected, size_t expected_len,
                                        const void *value, size_t len)
{
    enum fota_store_err err;
    sqlite3_stmt *stmt;
    size_t dummy_len;

    if (st == NULL || !meta_args_ok(key, value, len) ||
        !meta_args_ok(key, expected, expected_len))
        return FOTA_STORE_INVALID;
    stmt = store_stmt(st, "UPDATE meta SET value = ?3 WHERE key = ?1 AND value = ?2");
    if (stmt == NULL)
        return FOTA_STORE_ERROR;
    store_bind_text(stmt, 1, key);
    bind_blob(stmt, 2, expected, expected_len);
    bind_blob(stmt, 3, value, len);
    err = store_exec_stmt(st, stmt);
    if (err != FOTA_STORE_OK)
        return err;
    if (sqlite3_changes(st->db) == 1)
        return FOTA_STORE_OK;
    /* Tell a missing key from a stale expectation (the failure path only). */
    err = meta_read(st, key, NULL, 0, &dummy_len);
    if (err == FOTA_STORE_NOT_FOUND)
        return FOTA_STORE_NOT_FOUND;
    if (err == FOTA_STORE_OK || err == FOTA_STORE_ERROR)
        return FOTA_STORE_CONFLICT;   /* ERROR here: a non-empty value, too big for cap 0 */
    return err;
}

enum fota_store_err fota_store_meta_delete(struct fota_store *st, const char *key)
{
    sqlite3_stmt *stmt;

    if (st == NULL || !store_str_ok(key, FOTA_STORE_META_KEY_MAX, 0))
        return FOTA_STORE_INVALID;
    stmt = store_stmt(st, "DELETE FROM meta WHERE key = ?1");
    if (stmt == NULL)
        return FOTA_STORE_ERROR;
    store_bind_text(stmt, 1, key);
    return store_exec_stmt(st, stmt);
}

enum fota_store_err fota_store_token_secret(struct fota_store *st,
                                            const uint8_t candidate[FOTA_STORE_TOKEN_SECRET_LEN],
                                            uint8_t ret_secret[FOTA_STORE_TOKEN_SECRET_LEN])
{
    uint8_t buf[FOTA_STORE_TOKEN_SECRET_LEN];
    enum fota_store_err err;
    size_t len = 0;

    if (st == NULL || candidate == NULL || ret_secret == NULL)
        return FOTA_STORE_INVALID;
    err = fota_store_meta_insert_or_get(st, "token_secret", candidate,
                                        FOTA_STORE_TOKEN_SECRET_LEN, buf, sizeof(buf), &len);
    if (err == FOTA_STORE_OK && len != FOTA_STORE_TOKEN_SECRET_LEN)
        err = FOTA_STORE_ERROR;   /* someone stored a secret of the wrong size */
    if (err == FOTA_STORE_OK)
        memcpy(ret_secret, buf, sizeof(buf));
    /* The secret signs every device token: leave no copy on the stack. */
    {
        volatile uint8_t *p = buf;
        size_t i;
        for (i = 0; i < sizeof(buf); i++)
            p[i] = 0;
    }
    return err;
}

/* ---- TUF publish bookkeeping -------------------------------------------- */

enum fota_store_err fota_store_tuf_get(struct fota_store *st, struct fota_store_tuf_state *ret)
{
    sqlite3_stmt *stmt;
    enum fota_store_err err;
    int rc;

    if (st == NULL || ret == NULL)
        return FOTA_STORE_INVALID;
    stmt = store_stmt(st, "SELECT root_version, targets_version, snapshot_version, "
                          "timestamp_version, snapshot_expires, timestamp_expires, updated "
                          "FROM tuf_state WHERE id = 1");
    if (stmt == NULL)
        return FOTA_STORE_ERROR;
    rc = sqlite3_step(stmt);
    if (rc == SQLITE_ROW) {
        ret->root_version = sqlite3_column_int64(stmt, 0);
        ret->targets_version = sqlite3_column_int64(stmt, 1);
        ret->snapshot_version = sqlite3_column_int64(stmt, 2);
        ret->timestamp_version = sqlite3_column_int64(stmt, 3);
        ret->snapshot_expires = sqlite3_column_int64(stmt, 4);
        ret->timestamp_expires = sqlite3_column_int64(stmt, 5);
        ret->updated = sqlite3_column_int64(stmt, 6);
        err = FOTA_STORE_OK;
    } else if (rc == SQLITE_DONE) {
        err = FOTA_STORE_NOT_FOUND;
    } else {
        err = store_rc(rc);
    }
    store_done(st, stmt);
    return err;
}

static void bind_tuf(sqlite3_stmt *stmt, const struct fota_store_tuf_state *s)
{
    sqlite3_bind_int64(stmt, 1, s->root_version);
    sqlite3_bind_int64(stmt, 2, s->targets_version);
    sqlite3_bind_int64(stmt, 3, s->snapshot_version);
    sqlite3_bind_int64(stmt, 4, s->timestamp_version);
    sqlite3_bind_int64(stmt, 5, s->snapshot_expires);
    sqlite3_bind_int64(stmt, 6, s->timestamp_expires);
    sqlite3_bind_int64(stmt, 7, s->updated);
}

enum fota_store_err fota_store_tuf_set(struct fota_store *st,
                                       const struct fota_store_tuf_state *expected,
                                       const struct fota_store_tuf_state *next)
{
    struct fota_store_tuf_state cur;
    enum fota_store_err err;
    sqlite3_stmt *stmt;

    if (st == NULL || next == NULL)
        return FOTA_STORE_INVALID;
    if (expected == NULL) {
        stmt = store_stmt(st, "INSERT INTO tuf_state (id, root_version, targets_version, "
                              "snapshot_version, timestamp_version, snapshot_expires, "
                              "timestamp_expires, updated) "
                              "VALUES (1, ?1, ?2, ?3, ?4, ?5, ?6, ?7) "
                              "ON CONFLICT (id) DO NOTHING");
        if (stmt == NULL)
            return FOTA_STORE_ERROR;
        bind_tuf(stmt, next);
        err = store_exec_stmt(st, stmt);
        if (err != FOTA_STORE_OK)
            return err;
        return sqlite3_changes(st->db) == 1 ? FOTA_STORE_OK : FOTA_STORE_CONFLICT;
    }
    stmt = store_stmt(st, "UPDATE tuf_state SET root_version = ?1, targets_version = ?2, "
                          "snapshot_version = ?3, timestamp_version = ?4, "
                          "snapshot_expires = ?5, timestamp_expires = ?6, updated = ?7 "
                          "WHERE id = 1 AND root_version = ?8 AND targets_version = ?9 "
                          "AND snapshot_version = ?10 AND timestamp_version = ?11");
    if (stmt == NULL)
        return FOTA_STORE_ERROR;
    bind_tuf(stmt, next);
    sqlite3_bind_int64(stmt, 8, expected->root_version);
    sqlite3_bind_int64(stmt, 9, expected->targets_version);
    sqlite3_bind_int64(stmt, 10, expected->snapshot_version);
    sqlite3_bind_int64(stmt, 11, expected->timestamp_version);
    err = store_exec_stmt(st, stmt);
    if (err != FOTA_STORE_OK)
        return err;
    if (sqlite3_changes(st->db) == 1)
        return FOTA_STORE_OK;
    err = fota_store_tuf_get(st, &cur);
    if (err == FOTA_STORE_OK)
        return FOTA_STORE_CONFLICT;
    return err;
}
