/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The device side of the Director: the trusted key set (the TUF target
 * fota/director.json) and the check of each check-in answer, in the order
 * docs/device-protocol.md gives ("How a device must check it") and
 * include/fota/director.h numbers. The writer is server/director.c; every
 * field it writes is read back here, and nothing else is accepted.
 *
 * The shape is checked strictly because the document drives an install:
 * a field this code does not know could be one an older device ignores
 * while a newer one obeys, and the two would then disagree on what the
 * Director said.
 */
#include <string.h>

#include "fota/crypto.h"
#include "fota/director.h"
#include "fota/json.h"
#include "fota/tuf.h"

/* Nesting of a Director document: envelope > signed > target > hashes. */
#define DOC_MAX_DEPTH 6u
/* Nesting of a key set: root > keys > key object > keyval. */
#define KEYS_MAX_DEPTH 6u
/* More Director keys than any deployment needs; bounds the verify work. */
#define KEYS_MAX_COUNT 32u

/* 1 when obj has no member outside the NULL-terminated list allowed. */
static int only_members(const json_t *obj, const char *const *allowed)
{
    const char *name;
    json_t *value;

    json_object_foreach((json_t *)obj, name, value) {
        int known = 0;

        (void)value;
        for (size_t i = 0; allowed[i] != NULL && !known; i++)
            known = strcmp(name, allowed[i]) == 0;
        if (!known)
            return 0;
    }
    return 1;
}

/* The string member name of obj when it is 1..max bytes long, else NULL. */
static const char *bounded_string(const json_t *obj, const char *name, size_t max)
{
    const json_t *v = json_object_get(obj, name);
    size_t len;

    if (!json_is_string(v))
        return NULL;
    len = json_string_length(v);
    if (len == 0 || len > max)
        return NULL;
    return json_string_value(v);
}

/* Copy a string already bounded by bounded_string into out (cap + 1 bytes). */
static void copy_bounded(char *out, const char *s, size_t cap)
{
    size_t n = strnlen(s, cap);

    memcpy(out, s, n);
    out[n] = '\0';
}

fota_err fota_director_keys_parse(const uint8_t *buf, size_t len, json_t **ret_keyset)
{
    static const char *const top[] = {"keys", "threshold", NULL};
    json_t *root = NULL;
    const json_t *keys;
    const json_t *threshold;
    const char *keyid;
    json_t *keyobj;
    size_t n_keys;
    fota_err err;

    if (buf == NULL || ret_keyset == NULL)
        return FOTA_E_INVALID;
    err = fota_json_parse(buf, len, FOTA_DIRECTOR_KEYS_MAX, KEYS_MAX_DEPTH, &root);
    if (err != FOTA_OK)
        return err;
    err = FOTA_E_PARSE;
    if (!json_is_object(root) || !only_members(root, top))
        goto out;
    keys = json_object_get(root, "keys");
    threshold = json_object_get(root, "threshold");
    if (!json_is_object(keys) || !json_is_integer(threshold))
        goto out;
    n_keys = json_object_size(keys);
    if (n_keys > KEYS_MAX_COUNT) {
        err = FOTA_E_TOO_BIG;
        goto out;
    }
    /* At least one key, and never a threshold no set of these keys can
     * reach: such a set would refuse every document, silently. */
    if (json_integer_value(threshold) < 1 || (size_t)json_integer_value(threshold) > n_keys)
        goto out;
    json_object_foreach((json_t *)keys, keyid, keyobj) {
        char want[FOTA_TUF_KEYID_HEX_LEN + 1];
        fota_pubkey *pub = NULL;

        if (!json_is_object(keyobj)) {
            err = FOTA_E_PARSE;
            goto out;
        }
        /* A key listed under another key's id would let one key stand
         * for two in the threshold count. */
        err = fota_tuf_keyid(keyobj, want);
        if (err != FOTA_OK)
            goto out;
        if (strcmp(keyid, want) != 0) {
            err = FOTA_E_KEY;
            goto out;
        }
        /* A key this device cannot use is refused now rather than ignored
         * at every check-in. */
        err = fota_tuf_key_parse(keyobj, &pub);
        if (err != FOTA_OK)
            goto out;
        fota_pubkey_free(pub);
    }
    *ret_keyset = root;
    root = NULL;
    err = FOTA_OK;
out:
    json_decref(root);
    return err;
}

