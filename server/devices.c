/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The device endpoints (see devices.h and docs/device-protocol.md).
 *
 * Every request body is checked field by field before anything touches the
 * store: unknown fields, wrong types and out-of-range values are refused
 * with 400, so what is stored is always well-formed. Each handler then does
 * its store work in one transaction, so a refusal at any step stores
 * nothing.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fota/crypto.h"
#include "fota/json.h"
#include "fota/tuf.h"

#include "checkin_queue.h"
#include "devices.h"
#include "director.h"
#include "log.h"
#include "preauth.h"
#include "rollout.h"
#include "server.h"
#include "session.h"
#include "store.h"
#include "store_devices.h"

/* Caps of the protocol (docs/device-protocol.md). */
#define NONCE_MIN 32
#define NONCE_MAX 64
#define DETAIL_MAX 1024
#define SLOTS_MAX 2


/* ---- small validators ----------------------------------------------------- */

static int only_keys(const json_t *obj, const char *const *allowed, size_t n)
{
    const char *key;
    json_t *value;

    json_object_foreach((json_t *)obj, key, value) {
        size_t i = 0;
        (void)value;
        while (i < n && strcmp(key, allowed[i]) != 0)
            i++;
        if (i == n)
            return 0;
    }
    return 1;
}

#define ONLY_KEYS(obj, ...)                                                                  \
    only_keys((obj), (const char *const[]){ __VA_ARGS__ },                                   \
              sizeof((const char *const[]){ __VA_ARGS__ }) / sizeof(const char *))

/* Printable ASCII without blanks, 1..max bytes. */
static int is_token_text(const char *s, size_t max)
{
    size_t n = strnlen(s, max + 1);

    if (n == 0 || n > max)
        return 0;
    for (size_t i = 0; i < n; i++) {
        if ((unsigned char)s[i] <= 0x20 || (unsigned char)s[i] >= 0x7f)
            return 0;
    }
    return 1;
}

static int is_hex(const char *s, size_t min, size_t max, int lower_only)
{
    size_t n = strnlen(s, max + 1);

    if (n < min || n > max)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        int ok = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') ||
                 (!lower_only && c >= 'A' && c <= 'F');
        if (!ok)
            return 0;
    }
    return 1;
}

/* A decimal number without leading zeros (semver numeric identifier). */
static size_t semver_number(const char *s)
{
    size_t n = 0;

    while (s[n] >= '0' && s[n] <= '9')
        n++;
    if (n == 0 || (n > 1 && s[0] == '0'))
        return 0;
    return n;
}

/* Dot-separated identifiers of [0-9A-Za-z-]; numeric ones of the pre-release
 * part may not have leading zeros. Returns the length consumed, 0 if bad. */
static size_t semver_idents(const char *s, int prerelease)
{
    size_t i = 0;

    for (;;) {
        size_t start = i;
        int numeric = 1;
        while ((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'z') ||
               (s[i] >= 'A' && s[i] <= 'Z') || s[i] == '-') {
            if (!(s[i] >= '0' && s[i] <= '9'))
                numeric = 0;
            i++;
        }
        if (i == start)
            return 0;
        if (prerelease && numeric && i - start > 1 && s[start] == '0')
            return 0;
        if (s[i] != '.')
            return i;
        i++;
    }
}

/* Semantic Versioning 2.0.0: MAJOR.MINOR.PATCH[-pre][+build], at most
 * FOTA_STORE_VERSION_MAX bytes. */
static int is_semver(const char *s)
{
    size_t i = 0, n;

    if (strnlen(s, FOTA_STORE_VERSION_MAX + 1) > FOTA_STORE_VERSION_MAX)
        return 0;
    for (int part = 0; part < 3; part++) {
        n = semver_number(s + i);
        if (n == 0)
            return 0;
        i += n;
        if (part < 2) {
            if (s[i] != '.')
                return 0;
            i++;
        }
    }
    if (s[i] == '-') {
        n = semver_idents(s + i + 1, 1);
        if (n == 0)
            return 0;
        i += 1 + n;
    }
    if (s[i] == '+') {
        n = semver_idents(s + i + 1, 0);
        if (n == 0)
            return 0;
        i += 1 + n;
    }
    return s[i] == '\0';
}

/* A JSON integer in [min, max]. */
static int get_int(const json_t *obj, const char *key, int64_t min, int64_t max,
                   int64_t *ret)
{
    const json_t *v = json_object_get(obj, key);
    json_int_t i;

    if (!json_is_integer(v))
        return 0;
    i = json_integer_value(v);
    if (i < min || i > max)
        return 0;
    *ret = (int64_t)i;
    return 1;
}

