/* SPDX-License-Identifier: Apache-2.0 */
/* SQLite backend: the device registry, tags and history. */
#include "store_devices.h"
#include "store_sqlite.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

static const char *const status_names[FOTA_STORE_DEVICE_STATUS_COUNT] = {
    "pending", "accepted", "rejected", "decommissioned",
};

const char *fota_store_device_status_name(enum fota_store_device_status s)
{
    return store_enum_name((int)s, status_names, FOTA_STORE_DEVICE_STATUS_COUNT);
}

enum fota_store_err fota_store_device_status_parse(const char *name,
                                                   enum fota_store_device_status *ret)
{
    int i;
    enum fota_store_err err;

    if (ret == NULL)
        return FOTA_STORE_INVALID;
    err = store_enum_parse(name, status_names, FOTA_STORE_DEVICE_STATUS_COUNT, &i);
    if (err == FOTA_STORE_OK)
        *ret = (enum fota_store_device_status)i;
    return err;
}

void fota_store_device_clear(struct fota_store_device *d)
{
    if (d == NULL)
        return;
    free(d->key_json);
    free(d->slots_json);
    free(d->tags_json);
    d->key_json = NULL;
    d->slots_json = NULL;
    d->tags_json = NULL;
}

void fota_store_device_list_free(struct fota_store_device *items, size_t n)
{
    size_t i;

    if (items == NULL)
        return;
    for (i = 0; i < n; i++)
        fota_store_device_clear(&items[i]);
    free(items);
}

/* Columns 0..11 are the fixed fields; 12..14 the JSON ones. */
#define DEVICE_COLS "id, hardware_id, version, status, security_counter, stored_counter, " \
                    "session_counter, seq, created, updated, last_seen, last_fresh, report_seq"
#define DEVICE_FULL_COLS DEVICE_COLS ", key_json, slots_json, tags_json"

static enum fota_store_err read_device_fixed(sqlite3_stmt *stmt, struct fota_store_device *d)
{
    int status = store_col_enum(stmt, 3, status_names, FOTA_STORE_DEVICE_STATUS_COUNT);

    if (status < 0)
        return FOTA_STORE_ERROR;
    store_col_text(stmt, 0, d->id, sizeof(d->id));
    store_col_text(stmt, 1, d->hardware_id, sizeof(d->hardware_id));
    store_col_text(stmt, 2, d->version, sizeof(d->version));
    d->status = (enum fota_store_device_status)status;
    d->security_counter = sqlite3_column_int64(stmt, 4);
    d->stored_counter = sqlite3_column_int64(stmt, 5);
    d->session_counter = sqlite3_column_int64(stmt, 6);
    d->seq = sqlite3_column_int64(stmt, 7);
    d->created = sqlite3_column_int64(stmt, 8);
    d->updated = sqlite3_column_int64(stmt, 9);
    d->last_seen = sqlite3_column_int64(stmt, 10);
    d->last_fresh = sqlite3_column_int64(stmt, 11);
    d->report_seq = sqlite3_column_int64(stmt, 12);
    d->key_json = NULL;
    d->slots_json = NULL;
    d->tags_json = NULL;
    return FOTA_STORE_OK;
}

/* Fixed fields plus the JSON columns 13..15 (NULL columns stay NULL). */
static enum fota_store_err read_device_full(sqlite3_stmt *stmt, struct fota_store_device *d)
{
    enum fota_store_err err = read_device_fixed(stmt, d);
    int oom = 0;

    if (err != FOTA_STORE_OK)
        return err;
    d->key_json = store_col_dup(stmt, 13, &oom);
    d->slots_json = store_col_dup(stmt, 14, &oom);
    d->tags_json = store_col_dup(stmt, 15, &oom);
    if (oom) {
        fota_store_device_clear(d);
        return FOTA_STORE_ERROR;
    }
    return FOTA_STORE_OK;
}

static int id_ok(const char *id)
{
    return store_str_ok(id, FOTA_STORE_ID_MAX, 0);
}