/* Step 2: the threshold of signatures by the key set over canonical
 * `signed`. FOTA_E_SIGNATURE when no signature by a trusted key verifies
 * (a wrong key, a changed document, none at all), FOTA_E_THRESHOLD when
 * some do but too few distinct keys signed. */
static fota_err check_signatures(const json_t *env, const json_t *keyset)
{
    const json_t *keys = json_object_get(keyset, "keys");
    const json_t *threshold = json_object_get(keyset, "threshold");
    json_t *role = NULL;
    json_t *keyids = NULL;
    const char *keyid;
    json_t *keyobj;
    unsigned valid = 0;
    fota_err err;

    if (!json_is_object(keys) || !json_is_integer(threshold) || json_integer_value(threshold) < 1)
        return FOTA_E_INVALID;
    keyids = json_array();
    if (keyids == NULL)
        return FOTA_E_NOMEM;
    json_object_foreach((json_t *)keys, keyid, keyobj) {
        (void)keyobj;
        if (json_array_append_new(keyids, json_string(keyid)) != 0) {
            json_decref(keyids);
            return FOTA_E_NOMEM;
        }
    }
    role = json_pack("{s:o,s:I}", "keyids", keyids, "threshold",
                     (json_int_t)json_integer_value(threshold));
    if (role == NULL)
        return FOTA_E_NOMEM;
    err = fota_tuf_verify_role(env, keys, role, &valid);
    json_decref(role);
    if (err == FOTA_E_THRESHOLD && valid == 0)
        return FOTA_E_SIGNATURE;
    /* A real number: canonical JSON has none, so nobody signed this. */
    if (err == FOTA_E_UNSUPPORTED)
        return FOTA_E_PARSE;
    return err;
}

/* Step 7 for "install": the target, every member known and in range. */
static fota_err read_target(const json_t *t, struct fota_director_decision *d)
{
    static const char *const target_members[] = {"hashes", "length", "name",
                                                  "security_counter", "version", NULL};
    static const char *const hash_members[] = {"sha256", NULL};
    const json_t *hashes = json_object_get(t, "hashes");
    const json_t *length = json_object_get(t, "length");
    const json_t *counter = json_object_get(t, "security_counter");
    const json_t *sha;
    const char *name;
    const char *version;
    const char *hex;

    if (!json_is_object(t) || !only_members(t, target_members))
        return FOTA_E_PARSE;
    if (!json_is_object(hashes) || !only_members(hashes, hash_members))
        return FOTA_E_PARSE;
    sha = json_object_get(hashes, "sha256");
    if (!json_is_string(sha) || json_string_length(sha) != 64)
        return FOTA_E_PARSE;
    hex = json_string_value(sha);
    /* Lower-case only, as the server writes it and TUF compares it. */
    for (size_t i = 0; i < 64; i++) {
        if (!((hex[i] >= '0' && hex[i] <= '9') || (hex[i] >= 'a' && hex[i] <= 'f')))
            return FOTA_E_PARSE;
    }
    if (fota_hex_decode(hex, 64, d->sha256, sizeof d->sha256) != FOTA_OK)
        return FOTA_E_PARSE;
    /* json_is_integer excludes 1.0 and friends; an image has bytes. */
    if (!json_is_integer(length) || json_integer_value(length) < 1)
        return FOTA_E_PARSE;
    if (!json_is_integer(counter) || json_integer_value(counter) < 0)
        return FOTA_E_PARSE;
    name = bounded_string(t, "name", FOTA_DIRECTOR_TARGET_NAME_MAX);
    version = bounded_string(t, "version", FOTA_DIRECTOR_VERSION_MAX);
    if (name == NULL || version == NULL)
        return FOTA_E_PARSE;
    d->length = (uint64_t)json_integer_value(length);
    d->security_counter = (uint64_t)json_integer_value(counter);
    copy_bounded(d->target, name, FOTA_DIRECTOR_TARGET_NAME_MAX);
    copy_bounded(d->version, version, FOTA_DIRECTOR_VERSION_MAX);
    return FOTA_OK;
}

fota_err fota_director_verify(const uint8_t *doc, size_t len, const json_t *keyset,
                              const char *device_id, const char *nonce, int64_t now,
                              struct fota_director_decision *ret)
{
    static const char *const envelope_members[] = {"signatures", "signed", NULL};
    static const char *const stay_members[] = {"_type",   "action", "device",
                                               "expires", "issued", "nonce",
                                               "reports", "spec_version", NULL};
    static const char *const install_members[] = {"_type",   "action",  "device",
                                                  "expires", "issued",  "nonce",
                                                  "reports", "rollout", "spec_version",
                                                  "target",  NULL};
    struct fota_director_decision d;
    json_t *env = NULL;
    const json_t *sig;
    const json_t *v;
    const char *action;
    const char *rollout;
    size_t nonce_len;
    fota_err err;

