/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The device protocol (docs/device-protocol.md): enrolment, sessions,
 * check-ins and reports, with the counters that make each request unique.
 *
 * Counters (session counter, seq) are raised and stored before the request
 * that carries them is sent, so a value is never used twice even when the
 * device loses power right after sending. A 409 "replayed" means the server
 * has seen a higher value than we hold (state.json restored from an old
 * copy): we jump past it and try once more.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "agent_internal.h"
#include "fota/json.h"

struct answer {
    long status;
    uint8_t *buf;
    size_t len;
    char code[64];                 /* the "error" of an error answer, or "" */
};

static void answer_free(struct answer *ans)
{
    free(ans->buf);
    memset(ans, 0, sizeof *ans);
}

static fota_err post(struct fota_agent *a, const char *path, const char *bearer,
                     const json_t *body, size_t max_resp, struct answer *ans)
{
    char *url = NULL, *text = NULL;
    size_t len;
    fota_err err = FOTA_E_NOMEM;

    memset(ans, 0, sizeof *ans);
    len = strlen(a->server) + strlen(path) + 1;
    url = malloc(len);
    text = json_dumps(body, JSON_COMPACT | JSON_SORT_KEYS);
    if (url == NULL || text == NULL)
        goto out;
    snprintf(url, len, "%s%s", a->server, path);
    err = fota_posix_http_request(&a->http, "POST", url, bearer, text, strlen(text), max_resp,
                                  &ans->status, &ans->buf, &ans->len);
    if (err != FOTA_OK) {
        agent_log(a, FOTA_AGENT_LOG_DEBUG, "http", "http path=%s error=%s detail=\"%s\"", path,
                  fota_strerror(err), a->http.errmsg);
        goto out;
    }
    if (ans->status >= 400) {
        json_t *o = NULL;

        if (fota_json_parse(ans->buf, ans->len, ans->len + 1, 4, &o) == FOTA_OK) {
            const char *code = json_string_value(json_object_get(o, "error"));

            if (code != NULL)
                snprintf(ans->code, sizeof ans->code, "%s", code);
        }
        json_decref(o);
    }
out:
    free(url);
    free(text);
    return err;
}

/* A signed envelope of signed_part (reference stolen). */
static fota_err sign_envelope(struct fota_agent *a, json_t *signed_part, json_t **ret)
{
    json_t *env;
    fota_err err;

    if (signed_part == NULL)
        return FOTA_E_NOMEM;
    env = json_pack("{s:o}", "signed", signed_part);
    if (env == NULL)
        return FOTA_E_NOMEM;
    err = fota_tuf_sign(env, a->key, a->id);
    if (err != FOTA_OK) {
        json_decref(env);
        return err;
    }
    *ret = env;
    return FOTA_OK;
}

static void now_iso(char out[21])
{
    fota_tuf_format_time(agent_now(), out);
}

static int is_code(const struct answer *ans, const char *code)
{
    return strcmp(ans->code, code) == 0;
}

/* ---- enrolment -------------------------------------------------------------- */

static fota_err set_enrolment(struct fota_agent *a, enum agent_enrolment e)
{
    if (a->st.enrolment == e)
        return FOTA_OK;
    a->st.enrolment = e;
    return agent_state_store(a);
}

