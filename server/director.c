/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The Director document, written straight into canonical form and signed.
 * Why not jansson + fota_json_canonical + fota_tuf_sign: the shape is fixed,
 * so a tree, a key sort and a second encoding are pure overhead on the
 * check-in path (measured in docs/device-protocol.md). tests/server/
 * test_director.c checks these bytes against the generic path.
 */
#include <stdlib.h>
#include <string.h>

#include "fota/crypto.h"
#include "fota/tuf.h"
#include "director.h"

/* The signed part: fixed text ~300 bytes + the escaped strings (at most
 * doubled by escaping). */
#define SIGNED_MAX (512 + 2 * FOTA_DIRECTOR_NAME_MAX + 4 * FOTA_DIRECTOR_SHORT_MAX + 256)
#define SIG_HEX_MAX 1024                 /* RSA-4096 fits: 512 bytes */

struct wbuf {
    char *p;
    size_t len, cap;
    fota_err failed;                     /* the first failure, FOTA_OK while none */
};

static void fail(struct wbuf *w, fota_err err)
{
    if (w->failed == FOTA_OK)
        w->failed = err;
}

static void put(struct wbuf *w, const char *s, size_t n)
{
    if (w->failed != FOTA_OK)
        return;
    if (n > w->cap - w->len) {
        fail(w, FOTA_E_TOO_BIG);
        return;
    }
    memcpy(w->p + w->len, s, n);
    w->len += n;
}

static void put_lit(struct wbuf *w, const char *s)
{
    put(w, s, strlen(s));
}

/* A canonical JSON string: '"' and '\' escaped, nothing else. Control
 * characters cannot appear in valid JSON unescaped, and the canonical form
 * has no other escape, so they are refused. */
static void put_str(struct wbuf *w, const char *s, size_t cap)
{
    size_t n = strnlen(s, cap + 1);

    if (n > cap) {
        fail(w, FOTA_E_TOO_BIG);
        return;
    }
    put(w, "\"", 1);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20) {
            fail(w, FOTA_E_INVALID);
            return;
        }
        if (c == '"' || c == '\\')
            put(w, "\\", 1);
        put(w, s + i, 1);
    }
    put(w, "\"", 1);
}

static void put_u64(struct wbuf *w, uint64_t v)
{
    char tmp[21];
    size_t i = sizeof(tmp);

    do {
        tmp[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v != 0);
    put(w, tmp + i, sizeof(tmp) - i);
}

static void put_time(struct wbuf *w, int64_t t)
{
    char iso[21];

    fota_tuf_format_time(t, iso);
    put(w, "\"", 1);
    put(w, iso, 20);
    put(w, "\"", 1);
}

/* Keys in byte order: _type action device expires issued nonce rollout
 * spec_version target; and in target: hashes length name security_counter
 * version. */
static void write_signed(struct wbuf *w, const struct fota_director_doc *doc)
{
    const struct fota_director_target *t = doc->target;

    put_lit(w, "{\"_type\":\"director\",\"action\":");
    put_lit(w, t != NULL ? "\"install\"" : "\"stay\"");
    put_lit(w, ",\"device\":");
    put_str(w, doc->device_id, FOTA_TUF_KEYID_HEX_LEN);
    put_lit(w, ",\"expires\":");
    put_time(w, doc->expires);
    put_lit(w, ",\"issued\":");
    put_time(w, doc->issued);
    put_lit(w, ",\"nonce\":");
    put_str(w, doc->nonce, FOTA_DIRECTOR_SHORT_MAX);
    put_lit(w, ",\"reports\":");
    put_u64(w, doc->reports);
    if (t != NULL) {
        put_lit(w, ",\"rollout\":");
        put_str(w, t->rollout, FOTA_DIRECTOR_SHORT_MAX);
    }
    put_lit(w, ",\"spec_version\":\"1.0\"");
    if (t != NULL) {
        put_lit(w, ",\"target\":{\"hashes\":{\"sha256\":");
        put_str(w, t->sha256, 64);
        put_lit(w, "},\"length\":");
        put_u64(w, t->length);
        put_lit(w, ",\"name\":");
        put_str(w, t->name, FOTA_DIRECTOR_NAME_MAX);
        put_lit(w, ",\"security_counter\":");
        put_u64(w, t->security_counter);
        put_lit(w, ",\"version\":");
        put_str(w, t->version, FOTA_DIRECTOR_SHORT_MAX);
        put_lit(w, "}");
    }
    put_lit(w, "}");
}

static int doc_complete(const struct fota_director_doc *doc)
{
    const struct fota_director_target *t = doc->target;

    if (doc->device_id == NULL || doc->nonce == NULL || doc->issued < 0 || doc->expires < 0)
        return 0;
    if (t != NULL && (t->name == NULL || t->version == NULL || t->rollout == NULL))
        return 0;
    return 1;
}

fota_err fota_director_build(const struct fota_server_key *key,
                             const struct fota_director_doc *doc,
                             char **ret_buf, size_t *ret_len)
{
    fota_err err = FOTA_E_INVALID;
    char signed_buf[SIGNED_MAX];
    struct wbuf s = { signed_buf, 0, sizeof(signed_buf), FOTA_OK };
    struct wbuf e = { NULL, 0, 0, FOTA_OK };
    uint8_t *sig = NULL;
    size_t sig_len = 0;
    char sig_hex[SIG_HEX_MAX + 1];

    if (key == NULL || key->key == NULL || doc == NULL || ret_buf == NULL || ret_len == NULL)
        return FOTA_E_INVALID;
    if (!doc_complete(doc))
        return FOTA_E_INVALID;
    write_signed(&s, doc);
    err = s.failed;
    if (err != FOTA_OK)
        goto out;
    err = fota_server_key_sign(key, (const uint8_t *)signed_buf, s.len, &sig, &sig_len);
    if (err != FOTA_OK)
        goto out;
    if (2 * sig_len > SIG_HEX_MAX) {
        err = FOTA_E_TOO_BIG;
        goto out;
    }
    fota_hex_encode(sig, sig_len, sig_hex);

    e.cap = 64 + FOTA_TUF_KEYID_HEX_LEN + 2 * sig_len + s.len;
    e.p = malloc(e.cap + 1);
    if (e.p == NULL) {
        err = FOTA_E_NOMEM;
        goto out;
    }
    put_lit(&e, "{\"signatures\":[{\"keyid\":\"");
    put(&e, key->keyid, strnlen(key->keyid, FOTA_TUF_KEYID_HEX_LEN));
    put_lit(&e, "\",\"sig\":\"");
    put(&e, sig_hex, 2 * sig_len);
    put_lit(&e, "\"}],\"signed\":");
    put(&e, signed_buf, s.len);
    put_lit(&e, "}");
    err = e.failed;
    if (err != FOTA_OK)
        goto out;
    e.p[e.len] = '\0';
    *ret_buf = e.p;
    *ret_len = e.len;
    e.p = NULL;
    err = FOTA_OK;
out:
    free(e.p);
    free(sig);
    return err;
}
