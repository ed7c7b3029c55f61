/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The rollout planner (server/rollout.c) over a real SQLite store: releases
 * and devices are put in with the store functions, then the planner is
 * driven the way the check-in and report handlers drive it.
 *  - group evaluation (filter and explicit list), hardware ids, pending and
 *    unknown devices, devices already current, bad specs; nothing stored on
 *    a refusal;
 *  - wave assignment = SHA-256(rollout id || device id) order, recomputed
 *    here independently;
 *  - decisions per wave and state; success only after `confirmed` AND a
 *    later check-in running the release; installed is not success;
 *  - advancing waves, self-pause past the failure limit, resume (which does
 *    not re-pause on old failures), abort (stay for all), completion;
 *  - rollback rollouts refused below a member's stored counter;
 *  - two store connections (two "processes") agreeing on one advance.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fota/crypto.h"
#include "fota/json.h"

#include "rollout.h"
#include "store.h"
#include "store_audit.h"
#include "store_devices.h"
#include "store_releases.h"
#include "store_rollouts.h"

#define NOW 1764000000
#define N_A 20                    /* devices of hardware board-a */
#define N_B 2                     /* devices of hardware board-b */
#define SHA_A "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define SHA_0 "0000000000000000000000000000000000000000000000000000000000000000"
#define SHA_B "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"

struct fx {
    char dir[64];
    char db[128];
    struct fota_store *st;
    char dev_a[N_A][65];
    char dev_b[N_B][65];
    char dev_pending[65];
    int64_t seq[N_A];
};

static void device_id(const char *seed, int i, char out[65])
{
    char buf[64];
    uint8_t d[32];
    fota_sha256 h;

    snprintf(buf, sizeof(buf), "%s-%d", seed, i);
    fota_sha256_init(&h);
    fota_sha256_update(&h, buf, strlen(buf));
    fota_sha256_final(&h, d);
    fota_hex_encode(d, 32, out);
    out[64] = '\0';
}

static void add_device(struct fota_store *st, const char *id, const char *hw,
                       enum fota_store_device_status status, const char *version)
{
    struct fota_store_device d;

    memset(&d, 0, sizeof(d));
    snprintf(d.id, sizeof(d.id), "%s", id);
    snprintf(d.hardware_id, sizeof(d.hardware_id), "%s", hw);
    snprintf(d.version, sizeof(d.version), "%s", version);
    d.key_json = (char *)"{\"keytype\":\"ed25519\"}";
    d.status = status;
    d.security_counter = 1;
    d.stored_counter = 1;
    d.created = NOW - 100;
    assert_int_equal(fota_store_device_enrol(st, &d, NULL, NULL), FOTA_STORE_OK);
}

static void add_release(struct fota_store *st, const char *id, const char *name,
                        const char *sha, const char *version, int64_t counter, const char *hw)
{
    struct fota_store_release r;

    memset(&r, 0, sizeof(r));
    snprintf(r.id, sizeof(r.id), "%s", id);
    snprintf(r.target_name, sizeof(r.target_name), "%s", name);
    r.length = 1234;
    snprintf(r.sha256, sizeof(r.sha256), "%s", sha);
    snprintf(r.version, sizeof(r.version), "%s", version);
    r.security_counter = counter;
    r.targets_version = 2;
    r.created = NOW - 50;
    r.hardware_id_count = 1;
    snprintf(r.hardware_ids[0], sizeof(r.hardware_ids[0]), "%s", hw);
    assert_int_equal(fota_store_release_insert(st, &r), FOTA_STORE_OK);
}

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));

    assert_non_null(f);
    snprintf(f->dir, sizeof(f->dir), "/tmp/fota-rollout-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->db, sizeof(f->db), "%s/fota.db", f->dir);
    assert_int_equal(fota_store_open(f->db, &f->st), FOTA_STORE_OK);
    for (int i = 0; i < N_A; i++) {
        device_id("a", i, f->dev_a[i]);
        add_device(f->st, f->dev_a[i], "board-a", FOTA_STORE_DEVICE_ACCEPTED, "1.0.0");
    }
    for (int i = 0; i < N_B; i++) {
        device_id("b", i, f->dev_b[i]);
        add_device(f->st, f->dev_b[i], "board-b", FOTA_STORE_DEVICE_ACCEPTED, "1.0.0");
    }
    device_id("p", 0, f->dev_pending);
    add_device(f->st, f->dev_pending, "board-a", FOTA_STORE_DEVICE_PENDING, "1.0.0");
    add_release(f->st, "rel-a-1.1.0", "fw-a-1.1.0.img", SHA_A, "1.1.0", 2, "board-a");
    add_release(f->st, "rel-a-1.0.0", "fw-a-1.0.0.img", SHA_0, "1.0.0", 1, "board-a");
    add_release(f->st, "rel-b-1.1.0", "fw-b-1.1.0.img", SHA_B, "1.1.0", 2, "board-b");
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    char path[160];

    fota_store_close(f->st);
    snprintf(path, sizeof(path), "%s/fota.db", f->dir);
    unlink(path);
    snprintf(path, sizeof(path), "%s/fota.db-wal", f->dir);
    unlink(path);
    snprintf(path, sizeof(path), "%s/fota.db-shm", f->dir);
    unlink(path);
    rmdir(f->dir);
    free(f);
    return 0;
}

