/* SPDX-License-Identifier: Apache-2.0 */
#include "api.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "devices.h"
#include "fota/crypto.h"
#include "fota/json.h"
#include "fota/tuf.h"
#include "log.h"
#include "rollout.h"
#include "server.h"
#include "store.h"
#include "store_audit.h"
#include "store_devices.h"
#include "store_rollouts.h"
#include "store_tokens.h"

#define API_PREFIX "/api/v1/"
#define API_SEGMENTS_MAX 4
#define API_TOKEN_MAX 512            /* longer bearer values are not ours */
#define API_REASON_MAX 256           /* operator's free-text reason */
#define API_LIMIT_DEFAULT 100
#define API_HISTORY_DEFAULT 50
#define API_TAGS_PER_CALL 64

/* ---- small helpers ------------------------------------------------------ */

static void bad_request(struct fota_resp *resp, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void bad_request(struct fota_resp *resp, const char *fmt, ...)
{
    char msg[400];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    fota_resp_error(resp, 400, "bad_request", "%s", msg);
}

static void not_found(struct fota_resp *resp, const char *what)
{
    fota_resp_error(resp, 404, "not_found", "no such %s", what);
}

static void method_not_allowed(struct fota_resp *resp, const char *allow)
{
    fota_resp_error(resp, 405, "method_not_allowed", "allowed: %s", allow);
    snprintf(resp->extra_header[0], sizeof(resp->extra_header[0]), "Allow: %s", allow);
}

/* A rollout-module error as an HTTP answer. */
static void rollout_failure(struct fota_resp *resp, fota_err err, const char *msg)
{
    const char *m = msg != NULL && msg[0] != '\0' ? msg : fota_strerror(err);

    switch (err) {
    case FOTA_E_INVALID:
    case FOTA_E_PARSE:
    case FOTA_E_TOO_BIG:
        fota_resp_error(resp, 400, "bad_request", "%s", m);
        break;
    case FOTA_E_NOT_FOUND:
        fota_resp_error(resp, 404, "not_found", "%s", m);
        break;
    case FOTA_E_ROLLBACK:
        fota_resp_error(resp, 409, "rollback_refused", "%s", m);
        break;
    case FOTA_E_HARDWARE:
        fota_resp_error(resp, 409, "hardware_mismatch", "%s", m);
        break;
    case FOTA_E_STATE:
        fota_resp_error(resp, 409, "conflict", "%s", m);
        break;
    default:
        fota_resp_error(resp, 500, "internal", "%s", m);
        break;
    }
}

static int is_get(const struct fota_req *req)
{
    return strcmp(req->method, "GET") == 0 || strcmp(req->method, "HEAD") == 0;
}

static int is_post(const struct fota_req *req)
{
    return strcmp(req->method, "POST") == 0;
}

/* Path ids (device ids, rollout ids) are used exactly as received; only a
 * plain id alphabet names anything, so no decoding question arises. */
static int valid_id(const char *s)
{
    size_t n = strlen(s);

    if (n == 0 || n > FOTA_STORE_ID_MAX)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_' || c == '.'))
            return 0;
    }
    return 1;
}

/* Tags: short words an operator filters by, also in query strings. */
static int valid_tag(const char *s, size_t len)
{
    if (len == 0 || len > FOTA_STORE_TAG_MAX || strlen(s) != len)
        return 0;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_' || c == '.' || c == ':' || c == '=' || c == '/'))
            return 0;
    }
    return 1;
}

/* Query "limit": 1..FOTA_STORE_PAGE_MAX, default def. */
static int query_limit(const struct fota_req *req, struct fota_resp *resp, const char *key,
                       unsigned def, unsigned *ret)
{
    const char *s = fota_req_query(req, key);
    char *end = NULL;
    long v;

    if (s == NULL) {
        *ret = def;
        return 1;
    }
    errno = 0;
    v = strtol(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v < 1 || v > FOTA_STORE_PAGE_MAX) {
        bad_request(resp, "%s must be an integer from 1 to %d", key, FOTA_STORE_PAGE_MAX);
        return 0;
    }
    *ret = (unsigned)v;
    return 1;
}

/* An optional query string value capped at max bytes. */
static int query_text(const struct fota_req *req, struct fota_resp *resp, const char *key,
                      size_t max, const char **ret)
{
    const char *s = fota_req_query(req, key);

    *ret = NULL;
    if (s == NULL || s[0] == '\0')
        return 1;
    if (strlen(s) > max) {
        bad_request(resp, "%s is longer than %zu bytes", key, max);
        return 0;
    }
    *ret = s;
    return 1;
}

static json_t *iso_time(int64_t t)
{
    char buf[21];

    if (t <= 0)
        return json_null();
    fota_tuf_format_time(t, buf);
    return json_string(buf);
}

/* Stored JSON text (written by the server itself) back as a value. */
static json_t *stored_json(const char *text)
{
    json_t *v = NULL;

    if (text == NULL ||
        fota_json_parse((const uint8_t *)text, strlen(text), FOTA_STORE_JSON_MAX, 16, &v) !=
            FOTA_OK)
        return json_null();
    return v;
}

static int device_fresh(const struct fota_req *req, int64_t last_fresh, int64_t now)
{
    return fota_device_is_fresh(last_fresh, now, req->srv);
}

