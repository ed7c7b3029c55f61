/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The TUF client workflow, one test per rule: each builds a repository with
 * the fixture, runs a refresh (and lookups) over an in-memory port, and
 * asserts the reason code, the requests made, and what was or was not
 * stored. FOTA_TEST_VERBOSE=1 prints the client's log lines.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "tuf_fixture.h"

#define N_KEYS 12
static struct fx_key K[N_KEYS];

struct t {
    struct fx_mem m;
    struct fx_repo r;
    fota_tuf_client *c;
};

static int group_setup(void **state)
{
    (void)state;
    for (size_t i = 0; i < N_KEYS; i++)
        if (fx_key_new(&K[i], FOTA_KEY_ED25519) != 0)
            return -1;
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    for (size_t i = 0; i < N_KEYS; i++)
        fx_key_free(&K[i]);
    return 0;
}

static int setup(void **state)
{
    struct t *t = calloc(1, sizeof(*t));

    if (t == NULL)
        return -1;
    t->m.now = FX_NOW;
    t->m.verbose = getenv("FOTA_TEST_VERBOSE") != NULL;
    fx_repo_init(&t->r, &t->m, K);
    *state = t;
    return 0;
}

static int teardown(void **state)
{
    struct t *t = *state;

    fota_tuf_client_free(t->c);
    fx_repo_free(&t->r);
    fx_mem_free(&t->m);
    free(t);
    return 0;
}

/* A new run on the same device: new client, then refresh. */
static fota_err refresh_with(struct t *t, const struct fota_tuf_limits *limits)
{
    struct fota_tuf_port port = fx_port(&t->m);
    fota_err err;

    fota_tuf_client_free(t->c);
    t->c = NULL;
    fx_new_run(&t->m);
    if (t->m.verbose)
        fprintf(stderr, "  -- run\n");
    err = fota_tuf_client_new(&port, limits, &t->c);
    if (err != FOTA_OK)
        return err;
    return fota_tuf_refresh(t->c);
}

static fota_err refresh(struct t *t)
{
    return refresh_with(t, NULL);
}

/* The fetched names, exactly and in order (NULL-terminated list). */
static void assert_fetched(struct t *t, ...)
{
    va_list ap;
    size_t i = 0;
    const char *name;

    va_start(ap, t);
    while ((name = va_arg(ap, const char *)) != NULL) {
        if (i >= t->m.fetched.n)
            fail_msg("expected fetch of %s, only %zu fetches", name, t->m.fetched.n);
        assert_string_equal(t->m.fetched.v[i], name);
        i++;
    }
    va_end(ap);
    if (i != t->m.fetched.n)
        fail_msg("unexpected extra fetch %s", t->m.fetched.v[i]);
}

static int is_local(struct t *t, const char *name)
{
    return fx_find(&t->m.local, name) != NULL;
}

/* A copy of the local file's bytes, to compare after a failed run. */
static struct fx_blob snap_local(struct t *t, const char *name)
{
    struct fx_blob *b = fx_find(&t->m.local, name), copy = { NULL, NULL, 0 };

    assert_non_null(b);
    copy.data = malloc(b->len);
    assert_non_null(copy.data);
    memcpy(copy.data, b->data, b->len);
    copy.len = b->len;
    return copy;
}

static void assert_local_is(struct t *t, const char *name, struct fx_blob *want)
{
    struct fx_blob *b = fx_find(&t->m.local, name);

    assert_non_null(b);
    assert_int_equal(b->len, want->len);
    assert_memory_equal(b->data, want->data, want->len);
    free(want->data);
    want->data = NULL;
}

static void reinstall_root(struct t *t)
{
    char name[64];
    struct fx_blob *b;

    fx_publish_root(&t->r);
    snprintf(name, sizeof(name), "%lld.root.json", (long long)fx_version(t->r.root));
    b = fx_find(&t->m.remote, name);
    fx_put(&t->m.local, "root.json", b->data, b->len);
}

/* Root v+1 whose root role is newkey, signed by the old and the new key. */
static void rotate_root_key(struct t *t, struct fx_key *newkey)
{
    struct fx_key *old = t->r.root_signers[0];

    fx_root_role(t->r.root, "root", &newkey, 1, 1);
    fx_set_version(t->r.root, fx_version(t->r.root) + 1);
    t->r.root_signers[0] = old;
    t->r.root_signers[1] = newkey;
    t->r.n_root_signers = 2;
    fx_publish_root(&t->r);
    t->r.root_signers[0] = newkey;
    t->r.n_root_signers = 1;
}

static struct fx_role *delegate(struct t *t, const char *parent, const char *name,
                                struct fx_key *k, int terminating, const char *const *paths,
                                const char *const *prefixes)
{
    fx_delegate(fx_role(&t->r, parent)->sig, name, &k, 1, 1, terminating, paths, prefixes);
    return fx_add_role(&t->r, name, k);
}

/* Put env (an envelope) on the remote under name. */
static void put_env(struct t *t, const char *name, json_t *env)
{
    size_t len;
    char *s = fx_dump(env, &len);

    fx_put(&t->m.remote, name, s, len);
    free(s);
    json_decref(env);
}

/* ---- the good path -------------------------------------------------------- */

static void test_good_refresh(void **state)
{
    struct t *t = *state;
    struct fota_tuf_target tg;

    assert_int_equal(refresh(t), FOTA_OK);
    assert_fetched(t, "2.root.json", "timestamp.json", "1.snapshot.json", "1.targets.json", NULL);
    /* stored: exactly the bytes received, under unversioned names */
    assert_true(fx_same(&t->m, "timestamp.json", "timestamp.json"));
    assert_true(fx_same(&t->m, "snapshot.json", "1.snapshot.json"));
    assert_true(fx_same(&t->m, "targets.json", "1.targets.json"));
    assert_true(fx_same(&t->m, "root.json", "1.root.json"));
    assert_int_equal(t->m.local.n, 4);
    assert_int_equal(t->m.removed.n, 0);
    assert_int_equal(t->m.n_reject, 0);
    assert_string_equal(fota_tuf_errmsg(t->c), "");
    assert_int_equal(fota_tuf_consistent_snapshot(t->c), 1);
    assert_int_equal(fota_tuf_version(t->c, "root"), 1);
    assert_int_equal(fota_tuf_version(t->c, "timestamp"), 1);
    assert_int_equal(fota_tuf_version(t->c, "snapshot"), 1);
    assert_int_equal(fota_tuf_version(t->c, "targets"), 1);
    assert_int_equal(fota_tuf_version(t->c, "nobody"), 0);

    assert_int_equal(fota_tuf_find_target(t->c, "file1.txt", &tg), FOTA_OK);
    assert_string_equal(tg.path, "file1.txt");
    assert_string_equal(tg.role, "targets");
    assert_int_equal(tg.length, 5);
    assert_int_equal(tg.n_hashes, 1);
    assert_int_equal(tg.hashes[0].alg, FOTA_HASH_SHA256);
    assert_string_equal(tg.hashes[0].name, "sha256");
    assert_int_equal(tg.hashes[0].digest_len, 32);
    assert_null(tg.custom);

    assert_int_equal(fota_tuf_find_target(t->c, "nope.txt", &tg), FOTA_E_NO_TARGET);
    assert_true(strlen(fota_tuf_errmsg(t->c)) > 0);
    /* one refresh per client */
    assert_int_equal(fota_tuf_refresh(t->c), FOTA_E_STATE);
}

static void test_not_consistent(void **state)
{
    struct t *t = *state;

    json_object_set_new(t->r.root, "consistent_snapshot", json_false());
    reinstall_root(t);
    fx_publish(&t->r);
    assert_int_equal(refresh(t), FOTA_OK);
    assert_fetched(t, "2.root.json", "timestamp.json", "snapshot.json", "targets.json", NULL);
    assert_int_equal(fota_tuf_consistent_snapshot(t->c), 0);
}

static void test_find_before_refresh(void **state)
{
    struct t *t = *state;
    struct fota_tuf_port port = fx_port(&t->m);
    struct fota_tuf_target tg;

    assert_int_equal(fota_tuf_client_new(&port, NULL, &t->c), FOTA_OK);
    assert_int_equal(fota_tuf_find_target(t->c, "file1.txt", &tg), FOTA_E_STATE);
    assert_int_equal(t->m.fetched.n, 0);
}

/* ---- root ------------------------------------------------------------------ */

static void test_root_chain(void **state)
{
    struct t *t = *state;

    rotate_root_key(t, &K[4]);   /* v2: K0 -> K4 */
    rotate_root_key(t, &K[5]);   /* v3: K4 -> K5 */
    assert_int_equal(refresh(t), FOTA_OK);
    assert_fetched(t, "2.root.json", "3.root.json", "4.root.json", "timestamp.json",
                   "1.snapshot.json", "1.targets.json", NULL);
    assert_int_equal(fota_tuf_version(t->c, "root"), 3);
    assert_true(fx_same(&t->m, "root.json", "3.root.json"));
    assert_int_equal(fx_count(&t->m.stored, "root.json"), 2);
    /* the next run starts from v3 */
    assert_int_equal(refresh(t), FOTA_OK);
    assert_string_equal(t->m.fetched.v[0], "4.root.json");
}

