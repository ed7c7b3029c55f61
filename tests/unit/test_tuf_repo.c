/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fota/tuf_repo.h: published bytes, meta entries, and snapshot and timestamp
 * built and signed with online keys (what `fota repo publish` and
 * fota-server both write). Signatures made here are checked with
 * fota_tuf_verify_role, whose own vectors come from securesystemslib
 * (test_tuf_common.c); the Python tests check the bytes independently
 * (tests/cli, tests/server/test_releases.py).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "fota/crypto.h"
#include "fota/error.h"
#include "fota/json.h"
#include "fota/tuf.h"
#include "fota/tuf_repo.h"

#include "test_util.h"

struct key {
    fota_privkey *priv;
    json_t *obj;
    char id[FOTA_TUF_KEYID_HEX_LEN + 1];
};

static void key_new(struct key *k, fota_key_type type)
{
    assert_int_equal(fota_privkey_generate(type, &k->priv), FOTA_OK);
    assert_int_equal(fota_tuf_key_json(k->priv, &k->obj), FOTA_OK);
    assert_int_equal(fota_tuf_keyid(k->obj, k->id), FOTA_OK);
}

static void key_free(struct key *k)
{
    fota_privkey_free(k->priv);
    json_decref(k->obj);
}

struct fixture {
    struct key snap, ts, other;
    json_t *root;
};

/* A root whose snapshot role is {snap} and timestamp role {ts}, threshold 1. */
static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);

    assert_non_null(f);
    key_new(&f->snap, FOTA_KEY_ED25519);
    key_new(&f->ts, FOTA_KEY_ED25519);
    key_new(&f->other, FOTA_KEY_ED25519);
    f->root = json_pack("{s:{s:s,s:s,s:i,s:s,s:b,s:{s:O,s:O,s:O},"
                        "s:{s:{s:[s],s:i},s:{s:[s],s:i},s:{s:[s],s:i},s:{s:[s],s:i}}},s:[]}",
                        "signed", "_type", "root", "spec_version", "1.0.31", "version", 1,
                        "expires", "2100-01-01T00:00:00Z", "consistent_snapshot", 1, "keys",
                        f->snap.id, f->snap.obj, f->ts.id, f->ts.obj, f->other.id, f->other.obj,
                        "roles", "root", "keyids", f->other.id, "threshold", 1, "targets",
                        "keyids", f->other.id, "threshold", 1, "snapshot", "keyids", f->snap.id,
                        "threshold", 1, "timestamp", "keyids", f->ts.id, "threshold", 1,
                        "signatures");
    assert_non_null(f->root);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;

    key_free(&f->snap);
    key_free(&f->ts);
    key_free(&f->other);
    json_decref(f->root);
    free(f);
    return 0;
}

static json_t *parse(const char *bytes, size_t len)
{
    json_t *v = NULL;

    assert_int_equal(fota_json_parse((const uint8_t *)bytes, len, FOTA_TUF_REPO_MAX_METADATA,
                                     FOTA_JSON_MAX_DEPTH, &v),
                     FOTA_OK);
    return v;
}

static char *targets_bytes(int version, size_t *ret_len)
{
    json_t *t = json_pack("{s:{s:s,s:s,s:i,s:s,s:{}},s:[]}", "signed", "_type", "targets",
                          "spec_version", "1.0.31", "version", version, "expires",
                          "2100-01-01T00:00:00Z", "targets", "signatures");
    char *bytes = NULL;

    assert_non_null(t);
    assert_int_equal(fota_tuf_repo_bytes(t, 1 << 20, &bytes, ret_len), FOTA_OK);
    json_decref(t);
    return bytes;
}

