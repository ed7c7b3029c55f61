/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Image uploads and release publishing (releases.h). The server checks
 * everything an operator sends against the trusted root before a file
 * changes: a deploy token alone cannot publish anything that the offline
 * targets key did not sign.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "api.h"
#include "fota/json.h"
#include "fota/tuf.h"
#include "fota/tuf_repo.h"
#include "fota_posix.h"
#include "log.h"
#include "releases.h"
#include "server.h"
#include "store.h"
#include "store_audit.h"
#include "store_releases.h"
#include "tuf_online.h"

#define IMAGES_PREFIX "/api/v1/images/"
#define RELEASES_PATH "/api/v1/releases"

/* A target path the server stores: at most 255 bytes, "/"-separated
 * components none of which is empty, "." or "..", no leading "/", no
 * control character or backslash, and a basename short enough that
 * "<64 hex>.<basename>" is one file name. */
#define TARGET_PATH_MAX 255
#define TARGET_BASENAME_MAX 180

static int valid_target_path(const char *name)
{
    size_t len = strlen(name);
    const char *c = name;

    if (len == 0 || len > TARGET_PATH_MAX)
        return 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)name[i];
        if (ch < 0x20 || ch == 0x7f || ch == '\\')
            return 0;
    }
    for (;;) {
        const char *slash = strchr(c, '/');
        size_t n = slash != NULL ? (size_t)(slash - c) : strlen(c);

        if (n == 0 || (n == 1 && c[0] == '.') || (n == 2 && c[0] == '.' && c[1] == '.'))
            return 0;
        if (slash == NULL)
            return n <= TARGET_BASENAME_MAX;
        c = slash + 1;
    }
}