static void test_root_not_signed_by_old(void **state)
{
    struct t *t = *state;
    struct fx_key *k4 = &K[4];

    fx_root_role(t->r.root, "root", &k4, 1, 1);
    fx_set_version(t->r.root, 2);
    t->r.root_signers[0] = k4;       /* only the new key signs */
    fx_publish_root(&t->r);
    assert_int_equal(refresh(t), FOTA_E_THRESHOLD);
    assert_fetched(t, "2.root.json", NULL);
    assert_true(fx_same(&t->m, "root.json", "1.root.json"));
    assert_false(is_local(t, "timestamp.json"));
    assert_non_null(strstr(fota_tuf_errmsg(t->c), "trusted root v1"));
    assert_int_equal(t->m.n_reject, 1);
}

static void test_root_not_signed_by_itself(void **state)
{
    struct t *t = *state;
    struct fx_key *k4 = &K[4];

    fx_root_role(t->r.root, "root", &k4, 1, 1);
    fx_set_version(t->r.root, 2);
    fx_publish_root(&t->r);           /* signed by K0 only */
    assert_int_equal(refresh(t), FOTA_E_THRESHOLD);
    assert_true(fx_same(&t->m, "root.json", "1.root.json"));
    assert_non_null(strstr(fota_tuf_errmsg(t->c), "its own root role"));
}

static void test_root_wrong_version(void **state)
{
    struct t *t = *state;

    /* 2.root.json that says version 3 */
    fx_set_version(t->r.root, 3);
    fx_publish_as(&t->r, t->r.root, t->r.root_signers, 1, "2.root.json", NULL, NULL, NULL);
    assert_int_equal(refresh(t), FOTA_E_VERSION);
    assert_true(fx_same(&t->m, "root.json", "1.root.json"));

    /* 2.root.json that says version 1 (a replay of the trusted one) */
    fx_set_version(t->r.root, 1);
    fx_publish_as(&t->r, t->r.root, t->r.root_signers, 1, "2.root.json", NULL, NULL, NULL);
    assert_int_equal(refresh(t), FOTA_E_ROLLBACK);
    assert_true(fx_same(&t->m, "root.json", "1.root.json"));
    assert_false(is_local(t, "timestamp.json"));
}

static void test_root_expired_final(void **state)
{
    struct t *t = *state;

    fx_set_version(t->r.root, 2);
    fx_set_expires(t->r.root, FX_PAST);
    fx_publish_root(&t->r);
    assert_int_equal(refresh(t), FOTA_E_EXPIRED);
    assert_fetched(t, "2.root.json", "3.root.json", NULL);
    /* v2 verified and was stored; nothing after the expiry check ran */
    assert_true(fx_same(&t->m, "root.json", "2.root.json"));
    assert_false(is_local(t, "timestamp.json"));
}

static void test_root_expired_intermediate_ok(void **state)
{
    struct t *t = *state;

    fx_set_version(t->r.root, 2);
    fx_set_expires(t->r.root, FX_PAST);
    fx_publish_root(&t->r);
    fx_set_version(t->r.root, 3);
    fx_set_expires(t->r.root, FX_FUTURE);
    fx_publish_root(&t->r);
    assert_int_equal(refresh(t), FOTA_OK);
    assert_int_equal(fota_tuf_version(t->c, "root"), 3);
}

static void test_stored_root_invalid(void **state)
{
    struct t *t = *state;
    json_t *env;
    char *sig;

    /* bad signature on the stored root */
    env = fx_envelope(t->r.root, t->r.root_signers, 1);
    sig = strdup(json_string_value(json_object_get(json_array_get(
        json_object_get(env, "signatures"), 0), "sig")));
    sig[0] = sig[0] == '0' ? '1' : '0';
    json_object_set_new(json_array_get(json_object_get(env, "signatures"), 0), "sig",
                        json_string(sig));
    free(sig);
    {
        size_t len;
        char *s = fx_dump(env, &len);
        fx_put(&t->m.local, "root.json", s, len);
        free(s);
    }
    json_decref(env);
    assert_int_equal(refresh(t), FOTA_E_THRESHOLD);
    assert_null(t->c);
    assert_int_equal(t->m.fetched.n, 0);
    assert_int_equal(t->m.n_reject, 1);

    /* a stored root of the wrong type */
    env = fx_envelope(t->r.ts, &t->r.ts_signer, 1);
    put_env(t, "x", env);
    fx_put(&t->m.local, "root.json", fx_find(&t->m.remote, "x")->data,
           fx_find(&t->m.remote, "x")->len);
    assert_int_equal(refresh(t), FOTA_E_TYPE);
    assert_int_equal(t->m.fetched.n, 0);

    /* not JSON */
    fx_put(&t->m.local, "root.json", "{\"signed\":", 10);
    assert_int_equal(refresh(t), FOTA_E_PARSE);
    assert_int_equal(t->m.fetched.n, 0);

    /* no stored root */
    fx_del(&t->m.local, "root.json");
    assert_int_equal(refresh(t), FOTA_E_NOT_FOUND);
    assert_int_equal(t->m.fetched.n, 0);
}

static void test_same_key_two_keyids(void **state)
{
    struct t *t = *state;
    const char *fake = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    json_t *role, *env;

    /* root role: K0 under its own id and under a second label, threshold 2 */
    json_object_set(json_object_get(t->r.root, "keys"), fake, K[0].obj);
    role = json_object_get(json_object_get(t->r.root, "roles"), "root");
    json_array_append_new(json_object_get(role, "keyids"), json_string(fake));
    json_object_set_new(role, "threshold", json_integer(2));
    env = fx_envelope(t->r.root, t->r.root_signers, 1);
    assert_int_equal(fota_tuf_sign(env, K[0].priv, fake), FOTA_OK);
    assert_int_equal(json_array_size(json_object_get(env, "signatures")), 2);
    put_env(t, "x", env);
    fx_put(&t->m.local, "root.json", fx_find(&t->m.remote, "x")->data,
           fx_find(&t->m.remote, "x")->len);
    assert_int_equal(refresh(t), FOTA_E_THRESHOLD);
    assert_int_equal(t->m.fetched.n, 0);
}

static void test_root_rotation_limit(void **state)
{
    struct t *t = *state;
    struct fota_tuf_limits l;

    fx_set_version(t->r.root, 2);
    fx_publish_root(&t->r);
    fx_set_version(t->r.root, 3);
    fx_publish_root(&t->r);
    fota_tuf_limits_default(&l);
    l.max_root_rotations = 1;
    assert_int_equal(refresh_with(t, &l), FOTA_OK);
    assert_fetched(t, "2.root.json", "timestamp.json", "1.snapshot.json", "1.targets.json", NULL);
    assert_int_equal(fota_tuf_version(t->c, "root"), 2);
}

/* ---- timestamp ------------------------------------------------------------- */

static void test_timestamp_rollback(void **state)
{
    struct t *t = *state;
    struct fx_blob old;

    fx_set_version(t->r.ts, 3);
    fx_publish(&t->r);
    assert_int_equal(refresh(t), FOTA_OK);
    old = snap_local(t, "timestamp.json");

    fx_set_version(t->r.ts, 2);
    fx_publish(&t->r);
    assert_int_equal(refresh(t), FOTA_E_ROLLBACK);
    assert_fetched(t, "2.root.json", "timestamp.json", NULL);
    assert_int_equal(t->m.stored.n, 0);
    assert_local_is(t, "timestamp.json", &old);
    assert_non_null(strstr(fota_tuf_errmsg(t->c), "version 2 is lower than trusted 3"));
}

static void test_timestamp_equal_version_not_stored(void **state)
{
    struct t *t = *state;
    struct fx_blob old;

    assert_int_equal(refresh(t), FOTA_OK);
    old = snap_local(t, "timestamp.json");
    /* same version, different bytes */
    json_object_set_new(t->r.ts, "x-note", json_string("re-signed"));
    fx_publish(&t->r);
    assert_false(fx_same(&t->m, "timestamp.json", "timestamp.json"));
    assert_int_equal(refresh(t), FOTA_OK);
    assert_fetched(t, "2.root.json", "timestamp.json", NULL);
    assert_int_equal(t->m.stored.n, 0);
    assert_local_is(t, "timestamp.json", &old);
    assert_int_equal(fota_tuf_version(t->c, "timestamp"), 1);
}

static void test_timestamp_snapshot_rollback(void **state)
{
    struct t *t = *state;
    struct fx_blob old;

    fx_set_version(t->r.sn, 2);
    fx_publish(&t->r);
    assert_int_equal(refresh(t), FOTA_OK);
    old = snap_local(t, "timestamp.json");

    fx_set_version(t->r.sn, 1);
    fx_set_version(t->r.ts, 2);
    fx_publish(&t->r);
    assert_int_equal(refresh(t), FOTA_E_ROLLBACK);
    assert_fetched(t, "2.root.json", "timestamp.json", NULL);
    assert_local_is(t, "timestamp.json", &old);
}

static void test_timestamp_expired(void **state)
{
    struct t *t = *state;

    fx_set_expires(t->r.ts, FX_PAST);
    fx_publish(&t->r);
    assert_int_equal(refresh(t), FOTA_E_EXPIRED);
    assert_fetched(t, "2.root.json", "timestamp.json", NULL);
    assert_false(is_local(t, "timestamp.json"));
}

static void test_timestamp_bad_signature(void **state)
{
    struct t *t = *state;

    t->r.ts_signer = &K[9];          /* not the timestamp key */
    fx_publish(&t->r);
    assert_int_equal(refresh(t), FOTA_E_THRESHOLD);
    assert_false(is_local(t, "timestamp.json"));
}

