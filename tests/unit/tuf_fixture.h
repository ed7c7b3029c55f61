/* SPDX-License-Identifier: Apache-2.0 */
#ifndef FOTA_TEST_TUF_FIXTURE_H
#define FOTA_TEST_TUF_FIXTURE_H

/*
 * Test fixture for the TUF client: an in-memory port (remote files, local
 * trusted files, the list of fetched names, a settable clock) and a small
 * repository builder that signs metadata with our own tuf_common helpers.
 *
 * Header-only, for test_*.c files; every function is static inline so that a
 * test using only part of it compiles without warnings.
 */

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "fota/crypto.h"
#include "fota/json.h"
#include "fota/tuf.h"

#define FX_NOW 1760000000          /* 2025-10-09T08:53:20Z */
#define FX_FUTURE "2030-01-01T00:00:00Z"
#define FX_PAST "2020-01-01T00:00:00Z"

/* ---- in-memory files and port ------------------------------------------ */

struct fx_blob {
    char *name;
    uint8_t *data;
    size_t len;
};

struct fx_files {
    struct fx_blob *v;
    size_t n, cap;
    int fold_case;      /* names compared ignoring ASCII case, as on FAT or
                         * a default macOS volume */
};

static inline int fx_name_eq(const struct fx_files *f, const char *a, const char *b)
{
    if (!f->fold_case)
        return strcmp(a, b) == 0;
    for (; *a != '\0' && *b != '\0'; a++, b++) {
        char x = *a >= 'A' && *a <= 'Z' ? (char)(*a - 'A' + 'a') : *a;
        char y = *b >= 'A' && *b <= 'Z' ? (char)(*b - 'A' + 'a') : *b;
        if (x != y)
            return 0;
    }
    return *a == *b;
}

static inline struct fx_blob *fx_find(struct fx_files *f, const char *name)
{
    for (size_t i = 0; i < f->n; i++)
        if (fx_name_eq(f, f->v[i].name, name))
            return &f->v[i];
    return NULL;
}

static inline void fx_put(struct fx_files *f, const char *name, const void *data, size_t len)
{
    struct fx_blob *b = fx_find(f, name);

    if (b == NULL) {
        if (f->n == f->cap) {
            f->cap = f->cap ? f->cap * 2 : 16;
            f->v = realloc(f->v, f->cap * sizeof(*f->v));
            if (f->v == NULL)
                abort();
        }
        b = &f->v[f->n++];
        b->name = strdup(name);
        b->data = NULL;
    }
    free(b->data);
    b->data = malloc(len ? len : 1);
    if (b->name == NULL || b->data == NULL)
        abort();
    memcpy(b->data, data, len);
    b->len = len;
}

static inline void fx_del(struct fx_files *f, const char *name)
{
    struct fx_blob *b = fx_find(f, name);

    if (b == NULL)
        return;
    free(b->name);
    free(b->data);
    *b = f->v[--f->n];
}

static inline void fx_files_free(struct fx_files *f)
{
    for (size_t i = 0; i < f->n; i++) {
        free(f->v[i].name);
        free(f->v[i].data);
    }
    free(f->v);
    memset(f, 0, sizeof(*f));
}

struct fx_names {
    char **v;
    size_t n, cap;
};

static inline void fx_names_add(struct fx_names *l, const char *name)
{
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 16;
        l->v = realloc(l->v, l->cap * sizeof(*l->v));
        if (l->v == NULL)
            abort();
    }
    l->v[l->n] = strdup(name);
    if (l->v[l->n] == NULL)
        abort();
    l->n++;
}

static inline void fx_names_clear(struct fx_names *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->v[i]);
    l->n = 0;
}

static inline void fx_names_free(struct fx_names *l)
{
    fx_names_clear(l);
    free(l->v);
    memset(l, 0, sizeof(*l));
}

static inline size_t fx_count(const struct fx_names *l, const char *name)
{
    size_t n = 0;

    for (size_t i = 0; i < l->n; i++)
        n += strcmp(l->v[i], name) == 0;
    return n;
}

