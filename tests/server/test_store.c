/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The storage layer of fota-server (server/store*.h, SQLite backend): every
 * function, the migration from an empty file (twice), replay refusal,
 * paging cursors, the rollout advance guard under two concurrent
 * connections, cross-connection visibility, constraint errors and
 * all-or-nothing transactions. Ends with a micro-benchmark of the check-in
 * path (printed, not asserted).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "store.h"
#include "store_audit.h"
#include "store_devices.h"
#include "store_meta.h"
#include "store_releases.h"
#include "store_rollouts.h"
#include "store_tokens.h"

/* ---- fixture: a fresh database file in a temp dir per test ---------------- */

struct fx {
    char dir[256];
    char path[300];
    struct fota_store *st;
};

static int setup(void **state)
{
    struct fx *fx = calloc(1, sizeof(*fx));

    assert_non_null(fx);
    snprintf(fx->dir, sizeof(fx->dir), "/tmp/fota-store-test-XXXXXX");
    assert_non_null(mkdtemp(fx->dir));
    snprintf(fx->path, sizeof(fx->path), "%s/fota.db", fx->dir);
    assert_int_equal(fota_store_open(fx->path, &fx->st), FOTA_STORE_OK);
    *state = fx;
    return 0;
}

static void rm_dir(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    char p[600];

    if (d == NULL)
        return;
    for (;;) {
        e = readdir(d);
        if (e == NULL)
            break;
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        snprintf(p, sizeof(p), "%s/%s", dir, e->d_name);
        unlink(p);
    }
    closedir(d);
    rmdir(dir);
}

static int teardown(void **state)
{
    struct fx *fx = *state;

    fota_store_close(fx->st);
    rm_dir(fx->dir);
    free(fx);
    return 0;
}

/* ---- helpers --------------------------------------------------------------- */

static void make_id(char *out, size_t cap, int i)
{
    snprintf(out, cap, "dev%05d", i);
}

static void enrol(struct fota_store *st, const char *id, const char *hw, const char *version,
                  enum fota_store_device_status status, int64_t counter)
{
    struct fota_store_device d;
    int created = -1;

    memset(&d, 0, sizeof(d));
    snprintf(d.id, sizeof(d.id), "%s", id);
    snprintf(d.hardware_id, sizeof(d.hardware_id), "%s", hw);
    snprintf(d.version, sizeof(d.version), "%s", version);
    d.key_json = (char *)"{\"keytype\":\"ed25519\",\"keyval\":{\"public\":\"00\"}}";
    d.status = status;
    d.security_counter = counter;
    d.stored_counter = counter;
    d.created = 100;
    assert_int_equal(fota_store_device_enrol(st, &d, NULL, &created), FOTA_STORE_OK);
    assert_int_equal(created, 1);
}

static void add_release(struct fota_store *st, const char *id, const char *target,
                        const char *version, int64_t counter, const char *hw, int64_t created)
{
    struct fota_store_release r;

    memset(&r, 0, sizeof(r));
    snprintf(r.id, sizeof(r.id), "%s", id);
    snprintf(r.target_name, sizeof(r.target_name), "%s", target);
    r.length = 1234;
    memset(r.sha256, 'a', FOTA_STORE_SHA256_HEX);
    r.sha256[0] = (char)('0' + (created % 10));
    snprintf(r.version, sizeof(r.version), "%s", version);
    r.security_counter = counter;
    r.targets_version = 2;
    r.created = created;
    r.hardware_id_count = 1;
    snprintf(r.hardware_ids[0], sizeof(r.hardware_ids[0]), "%s", hw);
    assert_int_equal(fota_store_release_insert(st, &r), FOTA_STORE_OK);
}

static void rollout_template(struct fota_store_rollout *r, const char *id, const char *release,
                             int64_t created)
{
    memset(r, 0, sizeof(*r));
    snprintf(r->id, sizeof(r->id), "%s", id);
    snprintf(r->release_id, sizeof(r->release_id), "%s", release);
    r->state = FOTA_STORE_ROLLOUT_ACTIVE;
    r->wave_count = 3;
    r->waves[0] = 5;
    r->waves[1] = 25;
    r->waves[2] = 100;
    r->success_threshold = 0.9;
    r->failure_limit = 0.1;
    snprintf(r->created_by, sizeof(r->created_by), "ops");
    r->created = created;
    r->group_json = (char *)"{\"hardware_id\":\"hw-a\"}";
}

/* ---- core ----------------------------------------------------------------- */

static void test_open_migrate_twice(void **state)
{
    struct fx *fx = *state;
    struct fota_store *again = NULL;
    int64_t v = -1;

    assert_int_equal(fota_store_schema_version(fx->st, &v), FOTA_STORE_OK);
    assert_int_equal(v, fota_store_schema_latest());
    assert_true(v >= 1);
    /* A second open of the same file applies nothing and agrees. */
    fota_store_close(fx->st);
    fx->st = NULL;
    assert_int_equal(fota_store_open(fx->path, &again), FOTA_STORE_OK);
    assert_int_equal(fota_store_schema_version(again, &v), FOTA_STORE_OK);
    assert_int_equal(v, fota_store_schema_latest());
    fx->st = again;

    assert_int_equal(fota_store_open(NULL, &again), FOTA_STORE_INVALID);
    assert_int_equal(fota_store_open("", &again), FOTA_STORE_INVALID);
    assert_int_equal(fota_store_open("/nonexistent-dir-fota/x.db", &again), FOTA_STORE_ERROR);
    assert_string_equal(fota_store_strerror(FOTA_STORE_CONFLICT), "conflict");
    assert_string_equal(fota_store_strerror(FOTA_STORE_INVALID), "invalid");
}

struct open_arg {
    const char *path;
    enum fota_store_err err;
    int64_t version;
};

static void *open_thread(void *p)
{
    struct open_arg *a = p;
    struct fota_store *st = NULL;

    a->err = fota_store_open(a->path, &st);
    if (a->err == FOTA_STORE_OK)
        a->err = fota_store_schema_version(st, &a->version);
    fota_store_close(st);
    return NULL;
}

static void test_concurrent_first_open(void **state)
{
    struct fx *fx = *state;
    struct open_arg args[4];
    pthread_t th[4];
    char path[320];
    int i;

    /* Four connections racing to create and migrate one fresh file. */
    snprintf(path, sizeof(path), "%s/race.db", fx->dir);
    for (i = 0; i < 4; i++) {
        args[i].path = path;
        args[i].err = FOTA_STORE_ERROR;
        args[i].version = -1;
        assert_int_equal(pthread_create(&th[i], NULL, open_thread, &args[i]), 0);
    }
    for (i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(args[i].err, FOTA_STORE_OK);
        assert_int_equal(args[i].version, fota_store_schema_latest());
    }
}

static void test_newer_schema_refused(void **state)
{
    struct fx *fx = *state;
    struct fota_store *st = NULL;
    char *msg = NULL;
    char sql[128];
    sqlite3 *db = NULL;

    /* A file migrated by a newer build: this build must not touch it. */
    assert_int_equal(sqlite3_open(fx->path, &db), SQLITE_OK);
    snprintf(sql, sizeof(sql), "INSERT INTO schema_version VALUES (%lld, 0)",
             (long long)fota_store_schema_latest() + 1);
    assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, &msg), SQLITE_OK);
    sqlite3_close(db);
    assert_int_equal(fota_store_open(fx->path, &st), FOTA_STORE_STATE);
    assert_null(st);
}

static void test_transactions(void **state)
{
    struct fx *fx = *state;
    struct fota_store *st = fx->st;
    uint8_t buf[16];
    size_t len = 0;

    assert_int_equal(fota_store_commit(st), FOTA_STORE_STATE);
    assert_int_equal(fota_store_rollback(st), FOTA_STORE_STATE);
    assert_false(fota_store_in_transaction(st));

    /* Rolled back: nothing stays. */
    assert_int_equal(fota_store_begin(st), FOTA_STORE_OK);
    assert_true(fota_store_in_transaction(st));
    assert_int_equal(fota_store_meta_set(st, "a", "1", 1), FOTA_STORE_OK);
    assert_int_equal(fota_store_rollback(st), FOTA_STORE_OK);
    assert_int_equal(fota_store_meta_get(st, "a", buf, sizeof(buf), &len), FOTA_STORE_NOT_FOUND);

    /* Nested: the inner rollback drops only the inner write. */
    assert_int_equal(fota_store_begin(st), FOTA_STORE_OK);
    assert_int_equal(fota_store_meta_set(st, "outer", "o", 1), FOTA_STORE_OK);
    assert_int_equal(fota_store_begin(st), FOTA_STORE_OK);
    assert_int_equal(fota_store_meta_set(st, "inner", "i", 1), FOTA_STORE_OK);
    assert_int_equal(fota_store_rollback(st), FOTA_STORE_OK);
    assert_true(fota_store_in_transaction(st));
    assert_int_equal(fota_store_begin(st), FOTA_STORE_OK);
    assert_int_equal(fota_store_meta_set(st, "inner2", "j", 1), FOTA_STORE_OK);
    assert_int_equal(fota_store_commit(st), FOTA_STORE_OK);
    assert_int_equal(fota_store_commit(st), FOTA_STORE_OK);
    assert_false(fota_store_in_transaction(st));
    assert_int_equal(fota_store_meta_get(st, "outer", buf, sizeof(buf), &len), FOTA_STORE_OK);
    assert_int_equal(fota_store_meta_get(st, "inner", buf, sizeof(buf), &len),
                     FOTA_STORE_NOT_FOUND);
    assert_int_equal(fota_store_meta_get(st, "inner2", buf, sizeof(buf), &len), FOTA_STORE_OK);

    /* A domain function with its own transaction inside the caller's:
     * rolled back with the caller's. */
    enrol(st, "devtx", "hw-a", "1.0.0", FOTA_STORE_DEVICE_ACCEPTED, 1);
    assert_int_equal(fota_store_begin(st), FOTA_STORE_OK);
    {
        const char *add[] = { "x" };
        assert_int_equal(fota_store_device_tags(st, "devtx", add, 1, NULL, 0), FOTA_STORE_OK);
    }
    assert_int_equal(fota_store_rollback(st), FOTA_STORE_OK);
    {
        struct fota_store_device d;
        assert_int_equal(fota_store_device_get(st, "devtx", &d), FOTA_STORE_OK);
        assert_string_equal(d.tags_json, "[]");
        fota_store_device_clear(&d);
    }
}

/* ---- meta ----------------------------------------------------------------- */