static int hex_digit(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Percent-decode src into out (size bytes). -1 for a malformed escape, an
 * encoded NUL, or a result that does not fit. */
static int percent_decode(const char *src, char *out, size_t size)
{
    size_t o = 0;

    for (const char *p = src; *p != '\0'; p++) {
        char ch = *p;

        if (ch == '%') {
            int hi = hex_digit(p[1]);
            int lo = hi >= 0 ? hex_digit(p[2]) : -1;
            if (lo < 0 || (hi == 0 && lo == 0))
                return -1;
            ch = (char)(hi * 16 + lo);
            p += 2;
        }
        if (o + 1 >= size)
            return -1;
        out[o++] = ch;
    }
    out[o] = '\0';
    return 0;
}

static int is_lower_hex(const char *s, size_t n)
{
    if (s == NULL || strlen(s) != n)
        return 0;
    for (size_t i = 0; i < n; i++) {
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return 0;
    }
    return 1;
}

/* targets/<dir of name> and the stored file name "<sha256>.<basename>". */
static int target_dir(const struct fota_server *srv, const char *name, char *out, size_t size)
{
    const char *slash = strrchr(name, '/');
    int n = slash != NULL ? snprintf(out, size, "%s/targets/%.*s", srv->repo_dir,
                                     (int)(slash - name), name)
                          : snprintf(out, size, "%s/targets", srv->repo_dir);

    return n < 0 || (size_t)n >= size ? -1 : 0;
}

static const char *basename_of(const char *name)
{
    const char *slash = strrchr(name, '/');

    return slash != NULL ? slash + 1 : name;
}

static void audit(struct fota_store *st, const char *actor, const char *action,
                  const char *object, json_t *detail)
{
    struct fota_store_audit a;
    char *text = detail != NULL ? json_dumps(detail, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    enum fota_store_err se;

    memset(&a, 0, sizeof a);
    a.time = fota_server_now();
    snprintf(a.actor, sizeof a.actor, "%s", actor);
    snprintf(a.action, sizeof a.action, "%s", action);
    snprintf(a.object, sizeof a.object, "%s", object);
    a.detail_json = text;
    se = st != NULL ? fota_store_audit_append(st, &a, NULL) : FOTA_STORE_ERROR;
    if (se != FOTA_STORE_OK)
        fota_log(FOTA_LOG_WARN, "audit", "action=%s error=%s", action, fota_store_strerror(se));
    free(text);
}

/* ---- PUT /api/v1/images/<target path> ------------------------------------ */

struct upload {
    struct fota_server *srv;
    struct fota_store *st;
    char actor[FOTA_STORE_NAME_MAX + 1];
    char name[TARGET_PATH_MAX + 1];
    char dir[1024];
    struct fota_posix_atomic file;
    fota_hash_ctx h256, h512;
    int hashing;
    uint64_t length;
};

static void upload_free(struct upload *u)
{
    if (u == NULL)
        return;
    if (u->hashing) {
        fota_hash_abort(&u->h256);
        fota_hash_abort(&u->h512);
    }
    fota_posix_atomic_abort(&u->file);
    free(u);
}

/* "application/octet-stream", maybe with parameters. */
static int is_octet_stream(const char *ctype)
{
    static const char type[] = "application/octet-stream";
    size_t n = sizeof type - 1;

    return strncmp(ctype, type, n) == 0 &&
           (ctype[n] == '\0' || ctype[n] == ';' || ctype[n] == ' ');
}

static void *upload_begin(struct fota_req *req, struct fota_resp *resp)
{
    struct fota_server *srv = req->srv;
    const char *ctype = fota_req_header(req, "Content-Type");
    const char *clen = fota_req_header(req, "Content-Length");
    struct upload *u = NULL;
    char actor[FOTA_STORE_NAME_MAX + 1];
    char plain[1300];
    fota_err err;

    if (fota_api_auth(req, resp, "deploy", actor) != 0)
        return NULL;
    if (strncmp(req->path, IMAGES_PREFIX, strlen(IMAGES_PREFIX)) != 0) {
        fota_resp_error(resp, 404, "not_found", "no such resource");
        return NULL;
    }
    if (ctype != NULL && !is_octet_stream(ctype)) {
        fota_resp_error(resp, 415, "unsupported_media_type",
                        "an image is sent as application/octet-stream");
        return NULL;
    }
    if (clen != NULL) {
        char *end = NULL;
        unsigned long long n;

        errno = 0;
        n = strtoull(clen, &end, 10);
        if (errno == 0 && end != clen && *end == '\0' && n > srv->cfg.max_image) {
            fota_resp_error(resp, 413, "too_large", "an image is at most %llu bytes",
                            (unsigned long long)srv->cfg.max_image);
            return NULL;
        }
    }
    u = calloc(1, sizeof *u);
    if (u == NULL) {
        fota_resp_error(resp, 500, "internal", "out of memory");
        return NULL;
    }
    u->file.fd = -1;
    u->file.dir_fd = -1;
    u->srv = srv;
    u->st = fota_req_store(req);
    snprintf(u->actor, sizeof u->actor, "%s", actor);
    if (percent_decode(req->path + strlen(IMAGES_PREFIX), u->name, sizeof u->name) != 0 ||
        !valid_target_path(u->name)) {
        fota_resp_error(resp, 400, "bad_target",
                        "the target path must be 1 to %d bytes of non-empty components, "
                        "none '.' or '..', with no control characters",
                        TARGET_PATH_MAX);
        goto fail;
    }
    if (target_dir(srv, u->name, u->dir, sizeof u->dir) != 0 ||
        snprintf(plain, sizeof plain, "%s/%s", u->dir, basename_of(u->name)) >=
            (int)sizeof plain) {
        fota_resp_error(resp, 400, "bad_target", "target path too long");
        goto fail;
    }
    err = fota_posix_mkdirs(u->dir);
    if (err == FOTA_OK)
        err = fota_posix_atomic_open_path(&u->file, plain, 0644, 0);
    if (err != FOTA_OK) {
        fota_log(FOTA_LOG_ERROR, "image-upload", "target=%s error=\"%s\"", u->name,
                 err == FOTA_E_IO ? strerror(errno) : fota_strerror(err));
        fota_resp_error(resp, err == FOTA_E_IO && errno == ENOTDIR ? 409 : 500,
                        err == FOTA_E_IO && errno == ENOTDIR ? "target_conflict" : "internal",
                        "cannot store the image");
        goto fail;
    }
    if (fota_hash_init(&u->h256, FOTA_HASH_SHA256) != FOTA_OK)
        goto crypto;
    if (fota_hash_init(&u->h512, FOTA_HASH_SHA512) != FOTA_OK) {
        fota_hash_abort(&u->h256);
        goto crypto;
    }
    u->hashing = 1;
    return u;
crypto:
    fota_resp_error(resp, 500, "internal", "hashing failed");
fail:
    upload_free(u);
    return NULL;
}

static int upload_data(void *ctx, const uint8_t *buf, size_t len, struct fota_resp *resp)
{
    struct upload *u = ctx;

    if (len > u->srv->cfg.max_image - u->length) {
        fota_resp_error(resp, 413, "too_large", "an image is at most %llu bytes",
                        (unsigned long long)u->srv->cfg.max_image);
        return -1;
    }
    u->length += len;
    if (fota_hash_update(&u->h256, buf, len) != FOTA_OK ||
        fota_hash_update(&u->h512, buf, len) != FOTA_OK) {
        fota_resp_error(resp, 500, "internal", "hashing failed");
        return -1;
    }
    if (fota_posix_atomic_write(&u->file, buf, len) != FOTA_OK) {
        fota_log(FOTA_LOG_ERROR, "image-upload", "target=%s error=\"%s\"", u->name,
                 strerror(errno));
        fota_resp_error(resp, 500, "internal", "cannot store the image");
        return -1;
    }
    return 0;
}

static void upload_end(void *ctx, struct fota_req *req, struct fota_resp *resp)
{
    struct upload *u = ctx;
    uint8_t d256[FOTA_HASH_MAX_LEN], d512[FOTA_HASH_MAX_LEN];
    char sha256[65], sha512[129], stored[TARGET_PATH_MAX + 70], object[300];
    fota_err e1, e2, err;
    json_t *body;

    (void)req;
    u->hashing = 0;
    e1 = fota_hash_final(&u->h256, d256);
    e2 = fota_hash_final(&u->h512, d512);
    if (e1 != FOTA_OK || e2 != FOTA_OK) {
        fota_resp_error(resp, 500, "internal", "hashing failed");
        goto out;
    }
    fota_hex_encode(d256, 32, sha256);
    fota_hex_encode(d512, 64, sha512);
    snprintf(stored, sizeof stored, "%s.%s", sha256, basename_of(u->name));
    /* Named after its content: replacing an identical file changes nothing
     * a client can see. */
    err = fota_posix_atomic_commit_as(&u->file, stored);
    if (err != FOTA_OK) {
        fota_log(FOTA_LOG_ERROR, "image-upload", "target=%s error=\"%s\"", u->name,
                 err == FOTA_E_IO ? strerror(errno) : fota_strerror(err));
        fota_resp_error(resp, 500, "internal", "cannot store the image");
        goto out;
    }
    {
        const char *slash = strrchr(u->name, '/');
        char path[600];

        snprintf(path, sizeof path, "targets/%.*s%s", slash != NULL ? (int)(slash - u->name + 1) : 0,
                 u->name, stored);
        body = json_pack("{s:s,s:I,s:{s:s,s:s},s:s}", "name", u->name, "length",
                         (json_int_t)u->length, "hashes", "sha256", sha256, "sha512", sha512,
                         "path", path);
    }
    snprintf(object, sizeof object, "image/%s", u->name);
    {
        json_t *detail = json_pack("{s:I,s:s}", "length", (json_int_t)u->length, "sha256",
                                   sha256);
        audit(u->st, u->actor, "image.upload", object, detail);
        json_decref(detail);
    }
    snprintf(resp->log_detail, sizeof resp->log_detail, "target=%.160s length=%llu sha256=%.16s",
             u->name, (unsigned long long)u->length, sha256);
    resp->log_event = "image-upload";
    if (body == NULL)
        fota_resp_error(resp, 500, "internal", "out of memory");
    else
        fota_resp_json(resp, 201, body);
out:
    upload_free(u);
}

static void upload_abort(void *ctx)
{
    upload_free(ctx);
}

const struct fota_stream_handler fota_image_upload = {
    .begin = upload_begin,
    .data = upload_data,
    .end = upload_end,
    .abort = upload_abort,
};

/* ---- releases as JSON ---------------------------------------------------- */

static json_t *release_json(const struct fota_store_release *r)
{
    json_t *hwids = json_array();
    char created[21];

    for (size_t i = 0; hwids != NULL && i < r->hardware_id_count; i++)
        json_array_append_new(hwids, json_string(r->hardware_ids[i]));
    fota_tuf_format_time(r->created, created);
    return json_pack("{s:s,s:s,s:I,s:{s:s},s:s,s:I,s:o,s:I,s:s}", "id", r->id, "target",
                     r->target_name, "length", (json_int_t)r->length, "hashes", "sha256",
                     r->sha256, "version", r->version, "security_counter",
                     (json_int_t)r->security_counter, "hardware_ids", hwids, "targets_version",
                     (json_int_t)r->targets_version, "created", created);
}

static void releases_list(struct fota_req *req, struct fota_resp *resp)
{
    const char *after = fota_req_query(req, "after");
    const char *limit_s = fota_req_query(req, "limit");
    struct fota_store_release *items = NULL;
    unsigned long limit = 100;
    size_t n = 0;
    int more = 0;
    enum fota_store_err se;
    json_t *list, *body;

    if (limit_s != NULL) {
        char *end = NULL;

        errno = 0;
        limit = strtoul(limit_s, &end, 10);
        if (errno != 0 || end == limit_s || *end != '\0' || limit < 1 ||
            limit > FOTA_STORE_PAGE_MAX) {
            fota_resp_error(resp, 400, "bad_request", "limit must be 1 to %d",
                            FOTA_STORE_PAGE_MAX);
            return;
        }
    }
    if (after != NULL && strlen(after) > FOTA_STORE_ID_MAX) {
        fota_resp_error(resp, 400, "bad_request", "after: not a release id");
        return;
    }
    se = fota_store_release_list(fota_req_store(req), after, (unsigned)limit, &items, &n, &more);
    if (se != FOTA_STORE_OK) {
        fota_resp_store_error(resp, se);
        return;
    }
    list = json_array();
    for (size_t i = 0; list != NULL && i < n; i++)
        json_array_append_new(list, release_json(&items[i]));
    body = json_pack("{s:o,s:o}", "releases", list, "next",
                     more && n > 0 ? json_string(items[n - 1].id) : json_null());
    free(items);
    if (body == NULL)
        fota_resp_error(resp, 500, "internal", "out of memory");
    else
        fota_resp_json(resp, 200, body);
}

static void releases_get(struct fota_req *req, struct fota_resp *resp, const char *id)
{
    struct fota_store_release r;
    enum fota_store_err se;
    json_t *body;

    if (strlen(id) == 0 || strlen(id) > FOTA_STORE_ID_MAX || strchr(id, '/') != NULL) {
        fota_resp_error(resp, 404, "not_found", "no such release");
        return;
    }
    se = fota_store_release_get(fota_req_store(req), id, &r);
    if (se == FOTA_STORE_NOT_FOUND) {
        fota_resp_error(resp, 404, "not_found", "no such release");
        return;
    }
    if (se != FOTA_STORE_OK) {
        fota_resp_store_error(resp, se);
        return;
    }
    body = release_json(&r);
    if (body == NULL)
        fota_resp_error(resp, 500, "internal", "out of memory");
    else
        fota_resp_json(resp, 200, body);
}

/* ---- POST /api/v1/releases ----------------------------------------------- */

/* One target of the new targets metadata, checked. */
struct target_check {
    const char *name;
    const json_t *entry;
    char sha256[65];
    uint64_t length;
    int is_release;
    struct fota_store_release rel;
};

struct publish {
    struct fota_server *srv;
    struct fota_resp *resp;
    json_t *env;            /* the targets envelope (borrowed from the body) */
    struct target_check *targets;
    size_t ntargets;
};

/* Shape of one target entry and of its custom release fields. Returns 0 or
 * -1 with resp set. */
static int check_entry(struct publish *p, struct target_check *t)
{
    const json_t *length = json_object_get(t->entry, "length");
    const json_t *hashes = json_object_get(t->entry, "hashes");
    const json_t *custom = json_object_get(t->entry, "custom");
    const char *sha256 = json_string_value(json_object_get(hashes, "sha256"));
    const json_t *hwids, *version, *counter, *v;
    const char *alg;
    size_t i;

    if (!valid_target_path(t->name)) {
        fota_resp_error(p->resp, 400, "bad_target",
                        "target '%.200s': not a path the server stores (1 to %d bytes, "
                        "non-empty components, none '.' or '..', no control characters)",
                        t->name, TARGET_PATH_MAX);
        return -1;
    }
    if (!json_is_object(t->entry) || !json_is_integer(length) ||
        json_integer_value(length) < 0 || !json_is_object(hashes)) {
        fota_resp_error(p->resp, 400, "bad_metadata", "target '%s': needs length and hashes",
                        t->name);
        return -1;
    }
    if (!is_lower_hex(sha256, 64)) {
        fota_resp_error(p->resp, 400, "bad_target",
                        "target '%s': needs a sha256 hash (64 lower-case hex digits)", t->name);
        return -1;
    }
    json_object_foreach((json_t *)hashes, alg, v) {
        fota_hash_alg a;
        const char *hex = json_string_value(v);

        if (fota_hash_alg_from_name(alg, &a) != FOTA_OK ||
            !is_lower_hex(hex, 2 * fota_hash_len(a))) {
            fota_resp_error(p->resp, 400, "bad_target",
                            "target '%s': hash '%.32s' is not a sha256 or sha512 in hex",
                            t->name, alg);
            return -1;
        }
    }
    memcpy(t->sha256, sha256, 65);
    t->length = (uint64_t)json_integer_value(length);
    if (custom != NULL && !json_is_object(custom)) {
        fota_resp_error(p->resp, 400, "bad_custom", "target '%s': custom is not an object",
                        t->name);
        return -1;
    }
    hwids = json_object_get(custom, "hardware_ids");
    version = json_object_get(custom, "version");
    counter = json_object_get(custom, "security_counter");
    if (hwids == NULL && version == NULL && counter == NULL)
        return 0;
    /* A release must be complete: a half-filled custom is an operator's
     * mistake better caught before it is published. */
    if (!json_is_array(hwids) || json_array_size(hwids) < 1 ||
        json_array_size(hwids) > FOTA_STORE_RELEASE_HWIDS_MAX || !json_is_string(version) ||
        json_string_length(version) < 1 || json_string_length(version) > FOTA_STORE_VERSION_MAX ||
        !json_is_integer(counter) || json_integer_value(counter) < 0) {
        fota_resp_error(p->resp, 400, "bad_custom",
                        "target '%s': custom needs hardware_ids (1 to %d strings), version (a "
                        "string of at most %d bytes) and security_counter (an integer >= 0) "
                        "together",
                        t->name, FOTA_STORE_RELEASE_HWIDS_MAX, FOTA_STORE_VERSION_MAX);
        return -1;
    }
    memset(&t->rel, 0, sizeof t->rel);
    json_array_foreach(hwids, i, v) {
        const char *s = json_string_value(v);
        size_t n = json_string_length(v);

        if (s == NULL || n < 1 || n > FOTA_STORE_HWID_MAX || strlen(s) != n) {
            fota_resp_error(p->resp, 400, "bad_custom",
                            "target '%s': hardware id %zu is not a string of 1 to %d bytes",
                            t->name, i, FOTA_STORE_HWID_MAX);
            return -1;
        }
        for (size_t j = 0; j < i; j++) {
            if (strcmp(t->rel.hardware_ids[j], s) == 0) {
                fota_resp_error(p->resp, 400, "bad_custom",
                                "target '%s': hardware id '%s' listed twice", t->name, s);
                return -1;
            }
        }
        memcpy(t->rel.hardware_ids[i], s, n + 1);
    }
    if (strlen(json_string_value(version)) != json_string_length(version)) {
        fota_resp_error(p->resp, 400, "bad_custom", "target '%s': bad version", t->name);
        return -1;
    }
    t->rel.hardware_id_count = json_array_size(hwids);
    snprintf(t->rel.version, sizeof t->rel.version, "%s", json_string_value(version));
    t->rel.security_counter = json_integer_value(counter);
    snprintf(t->rel.target_name, sizeof t->rel.target_name, "%s", t->name);
    memcpy(t->rel.sha256, t->sha256, 65);
    t->rel.length = (int64_t)t->length;
    t->is_release = 1;
    return 0;
}

/* A release id: the first 16 hex digits of SHA-256(name "\n" sha256), so
 * the same image under the same name is the same release wherever and
 * however often it is published. */
static void release_id(const char *name, const char *sha256, char out[17])
{
    fota_hash_ctx h;
    uint8_t d[FOTA_HASH_MAX_LEN];

    memset(d, 0, sizeof d);
    if (fota_hash_init(&h, FOTA_HASH_SHA256) == FOTA_OK) {
        fota_hash_update(&h, name, strlen(name));
        fota_hash_update(&h, "\n", 1);
        fota_hash_update(&h, sha256, 64);
        fota_hash_final(&h, d);
    }
    fota_hex_encode(d, 8, out);
}

/* Hash the stored file of a target and compare with every listed hash.
 * Returns 0 or -1 with resp set. */
static int check_file(struct publish *p, const struct target_check *t, int hash_it)
{
    char dir[1024], path[1400];
    const json_t *hashes = json_object_get(t->entry, "hashes");
    fota_hash_ctx ctx[2];
    const char *alg_names[2] = {NULL, NULL};
    size_t nctx = 0;
    uint8_t buf[65536];
    struct stat st;
    const char *alg;
    const json_t *v;
    uint64_t seen = 0;
    int fd = -1, rc = -1;

    if (target_dir(p->srv, t->name, dir, sizeof dir) != 0 ||
        snprintf(path, sizeof path, "%s/%s.%s", dir, t->sha256, basename_of(t->name)) >=
            (int)sizeof path) {
        fota_resp_error(p->resp, 400, "bad_target", "target '%s': path too long", t->name);
        return -1;
    }
    fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0 || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        fota_resp_error(p->resp, 409, "target_missing",
                        "target '%s': no uploaded image with sha256 %s; upload it first with "
                        "PUT /api/v1/images/%s",
                        t->name, t->sha256, t->name);
        goto out;
    }
    if ((uint64_t)st.st_size != t->length) {
        fota_resp_error(p->resp, 409, "target_length",
                        "target '%s': the uploaded image has %lld bytes, the metadata says %llu",
                        t->name, (long long)st.st_size, (unsigned long long)t->length);
        goto out;
    }
    if (!hash_it) {
        rc = 0;
        goto out;
    }
    json_object_foreach((json_t *)hashes, alg, v) {
        fota_hash_alg a;

        if (nctx == 2 || fota_hash_alg_from_name(alg, &a) != FOTA_OK ||
            fota_hash_init(&ctx[nctx], a) != FOTA_OK) {
            fota_resp_error(p->resp, 500, "internal", "hashing failed");
            goto out;
        }
        alg_names[nctx++] = alg;
    }
    for (;;) {
        ssize_t n = read(fd, buf, sizeof buf);

        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            fota_resp_error(p->resp, 500, "internal", "cannot read the stored image");
            goto out;
        }
        if (n == 0)
            break;
        seen += (uint64_t)n;
        for (size_t i = 0; i < nctx; i++)
            fota_hash_update(&ctx[i], buf, (size_t)n);
    }
    rc = seen == t->length ? 0 : -1;
    if (rc != 0)
        fota_resp_error(p->resp, 409, "target_length", "target '%s': the image changed size",
                        t->name);
    for (size_t i = 0; i < nctx; i++) {
        uint8_t d[FOTA_HASH_MAX_LEN], want[FOTA_HASH_MAX_LEN];
        fota_hash_alg a;
        const char *hex = json_string_value(json_object_get(hashes, alg_names[i]));

        fota_hash_alg_from_name(alg_names[i], &a);
        if (fota_hash_final(&ctx[i], d) != FOTA_OK ||
            fota_hex_decode(hex, strlen(hex), want, fota_hash_len(a)) != FOTA_OK ||
            !fota_ct_equal(d, want, fota_hash_len(a))) {
            if (rc == 0)
                fota_resp_error(p->resp, 409, "target_hash",
                                "target '%s': the uploaded image's %s differs from the metadata",
                                t->name, alg_names[i]);
            rc = -1;
        }
    }
    nctx = 0;
out:
    for (size_t i = 0; i < nctx; i++)
        fota_hash_abort(&ctx[i]);
    if (fd >= 0)
        close(fd);
    return rc;
}

