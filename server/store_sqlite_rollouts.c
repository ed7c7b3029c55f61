/* SPDX-License-Identifier: Apache-2.0 */
/* SQLite backend: rollouts, their device lists and progress, and the
 * check-in assignment query. */
#include "store_rollouts.h"
#include "store_sqlite.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const state_names[FOTA_STORE_ROLLOUT_STATE_COUNT] = {
    "active", "paused", "aborted", "completed",
};

static const char *const rd_names[FOTA_STORE_RD_STATUS_COUNT] = {
    "assigned", "downloading", "installed", "rebooted", "confirmed", "rolled_back", "failed",
};

const char *fota_store_rollout_state_name(enum fota_store_rollout_state s)
{
    return store_enum_name((int)s, state_names, FOTA_STORE_ROLLOUT_STATE_COUNT);
}

enum fota_store_err fota_store_rollout_state_parse(const char *name,
                                                   enum fota_store_rollout_state *ret)
{
    int i;
    enum fota_store_err err;

    if (ret == NULL)
        return FOTA_STORE_INVALID;
    err = store_enum_parse(name, state_names, FOTA_STORE_ROLLOUT_STATE_COUNT, &i);
    if (err == FOTA_STORE_OK)
        *ret = (enum fota_store_rollout_state)i;
    return err;
}

const char *fota_store_rd_status_name(enum fota_store_rd_status s)
{
    return store_enum_name((int)s, rd_names, FOTA_STORE_RD_STATUS_COUNT);
}

enum fota_store_err fota_store_rd_status_parse(const char *name, enum fota_store_rd_status *ret)
{
    int i;
    enum fota_store_err err;

    if (ret == NULL)
        return FOTA_STORE_INVALID;
    err = store_enum_parse(name, rd_names, FOTA_STORE_RD_STATUS_COUNT, &i);
    if (err == FOTA_STORE_OK)
        *ret = (enum fota_store_rd_status)i;
    return err;
}

void fota_store_rollout_clear(struct fota_store_rollout *r)
{
    if (r == NULL)
        return;
    free(r->group_json);
    r->group_json = NULL;
}

void fota_store_rollout_list_free(struct fota_store_rollout *items, size_t n)
{
    size_t i;

    if (items == NULL)
        return;
    for (i = 0; i < n; i++)
        fota_store_rollout_clear(&items[i]);
    free(items);
}

static int id_ok(const char *id)
{
    return store_str_ok(id, FOTA_STORE_ID_MAX, 0);
}

/* Waves are stored as "5,25,100" (the column is internal; the API speaks
 * JSON arrays). */
static int waves_encode(const struct fota_store_rollout *r, char *out, size_t cap)
{
    size_t len = 0;
    int i, n;

    out[0] = '\0';
    for (i = 0; i < r->wave_count; i++) {
        n = snprintf(out + len, cap - len, i == 0 ? "%d" : ",%d", r->waves[i]);
        if (n < 0 || (size_t)n >= cap - len)
            return 0;
        len += (size_t)n;
    }
    return 1;
}

static int waves_decode(const char *text, struct fota_store_rollout *r)
{
    const char *p = text;
    char *end;
    long v;
    int n = 0;

    if (text == NULL)
        return 0;
    while (*p != '\0') {
        if (n == FOTA_STORE_WAVES_MAX)
            return 0;
        errno = 0;
        v = strtol(p, &end, 10);
        if (errno != 0 || end == p || v < 1 || v > 100)
            return 0;
        r->waves[n++] = (int)v;
        p = end;
        if (*p == ',')
            p++;
        else if (*p != '\0')
            return 0;
    }
    return n == r->wave_count;
}

#define ROLLOUT_COLS "id, release_id, state, current_wave, wave_count, waves, " \
                     "success_threshold, failure_limit, rollback, device_count, created_by, " \
                     "created, updated, group_json"

static enum fota_store_err read_rollout(sqlite3_stmt *stmt, struct fota_store_rollout *r)
{
    int state = store_col_enum(stmt, 2, state_names, FOTA_STORE_ROLLOUT_STATE_COUNT);
    int oom = 0;