static void test_duplicate_signature_keyid(void **state)
{
    struct t *t = *state;
    json_t *env, *sigs;

    fx_publish(&t->r);
    env = fx_envelope(t->r.ts, &t->r.ts_signer, 1);
    sigs = json_object_get(env, "signatures");
    json_array_append_new(sigs, json_deep_copy(json_array_get(sigs, 0)));
    put_env(t, "timestamp.json", env);
    assert_int_equal(refresh(t), FOTA_E_DUPLICATE);
    assert_false(is_local(t, "timestamp.json"));
}

static void test_invalid_extra_signatures_ignored(void **state)
{
    struct t *t = *state;
    struct fx_key *ts_keys[2] = { &K[1], &K[7] };
    json_t *env, *sigs, *extra;

    fx_root_role(t->r.root, "timestamp", ts_keys, 2, 1);
    reinstall_root(t);
    fx_publish(&t->r);
    env = fx_envelope(t->r.ts, &t->r.ts_signer, 1);
    /* a valid signature by a key the role does not list */
    extra = fx_envelope(t->r.ts, (struct fx_key *[]){ &K[8] }, 1);
    sigs = json_object_get(env, "signatures");
    json_array_append(sigs, json_array_get(json_object_get(extra, "signatures"), 0));
    json_decref(extra);
    /* a bad signature by a listed key, an empty one by an unknown key id */
    json_array_append_new(sigs, json_pack("{s:s, s:s}", "keyid", K[7].id, "sig", "00ff"));
    json_array_append_new(sigs, json_pack("{s:s, s:s}", "keyid",
                                          "0123456789abcdef0123456789abcdef"
                                          "0123456789abcdef0123456789abcdef", "sig", ""));
    put_env(t, "timestamp.json", env);
    assert_int_equal(refresh(t), FOTA_OK);
    assert_true(fx_same(&t->m, "timestamp.json", "timestamp.json"));
}

/* ---- snapshot -------------------------------------------------------------- */

static void test_snapshot_expired(void **state)
{
    struct t *t = *state;

    fx_set_expires(t->r.sn, FX_PAST);
    fx_publish(&t->r);
    assert_int_equal(refresh(t), FOTA_E_EXPIRED);
    assert_fetched(t, "2.root.json", "timestamp.json", "1.snapshot.json", NULL);
    assert_true(is_local(t, "timestamp.json"));
    assert_false(is_local(t, "snapshot.json"));
}

static void test_snapshot_hash_mismatch(void **state)
{
    struct t *t = *state;
    struct fx_blob *b;
    char *sp;

    t->r.ts_hashes = 1;
    fx_publish(&t->r);
    /* same length, one whitespace byte changed: still valid and signed */
    b = fx_find(&t->m.remote, "1.snapshot.json");
    sp = memchr(b->data, ' ', b->len);
    assert_non_null(sp);
    *sp = '\t';
    assert_int_equal(refresh(t), FOTA_E_HASH);
    assert_true(is_local(t, "timestamp.json"));
    assert_false(is_local(t, "snapshot.json"));
}

static void test_snapshot_length(void **state)
{
    struct t *t = *state;
    struct fx_blob *b;
    char *sp;

    t->r.ts_hashes = 1;
    fx_publish(&t->r);
    /* longer than timestamp says: the fetch itself is capped */
    b = fx_find(&t->m.remote, "1.snapshot.json");
    b->data = realloc(b->data, b->len + 1);
    b->data[b->len++] = ' ';
    assert_int_equal(refresh(t), FOTA_E_LENGTH);
    assert_false(is_local(t, "snapshot.json"));

    /* shorter than timestamp says */
    b->len -= 1;
    sp = memchr(b->data, ' ', b->len);
    memmove(sp, sp + 1, b->len - (size_t)((uint8_t *)sp + 1 - b->data));
    b->len -= 1;
    assert_int_equal(refresh(t), FOTA_E_LENGTH);
    assert_false(is_local(t, "snapshot.json"));
}

static void test_snapshot_unknown_hash_alg(void **state)
{
    struct t *t = *state;
    json_t *hashes;

    t->r.ts_hashes = 1;
    fx_publish(&t->r);
    t->r.ts_manual = 1;
    hashes = json_object_get(json_object_get(json_object_get(t->r.ts, "meta"), "snapshot.json"),
                             "hashes");
    json_object_set_new(hashes, "md5", json_string("00112233445566778899aabbccddeeff"));
    fx_publish(&t->r);
    assert_int_equal(refresh(t), FOTA_E_UNSUPPORTED);
    assert_true(is_local(t, "timestamp.json"));
    assert_false(is_local(t, "snapshot.json"));
}

static void test_snapshot_version_mismatch(void **state)
{
    struct t *t = *state;
    struct fx_blob *b;

    fx_publish(&t->r);
    t->r.ts_manual = 1;
    json_object_set_new(json_object_get(json_object_get(t->r.ts, "meta"), "snapshot.json"),
                        "version", json_integer(2));
    fx_publish(&t->r);
    b = fx_find(&t->m.remote, "1.snapshot.json");
    fx_put(&t->m.remote, "2.snapshot.json", b->data, b->len);
    assert_int_equal(refresh(t), FOTA_E_VERSION);
    assert_false(is_local(t, "snapshot.json"));
}

static void test_snapshot_removes_role(void **state)
{
    struct t *t = *state;
    static const char *const p_a[] = { "a/*", NULL };
    struct fx_blob old;

    delegate(t, "targets", "A", &K[4], 0, p_a, NULL);
    fx_publish(&t->r);
    assert_int_equal(refresh(t), FOTA_OK);
    old = snap_local(t, "snapshot.json");

    fx_publish(&t->r);
    t->r.sn_manual = 1;
    json_object_del(json_object_get(t->r.sn, "meta"), "A.json");
    fx_set_version(t->r.sn, 2);
    fx_set_version(t->r.ts, 2);
    fx_publish(&t->r);
    assert_int_equal(refresh(t), FOTA_E_ROLLBACK);
    assert_fetched(t, "2.root.json", "timestamp.json", "2.snapshot.json", NULL);
    assert_local_is(t, "snapshot.json", &old);
    assert_non_null(strstr(fota_tuf_errmsg(t->c), "A.json"));
}

static void test_snapshot_targets_version_rollback(void **state)
{
    struct t *t = *state;
    struct fx_blob old;

    fx_set_version(t->r.roles[0].sig, 2);
    fx_publish(&t->r);
    assert_int_equal(refresh(t), FOTA_OK);
    old = snap_local(t, "snapshot.json");

    fx_set_version(t->r.roles[0].sig, 1);
    fx_set_version(t->r.sn, 2);
    fx_set_version(t->r.ts, 2);
    fx_publish(&t->r);
    assert_int_equal(refresh(t), FOTA_E_ROLLBACK);
    assert_local_is(t, "snapshot.json", &old);
    assert_non_null(strstr(fota_tuf_errmsg(t->c),
                           "2.snapshot.json: version 1 is lower than trusted 2 for targets.json"));
}

/* ---- targets --------------------------------------------------------------- */

static void test_targets_expired(void **state)
{
    struct t *t = *state;

    fx_set_expires(t->r.roles[0].sig, FX_PAST);
    fx_publish(&t->r);
    assert_int_equal(refresh(t), FOTA_E_EXPIRED);
    assert_true(is_local(t, "snapshot.json"));
    assert_false(is_local(t, "targets.json"));
}

static void test_targets_version_mismatch(void **state)
{
    struct t *t = *state;
    struct fx_blob *b;

    fx_publish(&t->r);
    t->r.sn_manual = 1;
    json_object_set_new(json_object_get(json_object_get(t->r.sn, "meta"), "targets.json"),
                        "version", json_integer(2));
    fx_publish(&t->r);
    b = fx_find(&t->m.remote, "1.targets.json");
    fx_put(&t->m.remote, "2.targets.json", b->data, b->len);
    assert_int_equal(refresh(t), FOTA_E_VERSION);
    assert_fetched(t, "2.root.json", "timestamp.json", "1.snapshot.json", "2.targets.json",
                   NULL);
    assert_false(is_local(t, "targets.json"));
}

static void test_targets_threshold_short(void **state)
{
    struct t *t = *state;
    struct fx_key *tk[2] = { &K[3], &K[6] };

    fx_root_role(t->r.root, "targets", tk, 2, 2);  /* 2 of 2 */
    reinstall_root(t);
    fx_publish(&t->r);                              /* signed by K3 only */
    assert_int_equal(refresh(t), FOTA_E_THRESHOLD);
    assert_true(is_local(t, "snapshot.json"));
    assert_false(is_local(t, "targets.json"));
    assert_non_null(strstr(fota_tuf_errmsg(t->c), "only 1 of 2 keys"));

    /* both sign: fine */
    t->r.roles[0].signers[1] = &K[6];
    t->r.roles[0].n_signers = 2;
    fx_publish(&t->r);
    assert_int_equal(refresh(t), FOTA_OK);
    assert_true(fx_same(&t->m, "targets.json", "1.targets.json"));
}

static void test_targets_hash_from_snapshot(void **state)
{
    struct t *t = *state;
    struct fx_blob *b;
    char *sp;

    t->r.sn_hashes = 1;
    fx_publish(&t->r);
    b = fx_find(&t->m.remote, "1.targets.json");
    sp = memchr(b->data, ' ', b->len);
    *sp = '\n';
    assert_int_equal(refresh(t), FOTA_E_HASH);
    assert_false(is_local(t, "targets.json"));
}