struct fx_mem {
    struct fx_files remote;
    struct fx_files local;
    struct fx_names fetched;
    struct fx_names stored;
    struct fx_names removed;
    size_t n_reject;
    char last_reject[2048];
    size_t n_ctrl_lines;        /* log lines holding a control character */
    int64_t now;
    int verbose;
    /* fault injection: the port fails these operations with FOTA_E_IO */
    const char *fail_store;     /* store of this name */
    const char *fail_remove;    /* remove of this name */
    const char *fail_load;      /* load of this name */
};

static inline fota_err fx_copy_out(const struct fx_blob *b, size_t max_len, uint8_t **ret_buf,
                                   size_t *ret_len)
{
    uint8_t *buf;

    if (b == NULL)
        return FOTA_E_NOT_FOUND;
    if (b->len > max_len)
        return FOTA_E_LENGTH;
    buf = malloc(b->len ? b->len : 1);
    if (buf == NULL)
        return FOTA_E_NOMEM;
    memcpy(buf, b->data, b->len);
    *ret_buf = buf;
    *ret_len = b->len;
    return FOTA_OK;
}

static inline fota_err fx_fetch(void *ctx, const char *name, size_t max_len, uint8_t **ret_buf,
                                size_t *ret_len)
{
    struct fx_mem *m = ctx;

    fx_names_add(&m->fetched, name);
    return fx_copy_out(fx_find(&m->remote, name), max_len, ret_buf, ret_len);
}

static inline fota_err fx_load(void *ctx, const char *name, size_t max_len, uint8_t **ret_buf,
                               size_t *ret_len)
{
    struct fx_mem *m = ctx;

    if (m->fail_load != NULL && strcmp(m->fail_load, name) == 0)
        return FOTA_E_IO;
    return fx_copy_out(fx_find(&m->local, name), max_len, ret_buf, ret_len);
}

static inline fota_err fx_store(void *ctx, const char *name, const uint8_t *buf, size_t len)
{
    struct fx_mem *m = ctx;

    if (m->fail_store != NULL && strcmp(m->fail_store, name) == 0)
        return FOTA_E_IO;
    fx_names_add(&m->stored, name);
    fx_put(&m->local, name, buf, len);
    return FOTA_OK;
}

static inline fota_err fx_remove(void *ctx, const char *name)
{
    struct fx_mem *m = ctx;

    if (m->fail_remove != NULL && strcmp(m->fail_remove, name) == 0)
        return FOTA_E_IO;
    fx_names_add(&m->removed, name);
    fx_del(&m->local, name);
    return FOTA_OK;
}

static inline int64_t fx_now(void *ctx)
{
    return ((struct fx_mem *)ctx)->now;
}

static inline void fx_log(void *ctx, enum fota_tuf_log_level level, const char *line)
{
    struct fx_mem *m = ctx;
    static const char *const tag[] = { "check ", "info  ", "REJECT" };

    for (const char *p = line; *p != '\0'; p++) {
        if ((unsigned char)*p < 0x20 || *p == 0x7f) {
            m->n_ctrl_lines++;
            break;
        }
    }
    if (level == FOTA_TUF_LOG_REJECT) {
        m->n_reject++;
        snprintf(m->last_reject, sizeof(m->last_reject), "%s", line);
    }
    if (m->verbose)
        fprintf(stderr, "    [%s] %s\n", tag[level], line);
}

static inline struct fota_tuf_port fx_port(struct fx_mem *m)
{
    struct fota_tuf_port p = {
        .ctx = m, .fetch = fx_fetch, .load = fx_load, .store = fx_store,
        .remove = fx_remove, .now = fx_now, .log = fx_log,
    };
    return p;
}

/* Start a new "run" on the same device: clear the request log. */
static inline void fx_new_run(struct fx_mem *m)
{
    fx_names_clear(&m->fetched);
    fx_names_clear(&m->stored);
    fx_names_clear(&m->removed);
    m->n_reject = 0;
    m->last_reject[0] = '\0';
    m->n_ctrl_lines = 0;
}

static inline void fx_mem_free(struct fx_mem *m)
{
    fx_files_free(&m->remote);
    fx_files_free(&m->local);
    fx_names_free(&m->fetched);
    fx_names_free(&m->stored);
    fx_names_free(&m->removed);
}