/* Without consistent snapshots clients fetch targets/<name> itself: link it
 * to the stored file (a hard link made under a temp name and renamed, so the
 * plain name always holds a complete image). */
static int link_plain_name(struct publish *p, const struct target_check *t)
{
    char dir[1024], hashed[1400], plain[1400], tmp[1450];
    int rc = -1;

    if (target_dir(p->srv, t->name, dir, sizeof dir) != 0 ||
        snprintf(hashed, sizeof hashed, "%s/%s.%s", dir, t->sha256, basename_of(t->name)) >=
            (int)sizeof hashed ||
        snprintf(plain, sizeof plain, "%s/%s", dir, basename_of(t->name)) >=
            (int)sizeof plain ||
        snprintf(tmp, sizeof tmp, "%s/.fota+tmp.link.%ld", dir, (long)getpid()) >=
            (int)sizeof tmp)
        goto out;
    unlink(tmp);
    if (link(hashed, tmp) != 0)
        goto out;
    if (rename(tmp, plain) != 0) {
        unlink(tmp);
        goto out;
    }
    rc = 0;
out:
    if (rc != 0) {
        fota_log(FOTA_LOG_ERROR, "release-publish", "target=%s error=\"cannot link: %s\"",
                 t->name, strerror(errno));
        fota_resp_error(p->resp, 500, "internal", "cannot place target '%s'", t->name);
    }
    return rc;
}