    memset(r, 0, sizeof(*r));
    if (state < 0)
        return FOTA_STORE_ERROR;
    store_col_text(stmt, 0, r->id, sizeof(r->id));
    store_col_text(stmt, 1, r->release_id, sizeof(r->release_id));
    r->state = (enum fota_store_rollout_state)state;
    r->current_wave = sqlite3_column_int(stmt, 3);
    r->wave_count = sqlite3_column_int(stmt, 4);
    if (r->wave_count < 1 || r->wave_count > FOTA_STORE_WAVES_MAX ||
        !waves_decode((const char *)sqlite3_column_text(stmt, 5), r))
        return FOTA_STORE_ERROR;
    r->success_threshold = sqlite3_column_double(stmt, 6);
    r->failure_limit = sqlite3_column_double(stmt, 7);
    r->rollback = sqlite3_column_int(stmt, 8);
    r->device_count = sqlite3_column_int64(stmt, 9);
    store_col_text(stmt, 10, r->created_by, sizeof(r->created_by));
    r->created = sqlite3_column_int64(stmt, 11);
    r->updated = sqlite3_column_int64(stmt, 12);
    r->group_json = store_col_dup(stmt, 13, &oom);
    return oom ? FOTA_STORE_ERROR : FOTA_STORE_OK;
}

static int fraction_ok(double x)
{
    return x >= 0.0 && x <= 1.0;   /* false for NaN too */
}

static int rollout_ok(const struct fota_store_rollout *r)
{
    int i;

    if (!id_ok(r->id) || !id_ok(r->release_id) ||
        fota_store_rollout_state_name(r->state) == NULL ||
        r->wave_count < 1 || r->wave_count > FOTA_STORE_WAVES_MAX ||
        r->current_wave < 0 || r->current_wave >= r->wave_count ||
        !fraction_ok(r->success_threshold) || !fraction_ok(r->failure_limit) ||
        (r->rollback != 0 && r->rollback != 1) ||
        !store_str_ok(r->created_by, FOTA_STORE_NAME_MAX, 1) ||
        (r->group_json != NULL && !store_str_ok(r->group_json, FOTA_STORE_JSON_MAX, 0)))
        return 0;
    for (i = 0; i < r->wave_count; i++) {
        if (r->waves[i] < 1 || r->waves[i] > 100)
            return 0;
        if (i > 0 && r->waves[i] <= r->waves[i - 1])
            return 0;
    }
    return 1;
}

/* Members per write transaction when the caller holds none: a chunk
 * commits in a few milliseconds, so check-ins keep flowing while a rollout
 * of millions of devices is written. */
#define ROLLOUT_CHUNK 2000

static enum fota_store_err insert_members(struct fota_store *st,
                                          const struct fota_store_rollout *r,
                                          const struct fota_store_rollout_member *members,
                                          size_t n)
{
    enum fota_store_err err = FOTA_STORE_OK;
    sqlite3_stmt *stmt;

    for (size_t i = 0; err == FOTA_STORE_OK && i < n; i++) {
        stmt = store_stmt(st, "INSERT INTO rollout_devices (rollout_id, device_id, wave, status, "
                              "reason, updated) VALUES (?1, ?2, ?3, 'assigned', '', ?4)");
        if (stmt == NULL)
            return FOTA_STORE_ERROR;
        store_bind_text(stmt, 1, r->id);
        store_bind_text(stmt, 2, members[i].device_id);
        sqlite3_bind_int(stmt, 3, members[i].wave);
        sqlite3_bind_int64(stmt, 4, r->created);
        err = store_exec_stmt(st, stmt);
    }
    return err;
}