/* 1 when the local file name holds exactly the bytes of remote file rname. */
static inline int fx_same(struct fx_mem *m, const char *name, const char *rname)
{
    struct fx_blob *a = fx_find(&m->local, name), *b = fx_find(&m->remote, rname);

    return a != NULL && b != NULL && a->len == b->len && memcmp(a->data, b->data, a->len) == 0;
}

/* ---- keys and signing --------------------------------------------------- */

struct fx_key {
    fota_privkey *priv;
    json_t *obj;
    char id[FOTA_TUF_KEYID_HEX_LEN + 1];
};

static inline int fx_key_new(struct fx_key *k, fota_key_type type)
{
    if (fota_privkey_generate(type, &k->priv) != FOTA_OK)
        return -1;
    if (fota_tuf_key_json(k->priv, &k->obj) != FOTA_OK)
        return -1;
    return fota_tuf_keyid(k->obj, k->id) == FOTA_OK ? 0 : -1;
}

static inline void fx_key_free(struct fx_key *k)
{
    fota_privkey_free(k->priv);
    json_decref(k->obj);
    memset(k, 0, sizeof(*k));
}

static inline char *fx_hex_digest(fota_hash_alg alg, const void *data, size_t len)
{
    uint8_t d[FOTA_HASH_MAX_LEN];
    char *hex = malloc(2 * FOTA_HASH_MAX_LEN + 1);

    if (hex == NULL || fota_hash(alg, data, len, d) != FOTA_OK)
        abort();
    fota_hex_encode(d, fota_hash_len(alg), hex);
    return hex;
}

/* {"signatures":[...],"signed":sig} signed by each key (sig is borrowed). */
static inline json_t *fx_envelope(json_t *sig, struct fx_key *const *keys, size_t n)
{
    json_t *env = json_pack("{s:[], s:O}", "signatures", "signed", sig);

    if (env == NULL)
        abort();
    for (size_t i = 0; i < n; i++)
        if (fota_tuf_sign(env, keys[i]->priv, keys[i]->id) != FOTA_OK)
            abort();
    return env;
}

/* Serialised as a repository might write it: indented, not canonical, so
 * that storing "the bytes received" is observable. */
static inline char *fx_dump(const json_t *env, size_t *ret_len)
{
    char *s = json_dumps(env, JSON_INDENT(1) | JSON_PRESERVE_ORDER);

    if (s == NULL)
        abort();
    *ret_len = strlen(s);
    return s;
}

static inline json_t *fx_signed(const char *type, json_int_t version, const char *expires)
{
    json_t *s = json_pack("{s:s, s:s, s:I, s:s}", "_type", type, "spec_version", "1.0.31",
                          "version", version, "expires", expires);
    if (s == NULL)
        abort();
    return s;
}

/* Add the keys to root["keys"] and set root["roles"][role]. */
static inline void fx_root_role(json_t *root, const char *role, struct fx_key *const *keys,
                                size_t n, json_int_t threshold)
{
    json_t *ids = json_array();

    for (size_t i = 0; i < n; i++) {
        json_object_set(json_object_get(root, "keys"), keys[i]->id, keys[i]->obj);
        json_array_append_new(ids, json_string(keys[i]->id));
    }
    json_object_set_new(json_object_get(root, "roles"), role,
                        json_pack("{s:o, s:I}", "keyids", ids, "threshold", threshold));
}

/* Append a delegation to parent (a targets "signed"); paths or prefixes is
 * a NULL-terminated list. */
static inline json_t *fx_delegate(json_t *parent, const char *name, struct fx_key *const *keys,
                                  size_t n, json_int_t threshold, int terminating,
                                  const char *const *paths, const char *const *prefixes)
{
    json_t *del = json_object_get(parent, "delegations");
    json_t *ids = json_array(), *role, *list = json_array();

    if (del == NULL) {
        del = json_pack("{s:{}, s:[]}", "keys", "roles");
        json_object_set_new(parent, "delegations", del);
    }
    for (size_t i = 0; i < n; i++) {
        json_object_set(json_object_get(del, "keys"), keys[i]->id, keys[i]->obj);
        json_array_append_new(ids, json_string(keys[i]->id));
    }
    role = json_pack("{s:s, s:o, s:I, s:b}", "name", name, "keyids", ids, "threshold",
                     threshold, "terminating", terminating);
    for (const char *const *p = paths != NULL ? paths : prefixes; p != NULL && *p != NULL; p++)
        json_array_append_new(list, json_string(*p));
    json_object_set_new(role, paths != NULL ? "paths" : "path_hash_prefixes", list);
    json_array_append_new(json_object_get(del, "roles"), role);
    return role;
}