/* FOTA_OK: accepted. Otherwise the outcome is set. */
static fota_err enrol(struct fota_agent *a, const struct agent_view *v)
{
    const struct agent_slot_view *run = &v->slots[v->running_slot];
    struct answer ans;
    json_t *env = NULL;
    char t[21];
    fota_err err;

    now_iso(t);
    err = sign_envelope(a,
                        json_pack("{s:s,s:O,s:s,s:s,s:I,s:s}", "_type", "enrol", "key", a->keyobj,
                                  "hardware_id", a->hardware_id, "version", run->version,
                                  "security_counter", (json_int_t)run->header.security_counter,
                                  "time", t),
                        &env);
    if (err != FOTA_OK) {
        agent_outcome(a, FOTA_AGENT_ERROR, err, "enrol: cannot sign the request");
        return err;
    }
    err = post(a, "/device/v1/enrol", NULL, env, AGENT_RESP_MAX, &ans);
    json_decref(env);
    if (err != FOTA_OK) {
        err = err == FOTA_E_NETWORK ? err : FOTA_E_SERVER;
        agent_outcome(a, FOTA_AGENT_ERROR, err, "enrol: %s", a->http.errmsg);
        return err;
    }
    if (ans.status == 200 || ans.status == 202) {
        int accepted = ans.status == 200;

        err = set_enrolment(a, accepted ? ENROL_ACCEPTED : ENROL_PENDING);
        agent_log(a, FOTA_AGENT_LOG_INFO, "enrol", "enrol status=%s device=%s hardware=%s",
                  accepted ? "accepted" : "pending", a->id, a->hardware_id);
        if (err != FOTA_OK)
            agent_outcome(a, FOTA_AGENT_ERROR, err, "cannot store state.json");
        else if (!accepted) {
            agent_outcome(a, FOTA_AGENT_PENDING, FOTA_OK,
                          "enrolled as %s; waiting for an operator to accept it", a->id);
            err = FOTA_E_STATE;
        }
    } else if (ans.status == 403 &&
               (is_code(&ans, "device_rejected") || is_code(&ans, "device_decommissioned"))) {
        if (set_enrolment(a, ENROL_REJECTED) != FOTA_OK)
            agent_log(a, FOTA_AGENT_LOG_WARN, "error", "error file=state.json");
        agent_log(a, FOTA_AGENT_LOG_WARN, "enrol", "enrol status=rejected device=%s error=%s",
                  a->id, ans.code);
        agent_outcome(a, FOTA_AGENT_REJECTED, FOTA_OK, "the operator %s this device",
                      is_code(&ans, "device_rejected") ? "rejected" : "decommissioned");
        err = FOTA_E_STATE;
    } else {
        agent_outcome(a, FOTA_AGENT_ERROR, FOTA_E_SERVER, "enrol: HTTP %ld %s", ans.status,
                      ans.code);
        err = FOTA_E_SERVER;
    }
    answer_free(&ans);
    return err;
}

/* ---- sessions ------------------------------------------------------------------ */

static int token_ok(const char *s)
{
    size_t n = strlen(s);

    if (n == 0 || n > AGENT_TOKEN_MAX)
        return 0;
    return strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") == n;
}

static void drop_token(struct fota_agent *a)
{
    fota_wipe(a->token, sizeof a->token);
    a->token_expires = 0;
}

/* FOTA_OK: a token. FOTA_E_NOT_FOUND: enrol again. Otherwise the outcome
 * is set. */