static json_t *device_json(const struct fota_req *req, const struct fota_store_device *d,
                           int64_t now)
{
    json_t *o = json_object();

    if (o == NULL)
        return NULL;
    json_object_set_new(o, "id", json_string(d->id));
    json_object_set_new(o, "status", json_string(fota_store_device_status_name(d->status)));
    json_object_set_new(o, "hardware_id", json_string(d->hardware_id));
    json_object_set_new(o, "version", json_string(d->version));
    json_object_set_new(o, "security_counter", json_integer(d->security_counter));
    json_object_set_new(o, "stored_counter", json_integer(d->stored_counter));
    json_object_set_new(o, "tags", d->tags_json != NULL ? stored_json(d->tags_json) : json_array());
    json_object_set_new(o, "slots", d->slots_json != NULL ? stored_json(d->slots_json) : json_array());
    json_object_set_new(o, "created", iso_time(d->created));
    json_object_set_new(o, "updated", iso_time(d->updated));
    json_object_set_new(o, "last_seen", iso_time(d->last_seen));
    json_object_set_new(o, "last_fresh", iso_time(d->last_fresh));
    json_object_set_new(o, "fresh", json_boolean(device_fresh(req, d->last_fresh, now)));
    if (d->key_json != NULL)
        json_object_set_new(o, "key", stored_json(d->key_json));
    return o;
}

enum fota_store_err fota_api_audit(struct fota_store *st, const char *actor, const char *action,
                                   const char *object, json_t *detail, int64_t now)
{
    struct fota_store_audit a;
    enum fota_store_err e = FOTA_STORE_ERROR;

    memset(&a, 0, sizeof(a));
    a.time = now;
    snprintf(a.actor, sizeof(a.actor), "%s", actor);
    snprintf(a.action, sizeof(a.action), "%s", action);
    snprintf(a.object, sizeof(a.object), "%s", object);
    if (detail != NULL) {
        a.detail_json = json_dumps(detail, JSON_COMPACT | JSON_SORT_KEYS);
        json_decref(detail);
        if (a.detail_json == NULL)
            goto out;
    }
    if (st != NULL)
        e = fota_store_audit_append(st, &a, NULL);
out:
    if (e != FOTA_STORE_OK)
        fota_log(FOTA_LOG_WARN, "audit", "action=%s object=%.200s error=%s", action, object,
                 fota_store_strerror(e));
    free(a.detail_json);
    return e;
}

/*
 * An optional small body {"reason":".."} on an action POST. 1 with
 * *ret_reason (NULL when absent; borrowed from *ret_body, which the caller
 * decrefs), 0 with resp set.
 */
static int optional_reason(struct fota_req *req, struct fota_resp *resp, json_t **ret_body,
                           const char **ret_reason)
{
    json_t *body, *r;
    const char *key;
    json_t *v;

    *ret_body = NULL;
    *ret_reason = NULL;
    if (req->body == NULL || req->body_len == 0)
        return 1;
    body = fota_req_json(req, resp);
    if (body == NULL)
        return 0;
    if (!json_is_object(body)) {
        json_decref(body);
        bad_request(resp, "the body must be a JSON object");
        return 0;
    }
    json_object_foreach(body, key, v) {
        if (strcmp(key, "reason") != 0) {
            bad_request(resp, "unknown field \"%s\"", key);
            json_decref(body);
            return 0;
        }
    }
    r = json_object_get(body, "reason");
    if (r != NULL && (!json_is_string(r) || json_string_length(r) > API_REASON_MAX ||
                      strlen(json_string_value(r)) != json_string_length(r))) {
        json_decref(body);
        bad_request(resp, "reason must be a string of at most %d bytes", API_REASON_MAX);
        return 0;
    }
    *ret_body = body;
    *ret_reason = r != NULL ? json_string_value(r) : NULL;
    return 1;
}

/* ---- authentication ----------------------------------------------------- */

static void unauthorized(struct fota_resp *resp, const char *code, const char *msg)
{
    fota_resp_error(resp, 401, code, "%s", msg);
    snprintf(resp->extra_header[0], sizeof(resp->extra_header[0]),
             "WWW-Authenticate: Bearer realm=\"fota\"");
}

/*
 * Starts from failure: `granted` is set only after every check passed.
 * The stored row is found by the token's SHA-256 (an index lookup); the
 * hashes are then compared again in constant time, so the comparison that
 * decides does not leak how much of a guess matched.
 */
