/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Repository-side TUF: published bytes, meta entries, and snapshot and
 * timestamp built and signed with the online keys. Shared by `fota repo
 * publish` and fota-server so that both write the same files.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fota/json.h"
#include "fota/tuf.h"
#include "fota/tuf_repo.h"

fota_err fota_tuf_repo_bytes(const json_t *value, size_t max_len, char **ret_buf,
                             size_t *ret_len)
{
    char *buf = NULL;
    size_t len = 0;
    int has_control = 0;
    fota_err err;

    if (value == NULL || ret_buf == NULL || ret_len == NULL)
        return FOTA_E_INVALID;
    err = fota_json_canonical(value, max_len, &buf, &len);
    if (err != FOTA_OK)
        return err;
    for (size_t i = 0; i < len; i++) {
        if ((unsigned char)buf[i] < 0x20)
            has_control = 1;
    }
    if (has_control) {
        /* jansson's compact, key-sorted output escapes control characters
         * and writes everything else as canonical JSON does: integers,
         * strings (UTF-8 kept raw), no whitespace. */
        free(buf);
        buf = json_dumps(value, JSON_COMPACT | JSON_SORT_KEYS);
        if (buf == NULL)
            return FOTA_E_NOMEM;
        len = strlen(buf);
        if (len > max_len) {
            free(buf);
            return FOTA_E_TOO_BIG;
        }
    }
    *ret_buf = buf;
    *ret_len = len;
    return FOTA_OK;
}

fota_err fota_tuf_repo_check_envelope(const json_t *env, const char *type)
{
    const json_t *signed_part = json_object_get(env, "signed");
    const json_t *sigs = json_object_get(env, "signatures");
    const json_t *version = json_object_get(signed_part, "version");
    const char *expires = json_string_value(json_object_get(signed_part, "expires"));
    const char *t = json_string_value(json_object_get(signed_part, "_type"));
    const json_t *sig;
    size_t i;
    int64_t when;

    if (type == NULL)
        return FOTA_E_INVALID;
    if (!json_is_object(signed_part) || !json_is_array(sigs))
        return FOTA_E_PARSE;
    if (t == NULL || strcmp(t, type) != 0)
        return FOTA_E_TYPE;
    if (!json_is_string(json_object_get(signed_part, "spec_version")))
        return FOTA_E_TYPE;
    if (!json_is_integer(version) || json_integer_value(version) < 1)
        return FOTA_E_PARSE;
    if (expires == NULL || fota_tuf_parse_time(expires, &when) != FOTA_OK)
        return FOTA_E_PARSE;
    json_array_foreach(sigs, i, sig) {
        if (!json_is_string(json_object_get(sig, "keyid")) ||
            !json_is_string(json_object_get(sig, "sig")))
            return FOTA_E_PARSE;
    }
    if (strcmp(type, "root") == 0) {
        if (!json_is_object(json_object_get(signed_part, "keys")) ||
            !json_is_object(json_object_get(signed_part, "roles")))
            return FOTA_E_PARSE;
    } else if (strcmp(type, "targets") == 0) {
        const json_t *d = json_object_get(signed_part, "delegations");
        if (!json_is_object(json_object_get(signed_part, "targets")))
            return FOTA_E_PARSE;
        if (d != NULL && (!json_is_object(json_object_get(d, "keys")) ||
                          !json_is_array(json_object_get(d, "roles"))))
            return FOTA_E_PARSE;
    } else if (strcmp(type, "snapshot") == 0 || strcmp(type, "timestamp") == 0) {
        if (!json_is_object(json_object_get(signed_part, "meta")))
            return FOTA_E_PARSE;
    }
    return FOTA_OK;
}

int64_t fota_tuf_repo_version(const json_t *env)
{
    return json_integer_value(json_object_get(json_object_get(env, "signed"), "version"));
}

fota_err fota_tuf_repo_meta_entry(int64_t version, const void *bytes, size_t len,
                                  json_t **ret_entry)
{
    uint8_t d[FOTA_HASH_MAX_LEN];
    char hex[2 * 32 + 1];
    json_t *entry;
    fota_err err;

    if (bytes == NULL || ret_entry == NULL || version < 1)
        return FOTA_E_INVALID;
    err = fota_hash(FOTA_HASH_SHA256, bytes, len, d);
    if (err != FOTA_OK)
        return err;
    fota_hex_encode(d, 32, hex);
    entry = json_pack("{s:I,s:I,s:{s:s}}", "version", (json_int_t)version, "length",
                      (json_int_t)len, "hashes", "sha256", hex);
    if (entry == NULL)
        return FOTA_E_NOMEM;
    *ret_entry = entry;
    return FOTA_OK;
}

