/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Publishing signed metadata through the server (publish.h): targets,
 * delegated roles and new roots that operators signed offline. Everything a
 * request carries is checked against what is served, under the repository
 * lock, before the first file changes; then the files are written with one
 * new snapshot and timestamp (tuf_online.c) and the releases recorded. A
 * deploy token alone cannot publish anything an offline key did not sign.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "api.h"
#include "fota/json.h"
#include "fota/tuf.h"
#include "fota/tuf_repo.h"
#include "log.h"
#include "publish.h"
#include "releases.h"
#include "server.h"
#include "store.h"
#include "store_releases.h"
#include "tuf_online.h"

#define ROOT_PATH "/api/v1/root"

static int is_lower_hex(const char *s, size_t n)
{
    if (s == NULL || strlen(s) != n)
        return 0;
    for (size_t i = 0; i < n; i++) {
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return 0;
    }
    return 1;
}

/* Delegated roles in one request, and delegation levels from targets down
 * to a role (the TUF client's default search budget is 32 roles). */
#define ROLES_MAX 256
#define CHAIN_MAX 32
#define ROLE_NAME_MAX 255

/* One target of a targets role sent, checked. */
struct target_check {
    const char *name;
    const json_t *entry;
    char sha256[65];
    uint64_t length;
    int is_release;
    struct fota_store_release rel;
};

/* One targets role of the request: the top-level targets or a delegated
 * role. */
struct role_check {
    const char *name;            /* "targets" or the role's name (borrowed from the body) */
    const json_t *env;           /* borrowed from the body */
    int64_t version;
    struct target_check *targets;
    size_t ntargets;
    char *bytes;                 /* the bytes to serve, once everything is checked */
    size_t len;
    /* Delegated roles, resolved under the lock: the keys its delegator
     * lists, and the delegations.roles entries from its own (chain[0]) up
     * to the one in the top-level targets. */
    const char *delegator;
    const json_t *keys;
    const json_t *chain[CHAIN_MAX];
    size_t depth;
};

/* A delegated role as served, read when a search needs it. */
struct served_role {
    char *name;
    json_t *env;
};

struct publish {
    struct fota_server *srv;
    struct fota_resp *resp;
    const json_t *new_root;      /* POST /api/v1/root: the new root (borrowed), else NULL */
    struct role_check *roles;    /* the top-level targets first, when sent */
    size_t nroles;
    int has_targets;
    /* Read under the lock. */
    json_t *served_root, *cur_targets, *cur_snap;
    const json_t *root;          /* what the request is checked against: new_root or served */
    const json_t *top;           /* the top-level targets once published: sent or served */
    struct served_role *served;
    size_t nserved;
};

static void publish_free(struct publish *p)
{
    for (size_t i = 0; p->roles != NULL && i < p->nroles; i++) {
        free(p->roles[i].targets);
        free(p->roles[i].bytes);
    }
    free(p->roles);
    for (size_t i = 0; i < p->nserved; i++) {
        free(p->served[i].name);
        json_decref(p->served[i].env);
    }
    free(p->served);
    json_decref(p->served_root);
    json_decref(p->cur_targets);
    json_decref(p->cur_snap);
}

static const json_t *signed_of(const json_t *env)
{
    return json_object_get(env, "signed");
}

static const json_t *delegated_roles(const json_t *env)
{
    return json_object_get(json_object_get(signed_of(env), "delegations"), "roles");
}

static const char *expires_of(const json_t *env)
{
    return json_string_value(json_object_get(signed_of(env), "expires"));
}

/* 1 when env's expiry is in the future. */
static int not_expired(const json_t *env)
{
    int64_t t = 0;

    return fota_tuf_parse_time(expires_of(env), &t) == FOTA_OK && t > fota_server_now();
}

/*
 * A delegated role's name: 1 to 255 bytes, no control characters, and an
 * encoded form short enough for "<version>.<encoded>.json" to be one file
 * name. Top-level names and names starting with digits and a dot are refused
 * as well: the files of "timestamp" or of "1.root" would be those of a
 * top-level role, and "5.fw" would be served as version 5 of role "fw"
 * (fota repo delegate refuses the same names).
 */
static int valid_role_name(const char *name)
{
    static const char *const top[] = {"root", "targets", "snapshot", "timestamp"};
    char enc[FOTA_TUF_ONLINE_ROLE_FILE_MAX + 1];
    size_t n = name != NULL ? strlen(name) : 0, digits = 0;

    if (n == 0 || n > ROLE_NAME_MAX)
        return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)name[i];
        if (c < 0x20 || c == 0x7f)
            return 0;
    }
    for (size_t i = 0; i < sizeof top / sizeof top[0]; i++) {
        if (strcmp(name, top[i]) == 0)
            return 0;
    }
    while (name[digits] >= '0' && name[digits] <= '9')
        digits++;
    if (digits > 0 && name[digits] == '.')
        return 0;
    return fota_tuf_encode_name(name, enc, sizeof enc) == FOTA_OK;
}

/* ---- delegated paths ------------------------------------------------------
 *
 * The match a TUF client makes between a delegation and a target path
 * (fota_tuf_delegation_covers, the device client's own rules), so that the
 * server refuses a target no client would look for in its role.
 */

/* ---- delegations ---------------------------------------------------------- */

/* The delegations.roles entry of env naming role, or NULL. */
static const json_t *find_delegation(const json_t *env, const char *role)
{
    const json_t *d;
    size_t i;

    json_array_foreach(delegated_roles(env), i, d) {
        const char *name = json_string_value(json_object_get(d, "name"));

        if (name != NULL && strcmp(name, role) == 0)
            return d;
    }
    return NULL;
}

/* The delegated role of this request named name, or NULL. */
static struct role_check *sent_role(struct publish *p, const char *name)
{
    for (size_t i = p->has_targets ? 1 : 0; i < p->nroles; i++) {
        if (strcmp(p->roles[i].name, name) == 0)
            return &p->roles[i];
    }
    return NULL;
}

/* Every delegation of a role sent is one the checks below can rely on: a
 * name, key ids, a threshold, and either paths or path_hash_prefixes
 * (strings); no role delegated twice by the same delegator. 0, or -1 with
 * resp set. */