static json_t *parse(const char *text)
{
    json_t *v = NULL;

    assert_int_equal(fota_json_parse((const uint8_t *)text, strlen(text), 65536, 16, &v), FOTA_OK);
    return v;
}

static fota_err create(struct fx *f, const char *spec, char id[FOTA_ROLLOUT_ID_MAX + 1],
                       char *msg, size_t msglen)
{
    json_t *req = parse(spec);
    fota_err err = fota_rollout_create(f->st, req, "tester", NOW, id, msg, msglen);

    json_decref(req);
    return err;
}

static int device_index(struct fx *f, const char *id)
{
    for (int i = 0; i < N_A; i++) {
        if (strcmp(f->dev_a[i], id) == 0)
            return i;
    }
    return -1;
}

/* A check-in as the handler makes it: record it, then decide. */
static enum fota_rollout_action checkin(struct fx *f, int i, const char *version, int confirmed,
                                        struct fota_rollout_target *t)
{
    struct fota_store_checkin c;
    struct fota_store_device dev;
    struct fota_rollout_target tmp;
    enum fota_rollout_action action = FOTA_ROLLOUT_STAY;

    memset(&c, 0, sizeof(c));
    c.id = f->dev_a[i];
    c.seq = ++f->seq[i];
    c.now = NOW;
    c.version = version;
    c.security_counter = strcmp(version, "1.1.0") == 0 ? 2 : 1;
    c.confirmed = confirmed;
    assert_int_equal(fota_store_begin(f->st), FOTA_STORE_OK);
    assert_int_equal(fota_store_device_checkin(f->st, &c, &dev), FOTA_STORE_OK);
    assert_int_equal(fota_rollout_decide(f->st, f->dev_a[i], dev.hardware_id, version, NOW,
                                         &action, t != NULL ? t : &tmp),
                     FOTA_OK);
    assert_int_equal(fota_store_commit(f->st), FOTA_STORE_OK);
    return action;
}

static void report(struct fx *f, int i, const char *event, const char *target)
{
    assert_int_equal(fota_store_begin(f->st), FOTA_STORE_OK);
    assert_int_equal(fota_rollout_report(f->st, f->dev_a[i], event, target, NULL, NOW), FOTA_OK);
    assert_int_equal(fota_store_commit(f->st), FOTA_STORE_OK);
}

static enum fota_store_rd_status member_status(struct fx *f, const char *rid, int i)
{
    struct fota_store_rollout_device rd;

    assert_int_equal(fota_store_rollout_device_get(f->st, rid, f->dev_a[i], &rd), FOTA_STORE_OK);
    return rd.status;
}

static int member_wave(struct fx *f, const char *rid, int i)
{
    struct fota_store_rollout_device rd;

    assert_int_equal(fota_store_rollout_device_get(f->st, rid, f->dev_a[i], &rd), FOTA_STORE_OK);
    return rd.wave;
}

static struct fota_store_rollout get_rollout(struct fx *f, const char *rid)
{
    struct fota_store_rollout r;

    memset(&r, 0, sizeof(r));
    assert_int_equal(fota_store_rollout_get(f->st, rid, &r), FOTA_STORE_OK);
    free(r.group_json);
    r.group_json = NULL;
    return r;
}

/* Device indexes in wave order, computed here from the rule itself. */
struct ordered {
    uint8_t h[32];
    int i;
};

static int ordered_cmp(const void *a, const void *b)
{
    return memcmp(((const struct ordered *)a)->h, ((const struct ordered *)b)->h, 32);
}