static void publish_locked(struct publish *p, struct fota_req *req, const char *actor)
{
    struct fota_resp *resp = p->resp;
    struct fota_server *srv = p->srv;
    struct fota_store *st = fota_req_store(req);
    const json_t *signed_part = json_object_get(p->env, "signed");
    const json_t *new_delegations = json_object_get(signed_part, "delegations");
    json_t *root = NULL, *cur = NULL, *cur_snap = NULL, *released = NULL, *detail = NULL,
           *body = NULL;
    const json_t *root_signed, *cur_targets, *d;
    uint8_t *buf = NULL;
    size_t len = 0;
    char *bytes = NULL;
    size_t bytes_len = 0;
    unsigned valid = 0;
    int64_t version = fota_tuf_repo_version(p->env), cur_version, expires = 0, snap_v = 0,
            ts_v = 0;
    int in_tx = 0, consistent;
    enum fota_store_err se;
    char object[64];
    fota_err err;
    size_t i;

    err = fota_tuf_online_root(srv, &root);
    if (err != FOTA_OK) {
        fota_resp_error(resp, 500, "internal", "cannot read the served root: %s",
                        fota_strerror(err));
        goto out;
    }
    root_signed = json_object_get(root, "signed");
    consistent = json_is_true(json_object_get(root_signed, "consistent_snapshot"));
    err = fota_tuf_verify_role(p->env, json_object_get(root_signed, "keys"),
                               json_object_get(json_object_get(root_signed, "roles"), "targets"),
                               &valid);
    if (err != FOTA_OK) {
        fota_resp_error(
            resp, 400, "bad_signature",
            "targets v%lld: %u of %lld signatures by the targets keys of root v%lld (%s)",
            (long long)version, valid,
            (long long)json_integer_value(json_object_get(
                json_object_get(json_object_get(root_signed, "roles"), "targets"), "threshold")),
            (long long)fota_tuf_repo_version(root), fota_strerror(err));
        goto out;
    }
    if (fota_tuf_parse_time(json_string_value(json_object_get(signed_part, "expires")),
                            &expires) != FOTA_OK ||
        expires <= fota_server_now()) {
        fota_resp_error(resp, 400, "expired", "targets v%lld expired at %s", (long long)version,
                        json_string_value(json_object_get(signed_part, "expires")));
        goto out;
    }

    /* What is served now. */
    err = fota_tuf_online_read(srv, "targets.json", &buf, &len);
    if (err == FOTA_OK)
        err = fota_json_parse(buf, len, FOTA_TUF_REPO_MAX_METADATA, FOTA_JSON_MAX_DEPTH, &cur);
    free(buf);
    buf = NULL;
    if (err == FOTA_OK)
        err = fota_tuf_online_read(srv, "snapshot.json", &buf, &len);
    if (err == FOTA_OK)
        err = fota_json_parse(buf, len, FOTA_TUF_REPO_MAX_METADATA, FOTA_JSON_MAX_DEPTH,
                              &cur_snap);
    if (err != FOTA_OK) {
        fota_resp_error(resp, 500, "internal", "cannot read the served metadata: %s",
                        fota_strerror(err));
        goto out;
    }
    cur_version = fota_tuf_repo_version(cur);
    if (version <= cur_version) {
        fota_resp_error(resp, 409, "version",
                        "targets version %lld is not above the published version %lld",
                        (long long)version, (long long)cur_version);
        goto out;
    }
    /* Delegated roles are published with their delegator's snapshot entry
     * in place: a delegation to a role the snapshot does not list would
     * leave clients unable to search it. */
    json_array_foreach(json_object_get(new_delegations, "roles"), i, d) {
        const char *role = json_string_value(json_object_get(d, "name"));
        char key[300];

        if (role == NULL || snprintf(key, sizeof key, "%s.json", role) >= (int)sizeof key ||
            json_object_get(json_object_get(json_object_get(cur_snap, "signed"), "meta"), key) ==
                NULL) {
            fota_resp_error(resp, 409, "unknown_role",
                            "targets delegates to '%.200s', which is not published",
                            role != NULL ? role : "?");
            goto out;
        }
    }

    /* Every target's image must be here, as the metadata describes it. An
     * entry identical to the published one was checked when it was
     * published: only its size is looked at again. */
    cur_targets = json_object_get(json_object_get(cur, "signed"), "targets");
    for (i = 0; i < p->ntargets; i++) {
        const json_t *old = json_object_get(cur_targets, p->targets[i].name);
        int same = old != NULL && json_equal((json_t *)old, (json_t *)p->targets[i].entry);

        if (check_file(p, &p->targets[i], !same) != 0)
            goto out;
    }

    err = fota_tuf_repo_bytes(p->env, FOTA_TUF_REPO_MAX_METADATA, &bytes, &bytes_len);
    if (err != FOTA_OK) {
        fota_resp_error(resp, err == FOTA_E_TOO_BIG ? 413 : 500,
                        err == FOTA_E_TOO_BIG ? "too_large" : "internal", "targets: %s",
                        fota_strerror(err));
        goto out;
    }

    /* Releases and the audit entry are committed only once the files are
     * written; the files go first so that a failed write leaves no release
     * pointing at metadata that is not served. */
    released = json_array();
    if (released == NULL || st == NULL) {
        fota_resp_error(resp, 500, "internal", st == NULL ? "no database" : "out of memory");
        goto out;
    }
    se = fota_store_begin(st);
    if (se != FOTA_STORE_OK) {
        fota_resp_store_error(resp, se);
        goto out;
    }
    in_tx = 1;
    for (i = 0; i < p->ntargets; i++) {
        struct target_check *t = &p->targets[i];
        struct fota_store_release existing;

        if (!t->is_release)
            continue;
        release_id(t->name, t->sha256, t->rel.id);
        t->rel.targets_version = version;
        t->rel.created = fota_server_now();
        se = fota_store_release_get(st, t->rel.id, &existing);
        if (se == FOTA_STORE_OK)
            continue; /* published before (same name, same image) */
        if (se == FOTA_STORE_NOT_FOUND)
            se = fota_store_release_insert(st, &t->rel);
        if (se == FOTA_STORE_CONFLICT)
            continue;
        if (se != FOTA_STORE_OK) {
            fota_resp_store_error(resp, se);
            goto out;
        }
        json_array_append_new(released, release_json(&t->rel));
    }
    if (!consistent) {
        for (i = 0; i < p->ntargets; i++) {
            if (link_plain_name(p, &p->targets[i]) != 0)
                goto out;
        }
    }
    err = fota_tuf_online_publish(srv, st, bytes, bytes_len, &snap_v, &ts_v);
    if (err != FOTA_OK) {
        fota_resp_error(resp, 500, "internal", "publishing failed: %s", fota_strerror(err));
        goto out;
    }
    snprintf(object, sizeof object, "targets/%lld", (long long)version);
    detail = json_pack("{s:I,s:I,s:I,s:I,s:O}", "targets_version", (json_int_t)version,
                       "snapshot_version", (json_int_t)snap_v, "timestamp_version",
                       (json_int_t)ts_v, "targets", (json_int_t)p->ntargets, "releases",
                       released);
    audit(st, actor, "release.publish", object, detail);
    se = fota_store_commit(st);
    in_tx = 0;
    if (se != FOTA_STORE_OK) {
        /* The metadata is out; only the records are missing. */
        fota_log(FOTA_LOG_ERROR, "release-publish",
                 "targets=%lld error=\"metadata published but releases not recorded: %s\"",
                 (long long)version, fota_store_strerror(se));
        fota_store_rollback(st);
        fota_resp_store_error(resp, se);
        goto out;
    }
    fota_log(FOTA_LOG_INFO, "release-publish",
             "actor=%s targets=%lld snapshot=%lld timestamp=%lld releases=%zu", actor,
             (long long)version, (long long)snap_v, (long long)ts_v, json_array_size(released));
    body = json_pack("{s:I,s:I,s:I,s:O}", "targets_version", (json_int_t)version,
                     "snapshot_version", (json_int_t)snap_v, "timestamp_version", (json_int_t)ts_v,
                     "releases", released);
    if (body == NULL)
        fota_resp_error(resp, 500, "internal", "out of memory");
    else
        fota_resp_json(resp, 201, body);
    snprintf(resp->log_detail, sizeof resp->log_detail, "targets=%lld snapshot=%lld",
             (long long)version, (long long)snap_v);
out:
    if (in_tx)
        fota_store_rollback(st);
    free(bytes);
    free(buf);
    json_decref(detail);
    json_decref(released);
    json_decref(cur_snap);
    json_decref(cur);
    json_decref(root);
}