static void test_meta(void **state)
{
    struct fx *fx = *state;
    struct fota_store *st = fx->st, *other = NULL;
    uint8_t buf[64], small[2];
    size_t len = 0;
    static const uint8_t bin[5] = { 0, 1, 2, 0, 255 };
    char longkey[FOTA_STORE_META_KEY_MAX + 2];

    assert_int_equal(fota_store_meta_get(st, "k", buf, sizeof(buf), &len), FOTA_STORE_NOT_FOUND);
    assert_int_equal(fota_store_meta_set(st, "k", bin, sizeof(bin)), FOTA_STORE_OK);
    assert_int_equal(fota_store_meta_get(st, "k", buf, sizeof(buf), &len), FOTA_STORE_OK);
    assert_int_equal(len, sizeof(bin));
    assert_memory_equal(buf, bin, sizeof(bin));
    len = 99;
    assert_int_equal(fota_store_meta_get(st, "k", small, sizeof(small), &len), FOTA_STORE_ERROR);
    assert_int_equal(len, 99);   /* untouched on failure */
    assert_int_equal(fota_store_meta_set(st, "k", "xy", 2), FOTA_STORE_OK);
    assert_int_equal(fota_store_meta_get(st, "k", buf, sizeof(buf), &len), FOTA_STORE_OK);
    assert_int_equal(len, 2);
    assert_int_equal(fota_store_meta_set(st, "empty", NULL, 0), FOTA_STORE_OK);
    assert_int_equal(fota_store_meta_get(st, "empty", buf, sizeof(buf), &len), FOTA_STORE_OK);
    assert_int_equal(len, 0);

    /* First writer wins. */
    assert_int_equal(fota_store_meta_insert_or_get(st, "once", "first", 5, buf, sizeof(buf), &len),
                     FOTA_STORE_OK);
    assert_int_equal(fota_store_meta_insert_or_get(st, "once", "second", 6, buf, sizeof(buf),
                                                   &len), FOTA_STORE_OK);
    assert_int_equal(len, 5);
    assert_memory_equal(buf, "first", 5);

    /* Compare-and-set. */
    assert_int_equal(fota_store_meta_cas(st, "k", "xy", 2, "zz", 2), FOTA_STORE_OK);
    assert_int_equal(fota_store_meta_cas(st, "k", "xy", 2, "ww", 2), FOTA_STORE_CONFLICT);
    assert_int_equal(fota_store_meta_cas(st, "nokey", "xy", 2, "ww", 2), FOTA_STORE_NOT_FOUND);
    assert_int_equal(fota_store_meta_get(st, "k", buf, sizeof(buf), &len), FOTA_STORE_OK);
    assert_memory_equal(buf, "zz", 2);

    assert_int_equal(fota_store_meta_delete(st, "k"), FOTA_STORE_OK);
    assert_int_equal(fota_store_meta_delete(st, "k"), FOTA_STORE_OK);
    assert_int_equal(fota_store_meta_get(st, "k", buf, sizeof(buf), &len), FOTA_STORE_NOT_FOUND);

    memset(longkey, 'k', sizeof(longkey) - 1);
    longkey[sizeof(longkey) - 1] = '\0';
    assert_int_equal(fota_store_meta_set(st, longkey, "x", 1), FOTA_STORE_INVALID);
    assert_int_equal(fota_store_meta_set(st, "", "x", 1), FOTA_STORE_INVALID);
    assert_int_equal(fota_store_meta_set(st, "big", buf, FOTA_STORE_META_VALUE_MAX + 1),
                     FOTA_STORE_INVALID);

    /* The token secret: two connections (two processes) agree on one. */
    {
        uint8_t c1[32], c2[32], s1[32], s2[32];
        memset(c1, 0x11, sizeof(c1));
        memset(c2, 0x22, sizeof(c2));
        assert_int_equal(fota_store_open(fx->path, &other), FOTA_STORE_OK);
        assert_int_equal(fota_store_token_secret(st, c1, s1), FOTA_STORE_OK);
        assert_int_equal(fota_store_token_secret(other, c2, s2), FOTA_STORE_OK);
        assert_memory_equal(s1, c1, 32);
        assert_memory_equal(s2, c1, 32);
        fota_store_close(other);
    }
}

static void test_tuf_state(void **state)
{
    struct fx *fx = *state;
    struct fota_store *st = fx->st;
    struct fota_store_tuf_state s = { 1, 1, 1, 1, 1000, 2000, 10 }, cur, next, stale;

    assert_int_equal(fota_store_tuf_get(st, &cur), FOTA_STORE_NOT_FOUND);
    assert_int_equal(fota_store_tuf_set(st, &s, &s), FOTA_STORE_NOT_FOUND);
    assert_int_equal(fota_store_tuf_set(st, NULL, &s), FOTA_STORE_OK);
    assert_int_equal(fota_store_tuf_set(st, NULL, &s), FOTA_STORE_CONFLICT);
    assert_int_equal(fota_store_tuf_get(st, &cur), FOTA_STORE_OK);
    assert_memory_equal(&cur, &s, sizeof(s));
    /* Two renewers from the same state: the second loses. */
    next = s;
    next.timestamp_version = 2;
    next.timestamp_expires = 3000;
    stale = s;
    assert_int_equal(fota_store_tuf_set(st, &s, &next), FOTA_STORE_OK);
    next.timestamp_version = 2;
    assert_int_equal(fota_store_tuf_set(st, &stale, &next), FOTA_STORE_CONFLICT);
    assert_int_equal(fota_store_tuf_get(st, &cur), FOTA_STORE_OK);
    assert_int_equal(cur.timestamp_version, 2);
    assert_int_equal(cur.timestamp_expires, 3000);
}

/* ---- tokens --------------------------------------------------------------- */

static void test_tokens(void **state)
{
    struct fx *fx = *state;
    struct fota_store *st = fx->st;
    struct fota_store_token t, got, *items = NULL;
    enum fota_store_scope scope;
    size_t n = 0;
    int more = -1;

    memset(&t, 0, sizeof(t));
    memset(t.sha256, 'b', 64);
    snprintf(t.name, sizeof(t.name), "alice");
    t.scope = FOTA_STORE_SCOPE_DEPLOY;
    t.created = 10;
    t.expires = 1000;
    assert_int_equal(fota_store_token_insert(st, &t), FOTA_STORE_OK);
    assert_int_equal(fota_store_token_insert(st, &t), FOTA_STORE_CONFLICT);   /* same hash */
    t.sha256[0] = 'c';
    assert_int_equal(fota_store_token_insert(st, &t), FOTA_STORE_CONFLICT);   /* live name */
    t.sha256[0] = 'G';
    assert_int_equal(fota_store_token_insert(st, &t), FOTA_STORE_INVALID);    /* not hex */
    t.sha256[0] = 'c';
    t.scope = (enum fota_store_scope)9;
    assert_int_equal(fota_store_token_insert(st, &t), FOTA_STORE_INVALID);

    memset(&got, 0, sizeof(got));
    {
        char h[65];
        memset(h, 'b', 64);
        h[64] = '\0';
        assert_int_equal(fota_store_token_lookup(st, h, &got), FOTA_STORE_OK);
        assert_string_equal(got.name, "alice");
        assert_int_equal(got.scope, FOTA_STORE_SCOPE_DEPLOY);
        assert_int_equal(got.expires, 1000);
        assert_int_equal(got.revoked, 0);
        h[0] = 'c';
        assert_int_equal(fota_store_token_lookup(st, h, &got), FOTA_STORE_NOT_FOUND);
        assert_int_equal(fota_store_token_lookup(st, "short", &got), FOTA_STORE_INVALID);

        assert_int_equal(fota_store_token_revoke(st, "alice", 50), FOTA_STORE_OK);
        assert_int_equal(fota_store_token_revoke(st, "alice", 51), FOTA_STORE_NOT_FOUND);
        h[0] = 'b';
        assert_int_equal(fota_store_token_lookup(st, h, &got), FOTA_STORE_OK);
        assert_int_equal(got.revoked, 50);
    }
    /* A revoked token's name can be reused. */
    t.scope = FOTA_STORE_SCOPE_ADMIN;
    assert_int_equal(fota_store_token_insert(st, &t), FOTA_STORE_OK);

    assert_int_equal(fota_store_token_list(st, &items, &n, &more), FOTA_STORE_OK);
    assert_int_equal(n, 2);
    assert_int_equal(more, 0);
    assert_string_equal(items[0].name, "alice");
    free(items);

    assert_int_equal(fota_store_scope_parse("admin", &scope), FOTA_STORE_OK);
    assert_int_equal(scope, FOTA_STORE_SCOPE_ADMIN);
    assert_int_equal(fota_store_scope_parse("root", &scope), FOTA_STORE_INVALID);
    assert_string_equal(fota_store_scope_name(FOTA_STORE_SCOPE_READ), "read");
}

/* ---- devices -------------------------------------------------------------- */

/* Create a rollout and make it visible (fota_store_rollout_create stores it
 * hidden). */
static void create_visible(struct fota_store *st, const struct fota_store_rollout *r,
                           const struct fota_store_rollout_member *m, size_t n)
{
    assert_int_equal(fota_store_rollout_create(st, r, m, n), FOTA_STORE_OK);
    assert_int_equal(fota_store_rollout_reveal(st, r->id), FOTA_STORE_OK);
}

static void test_device_enrol_status(void **state)
{
    struct fx *fx = *state;
    struct fota_store *st = fx->st;
    struct fota_store_device d, got;
    int64_t counts[FOTA_STORE_DEVICE_STATUS_COUNT];
    enum fota_store_device_status s;
    int created = -1;

    memset(&d, 0, sizeof(d));
    snprintf(d.id, sizeof(d.id), "abc");
    snprintf(d.hardware_id, sizeof(d.hardware_id), "hw-a");
    snprintf(d.version, sizeof(d.version), "1.0.0");
    d.key_json = (char *)"{\"k\":1}";
    d.status = FOTA_STORE_DEVICE_PENDING;
    d.security_counter = 3;
    d.stored_counter = 3;
    d.created = 77;
    assert_int_equal(fota_store_device_enrol(st, &d, &got, &created), FOTA_STORE_OK);
    assert_int_equal(created, 1);
    assert_string_equal(got.id, "abc");
    assert_string_equal(got.key_json, "{\"k\":1}");
    assert_string_equal(got.slots_json, "[]");
    assert_string_equal(got.tags_json, "[]");
    assert_int_equal(got.status, FOTA_STORE_DEVICE_PENDING);
    assert_int_equal(got.security_counter, 3);
    assert_int_equal(got.created, 77);
    assert_int_equal(got.seq, 0);
    fota_store_device_clear(&got);

    /* Repeat enrolment: nothing changes, the current row comes back. */
    snprintf(d.version, sizeof(d.version), "9.9.9");
    d.status = FOTA_STORE_DEVICE_ACCEPTED;
    assert_int_equal(fota_store_device_enrol(st, &d, &got, &created), FOTA_STORE_OK);
    assert_int_equal(created, 0);
    assert_string_equal(got.version, "1.0.0");
    assert_int_equal(got.status, FOTA_STORE_DEVICE_PENDING);
    fota_store_device_clear(&got);

    d.key_json = NULL;
    assert_int_equal(fota_store_device_enrol(st, &d, &got, &created), FOTA_STORE_INVALID);
    d.key_json = (char *)"{}";
    d.security_counter = -1;
    assert_int_equal(fota_store_device_enrol(st, &d, &got, &created), FOTA_STORE_INVALID);

    assert_int_equal(fota_store_device_get(st, "nope", &got), FOTA_STORE_NOT_FOUND);

    /* Status changes with an expected-current mask. */
    assert_int_equal(fota_store_device_set_status(st, "abc", FOTA_STORE_DEVICE_ACCEPTED,
                                                  FOTA_STORE_DEVICE_BIT(FOTA_STORE_DEVICE_REJECTED),
                                                  200), FOTA_STORE_CONFLICT);
    assert_int_equal(fota_store_device_set_status(st, "abc", FOTA_STORE_DEVICE_ACCEPTED,
                                                  FOTA_STORE_DEVICE_BIT(FOTA_STORE_DEVICE_PENDING),
                                                  200), FOTA_STORE_OK);
    assert_int_equal(fota_store_device_set_status(st, "zzz", FOTA_STORE_DEVICE_ACCEPTED, 0, 200),
                     FOTA_STORE_NOT_FOUND);
    assert_int_equal(fota_store_device_set_status(st, "abc", (enum fota_store_device_status)7,
                                                  0, 200), FOTA_STORE_INVALID);
    assert_int_equal(fota_store_device_get(st, "abc", &got), FOTA_STORE_OK);
    assert_int_equal(got.status, FOTA_STORE_DEVICE_ACCEPTED);
    assert_int_equal(got.updated, 200);
    fota_store_device_clear(&got);

    enrol(st, "p1", "hw-a", "1.0.0", FOTA_STORE_DEVICE_PENDING, 1);
    enrol(st, "p2", "hw-a", "1.0.0", FOTA_STORE_DEVICE_PENDING, 1);
    enrol(st, "r1", "hw-a", "1.0.0", FOTA_STORE_DEVICE_REJECTED, 1);
    assert_int_equal(fota_store_device_counts(st, counts), FOTA_STORE_OK);
    assert_int_equal(counts[FOTA_STORE_DEVICE_PENDING], 2);
    assert_int_equal(counts[FOTA_STORE_DEVICE_ACCEPTED], 1);
    assert_int_equal(counts[FOTA_STORE_DEVICE_REJECTED], 1);
    assert_int_equal(counts[FOTA_STORE_DEVICE_DECOMMISSIONED], 0);

    assert_int_equal(fota_store_device_status_parse("decommissioned", &s), FOTA_STORE_OK);
    assert_int_equal(s, FOTA_STORE_DEVICE_DECOMMISSIONED);
    assert_int_equal(fota_store_device_status_parse("x", &s), FOTA_STORE_INVALID);
    assert_string_equal(fota_store_device_status_name(FOTA_STORE_DEVICE_REJECTED), "rejected");
}