static void wave_order(struct fx *f, const char *rid, int order[N_A])
{
    struct ordered o[N_A];

    for (int i = 0; i < N_A; i++) {
        fota_sha256 h;
        fota_sha256_init(&h);
        fota_sha256_update(&h, rid, strlen(rid));
        fota_sha256_update(&h, f->dev_a[i], 64);
        fota_sha256_final(&h, o[i].h);
        o[i].i = i;
    }
    qsort(o, N_A, sizeof(o[0]), ordered_cmp);
    for (int k = 0; k < N_A; k++)
        order[k] = o[k].i;
}

/* Take member i through a good install: it ends confirmed. */
static void good_install(struct fx *f, const char *rid, int i)
{
    struct fota_rollout_target t;

    assert_int_equal(checkin(f, i, "1.0.0", 1, &t), FOTA_ROLLOUT_INSTALL);
    assert_string_equal(t.name, "fw-a-1.1.0.img");
    assert_string_equal(t.rollout_id, rid);
    report(f, i, "downloading", "fw-a-1.1.0.img");
    report(f, i, "installed", "fw-a-1.1.0.img");
    report(f, i, "rebooted", "fw-a-1.1.0.img");
    assert_int_equal(checkin(f, i, "1.1.0", 0, NULL), FOTA_ROLLOUT_STAY);
    report(f, i, "confirmed", "fw-a-1.1.0.img");
    /* reported, not yet proven by a check-in */
    assert_int_equal(member_status(f, rid, i), FOTA_STORE_RD_REBOOTED);
    assert_int_equal(checkin(f, i, "1.1.0", 1, NULL), FOTA_ROLLOUT_STAY);
    assert_int_equal(member_status(f, rid, i), FOTA_STORE_RD_CONFIRMED);
}

static const char *SPEC_20 =
    "{\"release\":\"rel-a-1.1.0\",\"group\":{\"hardware_id\":\"board-a\"},"
    "\"waves\":[10,50,100],\"success_threshold\":1.0,\"failure_limit\":0.5}";

static void test_waves_and_advance(void **state)
{
    struct fx *f = *state;
    struct fota_store_rollout r;
    struct fota_rollout_target t;
    char rid[FOTA_ROLLOUT_ID_MAX + 1];
    char msg[256] = "";
    int order[N_A];

    assert_int_equal(create(f, SPEC_20, rid, msg, sizeof(msg)), FOTA_OK);
    r = get_rollout(f, rid);
    assert_int_equal(r.device_count, N_A);
    assert_int_equal(r.current_wave, 0);
    assert_string_equal(r.created_by, "tester");

    /* waves of [10,50,100] over 20: the first 2, the next 8, the last 10 */
    wave_order(f, rid, order);
    for (int k = 0; k < N_A; k++)
        assert_int_equal(member_wave(f, rid, order[k]), k < 2 ? 0 : k < 10 ? 1 : 2);

    /* only wave 0 gets install */
    for (int k = 0; k < N_A; k++) {
        enum fota_rollout_action a = checkin(f, order[k], "1.0.0", 1, &t);
        assert_int_equal(a, k < 2 ? FOTA_ROLLOUT_INSTALL : FOTA_ROLLOUT_STAY);
        if (a == FOTA_ROLLOUT_INSTALL) {
            assert_string_equal(t.name, "fw-a-1.1.0.img");
            assert_string_equal(t.sha256, SHA_A);
            assert_string_equal(t.version, "1.1.0");
            assert_int_equal(t.length, 1234);
            assert_int_equal(t.security_counter, 2);
        }
    }

    /* one confirms; the other only installs: installed is not success */
    good_install(f, rid, order[0]);
    report(f, order[1], "downloading", "fw-a-1.1.0.img");
    report(f, order[1], "installed", "fw-a-1.1.0.img");
    assert_int_equal(get_rollout(f, rid).current_wave, 0);
    assert_int_equal(checkin(f, order[2], "1.0.0", 1, NULL), FOTA_ROLLOUT_STAY);
    /* installed device still asked to install (it has not rebooted) */
    assert_int_equal(checkin(f, order[1], "1.0.0", 1, NULL), FOTA_ROLLOUT_INSTALL);
    /* reboots into it; confirmed is reported; only the check-in proves it */
    report(f, order[1], "rebooted", "fw-a-1.1.0.img");
    report(f, order[1], "confirmed", "fw-a-1.1.0.img");
    assert_int_equal(get_rollout(f, rid).current_wave, 0);
    assert_int_equal(checkin(f, order[1], "1.1.0", 1, NULL), FOTA_ROLLOUT_STAY);
    assert_int_equal(get_rollout(f, rid).current_wave, 1);

    /* wave 1 open: devices 2..9 get install, 10.. stay */
    for (int k = 2; k < N_A; k++)
        assert_int_equal(checkin(f, order[k], "1.0.0", 1, NULL),
                         k < 10 ? FOTA_ROLLOUT_INSTALL : FOTA_ROLLOUT_STAY);
    for (int k = 2; k < 10; k++)
        good_install(f, rid, order[k]);
    assert_int_equal(get_rollout(f, rid).current_wave, 2);
    for (int k = 10; k < N_A; k++)
        good_install(f, rid, order[k]);
    r = get_rollout(f, rid);
    assert_int_equal(r.state, FOTA_STORE_ROLLOUT_COMPLETED);

    /* progress view */
    {
        json_t *o = NULL, *p;
        assert_int_equal(fota_rollout_get_json(f->st, rid, &o), FOTA_OK);
        assert_string_equal(json_string_value(json_object_get(o, "state")), "completed");
        p = json_object_get(o, "progress");
        assert_int_equal(json_array_size(p), 3);
        assert_int_equal(json_integer_value(json_object_get(json_array_get(p, 0), "devices")), 2);
        assert_int_equal(json_integer_value(json_object_get(json_array_get(p, 1), "covered")), 10);
        assert_int_equal(json_integer_value(json_object_get(
                             json_object_get(o, "totals"), "confirmed")),
                         N_A);
        json_decref(o);
    }
    /* audit: the server's own decisions are logged */
    {
        struct fota_store_audit *a = NULL;
        size_t n = 0;
        int more = 0, waves = 0, complete = 0;
        assert_int_equal(fota_store_audit_list(f->st, 0, 100, &a, &n, &more), FOTA_STORE_OK);
        for (size_t i = 0; i < n; i++) {
            waves += strcmp(a[i].action, "rollout.wave") == 0;
            complete += strcmp(a[i].action, "rollout.complete") == 0;
        }
        assert_int_equal(waves, 2);
        assert_int_equal(complete, 1);
        fota_store_audit_list_free(a, n);
    }
}

