/* SPDX-License-Identifier: Apache-2.0 */
/*
 * What every editing command shares: committing an edit to a staged role
 * (the version and expiry rules), finding the keys that sign a role, and
 * counting its valid signatures.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "fota/tuf.h"

int cli_role_commit(const char *cmd, struct cli_repo *repo, const char *role, json_t *env,
                    const json_t *before, const char *expires, int force, int *ret_changed)
{
    json_t *signed_part = json_object_get(env, "signed");
    int64_t published = cli_repo_published_version(repo, role);
    int64_t version = cli_env_version(env);
    char default_expires[21];
    json_t *empty;

    if (expires != NULL && json_object_set_new(signed_part, "expires", json_string(expires)) != 0)
        goto nomem;
    if (!force && json_equal(signed_part, (json_t *)before)) {
        *ret_changed = 0;
        return CLI_OK;
    }
    /* The first edit after a publish starts the next version with a fresh
     * expiry; later edits before the next publish stay in that version. */
    if (published > 0 && version == published) {
        if (json_object_set_new(signed_part, "version", json_integer(published + 1)) != 0)
            goto nomem;
        if (expires == NULL) {
            if (cli_repo_default_expires(cmd, repo, role, default_expires) != CLI_OK)
                return CLI_FAIL;
            if (json_object_set_new(signed_part, "expires", json_string(default_expires)) != 0)
                goto nomem;
        }
    }
    /* Any edit invalidates every signature made over the old content. */
    empty = json_array();
    if (empty == NULL || json_object_set_new(env, "signatures", empty) != 0)
        goto nomem;
    if (cli_repo_save_staged(cmd, repo, role, env) != CLI_OK)
        return CLI_FAIL;
    *ret_changed = 1;
    return CLI_OK;
nomem:
    cli_error(cmd, role, "out of memory");
    return CLI_FAIL;
}

const json_t *cli_find_delegation(const json_t *delegator_env, const char *role)
{
    const json_t *roles = json_object_get(
        json_object_get(json_object_get(delegator_env, "signed"), "delegations"), "roles");
    const json_t *r;
    size_t i;

    json_array_foreach(roles, i, r) {
        const char *name = json_string_value(json_object_get(r, "name"));
        if (name != NULL && strcmp(name, role) == 0)
            return r;
    }
    return NULL;
}

int cli_role_keys(const char *cmd, const struct cli_repo *repo, const char *role,
                  const json_t *staged_root, json_t **owned_delegator, const json_t **ret_keys,
                  const json_t **ret_role)
{
    const json_t *root_signed = json_object_get(staged_root, "signed");
    const char *from;
    json_t *delegator = NULL;
    const json_t *r;

    *owned_delegator = NULL;
    if (cli_is_top_role(role)) {
        r = json_object_get(json_object_get(root_signed, "roles"), role);
        if (!json_is_object(r)) {
            cli_error(cmd, role, "the staged root does not define this role");
            return CLI_FAIL;
        }
        *ret_keys = json_object_get(root_signed, "keys");
        *ret_role = r;
        return CLI_OK;
    }
    from = cli_repo_delegator(repo, role);
    if (from == NULL) {
        cli_error(cmd, role, "no such role in this repository");
        return CLI_FAIL;
    }
    if (cli_repo_load_staged(cmd, repo, from, &delegator) != CLI_OK)
        return CLI_FAIL;
    r = cli_find_delegation(delegator, role);
    if (r == NULL) {
        cli_error(cmd, role, "staged %s does not delegate this role", from);
        json_decref(delegator);
        return CLI_FAIL;
    }
    *ret_keys = json_object_get(json_object_get(json_object_get(delegator, "signed"),
                                                "delegations"),
                                "keys");
    *ret_role = r;
    *owned_delegator = delegator;
    return CLI_OK;
}

static int count_against(const char *cmd, const char *what, const json_t *env,
                         const json_t *keys, const json_t *role, unsigned *ret_valid,
                         unsigned *ret_threshold)
{
    const json_t *threshold = json_object_get(role, "threshold");
    unsigned valid = 0;
    fota_err err;

    if (!json_is_integer(threshold) || json_integer_value(threshold) < 1 ||
        json_integer_value(threshold) > 1000000) {
        cli_error(cmd, what, "bad threshold in the role definition");
        return CLI_FAIL;
    }
    err = fota_tuf_verify_role(env, keys, role, &valid);
    if (err != FOTA_OK && err != FOTA_E_THRESHOLD) {
        cli_error(cmd, what, "cannot check signatures: %s", fota_strerror(err));
        return CLI_FAIL;
    }
    *ret_valid = valid;
    *ret_threshold = (unsigned)json_integer_value(threshold);
    return CLI_OK;
}

