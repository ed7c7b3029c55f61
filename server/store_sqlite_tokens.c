/* SPDX-License-Identifier: Apache-2.0 */
/* SQLite backend: operator API tokens (only their SHA-256 is stored). */
#include "store_tokens.h"
#include "store_sqlite.h"

#include <stdlib.h>
#include <string.h>

/* Index = enum value - 1. */
static const char *const scope_names[] = { "read", "deploy", "admin" };

const char *fota_store_scope_name(enum fota_store_scope scope)
{
    if (scope < FOTA_STORE_SCOPE_READ || scope > FOTA_STORE_SCOPE_ADMIN)
        return NULL;
    return scope_names[scope - 1];
}

enum fota_store_err fota_store_scope_parse(const char *name, enum fota_store_scope *ret)
{
    int i;
    enum fota_store_err err;

    if (ret == NULL)
        return FOTA_STORE_INVALID;
    err = store_enum_parse(name, scope_names, 3, &i);
    if (err == FOTA_STORE_OK)
        *ret = (enum fota_store_scope)(i + 1);
    return err;
}

#define TOKEN_COLS "sha256, name, scope, created, expires, revoked"

/* Fill tok from a row of TOKEN_COLS; FOTA_STORE_ERROR on an unknown scope. */
static enum fota_store_err read_token(sqlite3_stmt *stmt, struct fota_store_token *tok)
{
    int scope = store_col_enum(stmt, 2, scope_names, 3);

    if (scope < 0)
        return FOTA_STORE_ERROR;
    store_col_text(stmt, 0, tok->sha256, sizeof(tok->sha256));
    store_col_text(stmt, 1, tok->name, sizeof(tok->name));
    tok->scope = (enum fota_store_scope)(scope + 1);
    tok->created = sqlite3_column_int64(stmt, 3);
    tok->expires = sqlite3_column_int64(stmt, 4);
    tok->revoked = sqlite3_column_int64(stmt, 5);
    return FOTA_STORE_OK;
}

enum fota_store_err fota_store_token_insert(struct fota_store *st,
                                            const struct fota_store_token *tok)
{
    sqlite3_stmt *stmt;
    const char *scope;

    if (st == NULL || tok == NULL || !store_sha256_hex_ok(tok->sha256) ||
        !store_str_ok(tok->name, FOTA_STORE_NAME_MAX, 0) || tok->expires < 0)
        return FOTA_STORE_INVALID;
    scope = fota_store_scope_name(tok->scope);
    if (scope == NULL)
        return FOTA_STORE_INVALID;
    stmt = store_stmt(st, "INSERT INTO tokens (" TOKEN_COLS ") VALUES (?1, ?2, ?3, ?4, ?5, 0)");
    if (stmt == NULL)
        return FOTA_STORE_ERROR;
    store_bind_text(stmt, 1, tok->sha256);
    store_bind_text(stmt, 2, tok->name);
    store_bind_text(stmt, 3, scope);
    sqlite3_bind_int64(stmt, 4, tok->created);
    sqlite3_bind_int64(stmt, 5, tok->expires);
    return store_exec_stmt(st, stmt);
}

enum fota_store_err fota_store_token_lookup(struct fota_store *st, const char *sha256_hex,
                                            struct fota_store_token *ret)
{
    struct fota_store_token tok;
    enum fota_store_err err;
    sqlite3_stmt *stmt;

    if (st == NULL || ret == NULL || !store_sha256_hex_ok(sha256_hex))
        return FOTA_STORE_INVALID;
    stmt = store_stmt(st, "SELECT " TOKEN_COLS " FROM tokens WHERE sha256 = ?1");
    if (stmt == NULL)
        return FOTA_STORE_ERROR;
    store_bind_text(stmt, 1, sha256_hex);
    err = store_step_row(stmt);
    if (err == FOTA_STORE_OK)
        err = read_token(stmt, &tok);
    store_done(st, stmt);
    if (err == FOTA_STORE_OK)
        *ret = tok;
    return err;
}

enum fota_store_err fota_store_token_list(struct fota_store *st,
                                          struct fota_store_token **ret_items, size_t *ret_n,
                                          int *ret_more)
{
    struct fota_store_token *items = NULL;
    enum fota_store_err err = FOTA_STORE_OK;
    sqlite3_stmt *stmt;
    size_t n = 0;
    int more = 0;
    int rc;

    if (st == NULL || ret_items == NULL || ret_n == NULL || ret_more == NULL)
        return FOTA_STORE_INVALID;
    stmt = store_stmt(st, "SELECT " TOKEN_COLS " FROM tokens ORDER BY name, created, sha256 "
                          "LIMIT ?1");
    if (stmt == NULL)
        return FOTA_STORE_ERROR;
    sqlite3_bind_int64(stmt, 1, FOTA_STORE_PAGE_MAX + 1);
    items = calloc(FOTA_STORE_PAGE_MAX, sizeof(*items));
    if (items == NULL) {
        err = FOTA_STORE_ERROR;
        goto out;
    }
    for (;;) {
        rc = sqlite3_step(stmt);
        if (rc != SQLITE_ROW)
            break;
        if (n == FOTA_STORE_PAGE_MAX) {
            more = 1;
            break;
        }
        err = read_token(stmt, &items[n]);
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

enum fota_store_err fota_store_token_revoke(struct fota_store *st, const char *name,
                                            int64_t now)
{
    enum fota_store_err err;
    sqlite3_stmt *stmt;

    if (st == NULL || !store_str_ok(name, FOTA_STORE_NAME_MAX, 0) || now <= 0)
        return FOTA_STORE_INVALID;
    stmt = store_stmt(st, "UPDATE tokens SET revoked = ?2 WHERE name = ?1 AND revoked = 0");
    if (stmt == NULL)
        return FOTA_STORE_ERROR;
    store_bind_text(stmt, 1, name);
    sqlite3_bind_int64(stmt, 2, now);
    err = store_exec_stmt(st, stmt);
    if (err != FOTA_STORE_OK)
        return err;
    return sqlite3_changes(st->db) > 0 ? FOTA_STORE_OK : FOTA_STORE_NOT_FOUND;
}