static const json_t *role_def(const json_t *root, const char *role)
{
    return json_object_get(json_object_get(json_object_get(root, "signed"), "roles"), role);
}

int fota_tuf_repo_role_has_key(const json_t *root, const char *role, const char *keyid)
{
    const json_t *keyids = json_object_get(role_def(root, role), "keyids");
    const json_t *v;
    size_t i;

    if (keyid == NULL)
        return 0;
    json_array_foreach(keyids, i, v) {
        const char *s = json_string_value(v);
        if (s != NULL && strcmp(s, keyid) == 0)
            return 1;
    }
    return 0;
}

fota_err fota_tuf_repo_snapshot_new(int64_t version, const char *expires, const json_t *meta,
                                    json_t **ret_env)
{
    json_t *env;

    if (version < 1 || expires == NULL || !json_is_object(meta) || ret_env == NULL)
        return FOTA_E_INVALID;
    env = json_pack("{s:{s:s,s:s,s:I,s:s,s:o},s:[]}", "signed", "_type", "snapshot",
                    "spec_version", FOTA_TUF_SPEC_VERSION, "version", (json_int_t)version,
                    "expires", expires, "meta", json_deep_copy(meta), "signatures");
    if (env == NULL)
        return FOTA_E_NOMEM;
    *ret_env = env;
    return FOTA_OK;
}

fota_err fota_tuf_repo_timestamp_new(int64_t version, const char *expires,
                                     const json_t *snapshot_entry, json_t **ret_env)
{
    json_t *env;

    if (version < 1 || expires == NULL || !json_is_object(snapshot_entry) || ret_env == NULL)
        return FOTA_E_INVALID;
    env = json_pack("{s:{s:s,s:s,s:I,s:s,s:{s:o}},s:[]}", "signed", "_type", "timestamp",
                    "spec_version", FOTA_TUF_SPEC_VERSION, "version", (json_int_t)version,
                    "expires", expires, "meta", "snapshot.json", json_deep_copy(snapshot_entry),
                    "signatures");
    if (env == NULL)
        return FOTA_E_NOMEM;
    *ret_env = env;
    return FOTA_OK;
}

fota_err fota_tuf_repo_sign_role(json_t *env, const json_t *root, const char *role,
                                 const struct fota_tuf_signer *signers, size_t nsigners,
                                 unsigned *valid)
{
    const json_t *def = role_def(root, role);
    fota_err err;

    if (valid != NULL)
        *valid = 0;
    if (!json_is_object(env) || role == NULL || (signers == NULL && nsigners > 0))
        return FOTA_E_INVALID;
    if (!json_is_object(def))
        return FOTA_E_ROLE;
    /* A key root does not list for the role would sign in vain: refuse it
     * before anything is signed, so the caller can name it. */
    for (size_t i = 0; i < nsigners; i++) {
        if (signers[i].key == NULL || !fota_tuf_repo_role_has_key(root, role, signers[i].keyid))
            return FOTA_E_KEY;
    }
    for (size_t i = 0; i < nsigners; i++) {
        err = fota_tuf_sign(env, signers[i].key, signers[i].keyid);
        if (err != FOTA_OK)
            return err;
    }
    return fota_tuf_verify_role(env, json_object_get(json_object_get(root, "signed"), "keys"),
                                def, valid);
}

/* Parse published bytes strictly and check their shape. */
static fota_err parse_published(const uint8_t *bytes, size_t len, const char *type,
                                json_t **ret_env)
{
    json_t *env = NULL;
    fota_err err;

    err = fota_json_parse(bytes, len, FOTA_TUF_REPO_MAX_METADATA, FOTA_JSON_MAX_DEPTH, &env);
    if (err != FOTA_OK)
        return err;
    err = fota_tuf_repo_check_envelope(env, type);
    if (err != FOTA_OK) {
        json_decref(env);
        return err;
    }
    *ret_env = env;
    return FOTA_OK;
}

/* Sign env for role and serialise it; hands out env and bytes. */
static fota_err finish(json_t *env, const json_t *root, const char *role,
                       const struct fota_tuf_signer *signers, size_t nsigners, json_t **ret_env,
                       char **ret_bytes, size_t *ret_len)
{
    char *bytes = NULL;
    size_t len = 0;
    fota_err err;

    err = fota_tuf_repo_sign_role(env, root, role, signers, nsigners, NULL);
    if (err != FOTA_OK)
        return err;
    err = fota_tuf_repo_bytes(env, FOTA_TUF_REPO_MAX_METADATA, &bytes, &len);
    if (err != FOTA_OK)
        return err;
    if (ret_env != NULL)
        *ret_env = json_incref(env);
    *ret_bytes = bytes;
    *ret_len = len;
    return FOTA_OK;
}