static fota_err open_session(struct fota_agent *a)
{
    struct answer ans;
    json_t *env = NULL, *o = NULL;
    char t[21];
    fota_err err = FOTA_OK;

    drop_token(a);
    for (int attempt = 0; attempt < 2; attempt++) {
        a->st.session_counter++;
        err = agent_state_store(a);
        if (err != FOTA_OK) {
            agent_outcome(a, FOTA_AGENT_ERROR, err, "cannot store state.json");
            return err;
        }
        now_iso(t);
        err = sign_envelope(a,
                            json_pack("{s:s,s:s,s:I,s:s}", "_type", "session", "device", a->id,
                                      "counter", (json_int_t)a->st.session_counter, "time", t),
                            &env);
        if (err != FOTA_OK) {
            agent_outcome(a, FOTA_AGENT_ERROR, err, "session: cannot sign the request");
            return err;
        }
        err = post(a, "/device/v1/session", NULL, env, AGENT_RESP_MAX, &ans);
        json_decref(env);
        env = NULL;
        if (err != FOTA_OK) {
            err = err == FOTA_E_NETWORK ? err : FOTA_E_SERVER;
            agent_outcome(a, FOTA_AGENT_ERROR, err, "session: %s", a->http.errmsg);
            return err;
        }
        if (ans.status == 409 && is_code(&ans, "replayed") && attempt == 0) {
            agent_log(a, FOTA_AGENT_LOG_WARN, "session",
                      "session error=replayed counter=%lld jump=%d",
                      (long long)a->st.session_counter, AGENT_REPLAY_JUMP);
            a->st.session_counter += AGENT_REPLAY_JUMP;
            answer_free(&ans);
            continue;
        }
        break;
    }
    if (ans.status == 200) {
        const char *token = NULL, *expires = NULL;
        int64_t exp = 0;

        err = fota_json_parse(ans.buf, ans.len, AGENT_RESP_MAX, 4, &o);
        if (err == FOTA_OK) {
            token = json_string_value(json_object_get(o, "token"));
            expires = json_string_value(json_object_get(o, "expires"));
        }
        if (token == NULL || expires == NULL || !token_ok(token) ||
            fota_tuf_parse_time(expires, &exp) != FOTA_OK) {
            agent_outcome(a, FOTA_AGENT_ERROR, FOTA_E_SERVER, "session: malformed answer");
            err = FOTA_E_SERVER;
        } else {
            memcpy(a->token, token, strlen(token) + 1);
            a->token_expires = exp;
            agent_log(a, FOTA_AGENT_LOG_DEBUG, "session", "session counter=%lld expires=%s",
                      (long long)a->st.session_counter, expires);
            err = FOTA_OK;
        }
    } else if (ans.status == 404 || (ans.status == 403 && is_code(&ans, "device_not_accepted"))) {
        /* The server no longer knows us as accepted: enrol again. */
        agent_log(a, FOTA_AGENT_LOG_WARN, "session", "session error=%s action=enrol",
                  ans.code[0] ? ans.code : "unknown_device");
        err = set_enrolment(a, ENROL_NONE);
        if (err != FOTA_OK)
            agent_outcome(a, FOTA_AGENT_ERROR, err, "cannot store state.json");
        else
            err = FOTA_E_NOT_FOUND;
    } else if (ans.status == 403 && is_code(&ans, "device_pending")) {
        if (set_enrolment(a, ENROL_PENDING) != FOTA_OK)
            agent_log(a, FOTA_AGENT_LOG_WARN, "error", "error file=state.json");
        agent_outcome(a, FOTA_AGENT_PENDING, FOTA_OK, "waiting for an operator to accept %s",
                      a->id);
        err = FOTA_E_STATE;
    } else if (ans.status == 403) {
        if (set_enrolment(a, ENROL_REJECTED) != FOTA_OK)
            agent_log(a, FOTA_AGENT_LOG_WARN, "error", "error file=state.json");
        agent_log(a, FOTA_AGENT_LOG_WARN, "session", "session error=%s", ans.code);
        agent_outcome(a, FOTA_AGENT_REJECTED, FOTA_OK, "session refused: %s", ans.code);
        err = FOTA_E_STATE;
    } else {
        agent_outcome(a, FOTA_AGENT_ERROR, FOTA_E_SERVER, "session: HTTP %ld %s", ans.status,
                      ans.code);
        err = FOTA_E_SERVER;
    }
    json_decref(o);
    answer_free(&ans);
    return err;
}

fota_err agent_ensure_session(struct fota_agent *a, const struct agent_view *v)
{
    fota_err err = FOTA_E_STATE;

    for (int round = 0; round < 2; round++) {
        if (a->st.enrolment != ENROL_ACCEPTED) {
            drop_token(a);
            err = enrol(a, v);
            if (err != FOTA_OK)
                return err;
        }
        if (a->token[0] != '\0' && agent_now() < a->token_expires - AGENT_TOKEN_MARGIN_S)
            return FOTA_OK;
        err = open_session(a);
        if (err != FOTA_E_NOT_FOUND)
            return err;
    }
    agent_outcome(a, FOTA_AGENT_ERROR, FOTA_E_SERVER,
                  "the server forgets this device right after enrolling it");
    return FOTA_E_SERVER;
}

/* ---- requests with a bearer token ------------------------------------------- */

typedef json_t *(*body_fn)(void *ctx, int64_t seq);

/*
 * POST a body carrying the next seq with the session token. FOTA_OK when an
 * answer came (ans->status says which); the token is renewed on a 401 for it
 * and the seq raised on a 409 "replayed", each once. Otherwise an error,
 * with the cycle's outcome set (network, state.json, or the session could
 * not be renewed: pending, rejected...).
 */
