/* SPDX-License-Identifier: Apache-2.0 */
/*
 * TUF pieces shared by the operator tools and the device client: file-name
 * encoding, key objects and key ids, signing and threshold verification of a
 * metadata envelope, and the metadata time format.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fota/json.h"
#include "fota/tuf.h"

/* Canonical "signed" parts larger than this are refused (the client's
 * biggest file cap is 5 MB; operators never sign more). */
#define SIGNED_MAX_LEN (64u * 1024 * 1024)
/* A signature is at most an RSA-16384 one; hex doubles it. */
#define SIG_HEX_MAX 4096
/* Bound on the number of signatures and key ids examined per envelope. */
#define MAX_SIGNATURES 1024

/* ---- names ------------------------------------------------------------ */

static int is_unreserved(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
           c == '_' || c == '.' || c == '-' || c == '~';
}

fota_err fota_tuf_encode_name(const char *name, char *out, size_t out_size)
{
    static const char digits[] = "0123456789ABCDEF";
    size_t o = 0;

    if (name == NULL || out == NULL || out_size == 0)
        return FOTA_E_INVALID;
    for (const unsigned char *p = (const unsigned char *)name; *p != '\0'; p++) {
        size_t need = is_unreserved(*p) ? 1 : 3;
        if (o + need + 1 > out_size)
            return FOTA_E_TOO_BIG;
        if (need == 1) {
            out[o++] = (char)*p;
        } else {
            out[o++] = '%';
            out[o++] = digits[*p >> 4];
            out[o++] = digits[*p & 0x0f];
        }
    }
    out[o] = '\0';
    return FOTA_OK;
}

/* ---- keys ------------------------------------------------------------- */

fota_err fota_tuf_key_json(const fota_privkey *key, json_t **ret_keyobj)
{
    const char *keytype;
    const char *scheme;
    char *pub = NULL;
    json_t *obj;
    fota_err err;

    if (key == NULL || ret_keyobj == NULL)
        return FOTA_E_INVALID;
    err = fota_privkey_public_tuf(key, &keytype, &scheme, &pub);
    if (err != FOTA_OK)
        return err;
    obj = json_pack("{s:s, s:s, s:{s:s}}", "keytype", keytype, "scheme", scheme,
                    "keyval", "public", pub);
    free(pub);
    if (obj == NULL)
        return FOTA_E_NOMEM;
    *ret_keyobj = obj;
    return FOTA_OK;
}

fota_err fota_tuf_keyid(const json_t *keyobj, char ret_keyid[FOTA_TUF_KEYID_HEX_LEN + 1])
{
    uint8_t digest[FOTA_HASH_MAX_LEN];
    char *canon = NULL;
    size_t len = 0;
    fota_err err;

    if (!json_is_object(keyobj) || ret_keyid == NULL)
        return FOTA_E_INVALID;
    err = fota_json_canonical(keyobj, SIGNED_MAX_LEN, &canon, &len);
    if (err != FOTA_OK)
        return err;
    err = fota_hash(FOTA_HASH_SHA256, canon, len, digest);
    free(canon);
    if (err != FOTA_OK)
        return err;
    fota_hex_encode(digest, 32, ret_keyid);
    return FOTA_OK;
}

fota_err fota_tuf_key_parse(const json_t *keyobj, fota_pubkey **ret_key)
{
    const json_t *keytype = json_object_get(keyobj, "keytype");
    const json_t *scheme = json_object_get(keyobj, "scheme");
    const json_t *keyval = json_object_get(keyobj, "keyval");
    const json_t *pub = json_object_get(keyval, "public");

    if (ret_key == NULL)
        return FOTA_E_INVALID;
    if (!json_is_object(keyobj) || !json_is_string(keytype) || !json_is_string(scheme) ||
        !json_is_object(keyval) || !json_is_string(pub))
        return FOTA_E_PARSE;
    return fota_pubkey_from_tuf(json_string_value(keytype), json_string_value(scheme),
                                json_string_value(pub), ret_key);
}

/* ---- signatures ------------------------------------------------------- */

static fota_err canonical_signed(const json_t *envelope, char **ret_buf, size_t *ret_len)
{
    const json_t *signed_part = json_object_get(envelope, "signed");

    if (!json_is_object(signed_part))
        return FOTA_E_PARSE;
    return fota_json_canonical(signed_part, SIGNED_MAX_LEN, ret_buf, ret_len);
}