static void test_failures_pause_resume_abort(void **state)
{
    struct fx *f = *state;
    char rid[FOTA_ROLLOUT_ID_MAX + 1];
    int order[N_A];

    /* limit 0.4 over the 2 devices of wave 0: one failure (0.5) pauses */
    assert_int_equal(create(f,
                            "{\"release\":\"rel-a-1.1.0\",\"group\":{\"hardware_id\":\"board-a\"},"
                            "\"waves\":[10,50,100],\"failure_limit\":0.4}",
                            rid, NULL, 0),
                     FOTA_OK);
    wave_order(f, rid, order);
    assert_int_equal(checkin(f, order[0], "1.0.0", 1, NULL), FOTA_ROLLOUT_INSTALL);
    report(f, order[0], "downloading", "fw-a-1.1.0.img");
    /* a report about another target changes nothing */
    report(f, order[0], "failed", "fw-other.img");
    assert_int_equal(member_status(f, rid, order[0]), FOTA_STORE_RD_DOWNLOADING);
    report(f, order[0], "installed", "fw-a-1.1.0.img");
    report(f, order[0], "rebooted", "fw-a-1.1.0.img");
    report(f, order[0], "rolled_back", "fw-a-1.1.0.img");
    assert_int_equal(member_status(f, rid, order[0]), FOTA_STORE_RD_ROLLED_BACK);
    assert_int_equal(get_rollout(f, rid).state, FOTA_STORE_ROLLOUT_PAUSED);
    /* the rolled-back device runs the old version: stay, and no retry */
    assert_int_equal(checkin(f, order[0], "1.0.0", 1, NULL), FOTA_ROLLOUT_STAY);
    /* paused: a member not started stays... */
    assert_int_equal(checkin(f, order[1], "1.0.0", 1, NULL), FOTA_ROLLOUT_STAY);

    /* resume: not re-paused by the old failure; wave 0 installs again */
    assert_int_equal(fota_rollout_set_state(f->st, rid, "resume", NOW), FOTA_OK);
    assert_int_equal(get_rollout(f, rid).state, FOTA_STORE_ROLLOUT_ACTIVE);
    assert_int_equal(checkin(f, order[1], "1.0.0", 1, NULL), FOTA_ROLLOUT_INSTALL);
    report(f, order[1], "downloading", "fw-a-1.1.0.img");
    /* pause by the operator: the download under way may finish */
    assert_int_equal(fota_rollout_set_state(f->st, rid, "pause", NOW), FOTA_OK);
    assert_int_equal(fota_rollout_set_state(f->st, rid, "pause", NOW), FOTA_E_STATE);
    assert_int_equal(checkin(f, order[1], "1.0.0", 1, NULL), FOTA_ROLLOUT_INSTALL);
    assert_int_equal(fota_rollout_set_state(f->st, rid, "resume", NOW), FOTA_OK);

    /* abort: stay for everyone, including the one downloading */
    assert_int_equal(fota_rollout_set_state(f->st, rid, "abort", NOW), FOTA_OK);
    for (int k = 0; k < N_A; k++)
        assert_int_equal(checkin(f, order[k], "1.0.0", 1, NULL), FOTA_ROLLOUT_STAY);
    assert_int_equal(fota_rollout_set_state(f->st, rid, "resume", NOW), FOTA_E_STATE);
    assert_int_equal(fota_rollout_set_state(f->st, rid, "abort", NOW), FOTA_E_STATE);
    assert_int_equal(fota_rollout_set_state(f->st, rid, "explode", NOW), FOTA_E_INVALID);
    assert_int_equal(fota_rollout_set_state(f->st, "r-nope", "pause", NOW), FOTA_E_NOT_FOUND);
    /* outcomes are still recorded after the abort */
    report(f, order[1], "failed", "fw-a-1.1.0.img");
    assert_int_equal(member_status(f, rid, order[1]), FOTA_STORE_RD_FAILED);
    assert_int_equal(get_rollout(f, rid).state, FOTA_STORE_ROLLOUT_ABORTED);
}

