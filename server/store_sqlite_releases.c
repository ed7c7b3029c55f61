/* SPDX-License-Identifier: Apache-2.0 */
/* SQLite backend: releases (published targets) and their hardware ids. */
#include "store_releases.h"
#include "store_sqlite.h"

#include <stdlib.h>
#include <string.h>

#define RELEASE_COLS "id, target_name, length, sha256, version, security_counter, " \
                     "targets_version, created"

static void read_release(sqlite3_stmt *stmt, struct fota_store_release *r)
{
    store_col_text(stmt, 0, r->id, sizeof(r->id));
    store_col_text(stmt, 1, r->target_name, sizeof(r->target_name));
    r->length = sqlite3_column_int64(stmt, 2);
    store_col_text(stmt, 3, r->sha256, sizeof(r->sha256));
    store_col_text(stmt, 4, r->version, sizeof(r->version));
    r->security_counter = sqlite3_column_int64(stmt, 5);
    r->targets_version = sqlite3_column_int64(stmt, 6);
    r->created = sqlite3_column_int64(stmt, 7);
    r->hardware_id_count = 0;
}

/* Fill r->hardware_ids from release_hardware (sorted). */
static enum fota_store_err read_hardware(struct fota_store *st, struct fota_store_release *r)
{
    sqlite3_stmt *stmt;
    enum fota_store_err err = FOTA_STORE_OK;
    int rc;

    stmt = store_stmt(st, "SELECT hardware_id FROM release_hardware WHERE release_id = ?1 "
                          "ORDER BY hardware_id");
    if (stmt == NULL)
        return FOTA_STORE_ERROR;
    store_bind_text(stmt, 1, r->id);
    r->hardware_id_count = 0;
    for (;;) {
        rc = sqlite3_step(stmt);
        if (rc != SQLITE_ROW)
            break;
        if (r->hardware_id_count == FOTA_STORE_RELEASE_HWIDS_MAX)
            continue;   /* cannot happen: insert caps the count */
        store_col_text(stmt, 0, r->hardware_ids[r->hardware_id_count],
                       sizeof(r->hardware_ids[0]));
        r->hardware_id_count++;
    }
    if (rc != SQLITE_DONE)
        err = store_rc(rc);
    store_done(st, stmt);
    return err;
}

enum fota_store_err fota_store_release_insert(struct fota_store *st,
                                              const struct fota_store_release *rel)
{
    enum fota_store_err err;
    sqlite3_stmt *stmt;
    size_t i;

    if (st == NULL || rel == NULL || !store_str_ok(rel->id, FOTA_STORE_ID_MAX, 0) ||
        !store_str_ok(rel->target_name, FOTA_STORE_TARGET_MAX, 0) ||
        !store_sha256_hex_ok(rel->sha256) ||
        !store_str_ok(rel->version, FOTA_STORE_VERSION_MAX, 0) ||
        rel->length < 0 || rel->security_counter < 0 || rel->targets_version < 0 ||
        rel->hardware_id_count == 0 || rel->hardware_id_count > FOTA_STORE_RELEASE_HWIDS_MAX)
        return FOTA_STORE_INVALID;
    for (i = 0; i < rel->hardware_id_count; i++) {
        if (!store_str_ok(rel->hardware_ids[i], FOTA_STORE_HWID_MAX, 0))
            return FOTA_STORE_INVALID;
    }
    err = store_tx_begin(st);
    if (err != FOTA_STORE_OK)
        return err;
    stmt = store_stmt(st, "INSERT INTO releases (" RELEASE_COLS ") "
                          "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)");
    if (stmt == NULL) {
        err = FOTA_STORE_ERROR;
        goto out;
    }
    store_bind_text(stmt, 1, rel->id);
    store_bind_text(stmt, 2, rel->target_name);
    sqlite3_bind_int64(stmt, 3, rel->length);
    store_bind_text(stmt, 4, rel->sha256);
    store_bind_text(stmt, 5, rel->version);
    sqlite3_bind_int64(stmt, 6, rel->security_counter);
    sqlite3_bind_int64(stmt, 7, rel->targets_version);
    sqlite3_bind_int64(stmt, 8, rel->created);
    err = store_exec_stmt(st, stmt);
    for (i = 0; err == FOTA_STORE_OK && i < rel->hardware_id_count; i++) {
        stmt = store_stmt(st, "INSERT INTO release_hardware (release_id, hardware_id) "
                              "VALUES (?1, ?2)");
        if (stmt == NULL) {
            err = FOTA_STORE_ERROR;
            break;
        }
        store_bind_text(stmt, 1, rel->id);
        store_bind_text(stmt, 2, rel->hardware_ids[i]);
        err = store_exec_stmt(st, stmt);
        if (err == FOTA_STORE_CONFLICT)
            err = FOTA_STORE_INVALID;   /* a hardware id listed twice */
    }
out:
    return store_tx_end(st, err);
}