static void assert_sha256(const json_t *entry, const void *bytes, size_t len)
{
    uint8_t d[FOTA_HASH_MAX_LEN];
    char hex[65];

    assert_int_equal(fota_hash(FOTA_HASH_SHA256, bytes, len, d), FOTA_OK);
    fota_hex_encode(d, 32, hex);
    assert_string_equal(json_string_value(json_object_get(json_object_get(entry, "hashes"),
                                                          "sha256")),
                        hex);
    assert_int_equal(json_integer_value(json_object_get(entry, "length")), (json_int_t)len);
}

static void assert_signed_by(const json_t *root, const char *role, const char *bytes,
                             size_t len)
{
    json_t *env = parse(bytes, len);
    const json_t *s = json_object_get(root, "signed");
    unsigned valid = 0;

    assert_int_equal(fota_tuf_verify_role(env, json_object_get(s, "keys"),
                                          json_object_get(json_object_get(s, "roles"), role),
                                          &valid),
                     FOTA_OK);
    assert_int_equal(valid, 1);
    json_decref(env);
}

/* ---- bytes ----------------------------------------------------------------- */

static void test_bytes_canonical(void **state)
{
    json_t *v = json_pack("{s:i,s:s,s:[i,s]}", "z", 1, "a", "caf\xc3\xa9 \"q\" \\", "m", -5,
                          "x");
    char *bytes = NULL, *canon = NULL;
    size_t len = 0, clen = 0;
    char untouched = 'u';
    char *ret = &untouched;

    (void)state;
    assert_int_equal(fota_tuf_repo_bytes(v, 1024, &bytes, &len), FOTA_OK);
    assert_int_equal(fota_json_canonical(v, 1024, &canon, &clen), FOTA_OK);
    assert_int_equal(len, clen);
    assert_memory_equal(bytes, canon, len);
    assert_string_equal(bytes, "{\"a\":\"caf\xc3\xa9 \\\"q\\\" \\\\\",\"m\":[-5,\"x\"],\"z\":1}");
    assert_int_equal(fota_tuf_repo_bytes(v, len - 1, &ret, &clen), FOTA_E_TOO_BIG);
    assert_ptr_equal(ret, &untouched);
    assert_int_equal(fota_tuf_repo_bytes(NULL, 1024, &ret, &clen), FOTA_E_INVALID);
    free(bytes);
    free(canon);
    json_decref(v);
}

/* A PEM key holds newlines: the file escapes them, parses to the same value,
 * and the signature over the canonical form still verifies. */
static void test_bytes_control_characters(void **state)
{
    struct key ec;
    json_t *root, *back;
    char *bytes = NULL, *canon = NULL;
    size_t len = 0, clen = 0;

    (void)state;
    key_new(&ec, FOTA_KEY_ECDSA_P256);
    assert_non_null(strchr(json_string_value(json_object_get(json_object_get(ec.obj, "keyval"),
                                                             "public")),
                           '\n'));
    root = json_pack("{s:{s:s,s:s,s:i,s:s,s:{s:O},s:{s:{s:[s],s:i}}},s:[]}", "signed", "_type",
                     "root", "spec_version", "1.0.31", "version", 1, "expires",
                     "2100-01-01T00:00:00Z", "keys", ec.id, ec.obj, "roles", "root", "keyids",
                     ec.id, "threshold", 1, "signatures");
    assert_int_equal(fota_tuf_sign(root, ec.priv, ec.id), FOTA_OK);
    assert_int_equal(fota_tuf_repo_bytes(root, 1 << 20, &bytes, &len), FOTA_OK);
    assert_int_equal(fota_json_canonical(root, 1 << 20, &canon, &clen), FOTA_OK);
    assert_null(memchr(bytes, '\n', len));
    assert_non_null(memchr(canon, '\n', clen));
    assert_non_null(strstr(bytes, "\\n"));
    back = parse(bytes, len);
    assert_true(json_equal(back, root));
    assert_signed_by(root, "root", bytes, len);
    json_decref(back);
    json_decref(root);
    free(bytes);
    free(canon);
    key_free(&ec);
}