static void test_revert_detected_at_checkin(void **state)
{
    struct fx *f = *state;
    char rid[FOTA_ROLLOUT_ID_MAX + 1];
    int order[N_A];
    struct fota_store_rollout_device rd;

    assert_int_equal(create(f,
                            "{\"release\":\"rel-a-1.1.0\",\"group\":{\"hardware_id\":\"board-a\"},"
                            "\"waves\":[10,100],\"failure_limit\":1.0}",
                            rid, NULL, 0),
                     FOTA_OK);
    wave_order(f, rid, order);
    assert_int_equal(checkin(f, order[0], "1.0.0", 1, NULL), FOTA_ROLLOUT_INSTALL);
    report(f, order[0], "rebooted", "fw-a-1.1.0.img");
    /* booted the new image, then checks in on the old one: reverted */
    assert_int_equal(checkin(f, order[0], "1.0.0", 1, NULL), FOTA_ROLLOUT_STAY);
    assert_int_equal(fota_store_rollout_device_get(f->st, rid, f->dev_a[order[0]], &rd),
                     FOTA_STORE_OK);
    assert_int_equal(rd.status, FOTA_STORE_RD_ROLLED_BACK);
    assert_string_equal(rd.reason, "reverted");
    /* limit 1.0 is never exceeded */
    assert_int_equal(get_rollout(f, rid).state, FOTA_STORE_ROLLOUT_ACTIVE);
    /* a later confirmed report for it changes nothing: outcomes are final */
    report(f, order[0], "confirmed", "fw-a-1.1.0.img");
    assert_int_equal(member_status(f, rid, order[0]), FOTA_STORE_RD_ROLLED_BACK);
}