fota_err fota_tuf_sign(json_t *envelope, const fota_privkey *key, const char *keyid)
{
    json_t *sigs;
    json_t *entry = NULL;
    char *canon = NULL;
    char *hex = NULL;
    uint8_t *sig = NULL;
    size_t canon_len = 0;
    size_t sig_len = 0;
    size_t i;
    fota_err err;

    if (!json_is_object(envelope) || key == NULL || keyid == NULL)
        return FOTA_E_INVALID;
    sigs = json_object_get(envelope, "signatures");
    if (sigs != NULL && !json_is_array(sigs))
        return FOTA_E_PARSE;

    err = canonical_signed(envelope, &canon, &canon_len);
    if (err != FOTA_OK)
        goto out;
    err = fota_sign(key, (const uint8_t *)canon, canon_len, &sig, &sig_len);
    if (err != FOTA_OK)
        goto out;
    hex = malloc(2 * sig_len + 1);
    if (hex == NULL) {
        err = FOTA_E_NOMEM;
        goto out;
    }
    fota_hex_encode(sig, sig_len, hex);
    entry = json_pack("{s:s, s:s}", "keyid", keyid, "sig", hex);
    if (entry == NULL) {
        err = FOTA_E_NOMEM;
        goto out;
    }
    if (sigs == NULL) {
        sigs = json_array();
        if (sigs == NULL || json_object_set_new(envelope, "signatures", sigs) != 0) {
            err = FOTA_E_NOMEM;
            goto out;
        }
    }
    for (i = 0; i < json_array_size(sigs); i++) {
        const char *id = json_string_value(json_object_get(json_array_get(sigs, i), "keyid"));
        if (id != NULL && strcmp(id, keyid) == 0)
            break;
    }
    if (i < json_array_size(sigs) ? json_array_set(sigs, i, entry) != 0
                                  : json_array_append(sigs, entry) != 0)
        err = FOTA_E_NOMEM;
out:
    json_decref(entry);
    free(hex);
    free(sig);
    free(canon);
    return err;
}

/* The signature object carrying keyid, or NULL. */
static const json_t *find_signature(const json_t *sigs, const char *keyid)
{
    for (size_t i = 0; i < json_array_size(sigs); i++) {
        const json_t *s = json_array_get(sigs, i);
        if (strcmp(json_string_value(json_object_get(s, "keyid")), keyid) == 0)
            return s;
    }
    return NULL;
}

/* Signatures must be well formed and carry distinct key ids. */
static fota_err check_signatures(const json_t *sigs)
{
    size_t n = json_array_size(sigs);

    if (!json_is_array(sigs))
        return FOTA_E_PARSE;
    if (n > MAX_SIGNATURES)
        return FOTA_E_TOO_BIG;
    for (size_t i = 0; i < n; i++) {
        const json_t *s = json_array_get(sigs, i);
        const json_t *id = json_object_get(s, "keyid");
        if (!json_is_object(s) || !json_is_string(id) ||
            !json_is_string(json_object_get(s, "sig")))
            return FOTA_E_PARSE;
        for (size_t j = 0; j < i; j++) {
            const json_t *other = json_object_get(json_array_get(sigs, j), "keyid");
            if (json_equal((json_t *)id, (json_t *)other))
                return FOTA_E_DUPLICATE;
        }
    }
    return FOTA_OK;
}

/* 1 when sigobj is a valid signature by key over msg. Malformed hex and
 * failed verification are both simply "not valid". */
static int signature_valid(const fota_pubkey *key, const json_t *sigobj,
                           const char *msg, size_t msg_len)
{
    const json_t *sig = json_object_get(sigobj, "sig");
    size_t hex_len = json_string_length(sig);
    uint8_t *raw;
    int ok = 0;

    if (hex_len == 0 || hex_len > SIG_HEX_MAX || hex_len % 2 != 0)
        return 0;
    raw = malloc(hex_len / 2);
    if (raw == NULL)
        return 0;
    if (fota_hex_decode(json_string_value(sig), hex_len, raw, hex_len / 2) == FOTA_OK &&
        fota_verify(key, (const uint8_t *)msg, msg_len, raw, hex_len / 2) == FOTA_OK)
        ok = 1;
    free(raw);
    return ok;
}

fota_err fota_tuf_verify_role(const json_t *envelope, const json_t *keys,
                              const json_t *role, unsigned *ret_valid)
{
    const json_t *sigs = json_object_get(envelope, "signatures");
    const json_t *keyids = json_object_get(role, "keyids");
    const json_t *threshold = json_object_get(role, "threshold");
    fota_pubkey **counted = NULL;
    char *canon = NULL;
    size_t canon_len = 0;
    size_t n_keyids;
    unsigned valid = 0;
    fota_err err;

    if (ret_valid != NULL)
        *ret_valid = 0;
    if (!json_is_object(envelope) || !json_is_object(keys) || !json_is_array(keyids) ||
        !json_is_integer(threshold) || json_integer_value(threshold) < 1)
        return FOTA_E_PARSE;
    n_keyids = json_array_size(keyids);
    if (n_keyids > MAX_SIGNATURES)
        return FOTA_E_TOO_BIG;
    for (size_t i = 0; i < n_keyids; i++) {
        if (!json_is_string(json_array_get(keyids, i)))
            return FOTA_E_PARSE;
        for (size_t j = 0; j < i; j++)
            if (json_equal(json_array_get(keyids, i), json_array_get(keyids, j)))
                return FOTA_E_DUPLICATE;
    }
    err = check_signatures(sigs);
    if (err != FOTA_OK)
        return err;
    err = canonical_signed(envelope, &canon, &canon_len);
    if (err != FOTA_OK)
        return err;

    counted = calloc(n_keyids ? n_keyids : 1, sizeof(*counted));
    if (counted == NULL) {
        err = FOTA_E_NOMEM;
        goto out;
    }
    for (size_t i = 0; i < n_keyids; i++) {
        const char *keyid = json_string_value(json_array_get(keyids, i));
        const json_t *sigobj = find_signature(sigs, keyid);
        fota_pubkey *key = NULL;
        int seen = 0;

        if (sigobj == NULL)
            continue;
        /* A key the client cannot use (unknown type) simply cannot sign. */
        if (fota_tuf_key_parse(json_object_get(keys, keyid), &key) != FOTA_OK)
            continue;
        if (!signature_valid(key, sigobj, canon, canon_len)) {
            fota_pubkey_free(key);
            continue;
        }
        /* The same key under two key ids counts once toward the threshold. */
        for (unsigned j = 0; j < valid; j++)
            seen |= fota_pubkey_equal(counted[j], key);
        if (seen) {
            fota_pubkey_free(key);
            continue;
        }
        counted[valid++] = key;
    }

    if (ret_valid != NULL)
        *ret_valid = valid;
    err = (json_int_t)valid >= json_integer_value(threshold) ? FOTA_OK : FOTA_E_THRESHOLD;
out:
    if (counted != NULL)
        for (unsigned j = 0; j < valid; j++)
            fota_pubkey_free(counted[j]);
    free(counted);
    free(canon);
    return err;
}