static void test_target_unknown_hash_alg(void **state)
{
    struct t *t = *state;
    struct fota_tuf_target tg;

    json_object_set_new(json_object_get(t->r.roles[0].sig, "targets"), "odd.bin",
                        json_pack("{s:i, s:{s:s, s:s}}", "length", 3, "hashes", "sha256",
                                  "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
                                  "blake2b", "00"));
    fx_publish(&t->r);
    assert_int_equal(refresh(t), FOTA_OK);
    assert_int_equal(fota_tuf_find_target(t->c, "odd.bin", &tg), FOTA_E_UNSUPPORTED);
    assert_int_equal(fota_tuf_find_target(t->c, "file1.txt", &tg), FOTA_OK);
}

/* ---- fast-forward recovery and reuse of stored metadata -------------------- */

static void test_fast_forward_recovery(void **state)
{
    struct t *t = *state;
    struct fx_key *ts_keys[2] = { &K[1], &K[8] };

    assert_int_equal(refresh(t), FOTA_OK);
    /* an attacker with the timestamp key fast-forwards the device */
    fx_set_version(t->r.ts, 100);
    fx_publish(&t->r);
    assert_int_equal(refresh(t), FOTA_OK);
    assert_int_equal(fota_tuf_version(t->c, "timestamp"), 100);

    /* the repository recovers: new timestamp keys in root v2 (the old key
     * is still listed, so the stale v100 would still verify) */
    fx_root_role(t->r.root, "timestamp", ts_keys, 2, 1);
    fx_set_version(t->r.root, 2);
    fx_publish_root(&t->r);
    fx_set_version(t->r.ts, 2);
    t->r.ts_signer = &K[8];
    fx_publish(&t->r);
    assert_int_equal(refresh(t), FOTA_OK);
    assert_int_equal(fx_count(&t->m.removed, "timestamp.json"), 1);
    assert_int_equal(fx_count(&t->m.removed, "snapshot.json"), 1);
    assert_int_equal(fota_tuf_version(t->c, "timestamp"), 2);
    assert_true(fx_same(&t->m, "timestamp.json", "timestamp.json"));
    assert_fetched(t, "2.root.json", "3.root.json", "timestamp.json", "1.snapshot.json", NULL);

    /* a root update that leaves those keys alone removes nothing */
    fx_set_version(t->r.root, 3);
    fx_publish_root(&t->r);
    assert_int_equal(refresh(t), FOTA_OK);
    assert_int_equal(t->m.removed.n, 0);
}

static void test_fast_forward_removal_survives_chain_failure(void **state)
{
    struct t *t = *state;
    struct fx_key *k8 = &K[8];

    assert_int_equal(refresh(t), FOTA_OK);
    /* root v2 rotates the snapshot key; 3.root.json is garbage */
    fx_root_role(t->r.root, "snapshot", &k8, 1, 1);
    fx_set_version(t->r.root, 2);
    fx_publish_root(&t->r);
    fx_put(&t->m.remote, "3.root.json", "{}", 2);
    assert_int_equal(refresh(t), FOTA_E_PARSE);
    assert_true(fx_same(&t->m, "root.json", "2.root.json"));
    assert_false(is_local(t, "timestamp.json"));
    assert_false(is_local(t, "snapshot.json"));
    assert_int_equal(fx_count(&t->m.removed, "snapshot.json"), 1);
}

static void test_reuse_stored_metadata(void **state)
{
    struct t *t = *state;
    struct fota_tuf_target tg;

    assert_int_equal(refresh(t), FOTA_OK);
    /* only timestamp changes: snapshot and targets come from storage */
    fx_set_version(t->r.ts, 2);
    fx_publish(&t->r);
    assert_int_equal(refresh(t), FOTA_OK);
    assert_fetched(t, "2.root.json", "timestamp.json", NULL);
    assert_int_equal(t->m.stored.n, 1);
    assert_string_equal(t->m.stored.v[0], "timestamp.json");
    assert_int_equal(fota_tuf_find_target(t->c, "file1.txt", &tg), FOTA_OK);

    /* snapshot changes, targets does not */
    fx_set_version(t->r.sn, 2);
    fx_set_version(t->r.ts, 3);
    fx_publish(&t->r);
    assert_int_equal(refresh(t), FOTA_OK);
    assert_fetched(t, "2.root.json", "timestamp.json", "2.snapshot.json", NULL);

    /* a stored snapshot that expired meanwhile is fetched again */
    fx_set_expires(t->r.sn, "2025-10-10T00:00:00Z");
    fx_set_version(t->r.sn, 3);
    fx_set_version(t->r.ts, 4);
    fx_publish(&t->r);
    assert_int_equal(refresh(t), FOTA_OK);
    t->m.now = 1760100000;           /* 2025-10-10T12:40:00Z */
    fx_set_expires(t->r.sn, FX_FUTURE);
    fx_set_version(t->r.ts, 5);
    fx_publish(&t->r);              /* the same snapshot v3, fresh again */
    assert_int_equal(refresh(t), FOTA_OK);
    assert_fetched(t, "2.root.json", "timestamp.json", "3.snapshot.json", NULL);
}

/* ---- delegations ------------------------------------------------------------ */

static const char *const P_TXT[] = { "*.txt", NULL };

static void test_delegation_order(void **state)
{
    struct t *t = *state;
    static const char *const p_f[] = { "f.txt", NULL };
    struct fota_tuf_target tg;
    struct fx_role *a, *b, *c;

    a = delegate(t, "targets", "A", &K[4], 0, P_TXT, NULL);
    b = delegate(t, "targets", "B", &K[5], 0, P_TXT, NULL);
    c = delegate(t, "A", "C", &K[6], 0, p_f, NULL);
    (void)a;
    fx_add_target(c->sig, "f.txt", "from C");
    fx_add_target(b->sig, "f.txt", "from B");
    fx_add_target(b->sig, "g.txt", "g");
    fx_publish(&t->r);
    assert_int_equal(refresh(t), FOTA_OK);
    /* delegations are lazy */
    assert_fetched(t, "2.root.json", "timestamp.json", "1.snapshot.json", "1.targets.json", NULL);

    assert_int_equal(fota_tuf_find_target(t->c, "f.txt", &tg), FOTA_OK);
    assert_string_equal(tg.role, "C");
    assert_int_equal(tg.length, 6);
    assert_fetched(t, "2.root.json", "timestamp.json", "1.snapshot.json", "1.targets.json",
                   "1.A.json", "1.C.json", NULL);

    assert_int_equal(fota_tuf_find_target(t->c, "g.txt", &tg), FOTA_OK);
    assert_string_equal(tg.role, "B");
    assert_fetched(t, "2.root.json", "timestamp.json", "1.snapshot.json", "1.targets.json",
                   "1.A.json", "1.C.json", "1.B.json", NULL);
    assert_true(fx_same(&t->m, "A.json", "1.A.json"));
    assert_true(fx_same(&t->m, "B.json", "1.B.json"));
    assert_true(fx_same(&t->m, "C.json", "1.C.json"));
}

static void test_delegation_terminating(void **state)
{
    struct t *t = *state;
    static const char *const p_bin[] = { "*.bin", NULL };
    static const char *const p_b[] = { "*.txt", "*.md", NULL };
    struct fota_tuf_target tg;
    struct fx_role *b;

    delegate(t, "targets", "X", &K[6], 1, p_bin, NULL);
    delegate(t, "targets", "A", &K[4], 1, P_TXT, NULL);
    b = delegate(t, "targets", "B", &K[5], 0, p_b, NULL);
    fx_add_target(b->sig, "f.txt", "b");
    fx_add_target(b->sig, "f.md", "b");
    fx_publish(&t->r);
    assert_int_equal(refresh(t), FOTA_OK);

    /* A matches and terminates: B is never asked */
    assert_int_equal(fota_tuf_find_target(t->c, "f.txt", &tg), FOTA_E_NO_TARGET);
    assert_int_equal(fx_count(&t->m.fetched, "1.A.json"), 1);
    assert_int_equal(fx_count(&t->m.fetched, "1.B.json"), 0);
    assert_int_equal(fx_count(&t->m.fetched, "1.X.json"), 0);

    /* terminating roles that do not match stop nothing */
    assert_int_equal(fota_tuf_find_target(t->c, "f.md", &tg), FOTA_OK);
    assert_string_equal(tg.role, "B");
    assert_int_equal(fx_count(&t->m.fetched, "1.X.json"), 0);
}

static void test_delegation_terminating_keeps_earlier_siblings(void **state)
{
    struct t *t = *state;
    struct fota_tuf_target tg;
    struct fx_role *a;

    /* A (non-terminating) then T (terminating) both match: A is still searched */
    a = delegate(t, "targets", "A", &K[4], 0, P_TXT, NULL);
    delegate(t, "targets", "T", &K[5], 1, P_TXT, NULL);
    fx_add_target(a->sig, "f.txt", "a");
    fx_publish(&t->r);
    assert_int_equal(refresh(t), FOTA_OK);
    assert_int_equal(fota_tuf_find_target(t->c, "f.txt", &tg), FOTA_OK);
    assert_string_equal(tg.role, "A");
    assert_int_equal(fx_count(&t->m.fetched, "1.T.json"), 0);
}