static void test_rollback_refused(void **state)
{
    struct fx *f = *state;
    char rid[FOTA_ROLLOUT_ID_MAX + 1];
    char msg[256] = "";
    struct fota_store_rollout *items = NULL;
    size_t n = 9;
    int more = 0;

    /* device 3 confirms 1.1.0 (counter 2): its stored counter becomes 2 */
    assert_int_equal(checkin(f, 3, "1.1.0", 1, NULL), FOTA_ROLLOUT_STAY);
    assert_int_equal(create(f,
                            "{\"release\":\"rel-a-1.0.0\",\"group\":{\"hardware_id\":\"board-a\"},"
                            "\"rollback\":true}",
                            rid, msg, sizeof(msg)),
                     FOTA_E_ROLLBACK);
    assert_non_null(strstr(msg, f->dev_a[3]));
    assert_int_equal(fota_store_rollout_list(f->st, 0, NULL, 100, &items, &n, &more),
                     FOTA_STORE_OK);
    assert_int_equal(n, 0);
    fota_store_rollout_list_free(items, n);

    /* without that device, the rollback rollout is allowed */
    {
        char spec[512];
        snprintf(spec, sizeof(spec),
                 "{\"release\":\"rel-a-1.0.0\",\"group\":{\"devices\":[\"%s\",\"%s\"]},"
                 "\"rollback\":true}",
                 f->dev_a[3], f->dev_a[4]);
        assert_int_equal(create(f, spec, rid, msg, sizeof(msg)), FOTA_E_ROLLBACK);
        /* devices 4 and 5 run 1.0.0 already: nothing to do -> refused as empty */
        snprintf(spec, sizeof(spec),
                 "{\"release\":\"rel-a-1.0.0\",\"group\":{\"devices\":[\"%s\",\"%s\"]},"
                 "\"rollback\":true}",
                 f->dev_a[4], f->dev_a[5]);
        assert_int_equal(create(f, spec, rid, msg, sizeof(msg)), FOTA_E_STATE);
        /* device 6 runs 1.1.0 unconfirmed (stored counter 1): allowed */
        assert_int_equal(checkin(f, 6, "1.1.0", 0, NULL), FOTA_ROLLOUT_STAY);
        snprintf(spec, sizeof(spec),
                 "{\"release\":\"rel-a-1.0.0\",\"group\":{\"devices\":[\"%s\"]},"
                 "\"rollback\":true}",
                 f->dev_a[6]);
        assert_int_equal(create(f, spec, rid, msg, sizeof(msg)), FOTA_OK);
        assert_int_equal(get_rollout(f, rid).rollback, 1);
        assert_int_equal(checkin(f, 6, "1.1.0", 0, NULL), FOTA_ROLLOUT_INSTALL);
    }
}

static void test_hardware(void **state)
{
    struct fx *f = *state;
    char rid[FOTA_ROLLOUT_ID_MAX + 1];
    char msg[256] = "";
    char spec[512];
    struct fota_rollout_target t;
    enum fota_rollout_action a;

    /* an explicit list naming a board-b device is refused */
    snprintf(spec, sizeof(spec),
             "{\"release\":\"rel-a-1.1.0\",\"group\":{\"devices\":[\"%s\",\"%s\"]}}",
             f->dev_a[0], f->dev_b[0]);
    assert_int_equal(create(f, spec, rid, msg, sizeof(msg)), FOTA_E_HARDWARE);
    /* a filter group leaves board-b out: {} means every accepted device */
    assert_int_equal(create(f, "{\"release\":\"rel-a-1.1.0\",\"group\":{}}", rid, msg,
                            sizeof(msg)),
                     FOTA_OK);
    assert_int_equal(get_rollout(f, rid).device_count, N_A);
    for (int i = 0; i < N_B; i++) {
        assert_int_equal(fota_rollout_decide(f->st, f->dev_b[i], "board-b", "1.0.0", NOW, &a, &t),
                         FOTA_OK);
        assert_int_equal(a, FOTA_ROLLOUT_STAY);
    }
    /* a caller holding another hardware id for a member never gets it */
    assert_int_equal(fota_rollout_decide(f->st, f->dev_a[0], "board-b", "1.0.0", NOW, &a, &t),
                     FOTA_OK);
    assert_int_equal(a, FOTA_ROLLOUT_STAY);
    assert_int_equal(fota_rollout_decide(f->st, f->dev_a[0], "board-a", "1.0.0", NOW, &a, &t),
                     FOTA_OK);
    assert_int_equal(a, FOTA_ROLLOUT_INSTALL);
    /* a device in no rollout stays */
    assert_int_equal(fota_rollout_decide(f->st, f->dev_pending, NULL, "1.0.0", NOW, &a, &t),
                     FOTA_OK);
    assert_int_equal(a, FOTA_ROLLOUT_STAY);
}