static int api_auth(struct fota_req *req, struct fota_resp *resp, const char *required_scope,
                    char ret_actor[FOTA_STORE_NAME_MAX + 1])
{
    struct fota_store_token tok;
    enum fota_store_scope need;
    struct fota_store *st;
    enum fota_store_err e;
    const char *bearer;
    fota_sha256 h;
    uint8_t digest[32];
    char hex[FOTA_STORE_SHA256_HEX + 1];
    size_t len;
    int64_t now;
    int granted = 0;

    if (fota_store_scope_parse(required_scope, &need) != FOTA_STORE_OK) {
        fota_resp_error(resp, 500, "internal", "bad scope");
        return -1;
    }
    bearer = fota_req_bearer(req);
    if (bearer == NULL) {
        unauthorized(resp, "unauthorized", "an operator token is required (Authorization: Bearer)");
        return -1;
    }
    len = strnlen(bearer, API_TOKEN_MAX + 1);
    if (len > API_TOKEN_MAX) {
        unauthorized(resp, "invalid_token", "the token is not valid");
        return -1;
    }
    fota_sha256_init(&h);
    fota_sha256_update(&h, bearer, len);
    fota_sha256_final(&h, digest);
    fota_hex_encode(digest, sizeof(digest), hex);
    hex[FOTA_STORE_SHA256_HEX] = '\0';
    st = fota_req_store(req);
    if (st == NULL) {
        fota_resp_store_error(resp, FOTA_STORE_ERROR);
        return -1;
    }
    memset(&tok, 0, sizeof(tok));
    e = fota_store_token_lookup(st, hex, &tok);
    if (e == FOTA_STORE_NOT_FOUND) {
        unauthorized(resp, "invalid_token", "the token is not valid");
        return -1;
    }
    if (e != FOTA_STORE_OK) {
        fota_resp_store_error(resp, e);
        return -1;
    }
    now = fota_server_now();
    if (fota_ct_equal(tok.sha256, hex, FOTA_STORE_SHA256_HEX) != 1) {
        unauthorized(resp, "invalid_token", "the token is not valid");
        return -1;
    }
    if (tok.revoked != 0) {
        unauthorized(resp, "invalid_token", "the token was revoked");
        return -1;
    }
    if (tok.expires != 0 && tok.expires <= now) {
        unauthorized(resp, "invalid_token", "the token has expired");
        return -1;
    }
    if ((int)tok.scope < (int)need) {
        fota_resp_error(resp, 403, "forbidden", "this needs a token with scope %s (this one has %s)",
                        required_scope, fota_store_scope_name(tok.scope));
        return -1;
    }
    granted = 1;
    snprintf(ret_actor, FOTA_STORE_NAME_MAX + 1, "%s", tok.name);
    snprintf(resp->log_detail, sizeof(resp->log_detail), "actor=%s", tok.name);
    fota_wipe(digest, sizeof(digest));
    return granted == 1 ? 0 : -1;
}

int fota_api_auth(struct fota_req *req, struct fota_resp *resp, const char *required_scope,
                  char ret_actor[FOTA_STORE_NAME_MAX + 1])
{
    char actor[FOTA_STORE_NAME_MAX + 1];

    if (api_auth(req, resp, required_scope, actor) != 0)
        return -1;
    snprintf(ret_actor, FOTA_STORE_NAME_MAX + 1, "%s", actor);
    return 0;
}

/* ---- devices ------------------------------------------------------------ */

static int parse_status_mask(const char *s, unsigned *ret)
{
    unsigned mask = 0;
    const char *p = s;

    /* "a,b,c": every item a status name; an empty item is an error. */
    for (;;) {
        enum fota_store_device_status st;
        char name[32];
        size_t n = strcspn(p, ",");

        if (n == 0 || n >= sizeof(name))
            return 0;
        memcpy(name, p, n);
        name[n] = '\0';
        if (fota_store_device_status_parse(name, &st) != FOTA_STORE_OK)
            return 0;
        mask |= FOTA_STORE_DEVICE_BIT(st);
        if (p[n] == '\0')
            break;
        p += n + 1;
    }
    *ret = mask;
    return 1;
}

static void devices_list(struct fota_req *req, struct fota_resp *resp)
{
    struct fota_store_device_filter f;
    struct fota_store_device *items = NULL;
    const char *status, *fresh, *after;
    size_t n = 0;
    int more = 0;
    unsigned limit;
    int64_t now = fota_server_now();
    enum fota_store_err e;
    json_t *arr = NULL;

    memset(&f, 0, sizeof(f));
    if (!query_text(req, resp, "status", 100, &status) ||
        !query_text(req, resp, "hardware_id", FOTA_STORE_HWID_MAX, &f.hardware_id) ||
        !query_text(req, resp, "version", FOTA_STORE_VERSION_MAX, &f.version) ||
        !query_text(req, resp, "tag", FOTA_STORE_TAG_MAX, &f.tag) ||
        !query_text(req, resp, "fresh", 8, &fresh) ||
        !query_text(req, resp, "after", FOTA_STORE_ID_MAX, &after) ||
        !query_limit(req, resp, "limit", API_LIMIT_DEFAULT, &limit))
        return;
    if (status != NULL && !parse_status_mask(status, &f.status_mask)) {
        bad_request(resp, "status must be a comma-separated list of pending, accepted, rejected, "
                          "decommissioned");
        return;
    }
    if (fresh != NULL) {
        /* Same rule as fota_device_is_fresh: fresh = checked in within
         * freshness_max_age (and at least once). */
        int64_t edge = now - req->srv->cfg.freshness_max_age_s;
        if (strcmp(fresh, "true") == 0 || strcmp(fresh, "1") == 0) {
            f.fresh_since = edge > 0 ? edge : 1;
        } else if (strcmp(fresh, "false") == 0 || strcmp(fresh, "0") == 0) {
            f.fresh_before = edge > 0 ? edge : 1;
        } else {
            bad_request(resp, "fresh must be true or false");
            return;
        }
    }
    e = fota_store_device_list(fota_req_store(req), &f, after, limit, &items, &n, &more);
    if (e == FOTA_STORE_INVALID) {
        bad_request(resp, "bad filter");
        return;
    }
    if (e != FOTA_STORE_OK) {
        fota_resp_store_error(resp, e);
        return;
    }
    arr = json_array();
    for (size_t i = 0; arr != NULL && i < n; i++) {
        json_t *one = device_json(req, &items[i], now);
        if (one == NULL || json_array_append_new(arr, one) != 0) {
            json_decref(arr);
            arr = NULL;
        }
    }
    if (arr == NULL) {
        fota_resp_error(resp, 500, "internal", "out of memory");
    } else {
        fota_resp_json(resp, 200,
                       json_pack("{s:o,s:o}", "devices", arr, "next",
                                 more && n > 0 ? json_string(items[n - 1].id) : json_null()));
    }
    fota_store_device_list_free(items, n);
}