static void test_delegation_patterns(void **state)
{
    struct t *t = *state;
    static const char *const p_s[] = { "*", NULL };
    static const char *const p_d[] = { "dir/*.bin", NULL };
    static const char *const p_v[] = { "v?.img", NULL };
    static const char *const p_q[] = { "[ab]?.cfg", "[!a-y]*.cfg", NULL };
    struct fota_tuf_target tg;
    struct fx_role *s, *d, *v, *q;

    s = delegate(t, "targets", "S", &K[4], 0, p_s, NULL);
    d = delegate(t, "targets", "D", &K[5], 0, p_d, NULL);
    v = delegate(t, "targets", "V", &K[6], 0, p_v, NULL);
    q = delegate(t, "targets", "Q", &K[7], 0, p_q, NULL);
    fx_add_target(s->sig, "a/b", "s");
    fx_add_target(s->sig, "x", "s");
    fx_add_target(d->sig, "dir/x.bin", "d");
    fx_add_target(d->sig, "dir/sub/x.bin", "d");
    fx_add_target(v->sig, "v1.img", "v");
    fx_add_target(v->sig, "v12.img", "v");
    fx_add_target(v->sig, "v/.img", "v");
    fx_add_target(q->sig, "a1.cfg", "q");
    fx_add_target(q->sig, "c1.cfg", "q");
    fx_add_target(q->sig, "z.cfg", "q");
    fx_publish(&t->r);
    assert_int_equal(refresh(t), FOTA_OK);

    /* "*" never crosses a "/" */
    assert_int_equal(fota_tuf_find_target(t->c, "a/b", &tg), FOTA_E_NO_TARGET);
    assert_int_equal(fota_tuf_version(t->c, "S"), 0);
    assert_int_equal(fota_tuf_find_target(t->c, "dir/sub/x.bin", &tg), FOTA_E_NO_TARGET);
    assert_int_equal(fota_tuf_version(t->c, "D"), 0);
    assert_int_equal(t->m.fetched.n, 4);
    /* "?" is one character, never "/" ("v12.img" is one segment: S's "*"
     * matches it, so S is searched, but V is not) */
    assert_int_equal(fota_tuf_find_target(t->c, "v12.img", &tg), FOTA_E_NO_TARGET);
    assert_int_equal(fota_tuf_version(t->c, "S"), 1);
    assert_int_equal(fota_tuf_find_target(t->c, "v/.img", &tg), FOTA_E_NO_TARGET);
    assert_int_equal(fota_tuf_version(t->c, "V"), 0);
    assert_int_equal(fota_tuf_find_target(t->c, "c1.cfg", &tg), FOTA_E_NO_TARGET);
    assert_int_equal(fota_tuf_version(t->c, "Q"), 0);
    assert_int_equal(t->m.fetched.n, 5);

    assert_int_equal(fota_tuf_find_target(t->c, "dir/x.bin", &tg), FOTA_OK);
    assert_string_equal(tg.role, "D");
    assert_int_equal(fota_tuf_find_target(t->c, "v1.img", &tg), FOTA_OK);
    assert_string_equal(tg.role, "V");
    assert_int_equal(fota_tuf_find_target(t->c, "a1.cfg", &tg), FOTA_OK);
    assert_string_equal(tg.role, "Q");
    assert_int_equal(fota_tuf_find_target(t->c, "z.cfg", &tg), FOTA_OK);
    assert_string_equal(tg.role, "Q");
    assert_int_equal(fota_tuf_find_target(t->c, "x", &tg), FOTA_OK);
    assert_string_equal(tg.role, "S");
}

static void test_delegation_hash_prefixes(void **state)
{
    struct t *t = *state;
    struct fota_tuf_target tg;
    char *hex = fx_hex_digest(FOTA_HASH_SHA256, "h.bin", 5);
    char *other = fx_hex_digest(FOTA_HASH_SHA256, "other.bin", 9);
    char prefix[5];
    const char *prefixes[2] = { prefix, NULL };
    struct fx_role *h;

    memcpy(prefix, hex, 4);
    prefix[4] = '\0';
    assert_memory_not_equal(other, prefix, 4);
    h = delegate(t, "targets", "H", &K[4], 0, NULL, prefixes);
    fx_add_target(h->sig, "h.bin", "h");
    fx_add_target(h->sig, "other.bin", "h");
    fx_publish(&t->r);
    assert_int_equal(refresh(t), FOTA_OK);
    assert_int_equal(fota_tuf_find_target(t->c, "other.bin", &tg), FOTA_E_NO_TARGET);
    assert_int_equal(fota_tuf_version(t->c, "H"), 0);
    assert_int_equal(fota_tuf_find_target(t->c, "h.bin", &tg), FOTA_OK);
    assert_string_equal(tg.role, "H");
    free(hex);
    free(other);
}

static void test_role_not_in_snapshot(void **state)
{
    struct t *t = *state;
    struct fota_tuf_target tg;
    struct fx_role *a;

    a = delegate(t, "targets", "A", &K[4], 0, P_TXT, NULL);
    fx_add_target(a->sig, "f.txt", "a");
    fx_publish(&t->r);
    t->r.sn_manual = 1;
    json_object_del(json_object_get(t->r.sn, "meta"), "A.json");
    fx_publish(&t->r);
    assert_int_equal(refresh(t), FOTA_OK);
    assert_int_equal(fota_tuf_find_target(t->c, "f.txt", &tg), FOTA_E_ROLE);
    assert_int_equal(fx_count(&t->m.fetched, "1.A.json"), 0);
    assert_false(is_local(t, "A.json"));
    assert_non_null(strstr(fota_tuf_errmsg(t->c), "not listed in snapshot"));
}

static void test_role_loaded_once(void **state)
{
    struct t *t = *state;
    struct fota_tuf_target tg;
    struct fx_role *a;

    a = delegate(t, "targets", "A", &K[4], 0, P_TXT, NULL);
    fx_add_target(a->sig, "f.txt", "a");
    fx_add_target(a->sig, "g.txt", "a");
    fx_publish(&t->r);
    assert_int_equal(refresh(t), FOTA_OK);
    assert_int_equal(fota_tuf_find_target(t->c, "f.txt", &tg), FOTA_OK);
    assert_int_equal(fota_tuf_find_target(t->c, "g.txt", &tg), FOTA_OK);
    assert_int_equal(fota_tuf_find_target(t->c, "h.txt", &tg), FOTA_E_NO_TARGET);
    assert_int_equal(fx_count(&t->m.fetched, "1.A.json"), 1);
    assert_int_equal(fx_count(&t->m.stored, "A.json"), 1);

    /* next run, nothing changed: A comes from storage */
    assert_int_equal(refresh(t), FOTA_OK);
    assert_int_equal(fota_tuf_find_target(t->c, "f.txt", &tg), FOTA_OK);
    assert_fetched(t, "2.root.json", "timestamp.json", NULL);

    /* A changes: fetched again */
    fx_set_version(a->sig, 2);
    fx_set_version(t->r.sn, 2);
    fx_set_version(t->r.ts, 2);
    fx_publish(&t->r);
    assert_int_equal(refresh(t), FOTA_OK);
    assert_int_equal(fota_tuf_find_target(t->c, "f.txt", &tg), FOTA_OK);
    assert_fetched(t, "2.root.json", "timestamp.json", "2.snapshot.json", "2.A.json", NULL);
    assert_int_equal(fota_tuf_version(t->c, "A"), 2);
}

static void test_encoded_role_names(void **state)
{
    struct t *t = *state;
    static const char *const p_all[] = { "*", NULL };
    struct fota_tuf_target tg;
    struct fx_role *a;

    a = delegate(t, "targets", "a/b c", &K[4], 0, p_all, NULL);
    fx_add_target(a->sig, "x", "a");
    fx_publish(&t->r);
    assert_int_equal(refresh(t), FOTA_OK);
    assert_int_equal(fota_tuf_find_target(t->c, "x", &tg), FOTA_OK);
    assert_string_equal(tg.role, "a/b c");
    assert_int_equal(fx_count(&t->m.fetched, "1.a%2Fb%20c.json"), 1);
    assert_true(fx_same(&t->m, "a%2Fb%20c.json", "1.a%2Fb%20c.json"));
    assert_int_equal(fota_tuf_version(t->c, "a/b c"), 1);
}

static void test_delegated_bad_signature(void **state)
{
    struct t *t = *state;
    struct fota_tuf_target tg;
    struct fx_role *a;

    a = delegate(t, "targets", "A", &K[4], 0, P_TXT, NULL);
    fx_add_target(a->sig, "f.txt", "a");
    a->signers[0] = &K[5];           /* signed by a key targets did not delegate */
    fx_publish(&t->r);
    assert_int_equal(refresh(t), FOTA_OK);
    assert_int_equal(fota_tuf_find_target(t->c, "f.txt", &tg), FOTA_E_THRESHOLD);
    assert_false(is_local(t, "A.json"));
}