static fota_err bearer_post(struct fota_agent *a, const char *path, body_fn build, void *ctx,
                            size_t max_resp, struct answer *ans)
{
    int renewed = 0, jumped = 0, reenrolled = 0;
    fota_err err;

    memset(ans, 0, sizeof *ans);
    if (a->token[0] == '\0') {
        if (a->view == NULL) {
            agent_outcome(a, FOTA_AGENT_ERROR, FOTA_E_STATE, "%s: no session", path);
            return FOTA_E_STATE;
        }
        err = agent_ensure_session(a, a->view);
        if (err != FOTA_OK)
            return err;
        renewed = 1;
    }
    for (;;) {
        json_t *body;

        a->st.seq++;
        err = agent_state_store(a);
        if (err != FOTA_OK) {
            agent_outcome(a, FOTA_AGENT_ERROR, err, "cannot store state.json");
            return err;
        }
        body = build(ctx, a->st.seq);
        if (body == NULL) {
            agent_outcome(a, FOTA_AGENT_ERROR, FOTA_E_NOMEM, "%s: out of memory", path);
            return FOTA_E_NOMEM;
        }
        err = post(a, path, a->token, body, max_resp, ans);
        json_decref(body);
        if (err != FOTA_OK) {
            if (err == FOTA_E_NETWORK)
                agent_outcome(a, FOTA_AGENT_ERROR, err, "%s: %s", path, a->http.errmsg);
            else
                agent_outcome(a, FOTA_AGENT_ERROR, FOTA_E_SERVER, "%s: answer refused: %s",
                              path, fota_strerror(err));
            return err;
        }
        if (ans->status == 401 && !is_code(ans, "device_not_accepted") && !renewed) {
            agent_log(a, FOTA_AGENT_LOG_DEBUG, "session", "session renew error=%s", ans->code);
            answer_free(ans);
            renewed = 1;
            err = open_session(a);
            if (err != FOTA_OK)
                return err;
            continue;
        }
        if (ans->status == 401 && is_code(ans, "device_not_accepted") && !reenrolled &&
            a->view != NULL) {
            agent_log(a, FOTA_AGENT_LOG_WARN, "enrol", "enrol reason=device_not_accepted");
            answer_free(ans);
            reenrolled = 1;
            drop_token(a);
            err = set_enrolment(a, ENROL_NONE);
            if (err == FOTA_OK)
                err = agent_ensure_session(a, a->view);
            if (err != FOTA_OK)
                return err;
            continue;
        }
        if (ans->status == 409 && is_code(ans, "replayed") && !jumped) {
            agent_log(a, FOTA_AGENT_LOG_WARN, "replayed", "replayed path=%s seq=%lld jump=%d",
                      path, (long long)a->st.seq, AGENT_REPLAY_JUMP);
            answer_free(ans);
            jumped = 1;
            a->st.seq += AGENT_REPLAY_JUMP;
            continue;
        }
        return FOTA_OK;
    }
}

/* ---- check-in --------------------------------------------------------------------- */

struct checkin_ctx {
    const struct agent_view *v;
    const char *nonce;
};

static json_t *checkin_body(void *ctx, int64_t seq)
{
    const struct checkin_ctx *c = ctx;
    const struct agent_view *v = c->v;
    const struct agent_slot_view *run = &v->slots[v->running_slot];
    json_t *slots = json_array();

    if (slots == NULL)
        return NULL;
    for (int s = 0; s < 2; s++) {
        const struct agent_slot_view *sv = &v->slots[s];
        json_t *e;

        /* A slot without a readable header has no version to report; the
         * protocol wants one for every state but "empty", so it is left
         * out (the server learns its state from the next install). */
        if (!sv->has_header && strcmp(sv->state, "empty") != 0)
            continue;
        e = json_pack("{s:i,s:s?,s:s}", "slot", s, "version",
                      sv->has_header ? sv->version : NULL, "state", sv->state);
        if (e == NULL || json_array_append_new(slots, e) != 0) {
            json_decref(slots);
            return NULL;
        }
    }
    return json_pack("{s:s,s:I,s:{s:s,s:I,s:i},s:o}", "nonce", c->nonce, "seq", (json_int_t)seq,
                     "running", "version", run->version, "security_counter",
                     (json_int_t)run->header.security_counter, "slot", v->running_slot, "slots",
                     slots);
}