static void test_device_session_replay(void **state)
{
    struct fx *fx = *state;
    struct fota_store *st = fx->st;
    struct fota_store_device got;

    enrol(st, "s1", "hw-a", "1.0.0", FOTA_STORE_DEVICE_PENDING, 1);
    assert_int_equal(fota_store_device_session(st, "s1", 5, 10), FOTA_STORE_STATE);
    assert_int_equal(fota_store_device_set_status(st, "s1", FOTA_STORE_DEVICE_ACCEPTED, 0, 1),
                     FOTA_STORE_OK);
    assert_int_equal(fota_store_device_session(st, "s1", 5, 10), FOTA_STORE_OK);
    assert_int_equal(fota_store_device_session(st, "s1", 5, 11), FOTA_STORE_CONFLICT);
    assert_int_equal(fota_store_device_session(st, "s1", 4, 11), FOTA_STORE_CONFLICT);
    assert_int_equal(fota_store_device_session(st, "s1", 6, 12), FOTA_STORE_OK);
    assert_int_equal(fota_store_device_session(st, "nope", 6, 12), FOTA_STORE_NOT_FOUND);
    assert_int_equal(fota_store_device_session(st, "s1", -1, 12), FOTA_STORE_INVALID);
    assert_int_equal(fota_store_device_get(st, "s1", &got), FOTA_STORE_OK);
    assert_int_equal(got.session_counter, 6);
    assert_int_equal(got.last_seen, 12);
    fota_store_device_clear(&got);
}

static void test_device_checkin(void **state)
{
    struct fx *fx = *state;
    struct fota_store *st = fx->st;
    struct fota_store_device got, after;
    struct fota_store_checkin c;

    enrol(st, "c1", "hw-a", "1.0.0", FOTA_STORE_DEVICE_PENDING, 2);
    memset(&c, 0, sizeof(c));
    c.id = "c1";
    c.seq = 1;
    c.now = 500;
    c.version = "1.1.0";
    c.security_counter = 3;
    c.confirmed = 0;
    c.slots_json = "[{\"slot\":0}]";
    /* Pending: refused, nothing stored. */
    assert_int_equal(fota_store_device_checkin(st, &c, &after), FOTA_STORE_STATE);
    assert_int_equal(fota_store_device_set_status(st, "c1", FOTA_STORE_DEVICE_ACCEPTED, 0, 1),
                     FOTA_STORE_OK);

    /* Trial boot of counter 3, not confirmed: stored counter stays 2. */
    memset(&after, 0x5a, sizeof(after));
    assert_int_equal(fota_store_device_checkin(st, &c, &after), FOTA_STORE_OK);
    assert_string_equal(after.version, "1.1.0");
    assert_int_equal(after.seq, 1);
    assert_int_equal(after.security_counter, 3);
    assert_int_equal(after.stored_counter, 2);
    assert_int_equal(after.last_fresh, 500);
    assert_int_equal(after.status, FOTA_STORE_DEVICE_ACCEPTED);
    assert_string_equal(after.hardware_id, "hw-a");
    assert_null(after.key_json);
    assert_null(after.slots_json);

    /* Replays (equal or lower seq) refused, row unchanged. */
    c.now = 600;
    c.version = "6.6.6";
    assert_int_equal(fota_store_device_checkin(st, &c, NULL), FOTA_STORE_CONFLICT);
    c.seq = 0;
    assert_int_equal(fota_store_device_checkin(st, &c, NULL), FOTA_STORE_CONFLICT);
    assert_int_equal(fota_store_device_get(st, "c1", &got), FOTA_STORE_OK);
    assert_string_equal(got.version, "1.1.0");
    assert_int_equal(got.last_seen, 500);
    assert_string_equal(got.slots_json, "[{\"slot\":0}]");
    fota_store_device_clear(&got);

    /* Confirmed: stored counter = max(stored, running); slots kept when NULL. */
    c.seq = 2;
    c.version = "1.1.0";
    c.confirmed = 1;
    c.slots_json = NULL;
    assert_int_equal(fota_store_device_checkin(st, &c, &after), FOTA_STORE_OK);
    assert_int_equal(after.stored_counter, 3);
    /* A rolled-back device reports the old version and counter: the stored
     * counter never goes down. */
    c.seq = 3;
    c.version = "1.0.0";
    c.security_counter = 2;
    assert_int_equal(fota_store_device_checkin(st, &c, &after), FOTA_STORE_OK);
    assert_int_equal(after.stored_counter, 3);
    assert_int_equal(after.security_counter, 2);
    assert_string_equal(after.version, "1.0.0");
    assert_int_equal(fota_store_device_get(st, "c1", &got), FOTA_STORE_OK);
    assert_string_equal(got.slots_json, "[{\"slot\":0}]");
    fota_store_device_clear(&got);

    c.id = "nope";
    assert_int_equal(fota_store_device_checkin(st, &c, NULL), FOTA_STORE_NOT_FOUND);
    c.id = "c1";
    c.version = NULL;
    assert_int_equal(fota_store_device_checkin(st, &c, NULL), FOTA_STORE_INVALID);

    /* Reports share the seq. */
    assert_int_equal(fota_store_device_seq(st, "c1", 3, 700), FOTA_STORE_CONFLICT);
    assert_int_equal(fota_store_device_seq(st, "c1", 4, 700), FOTA_STORE_OK);
    assert_int_equal(fota_store_device_seq(st, "c1", 4, 701), FOTA_STORE_CONFLICT);
    assert_int_equal(fota_store_device_seq(st, "zz", 9, 701), FOTA_STORE_NOT_FOUND);
    assert_int_equal(fota_store_device_set_status(st, "c1", FOTA_STORE_DEVICE_DECOMMISSIONED, 0, 2),
                     FOTA_STORE_OK);
    assert_int_equal(fota_store_device_seq(st, "c1", 9, 701), FOTA_STORE_STATE);

    {
        int64_t n = -1;
        assert_int_equal(fota_store_device_count_stale(st, 10000, &n), FOTA_STORE_OK);
        assert_int_equal(n, 0);   /* decommissioned devices are not "frozen" */
    }
}

#define NDEV 2500

static int dev_status(int i)  { return i % 7 == 0 ? FOTA_STORE_DEVICE_PENDING : FOTA_STORE_DEVICE_ACCEPTED; }
static const char *dev_hw(int i) { static const char *hw[] = { "hw-a", "hw-b", "hw-c" }; return hw[i % 3]; }
static const char *dev_ver(int i) { return i % 5 == 0 ? "1.1.0" : "1.0.0"; }
static int dev_tagged(int i) { return i % 4 == 0; }
static int64_t dev_fresh(int i) { return dev_status(i) == FOTA_STORE_DEVICE_ACCEPTED ? 1000 + i : 0; }

static void fleet(struct fota_store *st)
{
    char id[32];
    int i;

    assert_int_equal(fota_store_begin(st), FOTA_STORE_OK);
    /* Enrol in a scrambled order so that id order is not insertion order. */
    for (i = 0; i < NDEV; i++) {
        int k = (i * 7919) % NDEV;
        make_id(id, sizeof(id), k);
        enrol(st, id, dev_hw(k), dev_ver(k), (enum fota_store_device_status)dev_status(k), 1);
        if (dev_tagged(k)) {
            const char *add[] = { "eu", "beta" };
            assert_int_equal(fota_store_device_tags(st, id, add, 2, NULL, 0), FOTA_STORE_OK);
        }
        if (dev_status(k) == FOTA_STORE_DEVICE_ACCEPTED) {
            struct fota_store_checkin c = { id, 1, dev_fresh(k), dev_ver(k), 1, 1, NULL };
            assert_int_equal(fota_store_device_checkin(st, &c, NULL), FOTA_STORE_OK);
        }
    }
    assert_int_equal(fota_store_commit(st), FOTA_STORE_OK);
}

/* Page through the whole list with the filter and check the result equals
 * the devices that match(i) in id order, each exactly once. */
static void check_paging(struct fota_store *st, const struct fota_store_device_filter *f,
                         unsigned limit, int (*match)(int))
{
    char after[FOTA_STORE_ID_MAX + 1] = "";
    char want[32];
    int i = 0, pages = 0, more = 1;

    while (more) {
        struct fota_store_device *items = NULL;
        size_t n = 0, k;

        assert_int_equal(fota_store_device_list(st, f, after, limit, &items, &n, &more),
                         FOTA_STORE_OK);
        pages++;
        assert_true(n <= limit);
        if (more)
            assert_int_equal(n, limit);
        for (k = 0; k < n; k++) {
            while (i < NDEV && !match(i))
                i++;
            assert_true(i < NDEV);
            make_id(want, sizeof(want), i);
            assert_string_equal(items[k].id, want);
            assert_non_null(items[k].slots_json);
            assert_non_null(items[k].tags_json);
            assert_null(items[k].key_json);
            i++;
        }
        if (n > 0)
            snprintf(after, sizeof(after), "%s", items[n - 1].id);
        fota_store_device_list_free(items, n);
        assert_true(pages < NDEV + 2);
    }
    while (i < NDEV && !match(i))
        i++;
    assert_int_equal(i, NDEV);   /* nothing missed */
}

static int m_all(int i) { (void)i; return 1; }
static int m_pending(int i) { return dev_status(i) == FOTA_STORE_DEVICE_PENDING; }
static int m_hw_b(int i) { return strcmp(dev_hw(i), "hw-b") == 0; }
static int m_hw_a_v11(int i) { return strcmp(dev_hw(i), "hw-a") == 0 && strcmp(dev_ver(i), "1.1.0") == 0; }
static int m_tag(int i) { return dev_tagged(i); }
static int m_tag_accepted_hw_c(int i)
{
    return dev_tagged(i) && dev_status(i) == FOTA_STORE_DEVICE_ACCEPTED && strcmp(dev_hw(i), "hw-c") == 0;
}
static int m_stale(int i) { return dev_fresh(i) < 2000; }
static int m_fresh(int i) { return dev_fresh(i) >= 2000; }
static int m_window(int i) { return dev_fresh(i) >= 1500 && dev_fresh(i) < 3000; }

static void test_device_list_paging(void **state)
{
    struct fx *fx = *state;
    struct fota_store *st = fx->st;
    struct fota_store_device_filter f;
    struct fota_store_device *items = NULL;
    size_t n = 0;
    int more = 0;
    int64_t stale = -1, expect = 0;
    int i;

    fleet(st);
    check_paging(st, NULL, FOTA_STORE_PAGE_MAX, m_all);
    check_paging(st, NULL, 7, m_all);
    check_paging(st, NULL, 1, m_all);
    memset(&f, 0, sizeof(f));
    f.status_mask = FOTA_STORE_DEVICE_BIT(FOTA_STORE_DEVICE_PENDING);
    check_paging(st, &f, 50, m_pending);
    memset(&f, 0, sizeof(f));
    f.hardware_id = "hw-b";
    check_paging(st, &f, 333, m_hw_b);
    memset(&f, 0, sizeof(f));
    f.hardware_id = "hw-a";
    f.version = "1.1.0";
    check_paging(st, &f, 10, m_hw_a_v11);
    memset(&f, 0, sizeof(f));
    f.tag = "eu";
    check_paging(st, &f, 100, m_tag);
    memset(&f, 0, sizeof(f));
    f.tag = "beta";
    f.hardware_id = "hw-c";
    f.status_mask = FOTA_STORE_DEVICE_BIT(FOTA_STORE_DEVICE_ACCEPTED);
    check_paging(st, &f, 9, m_tag_accepted_hw_c);
    memset(&f, 0, sizeof(f));
    f.fresh_before = 2000;
    check_paging(st, &f, 64, m_stale);
    memset(&f, 0, sizeof(f));
    f.fresh_since = 2000;
    check_paging(st, &f, 1000, m_fresh);
    memset(&f, 0, sizeof(f));
    f.fresh_since = 1500;
    f.fresh_before = 3000;
    check_paging(st, &f, 77, m_window);

    /* Tags are returned with the rows. */
    memset(&f, 0, sizeof(f));
    f.tag = "eu";
    assert_int_equal(fota_store_device_list(st, &f, NULL, 1, &items, &n, &more), FOTA_STORE_OK);
    assert_int_equal(n, 1);
    assert_string_equal(items[0].tags_json, "[\"beta\",\"eu\"]");
    fota_store_device_list_free(items, n);

    /* No match: OK, empty, NULL array. */
    memset(&f, 0, sizeof(f));
    f.hardware_id = "hw-zzz";
    items = (struct fota_store_device *)1;
    assert_int_equal(fota_store_device_list(st, &f, NULL, 10, &items, &n, &more), FOTA_STORE_OK);
    assert_int_equal(n, 0);
    assert_null(items);
    assert_int_equal(more, 0);

    assert_int_equal(fota_store_device_list(st, NULL, NULL, 0, &items, &n, &more),
                     FOTA_STORE_INVALID);
    assert_int_equal(fota_store_device_list(st, NULL, NULL, FOTA_STORE_PAGE_MAX + 1, &items, &n,
                                            &more), FOTA_STORE_INVALID);
    f.status_mask = 1u << 9;
    assert_int_equal(fota_store_device_list(st, &f, NULL, 5, &items, &n, &more),
                     FOTA_STORE_INVALID);

    for (i = 0; i < NDEV; i++) {
        if (dev_status(i) == FOTA_STORE_DEVICE_ACCEPTED && dev_fresh(i) < 2000)
            expect++;
    }
    assert_int_equal(fota_store_device_count_stale(st, 2000, &stale), FOTA_STORE_OK);
    assert_int_equal(stale, expect);
}