static void test_role_shared_by_two_delegators(void **state)
{
    struct t *t = *state;
    static const char *const p_a[] = { "a/*", NULL };
    static const char *const p_b[] = { "b/*", NULL };
    struct fota_tuf_target tg;
    struct fx_role *c;

    /* A delegates C to K6, B delegates C to K7; C is signed by K6 only */
    delegate(t, "targets", "A", &K[4], 0, p_a, NULL);
    delegate(t, "targets", "B", &K[5], 0, p_b, NULL);
    c = delegate(t, "A", "C", &K[6], 0, p_a, NULL);
    fx_delegate(fx_role(&t->r, "B")->sig, "C", (struct fx_key *[]){ &K[7] }, 1, 1, 0, p_b,
                NULL);
    fx_add_target(c->sig, "a/x", "c");
    fx_add_target(c->sig, "b/x", "c");
    fx_publish(&t->r);
    assert_int_equal(refresh(t), FOTA_OK);
    assert_int_equal(fota_tuf_find_target(t->c, "a/x", &tg), FOTA_OK);
    assert_string_equal(tg.role, "C");
    /* through B, C (loaded once, not fetched again) must carry B's keys */
    assert_int_equal(fota_tuf_find_target(t->c, "b/x", &tg), FOTA_E_THRESHOLD);
    assert_int_equal(fx_count(&t->m.fetched, "1.C.json"), 1);
    assert_non_null(strstr(fota_tuf_errmsg(t->c), "delegated by B"));
}

static void test_max_delegations(void **state)
{
    struct t *t = *state;
    static const char *const p_all[] = { "*", NULL };
    struct fota_tuf_limits l;
    struct fota_tuf_target tg;
    struct fx_role *b;

    delegate(t, "targets", "A", &K[4], 0, p_all, NULL);
    b = delegate(t, "A", "B", &K[5], 0, p_all, NULL);
    fx_add_target(b->sig, "f", "b");
    fx_publish(&t->r);
    fota_tuf_limits_default(&l);
    l.max_delegations = 2;
    assert_int_equal(refresh_with(t, &l), FOTA_OK);
    assert_int_equal(fota_tuf_find_target(t->c, "f", &tg), FOTA_E_LIMIT);
    assert_int_equal(fx_count(&t->m.fetched, "1.B.json"), 0);
    l.max_delegations = 3;
    assert_int_equal(refresh_with(t, &l), FOTA_OK);
    assert_int_equal(fota_tuf_find_target(t->c, "f", &tg), FOTA_OK);
    assert_string_equal(tg.role, "B");
}

static void test_delegation_cycle(void **state)
{
    struct t *t = *state;
    static const char *const p_all[] = { "*", NULL };
    struct fota_tuf_target tg;

    /* A -> B -> A: each visited once, then "no target" */
    delegate(t, "targets", "A", &K[4], 0, p_all, NULL);
    delegate(t, "A", "B", &K[5], 0, p_all, NULL);
    fx_delegate(fx_role(&t->r, "B")->sig, "A", (struct fx_key *[]){ &K[4] }, 1, 1, 0, p_all,
                NULL);
    fx_publish(&t->r);
    assert_int_equal(refresh(t), FOTA_OK);
    assert_int_equal(fota_tuf_find_target(t->c, "f", &tg), FOTA_E_NO_TARGET);
    assert_int_equal(fx_count(&t->m.fetched, "1.A.json"), 1);
    assert_int_equal(fx_count(&t->m.fetched, "1.B.json"), 1);
}

static void test_delegation_shape_errors(void **state)
{
    struct t *t = *state;
    static const char *const p_all[] = { "*", NULL };
    json_t *role;

    /* both "paths" and "path_hash_prefixes" */
    role = fx_delegate(t->r.roles[0].sig, "A", (struct fx_key *[]){ &K[4] }, 1, 1, 0, p_all,
                       NULL);
    json_object_set_new(role, "path_hash_prefixes", json_pack("[s]", "ab"));
    fx_publish(&t->r);
    assert_int_equal(refresh(t), FOTA_E_PARSE);
    assert_false(is_local(t, "targets.json"));

    /* neither */
    json_object_del(role, "paths");
    json_object_del(role, "path_hash_prefixes");
    fx_publish(&t->r);
    assert_int_equal(refresh(t), FOTA_E_PARSE);

    /* two roles with one name */
    json_object_set_new(role, "paths", json_pack("[s]", "*"));
    fx_delegate(t->r.roles[0].sig, "A", (struct fx_key *[]){ &K[5] }, 1, 1, 0, p_all, NULL);
    fx_publish(&t->r);
    assert_int_equal(refresh(t), FOTA_E_ROLE);

    /* a reserved name */
    json_array_remove(json_object_get(json_object_get(t->r.roles[0].sig, "delegations"),
                                      "roles"), 1);
    json_object_set_new(role, "name", json_string("root"));
    fx_publish(&t->r);
    assert_int_equal(refresh(t), FOTA_E_ROLE);

    /* fixed: fine */
    json_object_set_new(role, "name", json_string("A"));
    fx_publish(&t->r);
    assert_int_equal(refresh(t), FOTA_OK);
    assert_true(is_local(t, "targets.json"));
}

/* ---- metadata shape --------------------------------------------------------- */

static void test_strict_fields(void **state)
{
    struct t *t = *state;

    /* a version that is not an integer */
    json_object_set_new(t->r.ts, "version", json_string("2"));
    fx_publish(&t->r);
    assert_int_equal(refresh(t), FOTA_E_PARSE);

    /* version 0 */
    fx_set_version(t->r.ts, 0);
    fx_publish(&t->r);
    assert_int_equal(refresh(t), FOTA_E_PARSE);

    /* spec_version 2.0.0 */
    fx_set_version(t->r.ts, 1);
    json_object_set_new(t->r.ts, "spec_version", json_string("2.0.0"));
    fx_publish(&t->r);
    assert_int_equal(refresh(t), FOTA_E_TYPE);

    /* an expiry not in the one format */
    json_object_set_new(t->r.ts, "spec_version", json_string("1.0"));
    fx_set_expires(t->r.ts, "2030-01-01T00:00:00+00:00");
    fx_publish(&t->r);
    assert_int_equal(refresh(t), FOTA_E_PARSE);

    /* the wrong _type */
    fx_set_expires(t->r.ts, FX_FUTURE);
    json_object_set_new(t->r.ts, "_type", json_string("snapshot"));
    fx_publish(&t->r);
    assert_int_equal(refresh(t), FOTA_E_TYPE);
    assert_false(is_local(t, "timestamp.json"));

    /* unknown fields are signed over and kept */
    json_object_set_new(t->r.ts, "_type", json_string("timestamp"));
    json_object_set_new(t->r.ts, "x-extra", json_pack("{s:[i,i]}", "a", 1, 2));
    fx_publish(&t->r);
    assert_int_equal(refresh(t), FOTA_OK);
}

/* ---- target check ------------------------------------------------------------ */

static void test_target_check(void **state)
{
    struct t *t = *state;
    struct fota_tuf_target tg;
    struct fota_tuf_target_check ck;

    assert_int_equal(refresh(t), FOTA_OK);
    assert_int_equal(fota_tuf_find_target(t->c, "file1.txt", &tg), FOTA_OK);

    /* the right bytes, in pieces */
    assert_int_equal(fota_tuf_target_check_init(&ck, &tg), FOTA_OK);
    assert_int_equal(fota_tuf_target_check_update(&ck, "hel", 3), FOTA_OK);
    assert_int_equal(fota_tuf_target_check_update(&ck, "lo", 2), FOTA_OK);
    assert_int_equal(fota_tuf_target_check_final(&ck), FOTA_OK);

    /* one byte too many: refused at once */
    assert_int_equal(fota_tuf_target_check_init(&ck, &tg), FOTA_OK);
    assert_int_equal(fota_tuf_target_check_update(&ck, "hello", 5), FOTA_OK);
    assert_int_equal(fota_tuf_target_check_update(&ck, "!", 1), FOTA_E_LENGTH);
    assert_int_equal(fota_tuf_target_check_final(&ck), FOTA_E_LENGTH);

    assert_int_equal(fota_tuf_target_check_init(&ck, &tg), FOTA_OK);
    assert_int_equal(fota_tuf_target_check_update(&ck, "hello!", 6), FOTA_E_LENGTH);
    fota_tuf_target_check_abort(&ck);

    /* too few */
    assert_int_equal(fota_tuf_target_check_init(&ck, &tg), FOTA_OK);
    assert_int_equal(fota_tuf_target_check_update(&ck, "hell", 4), FOTA_OK);
    assert_int_equal(fota_tuf_target_check_final(&ck), FOTA_E_LENGTH);

    /* the right length, other bytes */
    assert_int_equal(fota_tuf_target_check_init(&ck, &tg), FOTA_OK);
    assert_int_equal(fota_tuf_target_check_update(&ck, "jello", 5), FOTA_OK);
    assert_int_equal(fota_tuf_target_check_final(&ck), FOTA_E_HASH);

    /* abort after some bytes */
    assert_int_equal(fota_tuf_target_check_init(&ck, &tg), FOTA_OK);
    assert_int_equal(fota_tuf_target_check_update(&ck, "he", 2), FOTA_OK);
    fota_tuf_target_check_abort(&ck);
}