static void test_meta_entry_and_envelope_checks(void **state)
{
    static const char data[] = "published bytes";
    json_t *e = NULL, *env;
    json_t *untouched = (json_t *)(void *)&untouched;

    (void)state;
    assert_int_equal(fota_tuf_repo_meta_entry(7, data, sizeof data - 1, &e), FOTA_OK);
    assert_int_equal(json_integer_value(json_object_get(e, "version")), 7);
    assert_int_equal(json_object_size(e), 3);
    assert_int_equal(json_object_size(json_object_get(e, "hashes")), 1);
    assert_sha256(e, data, sizeof data - 1);
    json_decref(e);
    e = untouched;
    assert_int_equal(fota_tuf_repo_meta_entry(0, data, 1, &e), FOTA_E_INVALID);
    assert_ptr_equal(e, untouched);

    env = json_pack("{s:{s:s,s:s,s:i,s:s,s:{}},s:[]}", "signed", "_type", "snapshot",
                    "spec_version", "1.0.31", "version", 3, "expires", "2100-01-01T00:00:00Z",
                    "meta", "signatures");
    assert_int_equal(fota_tuf_repo_check_envelope(env, "snapshot"), FOTA_OK);
    assert_int_equal(fota_tuf_repo_version(env), 3);
    assert_int_equal(fota_tuf_repo_check_envelope(env, "timestamp"), FOTA_E_TYPE);
    assert_int_equal(fota_tuf_repo_check_envelope(env, "targets"), FOTA_E_TYPE);
    json_object_set_new(json_object_get(env, "signed"), "meta", json_array());
    assert_int_equal(fota_tuf_repo_check_envelope(env, "snapshot"), FOTA_E_PARSE);
    json_object_set_new(json_object_get(env, "signed"), "meta", json_object());
    json_object_set_new(json_object_get(env, "signed"), "expires", json_string("tomorrow"));
    assert_int_equal(fota_tuf_repo_check_envelope(env, "snapshot"), FOTA_E_PARSE);
    json_object_set_new(json_object_get(env, "signed"), "expires",
                        json_string("2100-01-01T00:00:00Z"));
    json_object_set_new(json_object_get(env, "signed"), "version", json_integer(0));
    assert_int_equal(fota_tuf_repo_check_envelope(env, "snapshot"), FOTA_E_PARSE);
    json_object_set_new(json_object_get(env, "signed"), "version", json_integer(1));
    json_array_append_new(json_object_get(env, "signatures"), json_pack("{s:s}", "keyid", "a"));
    assert_int_equal(fota_tuf_repo_check_envelope(env, "snapshot"), FOTA_E_PARSE);
    json_decref(env);
}

/* ---- signing ----------------------------------------------------------------- */

