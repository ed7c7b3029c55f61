/* SPDX-License-Identifier: Apache-2.0 */
#include "fuzz_tuf.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"
#include "tuf_fixture.h"

#define FZ_TUF_INPUT_MAX (1u << 20)
#define FZ_TUF_ROLES 4

/* Keys that re-sign fuzzed documents: every key the fixture's roles name. */
static const char *const all_keys[] = {
    "root", "root2", "targets", "snapshot", "timestamp", "delegated",
};
#define N_ALL_KEYS (sizeof(all_keys) / sizeof(all_keys[0]))

static struct fx_files base[FZ_TUF_ROLES];
static int base_ready[FZ_TUF_ROLES];
static uint8_t *trusted_root;
static size_t trusted_root_len;

/* Sign env["signed"] with the named fixture keys (signatures replaced).
 * FOTA_OK, or why signing failed: a "signed" with a real number has no
 * canonical form (FOTA_E_UNSUPPORTED), so a fuzzed one may not sign. */
static fota_err sign_with(json_t *env, const char *const *names, size_t n)
{
    fota_err err = FOTA_OK;

    json_object_set_new(env, "signatures", json_array());
    for (size_t i = 0; i < n && err == FOTA_OK; i++) {
        const fota_privkey *k = fz_fixture_key(names[i]);
        json_t *obj = NULL;
        char id[FOTA_TUF_KEYID_HEX_LEN + 1];

        if (fota_tuf_key_json(k, &obj) != FOTA_OK || fota_tuf_keyid(obj, id) != FOTA_OK)
            fz_fail("fixture key %s has no key id", names[i]);
        err = fota_tuf_sign(env, k, id);
        json_decref(obj);
    }
    return err;
}

static char *dump(const json_t *v, size_t *ret_len)
{
    char *s = json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS);

    if (s == NULL)
        fz_fail("json_dumps failed");
    *ret_len = strlen(s);
    return s;
}

/* The fixture file name in base, re-signed by key with its meta entries'
 * "length" and "hashes" removed; stored under each of the names. */
static void strip_meta(struct fx_files *f, const char *name, const char *key, const char *name2)
{
    struct fx_blob *b = fx_find(f, name);
    json_t *env = NULL, *meta;
    const char *k;
    json_t *entry;
    char *s;
    size_t len;

    if (b == NULL || fota_json_parse(b->data, b->len, b->len, FOTA_JSON_MAX_DEPTH, &env) !=
                         FOTA_OK)
        fz_fail("fixture %s missing or unreadable", name);
    meta = json_object_get(json_object_get(env, "signed"), "meta");
    json_object_foreach(meta, k, entry) {
        json_object_del(entry, "length");
        json_object_del(entry, "hashes");
    }
    if (sign_with(env, &key, 1) != FOTA_OK)
        fz_fail("cannot re-sign fixture %s", name);
    s = dump(env, &len);
    fx_put(f, name, s, len);
    if (name2 != NULL)
        fx_put(f, name2, s, len);
    free(s);
    json_decref(env);
}

static void base_init(enum fz_tuf_role role)
{
    struct fx_files *f = &base[role];
    DIR *d;
    struct dirent *e;

    if (base_ready[role])
        return;
    if (trusted_root == NULL)
        trusted_root = fz_fixture_read("repo/metadata/1.root.json", &trusted_root_len);
    d = opendir(fz_fixture_path("repo/metadata"));
    if (d == NULL)
        fz_fail("no fixture repository: run fuzz/make_corpus.sh");
    while ((e = readdir(d)) != NULL) {
        char rel[600];
        uint8_t *buf;
        size_t len;

        if (e->d_name[0] == '.' || strlen(e->d_name) > 400)
            continue;
        snprintf(rel, sizeof(rel), "repo/metadata/%s", e->d_name);
        buf = fz_fixture_read(rel, &len);
        fx_put(f, e->d_name, buf, len);
        free(buf);
    }
    closedir(d);
    if (role == FZ_TUF_TARGETS)
        strip_meta(f, "1.snapshot.json", "snapshot", "snapshot.json");
    if (role == FZ_TUF_SNAPSHOT || role == FZ_TUF_TARGETS)
        strip_meta(f, "timestamp.json", "timestamp", NULL);
    base_ready[role] = 1;
}

/* The input's "signed" re-signed with every fixture key; NULL when the
 * input is not a strict JSON object with a "signed" object. */
static char *resign(const uint8_t *data, size_t size, size_t *ret_len)
{
    json_t *v = NULL, *env;
    char *s = NULL;

    if (fota_json_parse(data, size, FZ_TUF_INPUT_MAX, FOTA_JSON_MAX_DEPTH, &v) != FOTA_OK)
        return NULL;
    if (json_is_object(json_object_get(v, "signed"))) {
        env = json_pack("{s:O}", "signed", json_object_get(v, "signed"));
        if (env == NULL)
            fz_fail("out of memory");
        if (sign_with(env, all_keys, N_ALL_KEYS) == FOTA_OK)
            s = dump(env, ret_len);
        json_decref(env);
    }
    json_decref(v);
    return s;
}

static const char *const lookups[] = {
    "fw/board-a-1.0.0.img", "fota/director.json", "team-a/t.bin", "team-a/none",
    "team-b/x.img", "team-b/1/x", "fw/board-a-2.0.0.img", "no/such/target",
};