static fota_err make_nonce(char out[33])
{
    uint8_t raw[16];
    size_t got = 0;

    while (got < sizeof raw) {
        ssize_t n = getrandom(raw + got, sizeof raw - got, 0);

        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return FOTA_E_CRYPTO;
        got += (size_t)n;
    }
    fota_hex_encode(raw, sizeof raw, out);
    return FOTA_OK;
}

fota_err agent_checkin(struct fota_agent *a, const struct agent_view *v, const json_t *keyset,
                       struct fota_director_decision *ret)
{
    struct fota_director_decision d;
    struct checkin_ctx c;
    struct answer ans;
    char nonce[33];
    int64_t now;
    fota_err err;

    err = make_nonce(nonce);
    if (err != FOTA_OK) {
        agent_outcome(a, FOTA_AGENT_ERROR, err, "no random bytes for the nonce");
        return err;
    }
    c.v = v;
    c.nonce = nonce;
    err = bearer_post(a, "/device/v1/checkin", checkin_body, &c, FOTA_DIRECTOR_DOC_MAX, &ans);
    if (err == FOTA_E_TOO_BIG) {
        /* no Director document is that large: endless data */
        agent_refuse(a, err, NULL, NULL, "Director document over %u bytes",
                     FOTA_DIRECTOR_DOC_MAX);
        return err;
    }
    if (err != FOTA_OK)
        return err;
    if (ans.status != 200) {
        agent_outcome(a, FOTA_AGENT_ERROR, FOTA_E_SERVER, "checkin: HTTP %ld %s", ans.status,
                      ans.code);
        answer_free(&ans);
        return FOTA_E_SERVER;
    }
    now = agent_now();
    err = fota_director_verify(ans.buf, ans.len, keyset, a->id, nonce, now, &d);
    answer_free(&ans);
    if (err != FOTA_OK) {
        agent_refuse(a, err, NULL, NULL, "Director document refused: %s", fota_strerror(err));
        return err;
    }
    a->st.last_fresh = now;
    err = agent_state_store(a);
    if (err != FOTA_OK) {
        agent_outcome(a, FOTA_AGENT_ERROR, err, "cannot store state.json");
        return err;
    }
    agent_refusal_settle(a, d.reports);
    if (d.action == FOTA_DIRECTOR_INSTALL)
        agent_log(a, FOTA_AGENT_LOG_INFO, "checkin",
                  "checkin action=install target=%s version=%s rollout=%s running=%s",
                  d.target, d.version, d.rollout, v->slots[v->running_slot].version);
    else
        agent_log(a, FOTA_AGENT_LOG_INFO, "checkin", "checkin action=stay running=%s",
                  v->slots[v->running_slot].version);
    *ret = d;
    return FOTA_OK;
}

/* ---- reports ------------------------------------------------------------------------ */

struct report_ctx {
    const char *event, *target, *version, *reason, *detail;
};

static int printable(const char *s, size_t max)
{
    size_t n = strlen(s);

    if (n == 0 || n > max)
        return 0;
    for (size_t i = 0; i < n; i++) {
        if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] > 0x7e)
            return 0;
    }
    return 1;
}

static json_t *report_body(void *ctx, int64_t seq)
{
    const struct report_ctx *r = ctx;
    json_t *o = json_pack("{s:I,s:s}", "seq", (json_int_t)seq, "event", r->event);
    char detail[1025];

    if (o == NULL)
        return NULL;
    if (r->target != NULL && printable(r->target, 255))
        json_object_set_new(o, "target", json_string(r->target));
    if (r->version != NULL && r->version[0] != '\0')
        json_object_set_new(o, "version", json_string(r->version));
    if (r->reason != NULL)
        json_object_set_new(o, "reason", json_string(r->reason));
    if (r->detail != NULL && r->detail[0] != '\0') {
        /* at most 1024 bytes, cut on a character boundary */
        size_t n = strlen(r->detail);

        if (n > 1024) {
            n = 1024;
            while (n > 0 && ((unsigned char)r->detail[n] & 0xc0) == 0x80)
                n--;
        }
        memcpy(detail, r->detail, n);
        detail[n] = '\0';
        json_object_set_new(o, "detail", json_string(detail));
    }
    return o;
}