static json_t *history_json(const struct fota_store_history *h)
{
    json_t *o = json_object();

    if (o == NULL)
        return NULL;
    json_object_set_new(o, "id", json_integer(h->id));
    json_object_set_new(o, "time", iso_time(h->time));
    json_object_set_new(o, "event", json_string(h->event));
    json_object_set_new(o, "target", h->target[0] != '\0' ? json_string(h->target) : json_null());
    json_object_set_new(o, "version",
                        h->version[0] != '\0' ? json_string(h->version) : json_null());
    json_object_set_new(o, "reason", h->reason[0] != '\0' ? json_string(h->reason) : json_null());
    json_object_set_new(o, "detail", h->detail != NULL ? json_string(h->detail) : json_null());
    return o;
}

/* The device's newest rollout (any state), or null. */
static json_t *device_rollout_json(struct fota_store *st, const char *id)
{
    struct fota_store_assignment a;
    unsigned all = FOTA_STORE_ROLLOUT_BIT(FOTA_STORE_ROLLOUT_ACTIVE) |
                   FOTA_STORE_ROLLOUT_BIT(FOTA_STORE_ROLLOUT_PAUSED) |
                   FOTA_STORE_ROLLOUT_BIT(FOTA_STORE_ROLLOUT_ABORTED) |
                   FOTA_STORE_ROLLOUT_BIT(FOTA_STORE_ROLLOUT_COMPLETED);

    if (fota_store_rollout_assignment(st, id, all, &a) != FOTA_STORE_OK)
        return json_null();
    return json_pack("{s:s,s:s,s:s,s:i,s:s,s:s}", "id", a.rollout_id, "state",
                     fota_store_rollout_state_name(a.state), "release", a.release_id, "wave",
                     a.wave, "status", fota_store_rd_status_name(a.status), "version", a.version);
}

static void device_get(struct fota_req *req, struct fota_resp *resp, const char *id)
{
    struct fota_store *st = fota_req_store(req);
    struct fota_store_device d;
    struct fota_store_history *h = NULL;
    size_t n = 0;
    int more = 0;
    unsigned limit;
    const char *before_s;
    int64_t before = 0;
    int64_t now = fota_server_now();
    enum fota_store_err e;
    json_t *o = NULL, *hist = NULL;

    memset(&d, 0, sizeof(d));
    if (!query_limit(req, resp, "history_limit", API_HISTORY_DEFAULT, &limit) ||
        !query_text(req, resp, "history_before", 20, &before_s))
        return;
    if (before_s != NULL) {
        char *end = NULL;
        long long v;
        errno = 0;
        v = strtoll(before_s, &end, 10);
        if (errno != 0 || end == before_s || *end != '\0' || v < 0) {
            bad_request(resp, "history_before must be a history entry id");
            return;
        }
        before = (int64_t)v;
    }
    if (st == NULL) {
        fota_resp_store_error(resp, FOTA_STORE_ERROR);
        return;
    }
    e = fota_store_device_get(st, id, &d);
    if (e == FOTA_STORE_NOT_FOUND || e == FOTA_STORE_INVALID) {
        not_found(resp, "device");
        return;
    }
    if (e != FOTA_STORE_OK) {
        fota_resp_store_error(resp, e);
        return;
    }
    e = fota_store_device_history_list(st, id, before, limit, &h, &n, &more);
    if (e != FOTA_STORE_OK) {
        fota_store_device_clear(&d);
        fota_resp_store_error(resp, e);
        return;
    }
    o = device_json(req, &d, now);
    hist = json_array();
    for (size_t i = 0; o != NULL && hist != NULL && i < n; i++) {
        json_t *one = history_json(&h[i]);
        if (one == NULL || json_array_append_new(hist, one) != 0) {
            json_decref(o);
            o = NULL;
        }
    }
    if (o == NULL || hist == NULL) {
        json_decref(o);
        json_decref(hist);
        fota_resp_error(resp, 500, "internal", "out of memory");
    } else {
        json_object_set_new(o, "history", hist);
        json_object_set_new(o, "history_next", more && n > 0 ? json_integer(h[n - 1].id)
                                                             : json_null());
        json_object_set_new(o, "rollout", device_rollout_json(st, id));
        fota_resp_json(resp, 200, o);
    }
    fota_store_history_list_free(h, n);
    fota_store_device_clear(&d);
}