/* ---- time ------------------------------------------------------------- */

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's
 * days_from_civil algorithm). */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
    int64_t era;
    unsigned yoe, doy, doe;

    y -= m <= 2;
    era = (y >= 0 ? y : y - 399) / 400;
    yoe = (unsigned)(y - era * 400);
    doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

static void civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d)
{
    int64_t era;
    unsigned doe, yoe, doy, mp;

    z += 719468;
    era = (z >= 0 ? z : z - 146096) / 146097;
    doe = (unsigned)(z - era * 146097);
    yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    mp = (5 * doy + 2) / 153;
    *d = doy - (153 * mp + 2) / 5 + 1;
    *m = mp < 10 ? mp + 3 : mp - 9;
    *y = (int64_t)yoe + era * 400 + (*m <= 2);
}

static int digits(const char *s, size_t n, unsigned *ret)
{
    unsigned v = 0;

    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return 0;
        v = v * 10 + (unsigned)(s[i] - '0');
    }
    *ret = v;
    return 1;
}

static unsigned days_in_month(unsigned y, unsigned m)
{
    static const unsigned char mdays[12] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
    int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;

    return m == 2 && leap ? 29u : mdays[m - 1];
}

fota_err fota_tuf_parse_time(const char *s, int64_t *ret_time)
{
    unsigned y, mo, d, h, mi, se;

    if (s == NULL || ret_time == NULL)
        return FOTA_E_INVALID;
    /* YYYY-MM-DDTHH:MM:SSZ, nothing more, nothing less */
    if (strlen(s) != 20 || s[4] != '-' || s[7] != '-' || s[10] != 'T' || s[13] != ':' ||
        s[16] != ':' || s[19] != 'Z')
        return FOTA_E_PARSE;
    if (!digits(s, 4, &y) || !digits(s + 5, 2, &mo) || !digits(s + 8, 2, &d) ||
        !digits(s + 11, 2, &h) || !digits(s + 14, 2, &mi) || !digits(s + 17, 2, &se))
        return FOTA_E_PARSE;
    if (y < 1 || mo < 1 || mo > 12 || d < 1 || d > days_in_month(y, mo) || h > 23 ||
        mi > 59 || se > 59)
        return FOTA_E_PARSE;
    *ret_time = days_from_civil(y, mo, d) * 86400 + (int64_t)h * 3600 + mi * 60 + se;
    return FOTA_OK;
}

/* Write v as n decimal digits, most significant first. */
static void put_digits(char *out, unsigned v, int n)
{
    for (int i = n - 1; i >= 0; i--) {
        out[i] = (char)('0' + v % 10);
        v /= 10;
    }
}

void fota_tuf_format_time(int64_t t, char out[21])
{
    /* Outside years 0000..9999 the format cannot express t: clamp to its
     * ends (this also keeps the arithmetic below far from overflow). */
    static const int64_t t_min = -62167219200;   /* 0000-01-01T00:00:00Z */
    static const int64_t t_max = 253402300799;   /* 9999-12-31T23:59:59Z */
    int64_t days, secs, y;
    unsigned m, d;

    if (t < t_min)
        t = t_min;
    if (t > t_max)
        t = t_max;
    days = t >= 0 ? t / 86400 : -((-t + 86399) / 86400);
    secs = t - days * 86400;
    civil_from_days(days, &y, &m, &d);
    memcpy(out, "0000-00-00T00:00:00Z", 21);
    put_digits(out, (unsigned)y, 4);
    put_digits(out + 5, m, 2);
    put_digits(out + 8, d, 2);
    put_digits(out + 11, (unsigned)(secs / 3600), 2);
    put_digits(out + 14, (unsigned)(secs % 3600 / 60), 2);
    put_digits(out + 17, (unsigned)(secs % 60), 2);
}