static void test_target_check_all_hashes(void **state)
{
    struct t *t = *state;
    struct fota_tuf_target tg;
    struct fota_tuf_target_check ck;
    char *h256 = fx_hex_digest(FOTA_HASH_SHA256, "data", 4);
    char *h512 = fx_hex_digest(FOTA_HASH_SHA512, "data", 4);
    char *w512 = fx_hex_digest(FOTA_HASH_SHA512, "date", 4);
    json_t *targets = json_object_get(t->r.roles[0].sig, "targets");

    json_object_set_new(targets, "good", json_pack("{s:i, s:{s:s, s:s}, s:{s:i}}", "length", 4,
                                                   "hashes", "sha256", h256, "sha512", h512,
                                                   "custom", "hwid", 7));
    json_object_set_new(targets, "bad512", json_pack("{s:i, s:{s:s, s:s}}", "length", 4,
                                                     "hashes", "sha256", h256, "sha512", w512));
    fx_publish(&t->r);
    assert_int_equal(refresh(t), FOTA_OK);

    assert_int_equal(fota_tuf_find_target(t->c, "good", &tg), FOTA_OK);
    assert_int_equal(tg.n_hashes, 2);
    assert_string_equal(tg.hashes[0].name, "sha256");
    assert_string_equal(tg.hashes[1].name, "sha512");
    assert_string_equal(tg.hashes[1].hex, h512);
    assert_non_null(tg.custom);
    assert_int_equal(json_integer_value(json_object_get(tg.custom, "hwid")), 7);
    assert_int_equal(fota_tuf_target_check_init(&ck, &tg), FOTA_OK);
    assert_int_equal(fota_tuf_target_check_update(&ck, "data", 4), FOTA_OK);
    assert_int_equal(fota_tuf_target_check_final(&ck), FOTA_OK);

    /* sha256 right, sha512 wrong: refused */
    assert_int_equal(fota_tuf_find_target(t->c, "bad512", &tg), FOTA_OK);
    assert_int_equal(fota_tuf_target_check_init(&ck, &tg), FOTA_OK);
    assert_int_equal(fota_tuf_target_check_update(&ck, "data", 4), FOTA_OK);
    assert_int_equal(fota_tuf_target_check_final(&ck), FOTA_E_HASH);
    free(h256);
    free(h512);
    free(w512);
}

static void test_fetch_failures(void **state)
{
    struct t *t = *state;

    /* timestamp missing: an error (unlike N.root.json) */
    fx_del(&t->m.remote, "timestamp.json");
    assert_int_equal(refresh(t), FOTA_E_NOT_FOUND);
    assert_fetched(t, "2.root.json", "timestamp.json", NULL);
    /* targets missing */
    fx_publish(&t->r);
    fx_del(&t->m.remote, "1.targets.json");
    assert_int_equal(refresh(t), FOTA_E_NOT_FOUND);
    assert_false(is_local(t, "targets.json"));
}

/* ---- review fixes (each failed before its fix) ----------------------------- */

/* Spec 5.3.11 with a port that fails: when removing the stale timestamp
 * fails, the root that rotated its keys must not be stored yet, or the next
 * run (starting from that root) can no longer see the rotation and the
 * fast-forwarded timestamp blocks every update for good. */
static void test_fast_forward_remove_fails_before_root_store(void **state)
{
    struct t *t = *state;
    struct fx_key *ts_keys[2] = { &K[1], &K[8] };

    assert_int_equal(refresh(t), FOTA_OK);
    fx_set_version(t->r.ts, 100);
    fx_publish(&t->r);
    assert_int_equal(refresh(t), FOTA_OK);

    fx_root_role(t->r.root, "timestamp", ts_keys, 2, 1);
    fx_set_version(t->r.root, 2);
    fx_publish_root(&t->r);
    fx_set_version(t->r.ts, 2);
    t->r.ts_signer = &K[8];
    fx_publish(&t->r);

    t->m.fail_remove = "timestamp.json";
    assert_int_equal(refresh(t), FOTA_E_IO);
    assert_true(fx_same(&t->m, "root.json", "1.root.json"));
    assert_int_equal(fx_count(&t->m.stored, "root.json"), 0);

    /* the port works again: the rotation is seen again and recovery runs */
    t->m.fail_remove = NULL;
    assert_int_equal(refresh(t), FOTA_OK);
    assert_int_equal(fota_tuf_version(t->c, "timestamp"), 2);
    assert_true(fx_same(&t->m, "root.json", "2.root.json"));

    /* a power cut right after the removal (the root store never happens)
     * is the same as a failed store: the next run recovers */
    fx_root_role(t->r.root, "snapshot", &ts_keys[1], 1, 1);
    fx_set_version(t->r.root, 3);
    fx_publish_root(&t->r);
    t->r.sn_signer = &K[8];
    fx_set_version(t->r.sn, 2);
    fx_set_version(t->r.ts, 3);
    fx_publish(&t->r);
    t->m.fail_store = "root.json";
    assert_int_equal(refresh(t), FOTA_E_IO);
    assert_false(is_local(t, "timestamp.json"));
    assert_false(is_local(t, "snapshot.json"));
    assert_true(fx_same(&t->m, "root.json", "2.root.json"));
    t->m.fail_store = NULL;
    assert_int_equal(refresh(t), FOTA_OK);
    assert_int_equal(fota_tuf_version(t->c, "root"), 3);
}

/* A delegated role named like a top-level role in another letter case would
 * be stored over root.json (or timestamp.json ...) on a store that ignores
 * case, and the device could never load its trusted root again. */
static void test_reserved_names_any_case(void **state)
{
    struct t *t = *state;
    static const char *const p_all[] = { "*", NULL };
    static const char *const names[] = { "Root", "TIMESTAMP", "snapShot", "Targets" };
    struct fota_tuf_target tg;
    struct fota_tuf_port port;
    json_t *role;

    t->m.local.fold_case = 1;
    role = fx_delegate(t->r.roles[0].sig, "Root", (struct fx_key *[]){ &K[4] }, 1, 1, 0,
                       p_all, NULL);
    fx_add_role(&t->r, "Root", &K[4]);
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        json_object_set_new(role, "name", json_string(names[i]));
        snprintf(t->r.roles[1].name, sizeof(t->r.roles[1].name), "%s", names[i]);
        fx_publish(&t->r);
        assert_int_equal(refresh(t), FOTA_E_ROLE);
        if (t->c != NULL)
            assert_int_equal(fota_tuf_find_target(t->c, "x", &tg), FOTA_E_STATE);
        /* the trusted root is still a root */
        fota_tuf_client_free(t->c);
        t->c = NULL;
        port = fx_port(&t->m);
        assert_int_equal(fota_tuf_client_new(&port, NULL, &t->c), FOTA_OK);
    }
    assert_false(is_local(t, "targets.json"));
}

/* 5.3.1: the client MUST walk the root chain; a limit of 0 would switch that
 * off without a word, so it is refused like the other zero limits. */
static void test_zero_limits_refused(void **state)
{
    struct t *t = *state;
    struct fota_tuf_port port = fx_port(&t->m);
    struct fota_tuf_limits l;

    fota_tuf_limits_default(&l);
    l.max_root_rotations = 0;
    assert_int_equal(fota_tuf_client_new(&port, &l, &t->c), FOTA_E_INVALID);
    assert_null(t->c);
    fota_tuf_limits_default(&l);
    l.max_delegations = 0;
    assert_int_equal(fota_tuf_client_new(&port, &l, &t->c), FOTA_E_INVALID);
    assert_null(t->c);
}

/* A failed init leaves a check that final() and abort() can take. */
static void test_target_check_failed_init(void **state)
{
    struct fota_tuf_target bad;
    struct fota_tuf_target_check ck;

    (void)state;
    memset(&bad, 0, sizeof(bad));
    bad.length = 4;
    memset(&ck, 0xa5, sizeof(ck));
    assert_int_equal(fota_tuf_target_check_init(&ck, &bad), FOTA_E_INVALID);
    assert_int_not_equal(fota_tuf_target_check_update(&ck, "data", 4), FOTA_OK);
    assert_int_not_equal(fota_tuf_target_check_final(&ck), FOTA_OK);
    fota_tuf_target_check_abort(&ck);

    /* a digest length that does not fit the algorithm */
    bad.n_hashes = 1;
    bad.hashes[0].alg = FOTA_HASH_SHA256;
    bad.hashes[0].digest_len = 20;
    memset(&ck, 0xa5, sizeof(ck));
    assert_int_equal(fota_tuf_target_check_init(&ck, &bad), FOTA_E_INVALID);
    assert_int_not_equal(fota_tuf_target_check_final(&ck), FOTA_OK);
    fota_tuf_target_check_abort(&ck);
}

/* Roles kept in memory per client are capped (4 x max_delegations): a
 * repository with many bins cannot make one long-lived client hold them all. */
static void test_roles_kept_cap(void **state)
{
    struct t *t = *state;
    struct fota_tuf_limits l;
    struct fota_tuf_target tg;
    char name[16], path[16];

    for (int i = 0; i < 9; i++) {
        const char *paths[2] = { path, NULL };
        struct fx_role *r;
        snprintf(name, sizeof(name), "D%d", i);
        snprintf(path, sizeof(path), "f%d", i);
        r = delegate(t, "targets", name, &K[4], 0, paths, NULL);
        fx_add_target(r->sig, path, "d");
    }
    fx_publish(&t->r);
    fota_tuf_limits_default(&l);
    l.max_delegations = 2;               /* 8 roles kept: targets + 7 */
    assert_int_equal(refresh_with(t, &l), FOTA_OK);
    for (int i = 0; i < 7; i++) {
        snprintf(path, sizeof(path), "f%d", i);
        assert_int_equal(fota_tuf_find_target(t->c, path, &tg), FOTA_OK);
    }
    assert_int_equal(fota_tuf_find_target(t->c, "f7", &tg), FOTA_E_LIMIT);
    assert_int_equal(fx_count(&t->m.fetched, "1.D7.json"), 0);
    assert_non_null(strstr(fota_tuf_errmsg(t->c), "roles"));
    /* what is kept stays usable */
    assert_int_equal(fota_tuf_find_target(t->c, "f0", &tg), FOTA_OK);
    assert_string_equal(tg.role, "D0");
    assert_int_equal(fota_tuf_find_target(t->c, "file1.txt", &tg), FOTA_OK);
}