static int check_delegation_shapes(struct publish *p, const struct role_check *r)
{
    const json_t *roles = delegated_roles(r->env), *d, *v;
    size_t i, j;

    json_array_foreach(roles, i, d) {
        const json_t *name = json_object_get(d, "name");
        const json_t *keyids = json_object_get(d, "keyids");
        const json_t *threshold = json_object_get(d, "threshold");
        const json_t *term = json_object_get(d, "terminating");
        const json_t *paths = json_object_get(d, "paths");
        const json_t *prefixes = json_object_get(d, "path_hash_prefixes");
        const json_t *list = paths != NULL ? paths : prefixes;
        int ok = json_is_object(d) && json_is_string(name) && json_is_array(keyids) &&
                 json_is_integer(threshold) && json_integer_value(threshold) >= 1 &&
                 (term == NULL || json_is_boolean(term)) && (paths == NULL) != (prefixes == NULL) &&
                 json_is_array(list);

        json_array_foreach(keyids, j, v) ok = ok && json_is_string(v);
        json_array_foreach(list, j, v) ok = ok && json_is_string(v);
        if (!ok) {
            fota_resp_error(p->resp, 400, "bad_metadata",
                            "%s: delegation %zu needs a name, keyids, a threshold of at least 1 "
                            "and either paths or path_hash_prefixes",
                            r->name, i);
            return -1;
        }
        for (j = 0; j < i; j++) {
            if (json_equal(name, json_object_get(json_array_get(roles, j), "name"))) {
                fota_resp_error(p->resp, 400, "bad_metadata", "%s delegates '%.200s' twice",
                                r->name, json_string_value(name));
                return -1;
            }
        }
    }
    return 0;
}

/* The served envelope of delegated role name, read once: *ret_env NULL
 * when the served snapshot does not list the role. *ret_name (may be NULL)
 * gets a copy of the name that lives as long as p. 0, or -1 with resp set. */
static int served_role(struct publish *p, const char *name, const json_t **ret_env,
                       const char **ret_name)
{
    char key[ROLE_NAME_MAX + 8], enc[FOTA_TUF_ONLINE_ROLE_FILE_MAX + 1],
        file[FOTA_TUF_ONLINE_ROLE_FILE_MAX + 8];
    const json_t *meta = json_object_get(signed_of(p->cur_snap), "meta");
    struct served_role *grown;
    uint8_t *buf = NULL;
    size_t len = 0;
    json_t *env = NULL;
    char *copy = NULL;
    fota_err err;

    for (size_t i = 0; i < p->nserved; i++) {
        if (strcmp(p->served[i].name, name) == 0) {
            *ret_env = p->served[i].env;
            if (ret_name != NULL)
                *ret_name = p->served[i].name;
            return 0;
        }
    }
    *ret_env = NULL;
    if (snprintf(key, sizeof key, "%s.json", name) >= (int)sizeof key ||
        json_object_get(meta, key) == NULL || !valid_role_name(name))
        return 0;
    err = fota_tuf_encode_name(name, enc, sizeof enc);
    if (err == FOTA_OK && snprintf(file, sizeof file, "%s.json", enc) >= (int)sizeof file)
        err = FOTA_E_TOO_BIG;
    if (err == FOTA_OK)
        err = fota_tuf_online_read(p->srv, file, &buf, &len);
    if (err == FOTA_OK)
        err = fota_json_parse(buf, len, FOTA_TUF_REPO_MAX_METADATA, FOTA_JSON_MAX_DEPTH, &env);
    if (err == FOTA_OK)
        err = fota_tuf_repo_check_envelope(env, "targets");
    free(buf);
    if (err != FOTA_OK) {
        json_decref(env);
        fota_log(FOTA_LOG_ERROR, "release-publish", "role=%.200s error=\"served file: %s\"", name,
                 fota_strerror(err));
        fota_resp_error(p->resp, 500, "internal", "cannot read the served role '%.200s': %s",
                        name, fota_strerror(err));
        return -1;
    }
    copy = strdup(name);
    grown = copy != NULL ? realloc(p->served, (p->nserved + 1) * sizeof *grown) : NULL;
    if (grown == NULL) {
        free(copy);
        json_decref(env);
        fota_resp_error(p->resp, 500, "internal", "out of memory");
        return -1;
    }
    p->served = grown;
    p->served[p->nserved].name = copy;
    p->served[p->nserved].env = env;
    p->nserved++;
    *ret_env = env;
    if (ret_name != NULL)
        *ret_name = copy;
    return 0;
}

/*
 * The role that delegates name, searched in what clients will trust after
 * this publish: the top-level targets (sent, or else served), the delegated
 * roles of this request, then the served delegated roles (those sent again
 * count as sent). 0 with the delegator's envelope, name and entry; 1 when no
 * role delegates name; -1 with resp set.
 */
static int find_delegator(struct publish *p, const char *name, const json_t **ret_env,
                          const char **ret_name, const json_t **ret_entry)
{
    const json_t *meta = json_object_get(signed_of(p->cur_snap), "meta");
    const json_t *entry = find_delegation(p->top, name), *v;
    const char *key;

    if (entry != NULL) {
        *ret_env = p->top;
        *ret_name = "targets";
        *ret_entry = entry;
        return 0;
    }
    for (size_t i = p->has_targets ? 1 : 0; i < p->nroles; i++) {
        const struct role_check *r = &p->roles[i];

        if (strcmp(r->name, name) == 0)
            continue;
        entry = find_delegation(r->env, name);
        if (entry != NULL) {
            *ret_env = r->env;
            *ret_name = r->name;
            *ret_entry = entry;
            return 0;
        }
    }
    json_object_foreach((json_t *)meta, key, v) {
        size_t n = strlen(key);
        char role[ROLE_NAME_MAX + 1];
        const json_t *env;
        const char *served_name;

        if (n <= 5 || n - 5 > ROLE_NAME_MAX || strcmp(key + n - 5, ".json") != 0)
            continue;
        memcpy(role, key, n - 5);
        role[n - 5] = '\0';
        if (strcmp(role, name) == 0 || !valid_role_name(role) || sent_role(p, role) != NULL)
            continue;
        if (served_role(p, role, &env, &served_name) != 0)
            return -1;
        entry = env != NULL ? find_delegation(env, name) : NULL;
        if (entry != NULL) {
            *ret_env = env;
            *ret_name = served_name;
            *ret_entry = entry;
            return 0;
        }
    }
    return 1;
}