static const char *get_str(const json_t *obj, const char *key)
{
    return json_string_value(json_object_get(obj, key));   /* NULL unless a string */
}

/* A fota_strerror() name of a failure (not "ok"). */
static int is_reason_name(const char *s)
{
    if (strnlen(s, FOTA_STORE_REASON_MAX + 1) > FOTA_STORE_REASON_MAX)
        return 0;
    /* Reason codes are a small append-only enum; 1024 leaves room for growth. */
    for (int e = 1; e < 1024; e++) {
        const char *name = fota_strerror((fota_err)e);
        if (strcmp(name, "unknown") != 0 && strcmp(name, s) == 0)
            return 1;
    }
    return 0;
}

static int is_event_name(const char *s)
{
    static const char *const events[] = {
        "downloading", "installed", "rebooted", "confirmed", "rolled_back", "failed",
    };

    for (size_t i = 0; i < sizeof(events) / sizeof(events[0]); i++) {
        if (strcmp(s, events[i]) == 0)
            return 1;
    }
    return 0;
}

static int is_slot_state(const char *s)
{
    static const char *const states[] = { "empty", "pending", "trial", "confirmed", "invalid" };

    for (size_t i = 0; i < sizeof(states) / sizeof(states[0]); i++) {
        if (strcmp(s, states[i]) == 0)
            return 1;
    }
    return 0;
}

/* ---- responses ------------------------------------------------------------ */

static void bad_request(struct fota_resp *resp, const char *what)
{
    fota_resp_error(resp, 400, "bad_request", "%s", what);
}

static void unauthorized(struct fota_resp *resp, const char *code, const char *message)
{
    snprintf(resp->extra_header[0], sizeof(resp->extra_header[0]),
             "WWW-Authenticate: Bearer realm=\"fota-device\"");
    fota_resp_error(resp, 401, code, "%s", message);
}

static void status_refusal(struct fota_resp *resp, enum fota_store_device_status s)
{
    switch (s) {
    case FOTA_STORE_DEVICE_PENDING:
        fota_resp_error(resp, 403, "device_pending", "the device waits for an operator");
        break;
    case FOTA_STORE_DEVICE_REJECTED:
        fota_resp_error(resp, 403, "device_rejected", "the device was rejected");
        break;
    default:
        fota_resp_error(resp, 403, "device_decommissioned", "the device was decommissioned");
        break;
    }
}