static enum fota_store_err device_get_full(struct fota_store *st, const char *id,
                                           struct fota_store_device *ret)
{
    struct fota_store_device d;
    enum fota_store_err err;
    sqlite3_stmt *stmt;

    stmt = store_stmt(st, "SELECT " DEVICE_FULL_COLS " FROM devices WHERE id = ?1");
    if (stmt == NULL)
        return FOTA_STORE_ERROR;
    store_bind_text(stmt, 1, id);
    err = store_step_row(stmt);
    if (err == FOTA_STORE_OK)
        err = read_device_full(stmt, &d);
    store_done(st, stmt);
    if (err == FOTA_STORE_OK)
        *ret = d;
    return err;
}

enum fota_store_err fota_store_device_get(struct fota_store *st, const char *id,
                                          struct fota_store_device *ret)
{
    if (st == NULL || ret == NULL || !id_ok(id))
        return FOTA_STORE_INVALID;
    return device_get_full(st, id, ret);
}

enum fota_store_err fota_store_device_enrol(struct fota_store *st,
                                            const struct fota_store_device *d,
                                            struct fota_store_device *ret, int *ret_created)
{
    struct fota_store_device cur;
    enum fota_store_err err;
    sqlite3_stmt *stmt;
    const char *status;
    int created = 0;

    memset(&cur, 0, sizeof(cur));

    if (st == NULL || d == NULL || !id_ok(d->id) ||
        !store_str_ok(d->key_json, FOTA_STORE_JSON_MAX, 0) ||
        !store_str_ok(d->hardware_id, FOTA_STORE_HWID_MAX, 0) ||
        !store_str_ok(d->version, FOTA_STORE_VERSION_MAX, 0) ||
        d->security_counter < 0 || d->stored_counter < 0 || d->created < 0)
        return FOTA_STORE_INVALID;
    status = fota_store_device_status_name(d->status);
    if (status == NULL)
        return FOTA_STORE_INVALID;

    err = store_tx_begin(st);
    if (err != FOTA_STORE_OK)
        return err;
    stmt = store_stmt(st, "INSERT INTO devices (id, key_json, hardware_id, status, version, "
                          "security_counter, stored_counter, created, updated) "
                          "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?8) "
                          "ON CONFLICT (id) DO NOTHING");
    if (stmt == NULL) {
        err = FOTA_STORE_ERROR;
        goto out;
    }
    store_bind_text(stmt, 1, d->id);
    store_bind_text(stmt, 2, d->key_json);
    store_bind_text(stmt, 3, d->hardware_id);
    store_bind_text(stmt, 4, status);
    store_bind_text(stmt, 5, d->version);
    sqlite3_bind_int64(stmt, 6, d->security_counter);
    sqlite3_bind_int64(stmt, 7, d->stored_counter);
    sqlite3_bind_int64(stmt, 8, d->created);
    err = store_exec_stmt(st, stmt);
    if (err != FOTA_STORE_OK)
        goto out;
    created = sqlite3_changes(st->db) == 1;
    if (ret != NULL)
        err = device_get_full(st, d->id, &cur);
out:
    err = store_tx_end(st, err);
    if (err != FOTA_STORE_OK) {
        fota_store_device_clear(&cur);
        return err;
    }
    if (ret != NULL)
        *ret = cur;
    if (ret_created != NULL)
        *ret_created = created;
    return FOTA_STORE_OK;
}

/* After a guarded UPDATE changed nothing: which guard failed? */
static enum fota_store_err classify_refusal(struct fota_store *st, const char *id)
{
    sqlite3_stmt *stmt = store_stmt(st, "SELECT status FROM devices WHERE id = ?1");
    enum fota_store_err err;
    int rc;