/* Walk from r up to the top-level targets, recording each delegation entry
 * on the way. A role that no chain reaches targets from (nobody delegates
 * it, or a cycle) is refused: clients would never find it. */
static int resolve_chain(struct publish *p, struct role_check *r)
{
    const char *name = r->name;

    r->depth = 0;
    for (;;) {
        const json_t *env = NULL, *entry = NULL;
        const char *delegator = NULL;
        int rc = find_delegator(p, name, &env, &delegator, &entry);

        if (rc < 0)
            return -1;
        if (rc > 0) {
            if (name == r->name)
                fota_resp_error(p->resp, 409, "unknown_role",
                                "role '%.200s': no role delegates to it (neither targets, nor a "
                                "role of this request, nor a published role)",
                                r->name);
            else
                fota_resp_error(p->resp, 409, "unknown_role",
                                "role '%.200s' is delegated by '%.200s', which no role delegates to",
                                r->name, name);
            return -1;
        }
        if (r->depth == CHAIN_MAX) {
            fota_resp_error(p->resp, 409, "unknown_role",
                            "role '%.200s' is more than %d delegations below targets, or in a "
                            "cycle of delegations",
                            r->name, CHAIN_MAX);
            return -1;
        }
        if (r->depth == 0) {
            r->delegator = delegator;
            r->keys = json_object_get(json_object_get(signed_of(env), "delegations"), "keys");
        }
        r->chain[r->depth++] = entry;
        if (env == p->top)
            return 0;
        name = delegator;
    }
}

/* The version the served snapshot lists for role ("targets" or delegated);
 * 0 when it lists none. */
static int64_t served_version(const struct publish *p, const char *role)
{
    const json_t *meta = json_object_get(signed_of(p->cur_snap), "meta");
    char key[ROLE_NAME_MAX + 8];

    if (snprintf(key, sizeof key, "%s.json", role) >= (int)sizeof key)
        return 0;
    return json_integer_value(json_object_get(json_object_get(meta, key), "version"));
}

/* A delegated role sent: its delegator's keys and threshold, expiry,
 * version, and every target inside the paths of each delegation from
 * targets down to it. 0, or -1 with resp set. */
static int check_delegated(struct publish *p, struct role_check *r)
{
    const json_t *entry;
    unsigned valid = 0;
    int64_t cur;
    fota_err err;

    if (resolve_chain(p, r) != 0)
        return -1;
    entry = r->chain[0];
    err = fota_tuf_verify_role(r->env, r->keys, entry, &valid);
    if (err != FOTA_OK) {
        fota_resp_error(p->resp, 400, "bad_signature",
                        "role '%.200s' v%lld: %u of %lld signatures by the keys %.200s delegates "
                        "it to (%s)",
                        r->name, (long long)r->version, valid,
                        (long long)json_integer_value(json_object_get(entry, "threshold")),
                        r->delegator, fota_strerror(err));
        return -1;
    }
    if (!not_expired(r->env)) {
        fota_resp_error(p->resp, 400, "expired", "role '%.200s' v%lld expired at %s", r->name,
                        (long long)r->version, expires_of(r->env));
        return -1;
    }
    cur = served_version(p, r->name);
    if (r->version <= cur) {
        fota_resp_error(p->resp, 409, "version",
                        "role '%.200s' version %lld is not above the published version %lld",
                        r->name, (long long)r->version, (long long)cur);
        return -1;
    }
    for (size_t i = 0; i < r->ntargets; i++) {
        for (size_t k = 0; k < r->depth; k++) {
            if (fota_tuf_delegation_covers(r->chain[k], r->targets[i].name))
                continue;
            fota_resp_error(p->resp, 400, "bad_target",
                            "target '%s' of role '%.200s' is outside the paths delegated to "
                            "'%.200s'",
                            r->targets[i].name, r->name,
                            json_string_value(json_object_get(r->chain[k], "name")));
            return -1;
        }
    }
    return 0;
}

/* The roles a sent role delegates to: each must be sent too or already
 * published, and a published one that is not sent again must still carry
 * the threshold of the keys it is now delegated to (a delegator may have
 * rotated them). 0, or -1 with resp set. */
static int check_delegatees(struct publish *p, const struct role_check *r)
{
    const json_t *keys = json_object_get(json_object_get(signed_of(r->env), "delegations"), "keys");
    const json_t *d;
    size_t i;

    json_array_foreach(delegated_roles(r->env), i, d) {
        const char *name = json_string_value(json_object_get(d, "name"));
        const json_t *env = NULL;
        unsigned valid = 0;

        if (sent_role(p, name) != NULL)
            continue;
        if (served_role(p, name, &env, NULL) != 0)
            return -1;
        if (env == NULL) {
            fota_resp_error(p->resp, 409, "unknown_role",
                            "%.200s delegates to '%.200s', which is neither published nor sent "
                            "in this request",
                            r->name, name);
            return -1;
        }
        if (fota_tuf_verify_role(env, keys, d, &valid) != FOTA_OK) {
            fota_resp_error(p->resp, 400, "bad_signature",
                            "%.200s delegates '%.200s' to keys that do not sign its published "
                            "v%lld (%u of %lld signatures): sign it with them and send it in the "
                            "same request",
                            r->name, name, (long long)fota_tuf_repo_version(env), valid,
                            (long long)json_integer_value(json_object_get(d, "threshold")));
            return -1;
        }
    }
    return 0;
}

/* Shape of one target entry and of its custom release fields. Returns 0 or
 * -1 with resp set. */