static void test_sign_role(void **state)
{
    struct fixture *f = *state;
    struct fota_tuf_signer good = {f->snap.priv, f->snap.id};
    struct fota_tuf_signer both[2] = {{f->snap.priv, f->snap.id}, {f->ts.priv, f->ts.id}};
    json_t *meta = json_object(), *env = NULL;
    unsigned valid = 99;

    assert_int_equal(fota_tuf_repo_snapshot_new(4, "2100-01-01T00:00:00Z", meta, &env), FOTA_OK);
    /* a key root does not list for snapshot: refused before anything is signed */
    assert_int_equal(fota_tuf_repo_sign_role(env, f->root, "snapshot", both, 2, &valid),
                     FOTA_E_KEY);
    assert_int_equal(valid, 0);
    assert_int_equal(json_array_size(json_object_get(env, "signatures")), 0);
    assert_true(fota_tuf_repo_role_has_key(f->root, "snapshot", f->snap.id));
    assert_false(fota_tuf_repo_role_has_key(f->root, "snapshot", f->ts.id));
    assert_false(fota_tuf_repo_role_has_key(f->root, "nope", f->ts.id));
    assert_int_equal(fota_tuf_repo_sign_role(env, f->root, "mirror", &good, 1, &valid),
                     FOTA_E_ROLE);
    /* no key: the threshold is not met */
    assert_int_equal(fota_tuf_repo_sign_role(env, f->root, "snapshot", NULL, 0, &valid),
                     FOTA_E_THRESHOLD);
    assert_int_equal(fota_tuf_repo_sign_role(env, f->root, "snapshot", &good, 1, &valid),
                     FOTA_OK);
    assert_int_equal(valid, 1);
    /* signing again replaces the signature of that key */
    assert_int_equal(fota_tuf_repo_sign_role(env, f->root, "snapshot", &good, 1, NULL), FOTA_OK);
    assert_int_equal(json_array_size(json_object_get(env, "signatures")), 1);
    /* a threshold of 2 with one key */
    json_object_set_new(json_object_get(json_object_get(json_object_get(f->root, "signed"),
                                                        "roles"),
                                        "snapshot"),
                        "threshold", json_integer(2));
    assert_int_equal(fota_tuf_repo_sign_role(env, f->root, "snapshot", &good, 1, &valid),
                     FOTA_E_THRESHOLD);
    assert_int_equal(valid, 1);
    json_decref(env);
    json_decref(meta);
}

/* ---- snapshot and timestamp ------------------------------------------------------ */