    if (stmt == NULL)
        return FOTA_STORE_ERROR;
    store_bind_text(stmt, 1, id);
    rc = sqlite3_step(stmt);
    if (rc == SQLITE_DONE) {
        err = FOTA_STORE_NOT_FOUND;
    } else if (rc != SQLITE_ROW) {
        err = store_rc(rc);
    } else {
        const unsigned char *s = sqlite3_column_text(stmt, 0);
        if (s != NULL && strcmp((const char *)s, "accepted") == 0)
            err = FOTA_STORE_CONFLICT;
        else
            err = FOTA_STORE_STATE;
    }
    store_done(st, stmt);
    return err;
}

static enum fota_store_err exists_or_conflict(struct fota_store *st, const char *id)
{
    sqlite3_stmt *stmt = store_stmt(st, "SELECT 1 FROM devices WHERE id = ?1");
    enum fota_store_err err;

    if (stmt == NULL)
        return FOTA_STORE_ERROR;
    store_bind_text(stmt, 1, id);
    err = store_step_row(stmt);
    if (err == FOTA_STORE_OK)
        err = FOTA_STORE_CONFLICT;
    store_done(st, stmt);
    return err;
}

enum fota_store_err fota_store_device_set_status(struct fota_store *st, const char *id,
                                                 enum fota_store_device_status next,
                                                 unsigned from_mask, int64_t now)
{
    enum fota_store_err err;
    sqlite3_stmt *stmt;
    const char *name = fota_store_device_status_name(next);

    if (st == NULL || !id_ok(id) || name == NULL ||
        from_mask >= (1u << FOTA_STORE_DEVICE_STATUS_COUNT))
        return FOTA_STORE_INVALID;
    stmt = store_stmt(st, "UPDATE devices SET status = ?2, updated = ?3 "
                          "WHERE id = ?1 AND status IN (?4, ?5, ?6, ?7)");
    if (stmt == NULL)
        return FOTA_STORE_ERROR;
    store_bind_text(stmt, 1, id);
    store_bind_text(stmt, 2, name);
    sqlite3_bind_int64(stmt, 3, now);
    store_bind_mask(stmt, 4, from_mask, status_names, FOTA_STORE_DEVICE_STATUS_COUNT);
    err = store_exec_stmt(st, stmt);
    if (err != FOTA_STORE_OK)
        return err;
    if (sqlite3_changes(st->db) == 1)
        return FOTA_STORE_OK;
    return exists_or_conflict(st, id);
}

/* Run a guarded "raise a counter" UPDATE (?1 id, ?2 value, ?3 now) that
 * matches only an accepted device whose counter is below value; a refused
 * update is classified (not found / not accepted / replay). */
static enum fota_store_err raise_counter(struct fota_store *st, const char *sql,
                                         const char *id, int64_t value, int64_t now)
{
    enum fota_store_err err;
    sqlite3_stmt *stmt;

    if (st == NULL || !id_ok(id) || value < 0)
        return FOTA_STORE_INVALID;
    stmt = store_stmt(st, sql);
    if (stmt == NULL)
        return FOTA_STORE_ERROR;
    store_bind_text(stmt, 1, id);
    sqlite3_bind_int64(stmt, 2, value);
    sqlite3_bind_int64(stmt, 3, now);
    err = store_exec_stmt(st, stmt);
    if (err != FOTA_STORE_OK)
        return err;
    if (sqlite3_changes(st->db) == 1)
        return FOTA_STORE_OK;
    return classify_refusal(st, id);
}

enum fota_store_err fota_store_device_session(struct fota_store *st, const char *id,
                                              int64_t counter, int64_t now)
{
    return raise_counter(st, "UPDATE devices SET session_counter = ?2, last_seen = ?3 "
                             "WHERE id = ?1 AND status = 'accepted' AND session_counter < ?2",
                         id, counter, now);
}

/*
 * The two forms of the check-in UPDATE. Each is one statement carrying the
 * seq and status guards and every field, so a replayed or concurrent
 * check-in can never half-apply. The first leaves `version` out of the SET
 * list and requires it to be unchanged: SQLite rewrites an index entry for
 * every indexed column named in SET even when the value is the same, and a
 * device reports the same version on almost every check-in, so this saves
 * one index page write per check-in. When the version did change, the first
 * form matches no row and the second one (with version) runs.
 */