static int check_entry(struct publish *p, struct target_check *t)
{
    const json_t *length = json_object_get(t->entry, "length");
    const json_t *hashes = json_object_get(t->entry, "hashes");
    const json_t *custom = json_object_get(t->entry, "custom");
    const char *sha256 = json_string_value(json_object_get(hashes, "sha256"));
    const json_t *hwids, *version, *counter, *v;
    const char *alg;
    size_t i;

    if (!fota_target_path_valid(t->name)) {
        fota_resp_error(p->resp, 400, "bad_target",
                        "target '%.200s': not a path the server stores (1 to %d bytes, "
                        "non-empty components, none '.' or '..', no control characters)",
                        t->name, FOTA_TARGET_PATH_MAX);
        return -1;
    }
    if (!json_is_object(t->entry) || !json_is_integer(length) ||
        json_integer_value(length) < 0 || !json_is_object(hashes)) {
        fota_resp_error(p->resp, 400, "bad_metadata", "target '%s': needs length and hashes",
                        t->name);
        return -1;
    }
    if (!is_lower_hex(sha256, 64)) {
        fota_resp_error(p->resp, 400, "bad_target",
                        "target '%s': needs a sha256 hash (64 lower-case hex digits)", t->name);
        return -1;
    }
    json_object_foreach((json_t *)hashes, alg, v) {
        fota_hash_alg a;
        const char *hex = json_string_value(v);

        if (fota_hash_alg_from_name(alg, &a) != FOTA_OK ||
            !is_lower_hex(hex, 2 * fota_hash_len(a))) {
            fota_resp_error(p->resp, 400, "bad_target",
                            "target '%s': hash '%.32s' is not a sha256 or sha512 in hex",
                            t->name, alg);
            return -1;
        }
    }
    memcpy(t->sha256, sha256, 65);
    t->length = (uint64_t)json_integer_value(length);
    if (custom != NULL && !json_is_object(custom)) {
        fota_resp_error(p->resp, 400, "bad_custom", "target '%s': custom is not an object",
                        t->name);
        return -1;
    }
    hwids = json_object_get(custom, "hardware_ids");
    version = json_object_get(custom, "version");
    counter = json_object_get(custom, "security_counter");
    if (hwids == NULL && version == NULL && counter == NULL)
        return 0;
    /* A release must be complete: a half-filled custom is an operator's
     * mistake better caught before it is published. */
    if (!json_is_array(hwids) || json_array_size(hwids) < 1 ||
        json_array_size(hwids) > FOTA_STORE_RELEASE_HWIDS_MAX || !json_is_string(version) ||
        json_string_length(version) < 1 || json_string_length(version) > FOTA_STORE_VERSION_MAX ||
        !json_is_integer(counter) || json_integer_value(counter) < 0) {
        fota_resp_error(p->resp, 400, "bad_custom",
                        "target '%s': custom needs hardware_ids (1 to %d strings), version (a "
                        "string of at most %d bytes) and security_counter (an integer >= 0) "
                        "together",
                        t->name, FOTA_STORE_RELEASE_HWIDS_MAX, FOTA_STORE_VERSION_MAX);
        return -1;
    }
    memset(&t->rel, 0, sizeof t->rel);
    json_array_foreach(hwids, i, v) {
        const char *s = json_string_value(v);
        size_t n = json_string_length(v);

        if (s == NULL || n < 1 || n > FOTA_STORE_HWID_MAX || strlen(s) != n) {
            fota_resp_error(p->resp, 400, "bad_custom",
                            "target '%s': hardware id %zu is not a string of 1 to %d bytes",
                            t->name, i, FOTA_STORE_HWID_MAX);
            return -1;
        }
        for (size_t j = 0; j < i; j++) {
            if (strcmp(t->rel.hardware_ids[j], s) == 0) {
                fota_resp_error(p->resp, 400, "bad_custom",
                                "target '%s': hardware id '%s' listed twice", t->name, s);
                return -1;
            }
        }
        memcpy(t->rel.hardware_ids[i], s, n + 1);
    }
    if (strlen(json_string_value(version)) != json_string_length(version)) {
        fota_resp_error(p->resp, 400, "bad_custom", "target '%s': bad version", t->name);
        return -1;
    }
    t->rel.hardware_id_count = json_array_size(hwids);
    snprintf(t->rel.version, sizeof t->rel.version, "%s", json_string_value(version));
    t->rel.security_counter = json_integer_value(counter);
    snprintf(t->rel.target_name, sizeof t->rel.target_name, "%s", t->name);
    memcpy(t->rel.sha256, t->sha256, 65);
    t->rel.length = (int64_t)t->length;
    t->is_release = 1;
    return 0;
}

/* A release id: the first 16 hex digits of SHA-256(name "\n" sha256), so
 * the same image under the same name is the same release wherever and
 * however often it is published. */
static void release_id(const char *name, const char *sha256, char out[17])
{
    fota_hash_ctx h;
    uint8_t d[FOTA_HASH_MAX_LEN];

    memset(d, 0, sizeof d);
    if (fota_hash_init(&h, FOTA_HASH_SHA256) == FOTA_OK) {
        fota_hash_update(&h, name, strlen(name));
        fota_hash_update(&h, "\n", 1);
        fota_hash_update(&h, sha256, 64);
        fota_hash_final(&h, d);
    }
    fota_hex_encode(d, 8, out);
}

/* Hash the stored file of a target and compare with every listed hash.
 * Returns 0 or -1 with resp set. */