fota_err fota_tuf_repo_next_snapshot(const json_t *root, const uint8_t *cur, size_t cur_len,
                                     const char *const *roles, const uint8_t *const *role_bytes,
                                     const size_t *role_len, size_t nroles, const char *expires,
                                     const struct fota_tuf_signer *signers, size_t nsigners,
                                     json_t **ret_env, char **ret_bytes, size_t *ret_len)
{
    json_t *cur_env = NULL, *meta = NULL, *env = NULL, *role_env = NULL, *entry = NULL;
    int64_t version = 1;
    char *key = NULL;
    fota_err err;

    if (root == NULL || expires == NULL || ret_bytes == NULL || ret_len == NULL ||
        (nroles > 0 && (roles == NULL || role_bytes == NULL || role_len == NULL)))
        return FOTA_E_INVALID;
    if (cur != NULL) {
        err = parse_published(cur, cur_len, "snapshot", &cur_env);
        if (err != FOTA_OK)
            goto out;
        version = fota_tuf_repo_version(cur_env) + 1;
        meta = json_deep_copy(json_object_get(json_object_get(cur_env, "signed"), "meta"));
    } else {
        meta = json_object();
    }
    if (meta == NULL) {
        err = FOTA_E_NOMEM;
        goto out;
    }
    for (size_t i = 0; i < nroles; i++) {
        size_t n = roles[i] != NULL ? strlen(roles[i]) : 0;

        if (n == 0 || role_bytes[i] == NULL) {
            err = FOTA_E_INVALID;
            goto out;
        }
        err = parse_published(role_bytes[i], role_len[i], "targets", &role_env);
        if (err != FOTA_OK)
            goto out;
        err = fota_tuf_repo_meta_entry(fota_tuf_repo_version(role_env), role_bytes[i],
                                       role_len[i], &entry);
        json_decref(role_env);
        role_env = NULL;
        if (err != FOTA_OK)
            goto out;
        key = malloc(n + sizeof ".json");
        if (key == NULL) {
            err = FOTA_E_NOMEM;
            goto out;
        }
        memcpy(key, roles[i], n);
        memcpy(key + n, ".json", sizeof ".json");
        if (json_object_set_new(meta, key, entry) != 0) {
            entry = NULL;
            err = FOTA_E_NOMEM;
            goto out;
        }
        entry = NULL;
        free(key);
        key = NULL;
    }
    err = fota_tuf_repo_snapshot_new(version, expires, meta, &env);
    if (err != FOTA_OK)
        goto out;
    err = finish(env, root, "snapshot", signers, nsigners, ret_env, ret_bytes, ret_len);
out:
    free(key);
    json_decref(entry);
    json_decref(role_env);
    json_decref(env);
    json_decref(meta);
    json_decref(cur_env);
    return err;
}

fota_err fota_tuf_repo_next_timestamp(const json_t *root, const uint8_t *cur, size_t cur_len,
                                      const uint8_t *snapshot, size_t snapshot_len,
                                      const char *expires,
                                      const struct fota_tuf_signer *signers, size_t nsigners,
                                      json_t **ret_env, char **ret_bytes, size_t *ret_len)
{
    json_t *cur_env = NULL, *snap_env = NULL, *entry = NULL, *env = NULL;
    int64_t version = 1;
    fota_err err;

    if (root == NULL || snapshot == NULL || expires == NULL || ret_bytes == NULL ||
        ret_len == NULL)
        return FOTA_E_INVALID;
    if (cur != NULL) {
        err = parse_published(cur, cur_len, "timestamp", &cur_env);
        if (err != FOTA_OK)
            goto out;
        version = fota_tuf_repo_version(cur_env) + 1;
    }
    err = parse_published(snapshot, snapshot_len, "snapshot", &snap_env);
    if (err != FOTA_OK)
        goto out;
    err = fota_tuf_repo_meta_entry(fota_tuf_repo_version(snap_env), snapshot, snapshot_len,
                                   &entry);
    if (err != FOTA_OK)
        goto out;
    err = fota_tuf_repo_timestamp_new(version, expires, entry, &env);
    if (err != FOTA_OK)
        goto out;
    err = finish(env, root, "timestamp", signers, nsigners, ret_env, ret_bytes, ret_len);
out:
    json_decref(env);
    json_decref(entry);
    json_decref(snap_env);
    json_decref(cur_env);
    return err;
}