static const char *const checkin_sql[2] = {
    "UPDATE devices SET seq = ?2, last_seen = ?3, last_fresh = ?3, "
    "security_counter = ?5, "
    "stored_counter = CASE WHEN ?6 <> 0 AND ?5 > stored_counter THEN ?5 ELSE stored_counter END, "
    "slots_json = COALESCE(?7, slots_json) "
    "WHERE id = ?1 AND status = 'accepted' AND seq < ?2 AND version = ?4 "
    "RETURNING " DEVICE_COLS,

    "UPDATE devices SET seq = ?2, last_seen = ?3, last_fresh = ?3, "
    "version = ?4, security_counter = ?5, "
    "stored_counter = CASE WHEN ?6 <> 0 AND ?5 > stored_counter THEN ?5 ELSE stored_counter END, "
    "slots_json = COALESCE(?7, slots_json) "
    "WHERE id = ?1 AND status = 'accepted' AND seq < ?2 "
    "RETURNING " DEVICE_COLS,
};

/* Run one form: OK with *ret filled, NOT_FOUND when no row matched. */
static enum fota_store_err checkin_try(struct fota_store *st, const char *sql,
                                       const struct fota_store_checkin *c,
                                       struct fota_store_device *ret)
{
    struct fota_store_device d;
    enum fota_store_err err;
    sqlite3_stmt *stmt;
    int rc;

    stmt = store_stmt(st, sql);
    if (stmt == NULL)
        return FOTA_STORE_ERROR;
    store_bind_text(stmt, 1, c->id);
    sqlite3_bind_int64(stmt, 2, c->seq);
    sqlite3_bind_int64(stmt, 3, c->now);
    store_bind_text(stmt, 4, c->version);
    sqlite3_bind_int64(stmt, 5, c->security_counter);
    sqlite3_bind_int(stmt, 6, c->confirmed ? 1 : 0);
    store_bind_text(stmt, 7, c->slots_json);
    rc = sqlite3_step(stmt);
    if (rc == SQLITE_ROW) {
        err = read_device_fixed(stmt, &d);
        /* Run to completion so the change is final before we report it. */
        rc = sqlite3_step(stmt);
        if (err == FOTA_STORE_OK && rc != SQLITE_DONE)
            err = store_rc(rc);
        store_done(st, stmt);
        if (err == FOTA_STORE_OK)
            *ret = d;
        return err;
    }
    store_done(st, stmt);
    if (rc != SQLITE_DONE)
        return store_rc(rc);
    return FOTA_STORE_NOT_FOUND;
}

enum fota_store_err fota_store_device_checkin(struct fota_store *st,
                                              const struct fota_store_checkin *c,
                                              struct fota_store_device *ret)
{
    struct fota_store_device d;
    enum fota_store_err err;

    if (st == NULL || c == NULL || !id_ok(c->id) || c->seq < 0 || c->security_counter < 0 ||
        !store_str_ok(c->version, FOTA_STORE_VERSION_MAX, 0) ||
        (c->slots_json != NULL && !store_str_ok(c->slots_json, FOTA_STORE_JSON_MAX, 0)))
        return FOTA_STORE_INVALID;
    err = checkin_try(st, checkin_sql[0], c, &d);
    if (err == FOTA_STORE_NOT_FOUND)
        err = checkin_try(st, checkin_sql[1], c, &d);
    if (err == FOTA_STORE_NOT_FOUND)
        return classify_refusal(st, c->id);
    if (err == FOTA_STORE_OK && ret != NULL)
        *ret = d;
    return err;
}

enum fota_store_err fota_store_device_seq(struct fota_store *st, const char *id,
                                          int64_t seq, int64_t now)
{
    return raise_counter(st, "UPDATE devices SET seq = ?2, report_seq = ?2, last_seen = ?3 "
                             "WHERE id = ?1 AND status = 'accepted' AND seq < ?2",
                         id, seq, now);
}