static int check_file(struct publish *p, const struct target_check *t, int hash_it)
{
    char dir[1024], path[1400];
    const json_t *hashes = json_object_get(t->entry, "hashes");
    fota_hash_ctx ctx[2];
    const char *alg_names[2] = {NULL, NULL};
    size_t nctx = 0;
    uint8_t buf[65536];
    struct stat st;
    const char *alg;
    const json_t *v;
    uint64_t seen = 0;
    int fd = -1, rc = -1;

    if (fota_target_dir(p->srv, t->name, dir, sizeof dir) != 0 ||
        snprintf(path, sizeof path, "%s/%s.%s", dir, t->sha256, fota_target_basename(t->name)) >=
            (int)sizeof path) {
        fota_resp_error(p->resp, 400, "bad_target", "target '%s': path too long", t->name);
        return -1;
    }
    fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0 || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        fota_resp_error(p->resp, 409, "target_missing",
                        "target '%s': no uploaded image with sha256 %s; upload it first with "
                        "PUT /api/v1/images/%s",
                        t->name, t->sha256, t->name);
        goto out;
    }
    if ((uint64_t)st.st_size != t->length) {
        fota_resp_error(p->resp, 409, "target_length",
                        "target '%s': the uploaded image has %lld bytes, the metadata says %llu",
                        t->name, (long long)st.st_size, (unsigned long long)t->length);
        goto out;
    }
    if (!hash_it) {
        rc = 0;
        goto out;
    }
    json_object_foreach((json_t *)hashes, alg, v) {
        fota_hash_alg a;

        if (nctx == 2 || fota_hash_alg_from_name(alg, &a) != FOTA_OK ||
            fota_hash_init(&ctx[nctx], a) != FOTA_OK) {
            fota_resp_error(p->resp, 500, "internal", "hashing failed");
            goto out;
        }
        alg_names[nctx++] = alg;
    }
    for (;;) {
        ssize_t n = read(fd, buf, sizeof buf);

        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            fota_resp_error(p->resp, 500, "internal", "cannot read the stored image");
            goto out;
        }
        if (n == 0)
            break;
        seen += (uint64_t)n;
        for (size_t i = 0; i < nctx; i++)
            fota_hash_update(&ctx[i], buf, (size_t)n);
    }
    rc = seen == t->length ? 0 : -1;
    if (rc != 0)
        fota_resp_error(p->resp, 409, "target_length", "target '%s': the image changed size",
                        t->name);
    for (size_t i = 0; i < nctx; i++) {
        uint8_t d[FOTA_HASH_MAX_LEN], want[FOTA_HASH_MAX_LEN];
        fota_hash_alg a;
        const char *hex = json_string_value(json_object_get(hashes, alg_names[i]));

        fota_hash_alg_from_name(alg_names[i], &a);
        if (fota_hash_final(&ctx[i], d) != FOTA_OK ||
            fota_hex_decode(hex, strlen(hex), want, fota_hash_len(a)) != FOTA_OK ||
            !fota_ct_equal(d, want, fota_hash_len(a))) {
            if (rc == 0)
                fota_resp_error(p->resp, 409, "target_hash",
                                "target '%s': the uploaded image's %s differs from the metadata",
                                t->name, alg_names[i]);
            rc = -1;
        }
    }
    nctx = 0;
out:
    for (size_t i = 0; i < nctx; i++)
        fota_hash_abort(&ctx[i]);
    if (fd >= 0)
        close(fd);
    return rc;
}

/* Without consistent snapshots clients fetch targets/<name> itself: link it
 * to the stored file (a hard link made under a temp name and renamed, so the
 * plain name always holds a complete image). */
static int link_plain_name(struct publish *p, const struct target_check *t)
{
    char dir[1024], hashed[1400], plain[1400], tmp[1450];
    int rc = -1;

    if (fota_target_dir(p->srv, t->name, dir, sizeof dir) != 0 ||
        snprintf(hashed, sizeof hashed, "%s/%s.%s", dir, t->sha256, fota_target_basename(t->name)) >=
            (int)sizeof hashed ||
        snprintf(plain, sizeof plain, "%s/%s", dir, fota_target_basename(t->name)) >=
            (int)sizeof plain ||
        snprintf(tmp, sizeof tmp, "%s/.fota+tmp.link.%ld", dir, (long)getpid()) >=
            (int)sizeof tmp)
        goto out;
    unlink(tmp);
    if (link(hashed, tmp) != 0)
        goto out;
    if (rename(tmp, plain) != 0) {
        unlink(tmp);
        goto out;
    }
    rc = 0;
out:
    if (rc != 0) {
        fota_log(FOTA_LOG_ERROR, "release-publish", "target=%s error=\"cannot link: %s\"",
                 t->name, strerror(errno));
        fota_resp_error(p->resp, 500, "internal", "cannot place target '%s'", t->name);
    }
    return rc;
}

/* ---- the checks made under the repository lock ---------------------------- */

/* What is served now: root, targets and snapshot. 0, or -1 with resp set. */
static int load_served(struct publish *p)
{
    uint8_t *buf = NULL;
    size_t len = 0;
    fota_err err;

    err = fota_tuf_online_root(p->srv, &p->served_root);
    if (err == FOTA_OK)
        err = fota_tuf_online_read(p->srv, "targets.json", &buf, &len);
    if (err == FOTA_OK)
        err = fota_json_parse(buf, len, FOTA_TUF_REPO_MAX_METADATA, FOTA_JSON_MAX_DEPTH,
                              &p->cur_targets);
    free(buf);
    buf = NULL;
    if (err == FOTA_OK)
        err = fota_tuf_online_read(p->srv, "snapshot.json", &buf, &len);
    if (err == FOTA_OK)
        err = fota_json_parse(buf, len, FOTA_TUF_REPO_MAX_METADATA, FOTA_JSON_MAX_DEPTH,
                              &p->cur_snap);
    free(buf);
    if (err != FOTA_OK) {
        fota_resp_error(p->resp, 500, "internal", "cannot read the served metadata: %s",
                        fota_strerror(err));
        return -1;
    }
    return 0;
}

static const json_t *root_role(const json_t *root, const char *role)
{
    return json_object_get(json_object_get(signed_of(root), "roles"), role);
}

static long long threshold_of(const json_t *role)
{
    return (long long)json_integer_value(json_object_get(role, "threshold"));
}

/*
 * A new root, as a client holding the served root N will check it (the
 * TUF client workflow, 5.3): version N + 1, the threshold of root N's root
 * keys AND of its own, not expired. Then what the server needs to go on:
 * its online keys in the new root (else it could no longer sign snapshot or
 * timestamp), and consistent snapshots not turned off (target files are
 * stored under their hashed names only). 0, or -1 with resp set.
 */
static int check_root(struct publish *p)
{
    const json_t *old = p->served_root, *new_root = p->new_root;
    int64_t version = fota_tuf_repo_version(new_root), cur = fota_tuf_repo_version(old);
    unsigned valid = 0;
    char why[512];
    fota_err err;

    if (version != cur + 1) {
        fota_resp_error(p->resp, 409, "version",
                        "root version %lld does not follow the published version %lld (the "
                        "next root is version %lld)",
                        (long long)version, (long long)cur, (long long)cur + 1);
        return -1;
    }
    for (int i = 0; i < 2; i++) {
        const json_t *by = i == 0 ? old : new_root;
        const json_t *def = root_role(by, "root");

        err = fota_tuf_verify_role(new_root, json_object_get(signed_of(by), "keys"), def, &valid);
        if (err != FOTA_OK) {
            fota_resp_error(p->resp, 400, "bad_signature",
                            "root v%lld: %u of %lld signatures by the root keys of the %s root "
                            "v%lld (a new root needs the threshold of the old root's keys and "
                            "of its own: %s)",
                            (long long)version, valid, threshold_of(def),
                            i == 0 ? "published" : "new", (long long)fota_tuf_repo_version(by),
                            fota_strerror(err));
            return -1;
        }
    }
    if (!not_expired(new_root)) {
        fota_resp_error(p->resp, 400, "expired", "root v%lld expired at %s", (long long)version,
                        expires_of(new_root));
        return -1;
    }
    if (fota_tuf_online_check_keys(p->srv, new_root, why, sizeof why) != 0) {
        fota_resp_error(p->resp, 409, "online_keys",
                        "root v%lld: %s. The server could no longer sign; to rotate an online "
                        "key, list the old and the new key in one root, restart the server with "
                        "the new key, then drop the old key in the next root",
                        (long long)version, why);
        return -1;
    }
    if (json_is_true(json_object_get(signed_of(old), "consistent_snapshot")) &&
        !json_is_true(json_object_get(signed_of(new_root), "consistent_snapshot"))) {
        fota_resp_error(p->resp, 409, "conflict",
                        "root v%lld turns consistent snapshots off, which the server does not "
                        "do (target files are stored under their hashed names)",
                        (long long)version);
        return -1;
    }
    return 0;
}

