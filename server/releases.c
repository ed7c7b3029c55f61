/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Image uploads and the release records (releases.h). Publishing the signed
 * metadata that makes an uploaded image a release is server/publish.c.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "fota/json.h"
#include "fota/tuf.h"
#include "fota_posix.h"
#include "log.h"
#include "publish.h"
#include "releases.h"
#include "server.h"
#include "store.h"
#include "store_releases.h"

#define IMAGES_PREFIX "/api/v1/images/"
#define RELEASES_PATH "/api/v1/releases"

/* A target path the server stores: at most 255 bytes, "/"-separated
 * components none of which is empty, "." or "..", no leading "/", no
 * control character or backslash, and a basename short enough that
 * "<64 hex>.<basename>" is one file name. */
#define TARGET_BASENAME_MAX 180

int fota_target_path_valid(const char *name)
{
    size_t len = strlen(name);
    const char *c = name;

    if (len == 0 || len > FOTA_TARGET_PATH_MAX)
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

/* targets/<dir of name> and the stored file name "<sha256>.<basename>". */
int fota_target_dir(const struct fota_server *srv, const char *name, char *out, size_t size)
{
    const char *slash = strrchr(name, '/');
    int n = slash != NULL ? snprintf(out, size, "%s/targets/%.*s", srv->repo_dir,
                                     (int)(slash - name), name)
                          : snprintf(out, size, "%s/targets", srv->repo_dir);

    return n < 0 || (size_t)n >= size ? -1 : 0;
}

const char *fota_target_basename(const char *name)
{
    const char *slash = strrchr(name, '/');

    return slash != NULL ? slash + 1 : name;
}

/* ---- PUT /api/v1/images/<target path> ------------------------------------ */

struct upload {
    struct fota_server *srv;
    struct fota_store *st;
    char actor[FOTA_STORE_NAME_MAX + 1];
    char name[FOTA_TARGET_PATH_MAX + 1];
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
    size_t name_len = 0;
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
    /* An encoded NUL would cut the name short: refused with the rest. */
    if (fota_percent_decode(req->path + strlen(IMAGES_PREFIX), u->name, sizeof u->name,
                            &name_len) != 0 ||
        name_len != strlen(u->name) || !fota_target_path_valid(u->name)) {
        fota_resp_error(resp, 400, "bad_target",
                        "the target path must be 1 to %d bytes of non-empty components, "
                        "none '.' or '..', with no control characters",
                        FOTA_TARGET_PATH_MAX);
        goto fail;
    }
    if (fota_target_dir(srv, u->name, u->dir, sizeof u->dir) != 0 ||
        snprintf(plain, sizeof plain, "%s/%s", u->dir, fota_target_basename(u->name)) >=
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
    char sha256[65], sha512[129], stored[FOTA_TARGET_PATH_MAX + 70], object[300];
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
    snprintf(stored, sizeof stored, "%s.%s", sha256, fota_target_basename(u->name));
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
    fota_api_audit(u->st, u->actor, "image.upload", object,
                   json_pack("{s:I,s:s}", "length", (json_int_t)u->length, "sha256", sha256),
                   fota_server_now());
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

json_t *fota_release_json(const struct fota_store_release *r)
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
        json_array_append_new(list, fota_release_json(&items[i]));
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
    body = fota_release_json(&r);
    if (body == NULL)
        fota_resp_error(resp, 500, "internal", "out of memory");
    else
        fota_resp_json(resp, 200, body);
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
            fota_publish_releases(req, resp);
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