static void test_device_tags(void **state)
{
    struct fx *fx = *state;
    struct fota_store *st = fx->st;
    struct fota_store_device got;
    const char *add[] = { "zeta", "alpha", "alpha", "mid" };
    const char *rm[] = { "mid", "absent" };
    const char *many[FOTA_STORE_TAGS_MAX];
    char names[FOTA_STORE_TAGS_MAX][16];
    char toolong[FOTA_STORE_TAG_MAX + 2];
    const char *bad[] = { toolong };
    const char *badutf8[] = { "\xff\xfe" };
    int i;

    enrol(st, "t1", "hw-a", "1.0.0", FOTA_STORE_DEVICE_ACCEPTED, 1);
    assert_int_equal(fota_store_device_tags(st, "t1", add, 4, NULL, 0), FOTA_STORE_OK);
    assert_int_equal(fota_store_device_tags(st, "t1", NULL, 0, rm, 2), FOTA_STORE_OK);
    assert_int_equal(fota_store_device_get(st, "t1", &got), FOTA_STORE_OK);
    assert_string_equal(got.tags_json, "[\"alpha\",\"zeta\"]");
    fota_store_device_clear(&got);

    assert_int_equal(fota_store_device_tags(st, "nope", add, 1, NULL, 0), FOTA_STORE_NOT_FOUND);
    memset(toolong, 't', sizeof(toolong) - 1);
    toolong[sizeof(toolong) - 1] = '\0';
    assert_int_equal(fota_store_device_tags(st, "t1", bad, 1, NULL, 0), FOTA_STORE_INVALID);
    assert_int_equal(fota_store_device_tags(st, "t1", badutf8, 1, NULL, 0), FOTA_STORE_INVALID);

    /* 2 present + 64 new > FOTA_STORE_TAGS_MAX: refused, nothing changes. */
    for (i = 0; i < FOTA_STORE_TAGS_MAX; i++) {
        snprintf(names[i], sizeof(names[i]), "t%02d", i);
        many[i] = names[i];
    }
    assert_int_equal(fota_store_device_tags(st, "t1", many, FOTA_STORE_TAGS_MAX, NULL, 0),
                     FOTA_STORE_INVALID);
    assert_int_equal(fota_store_device_get(st, "t1", &got), FOTA_STORE_OK);
    assert_string_equal(got.tags_json, "[\"alpha\",\"zeta\"]");
    fota_store_device_clear(&got);
    {
        struct fota_store_device_filter f;
        struct fota_store_device *items = NULL;
        size_t n = 9;
        int more = 0;

        memset(&f, 0, sizeof(f));
        f.tag = "t00";
        assert_int_equal(fota_store_device_list(st, &f, NULL, 10, &items, &n, &more),
                         FOTA_STORE_OK);
        assert_int_equal(n, 0);
    }
    /* Replacing both with 62 new ones in one call fits exactly. */
    {
        const char *rm2[] = { "alpha", "zeta" };
        assert_int_equal(fota_store_device_tags(st, "t1", many, FOTA_STORE_TAGS_MAX - 2, rm2, 2),
                         FOTA_STORE_OK);
    }
}

static void test_device_history(void **state)
{
    struct fx *fx = *state;
    struct fota_store *st = fx->st;
    struct fota_store_history h, *items = NULL;
    size_t n = 0;
    int more = 0, i;
    int64_t id = 0, last = 0;

    enrol(st, "h1", "hw-a", "1.0.0", FOTA_STORE_DEVICE_ACCEPTED, 1);
    enrol(st, "h2", "hw-a", "1.0.0", FOTA_STORE_DEVICE_ACCEPTED, 1);
    memset(&h, 0, sizeof(h));
    snprintf(h.device_id, sizeof(h.device_id), "h1");
    for (i = 0; i < 25; i++) {
        h.time = 1000 + i;
        snprintf(h.event, sizeof(h.event), "%s", i % 2 ? "installed" : "downloading");
        snprintf(h.target, sizeof(h.target), "fw-1.1.0.img");
        snprintf(h.version, sizeof(h.version), "1.1.0");
        h.reason[0] = '\0';
        h.detail = i == 3 ? (char *)"{\"x\":3}" : NULL;
        assert_int_equal(fota_store_device_history_append(st, &h, &id), FOTA_STORE_OK);
        assert_true(id > last);
        last = id;
    }
    snprintf(h.device_id, sizeof(h.device_id), "h2");
    snprintf(h.reason, sizeof(h.reason), "FOTA_E_HASH");
    assert_int_equal(fota_store_device_history_append(st, &h, NULL), FOTA_STORE_OK);
    snprintf(h.device_id, sizeof(h.device_id), "ghost");
    assert_int_equal(fota_store_device_history_append(st, &h, NULL), FOTA_STORE_CONFLICT);
    snprintf(h.device_id, sizeof(h.device_id), "h2");
    h.event[0] = '\0';
    assert_int_equal(fota_store_device_history_append(st, &h, NULL), FOTA_STORE_INVALID);

    /* Newest first, paged with `before`. */
    assert_int_equal(fota_store_device_history_list(st, "h1", 0, 10, &items, &n, &more),
                     FOTA_STORE_OK);
    assert_int_equal(n, 10);
    assert_int_equal(more, 1);
    assert_int_equal(items[0].time, 1024);
    assert_int_equal(items[9].time, 1015);
    assert_string_equal(items[0].device_id, "h1");
    assert_string_equal(items[0].event, "downloading");
    assert_string_equal(items[0].target, "fw-1.1.0.img");
    last = items[9].id;
    fota_store_history_list_free(items, n);
    assert_int_equal(fota_store_device_history_list(st, "h1", last, 1000, &items, &n, &more),
                     FOTA_STORE_OK);
    assert_int_equal(n, 15);
    assert_int_equal(more, 0);
    assert_int_equal(items[0].time, 1014);
    assert_int_equal(items[14].time, 1000);
    assert_string_equal(items[11].detail, "{\"x\":3}");
    assert_null(items[10].detail);
    fota_store_history_list_free(items, n);

    assert_int_equal(fota_store_device_history_list(st, "h2", 0, 10, &items, &n, &more),
                     FOTA_STORE_OK);
    assert_int_equal(n, 1);
    assert_string_equal(items[0].reason, "FOTA_E_HASH");
    fota_store_history_list_free(items, n);
    assert_int_equal(fota_store_device_history_list(st, "ghost", 0, 10, &items, &n, &more),
                     FOTA_STORE_OK);
    assert_int_equal(n, 0);
}

/* ---- releases ------------------------------------------------------------- */

static void test_releases(void **state)
{
    struct fx *fx = *state;
    struct fota_store *st = fx->st;
    struct fota_store_release r, got, *items = NULL;
    size_t n = 0;
    int more = 0, i;
    char id[FOTA_STORE_ID_MAX + 1];

    memset(&r, 0, sizeof(r));
    snprintf(r.id, sizeof(r.id), "rel-1");
    snprintf(r.target_name, sizeof(r.target_name), "fw/app-1.1.0.img");
    r.length = 1048576;
    memset(r.sha256, 'e', 64);
    snprintf(r.version, sizeof(r.version), "1.1.0");
    r.security_counter = 2;
    r.targets_version = 3;
    r.created = 50;
    r.hardware_id_count = 2;
    snprintf(r.hardware_ids[0], sizeof(r.hardware_ids[0]), "hw-b");
    snprintf(r.hardware_ids[1], sizeof(r.hardware_ids[1]), "hw-a");
    assert_int_equal(fota_store_release_insert(st, &r), FOTA_STORE_OK);
    assert_int_equal(fota_store_release_insert(st, &r), FOTA_STORE_CONFLICT);   /* id */
    snprintf(r.id, sizeof(r.id), "rel-1b");
    assert_int_equal(fota_store_release_insert(st, &r), FOTA_STORE_CONFLICT);   /* name+hash */

    /* A hardware id listed twice: refused and nothing half-written. */
    snprintf(r.id, sizeof(r.id), "rel-dup");
    r.sha256[0] = 'f';
    snprintf(r.hardware_ids[1], sizeof(r.hardware_ids[1]), "hw-b");
    assert_int_equal(fota_store_release_insert(st, &r), FOTA_STORE_INVALID);
    assert_int_equal(fota_store_release_get(st, "rel-dup", &got), FOTA_STORE_NOT_FOUND);
    r.hardware_id_count = 0;
    assert_int_equal(fota_store_release_insert(st, &r), FOTA_STORE_INVALID);
    r.hardware_id_count = 1;
    memcpy(r.sha256, "XYZ", 3);
    assert_int_equal(fota_store_release_insert(st, &r), FOTA_STORE_INVALID);

    assert_int_equal(fota_store_release_get(st, "rel-1", &got), FOTA_STORE_OK);
    assert_string_equal(got.target_name, "fw/app-1.1.0.img");
    assert_int_equal(got.length, 1048576);
    assert_int_equal(got.security_counter, 2);
    assert_int_equal(got.targets_version, 3);
    assert_int_equal(got.hardware_id_count, 2);
    assert_string_equal(got.hardware_ids[0], "hw-a");
    assert_string_equal(got.hardware_ids[1], "hw-b");
    assert_int_equal(fota_store_release_get(st, "nope", &got), FOTA_STORE_NOT_FOUND);

    /* By target name: the newest. */
    add_release(st, "rel-2", "fw/app-1.1.0.img", "1.1.0", 2, "hw-a", 60);
    assert_int_equal(fota_store_release_get_by_target(st, "fw/app-1.1.0.img", &got),
                     FOTA_STORE_OK);
    assert_string_equal(got.id, "rel-2");
    assert_int_equal(fota_store_release_get_by_target(st, "nope", &got), FOTA_STORE_NOT_FOUND);

    for (i = 0; i < 30; i++) {
        snprintf(id, sizeof(id), "rel-x%02d", i);
        add_release(st, id, id, "2.0.0", 3, "hw-c", 100 + i);
    }
    assert_int_equal(fota_store_release_list(st, NULL, 20, &items, &n, &more), FOTA_STORE_OK);
    assert_int_equal(n, 20);
    assert_int_equal(more, 1);
    assert_string_equal(items[0].id, "rel-1");
    assert_string_equal(items[1].id, "rel-2");
    assert_string_equal(items[2].id, "rel-x00");
    assert_int_equal(items[2].hardware_id_count, 1);
    assert_string_equal(items[2].hardware_ids[0], "hw-c");
    snprintf(id, sizeof(id), "%s", items[19].id);
    free(items);
    assert_int_equal(fota_store_release_list(st, id, 20, &items, &n, &more), FOTA_STORE_OK);
    assert_int_equal(n, 12);
    assert_int_equal(more, 0);
    assert_string_equal(items[11].id, "rel-x29");
    free(items);
}

/* ---- rollouts ------------------------------------------------------------- */