/* Names from metadata reach the log only through show(): a role name or a
 * hash algorithm with a newline must not forge log lines. */
static void test_untrusted_names_in_log(void **state)
{
    struct t *t = *state;
    static const char *const p_all[] = { "*", NULL };
    struct fota_tuf_target tg;
    struct fx_role *a;
    json_t *hashes;

    a = delegate(t, "targets", "evil\n[REJECT] forged", &K[4], 0, p_all, NULL);
    fx_add_target(a->sig, "x", "a");
    fx_publish(&t->r);
    assert_int_equal(refresh(t), FOTA_OK);
    assert_int_equal(fota_tuf_find_target(t->c, "x", &tg), FOTA_OK);
    assert_string_equal(tg.role, "evil\n[REJECT] forged");
    assert_int_equal(t->m.n_ctrl_lines, 0);
    assert_int_equal(fota_tuf_find_target(t->c, "nope", &tg), FOTA_E_NO_TARGET);
    assert_int_equal(t->m.n_ctrl_lines, 0);
    assert_null(strchr(fota_tuf_errmsg(t->c), '\n'));

    /* a metafile hash whose algorithm name carries a newline */
    t->r.sn_hashes = 1;
    fx_publish(&t->r);
    t->r.sn_manual = 1;
    hashes = json_object_get(json_object_get(json_object_get(t->r.sn, "meta"),
                                             "targets.json"), "hashes");
    json_object_set_new(hashes, "x\ny", json_integer(1));
    fx_set_version(t->r.sn, 2);
    fx_set_version(t->r.ts, 2);
    fx_publish(&t->r);
    assert_int_equal(refresh(t), FOTA_E_PARSE);
    assert_int_equal(t->m.n_ctrl_lines, 0);
    assert_null(strchr(fota_tuf_errmsg(t->c), '\n'));
}

/* Port failures on every step end cleanly (no leak under LeakSanitizer),
 * store nothing unverified, and a failed local load is only a note. */
static void test_port_failures(void **state)
{
    struct t *t = *state;
    static const char *const p_all[] = { "*", NULL };
    struct fota_tuf_target tg;
    struct fx_role *a;

    a = delegate(t, "targets", "A", &K[4], 0, p_all, NULL);
    fx_add_target(a->sig, "x", "a");
    fx_publish(&t->r);

    t->m.fail_store = "timestamp.json";
    assert_int_equal(refresh(t), FOTA_E_IO);
    assert_false(is_local(t, "timestamp.json"));
    t->m.fail_store = "snapshot.json";
    assert_int_equal(refresh(t), FOTA_E_IO);
    assert_false(is_local(t, "snapshot.json"));
    t->m.fail_store = "targets.json";
    assert_int_equal(refresh(t), FOTA_E_IO);
    assert_false(is_local(t, "targets.json"));
    t->m.fail_store = "A.json";
    assert_int_equal(refresh(t), FOTA_OK);
    assert_int_equal(fota_tuf_find_target(t->c, "x", &tg), FOTA_E_IO);
    assert_false(is_local(t, "A.json"));
    t->m.fail_store = NULL;
    assert_int_equal(fota_tuf_find_target(t->c, "x", &tg), FOTA_OK);
    assert_int_equal(fx_count(&t->m.fetched, "1.A.json"), 2);

    /* stored copies that cannot be read are fetched again */
    t->m.fail_load = "snapshot.json";
    assert_int_equal(refresh(t), FOTA_OK);
    assert_fetched(t, "2.root.json", "timestamp.json", "1.snapshot.json", NULL);
    t->m.fail_load = "A.json";
    assert_int_equal(refresh(t), FOTA_OK);
    assert_int_equal(fota_tuf_find_target(t->c, "x", &tg), FOTA_OK);
    assert_int_equal(fx_count(&t->m.fetched, "1.A.json"), 1);
    t->m.fail_load = "root.json";
    assert_int_equal(refresh(t), FOTA_E_IO);
    assert_null(t->c);
    t->m.fail_load = NULL;
}

/* Allocation failures inside jansson (every metadata parse and most shape
 * checks allocate through it): each run must end with a reason code, never
 * crash, and leak nothing (LeakSanitizer in the sanitizer build). */
static long alloc_budget = -1;      /* allocations left before failing; -1: never */
static int alloc_failed;

static void *failing_malloc(size_t n)
{
    if (alloc_budget == 0) {
        alloc_failed = 1;
        return NULL;
    }
    if (alloc_budget > 0)
        alloc_budget--;
    return malloc(n);
}

static void test_allocation_failures(void **state)
{
    struct t *t = *state;
    static const char *const p_all[] = { "*", NULL };
    struct fota_tuf_target tg;
    struct fx_blob root = snap_local(t, "root.json");
    struct fx_role *a;
    long n;

    a = delegate(t, "targets", "A", &K[4], 0, p_all, NULL);
    fx_add_target(a->sig, "x", "a");
    fx_publish(&t->r);
    for (n = 0; n < 100000; n++) {
        struct fota_tuf_port port = fx_port(&t->m);
        fota_err err;

        fx_files_free(&t->m.local);
        fx_put(&t->m.local, "root.json", root.data, root.len);
        fota_tuf_client_free(t->c);
        t->c = NULL;
        fx_new_run(&t->m);
        alloc_failed = 0;
        alloc_budget = n;
        json_set_alloc_funcs(failing_malloc, free);
        err = fota_tuf_client_new(&port, NULL, &t->c);
        if (err == FOTA_OK)
            err = fota_tuf_refresh(t->c);
        if (err == FOTA_OK)
            err = fota_tuf_find_target(t->c, "x", &tg);
        json_set_alloc_funcs(malloc, free);
        alloc_budget = -1;
        if (!alloc_failed) {
            assert_int_equal(err, FOTA_OK);
            break;
        }
        /* a failed allocation is never success, and never stores a file
         * that did not verify: whatever is stored is what the repository
         * served */
        assert_int_not_equal(err, FOTA_OK);
        for (size_t i = 0; i < t->m.stored.n; i++) {
            const char *name = t->m.stored.v[i];
            assert_true(strcmp(name, "timestamp.json") == 0 ||
                        fx_same(&t->m, name, strcmp(name, "snapshot.json") == 0
                                                 ? "1.snapshot.json"
                                                 : strcmp(name, "targets.json") == 0
                                                       ? "1.targets.json"
                                                       : "1.A.json"));
        }
    }
    if (t->m.verbose)
        fprintf(stderr, "  %ld allocation points failed in turn\n", n);
    assert_true(n > 10);
    assert_true(n < 100000);
    free(root.data);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_good_refresh),
        T(test_not_consistent),
        T(test_find_before_refresh),
        T(test_root_chain),
        T(test_root_not_signed_by_old),
        T(test_root_not_signed_by_itself),
        T(test_root_wrong_version),
        T(test_root_expired_final),
        T(test_root_expired_intermediate_ok),
        T(test_stored_root_invalid),
        T(test_same_key_two_keyids),
        T(test_root_rotation_limit),
        T(test_timestamp_rollback),
        T(test_timestamp_equal_version_not_stored),
        T(test_timestamp_snapshot_rollback),
        T(test_timestamp_expired),
        T(test_timestamp_bad_signature),
        T(test_duplicate_signature_keyid),
        T(test_invalid_extra_signatures_ignored),
        T(test_snapshot_expired),
        T(test_snapshot_hash_mismatch),
        T(test_snapshot_length),
        T(test_snapshot_unknown_hash_alg),
        T(test_snapshot_version_mismatch),
        T(test_snapshot_removes_role),
        T(test_snapshot_targets_version_rollback),
        T(test_targets_expired),
        T(test_targets_version_mismatch),
        T(test_targets_threshold_short),
        T(test_targets_hash_from_snapshot),
        T(test_target_unknown_hash_alg),
        T(test_fast_forward_recovery),
        T(test_fast_forward_removal_survives_chain_failure),
        T(test_reuse_stored_metadata),
        T(test_delegation_order),
        T(test_delegation_terminating),
        T(test_delegation_terminating_keeps_earlier_siblings),
        T(test_delegation_patterns),
        T(test_delegation_hash_prefixes),
        T(test_role_not_in_snapshot),
        T(test_role_loaded_once),
        T(test_encoded_role_names),
        T(test_delegated_bad_signature),
        T(test_role_shared_by_two_delegators),
        T(test_max_delegations),
        T(test_delegation_cycle),
        T(test_delegation_shape_errors),
        T(test_strict_fields),
        T(test_target_check),
        T(test_target_check_all_hashes),
        T(test_fetch_failures),
        T(test_fast_forward_remove_fails_before_root_store),
        T(test_reserved_names_any_case),
        T(test_zero_limits_refused),
        T(test_target_check_failed_init),
        T(test_roles_kept_cap),
        T(test_untrusted_names_in_log),
        T(test_port_failures),
        T(test_allocation_failures),
    };

    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