/* Answer with the device as it is now (after a change). */
static void device_answer(struct fota_req *req, struct fota_resp *resp, struct fota_store *st,
                          const char *id)
{
    struct fota_store_device d;
    enum fota_store_err e;

    memset(&d, 0, sizeof(d));
    e = fota_store_device_get(st, id, &d);
    if (e != FOTA_STORE_OK) {
        fota_resp_store_error(resp, e);
        return;
    }
    fota_resp_json(resp, 200, device_json(req, &d, fota_server_now()));
    fota_store_device_clear(&d);
}

struct device_action {
    const char *name;
    const char *scope;
    enum fota_store_device_status next;
    unsigned from_mask;
};

#define DEV_BIT(s) FOTA_STORE_DEVICE_BIT(FOTA_STORE_DEVICE_##s)

static const struct device_action device_actions[] = {
    {"accept", "deploy", FOTA_STORE_DEVICE_ACCEPTED, DEV_BIT(PENDING) | DEV_BIT(REJECTED)},
    {"reject", "deploy", FOTA_STORE_DEVICE_REJECTED, DEV_BIT(PENDING) | DEV_BIT(ACCEPTED)},
    /* Decommissioned is final: the device's key is never accepted again. */
    {"decommission", "admin", FOTA_STORE_DEVICE_DECOMMISSIONED,
     DEV_BIT(PENDING) | DEV_BIT(ACCEPTED) | DEV_BIT(REJECTED)},
};

static void device_status_change(struct fota_req *req, struct fota_resp *resp, const char *id,
                                 const struct device_action *act, const char *actor)
{
    struct fota_store *st = NULL;
    struct fota_store_device d;
    json_t *body = NULL, *detail;
    const char *reason = NULL;
    int64_t now = fota_server_now();
    enum fota_store_err e;
    int in_tx = 0;
    char object[FOTA_STORE_OBJECT_MAX + 1];
    char action[FOTA_STORE_EVENT_MAX + 1];

    memset(&d, 0, sizeof(d));
    if (!optional_reason(req, resp, &body, &reason))
        return;
    if (fota_req_begin(req, resp, &st) != 0)
        goto out;
    in_tx = 1;
    e = fota_store_device_get(st, id, &d);
    if (e == FOTA_STORE_NOT_FOUND || e == FOTA_STORE_INVALID) {
        not_found(resp, "device");
        goto out;
    }
    if (e != FOTA_STORE_OK) {
        fota_resp_store_error(resp, e);
        goto out;
    }
    if (d.status == act->next) {
        /* Already there: nothing changes, nothing is logged. */
        fota_resp_json(resp, 200, device_json(req, &d, now));
        goto out;
    }
    e = fota_store_device_set_status(st, id, act->next, act->from_mask, now);
    if (e == FOTA_STORE_CONFLICT) {
        fota_resp_error(resp, 409, "conflict", "a %s device cannot be %s",
                        fota_store_device_status_name(d.status),
                        fota_store_device_status_name(act->next));
        goto out;
    }
    if (e != FOTA_STORE_OK) {
        fota_resp_store_error(resp, e);
        goto out;
    }
    detail = json_pack("{s:s,s:s}", "from", fota_store_device_status_name(d.status), "to",
                       fota_store_device_status_name(act->next));
    if (detail != NULL && reason != NULL)
        json_object_set_new(detail, "reason", json_string(reason));
    snprintf(object, sizeof(object), "device/%s", id);
    snprintf(action, sizeof(action), "device.%s", act->name);
    e = fota_api_audit(st, actor, action, object, detail, now);
    if (fota_req_commit(st, e, resp) != 0)
        goto out;
    in_tx = 0;
    device_answer(req, resp, st, id);
out:
    if (in_tx)
        fota_store_rollback(st);
    fota_store_device_clear(&d);
    json_decref(body);
}

/* {"add":[..],"remove":[..]}: the tag list of one side, validated. */
static int tag_list(struct fota_resp *resp, const json_t *body, const char *key,
                    const char *out[API_TAGS_PER_CALL], size_t *ret_n)
{
    const json_t *arr = json_object_get(body, key);
    size_t i;
    json_t *v;

    *ret_n = 0;
    if (arr == NULL)
        return 1;
    if (!json_is_array(arr) || json_array_size(arr) > API_TAGS_PER_CALL) {
        bad_request(resp, "%s must be an array of at most %d tags", key, API_TAGS_PER_CALL);
        return 0;
    }
    json_array_foreach(arr, i, v) {
        if (!json_is_string(v) || !valid_tag(json_string_value(v), json_string_length(v))) {
            bad_request(resp, "%s[%zu] is not a tag (1 to %d of A-Z a-z 0-9 - _ . : = /)", key,
                        i, FOTA_STORE_TAG_MAX);
            return 0;
        }
        out[i] = json_string_value(v);
    }
    *ret_n = json_array_size(arr);
    return 1;
}

