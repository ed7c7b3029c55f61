/* SPDX-License-Identifier: Apache-2.0 */
/* SQLite backend: the append-only audit log. */
#include "store_audit.h"
#include "store_sqlite.h"

#include <stdlib.h>
#include <string.h>

enum fota_store_err fota_store_audit_append(struct fota_store *st,
                                            const struct fota_store_audit *a, int64_t *ret_id)
{
    sqlite3_stmt *stmt;

    if (st == NULL || a == NULL || !store_str_ok(a->actor, FOTA_STORE_NAME_MAX, 1) ||
        !store_str_ok(a->action, FOTA_STORE_EVENT_MAX, 0) ||
        !store_str_ok(a->object, FOTA_STORE_OBJECT_MAX, 1) ||
        (a->detail_json != NULL && !store_str_ok(a->detail_json, FOTA_STORE_JSON_MAX, 1)))
        return FOTA_STORE_INVALID;
    stmt = store_stmt(st, "INSERT INTO audit (time, actor, action, object, detail) "
                          "VALUES (?1, ?2, ?3, ?4, ?5) RETURNING id");
    if (stmt == NULL)
        return FOTA_STORE_ERROR;
    sqlite3_bind_int64(stmt, 1, a->time);
    store_bind_text(stmt, 2, a->actor);
    store_bind_text(stmt, 3, a->action);
    store_bind_text(stmt, 4, a->object);
    store_bind_text(stmt, 5, a->detail_json);
    return store_insert_returning_id(st, stmt, ret_id);
}

void fota_store_audit_list_free(struct fota_store_audit *items, size_t n)
{
    size_t i;

    if (items == NULL)
        return;
    for (i = 0; i < n; i++)
        free(items[i].detail_json);
    free(items);
}

enum fota_store_err fota_store_audit_list(struct fota_store *st, int64_t after, unsigned limit,
                                          struct fota_store_audit **ret_items, size_t *ret_n,
                                          int *ret_more)
{
    struct fota_store_audit *items = NULL;
    enum fota_store_err err = FOTA_STORE_OK;
    sqlite3_stmt *stmt;
    size_t n = 0, cap = 0;
    int more = 0, oom = 0;
    int rc;

    if (st == NULL || ret_items == NULL || ret_n == NULL || ret_more == NULL ||
        limit == 0 || limit > FOTA_STORE_PAGE_MAX || after < 0)
        return FOTA_STORE_INVALID;
    stmt = store_stmt(st, "SELECT id, time, actor, action, object, detail FROM audit "
                          "WHERE id > ?1 ORDER BY id LIMIT ?2");
    if (stmt == NULL)
        return FOTA_STORE_ERROR;
    sqlite3_bind_int64(stmt, 1, after);
    sqlite3_bind_int64(stmt, 2, (int64_t)limit + 1);
    for (;;) {
        struct fota_store_audit *a;

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
        a = &items[n];
        a->id = sqlite3_column_int64(stmt, 0);
        a->time = sqlite3_column_int64(stmt, 1);
        store_col_text(stmt, 2, a->actor, sizeof(a->actor));
        store_col_text(stmt, 3, a->action, sizeof(a->action));
        store_col_text(stmt, 4, a->object, sizeof(a->object));
        a->detail_json = store_col_dup(stmt, 5, &oom);
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
        fota_store_audit_list_free(items, n);
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
