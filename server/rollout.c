/* SPDX-License-Identifier: Apache-2.0 */
#include "rollout.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/rand.h>

#include "fota/crypto.h"
#include "fota/json.h"
#include "fota/tuf.h"
#include "store.h"
#include "store_audit.h"
#include "store_devices.h"
#include "store_releases.h"
#include "store_rollouts.h"

/* The reason a member carries while it has reported `confirmed` but has not
 * yet checked in running the release: it stays `rebooted` until then, so
 * the store's `confirmed` count is exactly the success count. */
#define REASON_CONFIRM_PENDING "confirmed"
/* A member that reported rebooted/confirmed and then checked in running
 * another version: the bootloader reverted it. */
#define REASON_REVERTED "reverted"

#define RD_BIT(s) FOTA_STORE_RD_BIT(FOTA_STORE_RD_##s)
#define RO_BIT(s) FOTA_STORE_ROLLOUT_BIT(FOTA_STORE_ROLLOUT_##s)

/* Members not yet at an outcome. */
#define RD_IN_FLIGHT (RD_BIT(ASSIGNED) | RD_BIT(DOWNLOADING) | RD_BIT(INSTALLED) | RD_BIT(REBOOTED))

/* Float slack for share comparisons: shares are ratios of integers below
 * 2^31, so anything below 1e-9 is rounding, not a device. */
#define SHARE_EPSILON 1e-9

static fota_err from_store(enum fota_store_err e)
{
    switch (e) {
    case FOTA_STORE_OK:
        return FOTA_OK;
    case FOTA_STORE_NOT_FOUND:
        return FOTA_E_NOT_FOUND;
    case FOTA_STORE_CONFLICT:
    case FOTA_STORE_STATE:
        return FOTA_E_STATE;
    case FOTA_STORE_INVALID:
        return FOTA_E_INVALID;
    case FOTA_STORE_BUSY:
    case FOTA_STORE_ERROR:
        break;
    }
    return FOTA_E_IO;
}