static enum fota_store_err release_get_by(struct fota_store *st, const char *sql,
                                          const char *key, struct fota_store_release *ret)
{
    struct fota_store_release r;
    enum fota_store_err err;
    sqlite3_stmt *stmt = store_stmt(st, sql);
    int rc;

    if (stmt == NULL)
        return FOTA_STORE_ERROR;
    store_bind_text(stmt, 1, key);
    rc = sqlite3_step(stmt);
    if (rc == SQLITE_ROW) {
        read_release(stmt, &r);
        err = FOTA_STORE_OK;
    } else if (rc == SQLITE_DONE) {
        err = FOTA_STORE_NOT_FOUND;
    } else {
        err = store_rc(rc);
    }
    store_done(st, stmt);
    if (err == FOTA_STORE_OK)
        err = read_hardware(st, &r);
    if (err == FOTA_STORE_OK)
        *ret = r;
    return err;
}

enum fota_store_err fota_store_release_get(struct fota_store *st, const char *id,
                                           struct fota_store_release *ret)
{
    if (st == NULL || ret == NULL || !store_str_ok(id, FOTA_STORE_ID_MAX, 0))
        return FOTA_STORE_INVALID;
    return release_get_by(st, "SELECT " RELEASE_COLS " FROM releases WHERE id = ?1", id, ret);
}

enum fota_store_err fota_store_release_get_by_target(struct fota_store *st,
                                                     const char *target_name,
                                                     struct fota_store_release *ret)
{
    if (st == NULL || ret == NULL || !store_str_ok(target_name, FOTA_STORE_TARGET_MAX, 0))
        return FOTA_STORE_INVALID;
    return release_get_by(st, "SELECT " RELEASE_COLS " FROM releases WHERE target_name = ?1 "
                              "ORDER BY created DESC, id DESC LIMIT 1", target_name, ret);
}

enum fota_store_err fota_store_release_list(struct fota_store *st, const char *after,
                                            unsigned limit,
                                            struct fota_store_release **ret_items,
                                            size_t *ret_n, int *ret_more)
{
    struct fota_store_release *items = NULL;
    enum fota_store_err err = FOTA_STORE_OK;
    sqlite3_stmt *stmt;
    size_t n = 0, cap = 0, i;
    int more = 0;
    int rc;

    if (st == NULL || ret_items == NULL || ret_n == NULL || ret_more == NULL ||
        limit == 0 || limit > FOTA_STORE_PAGE_MAX ||
        (after != NULL && !store_str_ok(after, FOTA_STORE_ID_MAX, 1)))
        return FOTA_STORE_INVALID;
    stmt = store_stmt(st, "SELECT " RELEASE_COLS " FROM releases WHERE id > ?1 "
                          "ORDER BY id LIMIT ?2");
    if (stmt == NULL)
        return FOTA_STORE_ERROR;
    store_bind_text(stmt, 1, after != NULL ? after : "");
    sqlite3_bind_int64(stmt, 2, (int64_t)limit + 1);
    for (;;) {
        rc = sqlite3_step(stmt);
        if (rc != SQLITE_ROW)
            break;
        if (n == limit) {
            more = 1;
            break;
        }
        if (!store_grow((void **)&items, &cap, n, sizeof(*items), limit)) {
            err = FOTA_STORE_ERROR;
            break;
        }
        read_release(stmt, &items[n]);
        n++;
    }
    if (err == FOTA_STORE_OK && rc != SQLITE_ROW && rc != SQLITE_DONE)
        err = store_rc(rc);
    store_done(st, stmt);
    /* Hardware ids after the list statement is reset (one statement at a
     * time keeps the cache simple). */
    for (i = 0; err == FOTA_STORE_OK && i < n; i++)
        err = read_hardware(st, &items[i]);
    if (err != FOTA_STORE_OK) {
        free(items);
        return err;
    }
    if (n == 0) {
        free(items);
        items = NULL;
    }
    *ret_items = items;
    *ret_n = n;
    *ret_more = more;
    return FOTA_STORE_OK;
}