enum fota_store_err fota_store_rollout_create(struct fota_store *st,
                                              const struct fota_store_rollout *r,
                                              const struct fota_store_rollout_member *members,
                                              size_t n)
{
    char waves[FOTA_STORE_WAVES_MAX * 4 + 1];
    enum fota_store_err err;
    sqlite3_stmt *stmt;
    size_t i, done, chunk;
    int written = 0;                     /* the first transaction committed */

    if (st == NULL || r == NULL || !rollout_ok(r) || (n > 0 && members == NULL) ||
        n > (size_t)INT64_MAX || !waves_encode(r, waves, sizeof(waves)))
        return FOTA_STORE_INVALID;
    for (i = 0; i < n; i++) {
        if (!id_ok(members[i].device_id) || members[i].wave < 0 ||
            members[i].wave >= r->wave_count)
            return FOTA_STORE_INVALID;
    }
    /* Inside the caller's transaction everything goes into it; otherwise
     * one transaction per chunk. */
    chunk = st->tx_depth > 0 ? (n > 0 ? n : 1) : ROLLOUT_CHUNK;
    err = store_tx_begin(st);
    if (err != FOTA_STORE_OK)
        return err;
    stmt = store_stmt(st, "INSERT INTO rollouts (" ROLLOUT_COLS ", ready) VALUES "
                          "(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?12, ?13, 0)");
    if (stmt == NULL) {
        store_tx_end(st, FOTA_STORE_ERROR);
        return FOTA_STORE_ERROR;
    }
    store_bind_text(stmt, 1, r->id);
    store_bind_text(stmt, 2, r->release_id);
    store_bind_text(stmt, 3, state_names[r->state]);
    sqlite3_bind_int(stmt, 4, r->current_wave);
    sqlite3_bind_int(stmt, 5, r->wave_count);
    store_bind_text(stmt, 6, waves);
    sqlite3_bind_double(stmt, 7, r->success_threshold);
    sqlite3_bind_double(stmt, 8, r->failure_limit);
    sqlite3_bind_int(stmt, 9, r->rollback);
    sqlite3_bind_int64(stmt, 10, (int64_t)n);
    store_bind_text(stmt, 11, r->created_by);
    sqlite3_bind_int64(stmt, 12, r->created);
    store_bind_text(stmt, 13, r->group_json != NULL ? r->group_json : "{}");
    err = store_exec_stmt(st, stmt);
    done = n < chunk ? n : chunk;
    if (err == FOTA_STORE_OK)
        err = insert_members(st, r, members, done);
    err = store_tx_end(st, err);
    written = err == FOTA_STORE_OK && st->tx_depth == 0;
    while (err == FOTA_STORE_OK && done < n) {
        size_t k = n - done < chunk ? n - done : chunk;

        err = store_tx_begin(st);
        if (err != FOTA_STORE_OK)
            break;
        err = store_tx_end(st, insert_members(st, r, members + done, k));
        done += k;
    }
    /* The first transaction failing left nothing; a later one left a
     * hidden rollout that must go. */
    if (err != FOTA_STORE_OK && written)
        fota_store_rollout_discard(st, r->id);
    return err;
}

enum fota_store_err fota_store_rollout_reveal(struct fota_store *st, const char *id)
{
    enum fota_store_err err;
    sqlite3_stmt *stmt;

    if (st == NULL || !id_ok(id))
        return FOTA_STORE_INVALID;
    stmt = store_stmt(st, "UPDATE rollouts SET ready = 1 WHERE id = ?1 AND ready = 0");
    if (stmt == NULL)
        return FOTA_STORE_ERROR;
    store_bind_text(stmt, 1, id);
    err = store_exec_stmt(st, stmt);
    if (err == FOTA_STORE_OK && sqlite3_changes(st->db) != 1)
        err = FOTA_STORE_NOT_FOUND;
    return err;
}

enum fota_store_err fota_store_rollout_discard(struct fota_store *st, const char *id)
{
    enum fota_store_err err;
    sqlite3_stmt *stmt;
    int more = 1;