/* The top-level targets: sent (checked against the root in force after
 * this request), or served (which a new root must still trust). */
static int check_top_targets(struct publish *p)
{
    const json_t *def = root_role(p->root, "targets");
    int64_t root_v = fota_tuf_repo_version(p->root);
    unsigned valid = 0;
    fota_err err;

    if (!p->has_targets) {
        p->top = p->cur_targets;
        if (p->new_root == NULL)
            return 0;
        err = fota_tuf_verify_role(p->cur_targets, json_object_get(signed_of(p->root), "keys"),
                                   def, &valid);
        if (err != FOTA_OK) {
            fota_resp_error(p->resp, 409, "targets_keys",
                            "the published targets v%lld carries %u of %lld signatures by the "
                            "targets keys of root v%lld: send targets signed with them in the "
                            "same request",
                            (long long)fota_tuf_repo_version(p->cur_targets), valid,
                            threshold_of(def), (long long)root_v);
            return -1;
        }
        return 0;
    }
    p->top = p->roles[0].env;
    err = fota_tuf_verify_role(p->top, json_object_get(signed_of(p->root), "keys"), def, &valid);
    if (err != FOTA_OK) {
        fota_resp_error(p->resp, 400, "bad_signature",
                        "targets v%lld: %u of %lld signatures by the targets keys of root v%lld "
                        "(%s)",
                        (long long)p->roles[0].version, valid, threshold_of(def),
                        (long long)root_v, fota_strerror(err));
        return -1;
    }
    if (!not_expired(p->top)) {
        fota_resp_error(p->resp, 400, "expired", "targets v%lld expired at %s",
                        (long long)p->roles[0].version, expires_of(p->top));
        return -1;
    }
    if (p->roles[0].version <= fota_tuf_repo_version(p->cur_targets)) {
        fota_resp_error(p->resp, 409, "version",
                        "targets version %lld is not above the published version %lld",
                        (long long)p->roles[0].version,
                        (long long)fota_tuf_repo_version(p->cur_targets));
        return -1;
    }
    return 0;
}

/* Every target's image must be here, as the metadata describes it. An
 * entry identical to the one the served version of the same role lists
 * was checked when it was published: only its size is looked at again. */
static int check_images(struct publish *p)
{
    for (size_t i = 0; i < p->nroles; i++) {
        const struct role_check *r = &p->roles[i];
        const json_t *served = NULL, *listed;

        if (i == 0 && p->has_targets)
            served = p->cur_targets;
        else if (served_role(p, r->name, &served, NULL) != 0)
            return -1;
        listed = json_object_get(signed_of(served), "targets");
        for (size_t j = 0; j < r->ntargets; j++) {
            const json_t *old = json_object_get(listed, r->targets[j].name);
            int same = old != NULL && json_equal((json_t *)old, (json_t *)r->targets[j].entry);

            if (check_file(p, &r->targets[j], !same) != 0)
                return -1;
        }
    }
    return 0;
}

/* The bytes each role (and a new root) is served as. */
static int serialise(struct publish *p, char **ret_root, size_t *ret_root_len)
{
    fota_err err = FOTA_OK;
    const char *what = "root";

    if (p->new_root != NULL)
        err = fota_tuf_repo_bytes(p->new_root, FOTA_TUF_REPO_MAX_METADATA, ret_root,
                                  ret_root_len);
    for (size_t i = 0; err == FOTA_OK && i < p->nroles; i++) {
        what = p->roles[i].name;
        err = fota_tuf_repo_bytes(p->roles[i].env, FOTA_TUF_REPO_MAX_METADATA, &p->roles[i].bytes,
                                  &p->roles[i].len);
    }
    if (err != FOTA_OK) {
        fota_resp_error(p->resp, err == FOTA_E_TOO_BIG ? 413 : 500,
                        err == FOTA_E_TOO_BIG ? "too_large" : "internal", "%.200s: %s", what,
                        fota_strerror(err));
        return -1;
    }
    return 0;
}

/* One release per target whose custom carries the release fields, in the
 * open transaction; those new to the store are appended to released. 0, or
 * -1 with resp set. */
static int record_releases(struct publish *p, struct fota_store *st, int64_t top_version,
                           json_t *released)
{
    for (size_t i = 0; i < p->nroles; i++) {
        for (size_t j = 0; j < p->roles[i].ntargets; j++) {
            struct target_check *t = &p->roles[i].targets[j];
            struct fota_store_release existing;
            enum fota_store_err se;

            if (!t->is_release)
                continue;
            release_id(t->name, t->sha256, t->rel.id);
            t->rel.targets_version = top_version;
            t->rel.created = fota_server_now();
            se = fota_store_release_get(st, t->rel.id, &existing);
            if (se == FOTA_STORE_OK)
                continue; /* published before (same name, same image) */
            if (se == FOTA_STORE_NOT_FOUND)
                se = fota_store_release_insert(st, &t->rel);
            if (se == FOTA_STORE_CONFLICT)
                continue;
            if (se != FOTA_STORE_OK) {
                fota_resp_store_error(p->resp, se);
                return -1;
            }
            json_array_append_new(released, fota_release_json(&t->rel));
        }
    }
    return 0;
}

/* ---- publishing ------------------------------------------------------------ */