static void test_rollouts(void **state)
{
    struct fx *fx = *state;
    struct fota_store *st = fx->st;
    struct fota_store_rollout r, got, *list = NULL;
    struct fota_store_rollout_member m[10];
    struct fota_store_rollout_counts counts;
    struct fota_store_rollout_device rd, *rds = NULL;
    char ids[10][16];
    size_t n = 0;
    int more = 0, i;

    add_release(st, "rel-a", "fw-a-1.1.0.img", "1.1.0", 2, "hw-a", 10);
    for (i = 0; i < 10; i++) {
        snprintf(ids[i], sizeof(ids[i]), "rd%02d", i);
        enrol(st, ids[i], "hw-a", "1.0.0", FOTA_STORE_DEVICE_ACCEPTED, 1);
        m[i].device_id = ids[i];
        m[i].wave = i < 1 ? 0 : (i < 4 ? 1 : 2);
    }
    rollout_template(&r, "ro-1", "rel-a", 100);
    create_visible(st, &r, m, 10);
    assert_int_equal(fota_store_rollout_create(st, &r, m, 10), FOTA_STORE_CONFLICT);

    /* All or nothing: an unknown device, a duplicate member, an unknown release. */
    {
        struct fota_store_rollout_member bad[3] = { { "rd00", 0 }, { "rd01", 1 }, { "ghost", 2 } };
        rollout_template(&r, "ro-bad", "rel-a", 101);
        assert_int_equal(fota_store_rollout_create(st, &r, bad, 3), FOTA_STORE_CONFLICT);
        assert_int_equal(fota_store_rollout_get(st, "ro-bad", &got), FOTA_STORE_NOT_FOUND);
        assert_int_equal(fota_store_rollout_device_get(st, "ro-bad", "rd00", &rd),
                         FOTA_STORE_NOT_FOUND);
        bad[2].device_id = "rd00";
        assert_int_equal(fota_store_rollout_create(st, &r, bad, 3), FOTA_STORE_CONFLICT);
        assert_int_equal(fota_store_rollout_get(st, "ro-bad", &got), FOTA_STORE_NOT_FOUND);
        snprintf(r.release_id, sizeof(r.release_id), "rel-none");
        assert_int_equal(fota_store_rollout_create(st, &r, bad, 2), FOTA_STORE_CONFLICT);
        assert_int_equal(fota_store_rollout_get(st, "ro-bad", &got), FOTA_STORE_NOT_FOUND);
        /* Bad arguments. */
        rollout_template(&r, "ro-bad", "rel-a", 101);
        r.waves[1] = 5;
        assert_int_equal(fota_store_rollout_create(st, &r, bad, 2), FOTA_STORE_INVALID);
        rollout_template(&r, "ro-bad", "rel-a", 101);
        r.success_threshold = 1.5;
        assert_int_equal(fota_store_rollout_create(st, &r, bad, 2), FOTA_STORE_INVALID);
        rollout_template(&r, "ro-bad", "rel-a", 101);
        bad[0].wave = 3;
        assert_int_equal(fota_store_rollout_create(st, &r, bad, 2), FOTA_STORE_INVALID);
    }

    assert_int_equal(fota_store_rollout_get(st, "ro-1", &got), FOTA_STORE_OK);
    assert_string_equal(got.release_id, "rel-a");
    assert_int_equal(got.state, FOTA_STORE_ROLLOUT_ACTIVE);
    assert_int_equal(got.wave_count, 3);
    assert_int_equal(got.waves[0], 5);
    assert_int_equal(got.waves[2], 100);
    assert_int_equal(got.device_count, 10);
    assert_true(got.success_threshold > 0.89 && got.success_threshold < 0.91);
    assert_string_equal(got.created_by, "ops");
    assert_string_equal(got.group_json, "{\"hardware_id\":\"hw-a\"}");
    assert_int_equal(got.updated, 100);
    fota_store_rollout_clear(&got);

    /* Per-device status with a guard. */
    assert_int_equal(fota_store_rollout_device_set_status(st, "ro-1", "rd00",
                                                          FOTA_STORE_RD_DOWNLOADING,
                                                          FOTA_STORE_RD_BIT(FOTA_STORE_RD_ASSIGNED),
                                                          NULL, 110), FOTA_STORE_OK);
    assert_int_equal(fota_store_rollout_device_set_status(st, "ro-1", "rd00",
                                                          FOTA_STORE_RD_DOWNLOADING,
                                                          FOTA_STORE_RD_BIT(FOTA_STORE_RD_ASSIGNED),
                                                          NULL, 111), FOTA_STORE_CONFLICT);
    assert_int_equal(fota_store_rollout_device_set_status(st, "ro-1", "ghost",
                                                          FOTA_STORE_RD_FAILED, 0, NULL, 111),
                     FOTA_STORE_NOT_FOUND);
    assert_int_equal(fota_store_rollout_device_set_status(st, "ro-1", "rd01",
                                                          FOTA_STORE_RD_FAILED, 0,
                                                          "FOTA_E_SIGNATURE", 112), FOTA_STORE_OK);
    assert_int_equal(fota_store_rollout_device_set_status(st, "ro-1", "rd02",
                                                          FOTA_STORE_RD_CONFIRMED, 0, NULL, 113),
                     FOTA_STORE_OK);
    assert_int_equal(fota_store_rollout_device_get(st, "ro-1", "rd01", &rd), FOTA_STORE_OK);
    assert_int_equal(rd.status, FOTA_STORE_RD_FAILED);
    assert_string_equal(rd.reason, "FOTA_E_SIGNATURE");
    assert_int_equal(rd.wave, 1);
    assert_int_equal(rd.updated, 112);

    assert_int_equal(fota_store_rollout_counts(st, "ro-1", &counts), FOTA_STORE_OK);
    assert_int_equal(counts.total, 10);
    assert_int_equal(counts.n[0][FOTA_STORE_RD_DOWNLOADING], 1);
    assert_int_equal(counts.n[1][FOTA_STORE_RD_FAILED], 1);
    assert_int_equal(counts.n[1][FOTA_STORE_RD_CONFIRMED], 1);
    assert_int_equal(counts.n[1][FOTA_STORE_RD_ASSIGNED], 1);
    assert_int_equal(counts.n[2][FOTA_STORE_RD_ASSIGNED], 6);
    assert_int_equal(fota_store_rollout_counts(st, "ro-none", &counts), FOTA_STORE_OK);
    assert_int_equal(counts.total, 0);

    /* Device list of a rollout, filtered and paged. */
    assert_int_equal(fota_store_rollout_device_list(st, "ro-1", 0, NULL, 4, &rds, &n, &more),
                     FOTA_STORE_OK);
    assert_int_equal(n, 4);
    assert_int_equal(more, 1);
    assert_string_equal(rds[3].device_id, "rd03");
    free(rds);
    assert_int_equal(fota_store_rollout_device_list(st, "ro-1", 0, "rd03", 100, &rds, &n, &more),
                     FOTA_STORE_OK);
    assert_int_equal(n, 6);
    assert_int_equal(more, 0);
    assert_string_equal(rds[0].device_id, "rd04");
    free(rds);
    assert_int_equal(fota_store_rollout_device_list(st, "ro-1",
                                                    FOTA_STORE_RD_BIT(FOTA_STORE_RD_FAILED) |
                                                    FOTA_STORE_RD_BIT(FOTA_STORE_RD_CONFIRMED),
                                                    NULL, 100, &rds, &n, &more), FOTA_STORE_OK);
    assert_int_equal(n, 2);
    free(rds);

    /* State changes with guards. */
    assert_int_equal(fota_store_rollout_set_state(st, "ro-1", FOTA_STORE_ROLLOUT_PAUSED,
                                                  FOTA_STORE_ROLLOUT_BIT(FOTA_STORE_ROLLOUT_ACTIVE),
                                                  120), FOTA_STORE_OK);
    assert_int_equal(fota_store_rollout_set_state(st, "ro-1", FOTA_STORE_ROLLOUT_PAUSED,
                                                  FOTA_STORE_ROLLOUT_BIT(FOTA_STORE_ROLLOUT_ACTIVE),
                                                  121), FOTA_STORE_CONFLICT);
    /* Paused: no advance. */
    assert_int_equal(fota_store_rollout_set_wave(st, "ro-1", 0, 1, 122), FOTA_STORE_CONFLICT);
    assert_int_equal(fota_store_rollout_set_state(st, "ro-1", FOTA_STORE_ROLLOUT_ACTIVE,
                                                  FOTA_STORE_ROLLOUT_BIT(FOTA_STORE_ROLLOUT_PAUSED),
                                                  123), FOTA_STORE_OK);
    assert_int_equal(fota_store_rollout_set_state(st, "ro-x", FOTA_STORE_ROLLOUT_ACTIVE, 0, 123),
                     FOTA_STORE_NOT_FOUND);
    assert_int_equal(fota_store_rollout_set_wave(st, "ro-1", 0, 1, 124), FOTA_STORE_OK);
    assert_int_equal(fota_store_rollout_set_wave(st, "ro-1", 0, 1, 125), FOTA_STORE_CONFLICT);
    assert_int_equal(fota_store_rollout_set_wave(st, "ro-1", 1, 3, 125), FOTA_STORE_INVALID);
    assert_int_equal(fota_store_rollout_set_wave(st, "ro-x", 1, 2, 125), FOTA_STORE_NOT_FOUND);
    assert_int_equal(fota_store_rollout_set_wave(st, "ro-1", 1, 2, 126), FOTA_STORE_OK);
    assert_int_equal(fota_store_rollout_get(st, "ro-1", &got), FOTA_STORE_OK);
    assert_int_equal(got.current_wave, 2);
    assert_int_equal(got.updated, 126);
    fota_store_rollout_clear(&got);

    /* Lists with a state mask. */
    add_release(st, "rel-b", "fw-b.img", "1.2.0", 3, "hw-a", 20);
    rollout_template(&r, "ro-2", "rel-b", 200);
    create_visible(st, &r, NULL, 0);
    assert_int_equal(fota_store_rollout_set_state(st, "ro-2", FOTA_STORE_ROLLOUT_COMPLETED, 0,
                                                  201), FOTA_STORE_OK);
    assert_int_equal(fota_store_rollout_list(st, 0, NULL, 10, &list, &n, &more), FOTA_STORE_OK);
    assert_int_equal(n, 2);
    assert_string_equal(list[0].id, "ro-1");
    assert_non_null(list[1].group_json);
    fota_store_rollout_list_free(list, n);
    assert_int_equal(fota_store_rollout_list(st, FOTA_STORE_ROLLOUT_BIT(FOTA_STORE_ROLLOUT_ACTIVE),
                                             NULL, 10, &list, &n, &more), FOTA_STORE_OK);
    assert_int_equal(n, 1);
    assert_string_equal(list[0].id, "ro-1");
    fota_store_rollout_list_free(list, n);
    assert_int_equal(fota_store_rollout_list(st, 0, NULL, 1, &list, &n, &more), FOTA_STORE_OK);
    assert_int_equal(n, 1);
    assert_int_equal(more, 1);
    fota_store_rollout_list_free(list, n);
    assert_int_equal(fota_store_rollout_list(st, 0, "ro-1", 1, &list, &n, &more), FOTA_STORE_OK);
    assert_int_equal(n, 1);
    assert_int_equal(more, 0);
    assert_string_equal(list[0].id, "ro-2");
    fota_store_rollout_list_free(list, n);
}

/* A rollout larger than one chunk: written in several transactions while
 * hidden, visible only once revealed; a failure in a later chunk, a
 * discard and a sweep leave nothing behind. */