static void set_detail(struct fota_resp *resp, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void set_detail(struct fota_resp *resp, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(resp->log_detail, sizeof(resp->log_detail), fmt, ap);
    va_end(ap);
}

/* Refusals log "error=<code>" (fota_resp_error); name the device too when
 * it is known. */
static void tag_device(struct fota_resp *resp, const char *id)
{
    char had[sizeof(resp->log_detail)];

    if (id == NULL || id[0] == '\0' || resp->status < 400)
        return;
    memcpy(had, resp->log_detail, sizeof(had));
    set_detail(resp, "device=%s %s", id, had);
}

/* ---- signed requests (enrol, session) ------------------------------------- */

/*
 * The common shape of a device-signed request: exactly {"signed","signatures"},
 * one signature {"keyid","sig"} (strings), signed an object of _type type.
 * Returns the signed object (borrowed) and the signature's key id, or NULL
 * after setting a 400.
 */
static const json_t *envelope_parts(const json_t *root, const char *type,
                                    const char **ret_sig_keyid, struct fota_resp *resp)
{
    const json_t *sigs = json_object_get(root, "signatures");
    const json_t *signed_part = json_object_get(root, "signed");
    const json_t *sig0;
    const char *keyid;

    if (!json_is_object(root) || !ONLY_KEYS(root, "signed", "signatures") ||
        !json_is_object(signed_part) || !json_is_array(sigs)) {
        bad_request(resp, "expected an envelope {\"signed\":{..},\"signatures\":[..]}");
        return NULL;
    }
    sig0 = json_array_get(sigs, 0);
    if (json_array_size(sigs) != 1 || !json_is_object(sig0) || !ONLY_KEYS(sig0, "keyid", "sig") ||
        !json_is_string(json_object_get(sig0, "sig"))) {
        bad_request(resp, "expected exactly one signature {\"keyid\",\"sig\"}");
        return NULL;
    }
    keyid = get_str(sig0, "keyid");
    if (keyid == NULL) {
        bad_request(resp, "signature key id must be a string");
        return NULL;
    }
    if (!json_is_string(json_object_get(signed_part, "_type")) ||
        strcmp(get_str(signed_part, "_type"), type) != 0) {
        fota_resp_error(resp, 400, "bad_request", "signed._type must be \"%s\"", type);
        return NULL;
    }
    *ret_sig_keyid = keyid;
    return signed_part;
}

/* The envelope carries a valid signature by keyobj, whose key id is id. */
static int envelope_signed_by(const json_t *root, const char *id, json_t *keyobj)
{
    json_t *keys = json_object();
    json_t *role = json_pack("{s:[s],s:i}", "keyids", id, "threshold", 1);
    int ok = 0;

    if (keys != NULL && role != NULL && json_object_set(keys, id, keyobj) == 0)
        ok = fota_tuf_verify_role(root, keys, role, NULL) == FOTA_OK;
    json_decref(keys);
    json_decref(role);
    return ok;
}

/*
 * signed.time: strict ISO-8601 UTC, within request_max_skew_s of the server's
 * clock when that is on (config device_max_clock_skew). 0 = off, the
 * default: devices may have no real-time clock, and the session counter
 * (strictly increasing, stored) is what defeats replays.
 */
static int check_time(const json_t *signed_part, int64_t now, int64_t request_max_skew_s,
                      struct fota_resp *resp)
{
    const char *text = get_str(signed_part, "time");
    int64_t t = 0;

    if (text == NULL || fota_tuf_parse_time(text, &t) != FOTA_OK) {
        bad_request(resp, "signed.time must be \"YYYY-MM-DDTHH:MM:SSZ\"");
        return 0;
    }
    if (request_max_skew_s > 0 && (t > now + request_max_skew_s || t < now - request_max_skew_s)) {
        fota_resp_error(resp, 400, "clock_skew", "signed.time is too far from the server's clock");
        return 0;
    }
    return 1;
}

/*
 * The enrolling key: exactly {"keytype","scheme","keyval":{"public"}} (so
 * its key id is unambiguous), of a type a device may use (ed25519 or ECDSA
 * P-256). Sets a 400 on failure.
 */
static int check_device_key(const json_t *keyobj, struct fota_resp *resp)
{
    const json_t *keyval = json_object_get(keyobj, "keyval");
    fota_pubkey *key = NULL;
    fota_err err;
    int ok = 0;

    if (!json_is_object(keyobj) || !ONLY_KEYS(keyobj, "keytype", "scheme", "keyval") ||
        !json_is_object(keyval) || !ONLY_KEYS(keyval, "public")) {
        fota_resp_error(resp, 400, "bad_key",
                        "signed.key must be {\"keytype\",\"scheme\",\"keyval\":{\"public\"}}");
        return 0;
    }
    err = fota_tuf_key_parse(keyobj, &key);
    if (err == FOTA_E_UNSUPPORTED || (err == FOTA_OK && fota_pubkey_type(key) != FOTA_KEY_ED25519 &&
                                      fota_pubkey_type(key) != FOTA_KEY_ECDSA_P256)) {
        fota_resp_error(resp, 400, "unsupported_key",
                        "device keys are ed25519 or ecdsa-sha2-nistp256");
        goto out;
    }
    if (err != FOTA_OK) {
        fota_resp_error(resp, 400, "bad_key", "signed.key is malformed (%s)", fota_strerror(err));
        goto out;
    }
    ok = 1;
out:
    fota_pubkey_free(key);
    return ok;
}

void fota_dev_enrol(struct fota_req *req, struct fota_resp *resp)
{
    struct fota_server *srv = req->srv;
    const int64_t now = fota_server_now();
    struct fota_store_device d;
    struct fota_store_device cur;
    struct fota_store_history h;
    struct fota_store *st = NULL;
    const json_t *signed_part;
    json_t *root = NULL;
    json_t *keyobj;
    const char *sig_keyid = NULL;
    const char *hwid, *version;
    char *key_text = NULL;
    char id[FOTA_TUF_KEYID_HEX_LEN + 1] = "";
    int64_t counter = 0;
    int created = 0, preauth, in_tx = 0, have_cur = 0;
    enum fota_store_err e;

    memset(&d, 0, sizeof(d));
    memset(&cur, 0, sizeof(cur));
    resp->log_event = "enrol";
    root = fota_req_json(req, resp);
    if (root == NULL)
        goto out;
    signed_part = envelope_parts(root, "enrol", &sig_keyid, resp);
    if (signed_part == NULL)
        goto out;
    if (!ONLY_KEYS(signed_part, "_type", "key", "hardware_id", "version", "security_counter",
                   "time")) {
        bad_request(resp, "signed has an unknown field");
        goto out;
    }
    keyobj = json_object_get(signed_part, "key");
    if (!check_device_key(keyobj, resp))
        goto out;
    hwid = get_str(signed_part, "hardware_id");
    version = get_str(signed_part, "version");
    if (hwid == NULL || !is_token_text(hwid, FOTA_STORE_HWID_MAX)) {
        bad_request(resp, "signed.hardware_id must be 1..128 printable characters");
        goto out;
    }
    if (version == NULL || !is_semver(version)) {
        bad_request(resp, "signed.version must be a semantic version");
        goto out;
    }
    if (!get_int(signed_part, "security_counter", 0, INT64_MAX, &counter)) {
        bad_request(resp, "signed.security_counter must be an integer >= 0");
        goto out;
    }
    if (!check_time(signed_part, now, req->srv->cfg.device_max_clock_skew_s, resp))
        goto out;
    /* Stored as plain JSON, not canonical: an ECDSA key's PEM holds
     * newlines, which canonical JSON leaves raw and no strict parser reads. */
    if (fota_tuf_keyid(keyobj, id) != FOTA_OK) {
        fota_resp_error(resp, 400, "bad_key", "signed.key cannot be encoded");
        goto out;
    }
    key_text = json_dumps(keyobj, JSON_COMPACT | JSON_SORT_KEYS);
    if (key_text == NULL || strlen(key_text) > FOTA_STORE_JSON_MAX) {
        fota_resp_error(resp, 400, "bad_key", "signed.key cannot be encoded");
        goto out;
    }
    /* Proof of possession: the envelope is signed by the key it enrols. */
    if (strcmp(sig_keyid, id) != 0) {
        fota_resp_error(resp, 400, "key_mismatch",
                        "the signature's key id is not the key id of signed.key");
        goto out;
    }
    if (!envelope_signed_by(root, id, keyobj)) {
        fota_resp_error(resp, 401, "bad_signature", "the signature does not verify");
        goto out;
    }

    preauth = fota_preauth_contains(srv->cfg.preauthorized_keys, id);
    memcpy(d.id, id, sizeof(id));
    memcpy(d.hardware_id, hwid, strlen(hwid) + 1);
    memcpy(d.version, version, strlen(version) + 1);
    d.status = preauth ? FOTA_STORE_DEVICE_ACCEPTED : FOTA_STORE_DEVICE_PENDING;
    d.security_counter = counter;
    d.stored_counter = counter;
    d.created = now;
    d.key_json = key_text;

    if (fota_req_begin(req, resp, &st) != 0)
        goto out;
    in_tx = 1;
    e = fota_store_device_enrol(st, &d, &cur, &created);
    if (e != FOTA_STORE_OK) {
        fota_resp_store_error(resp, e);
        goto out;
    }
    have_cur = 1;
    if (!created && cur.status == FOTA_STORE_DEVICE_PENDING && preauth) {
        /* Listed after it first enrolled: the list accepts it now. */
        e = fota_store_device_set_status(st, id, FOTA_STORE_DEVICE_ACCEPTED,
                                         FOTA_STORE_DEVICE_BIT(FOTA_STORE_DEVICE_PENDING), now);
        if (e != FOTA_STORE_OK && e != FOTA_STORE_CONFLICT) {
            fota_resp_store_error(resp, e);
            goto out;
        }
        if (e == FOTA_STORE_OK)
            cur.status = FOTA_STORE_DEVICE_ACCEPTED;
    }
    if (cur.status == FOTA_STORE_DEVICE_REJECTED ||
        cur.status == FOTA_STORE_DEVICE_DECOMMISSIONED) {
        status_refusal(resp, cur.status);
        goto out;                        /* rolled back: nothing changes */
    }
    if (created) {
        memset(&h, 0, sizeof(h));
        memcpy(h.device_id, id, sizeof(id));
        h.time = now;
        snprintf(h.event, sizeof(h.event), "enrol");
        memcpy(h.version, version, strlen(version) + 1);
        h.detail = preauth ? "pre-authorised key: accepted" : NULL;
        e = fota_store_device_history_append(st, &h, NULL);
        if (e != FOTA_STORE_OK) {
            fota_resp_store_error(resp, e);
            goto out;
        }
    }
    if (fota_req_commit(st, FOTA_STORE_OK, resp) != 0)
        goto out;
    in_tx = 0;
    fota_resp_json(resp, cur.status == FOTA_STORE_DEVICE_ACCEPTED ? 200 : 202,
                   json_pack("{s:s,s:s}", "device", id, "status",
                             fota_store_device_status_name(cur.status)));
    set_detail(resp, "device=%s status=%s new=%d", id, fota_store_device_status_name(cur.status),
               created);
out:
    tag_device(resp, id);
    if (in_tx)
        fota_store_rollback(st);
    if (have_cur)
        fota_store_device_clear(&cur);
    free(key_text);
    json_decref(root);
}

void fota_dev_session(struct fota_req *req, struct fota_resp *resp)
{
    struct fota_server *srv = req->srv;
    const int64_t now = fota_server_now();
    struct fota_store_device dev;
    struct fota_store *st;
    const json_t *signed_part;
    json_t *root = NULL;
    json_t *keyobj = NULL;
    const char *sig_keyid = NULL;
    const char *id = NULL;
    char token[FOTA_SESSION_TOKEN_LEN + 1];
    char expires_iso[21];
    int64_t counter = 0;
    int64_t expires;
    int have_dev = 0;
    enum fota_store_err e;

    memset(&dev, 0, sizeof(dev));
    resp->log_event = "session";
    root = fota_req_json(req, resp);
    if (root == NULL)
        goto out;
    signed_part = envelope_parts(root, "session", &sig_keyid, resp);
    if (signed_part == NULL)
        goto out;
    if (!ONLY_KEYS(signed_part, "_type", "device", "counter", "time")) {
        bad_request(resp, "signed has an unknown field");
        goto out;
    }
    id = get_str(signed_part, "device");
    if (id == NULL || !is_hex(id, FOTA_TUF_KEYID_HEX_LEN, FOTA_TUF_KEYID_HEX_LEN, 1)) {
        bad_request(resp, "signed.device must be a device id (64 lower-case hex)");
        goto out;
    }
    if (!get_int(signed_part, "counter", 1, INT64_MAX, &counter)) {
        bad_request(resp, "signed.counter must be an integer >= 1");
        goto out;
    }
    if (!check_time(signed_part, now, req->srv->cfg.device_max_clock_skew_s, resp))
        goto out;
    if (strcmp(sig_keyid, id) != 0) {
        fota_resp_error(resp, 400, "key_mismatch", "the signature's key id is not signed.device");
        goto out;
    }

    st = fota_req_store(req);
    if (st == NULL) {
        fota_resp_store_error(resp, FOTA_STORE_ERROR);
        goto out;
    }
    e = fota_store_device_get(st, id, &dev);
    if (e == FOTA_STORE_NOT_FOUND) {
        fota_resp_error(resp, 404, "unknown_device", "no device has this id; enrol first");
        goto out;
    }
    if (e != FOTA_STORE_OK) {
        fota_resp_store_error(resp, e);
        goto out;
    }
    have_dev = 1;
    if (dev.key_json == NULL ||
        fota_json_parse((const uint8_t *)dev.key_json, strlen(dev.key_json), FOTA_STORE_JSON_MAX,
                        4, &keyobj) != FOTA_OK) {
        fota_resp_error(resp, 500, "internal", "stored device key unreadable");
        goto out;
    }
    /* The signature first: only the key holder learns the device's status. */
    if (!envelope_signed_by(root, id, keyobj)) {
        fota_resp_error(resp, 401, "bad_signature", "the signature does not verify");
        goto out;
    }
    if (dev.status != FOTA_STORE_DEVICE_ACCEPTED) {
        status_refusal(resp, dev.status);
        goto out;
    }
    /* One statement: accepted and counter higher than the stored one. */
    e = fota_store_device_session(st, id, counter, now);
    if (e == FOTA_STORE_CONFLICT) {
        fota_resp_error(resp, 409, "replayed", "counter must be higher than the last one");
        goto out;
    }
    if (e == FOTA_STORE_STATE || e == FOTA_STORE_NOT_FOUND) {
        fota_resp_error(resp, 403, "device_not_accepted", "the device is no longer accepted");
        goto out;
    }
    if (e != FOTA_STORE_OK) {
        fota_resp_store_error(resp, e);
        goto out;
    }
    expires = now + srv->cfg.token_ttl_s;
    if (fota_session_token_make(srv->token_secret, id, expires, token) != FOTA_OK) {
        fota_resp_error(resp, 500, "internal", "cannot make a token");
        goto out;
    }
    fota_tuf_format_time(expires, expires_iso);
    fota_resp_json(resp, 200, json_pack("{s:s,s:s}", "token", token, "expires", expires_iso));
    fota_wipe(token, sizeof(token));
    if (resp->status == 200)
        set_detail(resp, "device=%s counter=%lld", id, (long long)counter);
out:
    tag_device(resp, id);
    if (have_dev)
        fota_store_device_clear(&dev);
    json_decref(keyobj);
    json_decref(root);
}

/* ---- bearer-token requests (check-in, report) ----------------------------- */

/* The device id of a valid session token, or 0 after setting a 401. */
static int authenticate(struct fota_req *req, struct fota_resp *resp, int64_t now,
                        char ret_id[FOTA_TUF_KEYID_HEX_LEN + 1])
{
    const char *token = fota_req_bearer(req);
    fota_err err;

    if (token == NULL) {
        unauthorized(resp, "missing_token", "Authorization: Bearer <session token> required");
        return 0;
    }
    err = fota_session_token_check(req->srv->token_secret, token, now, ret_id, NULL);
    if (err == FOTA_E_EXPIRED) {
        unauthorized(resp, "expired_token", "the session token expired; open a new session");
        return 0;
    }
    if (err != FOTA_OK) {
        unauthorized(resp, "bad_token", "the session token is not valid");
        return 0;
    }
    return 1;
}

struct checkin_body {
    const char *nonce;
    int64_t seq;
    const char *version;
    int64_t security_counter;
    int confirmed;
    json_t *slots;                       /* borrowed */
};

static int parse_slots(const json_t *slots, int64_t running_slot, const char *running_version,
                       int *ret_confirmed, struct fota_resp *resp)
{
    int seen[2] = { 0, 0 };
    int confirmed = 0;

    if (!json_is_array(slots) || json_array_size(slots) > SLOTS_MAX) {
        bad_request(resp, "slots must be an array of at most 2 entries");
        return 0;
    }
    for (size_t i = 0; i < json_array_size(slots); i++) {
        const json_t *s = json_array_get(slots, i);
        const json_t *v = json_object_get(s, "version");
        const char *state = get_str(s, "state");
        int64_t slot = 0;

        if (!json_is_object(s) || !ONLY_KEYS(s, "slot", "version", "state") ||
            !get_int(s, "slot", 0, 1, &slot) || seen[slot]) {
            bad_request(resp, "slots[]: {\"slot\":0|1 (once each),\"version\",\"state\"}");
            return 0;
        }
        seen[slot] = 1;
        if (state == NULL || !is_slot_state(state)) {
            bad_request(resp, "slots[].state must be empty|pending|trial|confirmed|invalid");
            return 0;
        }
        /* An empty slot has no version; any other holds an image that has one. */
        if (strcmp(state, "empty") == 0 ? !json_is_null(v)
                                        : !(json_is_string(v) && is_semver(json_string_value(v)))) {
            bad_request(resp, "slots[].version: a semantic version, or null for an empty slot");
            return 0;
        }
        if (slot == running_slot) {
            if (!json_is_string(v) || strcmp(json_string_value(v), running_version) != 0) {
                bad_request(resp, "the running slot's entry disagrees with running.version");
                return 0;
            }
            confirmed = strcmp(state, "confirmed") == 0;
        }
    }
    *ret_confirmed = confirmed;
    return 1;
}

static int parse_checkin(const json_t *root, struct checkin_body *b, struct fota_resp *resp)
{
    const json_t *running = json_object_get(root, "running");
    int64_t slot = 0;

    if (!json_is_object(root) || !ONLY_KEYS(root, "nonce", "seq", "running", "slots")) {
        bad_request(resp, "expected {\"nonce\",\"seq\",\"running\",\"slots\"}");
        return 0;
    }
    b->nonce = get_str(root, "nonce");
    if (b->nonce == NULL || !is_hex(b->nonce, NONCE_MIN, NONCE_MAX, 0)) {
        bad_request(resp, "nonce must be 32..64 hex characters");
        return 0;
    }
    if (!get_int(root, "seq", 1, INT64_MAX, &b->seq)) {
        bad_request(resp, "seq must be an integer >= 1");
        return 0;
    }
    if (!json_is_object(running) || !ONLY_KEYS(running, "version", "security_counter", "slot")) {
        bad_request(resp, "running must be {\"version\",\"security_counter\",\"slot\"}");
        return 0;
    }
    b->version = get_str(running, "version");
    if (b->version == NULL || !is_semver(b->version)) {
        bad_request(resp, "running.version must be a semantic version");
        return 0;
    }
    if (!get_int(running, "security_counter", 0, INT64_MAX, &b->security_counter)) {
        bad_request(resp, "running.security_counter must be an integer >= 0");
        return 0;
    }
    if (!get_int(running, "slot", 0, 1, &slot)) {
        bad_request(resp, "running.slot must be 0 or 1");
        return 0;
    }
    b->slots = json_object_get(root, "slots");
    return parse_slots(b->slots, slot, b->version, &b->confirmed, resp);
}

static void copy_target(const struct fota_rollout_target *rt, struct fota_director_target *dt)
{
    dt->name = rt->name;
    dt->length = rt->length;
    memcpy(dt->sha256, rt->sha256, sizeof(dt->sha256));
    dt->version = rt->version;
    dt->security_counter = rt->security_counter;
    dt->rollout = rt->rollout_id;
}

void fota_dev_checkin(struct fota_req *req, struct fota_resp *resp)
{
    struct fota_server *srv = req->srv;
    const int64_t now = fota_server_now();
    struct fota_checkin_job job;
    struct fota_director_target dt;
    struct fota_director_doc doc;
    struct checkin_body b;
    json_t *root = NULL;
    char id[FOTA_TUF_KEYID_HEX_LEN + 1] = "";
    char *slots_text = NULL;
    size_t slots_len = 0;
    char *out = NULL;
    size_t out_len = 0;
    enum fota_store_err e;
    fota_err err;

    resp->log_event = "checkin";
    if (!authenticate(req, resp, now, id))
        goto out;
    root = fota_req_json(req, resp);
    if (root == NULL)
        goto out;
    memset(&b, 0, sizeof(b));
    if (!parse_checkin(root, &b, resp))
        goto out;
    if (srv->director.key == NULL) {
        fota_resp_error(resp, 503, "no_director_key", "the server has no Director key");
        goto out;
    }
    if (fota_json_canonical(b.slots, FOTA_STORE_JSON_MAX, &slots_text, &slots_len) != FOTA_OK) {
        bad_request(resp, "slots cannot be encoded");
        goto out;
    }
    memset(&job, 0, sizeof(job));
    job.checkin.id = id;
    job.checkin.seq = b.seq;
    job.checkin.now = now;
    job.checkin.version = b.version;
    job.checkin.security_counter = b.security_counter;
    job.checkin.confirmed = b.confirmed;
    job.checkin.slots_json = slots_text;
    /* One transaction (shared with concurrent check-ins, checkin_queue.h):
     * the check-in, which also proves the device is still accepted, and the
     * rollout decision it leads to. */
    fota_checkin_run(srv, &job);
    e = job.store_err;
    if (e == FOTA_STORE_NOT_FOUND || e == FOTA_STORE_STATE) {
        unauthorized(resp, "device_not_accepted", "the device is not accepted");
        goto out;
    }
    if (e == FOTA_STORE_CONFLICT) {
        fota_resp_error(resp, 409, "replayed", "seq must be higher than the last one");
        goto out;
    }
    if (e != FOTA_STORE_OK && job.decide_err != FOTA_OK) {
        fota_resp_error(resp, 500, "internal", "rollout decision failed (%s)",
                        fota_strerror(job.decide_err));
        goto out;
    }
    if (e != FOTA_STORE_OK) {
        fota_resp_store_error(resp, e);
        goto out;
    }

    /* Signed after the commit, so the write lock is not held while signing. */
    memset(&doc, 0, sizeof(doc));
    doc.device_id = id;
    doc.nonce = b.nonce;
    doc.issued = now;
    doc.expires = now + srv->cfg.director_expiry_s;
    doc.reports = job.device.report_seq > 0 ? (uint64_t)job.device.report_seq : 0;
    if (job.action == FOTA_ROLLOUT_INSTALL) {
        copy_target(&job.target, &dt);
        doc.target = &dt;
    }
    err = fota_director_build(&srv->director, &doc, &out, &out_len);
    if (err != FOTA_OK) {
        fota_resp_error(resp, 500, "internal", "cannot sign the Director document (%s)",
                        fota_strerror(err));
        goto out;
    }
    resp->status = 200;
    resp->body = out;
    resp->body_len = out_len;
    resp->content_type = "application/json";
    out = NULL;
    if (doc.target != NULL)
        set_detail(resp, "device=%s action=install target=%s rollout=%s", id, job.target.name,
                   job.target.rollout_id);
    else
        set_detail(resp, "device=%s action=stay target=-", id);
out:
    tag_device(resp, id);
    free(out);
    free(slots_text);
    json_decref(root);
}

void fota_dev_report(struct fota_req *req, struct fota_resp *resp)
{
    const int64_t now = fota_server_now();
    struct fota_store *st = NULL;
    struct fota_store_history h;
    json_t *root = NULL;
    const char *event, *target, *version, *reason, *detail;
    char id[FOTA_TUF_KEYID_HEX_LEN + 1] = "";
    int64_t seq = 0;
    int in_tx = 0;
    enum fota_store_err e;
    fota_err err;

    resp->log_event = "report";
    if (!authenticate(req, resp, now, id))
        goto out;
    root = fota_req_json(req, resp);
    if (root == NULL)
        goto out;
    if (!json_is_object(root) ||
        !ONLY_KEYS(root, "seq", "event", "target", "version", "reason", "detail")) {
        bad_request(resp, "expected {\"seq\",\"event\"[,\"target\",\"version\",\"reason\",\"detail\"]}");
        goto out;
    }
    if (!get_int(root, "seq", 1, INT64_MAX, &seq)) {
        bad_request(resp, "seq must be an integer >= 1");
        goto out;
    }
    event = get_str(root, "event");
    if (event == NULL || !is_event_name(event)) {
        bad_request(resp,
                    "event must be downloading|installed|rebooted|confirmed|rolled_back|failed");
        goto out;
    }
    /* Optional fields: absent, or of the right form (null is not absent). */
    target = get_str(root, "target");
    if ((json_object_get(root, "target") != NULL && target == NULL) ||
        (target != NULL && !is_token_text(target, FOTA_STORE_TARGET_MAX))) {
        bad_request(resp, "target must be a target path of 1..255 printable characters");
        goto out;
    }
    version = get_str(root, "version");
    if ((json_object_get(root, "version") != NULL && version == NULL) ||
        (version != NULL && !is_semver(version))) {
        bad_request(resp, "version must be a semantic version");
        goto out;
    }
    reason = get_str(root, "reason");
    if ((json_object_get(root, "reason") != NULL && reason == NULL) ||
        (reason != NULL && !is_reason_name(reason))) {
        bad_request(resp, "reason must be a fota reason name (fota_strerror)");
        goto out;
    }
    if (reason == NULL && (strcmp(event, "failed") == 0 || strcmp(event, "rolled_back") == 0)) {
        bad_request(resp, "a failed or rolled_back report needs a reason");
        goto out;
    }
    detail = get_str(root, "detail");
    if ((json_object_get(root, "detail") != NULL && detail == NULL) ||
        (detail != NULL && strnlen(detail, DETAIL_MAX + 1) > DETAIL_MAX)) {
        bad_request(resp, "detail must be a string of at most 1024 bytes");
        goto out;
    }

    if (fota_req_begin(req, resp, &st) != 0)
        goto out;
    in_tx = 1;
    e = fota_store_device_seq(st, id, seq, now);
    if (e == FOTA_STORE_NOT_FOUND || e == FOTA_STORE_STATE) {
        unauthorized(resp, "device_not_accepted", "the device is not accepted");
        goto out;
    }
    if (e == FOTA_STORE_CONFLICT) {
        fota_resp_error(resp, 409, "replayed", "seq must be higher than the last one");
        goto out;
    }
    if (e != FOTA_STORE_OK) {
        fota_resp_store_error(resp, e);
        goto out;
    }
    memset(&h, 0, sizeof(h));
    memcpy(h.device_id, id, sizeof(id));
    h.time = now;
    snprintf(h.event, sizeof(h.event), "%s", event);
    snprintf(h.target, sizeof(h.target), "%s", target != NULL ? target : "");
    snprintf(h.version, sizeof(h.version), "%s", version != NULL ? version : "");
    snprintf(h.reason, sizeof(h.reason), "%s", reason != NULL ? reason : "");
    h.detail = (char *)detail;
    e = fota_store_device_history_append(st, &h, NULL);
    if (e != FOTA_STORE_OK) {
        fota_resp_store_error(resp, e);
        goto out;
    }
    err = fota_rollout_report(st, id, event, target, version, now);
    if (err != FOTA_OK) {
        fota_resp_error(resp, 500, "internal", "rollout update failed (%s)", fota_strerror(err));
        goto out;
    }
    if (fota_req_commit(st, FOTA_STORE_OK, resp) != 0)
        goto out;
    in_tx = 0;
    fota_resp_empty(resp, 204);
    set_detail(resp, "device=%s event=%s target=%s reason=%s", id, event,
               target != NULL ? target : "-", reason != NULL ? reason : "-");
out:
    tag_device(resp, id);
    if (in_tx)
        fota_store_rollback(st);
    json_decref(root);
}

void fota_dev_director_key(struct fota_req *req, struct fota_resp *resp)
{
    const struct fota_server_key *k = &req->srv->director;
    json_t *keys;

    resp->log_event = "director-key";
    if (k->key == NULL || k->pub == NULL) {
        fota_resp_error(resp, 503, "no_director_key", "the server has no Director key");
        return;
    }
    keys = json_object();
    if (keys == NULL || json_object_set(keys, k->keyid, k->pub) != 0) {
        json_decref(keys);
        fota_resp_error(resp, 500, "internal", "out of memory");
        return;
    }
    fota_resp_json(resp, 200, json_pack("{s:o,s:i}", "keys", keys, "threshold", 1));
}

int fota_device_is_fresh(int64_t last_fresh, int64_t now, const struct fota_server *srv)
{
    if (last_fresh <= 0 || srv == NULL)
        return 0;
    /* A last_fresh in the future (another process's clock slightly ahead)
     * still counts as fresh. */
    return now - last_fresh <= srv->cfg.freshness_max_age_s;
}