static void device_tags(struct fota_req *req, struct fota_resp *resp, const char *id,
                        const char *actor)
{
    struct fota_store *st = NULL;
    const char *add[API_TAGS_PER_CALL], *rem[API_TAGS_PER_CALL];
    size_t n_add = 0, n_rem = 0;
    json_t *body = NULL, *detail;
    const char *key;
    json_t *v;
    int64_t now = fota_server_now();
    enum fota_store_err e;
    int in_tx = 0;
    char object[FOTA_STORE_OBJECT_MAX + 1];

    body = fota_req_json(req, resp);
    if (body == NULL)
        return;
    if (!json_is_object(body)) {
        bad_request(resp, "the body must be a JSON object");
        goto out;
    }
    json_object_foreach(body, key, v) {
        if (strcmp(key, "add") != 0 && strcmp(key, "remove") != 0) {
            bad_request(resp, "unknown field \"%s\"", key);
            goto out;
        }
    }
    if (!tag_list(resp, body, "add", add, &n_add) || !tag_list(resp, body, "remove", rem, &n_rem))
        goto out;
    if (fota_req_begin(req, resp, &st) != 0)
        goto out;
    in_tx = 1;
    e = fota_store_device_tags(st, id, add, n_add, rem, n_rem);
    if (e == FOTA_STORE_NOT_FOUND) {
        not_found(resp, "device");
        goto out;
    }
    if (e == FOTA_STORE_INVALID) {
        bad_request(resp, "a device carries at most %d tags", FOTA_STORE_TAGS_MAX);
        goto out;
    }
    if (e != FOTA_STORE_OK) {
        fota_resp_store_error(resp, e);
        goto out;
    }
    detail = json_object();
    if (detail != NULL) {
        json_t *a = json_object_get(body, "add"), *r = json_object_get(body, "remove");
        json_object_set_new(detail, "add", a != NULL ? json_incref(a) : json_array());
        json_object_set_new(detail, "remove", r != NULL ? json_incref(r) : json_array());
    }
    snprintf(object, sizeof(object), "device/%s", id);
    e = fota_api_audit(st, actor, "device.tags", object, detail, now);
    if (fota_req_commit(st, e, resp) != 0)
        goto out;
    in_tx = 0;
    device_answer(req, resp, st, id);
out:
    if (in_tx)
        fota_store_rollback(st);
    json_decref(body);
}

static void route_devices(struct fota_req *req, struct fota_resp *resp, char **seg, size_t nseg)
{
    char actor[FOTA_STORE_NAME_MAX + 1];

    if (nseg == 1) {
        if (!is_get(req)) {
            method_not_allowed(resp, "GET, HEAD");
            return;
        }
        if (api_auth(req, resp, "read", actor) == 0)
            devices_list(req, resp);
        return;
    }
    if (!valid_id(seg[1])) {
        not_found(resp, "device");
        return;
    }
    if (nseg == 2) {
        if (!is_get(req)) {
            method_not_allowed(resp, "GET, HEAD");
            return;
        }
        if (api_auth(req, resp, "read", actor) == 0)
            device_get(req, resp, seg[1]);
        return;
    }
    if (nseg != 3) {
        not_found(resp, "resource");
        return;
    }
    if (strcmp(seg[2], "tags") == 0) {
        if (!is_post(req)) {
            method_not_allowed(resp, "POST");
            return;
        }
        if (api_auth(req, resp, "deploy", actor) == 0)
            device_tags(req, resp, seg[1], actor);
        return;
    }
    for (size_t i = 0; i < sizeof(device_actions) / sizeof(device_actions[0]); i++) {
        const struct device_action *act = &device_actions[i];
        if (strcmp(seg[2], act->name) != 0)
            continue;
        if (!is_post(req)) {
            method_not_allowed(resp, "POST");
            return;
        }
        if (api_auth(req, resp, act->scope, actor) == 0)
            device_status_change(req, resp, seg[1], act, actor);
        return;
    }
    not_found(resp, "resource");
}

/* ---- rollouts ----------------------------------------------------------- */

static void rollout_answer(struct fota_resp *resp, struct fota_store *st, const char *id,
                           unsigned status)
{
    json_t *o = NULL;
    fota_err err = fota_rollout_get_json(st, id, &o);

    if (err != FOTA_OK) {
        rollout_failure(resp, err, "cannot read the rollout");
        return;
    }
    fota_resp_json(resp, status, o);
}