    if (doc == NULL || keyset == NULL || device_id == NULL || nonce == NULL || ret == NULL)
        return FOTA_E_INVALID;
    memset(&d, 0, sizeof d);

    /* 1. Size and strict JSON; the envelope holds exactly the two members. */
    if (len > FOTA_DIRECTOR_DOC_MAX)
        return FOTA_E_TOO_BIG;
    err = fota_json_parse(doc, len, FOTA_DIRECTOR_DOC_MAX, DOC_MAX_DEPTH, &env);
    if (err != FOTA_OK)
        return err;
    err = FOTA_E_PARSE;
    if (!json_is_object(env) || !only_members(env, envelope_members) ||
        !json_is_array(json_object_get(env, "signatures")))
        goto out;
    sig = json_object_get(env, "signed");
    if (!json_is_object(sig))
        goto out;

    /* 2. Signatures by the trusted Director keys. Nothing in `signed` is
     * looked at before this passes. */
    err = check_signatures(env, keyset);
    if (err != FOTA_OK)
        goto out;

    /* 3. What the document is. */
    err = FOTA_E_TYPE;
    v = json_object_get(sig, "_type");
    if (!json_is_string(v) || strcmp(json_string_value(v), "director") != 0)
        goto out;
    v = json_object_get(sig, "spec_version");
    if (!json_is_string(v) || strcmp(json_string_value(v), "1.0") != 0)
        goto out;

    /* 4. For whom: a document for another device is not ours to act on. */
    err = FOTA_E_DEVICE;
    v = json_object_get(sig, "device");
    if (!json_is_string(v) || strcmp(json_string_value(v), device_id) != 0)
        goto out;

    /* 5. The nonce just sent, byte for byte: the answer belongs to this
     * request (not replayed, not another device's). Constant time over the
     * bytes; the length is not secret. */
    err = FOTA_E_NONCE;
    v = json_object_get(sig, "nonce");
    nonce_len = strlen(nonce);
    if (!json_is_string(v) || nonce_len == 0 || json_string_length(v) != nonce_len ||
        !fota_ct_equal(json_string_value(v), nonce, nonce_len))
        goto out;

    /* 6. Times. Without a clock (now == 0) the nonce alone proves freshness. */
    err = FOTA_E_PARSE;
    v = json_object_get(sig, "issued");
    if (!json_is_string(v) || fota_tuf_parse_time(json_string_value(v), &d.issued) != FOTA_OK)
        goto out;
    v = json_object_get(sig, "expires");
    if (!json_is_string(v) || fota_tuf_parse_time(json_string_value(v), &d.expires) != FOTA_OK)
        goto out;
    if (d.expires < d.issued)
        goto out;
    if (now > 0 && d.expires <= now) {
        err = FOTA_E_EXPIRED;
        goto out;
    }

    /* 7. The seq of the last report the server stored (so the device can
     * send again a report that never arrived), then the instruction, and
     * nothing else. */
    err = FOTA_E_PARSE;
    v = json_object_get(sig, "reports");
    if (!json_is_integer(v) || json_integer_value(v) < 0)
        goto out;
    d.reports = (uint64_t)json_integer_value(v);
    v = json_object_get(sig, "action");
    if (!json_is_string(v))
        goto out;
    action = json_string_value(v);
    if (strcmp(action, "stay") == 0) {
        if (!only_members(sig, stay_members))
            goto out;
        d.action = FOTA_DIRECTOR_STAY;
    } else if (strcmp(action, "install") == 0) {
        if (!only_members(sig, install_members))
            goto out;
        rollout = bounded_string(sig, "rollout", FOTA_DIRECTOR_ROLLOUT_MAX);
        if (rollout == NULL)
            goto out;
        err = read_target(json_object_get(sig, "target"), &d);
        if (err != FOTA_OK)
            goto out;
        copy_bounded(d.rollout, rollout, FOTA_DIRECTOR_ROLLOUT_MAX);
        d.action = FOTA_DIRECTOR_INSTALL;
    } else {
        goto out;
    }
    *ret = d;
    err = FOTA_OK;
out:
    json_decref(env);
    return err;
}