#define BIG_ROLLOUT 4500
static void test_rollout_hidden_chunks(void **state)
{
    struct fx *fx = *state;
    struct fota_store *st = fx->st;
    struct fota_store_rollout r, got, *list = NULL;
    struct fota_store_rollout_member *m = calloc(BIG_ROLLOUT, sizeof(*m));
    struct fota_store_assignment a;
    struct fota_store_rollout_counts counts;
    struct fota_store_rollout_device rd;
    char (*ids)[16] = calloc(BIG_ROLLOUT, sizeof(*ids));
    size_t n = 0, swept = 0;
    int more = 0, i;

    assert_non_null(m);
    assert_non_null(ids);
    add_release(st, "rel-h", "fw-h.img", "1.1.0", 2, "hw-a", 10);
    assert_int_equal(fota_store_begin(st), FOTA_STORE_OK);
    for (i = 0; i < BIG_ROLLOUT; i++) {
        snprintf(ids[i], sizeof(ids[i]), "hd%05d", i);
        enrol(st, ids[i], "hw-a", "1.0.0", FOTA_STORE_DEVICE_ACCEPTED, 1);
        m[i].device_id = ids[i];
        m[i].wave = 0;
    }
    assert_int_equal(fota_store_commit(st), FOTA_STORE_OK);

    rollout_template(&r, "ro-h", "rel-h", 100);
    assert_int_equal(fota_store_rollout_create(st, &r, m, BIG_ROLLOUT), FOTA_STORE_OK);
    /* Hidden: no query sees it. */
    assert_int_equal(fota_store_rollout_get(st, "ro-h", &got), FOTA_STORE_NOT_FOUND);
    assert_int_equal(fota_store_rollout_list(st, 0, NULL, 10, &list, &n, &more), FOTA_STORE_OK);
    assert_int_equal(n, 0);
    fota_store_rollout_list_free(list, n);
    assert_int_equal(fota_store_rollout_assignment(st, ids[BIG_ROLLOUT - 1], 0, &a),
                     FOTA_STORE_NOT_FOUND);
    assert_int_equal(fota_store_rollout_set_state(st, "ro-h", FOTA_STORE_ROLLOUT_PAUSED, 0, 101),
                     FOTA_STORE_NOT_FOUND);
    /* Revealed: every member of every chunk is there. */
    assert_int_equal(fota_store_rollout_reveal(st, "ro-h"), FOTA_STORE_OK);
    assert_int_equal(fota_store_rollout_reveal(st, "ro-h"), FOTA_STORE_NOT_FOUND);
    assert_int_equal(fota_store_rollout_get(st, "ro-h", &got), FOTA_STORE_OK);
    assert_int_equal(got.device_count, BIG_ROLLOUT);
    fota_store_rollout_clear(&got);
    assert_int_equal(fota_store_rollout_counts(st, "ro-h", &counts), FOTA_STORE_OK);
    assert_int_equal(counts.n[0][FOTA_STORE_RD_ASSIGNED], BIG_ROLLOUT);
    assert_int_equal(counts.total, BIG_ROLLOUT);
    assert_int_equal(fota_store_rollout_assignment(st, ids[BIG_ROLLOUT - 1], 0, &a), FOTA_STORE_OK);
    /* A visible rollout is never discarded. */
    assert_int_equal(fota_store_rollout_discard(st, "ro-h"), FOTA_STORE_OK);
    assert_int_equal(fota_store_rollout_get(st, "ro-h", &got), FOTA_STORE_OK);
    fota_store_rollout_clear(&got);

    /* A duplicate in the third chunk: CONFLICT, and the first two chunks
     * (already committed) are gone again. */
    rollout_template(&r, "ro-dup", "rel-h", 200);
    m[BIG_ROLLOUT - 1].device_id = ids[0];
    assert_int_equal(fota_store_rollout_create(st, &r, m, BIG_ROLLOUT), FOTA_STORE_CONFLICT);
    assert_int_equal(fota_store_rollout_reveal(st, "ro-dup"), FOTA_STORE_NOT_FOUND);
    assert_int_equal(fota_store_rollout_device_get(st, "ro-dup", ids[1], &rd), FOTA_STORE_NOT_FOUND);
    m[BIG_ROLLOUT - 1].device_id = ids[BIG_ROLLOUT - 1];

    /* Left hidden (a process died while creating it): swept by age only. */
    rollout_template(&r, "ro-left", "rel-h", 300);
    assert_int_equal(fota_store_rollout_create(st, &r, m, BIG_ROLLOUT), FOTA_STORE_OK);
    assert_int_equal(fota_store_rollout_sweep(st, 300, &swept), FOTA_STORE_OK);
    assert_int_equal(swept, 0);
    assert_int_equal(fota_store_rollout_sweep(st, 301, &swept), FOTA_STORE_OK);
    assert_int_equal(swept, 1);
    assert_int_equal(fota_store_rollout_reveal(st, "ro-left"), FOTA_STORE_NOT_FOUND);
    assert_int_equal(fota_store_rollout_device_get(st, "ro-left", ids[4000], &rd),
                     FOTA_STORE_NOT_FOUND);
    /* The visible one is untouched by the sweep. */
    assert_int_equal(fota_store_rollout_get(st, "ro-h", &got), FOTA_STORE_OK);
    fota_store_rollout_clear(&got);
    free(m);
    free(ids);
}

static void test_assignment(void **state)
{
    struct fx *fx = *state;
    struct fota_store *st = fx->st;
    struct fota_store_rollout r;
    struct fota_store_assignment a;
    struct fota_store_rollout_member m[2] = { { "a1", 1 }, { "b1", 0 } };
    struct fota_store_rollout_member only_a[1] = { { "a1", 0 } };

    enrol(st, "a1", "hw-a", "1.0.0", FOTA_STORE_DEVICE_ACCEPTED, 1);
    enrol(st, "b1", "hw-b", "1.0.0", FOTA_STORE_DEVICE_ACCEPTED, 1);
    add_release(st, "rel-old", "fw-1.1.0.img", "1.1.0", 2, "hw-a", 10);
    add_release(st, "rel-new", "fw-1.2.0.img", "1.2.0", 3, "hw-a", 11);

    assert_int_equal(fota_store_rollout_assignment(st, "a1", 0, &a), FOTA_STORE_NOT_FOUND);

    rollout_template(&r, "ro-old", "rel-old", 100);
    create_visible(st, &r, m, 2);
    assert_int_equal(fota_store_rollout_assignment(st, "a1", 0, &a), FOTA_STORE_OK);
    assert_string_equal(a.rollout_id, "ro-old");
    assert_int_equal(a.state, FOTA_STORE_ROLLOUT_ACTIVE);
    assert_int_equal(a.wave, 1);
    assert_int_equal(a.current_wave, 0);
    assert_int_equal(a.wave_count, 3);
    assert_int_equal(a.status, FOTA_STORE_RD_ASSIGNED);
    assert_string_equal(a.release_id, "rel-old");
    assert_string_equal(a.target_name, "fw-1.1.0.img");
    assert_int_equal(a.length, 1234);
    assert_string_equal(a.version, "1.1.0");
    assert_int_equal(a.security_counter, 2);
    assert_int_equal(strlen(a.sha256), 64);

    /* b1 is listed but its hardware id is not the release's: never. */
    assert_int_equal(fota_store_rollout_assignment(st, "b1", 0, &a), FOTA_STORE_NOT_FOUND);

    /* The newest rollout listing the device wins. */
    rollout_template(&r, "ro-new", "rel-new", 200);
    create_visible(st, &r, only_a, 1);
    assert_int_equal(fota_store_rollout_assignment(st, "a1", 0, &a), FOTA_STORE_OK);
    assert_string_equal(a.rollout_id, "ro-new");
    assert_string_equal(a.target_name, "fw-1.2.0.img");
    assert_int_equal(a.wave, 0);

    /* Paused still counts by default; aborted does not. */
    assert_int_equal(fota_store_rollout_set_state(st, "ro-new", FOTA_STORE_ROLLOUT_PAUSED, 0, 201),
                     FOTA_STORE_OK);
    assert_int_equal(fota_store_rollout_assignment(st, "a1", 0, &a), FOTA_STORE_OK);
    assert_string_equal(a.rollout_id, "ro-new");
    assert_int_equal(a.state, FOTA_STORE_ROLLOUT_PAUSED);
    assert_int_equal(fota_store_rollout_assignment(st, "a1",
                                                   FOTA_STORE_ROLLOUT_BIT(FOTA_STORE_ROLLOUT_ACTIVE),
                                                   &a), FOTA_STORE_OK);
    assert_string_equal(a.rollout_id, "ro-old");
    assert_int_equal(fota_store_rollout_set_state(st, "ro-new", FOTA_STORE_ROLLOUT_ABORTED, 0, 202),
                     FOTA_STORE_OK);
    assert_int_equal(fota_store_rollout_assignment(st, "a1", 0, &a), FOTA_STORE_OK);
    assert_string_equal(a.rollout_id, "ro-old");
    /* ... unless asked for. */
    assert_int_equal(fota_store_rollout_assignment(st, "a1",
                                                   FOTA_STORE_ROLLOUT_BIT(FOTA_STORE_ROLLOUT_ABORTED),
                                                   &a), FOTA_STORE_OK);
    assert_string_equal(a.rollout_id, "ro-new");
    /* Asked for live and ended ones at once (reports are): the live one
     * wins although the ended one is newer, so a report lands where the
     * check-ins go (a rollout aborted and replaced in the same second). */
    assert_int_equal(fota_store_rollout_assignment(st, "a1",
                                                   FOTA_STORE_ROLLOUT_BIT(FOTA_STORE_ROLLOUT_ACTIVE) |
                                                       FOTA_STORE_ROLLOUT_BIT(FOTA_STORE_ROLLOUT_ABORTED),
                                                   &a), FOTA_STORE_OK);
    assert_string_equal(a.rollout_id, "ro-old");
    assert_int_equal(fota_store_rollout_set_state(st, "ro-old", FOTA_STORE_ROLLOUT_COMPLETED, 0,
                                                  203), FOTA_STORE_OK);
    assert_int_equal(fota_store_rollout_assignment(st, "a1", 0, &a), FOTA_STORE_NOT_FOUND);
    assert_int_equal(fota_store_rollout_assignment(st, "a1", 1u << 8, &a), FOTA_STORE_INVALID);

    /* Two live rollouts created in the same second: the later one wins,
     * whatever their ids' order. */
    rollout_template(&r, "zz-first", "rel-new", 500);
    create_visible(st, &r, only_a, 1);
    rollout_template(&r, "aa-second", "rel-old", 500);
    create_visible(st, &r, only_a, 1);
    assert_int_equal(fota_store_rollout_assignment(st, "a1", 0, &a), FOTA_STORE_OK);
    assert_string_equal(a.rollout_id, "aa-second");
}

/* ---- concurrency ---------------------------------------------------------- */

#define RACE_ROLLOUTS 200

struct race_arg {
    const char *path;
    pthread_barrier_t *barrier;
    int wins;
    int conflicts;
    int other;
};

static void *race_thread(void *p)
{
    struct race_arg *a = p;
    struct fota_store *st = NULL;
    char id[32];
    int i;

    if (fota_store_open(a->path, &st) != FOTA_STORE_OK) {
        a->other++;
        pthread_barrier_wait(a->barrier);
        return NULL;
    }
    pthread_barrier_wait(a->barrier);
    for (i = 0; i < RACE_ROLLOUTS; i++) {
        enum fota_store_err err;

        snprintf(id, sizeof(id), "race-%03d", i);
        err = fota_store_rollout_set_wave(st, id, 0, 1, 1000);
        if (err == FOTA_STORE_OK)
            a->wins++;
        else if (err == FOTA_STORE_CONFLICT)
            a->conflicts++;
        else
            a->other++;
    }
    fota_store_close(st);
    return NULL;
}

static void test_advance_race(void **state)
{
    struct fx *fx = *state;
    struct fota_store *st = fx->st;
    struct fota_store_rollout r;
    struct race_arg args[2];
    pthread_barrier_t barrier;
    pthread_t th[2];
    char id[32];
    int i;

    add_release(st, "rel-r", "fw-r.img", "1.1.0", 2, "hw-a", 10);
    assert_int_equal(fota_store_begin(st), FOTA_STORE_OK);
    for (i = 0; i < RACE_ROLLOUTS; i++) {
        snprintf(id, sizeof(id), "race-%03d", i);
        rollout_template(&r, id, "rel-r", 100 + i);
        create_visible(st, &r, NULL, 0);
    }
    assert_int_equal(fota_store_commit(st), FOTA_STORE_OK);

    /* Two connections (as two server processes) advance every rollout from
     * wave 0 at the same time: each rollout advances exactly once. */
    pthread_barrier_init(&barrier, NULL, 2);
    for (i = 0; i < 2; i++) {
        memset(&args[i], 0, sizeof(args[i]));
        args[i].path = fx->path;
        args[i].barrier = &barrier;
        assert_int_equal(pthread_create(&th[i], NULL, race_thread, &args[i]), 0);
    }
    for (i = 0; i < 2; i++)
        pthread_join(th[i], NULL);
    pthread_barrier_destroy(&barrier);
    assert_int_equal(args[0].other + args[1].other, 0);
    assert_int_equal(args[0].wins + args[1].wins, RACE_ROLLOUTS);
    assert_int_equal(args[0].conflicts + args[1].conflicts, RACE_ROLLOUTS);
    for (i = 0; i < RACE_ROLLOUTS; i++) {
        struct fota_store_rollout got;
        snprintf(id, sizeof(id), "race-%03d", i);
        assert_int_equal(fota_store_rollout_get(st, id, &got), FOTA_STORE_OK);
        assert_int_equal(got.current_wave, 1);
        fota_store_rollout_clear(&got);
    }
    printf("advance race: connection A won %d, B won %d of %d\n", args[0].wins, args[1].wins,
           RACE_ROLLOUTS);
}