static void rollouts_create(struct fota_req *req, struct fota_resp *resp, const char *actor)
{
    struct fota_store *st = fota_req_store(req);
    json_t *body = NULL, *detail;
    int64_t now = fota_server_now();
    enum fota_store_err e;
    fota_err err;
    int in_tx = 0, hidden = 0;
    char id[FOTA_ROLLOUT_ID_MAX + 1];
    char msg[400] = "";
    char object[FOTA_STORE_OBJECT_MAX + 1];

    body = fota_req_json(req, resp);
    if (body == NULL)
        return;
    if (st == NULL) {
        fota_resp_store_error(resp, FOTA_STORE_ERROR);
        goto out;
    }
    /* Group evaluation and the members' rows happen outside any write
     * transaction (fota_rollout_prepare); the rollout becomes visible
     * together with its audit entry. */
    err = fota_rollout_prepare(st, body, actor, now, id, msg, sizeof(msg));
    if (err != FOTA_OK) {
        rollout_failure(resp, err, msg);
        goto out;
    }
    hidden = 1;
    if (fota_req_begin(req, resp, &st) != 0)
        goto out;
    in_tx = 1;
    e = fota_store_rollout_reveal(st, id);
    detail = json_deep_copy(body);
    snprintf(object, sizeof(object), "rollout/%s", id);
    if (e == FOTA_STORE_OK)
        e = fota_api_audit(st, actor, "rollout.create", object, detail, now);
    else
        json_decref(detail);
    if (fota_req_commit(st, e, resp) != 0)
        goto out;
    in_tx = 0;
    hidden = 0;
    rollout_answer(resp, st, id, 201);
    snprintf(resp->location, sizeof(resp->location), "/api/v1/rollouts/%s", id);
    snprintf(resp->log_detail, sizeof(resp->log_detail), "actor=%s rollout=%s", actor, id);
out:
    if (in_tx)
        fota_store_rollback(st);
    if (hidden)
        fota_store_rollout_discard(st, id);
    json_decref(body);
}

static void rollouts_list(struct fota_req *req, struct fota_resp *resp)
{
    const char *state, *after;
    unsigned limit;
    json_t *o = NULL;
    fota_err err;

    if (!query_text(req, resp, "state", 16, &state) ||
        !query_text(req, resp, "after", FOTA_STORE_ID_MAX, &after) ||
        !query_limit(req, resp, "limit", API_LIMIT_DEFAULT, &limit))
        return;
    err = fota_rollout_list_json(fota_req_store(req), state, after, limit, &o);
    if (err == FOTA_E_INVALID) {
        bad_request(resp, "state must be active, paused, aborted or completed");
        return;
    }
    if (err != FOTA_OK) {
        rollout_failure(resp, err, NULL);
        return;
    }
    fota_resp_json(resp, 200, o);
}

static void rollout_devices(struct fota_req *req, struct fota_resp *resp, const char *id)
{
    const char *status, *after;
    unsigned limit;
    json_t *o = NULL;
    fota_err err;

    if (!query_text(req, resp, "status", 16, &status) ||
        !query_text(req, resp, "after", FOTA_STORE_ID_MAX, &after) ||
        !query_limit(req, resp, "limit", API_LIMIT_DEFAULT, &limit))
        return;
    err = fota_rollout_devices_json(fota_req_store(req), id, status, after, limit, &o);
    if (err == FOTA_E_INVALID) {
        bad_request(resp, "status must be assigned, downloading, installed, rebooted, confirmed, "
                          "rolled_back or failed");
        return;
    }
    if (err == FOTA_E_NOT_FOUND) {
        not_found(resp, "rollout");
        return;
    }
    if (err != FOTA_OK) {
        rollout_failure(resp, err, NULL);
        return;
    }
    fota_resp_json(resp, 200, o);
}

static void rollout_state_change(struct fota_req *req, struct fota_resp *resp, const char *id,
                                 const char *op, const char *actor)
{
    struct fota_store *st = NULL;
    json_t *body = NULL, *detail = NULL;
    const char *reason = NULL;
    int64_t now = fota_server_now();
    enum fota_store_err e;
    fota_err err;
    int in_tx = 0;
    char object[FOTA_STORE_OBJECT_MAX + 1];
    char action[FOTA_STORE_EVENT_MAX + 1];

    if (!optional_reason(req, resp, &body, &reason))
        return;
    if (fota_req_begin(req, resp, &st) != 0)
        goto out;
    in_tx = 1;
    err = fota_rollout_set_state(st, id, op, now);
    if (err == FOTA_E_NOT_FOUND) {
        not_found(resp, "rollout");
        goto out;
    }
    if (err == FOTA_E_STATE) {
        struct fota_store_rollout r;
        memset(&r, 0, sizeof(r));
        if (fota_store_rollout_get(st, id, &r) == FOTA_STORE_OK)
            fota_resp_error(resp, 409, "conflict", "cannot %s a rollout that is %s", op,
                            fota_store_rollout_state_name(r.state));
        else
            fota_resp_error(resp, 409, "conflict", "cannot %s this rollout now", op);
        fota_store_rollout_clear(&r);
        goto out;
    }
    if (err != FOTA_OK) {
        rollout_failure(resp, err, NULL);
        goto out;
    }
    if (reason != NULL)
        detail = json_pack("{s:s}", "reason", reason);
    snprintf(object, sizeof(object), "rollout/%s", id);
    snprintf(action, sizeof(action), "rollout.%s", op);
    e = fota_api_audit(st, actor, action, object, detail, now);
    if (fota_req_commit(st, e, resp) != 0)
        goto out;
    in_tx = 0;
    rollout_answer(resp, st, id, 200);
out:
    if (in_tx)
        fota_store_rollback(st);
    json_decref(body);
}