static void releases_publish(struct fota_req *req, struct fota_resp *resp)
{
    struct publish p = {req->srv, resp, NULL, NULL, 0};
    struct fota_repo_lock lock = {-1};
    json_t *body = NULL;
    const json_t *targets, *entry;
    const char *key, *name;
    char actor[FOTA_STORE_NAME_MAX + 1];
    fota_err err;
    size_t i = 0;

    resp->log_event = "release-publish";
    if (fota_api_auth(req, resp, "deploy", actor) != 0)
        return;
    body = fota_req_json(req, resp);
    if (body == NULL)
        return;
    if (!json_is_object(body) || !json_is_object(json_object_get(body, "targets"))) {
        fota_resp_error(resp, 400, "bad_request",
                        "the body is {\"targets\": <targets metadata signed offline>}");
        goto out;
    }
    json_object_foreach(body, key, entry) {
        if (strcmp(key, "targets") != 0) {
            fota_resp_error(resp, 400, "bad_request", "unknown field '%.64s'", key);
            goto out;
        }
    }
    p.env = json_object_get(body, "targets");
    err = fota_tuf_repo_check_envelope(p.env, "targets");
    if (err != FOTA_OK) {
        fota_resp_error(resp, 400, "bad_metadata", "not targets metadata: %s",
                        fota_strerror(err));
        goto out;
    }
    targets = json_object_get(json_object_get(p.env, "signed"), "targets");
    p.ntargets = json_object_size(targets);
    p.targets = calloc(p.ntargets ? p.ntargets : 1, sizeof *p.targets);
    if (p.targets == NULL) {
        fota_resp_error(resp, 500, "internal", "out of memory");
        goto out;
    }
    json_object_foreach((json_t *)targets, name, entry) {
        p.targets[i].name = name;
        p.targets[i].entry = entry;
        if (check_entry(&p, &p.targets[i]) != 0)
            goto out;
        i++;
    }
    /* From here to the last file written, no other publish or renewal, in
     * this process or another, touches the repository. */
    if (fota_repo_lock_take(req->srv, &lock) != 0) {
        fota_resp_error(resp, 500, "internal", "cannot lock the repository");
        goto out;
    }
    publish_locked(&p, req, actor);
    fota_repo_lock_release(&lock);
out:
    free(p.targets);
    json_decref(body);
}