    if (st == NULL || !id_ok(id))
        return FOTA_STORE_INVALID;
    /* Members first, a chunk per transaction (outside the caller's). */
    while (more) {
        err = store_tx_begin(st);
        if (err != FOTA_STORE_OK)
            return err;
        stmt = store_stmt(st, "DELETE FROM rollout_devices WHERE rollout_id = ?1 AND device_id IN "
                              "(SELECT device_id FROM rollout_devices WHERE rollout_id = ?1 "
                              "AND EXISTS (SELECT 1 FROM rollouts WHERE id = ?1 AND ready = 0) "
                              "LIMIT ?2)");
        if (stmt == NULL) {
            store_tx_end(st, FOTA_STORE_ERROR);
            return FOTA_STORE_ERROR;
        }
        store_bind_text(stmt, 1, id);
        sqlite3_bind_int(stmt, 2, ROLLOUT_CHUNK);
        err = store_exec_stmt(st, stmt);
        more = err == FOTA_STORE_OK && sqlite3_changes(st->db) > 0;
        err = store_tx_end(st, err);
        if (err != FOTA_STORE_OK)
            return err;
    }
    stmt = store_stmt(st, "DELETE FROM rollouts WHERE id = ?1 AND ready = 0");
    if (stmt == NULL)
        return FOTA_STORE_ERROR;
    store_bind_text(stmt, 1, id);
    return store_exec_stmt(st, stmt);
}

enum fota_store_err fota_store_rollout_sweep(struct fota_store *st, int64_t created_before,
                                             size_t *ret_n)
{
    char id[FOTA_STORE_ID_MAX + 1];
    enum fota_store_err err = FOTA_STORE_OK;
    sqlite3_stmt *stmt;
    size_t n = 0;

    if (st == NULL)
        return FOTA_STORE_INVALID;
    for (;;) {
        stmt = store_stmt(st, "SELECT id FROM rollouts WHERE ready = 0 AND created < ?1 LIMIT 1");
        if (stmt == NULL)
            return FOTA_STORE_ERROR;
        sqlite3_bind_int64(stmt, 1, created_before);
        err = store_step_row(stmt);
        if (err == FOTA_STORE_OK)
            store_col_text(stmt, 0, id, sizeof(id));
        store_done(st, stmt);
        if (err == FOTA_STORE_NOT_FOUND) {
            err = FOTA_STORE_OK;
            break;
        }
        if (err != FOTA_STORE_OK)
            break;
        err = fota_store_rollout_discard(st, id);
        if (err != FOTA_STORE_OK)
            break;
        n++;
    }
    if (ret_n != NULL)
        *ret_n = n;
    return err;
}

enum fota_store_err fota_store_rollout_get(struct fota_store *st, const char *id,
                                           struct fota_store_rollout *ret)
{
    struct fota_store_rollout r;
    enum fota_store_err err;
    sqlite3_stmt *stmt;

    if (st == NULL || ret == NULL || !id_ok(id))
        return FOTA_STORE_INVALID;
    stmt = store_stmt(st, "SELECT " ROLLOUT_COLS " FROM rollouts WHERE id = ?1 AND ready = 1");
    if (stmt == NULL)
        return FOTA_STORE_ERROR;
    store_bind_text(stmt, 1, id);
    memset(&r, 0, sizeof(r));
    err = store_step_row(stmt);
    if (err == FOTA_STORE_OK)
        err = read_rollout(stmt, &r);
    store_done(st, stmt);
    if (err != FOTA_STORE_OK) {
        fota_store_rollout_clear(&r);
        return err;
    }
    *ret = r;
    return FOTA_STORE_OK;
}