enum fota_store_err fota_store_device_list(struct fota_store *st,
                                           const struct fota_store_device_filter *filter,
                                           const char *after, unsigned limit,
                                           struct fota_store_device **ret_items, size_t *ret_n,
                                           int *ret_more)
{
    static const struct fota_store_device_filter none;
    const struct fota_store_device_filter *f = filter != NULL ? filter : &none;
    struct fota_store_device *items = NULL;
    enum fota_store_err err = FOTA_STORE_OK;
    sqlite3_stmt *stmt;
    size_t n = 0, cap = 0, len;
    int more = 0;
    char sql[1024];
    int rc;

    if (st == NULL || ret_items == NULL || ret_n == NULL || ret_more == NULL ||
        limit == 0 || limit > FOTA_STORE_PAGE_MAX ||
        (after != NULL && !store_str_ok(after, FOTA_STORE_ID_MAX, 1)) ||
        f->status_mask >= (1u << FOTA_STORE_DEVICE_STATUS_COUNT) ||
        (f->hardware_id != NULL && !store_str_ok(f->hardware_id, FOTA_STORE_HWID_MAX, 0)) ||
        (f->version != NULL && !store_str_ok(f->version, FOTA_STORE_VERSION_MAX, 0)) ||
        (f->tag != NULL && !store_str_ok(f->tag, FOTA_STORE_TAG_MAX, 0)))
        return FOTA_STORE_INVALID;

    /* Only the active filters go into the SQL, so the planner can use the
     * matching index; at most 2^6 distinct texts, each cached once per
     * connection. Parameter numbers are fixed per filter. */
    len = (size_t)snprintf(sql, sizeof(sql),
                           "SELECT " DEVICE_COLS ", NULL, slots_json, tags_json "
                           "FROM devices d WHERE d.id > ?1");
    if (f->status_mask != 0)
        len += (size_t)snprintf(sql + len, sizeof(sql) - len,
                                " AND d.status IN (?2, ?3, ?4, ?5)");
    if (f->hardware_id != NULL)
        len += (size_t)snprintf(sql + len, sizeof(sql) - len, " AND d.hardware_id = ?6");
    if (f->version != NULL)
        len += (size_t)snprintf(sql + len, sizeof(sql) - len, " AND d.version = ?7");
    if (f->tag != NULL)
        len += (size_t)snprintf(sql + len, sizeof(sql) - len,
                                " AND EXISTS (SELECT 1 FROM device_tags t"
                                " WHERE t.device_id = d.id AND t.tag = ?8)");
    if (f->fresh_before != 0)
        len += (size_t)snprintf(sql + len, sizeof(sql) - len, " AND d.last_fresh < ?9");
    if (f->fresh_since != 0)
        len += (size_t)snprintf(sql + len, sizeof(sql) - len, " AND d.last_fresh >= ?10");
    len += (size_t)snprintf(sql + len, sizeof(sql) - len, " ORDER BY d.id LIMIT ?11");
    if (len >= sizeof(sql))
        return FOTA_STORE_ERROR;

    stmt = store_stmt_text(st, sql);
    if (stmt == NULL)
        return FOTA_STORE_ERROR;
    store_bind_text(stmt, 1, after != NULL ? after : "");
    if (f->status_mask != 0)
        store_bind_mask(stmt, 2, f->status_mask, status_names, FOTA_STORE_DEVICE_STATUS_COUNT);
    if (f->hardware_id != NULL)
        store_bind_text(stmt, 6, f->hardware_id);
    if (f->version != NULL)
        store_bind_text(stmt, 7, f->version);
    if (f->tag != NULL)
        store_bind_text(stmt, 8, f->tag);
    if (f->fresh_before != 0)
        sqlite3_bind_int64(stmt, 9, f->fresh_before);
    if (f->fresh_since != 0)
        sqlite3_bind_int64(stmt, 10, f->fresh_since);
    sqlite3_bind_int64(stmt, 11, (int64_t)limit + 1);   /* one more: is there a next page? */
    for (;;) {
        rc = sqlite3_step(stmt);
        if (rc != SQLITE_ROW)
            break;
        if (n == limit) {
            more = 1;
            break;
        }
        if (!store_grow((void **)&items, &cap, n, sizeof(*items), FOTA_STORE_PAGE_MAX)) {
            err = FOTA_STORE_ERROR;
            goto out;
        }
        err = read_device_full(stmt, &items[n]);
        if (err != FOTA_STORE_OK)
            goto out;
        n++;
    }
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        err = store_rc(rc);
out:
    store_done(st, stmt);
    if (err != FOTA_STORE_OK) {
        fota_store_device_list_free(items, n);
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

/* Rebuild devices.tags_json from device_tags (sorted), in the caller's
 * transaction. The JSON copy lets lists return tags without a query per
 * device; device_tags is what the tag filter uses. */
static enum fota_store_err rebuild_tags_json(struct fota_store *st, const char *id)
{
    enum fota_store_err err = FOTA_STORE_OK;
    json_t *arr = json_array();
    sqlite3_stmt *stmt = NULL;
    size_t count = 0;
    char *text = NULL;
    int rc;

    if (arr == NULL)
        return FOTA_STORE_ERROR;
    stmt = store_stmt(st, "SELECT tag FROM device_tags WHERE device_id = ?1 ORDER BY tag");
    if (stmt == NULL) {
        err = FOTA_STORE_ERROR;
        goto out;
    }
    store_bind_text(stmt, 1, id);
    for (;;) {
        rc = sqlite3_step(stmt);
        if (rc != SQLITE_ROW)
            break;
        if (json_array_append_new(arr, json_string((const char *)sqlite3_column_text(stmt, 0))) != 0) {
            err = FOTA_STORE_ERROR;
            break;
        }
        count++;
    }
    store_done(st, stmt);
    if (err != FOTA_STORE_OK)
        goto out;
    if (rc != SQLITE_DONE && rc != SQLITE_ROW) {
        err = store_rc(rc);
        goto out;
    }
    if (count > FOTA_STORE_TAGS_MAX) {
        err = FOTA_STORE_INVALID;
        goto out;
    }
    text = json_dumps(arr, JSON_COMPACT);
    if (text == NULL) {
        err = FOTA_STORE_ERROR;
        goto out;
    }
    stmt = store_stmt(st, "UPDATE devices SET tags_json = ?2 WHERE id = ?1");
    if (stmt == NULL) {
        err = FOTA_STORE_ERROR;
        goto out;
    }
    store_bind_text(stmt, 1, id);
    store_bind_text(stmt, 2, text);
    err = store_exec_stmt(st, stmt);
out:
    free(text);
    json_decref(arr);
    return err;
}

/* A tag must be storable and representable as a JSON string (UTF-8). */
static int tag_ok(const char *tag)
{
    json_t *s;

    if (!store_str_ok(tag, FOTA_STORE_TAG_MAX, 0))
        return 0;
    s = json_string(tag);
    if (s == NULL)
        return 0;
    json_decref(s);
    return 1;
}

enum fota_store_err fota_store_device_tags(struct fota_store *st, const char *id,
                                           const char *const *add, size_t n_add,
                                           const char *const *remove, size_t n_remove)
{
    enum fota_store_err err;
    sqlite3_stmt *stmt;
    size_t i;

    if (st == NULL || !id_ok(id) || n_add > FOTA_STORE_TAGS_MAX ||
        n_remove > FOTA_STORE_TAGS_MAX || (n_add > 0 && add == NULL) ||
        (n_remove > 0 && remove == NULL))
        return FOTA_STORE_INVALID;
    for (i = 0; i < n_add; i++) {
        if (!tag_ok(add[i]))
            return FOTA_STORE_INVALID;
    }
    for (i = 0; i < n_remove; i++) {
        if (!tag_ok(remove[i]))
            return FOTA_STORE_INVALID;
    }
    err = store_tx_begin(st);
    if (err != FOTA_STORE_OK)
        return err;
    stmt = store_stmt(st, "SELECT 1 FROM devices WHERE id = ?1");
    if (stmt == NULL) {
        err = FOTA_STORE_ERROR;
        goto out;
    }
    store_bind_text(stmt, 1, id);
    err = sqlite3_step(stmt) == SQLITE_ROW ? FOTA_STORE_OK : FOTA_STORE_NOT_FOUND;
    store_done(st, stmt);
    for (i = 0; err == FOTA_STORE_OK && i < n_add; i++) {
        stmt = store_stmt(st, "INSERT INTO device_tags (device_id, tag) VALUES (?1, ?2) "
                              "ON CONFLICT (device_id, tag) DO NOTHING");
        if (stmt == NULL) {
            err = FOTA_STORE_ERROR;
            break;
        }
        store_bind_text(stmt, 1, id);
        store_bind_text(stmt, 2, add[i]);
        err = store_exec_stmt(st, stmt);
    }
    for (i = 0; err == FOTA_STORE_OK && i < n_remove; i++) {
        stmt = store_stmt(st, "DELETE FROM device_tags WHERE device_id = ?1 AND tag = ?2");
        if (stmt == NULL) {
            err = FOTA_STORE_ERROR;
            break;
        }
        store_bind_text(stmt, 1, id);
        store_bind_text(stmt, 2, remove[i]);
        err = store_exec_stmt(st, stmt);
    }
    if (err == FOTA_STORE_OK)
        err = rebuild_tags_json(st, id);
out:
    return store_tx_end(st, err);
}

enum fota_store_err fota_store_device_counts(struct fota_store *st,
                                             int64_t ret_counts[FOTA_STORE_DEVICE_STATUS_COUNT])
{
    int64_t counts[FOTA_STORE_DEVICE_STATUS_COUNT] = { 0 };
    enum fota_store_err err = FOTA_STORE_OK;
    sqlite3_stmt *stmt;
    int rc, s;

    if (st == NULL || ret_counts == NULL)
        return FOTA_STORE_INVALID;
    stmt = store_stmt(st, "SELECT status, COUNT(*) FROM devices GROUP BY status");
    if (stmt == NULL)
        return FOTA_STORE_ERROR;
    for (;;) {
        rc = sqlite3_step(stmt);
        if (rc != SQLITE_ROW)
            break;
        s = store_col_enum(stmt, 0, status_names, FOTA_STORE_DEVICE_STATUS_COUNT);
        if (s >= 0)
            counts[s] = sqlite3_column_int64(stmt, 1);
    }
    if (rc != SQLITE_DONE)
        err = store_rc(rc);
    store_done(st, stmt);
    if (err == FOTA_STORE_OK)
        memcpy(ret_counts, counts, sizeof(counts));
    return err;
}

enum fota_store_err fota_store_device_count_stale(struct fota_store *st, int64_t before,
                                                  int64_t *ret_n)
{
    enum fota_store_err err;
    sqlite3_stmt *stmt;
    int rc;

    if (st == NULL || ret_n == NULL)
        return FOTA_STORE_INVALID;
    stmt = store_stmt(st, "SELECT COUNT(*) FROM devices "
                          "WHERE status = 'accepted' AND last_fresh < ?1");
    if (stmt == NULL)
        return FOTA_STORE_ERROR;
    sqlite3_bind_int64(stmt, 1, before);
    rc = sqlite3_step(stmt);
    if (rc == SQLITE_ROW) {
        *ret_n = sqlite3_column_int64(stmt, 0);
        err = FOTA_STORE_OK;
    } else {
        err = store_rc(rc);
    }
    store_done(st, stmt);
    return err;
}

/* ---- history ------------------------------------------------------------ */

enum fota_store_err fota_store_device_history_append(struct fota_store *st,
                                                     const struct fota_store_history *h,
                                                     int64_t *ret_id)
{
    sqlite3_stmt *stmt;

    if (st == NULL || h == NULL || !id_ok(h->device_id) ||
        !store_str_ok(h->event, FOTA_STORE_EVENT_MAX, 0) ||
        !store_str_ok(h->target, FOTA_STORE_TARGET_MAX, 1) ||
        !store_str_ok(h->version, FOTA_STORE_VERSION_MAX, 1) ||
        !store_str_ok(h->reason, FOTA_STORE_REASON_MAX, 1) ||
        (h->detail != NULL && !store_str_ok(h->detail, FOTA_STORE_JSON_MAX, 1)))
        return FOTA_STORE_INVALID;
    stmt = store_stmt(st, "INSERT INTO device_history (device_id, time, event, target, "
                          "version, reason, detail) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) "
                          "RETURNING id");
    if (stmt == NULL)
        return FOTA_STORE_ERROR;
    store_bind_text(stmt, 1, h->device_id);
    sqlite3_bind_int64(stmt, 2, h->time);
    store_bind_text(stmt, 3, h->event);
    store_bind_text(stmt, 4, h->target);
    store_bind_text(stmt, 5, h->version);
    store_bind_text(stmt, 6, h->reason);
    store_bind_text(stmt, 7, h->detail);
    return store_insert_returning_id(st, stmt, ret_id);
}

void fota_store_history_list_free(struct fota_store_history *items, size_t n)
{
    size_t i;

    if (items == NULL)
        return;
    for (i = 0; i < n; i++)
        free(items[i].detail);
    free(items);
}

enum fota_store_err fota_store_device_history_list(struct fota_store *st, const char *id,
                                                   int64_t before, unsigned limit,
                                                   struct fota_store_history **ret_items,
                                                   size_t *ret_n, int *ret_more)
{
    struct fota_store_history *items = NULL;
    enum fota_store_err err = FOTA_STORE_OK;
    sqlite3_stmt *stmt;
    size_t n = 0, cap = 0;
    int more = 0, oom = 0;
    int rc;

    if (st == NULL || !id_ok(id) || ret_items == NULL || ret_n == NULL || ret_more == NULL ||
        limit == 0 || limit > FOTA_STORE_PAGE_MAX || before < 0)
        return FOTA_STORE_INVALID;
    stmt = store_stmt(st, "SELECT id, device_id, time, event, target, version, reason, detail "
                          "FROM device_history WHERE device_id = ?1 AND id < ?2 "
                          "ORDER BY id DESC LIMIT ?3");
    if (stmt == NULL)
        return FOTA_STORE_ERROR;
    store_bind_text(stmt, 1, id);
    sqlite3_bind_int64(stmt, 2, before == 0 ? INT64_MAX : before);
    sqlite3_bind_int64(stmt, 3, (int64_t)limit + 1);
    for (;;) {
        struct fota_store_history *h;

        rc = sqlite3_step(stmt);
        if (rc != SQLITE_ROW)
            break;
        if (n == limit) {
            more = 1;
            break;
        }
        if (!store_grow((void **)&items, &cap, n, sizeof(*items), FOTA_STORE_PAGE_MAX)) {
            err = FOTA_STORE_ERROR;
            goto out;
        }
        h = &items[n];
        h->id = sqlite3_column_int64(stmt, 0);
        store_col_text(stmt, 1, h->device_id, sizeof(h->device_id));
        h->time = sqlite3_column_int64(stmt, 2);
        store_col_text(stmt, 3, h->event, sizeof(h->event));
        store_col_text(stmt, 4, h->target, sizeof(h->target));
        store_col_text(stmt, 5, h->version, sizeof(h->version));
        store_col_text(stmt, 6, h->reason, sizeof(h->reason));
        h->detail = store_col_dup(stmt, 7, &oom);
        n++;
        if (oom) {
            err = FOTA_STORE_ERROR;
            goto out;
        }
    }
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        err = store_rc(rc);
out:
    store_done(st, stmt);
    if (err != FOTA_STORE_OK) {
        fota_store_history_list_free(items, n);
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