static void route_rollouts(struct fota_req *req, struct fota_resp *resp, char **seg, size_t nseg)
{
    static const char *const ops[] = {"pause", "resume", "abort"};
    char actor[FOTA_STORE_NAME_MAX + 1];

    if (nseg == 1) {
        if (is_get(req)) {
            if (api_auth(req, resp, "read", actor) == 0)
                rollouts_list(req, resp);
        } else if (is_post(req)) {
            if (api_auth(req, resp, "deploy", actor) == 0)
                rollouts_create(req, resp, actor);
        } else {
            method_not_allowed(resp, "GET, HEAD, POST");
        }
        return;
    }
    if (!valid_id(seg[1])) {
        not_found(resp, "rollout");
        return;
    }
    if (nseg == 2) {
        if (!is_get(req)) {
            method_not_allowed(resp, "GET, HEAD");
            return;
        }
        if (api_auth(req, resp, "read", actor) == 0)
            rollout_answer(resp, fota_req_store(req), seg[1], 200);
        return;
    }
    if (nseg != 3) {
        not_found(resp, "resource");
        return;
    }
    if (strcmp(seg[2], "devices") == 0) {
        if (!is_get(req)) {
            method_not_allowed(resp, "GET, HEAD");
            return;
        }
        if (api_auth(req, resp, "read", actor) == 0)
            rollout_devices(req, resp, seg[1]);
        return;
    }
    for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++) {
        if (strcmp(seg[2], ops[i]) != 0)
            continue;
        if (!is_post(req)) {
            method_not_allowed(resp, "POST");
            return;
        }
        if (api_auth(req, resp, "deploy", actor) == 0)
            rollout_state_change(req, resp, seg[1], ops[i], actor);
        return;
    }
    not_found(resp, "resource");
}

/* ---- audit -------------------------------------------------------------- */

static void audit_list(struct fota_req *req, struct fota_resp *resp)
{
    struct fota_store_audit *items = NULL;
    const char *after_s;
    int64_t after = 0;
    size_t n = 0;
    int more = 0;
    unsigned limit;
    enum fota_store_err e;
    json_t *arr;

    if (!query_text(req, resp, "after", 20, &after_s) ||
        !query_limit(req, resp, "limit", API_LIMIT_DEFAULT, &limit))
        return;
    if (after_s != NULL) {
        char *end = NULL;
        long long v;
        errno = 0;
        v = strtoll(after_s, &end, 10);
        if (errno != 0 || end == after_s || *end != '\0' || v < 0) {
            bad_request(resp, "after must be an audit entry id");
            return;
        }
        after = (int64_t)v;
    }
    e = fota_store_audit_list(fota_req_store(req), after, limit, &items, &n, &more);
    if (e != FOTA_STORE_OK) {
        fota_resp_store_error(resp, e);
        return;
    }
    arr = json_array();
    for (size_t i = 0; arr != NULL && i < n; i++) {
        json_t *one = json_object();
        if (one == NULL || json_array_append_new(arr, one) != 0) {
            json_decref(arr);
            arr = NULL;
            break;
        }
        json_object_set_new(one, "id", json_integer(items[i].id));
        json_object_set_new(one, "time", iso_time(items[i].time));
        json_object_set_new(one, "actor", json_string(items[i].actor));
        json_object_set_new(one, "action", json_string(items[i].action));
        json_object_set_new(one, "object", json_string(items[i].object));
        json_object_set_new(one, "detail", items[i].detail_json != NULL
                                               ? stored_json(items[i].detail_json)
                                               : json_null());
    }
    if (arr == NULL)
        fota_resp_error(resp, 500, "internal", "out of memory");
    else
        fota_resp_json(resp, 200,
                       json_pack("{s:o,s:o}", "entries", arr, "next",
                                 more && n > 0 ? json_integer(items[n - 1].id) : json_null()));
    fota_store_audit_list_free(items, n);
}

/* ---- entry -------------------------------------------------------------- */

void fota_api_handle(struct fota_req *req, struct fota_resp *resp)
{
    char path[512];
    char *seg[API_SEGMENTS_MAX];
    size_t nseg = 0, plen;
    char *p;

    resp->log_event = "api";
    if (strncmp(req->path, API_PREFIX, strlen(API_PREFIX)) != 0) {
        not_found(resp, "resource");
        return;
    }
    plen = strlen(req->path + strlen(API_PREFIX));
    if (plen == 0 || plen >= sizeof(path)) {
        not_found(resp, "resource");
        return;
    }
    memcpy(path, req->path + strlen(API_PREFIX), plen + 1);
    /* Split on '/', exactly: an empty segment ("a//b", a trailing "/")
     * names nothing. */
    p = path;
    for (;;) {
        char *slash = strchr(p, '/');
        if (nseg == API_SEGMENTS_MAX || p[0] == '\0' || p == slash) {
            not_found(resp, "resource");
            return;
        }
        seg[nseg++] = p;
        if (slash == NULL)
            break;
        *slash = '\0';
        p = slash + 1;
    }

    if (strcmp(seg[0], "devices") == 0) {
        route_devices(req, resp, seg, nseg);
    } else if (strcmp(seg[0], "rollouts") == 0) {
        route_rollouts(req, resp, seg, nseg);
    } else if (strcmp(seg[0], "audit") == 0 && nseg == 1) {
        char actor[FOTA_STORE_NAME_MAX + 1];
        if (!is_get(req)) {
            method_not_allowed(resp, "GET, HEAD");
            return;
        }
        if (api_auth(req, resp, "read", actor) == 0)
            audit_list(req, resp);
    } else {
        not_found(resp, "resource");
    }
}