static void publish_locked(struct publish *p, struct fota_req *req, const char *actor)
{
    struct fota_resp *resp = p->resp;
    struct fota_server *srv = p->srv;
    struct fota_store *st = NULL;
    struct fota_tuf_online_role *out_roles = NULL;
    json_t *released = NULL, *role_versions = NULL, *body = NULL;
    char *root_bytes = NULL;
    size_t root_len = 0, ntargets = 0, i;
    int64_t top_version, root_version, snap_v = 0, ts_v = 0;
    int in_tx = 0, consistent;
    enum fota_store_err se;
    char object[64];
    fota_err err;

    if (load_served(p) != 0)
        goto out;
    p->root = p->served_root;
    if (p->new_root != NULL) {
        if (check_root(p) != 0)
            goto out;
        p->root = p->new_root;
    }
    root_version = fota_tuf_repo_version(p->root);
    consistent = json_is_true(json_object_get(signed_of(p->root), "consistent_snapshot"));
    if (check_top_targets(p) != 0)
        goto out;
    for (i = p->has_targets ? 1 : 0; i < p->nroles; i++) {
        if (check_delegated(p, &p->roles[i]) != 0)
            goto out;
    }
    for (i = 0; i < p->nroles; i++) {
        if (check_delegatees(p, &p->roles[i]) != 0)
            goto out;
    }
    if (check_images(p) != 0 || serialise(p, &root_bytes, &root_len) != 0)
        goto out;
    top_version = fota_tuf_repo_version(p->top);

    /* Releases and the audit entries are committed only once the files
     * are written; the files go first so that a failed write leaves no
     * release pointing at metadata that is not served. */
    released = json_array();
    role_versions = json_object();
    out_roles = calloc(p->nroles ? p->nroles : 1, sizeof *out_roles);
    if (released == NULL || role_versions == NULL || out_roles == NULL) {
        fota_resp_error(resp, 500, "internal", "out of memory");
        goto out;
    }
    if (fota_req_begin(req, resp, &st) != 0)
        goto out;
    in_tx = 1;
    for (i = 0; i < p->nroles; i++) {
        const struct role_check *r = &p->roles[i];

        out_roles[i].name = r->name;
        out_roles[i].version = r->version;
        out_roles[i].bytes = r->bytes;
        out_roles[i].len = r->len;
        if (!(i == 0 && p->has_targets))
            json_object_set_new(role_versions, r->name, json_integer(r->version));
        ntargets += r->ntargets;
    }
    if (record_releases(p, st, top_version, released) != 0)
        goto out;
    for (i = 0; !consistent && i < p->nroles; i++) {
        for (size_t j = 0; j < p->roles[i].ntargets; j++) {
            if (link_plain_name(p, &p->roles[i].targets[j]) != 0)
                goto out;
        }
    }
    err = fota_tuf_online_publish(srv, st, p->new_root, root_bytes, root_len, out_roles,
                                  p->nroles, &snap_v, &ts_v);
    if (err != FOTA_OK) {
        fota_resp_error(resp, 500, "internal", "publishing failed: %s", fota_strerror(err));
        goto out;
    }
    if (p->new_root != NULL) {
        snprintf(object, sizeof object, "root/%lld", (long long)root_version);
        fota_api_audit(st, actor, "root.publish", object,
                       json_pack("{s:I,s:I,s:I,s:I}", "root_version", (json_int_t)root_version,
                                 "previous", (json_int_t)fota_tuf_repo_version(p->served_root),
                                 "snapshot_version", (json_int_t)snap_v, "timestamp_version",
                                 (json_int_t)ts_v),
                       fota_server_now());
    }
    if (p->nroles > 0) {
        snprintf(object, sizeof object, "targets/%lld", (long long)top_version);
        fota_api_audit(st, actor, "release.publish", object,
                       json_pack("{s:I,s:O,s:I,s:I,s:I,s:O}", "targets_version",
                                 (json_int_t)top_version, "roles", role_versions,
                                 "snapshot_version", (json_int_t)snap_v, "timestamp_version",
                                 (json_int_t)ts_v, "targets", (json_int_t)ntargets, "releases",
                                 released),
                       fota_server_now());
    }
    se = fota_store_commit(st);
    in_tx = 0;
    if (se != FOTA_STORE_OK) {
        /* The metadata is out; only the records are missing. */
        fota_log(FOTA_LOG_ERROR, p->new_root != NULL ? "root-publish" : "release-publish",
                 "root=%lld targets=%lld error=\"metadata published but not recorded: %s\"",
                 (long long)root_version, (long long)top_version, fota_store_strerror(se));
        fota_store_rollback(st);
        fota_resp_store_error(resp, se);
        goto out;
    }
    fota_log(FOTA_LOG_INFO, p->new_root != NULL ? "root-publish" : "release-publish",
             "actor=%s root=%lld targets=%lld roles=%zu snapshot=%lld timestamp=%lld "
             "releases=%zu",
             actor, (long long)root_version, (long long)top_version,
             json_object_size(role_versions), (long long)snap_v, (long long)ts_v,
             json_array_size(released));
    body = json_pack("{s:I,s:I,s:O,s:I,s:I,s:O}", "root_version", (json_int_t)root_version,
                     "targets_version", (json_int_t)top_version, "roles", role_versions,
                     "snapshot_version", (json_int_t)snap_v, "timestamp_version",
                     (json_int_t)ts_v, "releases", released);
    if (body == NULL)
        fota_resp_error(resp, 500, "internal", "out of memory");
    else
        fota_resp_json(resp, 201, body);
    snprintf(resp->log_detail, sizeof resp->log_detail, "root=%lld targets=%lld snapshot=%lld",
             (long long)root_version, (long long)top_version, (long long)snap_v);
out:
    if (in_tx)
        fota_store_rollback(st);
    free(out_roles);
    free(root_bytes);
    json_decref(released);
    json_decref(role_versions);
}

/* ---- the request body ------------------------------------------------------ */