/* List a target of the given content (sha256 only). */
static inline void fx_add_target(json_t *targets_signed, const char *path, const char *content)
{
    char *hex = fx_hex_digest(FOTA_HASH_SHA256, content, strlen(content));

    json_object_set_new(json_object_get(targets_signed, "targets"), path,
                        json_pack("{s:I, s:{s:s}}", "length", (json_int_t)strlen(content),
                                  "hashes", "sha256", hex));
    free(hex);
}

/* ---- a whole repository ------------------------------------------------- */

#define FX_MAX_ROLES 16
#define FX_MAX_SIGNERS 4

struct fx_role {
    char name[128];
    json_t *sig;                            /* "signed" */
    struct fx_key *signers[FX_MAX_SIGNERS];
    size_t n_signers;
};

struct fx_repo {
    struct fx_mem *m;
    json_t *root;                           /* signed parts */
    json_t *ts;
    json_t *sn;
    struct fx_key *root_signers[FX_MAX_SIGNERS];
    size_t n_root_signers;
    struct fx_key *ts_signer;
    struct fx_key *sn_signer;
    struct fx_role roles[FX_MAX_ROLES];     /* roles[0] is "targets" */
    size_t n_roles;
    int sn_manual;      /* keep sn["meta"] as the test set it */
    int ts_manual;      /* keep ts["meta"] as the test set it */
    int sn_hashes;      /* put length and hashes into snapshot meta */
    int ts_hashes;      /* put length and hashes into timestamp meta */
};

static inline struct fx_role *fx_role(struct fx_repo *r, const char *name)
{
    for (size_t i = 0; i < r->n_roles; i++)
        if (strcmp(r->roles[i].name, name) == 0)
            return &r->roles[i];
    return NULL;
}

static inline struct fx_role *fx_add_role(struct fx_repo *r, const char *name, struct fx_key *signer)
{
    struct fx_role *role = &r->roles[r->n_roles++];

    snprintf(role->name, sizeof(role->name), "%s", name);
    role->sig = fx_signed("targets", 1, FX_FUTURE);
    json_object_set_new(role->sig, "targets", json_object());
    role->signers[0] = signer;
    role->n_signers = 1;
    return role;
}

static inline json_int_t fx_version(const json_t *sig)
{
    return json_integer_value(json_object_get(sig, "version"));
}

static inline void fx_set_version(json_t *sig, json_int_t v)
{
    json_object_set_new(sig, "version", json_integer(v));
}

static inline void fx_set_expires(json_t *sig, const char *expires)
{
    json_object_set_new(sig, "expires", json_string(expires));
}

/* Sign sig with keys and put it on the remote under each non-NULL name. */
static inline void fx_publish_as(struct fx_repo *r, json_t *sig, struct fx_key *const *keys,
                                 size_t n, const char *name1, const char *name2, char **ret_bytes,
                                 size_t *ret_len)
{
    json_t *env = fx_envelope(sig, keys, n);
    size_t len;
    char *s = fx_dump(env, &len);

    if (name1 != NULL)
        fx_put(&r->m->remote, name1, s, len);
    if (name2 != NULL)
        fx_put(&r->m->remote, name2, s, len);
    json_decref(env);
    if (ret_bytes != NULL) {
        *ret_bytes = s;
        *ret_len = len;
    } else {
        free(s);
    }
}

static inline json_t *fx_metafile(json_int_t version, int with_hashes, const char *bytes,
                                  size_t len)
{
    json_t *mf = json_pack("{s:I}", "version", version);

    if (with_hashes) {
        char *hex = fx_hex_digest(FOTA_HASH_SHA256, bytes, len);
        json_object_set_new(mf, "length", json_integer((json_int_t)len));
        json_object_set_new(mf, "hashes", json_pack("{s:s}", "sha256", hex));
        free(hex);
    }
    return mf;
}