fota_err agent_report(struct fota_agent *a, const char *event, const char *target,
                      const char *version, const char *reason, const char *detail)
{
    struct report_ctx r = {event, target, version, reason, detail};
    struct answer ans;
    fota_err err;

    err = bearer_post(a, "/device/v1/report", report_body, &r, AGENT_RESP_MAX, &ans);
    if (err != FOTA_OK) {
        agent_log(a, FOTA_AGENT_LOG_WARN, "report", "report event=%s error=%s", event,
                  fota_strerror(err));
        return err;
    }
    if (ans.status != 204) {
        agent_outcome(a, FOTA_AGENT_ERROR, FOTA_E_SERVER, "report %s: HTTP %ld %s", event,
                      ans.status, ans.code);
        answer_free(&ans);
        return FOTA_E_SERVER;
    }
    answer_free(&ans);
    agent_log(a, FOTA_AGENT_LOG_DEBUG, "report", "report event=%s%s%s%s%s", event,
              reason != NULL ? " reason=" : "", reason != NULL ? reason : "",
              target != NULL ? " target=" : "", target != NULL ? target : "");
    return FOTA_OK;
}

/* Send the "failed" report of a refusal and keep it in refusal.json with
 * the seq it went out with (0 when it could not be sent at all). */
static void send_refusal(struct fota_agent *a, struct agent_refusal *r)
{
    int64_t before = a->st.seq;

    r->seq = 0;
    agent_refusal_store(a, r);       /* kept even if the report below dies */
    agent_report(a, "failed", r->target[0] != '\0' ? r->target : NULL,
                 r->version[0] != '\0' ? r->version : NULL, r->reason, r->detail);
    if (a->st.seq != before)
        r->seq = a->st.seq;
    agent_refusal_store(a, r);
}

void agent_refuse(struct fota_agent *a, fota_err reason, const char *target, const char *version,
                  const char *fmt, ...)
{
    char detail[256];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(detail, sizeof detail, fmt, ap);
    va_end(ap);
    agent_log(a, FOTA_AGENT_LOG_WARN, "refused", "refused reason=%s%s%s detail=\"%s\"",
              fota_strerror(reason), target != NULL ? " target=" : "",
              target != NULL ? target : "", detail);
    /* The refusal stands whatever happens to the report. The report is
     * kept in refusal.json until a signed Director document shows that the
     * server stored it: an attacker on the path may swallow it. */
    {
        struct agent_refusal r;

        memset(&r, 0, sizeof r);
        snprintf(r.reason, sizeof r.reason, "%s", fota_strerror(reason));
        snprintf(r.target, sizeof r.target, "%s", target != NULL ? target : "");
        snprintf(r.version, sizeof r.version, "%s", version != NULL ? version : "");
        snprintf(r.detail, sizeof r.detail, "%s", detail);
        send_refusal(a, &r);
    }
    agent_outcome(a, FOTA_AGENT_REFUSED, reason, "%s", detail);
}

void agent_refusal_settle(struct fota_agent *a, uint64_t reports)
{
    struct agent_refusal r;

    if (agent_refusal_load(a, &r) != FOTA_OK)
        return;              /* none (or unreadable: nothing to re-send) */
    if (r.seq > 0 && reports >= (uint64_t)r.seq) {
        agent_remove_file(a, "refusal.json");
        return;
    }
    agent_log(a, FOTA_AGENT_LOG_WARN, "report",
              "report event=failed reason=%s detail=\"the server has not stored it (its last "
              "report is seq %llu, ours %lld): sending it again\"",
              r.reason, (unsigned long long)reports, (long long)r.seq);
    send_refusal(a, &r);
}