void fota_api_releases(struct fota_req *req, struct fota_resp *resp)
{
    const char *path = req->path;
    size_t n = strlen(RELEASES_PATH);
    int is_get = strcmp(req->method, "GET") == 0 || strcmp(req->method, "HEAD") == 0;
    char actor[FOTA_STORE_NAME_MAX + 1];

    if (strncmp(path, RELEASES_PATH, n) != 0 || (path[n] != '\0' && path[n] != '/')) {
        fota_resp_error(resp, 404, "not_found", "no such resource");
        return;
    }
    if (path[n] == '\0' || (path[n] == '/' && path[n + 1] == '\0')) {
        if (strcmp(req->method, "POST") == 0) {
            releases_publish(req, resp);
            return;
        }
        if (!is_get) {
            fota_resp_error(resp, 405, "method_not_allowed", "use GET or POST");
            snprintf(resp->extra_header[0], sizeof resp->extra_header[0], "Allow: GET, POST");
            return;
        }
        if (fota_api_auth(req, resp, "read", actor) != 0)
            return;
        releases_list(req, resp);
        return;
    }
    if (!is_get) {
        fota_resp_error(resp, 405, "method_not_allowed", "use GET");
        snprintf(resp->extra_header[0], sizeof resp->extra_header[0], "Allow: GET");
        return;
    }
    if (fota_api_auth(req, resp, "read", actor) != 0)
        return;
    releases_get(req, resp, path + n + 1);
}