/* One targets role of the body: envelope shape, delegations, targets. */
static int parse_role(struct publish *p, struct role_check *r, const char *name,
                      const json_t *env)
{
    const json_t *targets, *entry;
    const char *target;
    size_t i = 0;
    fota_err err;

    r->name = name;
    r->env = env;
    err = fota_tuf_repo_check_envelope(env, "targets");
    if (err != FOTA_OK) {
        fota_resp_error(p->resp, 400, "bad_metadata", "%.200s: not targets metadata: %s", name,
                        fota_strerror(err));
        return -1;
    }
    r->version = fota_tuf_repo_version(env);
    if (check_delegation_shapes(p, r) != 0)
        return -1;
    targets = json_object_get(signed_of(env), "targets");
    r->ntargets = json_object_size(targets);
    r->targets = calloc(r->ntargets ? r->ntargets : 1, sizeof *r->targets);
    if (r->targets == NULL) {
        fota_resp_error(p->resp, 500, "internal", "out of memory");
        return -1;
    }
    json_object_foreach((json_t *)targets, target, entry) {
        r->targets[i].name = target;
        r->targets[i].entry = entry;
        if (check_entry(p, &r->targets[i]) != 0)
            return -1;
        i++;
    }
    return 0;
}

/*
 * {"targets": <envelope>?, "roles": {"<name>": <envelope>, ..}?} for
 * /api/v1/releases (at least one of the two); /api/v1/root also takes, and
 * needs, "root". Everything that does not depend on what is served is
 * checked here, before the lock. 0, or -1 with resp set.
 */
static int parse_body(struct publish *p, const json_t *body, int root_endpoint)
{
    const json_t *targets = json_object_get(body, "targets");
    const json_t *roles = json_object_get(body, "roles");
    const json_t *root = json_object_get(body, "root");
    const json_t *v;
    const char *key;
    size_t i;
    fota_err err;

    if (!json_is_object(body) || (root_endpoint && root == NULL) ||
        (!root_endpoint && targets == NULL && roles == NULL)) {
        fota_resp_error(p->resp, 400, "bad_request", "%s",
                        root_endpoint
                            ? "the body is {\"root\": <root metadata signed offline>} (with "
                              "\"targets\" and \"roles\" as for /api/v1/releases when they "
                              "change with it)"
                            : "the body is {\"targets\": <targets metadata signed offline>, "
                              "\"roles\": {\"<role>\": <delegated role metadata>, ..}}, either "
                              "or both");
        return -1;
    }
    json_object_foreach((json_t *)body, key, v) {
        if (strcmp(key, "targets") != 0 && strcmp(key, "roles") != 0 &&
            (!root_endpoint || strcmp(key, "root") != 0)) {
            fota_resp_error(p->resp, 400, "bad_request", "unknown field '%.64s'", key);
            return -1;
        }
    }
    if ((targets != NULL && !json_is_object(targets)) ||
        (roles != NULL && (!json_is_object(roles) || json_object_size(roles) < 1 ||
                           json_object_size(roles) > ROLES_MAX))) {
        fota_resp_error(p->resp, 400, "bad_request",
                        "targets is an envelope, roles an object of 1 to %d role names -> "
                        "envelopes",
                        ROLES_MAX);
        return -1;
    }
    if (root != NULL) {
        static const char *const top[] = {"root", "targets", "snapshot", "timestamp"};

        err = fota_tuf_repo_check_envelope(root, "root");
        for (i = 0; err == FOTA_OK && i < sizeof top / sizeof top[0]; i++) {
            if (!json_is_object(root_role(root, top[i])))
                err = FOTA_E_ROLE;
        }
        if (err != FOTA_OK) {
            fota_resp_error(p->resp, 400, "bad_metadata",
                            "not root metadata defining root, targets, snapshot and timestamp: %s",
                            fota_strerror(err));
            return -1;
        }
        p->new_root = root;
    }
    p->has_targets = targets != NULL;
    p->nroles = (targets != NULL ? 1 : 0) + json_object_size(roles);
    p->roles = calloc(p->nroles ? p->nroles : 1, sizeof *p->roles);
    if (p->roles == NULL) {
        p->nroles = 0;
        fota_resp_error(p->resp, 500, "internal", "out of memory");
        return -1;
    }
    i = 0;
    if (targets != NULL && parse_role(p, &p->roles[i++], "targets", targets) != 0)
        return -1;
    json_object_foreach((json_t *)roles, key, v) {
        if (!valid_role_name(key)) {
            fota_resp_error(p->resp, 400, "bad_request",
                            "'%.64s' is not a delegated role name the server publishes (1 to %d "
                            "bytes, no control characters, not a top-level role, not digits "
                            "and a dot first)",
                            key, ROLE_NAME_MAX);
            return -1;
        }
        if (parse_role(p, &p->roles[i++], key, v) != 0)
            return -1;
    }
    return 0;
}

/* POST /api/v1/releases (deploy) and POST /api/v1/root (admin). */
static void publish_request(struct fota_req *req, struct fota_resp *resp, int root_endpoint)
{
    struct publish p;
    struct fota_repo_lock lock = {-1};
    json_t *body = NULL;
    char actor[FOTA_STORE_NAME_MAX + 1];

    memset(&p, 0, sizeof p);
    p.srv = req->srv;
    p.resp = resp;
    resp->log_event = root_endpoint ? "root-publish" : "release-publish";
    if (fota_api_auth(req, resp, root_endpoint ? "admin" : "deploy", actor) != 0)
        return;
    body = fota_req_json(req, resp);
    if (body == NULL)
        return;
    if (parse_body(&p, body, root_endpoint) != 0)
        goto out;
    /* From here to the last file written, no other publish or renewal, in
     * this process or another, touches the repository. */
    if (fota_repo_lock_take(req->srv, &lock) != 0) {
        fota_resp_error(resp, 500, "internal", "cannot lock the repository");
        goto out;
    }
    publish_locked(&p, req, actor);
    fota_repo_lock_release(&lock);
out:
    publish_free(&p);
    json_decref(body);
}

void fota_api_root(struct fota_req *req, struct fota_resp *resp)
{
    if (strcmp(req->path, ROOT_PATH) != 0) {
        fota_resp_error(resp, 404, "not_found", "no such resource");
        return;
    }
    if (strcmp(req->method, "POST") != 0) {
        fota_resp_error(resp, 405, "method_not_allowed", "use POST");
        snprintf(resp->extra_header[0], sizeof resp->extra_header[0], "Allow: POST");
        return;
    }
    publish_request(req, resp, 1);
}


void fota_publish_releases(struct fota_req *req, struct fota_resp *resp)
{
    publish_request(req, resp, 0);
}