enum fota_store_err fota_store_rollout_list(struct fota_store *st, unsigned state_mask,
                                            const char *after, unsigned limit,
                                            struct fota_store_rollout **ret_items,
                                            size_t *ret_n, int *ret_more)
{
    struct fota_store_rollout *items = NULL;
    enum fota_store_err err = FOTA_STORE_OK;
    sqlite3_stmt *stmt;
    size_t n = 0;
    int more = 0;
    int rc;

    if (st == NULL || ret_items == NULL || ret_n == NULL || ret_more == NULL ||
        limit == 0 || limit > FOTA_STORE_PAGE_MAX ||
        state_mask >= (1u << FOTA_STORE_ROLLOUT_STATE_COUNT) ||
        (after != NULL && !store_str_ok(after, FOTA_STORE_ID_MAX, 1)))
        return FOTA_STORE_INVALID;
    stmt = store_stmt(st, "SELECT " ROLLOUT_COLS " FROM rollouts "
                          "WHERE id > ?1 AND ready = 1 AND state IN (?2, ?3, ?4, ?5) "
                          "ORDER BY id LIMIT ?6");
    if (stmt == NULL)
        return FOTA_STORE_ERROR;
    store_bind_text(stmt, 1, after != NULL ? after : "");
    store_bind_mask(stmt, 2, state_mask, state_names, FOTA_STORE_ROLLOUT_STATE_COUNT);
    sqlite3_bind_int64(stmt, 6, (int64_t)limit + 1);
    items = calloc(limit, sizeof(*items));
    if (items == NULL) {
        err = FOTA_STORE_ERROR;
        goto out;
    }
    for (;;) {
        rc = sqlite3_step(stmt);
        if (rc != SQLITE_ROW)
            break;
        if (n == limit) {
            more = 1;
            break;
        }
        err = read_rollout(stmt, &items[n]);
        n++;
        if (err != FOTA_STORE_OK)
            goto out;
    }
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        err = store_rc(rc);
out:
    store_done(st, stmt);
    if (err != FOTA_STORE_OK) {
        fota_store_rollout_list_free(items, n);
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

/* After a guarded UPDATE of a rollout changed nothing: NOT_FOUND or CONFLICT. */
static enum fota_store_err rollout_refusal(struct fota_store *st, const char *id,
                                           int next_wave)
{
    sqlite3_stmt *stmt = store_stmt(st, "SELECT wave_count FROM rollouts WHERE id = ?1 AND ready = 1");
    enum fota_store_err err;

    if (stmt == NULL)
        return FOTA_STORE_ERROR;
    store_bind_text(stmt, 1, id);
    err = store_step_row(stmt);
    if (err == FOTA_STORE_OK)
        err = next_wave >= sqlite3_column_int(stmt, 0) ? FOTA_STORE_INVALID : FOTA_STORE_CONFLICT;
    store_done(st, stmt);
    return err;
}

enum fota_store_err fota_store_rollout_set_state(struct fota_store *st, const char *id,
                                                 enum fota_store_rollout_state next,
                                                 unsigned from_mask, int64_t now)
{
    const char *name = fota_store_rollout_state_name(next);
    enum fota_store_err err;
    sqlite3_stmt *stmt;

    if (st == NULL || !id_ok(id) || name == NULL ||
        from_mask >= (1u << FOTA_STORE_ROLLOUT_STATE_COUNT))
        return FOTA_STORE_INVALID;
    stmt = store_stmt(st, "UPDATE rollouts SET state = ?2, updated = ?3 "
                          "WHERE id = ?1 AND ready = 1 AND state IN (?4, ?5, ?6, ?7)");
    if (stmt == NULL)
        return FOTA_STORE_ERROR;
    store_bind_text(stmt, 1, id);
    store_bind_text(stmt, 2, name);
    sqlite3_bind_int64(stmt, 3, now);
    store_bind_mask(stmt, 4, from_mask, state_names, FOTA_STORE_ROLLOUT_STATE_COUNT);
    err = store_exec_stmt(st, stmt);
    if (err != FOTA_STORE_OK)
        return err;
    if (sqlite3_changes(st->db) == 1)
        return FOTA_STORE_OK;
    return rollout_refusal(st, id, -1);
}

enum fota_store_err fota_store_rollout_set_wave(struct fota_store *st, const char *id,
                                                int expected_wave, int next_wave, int64_t now)
{
    enum fota_store_err err;
    sqlite3_stmt *stmt;

    if (st == NULL || !id_ok(id) || expected_wave < 0 || next_wave < 0 ||
        next_wave >= FOTA_STORE_WAVES_MAX)
        return FOTA_STORE_INVALID;
    /* The guard is the WHERE clause: of two advances from the same wave,
     * the second finds current_wave changed and updates nothing. */
    stmt = store_stmt(st, "UPDATE rollouts SET current_wave = ?3, updated = ?4 "
                          "WHERE id = ?1 AND ready = 1 AND current_wave = ?2 AND state = 'active' "
                          "AND ?3 < wave_count");
    if (stmt == NULL)
        return FOTA_STORE_ERROR;
    store_bind_text(stmt, 1, id);
    sqlite3_bind_int(stmt, 2, expected_wave);
    sqlite3_bind_int(stmt, 3, next_wave);
    sqlite3_bind_int64(stmt, 4, now);
    err = store_exec_stmt(st, stmt);
    if (err != FOTA_STORE_OK)
        return err;
    if (sqlite3_changes(st->db) == 1)
        return FOTA_STORE_OK;
    return rollout_refusal(st, id, next_wave);
}

/* ---- per-device progress ----------------------------------------------- */

#define RD_COLS "rollout_id, device_id, wave, status, reason, updated"

static enum fota_store_err read_rd(sqlite3_stmt *stmt, struct fota_store_rollout_device *d)
{
    int status = store_col_enum(stmt, 3, rd_names, FOTA_STORE_RD_STATUS_COUNT);

    if (status < 0)
        return FOTA_STORE_ERROR;
    store_col_text(stmt, 0, d->rollout_id, sizeof(d->rollout_id));
    store_col_text(stmt, 1, d->device_id, sizeof(d->device_id));
    d->wave = sqlite3_column_int(stmt, 2);
    d->status = (enum fota_store_rd_status)status;
    store_col_text(stmt, 4, d->reason, sizeof(d->reason));
    d->updated = sqlite3_column_int64(stmt, 5);
    return FOTA_STORE_OK;
}

enum fota_store_err fota_store_rollout_device_get(struct fota_store *st, const char *rollout_id,
                                                  const char *device_id,
                                                  struct fota_store_rollout_device *ret)
{
    struct fota_store_rollout_device d;
    enum fota_store_err err;
    sqlite3_stmt *stmt;

    if (st == NULL || ret == NULL || !id_ok(rollout_id) || !id_ok(device_id))
        return FOTA_STORE_INVALID;
    stmt = store_stmt(st, "SELECT " RD_COLS " FROM rollout_devices "
                          "WHERE rollout_id = ?1 AND device_id = ?2");
    if (stmt == NULL)
        return FOTA_STORE_ERROR;
    store_bind_text(stmt, 1, rollout_id);
    store_bind_text(stmt, 2, device_id);
    err = store_step_row(stmt);
    if (err == FOTA_STORE_OK)
        err = read_rd(stmt, &d);
    store_done(st, stmt);
    if (err == FOTA_STORE_OK)
        *ret = d;
    return err;
}

enum fota_store_err fota_store_rollout_device_set_status(struct fota_store *st,
                                                         const char *rollout_id,
                                                         const char *device_id,
                                                         enum fota_store_rd_status next,
                                                         unsigned from_mask, const char *reason,
                                                         int64_t now)
{
    const char *name = fota_store_rd_status_name(next);
    struct fota_store_rollout_device cur;
    enum fota_store_err err;
    sqlite3_stmt *stmt;

    if (st == NULL || !id_ok(rollout_id) || !id_ok(device_id) || name == NULL ||
        from_mask >= (1u << FOTA_STORE_RD_STATUS_COUNT) ||
        (reason != NULL && !store_str_ok(reason, FOTA_STORE_REASON_MAX, 1)))
        return FOTA_STORE_INVALID;
    stmt = store_stmt(st, "UPDATE rollout_devices SET status = ?3, reason = ?4, updated = ?5 "
                          "WHERE rollout_id = ?1 AND device_id = ?2 "
                          "AND status IN (?6, ?7, ?8, ?9, ?10, ?11, ?12)");
    if (stmt == NULL)
        return FOTA_STORE_ERROR;
    store_bind_text(stmt, 1, rollout_id);
    store_bind_text(stmt, 2, device_id);
    store_bind_text(stmt, 3, name);
    store_bind_text(stmt, 4, reason != NULL ? reason : "");
    sqlite3_bind_int64(stmt, 5, now);
    store_bind_mask(stmt, 6, from_mask, rd_names, FOTA_STORE_RD_STATUS_COUNT);
    err = store_exec_stmt(st, stmt);
    if (err != FOTA_STORE_OK)
        return err;
    if (sqlite3_changes(st->db) == 1)
        return FOTA_STORE_OK;
    err = fota_store_rollout_device_get(st, rollout_id, device_id, &cur);
    return err == FOTA_STORE_OK ? FOTA_STORE_CONFLICT : err;
}

enum fota_store_err fota_store_rollout_device_list(struct fota_store *st, const char *rollout_id,
                                                   unsigned status_mask, const char *after,
                                                   unsigned limit,
                                                   struct fota_store_rollout_device **ret_items,
                                                   size_t *ret_n, int *ret_more)
{
    struct fota_store_rollout_device *items = NULL;
    enum fota_store_err err = FOTA_STORE_OK;
    sqlite3_stmt *stmt;
    size_t n = 0, cap = 0;
    int more = 0;
    int rc;

    if (st == NULL || !id_ok(rollout_id) || ret_items == NULL || ret_n == NULL ||
        ret_more == NULL || limit == 0 || limit > FOTA_STORE_PAGE_MAX ||
        status_mask >= (1u << FOTA_STORE_RD_STATUS_COUNT) ||
        (after != NULL && !store_str_ok(after, FOTA_STORE_ID_MAX, 1)))
        return FOTA_STORE_INVALID;
    stmt = store_stmt(st, "SELECT " RD_COLS " FROM rollout_devices "
                          "WHERE rollout_id = ?1 AND device_id > ?2 "
                          "AND status IN (?3, ?4, ?5, ?6, ?7, ?8, ?9) "
                          "ORDER BY device_id LIMIT ?10");
    if (stmt == NULL)
        return FOTA_STORE_ERROR;
    store_bind_text(stmt, 1, rollout_id);
    store_bind_text(stmt, 2, after != NULL ? after : "");
    store_bind_mask(stmt, 3, status_mask, rd_names, FOTA_STORE_RD_STATUS_COUNT);
    sqlite3_bind_int64(stmt, 10, (int64_t)limit + 1);
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
            goto out;
        }
        err = read_rd(stmt, &items[n]);
        if (err != FOTA_STORE_OK)
            goto out;
        n++;
    }
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        err = store_rc(rc);
out:
    store_done(st, stmt);
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

enum fota_store_err fota_store_rollout_counts(struct fota_store *st, const char *id,
                                              struct fota_store_rollout_counts *ret)
{
    struct fota_store_rollout_counts c;
    enum fota_store_err err = FOTA_STORE_OK;
    sqlite3_stmt *stmt;
    int rc, wave, status;

    if (st == NULL || ret == NULL || !id_ok(id))
        return FOTA_STORE_INVALID;
    memset(&c, 0, sizeof(c));
    stmt = store_stmt(st, "SELECT wave, status, COUNT(*) FROM rollout_devices "
                          "WHERE rollout_id = ?1 GROUP BY wave, status");
    if (stmt == NULL)
        return FOTA_STORE_ERROR;
    store_bind_text(stmt, 1, id);
    for (;;) {
        rc = sqlite3_step(stmt);
        if (rc != SQLITE_ROW)
            break;
        wave = sqlite3_column_int(stmt, 0);
        status = store_col_enum(stmt, 1, rd_names, FOTA_STORE_RD_STATUS_COUNT);
        if (wave < 0 || wave >= FOTA_STORE_WAVES_MAX || status < 0) {
            err = FOTA_STORE_ERROR;
            break;
        }
        c.n[wave][status] = sqlite3_column_int64(stmt, 2);
        c.total += c.n[wave][status];
    }
    if (err == FOTA_STORE_OK && rc != SQLITE_DONE)
        err = store_rc(rc);
    store_done(st, stmt);
    if (err == FOTA_STORE_OK)
        *ret = c;
    return err;
}

enum fota_store_err fota_store_rollout_assignment(struct fota_store *st, const char *device_id,
                                                  unsigned state_mask,
                                                  struct fota_store_assignment *ret)
{
    struct fota_store_assignment a;
    enum fota_store_err err;
    sqlite3_stmt *stmt;
    int rc, state, status;

    if (st == NULL || ret == NULL || !id_ok(device_id) ||
        state_mask >= (1u << FOTA_STORE_ROLLOUT_STATE_COUNT))
        return FOTA_STORE_INVALID;
    if (state_mask == 0)
        state_mask = FOTA_STORE_ROLLOUT_BIT(FOTA_STORE_ROLLOUT_ACTIVE) |
                     FOTA_STORE_ROLLOUT_BIT(FOTA_STORE_ROLLOUT_PAUSED);
    /* Driven by rollout_devices_device (device_id, rollout_id): a device is
     * listed in a handful of rollouts, each joined by primary key. The
     * hardware check runs against the device's current hardware id. A live
     * (active or paused) membership wins over an ended one whatever their
     * creation times: a report must land in the rollout the check-ins
     * follow, also when a rollout was aborted and replaced within the same
     * second. Between rollouts created in the same second, the later insert
     * wins (SQLite's rowid grows with each insert; a PostgreSQL backend
     * would order by an identity column). */
    stmt = store_stmt(st, "SELECT r.id, r.state, r.current_wave, r.wave_count, r.rollback, "
                          "rd.wave, rd.status, rel.id, rel.target_name, rel.length, rel.sha256, "
                          "rel.version, rel.security_counter "
                          "FROM rollout_devices rd "
                          "JOIN rollouts r ON r.id = rd.rollout_id "
                          "JOIN releases rel ON rel.id = r.release_id "
                          "JOIN devices d ON d.id = rd.device_id "
                          "WHERE rd.device_id = ?1 AND r.ready = 1 AND r.state IN (?2, ?3, ?4, ?5) "
                          "AND EXISTS (SELECT 1 FROM release_hardware h "
                          "WHERE h.release_id = rel.id AND h.hardware_id = d.hardware_id) "
                          "ORDER BY CASE WHEN r.state IN ('active', 'paused') THEN 0 ELSE 1 END, "
                          "r.created DESC, r.rowid DESC LIMIT 1");
    if (stmt == NULL)
        return FOTA_STORE_ERROR;
    store_bind_text(stmt, 1, device_id);
    store_bind_mask(stmt, 2, state_mask, state_names, FOTA_STORE_ROLLOUT_STATE_COUNT);
    rc = sqlite3_step(stmt);
    if (rc == SQLITE_ROW) {
        state = store_col_enum(stmt, 1, state_names, FOTA_STORE_ROLLOUT_STATE_COUNT);
        status = store_col_enum(stmt, 6, rd_names, FOTA_STORE_RD_STATUS_COUNT);
        if (state < 0 || status < 0) {
            err = FOTA_STORE_ERROR;
        } else {
            store_col_text(stmt, 0, a.rollout_id, sizeof(a.rollout_id));
            a.state = (enum fota_store_rollout_state)state;
            a.current_wave = sqlite3_column_int(stmt, 2);
            a.wave_count = sqlite3_column_int(stmt, 3);
            a.rollback = sqlite3_column_int(stmt, 4);
            a.wave = sqlite3_column_int(stmt, 5);
            a.status = (enum fota_store_rd_status)status;
            store_col_text(stmt, 7, a.release_id, sizeof(a.release_id));
            store_col_text(stmt, 8, a.target_name, sizeof(a.target_name));
            a.length = sqlite3_column_int64(stmt, 9);
            store_col_text(stmt, 10, a.sha256, sizeof(a.sha256));
            store_col_text(stmt, 11, a.version, sizeof(a.version));
            a.security_counter = sqlite3_column_int64(stmt, 12);
            err = FOTA_STORE_OK;
        }
    } else if (rc == SQLITE_DONE) {
        err = FOTA_STORE_NOT_FOUND;
    } else {
        err = store_rc(rc);
    }
    store_done(st, stmt);
    if (err == FOTA_STORE_OK)
        *ret = a;
    return err;
}