/* Publish the current root as "<v>.root.json". */
static inline void fx_publish_root(struct fx_repo *r)
{
    char name[64];

    snprintf(name, sizeof(name), "%lld.root.json", (long long)fx_version(r->root));
    fx_publish_as(r, r->root, r->root_signers, r->n_root_signers, name, NULL, NULL, NULL);
}

/* Publish every targets role, then snapshot, then timestamp. */
static inline void fx_publish(struct fx_repo *r)
{
    json_t *meta = json_object();

    for (size_t i = 0; i < r->n_roles; i++) {
        struct fx_role *role = &r->roles[i];
        char enc[512], n1[600], n2[600], key[200];
        char *bytes;
        size_t len;

        if (fota_tuf_encode_name(role->name, enc, sizeof(enc)) != FOTA_OK)
            abort();
        snprintf(n1, sizeof(n1), "%lld.%s.json", (long long)fx_version(role->sig), enc);
        snprintf(n2, sizeof(n2), "%s.json", enc);
        fx_publish_as(r, role->sig, role->signers, role->n_signers, n1, n2, &bytes, &len);
        snprintf(key, sizeof(key), "%s.json", role->name);
        json_object_set_new(meta, key, fx_metafile(fx_version(role->sig), r->sn_hashes, bytes,
                                                   len));
        free(bytes);
    }
    if (!r->sn_manual)
        json_object_set(r->sn, "meta", meta);
    json_decref(meta);
    {
        char n1[64], *bytes;
        size_t len;

        snprintf(n1, sizeof(n1), "%lld.snapshot.json", (long long)fx_version(r->sn));
        fx_publish_as(r, r->sn, &r->sn_signer, 1, n1, "snapshot.json", &bytes, &len);
        if (!r->ts_manual)
            json_object_set_new(r->ts, "meta",
                                json_pack("{s:o}", "snapshot.json",
                                          fx_metafile(fx_version(r->sn), r->ts_hashes, bytes,
                                                      len)));
        free(bytes);
    }
    fx_publish_as(r, r->ts, &r->ts_signer, 1, "timestamp.json", NULL, NULL, NULL);
}

/*
 * The standard repository: root v1 (keys[0], threshold 1, consistent
 * snapshots), timestamp keys[1], snapshot keys[2], targets keys[3]; targets
 * v1 lists "file1.txt" ("hello"). Root v1 is installed as the trusted root.
 */
static inline void fx_repo_init(struct fx_repo *r, struct fx_mem *m, struct fx_key *keys)
{
    struct fx_key *k0 = &keys[0], *k1 = &keys[1], *k2 = &keys[2], *k3 = &keys[3];

    memset(r, 0, sizeof(*r));
    r->m = m;
    r->root = fx_signed("root", 1, FX_FUTURE);
    json_object_set_new(r->root, "consistent_snapshot", json_true());
    json_object_set_new(r->root, "keys", json_object());
    json_object_set_new(r->root, "roles", json_object());
    fx_root_role(r->root, "root", &k0, 1, 1);
    fx_root_role(r->root, "timestamp", &k1, 1, 1);
    fx_root_role(r->root, "snapshot", &k2, 1, 1);
    fx_root_role(r->root, "targets", &k3, 1, 1);
    r->root_signers[0] = k0;
    r->n_root_signers = 1;
    r->ts_signer = k1;
    r->sn_signer = k2;
    r->ts = fx_signed("timestamp", 1, FX_FUTURE);
    r->sn = fx_signed("snapshot", 1, FX_FUTURE);
    fx_add_role(r, "targets", k3);
    fx_add_target(r->roles[0].sig, "file1.txt", "hello");
    fx_publish_root(r);
    fx_put(&m->local, "root.json", fx_find(&m->remote, "1.root.json")->data,
           fx_find(&m->remote, "1.root.json")->len);
    fx_publish(r);
}

static inline void fx_repo_free(struct fx_repo *r)
{
    json_decref(r->root);
    json_decref(r->ts);
    json_decref(r->sn);
    for (size_t i = 0; i < r->n_roles; i++)
        json_decref(r->roles[i].sig);
    memset(r, 0, sizeof(*r));
}

#endif