/* What one process does in test_two_processes; returns its counts. */
struct proc_result {
    int checkin_ok, checkin_conflict, advance_ok, advance_conflict, other;
};

static double mono_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void proc_race(const char *path, double start_at, struct proc_result *res)
{
    struct fota_store *st = NULL;
    char id[32];
    int seq, d, i;

    memset(res, 0, sizeof(*res));
    if (fota_store_open(path, &st) != FOTA_STORE_OK) {
        res->other++;
        return;
    }
    /* Start together (the monotonic clock is system-wide). */
    while (mono_s() < start_at) {
        struct timespec ms = { 0, 1000000 };
        nanosleep(&ms, NULL);
    }
    for (seq = 1; seq <= 300; seq++) {
        for (d = 0; d < 4; d++) {
            struct fota_store_checkin c = { id, seq, seq, "1.0.0", 1, 1, NULL };
            enum fota_store_err err;

            make_id(id, sizeof(id), d);
            err = fota_store_device_checkin(st, &c, NULL);
            if (err == FOTA_STORE_OK)
                res->checkin_ok++;
            else if (err == FOTA_STORE_CONFLICT)
                res->checkin_conflict++;
            else
                res->other++;
        }
    }
    for (i = 0; i < 100; i++) {
        enum fota_store_err err;

        snprintf(id, sizeof(id), "prace-%03d", i);
        err = fota_store_rollout_set_wave(st, id, 0, 1, 7);
        if (err == FOTA_STORE_OK)
            res->advance_ok++;
        else if (err == FOTA_STORE_CONFLICT)
            res->advance_conflict++;
        else
            res->other++;
    }
    fota_store_close(st);
}

static void test_two_processes(void **state)
{
    struct fx *fx = *state;
    struct fota_store *st = fx->st;
    struct fota_store_rollout r;
    struct proc_result mine, child;
    char id[32];
    int fds[2], status = -1, i;
    double start_at;
    ssize_t got;
    pid_t pid;

    /* Two real processes (no shared writer queue, only SQLite's locking)
     * replaying the same check-in seqs and advancing the same waves. */
    add_release(st, "rel-p", "fw-p.img", "1.1.0", 2, "hw-a", 10);
    assert_int_equal(fota_store_begin(st), FOTA_STORE_OK);
    for (i = 0; i < 4; i++) {
        make_id(id, sizeof(id), i);
        enrol(st, id, "hw-a", "1.0.0", FOTA_STORE_DEVICE_ACCEPTED, 1);
    }
    for (i = 0; i < 100; i++) {
        snprintf(id, sizeof(id), "prace-%03d", i);
        rollout_template(&r, id, "rel-p", 100 + i);
        create_visible(st, &r, NULL, 0);
    }
    assert_int_equal(fota_store_commit(st), FOTA_STORE_OK);

    assert_int_equal(pipe(fds), 0);
    fflush(NULL);
    start_at = mono_s() + 0.5;
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        struct proc_result res;

        close(fds[0]);
        proc_race(fx->path, start_at, &res);
        got = write(fds[1], &res, sizeof(res));
        _exit(got == (ssize_t)sizeof(res) ? 0 : 1);
    }
    close(fds[1]);
    proc_race(fx->path, start_at, &mine);
    got = read(fds[0], &child, sizeof(child));
    close(fds[0]);
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    assert_int_equal(got, sizeof(child));

    assert_int_equal(mine.other + child.other, 0);
    /* Both walk seq 1..300 upwards, so every (device, seq) is accepted by
     * exactly one of them (a seq is only refused once a higher or equal one
     * is stored), and every other attempt is refused as a replay. */
    assert_int_equal(mine.checkin_ok + child.checkin_ok, 4 * 300);
    assert_int_equal(mine.checkin_ok + child.checkin_ok + mine.checkin_conflict +
                     child.checkin_conflict, 2 * 4 * 300);
    assert_int_equal(mine.advance_ok + child.advance_ok, 100);
    assert_int_equal(mine.advance_conflict + child.advance_conflict, 100);
    for (i = 0; i < 4; i++) {
        struct fota_store_device d;
        make_id(id, sizeof(id), i);
        assert_int_equal(fota_store_device_get(st, id, &d), FOTA_STORE_OK);
        assert_int_equal(d.seq, 300);
        fota_store_device_clear(&d);
    }
    printf("two processes: check-ins accepted %d + %d of 1200, advances %d + %d of 100\n",
           mine.checkin_ok, child.checkin_ok, mine.advance_ok, child.advance_ok);
}

static void test_two_connections(void **state)
{
    struct fx *fx = *state;
    struct fota_store *a = fx->st, *b = NULL;
    struct fota_store_device d;
    struct fota_store_checkin c = { "x1", 1, 10, "1.0.1", 1, 1, "[]" };

    assert_int_equal(fota_store_open(fx->path, &b), FOTA_STORE_OK);
    /* b reads first (so it has used its statements), then a writes. */
    assert_int_equal(fota_store_device_get(b, "x1", &d), FOTA_STORE_NOT_FOUND);
    enrol(a, "x1", "hw-a", "1.0.0", FOTA_STORE_DEVICE_ACCEPTED, 1);
    assert_int_equal(fota_store_device_get(b, "x1", &d), FOTA_STORE_OK);
    fota_store_device_clear(&d);
    assert_int_equal(fota_store_device_checkin(b, &c, NULL), FOTA_STORE_OK);
    /* The replay guard holds across connections. */
    assert_int_equal(fota_store_device_checkin(a, &c, NULL), FOTA_STORE_CONFLICT);
    assert_int_equal(fota_store_device_get(a, "x1", &d), FOTA_STORE_OK);
    assert_string_equal(d.version, "1.0.1");
    fota_store_device_clear(&d);

    /* An uncommitted write of a is invisible to b, and b's write waits or
     * fails BUSY rather than interleaving. */
    assert_int_equal(fota_store_begin(a), FOTA_STORE_OK);
    assert_int_equal(fota_store_device_set_status(a, "x1", FOTA_STORE_DEVICE_REJECTED, 0, 5),
                     FOTA_STORE_OK);
    assert_int_equal(fota_store_device_get(b, "x1", &d), FOTA_STORE_OK);
    assert_int_equal(d.status, FOTA_STORE_DEVICE_ACCEPTED);
    fota_store_device_clear(&d);
    assert_int_equal(fota_store_commit(a), FOTA_STORE_OK);
    assert_int_equal(fota_store_device_get(b, "x1", &d), FOTA_STORE_OK);
    assert_int_equal(d.status, FOTA_STORE_DEVICE_REJECTED);
    fota_store_device_clear(&d);
    fota_store_close(b);
}

static void test_busy(void **state)
{
    struct fx *fx = *state;
    struct fota_store *a = fx->st, *b = NULL;
    uint8_t buf[8];
    size_t len = 0;
    time_t t0;

    /* a holds the write lock; b (on the same thread, so the in-process
     * queue cannot be what blocks it) still reads, and its write gives up
     * with BUSY after the timeout instead of hanging or deadlocking. */
    assert_int_equal(fota_store_open(fx->path, &b), FOTA_STORE_OK);
    assert_int_equal(fota_store_begin(a), FOTA_STORE_OK);
    assert_int_equal(fota_store_meta_set(a, "held", "1", 1), FOTA_STORE_OK);
    assert_int_equal(fota_store_meta_get(b, "held", buf, sizeof(buf), &len),
                     FOTA_STORE_NOT_FOUND);
    t0 = time(NULL);
    assert_int_equal(fota_store_meta_set(b, "other", "2", 1), FOTA_STORE_BUSY);
    assert_true(time(NULL) - t0 >= 4);
    assert_int_equal(fota_store_commit(a), FOTA_STORE_OK);
    assert_int_equal(fota_store_meta_set(b, "other", "2", 1), FOTA_STORE_OK);
    assert_int_equal(fota_store_meta_get(b, "held", buf, sizeof(buf), &len), FOTA_STORE_OK);
    assert_string_equal(fota_store_last_error(NULL), "");
    fota_store_close(b);
}

static void test_names(void **state)
{
    enum fota_store_rollout_state rs;
    enum fota_store_rd_status ds;
    int i;

    (void)state;
    for (i = 0; i < FOTA_STORE_ROLLOUT_STATE_COUNT; i++) {
        const char *name = fota_store_rollout_state_name((enum fota_store_rollout_state)i);
        assert_non_null(name);
        assert_int_equal(fota_store_rollout_state_parse(name, &rs), FOTA_STORE_OK);
        assert_int_equal(rs, i);
    }
    for (i = 0; i < FOTA_STORE_RD_STATUS_COUNT; i++) {
        const char *name = fota_store_rd_status_name((enum fota_store_rd_status)i);
        assert_non_null(name);
        assert_int_equal(fota_store_rd_status_parse(name, &ds), FOTA_STORE_OK);
        assert_int_equal(ds, i);
    }
    assert_null(fota_store_rollout_state_name((enum fota_store_rollout_state)4));
    assert_null(fota_store_rd_status_name((enum fota_store_rd_status)7));
    assert_int_equal(fota_store_rollout_state_parse("running", &rs), FOTA_STORE_INVALID);
    assert_int_equal(fota_store_rd_status_parse("done", &ds), FOTA_STORE_INVALID);
    assert_string_equal(fota_store_rd_status_name(FOTA_STORE_RD_ROLLED_BACK), "rolled_back");
    for (i = 0; i <= FOTA_STORE_INVALID; i++)
        assert_string_not_equal(fota_store_strerror((enum fota_store_err)i), "unknown");
}

static void test_failed_transaction_leaves_nothing(void **state)
{
    struct fx *fx = *state;
    struct fota_store *st = fx->st;
    struct fota_store_device d;
    struct fota_store_audit au;
    struct fota_store_audit *items = NULL;
    size_t n = 0;
    int more = 0;

    /* A caller's multi-step transaction: audit + enrol + a failing history
     * append; the rollback removes every row. */
    memset(&au, 0, sizeof(au));
    au.time = 1;
    snprintf(au.action, sizeof(au.action), "device.accept");
    assert_int_equal(fota_store_begin(st), FOTA_STORE_OK);
    assert_int_equal(fota_store_audit_append(st, &au, NULL), FOTA_STORE_OK);
    enrol(st, "tx1", "hw-a", "1.0.0", FOTA_STORE_DEVICE_ACCEPTED, 1);
    {
        struct fota_store_history h;
        memset(&h, 0, sizeof(h));
        snprintf(h.device_id, sizeof(h.device_id), "ghost");
        snprintf(h.event, sizeof(h.event), "confirmed");
        assert_int_equal(fota_store_device_history_append(st, &h, NULL), FOTA_STORE_CONFLICT);
    }
    assert_int_equal(fota_store_rollback(st), FOTA_STORE_OK);
    assert_int_equal(fota_store_device_get(st, "tx1", &d), FOTA_STORE_NOT_FOUND);
    assert_int_equal(fota_store_audit_list(st, 0, 10, &items, &n, &more), FOTA_STORE_OK);
    assert_int_equal(n, 0);
}

/* ---- audit ---------------------------------------------------------------- */