static void test_bad_specs(void **state)
{
    struct fx *f = *state;
    char rid[FOTA_ROLLOUT_ID_MAX + 1];
    char msg[256];
    char spec[512];
    static const char *const bad[] = {
        "{\"group\":{}}",
        "{\"release\":\"rel-a-1.1.0\"}",
        "{\"release\":\"rel-a-1.1.0\",\"group\":[]}",
        "{\"release\":\"rel-a-1.1.0\",\"group\":{},\"waves\":[50,10,100]}",
        "{\"release\":\"rel-a-1.1.0\",\"group\":{},\"waves\":[10,50]}",
        "{\"release\":\"rel-a-1.1.0\",\"group\":{},\"waves\":[0,100]}",
        "{\"release\":\"rel-a-1.1.0\",\"group\":{},\"waves\":[10,10,100]}",
        "{\"release\":\"rel-a-1.1.0\",\"group\":{},\"waves\":[]}",
        "{\"release\":\"rel-a-1.1.0\",\"group\":{},\"waves\":[\"10\",100]}",
        "{\"release\":\"rel-a-1.1.0\",\"group\":{},\"success_threshold\":1.5}",
        "{\"release\":\"rel-a-1.1.0\",\"group\":{},\"failure_limit\":-0.1}",
        "{\"release\":\"rel-a-1.1.0\",\"group\":{},\"rollback\":1}",
        "{\"release\":\"rel-a-1.1.0\",\"group\":{},\"extra\":1}",
        "{\"release\":\"rel-a-1.1.0\",\"group\":{\"colour\":\"red\"}}",
        "{\"release\":\"rel-a-1.1.0\",\"group\":{\"devices\":[]}}",
        "{\"release\":\"rel-a-1.1.0\",\"group\":{\"devices\":[1]}}",
        "{\"release\":\"rel-a-1.1.0\",\"group\":{\"devices\":[\"x\"],\"hardware_id\":\"a\"}}",
        "{\"release\":\"rel-a-1.1.0\",\"group\":{\"tags\":\"x\"}}",
        "{\"release\":\"\",\"group\":{}}",
    };
    struct fota_store_rollout *items = NULL;
    size_t n = 0;
    int more = 0;

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        msg[0] = '\0';
        if (create(f, bad[i], rid, msg, sizeof(msg)) != FOTA_E_INVALID)
            fail_msg("accepted: %s", bad[i]);
        assert_true(msg[0] != '\0');
    }
    assert_int_equal(create(f, "{\"release\":\"rel-nope\",\"group\":{}}", rid, msg, sizeof(msg)),
                     FOTA_E_NOT_FOUND);
    snprintf(spec, sizeof(spec), "{\"release\":\"rel-a-1.1.0\",\"group\":{\"devices\":[\"%s\"]}}",
             f->dev_pending);
    assert_int_equal(create(f, spec, rid, msg, sizeof(msg)), FOTA_E_STATE);
    snprintf(spec, sizeof(spec), "{\"release\":\"rel-a-1.1.0\",\"group\":{\"devices\":[\"%s\"]}}",
             "00ff00ff");
    assert_int_equal(create(f, spec, rid, msg, sizeof(msg)), FOTA_E_NOT_FOUND);
    snprintf(spec, sizeof(spec),
             "{\"release\":\"rel-a-1.1.0\",\"group\":{\"devices\":[\"%s\",\"%s\"]}}", f->dev_a[1],
             f->dev_a[1]);
    assert_int_equal(create(f, spec, rid, msg, sizeof(msg)), FOTA_E_INVALID);
    /* a filter that matches nothing */
    assert_int_equal(create(f, "{\"release\":\"rel-a-1.1.0\",\"group\":{\"tags\":[\"none\"]}}",
                            rid, msg, sizeof(msg)),
                     FOTA_E_STATE);
    /* nothing was stored by any of these */
    assert_int_equal(fota_store_rollout_list(f->st, 0, NULL, 100, &items, &n, &more),
                     FOTA_STORE_OK);
    assert_int_equal(n, 0);
    fota_store_rollout_list_free(items, n);
    /* unknown report events are refused */
    assert_int_equal(fota_rollout_report(f->st, f->dev_a[0], "exploded", NULL, NULL, NOW),
                     FOTA_E_INVALID);
    /* reports of a device in no rollout are fine */
    assert_int_equal(fota_rollout_report(f->st, f->dev_a[0], "failed", "x", NULL, NOW), FOTA_OK);
}

static void test_tags_and_version_filter(void **state)
{
    struct fx *f = *state;
    char rid[FOTA_ROLLOUT_ID_MAX + 1];
    char msg[256] = "";
    const char *const both[] = {"eu", "beta"};
    const char *const eu[] = {"eu"};

    /* devices 0..5 tagged eu, 0..2 also beta */
    for (int i = 0; i < 6; i++)
        assert_int_equal(fota_store_device_tags(f->st, f->dev_a[i], i < 3 ? both : eu,
                                                i < 3 ? 2 : 1, NULL, 0),
                         FOTA_STORE_OK);
    /* device 1 already runs 1.1.0: skipped as current */
    assert_int_equal(checkin(f, 1, "1.1.0", 0, NULL), FOTA_ROLLOUT_STAY);
    assert_int_equal(create(f,
                            "{\"release\":\"rel-a-1.1.0\",\"group\":{\"tags\":[\"eu\",\"beta\"],"
                            "\"version\":\"1.0.0\"}}",
                            rid, msg, sizeof(msg)),
                     FOTA_OK);
    assert_int_equal(get_rollout(f, rid).device_count, 2);
    {
        json_t *o = NULL;
        assert_int_equal(fota_rollout_devices_json(f->st, rid, NULL, NULL, 1, &o), FOTA_OK);
        assert_int_equal(json_array_size(json_object_get(o, "devices")), 1);
        assert_true(json_is_string(json_object_get(o, "next")));
        json_decref(o);
        assert_int_equal(fota_rollout_list_json(f->st, "active", NULL, 10, &o), FOTA_OK);
        assert_int_equal(json_array_size(json_object_get(o, "rollouts")), 1);
        json_decref(o);
        assert_int_equal(fota_rollout_list_json(f->st, "bogus", NULL, 10, &o), FOTA_E_INVALID);
        assert_int_equal(fota_rollout_get_json(f->st, "r-nope", &o), FOTA_E_NOT_FOUND);
    }
}