static void set_err(char *errbuf, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void set_err(char *errbuf, size_t errlen, const char *fmt, ...)
{
    va_list ap;

    if (errbuf == NULL || errlen == 0)
        return;
    va_start(ap, fmt);
    vsnprintf(errbuf, errlen, fmt, ap);
    va_end(ap);
}

/* Append a server-made entry to the audit log (actor ""): wave changes,
 * self-pauses and completion are decisions someone will ask about. */
static enum fota_store_err audit_server(struct fota_store *st, const char *action,
                                        const char *rollout_id, const char *detail,
                                        int64_t now)
{
    struct fota_store_audit a;

    memset(&a, 0, sizeof(a));
    a.time = now;
    snprintf(a.action, sizeof(a.action), "%s", action);
    snprintf(a.object, sizeof(a.object), "rollout/%s", rollout_id);
    a.detail_json = (char *)detail;
    return fota_store_audit_append(st, &a, NULL);
}

/* Wave size rule: wave k covers the first ceil(pct_k * n / 100) members. */
static int64_t wave_cover(int pct, int64_t n)
{
    return ((int64_t)pct * n + 99) / 100;
}

/*
 * Re-evaluate the rollout after a member's transition (or a resume), inside
 * the caller's transaction: self-pause on failures (only when
 * check_failures: the failure rule is edge-triggered by a new failure, so an
 * operator's resume after a self-pause is not undone at once), then open
 * waves while the current one meets the success threshold; with the last
 * wave open, complete once every member has an outcome.
 * Every write is guarded in the store; losing a race (CONFLICT) just means
 * another process made the same decision first.
 */
static fota_err rollout_evaluate(struct fota_store *st, const char *rollout_id, int check_failures,
                                 int64_t now)
{
    struct fota_store_rollout r;
    struct fota_store_rollout_counts c;
    enum fota_store_err e;
    fota_err err = FOTA_OK;
    char detail[160];

    memset(&r, 0, sizeof(r));
    for (int round = 0; round <= FOTA_STORE_WAVES_MAX; round++) {
        int64_t open = 0, ok = 0, bad = 0, done = 0;

        fota_store_rollout_clear(&r);
        e = fota_store_rollout_get(st, rollout_id, &r);
        if (e != FOTA_STORE_OK) {
            err = from_store(e);
            goto out;
        }
        if (r.state != FOTA_STORE_ROLLOUT_ACTIVE)
            goto out;
        e = fota_store_rollout_counts(st, rollout_id, &c);
        if (e != FOTA_STORE_OK) {
            err = from_store(e);
            goto out;
        }
        for (int w = 0; w < r.wave_count && w < FOTA_STORE_WAVES_MAX; w++) {
            const int64_t *n = c.n[w];
            int64_t all = 0;
            for (int s = 0; s < FOTA_STORE_RD_STATUS_COUNT; s++)
                all += n[s];
            done += n[FOTA_STORE_RD_CONFIRMED] + n[FOTA_STORE_RD_ROLLED_BACK] +
                    n[FOTA_STORE_RD_FAILED];
            if (w > r.current_wave)
                continue;
            open += all;
            ok += n[FOTA_STORE_RD_CONFIRMED];
            bad += n[FOTA_STORE_RD_ROLLED_BACK] + n[FOTA_STORE_RD_FAILED];
        }

        if (check_failures && open > 0 &&
            (double)bad > r.failure_limit * (double)open + SHARE_EPSILON) {
            e = fota_store_rollout_set_state(st, rollout_id, FOTA_STORE_ROLLOUT_PAUSED,
                                             RO_BIT(ACTIVE), now);
            if (e == FOTA_STORE_CONFLICT)
                goto out;
            if (e != FOTA_STORE_OK) {
                err = from_store(e);
                goto out;
            }
            snprintf(detail, sizeof(detail),
                     "{\"reason\":\"failure_limit\",\"failed\":%lld,\"assigned\":%lld}",
                     (long long)bad, (long long)open);
            err = from_store(audit_server(st, "rollout.pause", rollout_id, detail, now));
            goto out;
        }

        if (r.current_wave + 1 >= r.wave_count) {
            /* Last wave open: done once every member has an outcome, met
             * threshold or not (the progress shows how it went). */
            if (done < c.total)
                goto out;
        } else {
            if (open == 0 || (double)ok < r.success_threshold * (double)open - SHARE_EPSILON)
                goto out;
            e = fota_store_rollout_set_wave(st, rollout_id, r.current_wave, r.current_wave + 1,
                                            now);
            if (e == FOTA_STORE_CONFLICT)
                goto out;
            if (e != FOTA_STORE_OK) {
                err = from_store(e);
                goto out;
            }
            snprintf(detail, sizeof(detail),
                     "{\"wave\":%d,\"confirmed\":%lld,\"assigned\":%lld}", r.current_wave + 1,
                     (long long)ok, (long long)open);
            e = audit_server(st, "rollout.wave", rollout_id, detail, now);
            if (e != FOTA_STORE_OK) {
                err = from_store(e);
                goto out;
            }
            continue; /* the next wave may already be met (an empty wave) */
        }
        e = fota_store_rollout_set_state(st, rollout_id, FOTA_STORE_ROLLOUT_COMPLETED,
                                         RO_BIT(ACTIVE), now);
        if (e == FOTA_STORE_CONFLICT)
            goto out;
        if (e != FOTA_STORE_OK) {
            err = from_store(e);
            goto out;
        }
        snprintf(detail, sizeof(detail), "{\"confirmed\":%lld,\"devices\":%lld}",
                 (long long)ok, (long long)c.total);
        err = from_store(audit_server(st, "rollout.complete", rollout_id, detail, now));
        goto out;
    }
out:
    fota_store_rollout_clear(&r);
    return err;
}

/*
 * One member transition plus the evaluation it triggers, as one (nested)
 * transaction. A CONFLICT from the guarded update means the member already
 * moved on (a duplicate report, or another process): nothing to do.
 */
static fota_err member_transition(struct fota_store *st, const char *rollout_id,
                                  const char *device_id, enum fota_store_rd_status next,
                                  unsigned from_mask, const char *reason, int evaluate,
                                  int check_failures, int64_t now)
{
    enum fota_store_err e;
    fota_err err;

    e = fota_store_begin(st);
    if (e != FOTA_STORE_OK)
        return from_store(e);
    e = fota_store_rollout_device_set_status(st, rollout_id, device_id, next, from_mask, reason,
                                             now);
    if (e == FOTA_STORE_CONFLICT || e == FOTA_STORE_NOT_FOUND) {
        err = FOTA_OK;
        goto out;
    }
    if (e != FOTA_STORE_OK) {
        err = from_store(e);
        goto out;
    }
    err = evaluate ? rollout_evaluate(st, rollout_id, check_failures, now) : FOTA_OK;
out:
    if (err == FOTA_OK) {
        e = fota_store_commit(st);
        if (e != FOTA_STORE_OK) {
            fota_store_rollback(st);
            err = from_store(e);
        }
    } else {
        fota_store_rollback(st);
    }
    return err;
}

static int release_has_hwid(const struct fota_store_release *rel, const char *hwid)
{
    for (size_t i = 0; i < rel->hardware_id_count && i < FOTA_STORE_RELEASE_HWIDS_MAX; i++) {
        if (strcmp(rel->hardware_ids[i], hwid) == 0)
            return 1;
    }
    return 0;
}

fota_err fota_rollout_decide(struct fota_store *st, const char *device_id,
                             const char *hardware_id, const char *running_version,
                             int64_t now, enum fota_rollout_action *ret_action,
                             struct fota_rollout_target *ret_target)
{
    struct fota_store_assignment a;
    struct fota_store_rollout_device rd;
    struct fota_store_release rel;
    enum fota_rollout_action action = FOTA_ROLLOUT_STAY;
    enum fota_store_err e;
    fota_err err = FOTA_OK;
    int running_release;

    if (st == NULL || device_id == NULL || running_version == NULL || ret_action == NULL ||
        ret_target == NULL)
        return FOTA_E_INVALID;

    /* The hot path: one indexed query; most check-ins end here. */
    e = fota_store_rollout_assignment(st, device_id, RO_BIT(ACTIVE) | RO_BIT(PAUSED), &a);
    if (e == FOTA_STORE_NOT_FOUND)
        goto done;
    if (e != FOTA_STORE_OK)
        return from_store(e);

    running_release = strcmp(running_version, a.version) == 0;
    if (running_release) {
        /* Running the release: nothing to install. A member that already
         * reported `confirmed` now proves it: success. One that did not is
         * at least rebooted into it (it still has to confirm). */
        if (a.status == FOTA_STORE_RD_REBOOTED) {
            e = fota_store_rollout_device_get(st, a.rollout_id, device_id, &rd);
            if (e != FOTA_STORE_OK)
                return from_store(e);
            if (strcmp(rd.reason, REASON_CONFIRM_PENDING) == 0)
                err = member_transition(st, a.rollout_id, device_id, FOTA_STORE_RD_CONFIRMED,
                                        RD_BIT(REBOOTED), "", 1, 0, now);
        } else if ((RD_BIT(ASSIGNED) | RD_BIT(DOWNLOADING) | RD_BIT(INSTALLED)) &
                   FOTA_STORE_RD_BIT(a.status)) {
            err = member_transition(st, a.rollout_id, device_id, FOTA_STORE_RD_REBOOTED,
                                    RD_BIT(ASSIGNED) | RD_BIT(DOWNLOADING) | RD_BIT(INSTALLED),
                                    "", 0, 0, now);
        }
        if (err != FOTA_OK)
            return err;
        goto done;
    }

    /* Running something else. A member that had booted the release is back
     * on another version: the bootloader reverted it (the registry already
     * holds the version it runs, which is the truth). */
    if (a.status == FOTA_STORE_RD_REBOOTED) {
        err = member_transition(st, a.rollout_id, device_id, FOTA_STORE_RD_ROLLED_BACK,
                                RD_BIT(REBOOTED), REASON_REVERTED, 1, 1, now);
        if (err != FOTA_OK)
            return err;
        goto done;
    }
    if (a.wave > a.current_wave)
        goto done;
    if (a.state == FOTA_STORE_ROLLOUT_ACTIVE) {
        if ((RD_BIT(ASSIGNED) | RD_BIT(DOWNLOADING) | RD_BIT(INSTALLED)) &
            FOTA_STORE_RD_BIT(a.status))
            action = FOTA_ROLLOUT_INSTALL;
    } else if (a.state == FOTA_STORE_ROLLOUT_PAUSED) {
        /* Paused: no new installs, but one under way may finish. */
        if ((RD_BIT(DOWNLOADING) | RD_BIT(INSTALLED)) & FOTA_STORE_RD_BIT(a.status))
            action = FOTA_ROLLOUT_INSTALL;
    }
    if (action != FOTA_ROLLOUT_INSTALL)
        goto done;

    /* The store's query already matched the release against the device's
     * hardware id; check again against what the caller holds, so no change
     * elsewhere can ever send an image to the wrong hardware. */
    e = fota_store_release_get(st, a.release_id, &rel);
    if (e != FOTA_STORE_OK)
        return from_store(e);
    if (hardware_id == NULL || !release_has_hwid(&rel, hardware_id)) {
        action = FOTA_ROLLOUT_STAY;
        goto done;
    }
    if (a.length < 0 || a.security_counter < 0 ||
        strlen(a.target_name) > FOTA_ROLLOUT_NAME_MAX ||
        strlen(a.version) > FOTA_ROLLOUT_VERSION_MAX ||
        strlen(a.rollout_id) > FOTA_ROLLOUT_ID_MAX || strlen(a.sha256) != 64)
        return FOTA_E_INVALID;
    memset(ret_target, 0, sizeof(*ret_target));
    memcpy(ret_target->rollout_id, a.rollout_id, strlen(a.rollout_id) + 1);
    memcpy(ret_target->name, a.target_name, strlen(a.target_name) + 1);
    ret_target->length = (uint64_t)a.length;
    memcpy(ret_target->sha256, a.sha256, 65);
    memcpy(ret_target->version, a.version, strlen(a.version) + 1);
    ret_target->security_counter = (uint64_t)a.security_counter;
done:
    *ret_action = action;
    return FOTA_OK;
}

/* What a report event does to a member: its next status and the statuses
 * it may come from (so a late or repeated report never moves a member
 * backwards). */
struct report_rule {
    const char *event;
    enum fota_store_rd_status next;
    unsigned from_mask;
    int failure;
};

static const struct report_rule report_rules[] = {
    {"downloading", FOTA_STORE_RD_DOWNLOADING, RD_BIT(ASSIGNED), 0},
    {"installed", FOTA_STORE_RD_INSTALLED, RD_BIT(ASSIGNED) | RD_BIT(DOWNLOADING), 0},
    {"rebooted", FOTA_STORE_RD_REBOOTED,
     RD_BIT(ASSIGNED) | RD_BIT(DOWNLOADING) | RD_BIT(INSTALLED), 0},
    /* confirmed: still `rebooted` (reason marks it) until a check-in shows
     * the device running the release. */
    {"confirmed", FOTA_STORE_RD_REBOOTED, RD_IN_FLIGHT, 0},
    {"rolled_back", FOTA_STORE_RD_ROLLED_BACK, RD_IN_FLIGHT, 1},
    {"failed", FOTA_STORE_RD_FAILED, RD_IN_FLIGHT, 1},
};

/* The reason the device gave with this report: S3's handler appended it to
 * the history just before calling us, so it is the newest entry. */
static void report_reason(struct fota_store *st, const char *device_id, const char *event,
                          char out[FOTA_STORE_REASON_MAX + 1])
{
    struct fota_store_history *h = NULL;
    size_t n = 0;
    int more = 0;

    snprintf(out, FOTA_STORE_REASON_MAX + 1, "%s", event);
    if (fota_store_device_history_list(st, device_id, 0, 1, &h, &n, &more) != FOTA_STORE_OK)
        return;
    if (n == 1 && strcmp(h[0].event, event) == 0 && h[0].reason[0] != '\0')
        snprintf(out, FOTA_STORE_REASON_MAX + 1, "%s", h[0].reason);
    fota_store_history_list_free(h, n);
}

fota_err fota_rollout_report(struct fota_store *st, const char *device_id,
                             const char *event, const char *target,
                             const char *version, int64_t now)
{
    const struct report_rule *rule = NULL;
    struct fota_store_assignment a;
    enum fota_store_err e;
    char reason[FOTA_STORE_REASON_MAX + 1];
    int names_release = 0;

    if (st == NULL || device_id == NULL || event == NULL)
        return FOTA_E_INVALID;
    for (size_t i = 0; i < sizeof(report_rules) / sizeof(report_rules[0]); i++) {
        if (strcmp(report_rules[i].event, event) == 0)
            rule = &report_rules[i];
    }
    if (rule == NULL)
        return FOTA_E_INVALID;

    /* Outcomes are recorded whatever the rollout's state (an aborted
     * rollout's progress still tells what happened). */
    e = fota_store_rollout_assignment(st, device_id,
                                      RO_BIT(ACTIVE) | RO_BIT(PAUSED) | RO_BIT(ABORTED) |
                                          RO_BIT(COMPLETED),
                                      &a);
    if (e == FOTA_STORE_NOT_FOUND)
        return FOTA_OK;
    if (e != FOTA_STORE_OK)
        return from_store(e);
    if (target != NULL && target[0] != '\0')
        names_release = strcmp(target, a.target_name) == 0;
    else if (version != NULL && version[0] != '\0')
        names_release = strcmp(version, a.version) == 0;
    if (!names_release)
        return FOTA_OK;

    if (rule->failure)
        report_reason(st, device_id, event, reason);
    else if (strcmp(event, "confirmed") == 0)
        snprintf(reason, sizeof(reason), "%s", REASON_CONFIRM_PENDING);
    else
        reason[0] = '\0';
    return member_transition(st, a.rollout_id, device_id, rule->next, rule->from_mask, reason,
                             rule->failure, rule->failure, now);
}

/* ---- creation ---------------------------------------------------------- */

struct member {
    char *id;
    uint8_t order[32];      /* SHA-256(rollout id || device id) */
};

struct group {
    struct member *m;
    size_t n, cap;
};

static void group_free(struct group *g)
{
    for (size_t i = 0; i < g->n; i++)
        free(g->m[i].id);
    free(g->m);
    memset(g, 0, sizeof(*g));
}

static fota_err group_add(struct group *g, const char *id)
{
    if (g->n >= FOTA_ROLLOUT_MAX_GROUP)
        return FOTA_E_TOO_BIG;
    if (g->n == g->cap) {
        size_t cap = g->cap == 0 ? 64 : g->cap * 2;
        struct member *m = realloc(g->m, cap * sizeof(*m));
        if (m == NULL)
            return FOTA_E_NOMEM;
        g->m = m;
        g->cap = cap;
    }
    g->m[g->n].id = strdup(id);
    if (g->m[g->n].id == NULL)
        return FOTA_E_NOMEM;
    g->n++;
    return FOTA_OK;
}

static int member_cmp(const void *a, const void *b)
{
    const struct member *x = a, *y = b;
    int c = memcmp(x->order, y->order, 32);
    return c != 0 ? c : strcmp(x->id, y->id);
}

/* Store members in device id order: the member table's keys start with
 * the device id, so the inserts append instead of landing on random pages
 * (a million random inserts into a database larger than the page cache
 * were I/O-bound). The wave is a column; the order changes nothing else. */
static int store_member_cmp(const void *a, const void *b)
{
    const struct fota_store_rollout_member *x = a, *y = b;
    return strcmp(x->device_id, y->device_id);
}

static int id_cmp(const void *a, const void *b)
{
    const struct member *x = a, *y = b;
    return strcmp(x->id, y->id);
}

/* Rollout ids sort by creation time (listing order) and carry 32 random
 * bits so that two created in the same second differ. */
static fota_err make_rollout_id(int64_t now, char out[FOTA_ROLLOUT_ID_MAX + 1])
{
    uint8_t rnd[4];
    char t[21], compact[17], hex[9];
    size_t j = 0;

    if (RAND_bytes(rnd, sizeof(rnd)) != 1)
        return FOTA_E_CRYPTO;
    fota_tuf_format_time(now, t); /* YYYY-MM-DDTHH:MM:SSZ */
    for (size_t i = 0; t[i] != '\0' && j < sizeof(compact) - 1; i++) {
        if (t[i] != '-' && t[i] != ':')
            compact[j++] = t[i];
    }
    compact[j] = '\0';
    fota_hex_encode(rnd, sizeof(rnd), hex);
    hex[8] = '\0';
    snprintf(out, FOTA_ROLLOUT_ID_MAX + 1, "r-%s-%s", compact, hex);
    return FOTA_OK;
}

/* A device the request names or the filter found: may it join? */
enum join { JOIN_YES, JOIN_SKIP_CURRENT, JOIN_NOT_ACCEPTED, JOIN_HARDWARE, JOIN_COUNTER };

static enum join device_join(const struct fota_store_device *d, const struct fota_store_release *rel)
{
    if (d->status != FOTA_STORE_DEVICE_ACCEPTED)
        return JOIN_NOT_ACCEPTED;
    if (!release_has_hwid(rel, d->hardware_id))
        return JOIN_HARDWARE;
    /* A device's stored counter is the highest it has confirmed; it refuses
     * any image below it, so a rollout that needs that is refused here. */
    if (rel->security_counter < d->stored_counter)
        return JOIN_COUNTER;
    if (strcmp(d->version, rel->version) == 0)
        return JOIN_SKIP_CURRENT;
    return JOIN_YES;
}

static int tags_contain(const char *tags_json, const char *tag)
{
    json_t *arr = NULL;
    size_t i;
    json_t *v;
    int found = 0;

    if (tags_json == NULL ||
        fota_json_parse((const uint8_t *)tags_json, strlen(tags_json), FOTA_STORE_JSON_MAX, 4,
                        &arr) != FOTA_OK)
        return 0;
    if (json_is_array(arr)) {
        json_array_foreach(arr, i, v) {
            if (json_is_string(v) && strcmp(json_string_value(v), tag) == 0)
                found = 1;
        }
    }
    json_decref(arr);
    return found;
}

static int valid_text(const json_t *v, size_t max)
{
    size_t len;
    const char *s;

    if (!json_is_string(v))
        return 0;
    s = json_string_value(v);
    len = json_string_length(v);
    if (len == 0 || len > max || strlen(s) != len)
        return 0;
    for (size_t i = 0; i < len; i++) {
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
            return 0;
    }
    return 1;
}

static fota_err group_from_list(struct fota_store *st, const json_t *list,
                                const struct fota_store_release *rel, struct group *g,
                                int64_t *skipped, char *errbuf, size_t errlen)
{
    struct fota_store_device d;
    size_t i;
    json_t *v;
    fota_err err = FOTA_OK;

    if (!json_is_array(list) || json_array_size(list) == 0) {
        set_err(errbuf, errlen, "group.devices must be a non-empty array of device ids");
        return FOTA_E_INVALID;
    }
    memset(&d, 0, sizeof(d));
    json_array_foreach(list, i, v) {
        enum fota_store_err e;
        if (!valid_text(v, FOTA_STORE_ID_MAX)) {
            set_err(errbuf, errlen, "group.devices[%zu] is not a device id", i);
            return FOTA_E_INVALID;
        }
        e = fota_store_device_get(st, json_string_value(v), &d);
        if (e == FOTA_STORE_NOT_FOUND || e == FOTA_STORE_INVALID) {
            set_err(errbuf, errlen, "unknown device %s", json_string_value(v));
            return FOTA_E_NOT_FOUND;
        }
        if (e != FOTA_STORE_OK) {
            set_err(errbuf, errlen, "store: %s", fota_store_strerror(e));
            return from_store(e);
        }
        switch (device_join(&d, rel)) {
        case JOIN_YES:
            err = group_add(g, d.id);
            break;
        case JOIN_SKIP_CURRENT:
            (*skipped)++;
            break;
        case JOIN_NOT_ACCEPTED:
            set_err(errbuf, errlen, "device %s is %s, not accepted", d.id,
                    fota_store_device_status_name(d.status));
            err = FOTA_E_STATE;
            break;
        case JOIN_HARDWARE:
            set_err(errbuf, errlen, "device %s has hardware id %s, which release %s is not built for",
                    d.id, d.hardware_id, rel->id);
            err = FOTA_E_HARDWARE;
            break;
        case JOIN_COUNTER:
            set_err(errbuf, errlen,
                    "release %s has security counter %lld, below the %lld device %s has confirmed",
                    rel->id, (long long)rel->security_counter, (long long)d.stored_counter, d.id);
            err = FOTA_E_ROLLBACK;
            break;
        }
        fota_store_device_clear(&d);
        if (err != FOTA_OK) {
            if (err == FOTA_E_NOMEM || err == FOTA_E_TOO_BIG)
                set_err(errbuf, errlen, "group too large");
            return err;
        }
    }
    /* A device listed twice would be refused by the store as a conflict;
     * say so plainly instead. */
    if (g->n > 1) {
        qsort(g->m, g->n, sizeof(g->m[0]), id_cmp);
        for (size_t k = 1; k < g->n; k++) {
            if (strcmp(g->m[k - 1].id, g->m[k].id) == 0) {
                set_err(errbuf, errlen, "device %s is listed twice", g->m[k].id);
                return FOTA_E_INVALID;
            }
        }
    }
    return FOTA_OK;
}

static fota_err group_from_filter(struct fota_store *st, const json_t *group,
                                  const struct fota_store_release *rel, struct group *g,
                                  int64_t *skipped, char *errbuf, size_t errlen)
{
    struct fota_store_device_filter f;
    const json_t *hw = json_object_get(group, "hardware_id");
    const json_t *ver = json_object_get(group, "version");
    const json_t *tags = json_object_get(group, "tags");
    const char *key;
    json_t *v;
    char after[FOTA_STORE_ID_MAX + 1] = "";
    int more = 1;

    json_object_foreach((json_t *)group, key, v) {
        if (strcmp(key, "hardware_id") != 0 && strcmp(key, "version") != 0 &&
            strcmp(key, "tags") != 0) {
            set_err(errbuf, errlen, "unknown group field \"%s\"", key);
            return FOTA_E_INVALID;
        }
    }
    memset(&f, 0, sizeof(f));
    f.status_mask = FOTA_STORE_DEVICE_BIT(FOTA_STORE_DEVICE_ACCEPTED);
    if (hw != NULL) {
        if (!valid_text(hw, FOTA_STORE_HWID_MAX)) {
            set_err(errbuf, errlen, "group.hardware_id must be a non-empty string");
            return FOTA_E_INVALID;
        }
        f.hardware_id = json_string_value(hw);
    }
    if (ver != NULL) {
        if (!valid_text(ver, FOTA_STORE_VERSION_MAX)) {
            set_err(errbuf, errlen, "group.version must be a non-empty string");
            return FOTA_E_INVALID;
        }
        f.version = json_string_value(ver);
    }
    if (tags != NULL) {
        size_t i;
        if (!json_is_array(tags) || json_array_size(tags) > FOTA_STORE_TAGS_MAX) {
            set_err(errbuf, errlen, "group.tags must be an array of at most %d tags",
                    FOTA_STORE_TAGS_MAX);
            return FOTA_E_INVALID;
        }
        json_array_foreach(tags, i, v) {
            if (!valid_text(v, FOTA_STORE_TAG_MAX)) {
                set_err(errbuf, errlen, "group.tags[%zu] is not a tag", i);
                return FOTA_E_INVALID;
            }
        }
        if (json_array_size(tags) > 0)
            f.tag = json_string_value(json_array_get(tags, 0));
    }

    while (more) {
        struct fota_store_device *items = NULL;
        size_t n = 0;
        fota_err err = FOTA_OK;
        enum fota_store_err e = fota_store_device_list(st, &f, after, FOTA_STORE_PAGE_MAX, &items,
                                                       &n, &more);
        if (e != FOTA_STORE_OK) {
            set_err(errbuf, errlen, "store: %s", fota_store_strerror(e));
            return from_store(e);
        }
        for (size_t k = 0; k < n && err == FOTA_OK; k++) {
            int all_tags = 1;
            for (size_t t = 1; tags != NULL && t < json_array_size(tags); t++) {
                if (!tags_contain(items[k].tags_json, json_string_value(json_array_get(tags, t))))
                    all_tags = 0;
            }
            if (!all_tags)
                continue;
            switch (device_join(&items[k], rel)) {
            case JOIN_YES:
                err = group_add(g, items[k].id);
                break;
            case JOIN_SKIP_CURRENT:
                (*skipped)++;
                break;
            case JOIN_COUNTER:
                set_err(errbuf, errlen,
                        "release %s has security counter %lld, below the %lld device %s has "
                        "confirmed",
                        rel->id, (long long)rel->security_counter,
                        (long long)items[k].stored_counter, items[k].id);
                err = FOTA_E_ROLLBACK;
                break;
            case JOIN_NOT_ACCEPTED:
            case JOIN_HARDWARE:
                break; /* a filter group only holds devices that can take it */
            }
        }
        if (n > 0)
            snprintf(after, sizeof(after), "%s", items[n - 1].id);
        fota_store_device_list_free(items, n);
        if (err != FOTA_OK) {
            if (err == FOTA_E_NOMEM || err == FOTA_E_TOO_BIG)
                set_err(errbuf, errlen, "group too large");
            return err;
        }
        if (n == 0)
            break;
    }
    return FOTA_OK;
}

static fota_err parse_share(const json_t *req, const char *key, double def, double *ret,
                            char *errbuf, size_t errlen)
{
    const json_t *v = json_object_get(req, key);
    double x;

    if (v == NULL) {
        *ret = def;
        return FOTA_OK;
    }
    if (!json_is_number(v)) {
        set_err(errbuf, errlen, "%s must be a number between 0 and 1", key);
        return FOTA_E_INVALID;
    }
    x = json_number_value(v);
    if (!(x >= 0.0 && x <= 1.0)) {
        set_err(errbuf, errlen, "%s must be a number between 0 and 1", key);
        return FOTA_E_INVALID;
    }
    *ret = x;
    return FOTA_OK;
}

static fota_err parse_waves(const json_t *req, struct fota_store_rollout *r, char *errbuf,
                            size_t errlen)
{
    const json_t *w = json_object_get(req, "waves");
    size_t i;
    json_t *v;
    int prev = 0;

    if (w == NULL) {
        r->wave_count = 1;
        r->waves[0] = 100;
        return FOTA_OK;
    }
    if (!json_is_array(w) || json_array_size(w) == 0 ||
        json_array_size(w) > FOTA_ROLLOUT_MAX_WAVES || json_array_size(w) > FOTA_STORE_WAVES_MAX) {
        set_err(errbuf, errlen, "waves must be an array of 1 to %d percentages",
                FOTA_ROLLOUT_MAX_WAVES);
        return FOTA_E_INVALID;
    }
    json_array_foreach(w, i, v) {
        json_int_t p;
        if (!json_is_integer(v)) {
            set_err(errbuf, errlen, "waves[%zu] must be an integer percentage", i);
            return FOTA_E_INVALID;
        }
        p = json_integer_value(v);
        if (p <= prev || p > 100) {
            set_err(errbuf, errlen, "waves must increase strictly within 1..100");
            return FOTA_E_INVALID;
        }
        r->waves[i] = (int)p;
        prev = (int)p;
    }
    if (prev != 100) {
        set_err(errbuf, errlen, "the last wave must be 100 (every member needs a wave)");
        return FOTA_E_INVALID;
    }
    r->wave_count = (int)json_array_size(w);
    return FOTA_OK;
}

fota_err fota_rollout_prepare(struct fota_store *st, const json_t *request, const char *actor,
                              int64_t now, char ret_id[FOTA_ROLLOUT_ID_MAX + 1],
                              char *errbuf, size_t errlen)
{
    struct fota_store_rollout r;
    struct fota_store_release rel;
    struct fota_store_rollout_member *members = NULL;
    struct group g;
    const json_t *rel_id, *group, *rollback, *devices;
    const char *key;
    json_t *v;
    int64_t skipped = 0;
    enum fota_store_err e;
    fota_err err;
    char id[FOTA_ROLLOUT_ID_MAX + 1];

    memset(&r, 0, sizeof(r));
    memset(&g, 0, sizeof(g));
    if (st == NULL || request == NULL || ret_id == NULL) {
        set_err(errbuf, errlen, "invalid arguments");
        return FOTA_E_INVALID;
    }
    if (!json_is_object(request)) {
        set_err(errbuf, errlen, "the body must be a JSON object");
        return FOTA_E_INVALID;
    }
    json_object_foreach((json_t *)request, key, v) {
        if (strcmp(key, "release") != 0 && strcmp(key, "group") != 0 &&
            strcmp(key, "waves") != 0 && strcmp(key, "success_threshold") != 0 &&
            strcmp(key, "failure_limit") != 0 && strcmp(key, "rollback") != 0) {
            set_err(errbuf, errlen, "unknown field \"%s\"", key);
            return FOTA_E_INVALID;
        }
    }
    rel_id = json_object_get(request, "release");
    if (!valid_text(rel_id, FOTA_STORE_ID_MAX)) {
        set_err(errbuf, errlen, "release must be a release id");
        return FOTA_E_INVALID;
    }
    group = json_object_get(request, "group");
    if (!json_is_object(group)) {
        set_err(errbuf, errlen, "group must be an object");
        return FOTA_E_INVALID;
    }
    err = parse_waves(request, &r, errbuf, errlen);
    if (err == FOTA_OK)
        err = parse_share(request, "success_threshold", 1.0, &r.success_threshold, errbuf, errlen);
    if (err == FOTA_OK)
        err = parse_share(request, "failure_limit", 0.0, &r.failure_limit, errbuf, errlen);
    if (err != FOTA_OK)
        return err;
    rollback = json_object_get(request, "rollback");
    if (rollback != NULL && !json_is_boolean(rollback)) {
        set_err(errbuf, errlen, "rollback must be true or false");
        return FOTA_E_INVALID;
    }
    r.rollback = json_is_true(rollback);

    e = fota_store_release_get(st, json_string_value(rel_id), &rel);
    if (e == FOTA_STORE_NOT_FOUND || e == FOTA_STORE_INVALID) {
        set_err(errbuf, errlen, "unknown release %s", json_string_value(rel_id));
        return FOTA_E_NOT_FOUND;
    }
    if (e != FOTA_STORE_OK) {
        set_err(errbuf, errlen, "store: %s", fota_store_strerror(e));
        return from_store(e);
    }

    devices = json_object_get(group, "devices");
    if (devices != NULL) {
        if (json_object_size(group) != 1) {
            set_err(errbuf, errlen, "group is either {\"devices\":[..]} or a filter, not both");
            return FOTA_E_INVALID;
        }
        err = group_from_list(st, devices, &rel, &g, &skipped, errbuf, errlen);
    } else {
        err = group_from_filter(st, group, &rel, &g, &skipped, errbuf, errlen);
    }
    if (err != FOTA_OK)
        goto out;
    if (g.n == 0) {
        set_err(errbuf, errlen,
                "no device in the group needs release %s (%lld already run version %s)", rel.id,
                (long long)skipped, rel.version);
        err = FOTA_E_STATE;
        goto out;
    }

    err = make_rollout_id(now, id);
    if (err != FOTA_OK) {
        set_err(errbuf, errlen, "no randomness for the rollout id");
        goto out;
    }
    /* Wave order: SHA-256(rollout id || device id). Each rollout shuffles
     * the fleet afresh, so the same devices are not always the canaries,
     * and every process computes the same order. */
    for (size_t i = 0; i < g.n; i++) {
        fota_sha256 h;
        fota_sha256_init(&h);
        fota_sha256_update(&h, id, strlen(id));
        fota_sha256_update(&h, g.m[i].id, strlen(g.m[i].id));
        fota_sha256_final(&h, g.m[i].order);
    }
    qsort(g.m, g.n, sizeof(g.m[0]), member_cmp);
    members = calloc(g.n, sizeof(*members));
    if (members == NULL) {
        set_err(errbuf, errlen, "out of memory");
        err = FOTA_E_NOMEM;
        goto out;
    }
    {
        int w = 0;
        for (size_t i = 0; i < g.n; i++) {
            while (w < r.wave_count - 1 && (int64_t)i >= wave_cover(r.waves[w], (int64_t)g.n))
                w++;
            members[i].device_id = g.m[i].id;
            members[i].wave = w;
        }
    }
    qsort(members, g.n, sizeof(members[0]), store_member_cmp);

    snprintf(r.id, sizeof(r.id), "%s", id);
    snprintf(r.release_id, sizeof(r.release_id), "%s", rel.id);
    r.state = FOTA_STORE_ROLLOUT_ACTIVE;
    r.current_wave = 0;
    snprintf(r.created_by, sizeof(r.created_by), "%s", actor != NULL ? actor : "");
    r.created = now;
    r.updated = now;
    r.group_json = json_dumps(group, JSON_COMPACT | JSON_SORT_KEYS);
    if (r.group_json == NULL) {
        set_err(errbuf, errlen, "out of memory");
        err = FOTA_E_NOMEM;
        goto out;
    }
    e = fota_store_rollout_create(st, &r, members, g.n);
    if (e != FOTA_STORE_OK) {
        set_err(errbuf, errlen, "store: %s", fota_store_strerror(e));
        err = from_store(e);
        goto out;
    }
    memcpy(ret_id, id, sizeof(id));
out:
    free(members);
    group_free(&g);
    fota_store_rollout_clear(&r);
    return err;
}

fota_err fota_rollout_create(struct fota_store *st, const json_t *request, const char *actor,
                             int64_t now, char ret_id[FOTA_ROLLOUT_ID_MAX + 1],
                             char *errbuf, size_t errlen)
{
    char id[FOTA_ROLLOUT_ID_MAX + 1];
    enum fota_store_err e;
    fota_err err;

    err = fota_rollout_prepare(st, request, actor, now, id, errbuf, errlen);
    if (err != FOTA_OK)
        return err;
    e = fota_store_rollout_reveal(st, id);
    if (e != FOTA_STORE_OK) {
        set_err(errbuf, errlen, "store: %s", fota_store_strerror(e));
        fota_store_rollout_discard(st, id);
        return from_store(e);
    }
    memcpy(ret_id, id, sizeof(id));
    return FOTA_OK;
}

fota_err fota_rollout_set_state(struct fota_store *st, const char *rollout_id,
                                const char *op, int64_t now)
{
    struct fota_store_rollout r;
    enum fota_store_rollout_state next;
    unsigned from;
    enum fota_store_err e;
    fota_err err;

    if (st == NULL || rollout_id == NULL || op == NULL)
        return FOTA_E_INVALID;
    if (strcmp(op, "pause") == 0) {
        next = FOTA_STORE_ROLLOUT_PAUSED;
        from = RO_BIT(ACTIVE);
    } else if (strcmp(op, "resume") == 0) {
        next = FOTA_STORE_ROLLOUT_ACTIVE;
        from = RO_BIT(PAUSED);
    } else if (strcmp(op, "abort") == 0) {
        next = FOTA_STORE_ROLLOUT_ABORTED;
        from = RO_BIT(ACTIVE) | RO_BIT(PAUSED);
    } else {
        return FOTA_E_INVALID;
    }
    memset(&r, 0, sizeof(r));
    e = fota_store_begin(st);
    if (e != FOTA_STORE_OK)
        return from_store(e);
    e = fota_store_rollout_set_state(st, rollout_id, next, from, now);
    if (e != FOTA_STORE_OK) {
        err = from_store(e);
        goto out;
    }
    /* A resumed rollout may already meet its threshold (members confirmed
     * while it was paused). Failures are not re-counted: resuming is the
     * operator's decision to carry on past them. */
    err = next == FOTA_STORE_ROLLOUT_ACTIVE ? rollout_evaluate(st, rollout_id, 0, now) : FOTA_OK;
out:
    if (err == FOTA_OK) {
        e = fota_store_commit(st);
        if (e != FOTA_STORE_OK) {
            fota_store_rollback(st);
            err = from_store(e);
        }
    } else {
        fota_store_rollback(st);
    }
    fota_store_rollout_clear(&r);
    return err;
}

/* ---- JSON views -------------------------------------------------------- */

static json_t *iso_time(int64_t t)
{
    char buf[21];

    if (t <= 0)
        return json_null();
    fota_tuf_format_time(t, buf);
    return json_string(buf);
}

/* The stored group text back as JSON (it was written by json_dumps). */
static json_t *group_value(const char *text)
{
    json_t *v = NULL;

    if (text == NULL ||
        fota_json_parse((const uint8_t *)text, strlen(text), FOTA_STORE_JSON_MAX, 16, &v) !=
            FOTA_OK)
        return json_object();
    return v;
}

static json_t *rollout_summary(const struct fota_store_rollout *r)
{
    json_t *o = json_object();
    json_t *waves = json_array();

    if (o == NULL || waves == NULL) {
        json_decref(o);
        json_decref(waves);
        return NULL;
    }
    for (int w = 0; w < r->wave_count && w < FOTA_STORE_WAVES_MAX; w++)
        json_array_append_new(waves, json_integer(r->waves[w]));
    json_object_set_new(o, "id", json_string(r->id));
    json_object_set_new(o, "release", json_string(r->release_id));
    json_object_set_new(o, "state", json_string(fota_store_rollout_state_name(r->state)));
    json_object_set_new(o, "current_wave", json_integer(r->current_wave));
    json_object_set_new(o, "waves", waves);
    json_object_set_new(o, "success_threshold", json_real(r->success_threshold));
    json_object_set_new(o, "failure_limit", json_real(r->failure_limit));
    json_object_set_new(o, "rollback", json_boolean(r->rollback));
    json_object_set_new(o, "device_count", json_integer(r->device_count));
    json_object_set_new(o, "group", group_value(r->group_json));
    json_object_set_new(o, "created_by", json_string(r->created_by));
    json_object_set_new(o, "created", iso_time(r->created));
    json_object_set_new(o, "updated", iso_time(r->updated));
    return o;
}

static json_t *status_counts(const int64_t n[FOTA_STORE_RD_STATUS_COUNT])
{
    json_t *o = json_object();

    if (o == NULL)
        return NULL;
    for (int s = 0; s < FOTA_STORE_RD_STATUS_COUNT; s++)
        json_object_set_new(o, fota_store_rd_status_name((enum fota_store_rd_status)s),
                            json_integer(n[s]));
    return o;
}

fota_err fota_rollout_get_json(struct fota_store *st, const char *rollout_id,
                               json_t **ret_json)
{
    struct fota_store_rollout r;
    struct fota_store_rollout_counts c;
    struct fota_store_release rel;
    enum fota_store_err e;
    json_t *o = NULL, *progress = NULL;
    int64_t totals[FOTA_STORE_RD_STATUS_COUNT] = {0};
    int64_t cum = 0, open = 0, ok = 0, bad = 0;
    fota_err err = FOTA_OK;

    if (st == NULL || rollout_id == NULL || ret_json == NULL)
        return FOTA_E_INVALID;
    memset(&r, 0, sizeof(r));
    e = fota_store_rollout_get(st, rollout_id, &r);
    if (e == FOTA_STORE_INVALID)
        e = FOTA_STORE_NOT_FOUND;
    if (e != FOTA_STORE_OK)
        return from_store(e);
    e = fota_store_rollout_counts(st, rollout_id, &c);
    if (e != FOTA_STORE_OK) {
        err = from_store(e);
        goto out;
    }
    o = rollout_summary(&r);
    progress = json_array();
    if (o == NULL || progress == NULL) {
        err = FOTA_E_NOMEM;
        goto out;
    }
    if (fota_store_release_get(st, r.release_id, &rel) == FOTA_STORE_OK) {
        json_object_set_new(o, "target", json_string(rel.target_name));
        json_object_set_new(o, "version", json_string(rel.version));
        json_object_set_new(o, "security_counter", json_integer(rel.security_counter));
    }
    for (int w = 0; w < r.wave_count && w < FOTA_STORE_WAVES_MAX; w++) {
        json_t *wj = json_object();
        int64_t all = 0;
        if (wj == NULL) {
            err = FOTA_E_NOMEM;
            goto out;
        }
        for (int s = 0; s < FOTA_STORE_RD_STATUS_COUNT; s++) {
            all += c.n[w][s];
            totals[s] += c.n[w][s];
        }
        cum += all;
        if (w <= r.current_wave) {
            open += all;
            ok += c.n[w][FOTA_STORE_RD_CONFIRMED];
            bad += c.n[w][FOTA_STORE_RD_ROLLED_BACK] + c.n[w][FOTA_STORE_RD_FAILED];
        }
        json_object_set_new(wj, "wave", json_integer(w));
        json_object_set_new(wj, "percent", json_integer(r.waves[w]));
        json_object_set_new(wj, "devices", json_integer(all));
        json_object_set_new(wj, "covered", json_integer(cum));
        json_object_set_new(wj, "open", json_boolean(w <= r.current_wave));
        json_object_set_new(wj, "counts", status_counts(c.n[w]));
        json_array_append_new(progress, wj);
    }
    json_object_set_new(o, "progress", progress);
    progress = NULL;
    json_object_set_new(o, "totals", status_counts(totals));
    json_object_set_new(o, "open_devices", json_integer(open));
    json_object_set_new(o, "success_share", json_real(open > 0 ? (double)ok / (double)open : 0.0));
    json_object_set_new(o, "failure_share",
                        json_real(open > 0 ? (double)bad / (double)open : 0.0));
    *ret_json = o;
    o = NULL;
out:
    json_decref(o);
    json_decref(progress);
    fota_store_rollout_clear(&r);
    return err;
}

fota_err fota_rollout_list_json(struct fota_store *st, const char *state,
                                const char *after, unsigned limit, json_t **ret_json)
{
    struct fota_store_rollout *items = NULL;
    enum fota_store_rollout_state s;
    size_t n = 0;
    int more = 0;
    unsigned mask = 0;
    enum fota_store_err e;
    json_t *o = NULL, *arr = NULL;
    fota_err err = FOTA_OK;

    if (st == NULL || ret_json == NULL || limit == 0 || limit > FOTA_STORE_PAGE_MAX)
        return FOTA_E_INVALID;
    if (state != NULL) {
        if (fota_store_rollout_state_parse(state, &s) != FOTA_STORE_OK)
            return FOTA_E_INVALID;
        mask = FOTA_STORE_ROLLOUT_BIT(s);
    }
    e = fota_store_rollout_list(st, mask, after, limit, &items, &n, &more);
    if (e != FOTA_STORE_OK)
        return from_store(e);
    o = json_object();
    arr = json_array();
    if (o == NULL || arr == NULL) {
        err = FOTA_E_NOMEM;
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        json_t *one = rollout_summary(&items[i]);
        if (one == NULL || json_array_append_new(arr, one) != 0) {
            err = FOTA_E_NOMEM;
            goto out;
        }
    }
    json_object_set_new(o, "rollouts", arr);
    arr = NULL;
    json_object_set_new(o, "next", more && n > 0 ? json_string(items[n - 1].id) : json_null());
    *ret_json = o;
    o = NULL;
out:
    json_decref(o);
    json_decref(arr);
    fota_store_rollout_list_free(items, n);
    return err;
}

fota_err fota_rollout_devices_json(struct fota_store *st, const char *rollout_id,
                                   const char *status, const char *after, unsigned limit,
                                   json_t **ret_json)
{
    struct fota_store_rollout r;
    struct fota_store_rollout_device *items = NULL;
    enum fota_store_rd_status s;
    size_t n = 0;
    int more = 0;
    unsigned mask = 0;
    enum fota_store_err e;
    json_t *o = NULL, *arr = NULL;
    fota_err err = FOTA_OK;

    if (st == NULL || rollout_id == NULL || ret_json == NULL || limit == 0 ||
        limit > FOTA_STORE_PAGE_MAX)
        return FOTA_E_INVALID;
    if (status != NULL) {
        if (fota_store_rd_status_parse(status, &s) != FOTA_STORE_OK)
            return FOTA_E_INVALID;
        mask = FOTA_STORE_RD_BIT(s);
    }
    memset(&r, 0, sizeof(r));
    e = fota_store_rollout_get(st, rollout_id, &r);
    fota_store_rollout_clear(&r);
    if (e == FOTA_STORE_INVALID)
        e = FOTA_STORE_NOT_FOUND;
    if (e != FOTA_STORE_OK)
        return from_store(e);
    e = fota_store_rollout_device_list(st, rollout_id, mask, after, limit, &items, &n, &more);
    if (e != FOTA_STORE_OK)
        return from_store(e);
    o = json_object();
    arr = json_array();
    if (o == NULL || arr == NULL) {
        err = FOTA_E_NOMEM;
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        json_t *one = json_object();
        if (one == NULL || json_array_append_new(arr, one) != 0) {
            err = FOTA_E_NOMEM;
            goto out;
        }
        json_object_set_new(one, "device", json_string(items[i].device_id));
        json_object_set_new(one, "wave", json_integer(items[i].wave));
        json_object_set_new(one, "status", json_string(fota_store_rd_status_name(items[i].status)));
        json_object_set_new(one, "reason", json_string(items[i].reason));
        json_object_set_new(one, "updated", iso_time(items[i].updated));
    }
    json_object_set_new(o, "devices", arr);
    arr = NULL;
    json_object_set_new(o, "next",
                        more && n > 0 ? json_string(items[n - 1].device_id) : json_null());
    *ret_json = o;
    o = NULL;
out:
    json_decref(o);
    json_decref(arr);
    free(items);
    return err;
}