static void test_audit(void **state)
{
    struct fx *fx = *state;
    struct fota_store *st = fx->st;
    struct fota_store_audit a, *items = NULL;
    size_t n = 0;
    int more = 0, i;
    int64_t id = 0, after = 0, seen = 0;

    memset(&a, 0, sizeof(a));
    for (i = 0; i < 37; i++) {
        a.time = 100 + i;
        snprintf(a.actor, sizeof(a.actor), "op%d", i % 3);
        snprintf(a.action, sizeof(a.action), "rollout.create");
        snprintf(a.object, sizeof(a.object), "rollout/r%d", i);
        a.detail_json = i % 2 ? (char *)"{\"waves\":[5,100]}" : NULL;
        assert_int_equal(fota_store_audit_append(st, &a, &id), FOTA_STORE_OK);
    }
    a.action[0] = '\0';
    assert_int_equal(fota_store_audit_append(st, &a, NULL), FOTA_STORE_INVALID);

    /* Page by the id cursor: every entry once, in order. */
    do {
        assert_int_equal(fota_store_audit_list(st, after, 10, &items, &n, &more), FOTA_STORE_OK);
        for (i = 0; i < (int)n; i++) {
            assert_true(items[i].id > after);
            assert_int_equal(items[i].time, 100 + seen);
            if (seen % 2)
                assert_string_equal(items[i].detail_json, "{\"waves\":[5,100]}");
            else
                assert_null(items[i].detail_json);
            after = items[i].id;
            seen++;
        }
        fota_store_audit_list_free(items, n);
    } while (more);
    assert_int_equal(seen, 37);
    assert_int_equal(after, id);
    assert_int_equal(fota_store_audit_list(st, 0, 0, &items, &n, &more), FOTA_STORE_INVALID);
}

/* ---- per-thread connections ----------------------------------------------- */

struct tg_arg {
    const char *path;
    struct fota_store *first, *second;
};

static void *tg_thread(void *p)
{
    struct tg_arg *a = p;

    a->first = fota_store_thread_get(a->path);
    a->second = fota_store_thread_get(a->path);
    /* No release: the thread's exit closes it (the key's destructor). */
    return NULL;
}

static void test_thread_get(void **state)
{
    struct fx *fx = *state;
    struct fota_store *mine, *again;
    struct tg_arg arg = { fx->path, NULL, NULL };
    pthread_t th;
    char other[320];

    mine = fota_store_thread_get(fx->path);
    assert_non_null(mine);
    again = fota_store_thread_get(fx->path);
    assert_ptr_equal(mine, again);
    assert_int_equal(pthread_create(&th, NULL, tg_thread, &arg), 0);
    pthread_join(th, NULL);
    assert_non_null(arg.first);
    assert_ptr_equal(arg.first, arg.second);
    assert_ptr_not_equal(arg.first, mine);
    /* Another path replaces this thread's connection. */
    snprintf(other, sizeof(other), "%s/other.db", fx->dir);
    again = fota_store_thread_get(other);
    assert_non_null(again);
    fota_store_thread_release();
    fota_store_thread_release();
    assert_null(fota_store_thread_get(NULL));
}

/* ---- WAL bound ------------------------------------------------------------ */

#define WAL_CHECKINS 20000
#define WAL_DEVICES 200
#define WAL_BOUND (64LL * 1024 * 1024)

struct wal_reader {
    const char *path;
    volatile int stop;
    int reads;
};

/* Short read transactions nonstop on another connection, as the API's GETs
 * do: with a reader almost always present, the WAL is never reset on its own. */
static void *wal_reader_main(void *p)
{
    struct wal_reader *r = p;
    struct fota_store *st = NULL;
    struct fota_store_device d;
    char id[32];

    if (fota_store_open(r->path, &st) != FOTA_STORE_OK)
        return NULL;
    while (!r->stop) {
        make_id(id, sizeof(id), r->reads % WAL_DEVICES);
        if (fota_store_device_get(st, id, &d) == FOTA_STORE_OK)
            fota_store_device_clear(&d);
        r->reads++;
    }
    fota_store_close(st);
    return NULL;
}

static long long wal_size(const char *db_path)
{
    char p[320];
    struct stat sb;

    snprintf(p, sizeof(p), "%s-wal", db_path);
    if (stat(p, &sb) != 0)
        return 0;
    return (long long)sb.st_size;
}

static void test_wal_bounded(void **state)
{
    struct fx *fx = *state;
    struct wal_reader reader = { fx->path, 0, 0 };
    pthread_t th;
    char id[32];
    long long size, max = 0;
    int i;

    for (i = 0; i < WAL_DEVICES; i++) {
        make_id(id, sizeof(id), i);
        enrol(fx->st, id, "hw-a", "1.0.0", FOTA_STORE_DEVICE_ACCEPTED, 1);
    }
    assert_int_equal(pthread_create(&th, NULL, wal_reader_main, &reader), 0);
    for (i = 0; i < WAL_CHECKINS; i++) {
        struct fota_store_checkin c;

        make_id(id, sizeof(id), i % WAL_DEVICES);
        memset(&c, 0, sizeof(c));
        c.id = id;
        c.seq = 1 + i / WAL_DEVICES;
        c.now = 1000 + i;
        c.version = "1.0.0";
        c.security_counter = 1;
        c.confirmed = 1;
        c.slots_json = "[{\"slot\":0,\"version\":\"1.0.0\",\"state\":\"confirmed\"}]";
        assert_int_equal(fota_store_device_checkin(fx->st, &c, NULL), FOTA_STORE_OK);
        if (i % 500 == 0) {
            size = wal_size(fx->path);
            if (size > max)
                max = size;
        }
    }
    reader.stop = 1;
    pthread_join(th, NULL);
    size = wal_size(fx->path);
    if (size > max)
        max = size;
    printf("wal: %d check-ins, %d concurrent reads, largest WAL %lld bytes\n", WAL_CHECKINS,
           reader.reads, max);
    assert_true(max < WAL_BOUND);
}

/* ---- micro-benchmark (printed, not asserted) ------------------------------ */

#define BENCH_DEVICES 2000
#define BENCH_OPS 20000
#define BENCH_THREADS 2

struct bench_arg {
    const char *path;
    int first_device;
    int ndev;
    int ops;
    int with_assignment;
    pthread_barrier_t *barrier;
    int failures;
};

static double now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void *bench_thread(void *p)
{
    struct bench_arg *a = p;
    struct fota_store *st = fota_store_thread_get(a->path);
    char id[32];
    int i;

    pthread_barrier_wait(a->barrier);
    if (st == NULL) {
        a->failures = a->ops;
        return NULL;
    }
    for (i = 0; i < a->ops; i++) {
        int dev = a->first_device + i % a->ndev;
        struct fota_store_device after;
        struct fota_store_checkin c;

        make_id(id, sizeof(id), dev);
        c.id = id;
        c.seq = 1000 + i;               /* each device's seq rises every round */
        c.now = 5000 + i;
        c.version = "1.0.0";
        c.security_counter = 1;
        c.confirmed = 1;
        c.slots_json = "[{\"slot\":0,\"version\":\"1.0.0\",\"state\":\"confirmed\"},"
                       "{\"slot\":1,\"version\":null,\"state\":\"empty\"}]";
        if (!a->with_assignment) {
            if (fota_store_device_checkin(st, &c, &after) != FOTA_STORE_OK)
                a->failures++;
            continue;
        }
        /* As the Director does it: check-in and rollout lookup in one
         * write transaction. */
        {
            struct fota_store_assignment as;
            if (fota_store_begin(st) != FOTA_STORE_OK ||
                fota_store_device_checkin(st, &c, &after) != FOTA_STORE_OK ||
                fota_store_rollout_assignment(st, id, 0, &as) != FOTA_STORE_OK) {
                a->failures++;
                fota_store_rollback(st);
                continue;
            }
            if (fota_store_commit(st) != FOTA_STORE_OK)
                a->failures++;
        }
    }
    fota_store_thread_release();
    return NULL;
}

static double bench_run(const char *path, int with_assignment)
{
    struct bench_arg args[BENCH_THREADS];
    pthread_barrier_t barrier;
    pthread_t th[BENCH_THREADS];
    double t0, t1;
    int i, failures = 0;

    pthread_barrier_init(&barrier, NULL, BENCH_THREADS + 1);
    for (i = 0; i < BENCH_THREADS; i++) {
        args[i].path = path;
        args[i].first_device = i * (BENCH_DEVICES / BENCH_THREADS);
        args[i].ndev = BENCH_DEVICES / BENCH_THREADS;
        args[i].ops = BENCH_OPS / BENCH_THREADS;
        args[i].with_assignment = with_assignment;
        args[i].barrier = &barrier;
        args[i].failures = 0;
        assert_int_equal(pthread_create(&th[i], NULL, bench_thread, &args[i]), 0);
    }
    /* The clock starts when every thread has its connection open. */
    pthread_barrier_wait(&barrier);
    t0 = now_s();
    for (i = 0; i < BENCH_THREADS; i++) {
        pthread_join(th[i], NULL);
        failures += args[i].failures;
    }
    t1 = now_s();
    pthread_barrier_destroy(&barrier);
    assert_int_equal(failures, 0);
    return BENCH_OPS / (t1 - t0);
}

/* A fresh database with BENCH_DEVICES accepted devices, all listed in one
 * active rollout of a release for their hardware. */
static void bench_fleet(const char *path)
{
    struct fota_store *st = NULL;
    struct fota_store_rollout r;
    struct fota_store_rollout_member *m = calloc(BENCH_DEVICES, sizeof(*m));
    char (*ids)[32] = calloc(BENCH_DEVICES, sizeof(*ids));
    int i;

    assert_non_null(m);
    assert_non_null(ids);
    assert_int_equal(fota_store_open(path, &st), FOTA_STORE_OK);
    assert_int_equal(fota_store_begin(st), FOTA_STORE_OK);
    for (i = 0; i < BENCH_DEVICES; i++) {
        make_id(ids[i], sizeof(ids[i]), i);
        enrol(st, ids[i], "hw-a", "1.0.0", FOTA_STORE_DEVICE_ACCEPTED, 1);
        m[i].device_id = ids[i];
        m[i].wave = i % 3;
    }
    add_release(st, "rel-bench", "fw-bench.img", "1.1.0", 2, "hw-a", 10);
    rollout_template(&r, "ro-bench", "rel-bench", 100);
    create_visible(st, &r, m, BENCH_DEVICES);
    assert_int_equal(fota_store_commit(st), FOTA_STORE_OK);
    fota_store_close(st);
    free(m);
    free(ids);
}

static void test_bench_checkin(void **state)
{
    struct fx *fx = *state;
    char path1[320], path2[320];
    double rate1, rate2;

    /* Each run on its own file: seq only rises, and a run replays the same
     * seq values. */
    snprintf(path1, sizeof(path1), "%s/bench1.db", fx->dir);
    snprintf(path2, sizeof(path2), "%s/bench2.db", fx->dir);
    bench_fleet(path1);
    bench_fleet(path2);
    rate1 = bench_run(path1, 0);
    rate2 = bench_run(path2, 1);
    printf("bench: %d check-in updates over %d threads: %.0f ops/s\n", BENCH_OPS, BENCH_THREADS,
           rate1);
    printf("bench: %d check-ins (begin, update, rollout assignment, commit) over %d threads: "
           "%.0f ops/s\n",
           BENCH_OPS, BENCH_THREADS, rate2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_open_migrate_twice, setup, teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_first_open, setup, teardown),
        cmocka_unit_test_setup_teardown(test_newer_schema_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_transactions, setup, teardown),
        cmocka_unit_test_setup_teardown(test_meta, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tuf_state, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tokens, setup, teardown),
        cmocka_unit_test_setup_teardown(test_device_enrol_status, setup, teardown),
        cmocka_unit_test_setup_teardown(test_device_session_replay, setup, teardown),
        cmocka_unit_test_setup_teardown(test_device_checkin, setup, teardown),
        cmocka_unit_test_setup_teardown(test_device_list_paging, setup, teardown),
        cmocka_unit_test_setup_teardown(test_device_tags, setup, teardown),
        cmocka_unit_test_setup_teardown(test_device_history, setup, teardown),
        cmocka_unit_test_setup_teardown(test_releases, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rollouts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rollout_hidden_chunks, setup, teardown),
        cmocka_unit_test_setup_teardown(test_assignment, setup, teardown),
        cmocka_unit_test_setup_teardown(test_advance_race, setup, teardown),
        cmocka_unit_test_setup_teardown(test_two_connections, setup, teardown),
        cmocka_unit_test_setup_teardown(test_two_processes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_busy, setup, teardown),
        cmocka_unit_test(test_names),
        cmocka_unit_test_setup_teardown(test_failed_transaction_leaves_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_audit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_thread_get, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wal_bounded, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bench_checkin, setup, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