/* Targets named by a fuzzed targets document, looked up too. */
static void lookup_named(fota_tuf_client *c, const uint8_t *data, size_t size)
{
    json_t *v = NULL;
    const char *path;
    json_t *t;
    int n = 0;

    if (fota_json_parse(data, size, FZ_TUF_INPUT_MAX, FOTA_JSON_MAX_DEPTH, &v) != FOTA_OK)
        return;
    json_object_foreach(json_object_get(json_object_get(v, "signed"), "targets"), path, t) {
        struct fota_tuf_target tt;
        if (n++ == 4)
            break;
        fz_note("  find %s: %s", path, fota_strerror(fota_tuf_find_target(c, path, &tt)));
    }
    json_decref(v);
}

static void check_target(const struct fota_tuf_target *t)
{
    static const char content[] = "hello\n";
    struct fota_tuf_target_check ck;

    if (t->n_hashes < 1 || t->n_hashes > FOTA_TUF_MAX_HASHES || t->path == NULL ||
        t->role == NULL)
        fz_fail("a found target without hashes, path or role");
    if (fota_tuf_target_check_init(&ck, t) != FOTA_OK)
        return;
    if (fota_tuf_target_check_update(&ck, content, sizeof(content) - 1) == FOTA_OK)
        (void)fota_tuf_target_check_final(&ck);
    else
        fota_tuf_target_check_abort(&ck);
}

/* One client run over m; FOTA_OK when the refresh succeeded. */
static fota_err refresh_once(struct fx_mem *m, const uint8_t *data, size_t size, int lookup)
{
    struct fota_tuf_port port = fx_port(m);
    fota_tuf_client *c = NULL;
    fota_err err;

    fx_new_run(m);
    err = fota_tuf_client_new(&port, NULL, &c);
    if (err != FOTA_OK) {
        fz_note("client_new: %s", fota_strerror(err));
        return err;
    }
    err = fota_tuf_refresh(c);
    fz_note("refresh: %s %s", fota_strerror(err), fota_tuf_errmsg(c));
    if (err == FOTA_OK && lookup) {
        for (size_t i = 0; i < sizeof(lookups) / sizeof(lookups[0]); i++) {
            struct fota_tuf_target t;
            fota_err e = fota_tuf_find_target(c, lookups[i], &t);
            fz_note("  find %s: %s", lookups[i], fota_strerror(e));
            if (e == FOTA_OK)
                check_target(&t);
        }
        if (data != NULL)
            lookup_named(c, data, size);
        (void)fota_tuf_consistent_snapshot(c);
        (void)fota_tuf_version(c, "root");
        (void)fota_tuf_version(c, "timestamp");
        (void)fota_tuf_version(c, "snapshot");
        (void)fota_tuf_version(c, "targets");
    }
    fota_tuf_client_free(c);
    return err;
}

enum place { REMOTE, REMOTE_DELEGATED, TRUSTED };

static void run_one(enum fz_tuf_role role, enum place where, const void *doc, size_t len,
                    const uint8_t *data, size_t size)
{
    static const char *const remote_names[FZ_TUF_ROLES][2] = {
        {"2.root.json", NULL},
        {"timestamp.json", NULL},
        {"1.snapshot.json", "snapshot.json"},
        {"1.targets.json", "targets.json"},
    };
    static const char *const trusted_names[FZ_TUF_ROLES] = {
        "root.json", "timestamp.json", "snapshot.json", "targets.json",
    };
    struct fx_mem m;
    struct fx_files *b = &base[role];

    memset(&m, 0, sizeof(m));
    m.now = FZ_NOW;
    m.verbose = 0;
    for (size_t i = 0; i < b->n; i++)
        fx_put(&m.remote, b->v[i].name, b->v[i].data, b->v[i].len);
    fx_put(&m.local, "root.json", trusted_root, trusted_root_len);
    switch (where) {
    case REMOTE:
        for (int i = 0; i < 2; i++) {
            if (remote_names[role][i] != NULL)
                fx_put(&m.remote, remote_names[role][i], doc, len);
        }
        break;
    case REMOTE_DELEGATED:
        fx_put(&m.remote, "1.team-a.json", doc, len);
        fx_put(&m.remote, "team-a.json", doc, len);
        break;
    case TRUSTED:
        fx_put(&m.local, trusted_names[role], doc, len);
        break;
    }
    if (refresh_once(&m, data, size, 1) == FOTA_OK) {
        /* What the client stored is what it trusts: a restart over it
         * against the same repository must refresh again. */
        fota_err again = refresh_once(&m, NULL, 0, 0);
        if (again != FOTA_OK)
            fz_fail("refresh succeeded, then failed over its own stored state: %s",
                    fota_strerror(again));
    }
    fx_mem_free(&m);
}

void fz_tuf_run(enum fz_tuf_role role, const uint8_t *data, size_t size)
{
    char *signed_doc;
    size_t signed_len = 0;

    if (size > FZ_TUF_INPUT_MAX)
        return;
    base_init(role);
    run_one(role, REMOTE, data, size, data, size);
    run_one(role, TRUSTED, data, size, data, size);
    signed_doc = resign(data, size, &signed_len);
    if (signed_doc != NULL) {
        run_one(role, REMOTE, signed_doc, signed_len, data, size);
        if (role == FZ_TUF_TARGETS)
            run_one(role, REMOTE_DELEGATED, signed_doc, signed_len, data, size);
        free(signed_doc);
    }
}