/* The last wave completes once every member has an outcome, even below
 * the threshold; before that it stays active. */
static void test_complete_with_failures(void **state)
{
    struct fx *f = *state;
    char rid[FOTA_ROLLOUT_ID_MAX + 1];

    assert_int_equal(create(f,
                            "{\"release\":\"rel-a-1.1.0\",\"group\":{\"hardware_id\":\"board-a\"},"
                            "\"success_threshold\":0.99,\"failure_limit\":1.0}",
                            rid, NULL, 0),
                     FOTA_OK);
    for (int i = 0; i < N_A - 1; i++)
        good_install(f, rid, i);
    assert_int_equal(get_rollout(f, rid).state, FOTA_STORE_ROLLOUT_ACTIVE);
    assert_int_equal(checkin(f, N_A - 1, "1.0.0", 1, NULL), FOTA_ROLLOUT_INSTALL);
    report(f, N_A - 1, "failed", "fw-a-1.1.0.img");
    assert_int_equal(get_rollout(f, rid).state, FOTA_STORE_ROLLOUT_COMPLETED);
    assert_int_equal(checkin(f, N_A - 1, "1.0.0", 1, NULL), FOTA_ROLLOUT_STAY);
}

/* Two connections to one database (as two server processes): both see the
 * last confirmation's effect once, and exactly one wave advance happens. */
static void test_two_connections(void **state)
{
    struct fx *f = *state;
    struct fota_store *other = NULL;
    char rid[FOTA_ROLLOUT_ID_MAX + 1];
    int order[N_A];
    enum fota_rollout_action a;
    struct fota_rollout_target t;

    assert_int_equal(create(f, SPEC_20, rid, NULL, 0), FOTA_OK);
    wave_order(f, rid, order);
    assert_int_equal(fota_store_open(f->db, &other), FOTA_STORE_OK);
    good_install(f, rid, order[0]);
    /* the second device's last steps go through the other connection */
    assert_int_equal(checkin(f, order[1], "1.0.0", 1, NULL), FOTA_ROLLOUT_INSTALL);
    assert_int_equal(fota_rollout_report(other, f->dev_a[order[1]], "confirmed",
                                         "fw-a-1.1.0.img", NULL, NOW),
                     FOTA_OK);
    assert_int_equal(fota_rollout_decide(other, f->dev_a[order[1]], "board-a", "1.1.0", NOW, &a,
                                         &t),
                     FOTA_OK);
    /* a repeated proof from the first connection changes nothing more */
    assert_int_equal(fota_rollout_decide(f->st, f->dev_a[order[1]], "board-a", "1.1.0", NOW, &a,
                                         &t),
                     FOTA_OK);
    assert_int_equal(get_rollout(f, rid).current_wave, 1);
    fota_store_close(other);
    {
        struct fota_store_audit *au = NULL;
        size_t n = 0;
        int more = 0, waves = 0;
        assert_int_equal(fota_store_audit_list(f->st, 0, 100, &au, &n, &more), FOTA_STORE_OK);
        for (size_t i = 0; i < n; i++)
            waves += strcmp(au[i].action, "rollout.wave") == 0;
        assert_int_equal(waves, 1);
        fota_store_audit_list_free(au, n);
    }
    (void)device_index;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_waves_and_advance, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failures_pause_resume_abort, setup, teardown),
        cmocka_unit_test_setup_teardown(test_revert_detected_at_checkin, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rollback_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hardware, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_specs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tags_and_version_filter, setup, teardown),
        cmocka_unit_test_setup_teardown(test_complete_with_failures, setup, teardown),
        cmocka_unit_test_setup_teardown(test_two_connections, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