int cli_role_count(const char *cmd, const struct cli_repo *repo, const char *role,
                   const json_t *env, const json_t *staged_root, const json_t *published_root,
                   struct cli_sigcount *ret_count)
{
    struct cli_sigcount c = {0};
    json_t *delegator = NULL;
    const json_t *keys = NULL, *r = NULL;
    int status = CLI_FAIL;

    c.version = cli_env_version(env);
    if (cli_role_keys(cmd, repo, role, staged_root, &delegator, &keys, &r) != CLI_OK)
        goto out;
    if (count_against(cmd, role, env, keys, r, &c.valid, &c.threshold) != CLI_OK)
        goto out;
    /* A new root version must also satisfy the root it replaces. */
    if (strcmp(role, "root") == 0 && published_root != NULL &&
        cli_env_version(published_root) != c.version) {
        const json_t *old_signed = json_object_get(published_root, "signed");
        const json_t *old_role = json_object_get(json_object_get(old_signed, "roles"), "root");

        c.have_old = 1;
        c.old_version = cli_env_version(published_root);
        if (count_against(cmd, "published root", env, json_object_get(old_signed, "keys"),
                          old_role, &c.old_valid, &c.old_threshold) != CLI_OK)
            goto out;
    }
    *ret_count = c;
    status = CLI_OK;
out:
    json_decref(delegator);
    return status;
}

int cli_sigcount_ok(const struct cli_sigcount *c)
{
    if (c->valid < c->threshold)
        return 0;
    if (c->have_old && c->old_valid < c->old_threshold)
        return 0;
    return 1;
}

void cli_sigcount_format(const char *role, const struct cli_sigcount *c, char *out, size_t size)
{
    if (c->have_old)
        snprintf(out, size, "%s v%lld: %u of %u signatures, root v%lld keys: %u of %u signatures",
                 role, (long long)c->version, c->valid, c->threshold, (long long)c->old_version,
                 c->old_valid, c->old_threshold);
    else
        snprintf(out, size, "%s v%lld: %u of %u signatures", role, (long long)c->version, c->valid,
                 c->threshold);
}

static int compare_json_strings(const void *a, const void *b)
{
    const json_t *const *x = a;
    const json_t *const *y = b;

    return strcmp(json_string_value(*x), json_string_value(*y));
}

void cli_sort_strings(json_t *array)
{
    size_t n = json_array_size(array);
    json_t **items;

    if (n < 2)
        return;
    items = calloc(n, sizeof *items);
    if (items == NULL)
        return;
    for (size_t i = 0; i < n; i++)
        items[i] = json_incref(json_array_get(array, i));
    qsort(items, n, sizeof *items, compare_json_strings);
    json_array_clear(array);
    for (size_t i = 0; i < n; i++)
        json_array_append_new(array, items[i]);
    free(items);
}

json_t *cli_sorted_keyids(const struct cli_pubkey *keys, size_t n)
{
    json_t *a = json_array();

    if (a == NULL)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        if (json_array_append_new(a, json_string(keys[i].keyid)) != 0) {
            json_decref(a);
            return NULL;
        }
    }
    cli_sort_strings(a);
    return a;
}

int cli_keyids_index(const json_t *keyids, const char *keyid)
{
    const json_t *id;
    size_t i;

    json_array_foreach(keyids, i, id) {
        if (json_is_string(id) && strcmp(json_string_value(id), keyid) == 0)
            return (int)i;
    }
    return -1;
}

static int key_referenced(const json_t *roles, const char *keyid)
{
    const json_t *r;
    const char *name;
    size_t i;

    if (json_is_object(roles)) {
        json_object_foreach((json_t *)roles, name, r) {
            if (cli_keyids_index(json_object_get(r, "keyids"), keyid) >= 0)
                return 1;
        }
        return 0;
    }
    json_array_foreach(roles, i, r) {
        if (cli_keyids_index(json_object_get(r, "keyids"), keyid) >= 0)
            return 1;
    }
    return 0;
}

void cli_prune_keys(json_t *keys, const json_t *roles)
{
    const char *keyid;
    json_t *v;
    void *tmp;

    json_object_foreach_safe(keys, tmp, keyid, v) {
        if (!key_referenced(roles, keyid))
            json_object_del(keys, keyid);
    }
}