static void test_next_snapshot_and_timestamp(void **state)
{
    struct fixture *f = *state;
    struct fota_tuf_signer snap = {f->snap.priv, f->snap.id};
    struct fota_tuf_signer ts = {f->ts.priv, f->ts.id};
    const char *role = "targets";
    size_t t1_len = 0, t2_len = 0, s1_len = 0, s2_len = 0, ts1_len = 0, ts2_len = 0;
    char *t1 = targets_bytes(1, &t1_len), *t2 = targets_bytes(2, &t2_len);
    char *s1 = NULL, *s2 = NULL, *ts1 = NULL, *ts2 = NULL;
    const uint8_t *rb;
    json_t *env = NULL, *v, *meta;

    /* the first snapshot: version 1, meta of targets only */
    rb = (const uint8_t *)t1;
    assert_int_equal(fota_tuf_repo_next_snapshot(f->root, NULL, 0, &role, &rb, &t1_len, 1,
                                                 "2100-01-01T00:00:00Z", &snap, 1, &env, &s1,
                                                 &s1_len),
                     FOTA_OK);
    assert_int_equal(fota_tuf_repo_version(env), 1);
    json_decref(env);
    env = NULL;
    assert_signed_by(f->root, "snapshot", s1, s1_len);
    v = parse(s1, s1_len);
    meta = json_object_get(json_object_get(v, "signed"), "meta");
    assert_int_equal(json_object_size(meta), 1);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(meta, "targets.json"),
                                                        "version")),
                     1);
    assert_sha256(json_object_get(meta, "targets.json"), t1, t1_len);
    assert_string_equal(json_string_value(json_object_get(json_object_get(v, "signed"),
                                                          "spec_version")),
                        FOTA_TUF_SPEC_VERSION);
    json_decref(v);

    /* the next one: version + 1, targets replaced, other roles kept */
    {
        json_t *cur = parse(s1, s1_len);
        json_t *m = json_object_get(json_object_get(cur, "signed"), "meta");
        char *patched = NULL;
        size_t plen = 0;

        json_object_set_new(m, "a/b.json", json_pack("{s:i}", "version", 5));
        assert_int_equal(fota_tuf_repo_bytes(cur, 1 << 20, &patched, &plen), FOTA_OK);
        rb = (const uint8_t *)t2;
        assert_int_equal(fota_tuf_repo_next_snapshot(f->root, (const uint8_t *)patched, plen,
                                                     &role, &rb, &t2_len, 1,
                                                     "2100-01-02T00:00:00Z", &snap, 1, NULL, &s2,
                                                     &s2_len),
                         FOTA_OK);
        free(patched);
        json_decref(cur);
    }
    v = parse(s2, s2_len);
    meta = json_object_get(json_object_get(v, "signed"), "meta");
    assert_int_equal(fota_tuf_repo_version(v), 2);
    assert_string_equal(json_string_value(json_object_get(json_object_get(v, "signed"),
                                                          "expires")),
                        "2100-01-02T00:00:00Z");
    assert_int_equal(json_object_size(meta), 2);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(meta, "a/b.json"),
                                                        "version")),
                     5);
    assert_sha256(json_object_get(meta, "targets.json"), t2, t2_len);
    json_decref(v);

    /* timestamps: version 1 from nothing, then current + 1, pointing at the
     * snapshot bytes given */
    assert_int_equal(fota_tuf_repo_next_timestamp(f->root, NULL, 0, (const uint8_t *)s1, s1_len,
                                                  "2100-01-01T00:00:00Z", &ts, 1, NULL, &ts1,
                                                  &ts1_len),
                     FOTA_OK);
    assert_signed_by(f->root, "timestamp", ts1, ts1_len);
    assert_int_equal(fota_tuf_repo_next_timestamp(f->root, (const uint8_t *)ts1, ts1_len,
                                                  (const uint8_t *)s2, s2_len,
                                                  "2100-01-01T00:00:00Z", &ts, 1, &env, &ts2,
                                                  &ts2_len),
                     FOTA_OK);
    assert_int_equal(fota_tuf_repo_version(env), 2);
    meta = json_object_get(json_object_get(json_object_get(env, "signed"), "meta"),
                           "snapshot.json");
    assert_int_equal(json_integer_value(json_object_get(meta, "version")), 2);
    assert_sha256(meta, s2, s2_len);
    json_decref(env);

    /* refusals leave the outputs alone */
    {
        char *untouched = (char *)&untouched;
        char *out = untouched;
        size_t out_len = 12345;

        /* the timestamp key cannot sign snapshot */
        assert_int_equal(fota_tuf_repo_next_snapshot(f->root, (const uint8_t *)s2, s2_len, NULL,
                                                     NULL, NULL, 0, "2100-01-01T00:00:00Z", &ts,
                                                     1, NULL, &out, &out_len),
                         FOTA_E_KEY);
        /* a timestamp given as the current snapshot */
        assert_int_equal(fota_tuf_repo_next_snapshot(f->root, (const uint8_t *)ts1, ts1_len,
                                                     NULL, NULL, NULL, 0,
                                                     "2100-01-01T00:00:00Z", &snap, 1, NULL,
                                                     &out, &out_len),
                         FOTA_E_TYPE);
        /* snapshot bytes that are not JSON */
        assert_int_equal(fota_tuf_repo_next_timestamp(f->root, NULL, 0, (const uint8_t *)"{",
                                                      1, "2100-01-01T00:00:00Z", &ts, 1, NULL,
                                                      &out, &out_len),
                         FOTA_E_PARSE);
        /* a targets role that is not targets metadata */
        rb = (const uint8_t *)s1;
        assert_int_equal(fota_tuf_repo_next_snapshot(f->root, NULL, 0, &role, &rb, &s1_len, 1,
                                                     "2100-01-01T00:00:00Z", &snap, 1, NULL,
                                                     &out, &out_len),
                         FOTA_E_TYPE);
        assert_ptr_equal(out, untouched);
        assert_int_equal(out_len, 12345);
    }
    free(t1);
    free(t2);
    free(s1);
    free(s2);
    free(ts1);
    free(ts2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bytes_canonical),
        cmocka_unit_test(test_bytes_control_characters),
        cmocka_unit_test(test_meta_entry_and_envelope_checks),
        cmocka_unit_test_setup_teardown(test_sign_role, setup, teardown),
        cmocka_unit_test_setup_teardown(test_next_snapshot_and_timestamp, setup, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
