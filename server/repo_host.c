/* SPDX-License-Identifier: Apache-2.0 */
/*
 * GET|HEAD /repo/<path>: the published TUF repository (data_dir/repo/),
 * metadata and targets, sent from the file descriptor (zero-copy).
 *
 * Nothing outside data_dir/repo is ever opened:
 *   - the path is checked twice, as received and percent-decoded: no empty,
 *     "." or ".." segment, no backslash, no NUL, at most 1024 bytes;
 *   - it is opened one segment at a time below the repository directory
 *     with O_NOFOLLOW, so a symbolic link anywhere under repo/ is refused
 *     (the repository the fota CLI publishes holds none);
 *   - only a regular file is sent.
 * The path is tried literally first: a TUF client asks for role "a/b" as
 * "3.a%2Fb.json", which is the file's literal name on disk; then decoded
 * ("fw%201.bin" -> "fw 1.bin").
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "http.h"
#include "log.h"
#include "routes.h"
#include "server.h"

#define REPO_PREFIX "/repo/"
#define REPO_PATH_MAX 1024
#define REPO_SEGMENT_MAX 255

#define CACHE_METADATA "no-cache"
#define CACHE_TARGET "public, max-age=31536000, immutable"

/* 1 when every "/"-separated segment of path is a plain file name. */
static int segments_ok(const char *path, size_t len)
{
    size_t start = 0;

    if (len == 0)
        return 0;
    for (size_t i = 0; i <= len; i++) {
        if (i < len && path[i] != '/')
            continue;
        size_t n = i - start;
        if (n == 0 || n > REPO_SEGMENT_MAX)
            return 0;
        if (n == 1 && path[start] == '.')
            return 0;
        if (n == 2 && path[start] == '.' && path[start + 1] == '.')
            return 0;
        start = i + 1;
    }
    return memchr(path, '\\', len) == NULL && memchr(path, '\0', len) == NULL;
}

/* Open repo_dir/rel (rel already passed segments_ok) without following any
 * symbolic link below repo_dir. Returns the descriptor or -1 with errno. */
static int open_beneath(const char *repo_dir, const char *rel)
{
    char seg[REPO_SEGMENT_MAX + 1];
    int dfd = open(repo_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    const char *p = rel;

    if (dfd < 0)
        return -1;
    for (;;) {
        const char *slash = strchr(p, '/');
        size_t n = slash != NULL ? (size_t)(slash - p) : strlen(p);
        int fd, saved;

        memcpy(seg, p, n);
        seg[n] = '\0';
        if (slash == NULL) {
            /* O_NONBLOCK: opening a FIFO planted in the tree must not hang a
             * worker; it has no effect on the regular files served. */
            fd = openat(dfd, seg, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
            saved = errno;
            close(dfd);
            errno = saved;
            return fd;
        }
        fd = openat(dfd, seg, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        saved = errno;
        close(dfd);
        if (fd < 0) {
            errno = saved;
            return -1;
        }
        dfd = fd;
        p = slash + 1;
    }
}

/* Does the If-None-Match list name etag ("*" names every)? Weak tags
 * compare by their opaque part, as RFC 9110 says for this header. */
static int etag_listed(const char *list, const char *etag)
{
    size_t elen = strlen(etag);
    const char *p = list;

    while (*p != '\0') {
        const char *end;
        size_t n;
        while (*p == ' ' || *p == '\t' || *p == ',')
            p++;
        if (*p == '\0')
            break;
        end = strchr(p, ',');
        n = end != NULL ? (size_t)(end - p) : strlen(p);
        while (n > 0 && (p[n - 1] == ' ' || p[n - 1] == '\t'))
            n--;
        if (n == 1 && p[0] == '*')
            return 1;
        if (n > 2 && p[0] == 'W' && p[1] == '/') {
            p += 2;
            n -= 2;
        }
        if (n == elen && memcmp(p, etag, n) == 0)
            return 1;
        if (end == NULL)
            break;
        p = end + 1;
    }
    return 0;
}

static int parse_u64(const char *p, size_t n, uint64_t *ret)
{
    uint64_t v = 0;

    if (n == 0 || n > 19)
        return -1;
    for (size_t i = 0; i < n; i++) {
        if (p[i] < '0' || p[i] > '9')
            return -1;
        v = v * 10 + (uint64_t)(p[i] - '0');
    }
    *ret = v;
    return 0;
}

enum range_result { RANGE_NONE, RANGE_OK, RANGE_UNSATISFIABLE };

/* One "bytes=" range against a file of size bytes. Malformed or multiple
 * ranges are ignored (the whole file is sent), as RFC 9110 allows. */
static enum range_result parse_range(const char *h, uint64_t size, uint64_t *ret_first,
                                     uint64_t *ret_last)
{
    const char *spec, *dash, *end;
    uint64_t first, last;

    if (h == NULL || strncasecmp(h, "bytes=", 6) != 0)
        return RANGE_NONE;
    spec = h + 6;
    while (*spec == ' ')
        spec++;
    if (strchr(spec, ',') != NULL)
        return RANGE_NONE;
    end = spec + strlen(spec);
    while (end > spec && end[-1] == ' ')
        end--;
    dash = memchr(spec, '-', (size_t)(end - spec));
    if (dash == NULL)
        return RANGE_NONE;
    if (dash == spec) {
        uint64_t suffix;
        if (parse_u64(dash + 1, (size_t)(end - dash - 1), &suffix) != 0)
            return RANGE_NONE;
        if (suffix == 0 || size == 0)
            return RANGE_UNSATISFIABLE;
        first = suffix >= size ? 0 : size - suffix;
        last = size - 1;
    } else {
        if (parse_u64(spec, (size_t)(dash - spec), &first) != 0)
            return RANGE_NONE;
        if (dash + 1 == end) {
            last = UINT64_MAX;
        } else if (parse_u64(dash + 1, (size_t)(end - dash - 1), &last) != 0 || last < first) {
            return RANGE_NONE;
        }
        if (first >= size)
            return RANGE_UNSATISFIABLE;
        if (last >= size)
            last = size - 1;
    }
    *ret_first = first;
    *ret_last = last;
    return RANGE_OK;
}

static const char *content_type_of(const char *path)
{
    size_t n = strlen(path);

    if (n >= 5 && strcmp(path + n - 5, ".json") == 0)
        return "application/json";
    return "application/octet-stream";
}

void fota_repo_get(struct fota_req *req, struct fota_resp *resp)
{
    const char *raw = req->path + strlen(REPO_PREFIX);
    size_t raw_len = strlen(raw), dec_len = 0;
    char decoded[REPO_PATH_MAX + 1];
    const char *cache, *inm, *if_range;
    struct stat st;
    uint64_t first = 0, last = 0, ino, mtime_ns;
    enum range_result range;
    int fd;

    if (strncmp(req->path, REPO_PREFIX, strlen(REPO_PREFIX)) != 0) {
        fota_resp_error(resp, 404, "not_found", "no such file");
        return;
    }
    if (strlen(req->path) > REPO_PATH_MAX) {
        fota_resp_error(resp, 400, "bad_path", "the path is longer than %d bytes",
                        REPO_PATH_MAX);
        return;
    }
    /* Both forms must be plain relative paths before either is opened. */
    if (!segments_ok(raw, raw_len) || fota_percent_decode(raw, decoded, sizeof(decoded), &dec_len) != 0 ||
        !segments_ok(decoded, dec_len)) {
        fota_resp_error(resp, 400, "bad_path", "the path is not a plain file path");
        return;
    }
    fd = open_beneath(req->srv->repo_dir, raw);
    if (fd < 0 && (errno == ENOENT || errno == ENOTDIR) && strcmp(raw, decoded) != 0)
        fd = open_beneath(req->srv->repo_dir, decoded);
    if (fd < 0) {
        int e = errno;
        if (e == ENOENT || e == ENOTDIR || e == ELOOP || e == EACCES || e == ENXIO) {
            fota_resp_error(resp, 404, "not_found", "no such file");
        } else {
            fota_resp_error(resp, 500, "internal", "cannot open the file");
            snprintf(resp->log_detail, sizeof(resp->log_detail), "error=\"%s\"", strerror(e));
        }
        return;
    }
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        fota_resp_error(resp, 404, "not_found", "no such file");
        return;
    }
    ino = (uint64_t)st.st_ino;
    mtime_ns = (uint64_t)st.st_mtim.tv_sec * 1000000000u + (uint64_t)st.st_mtim.tv_nsec;
    snprintf(resp->etag, sizeof(resp->etag), "\"%" PRIx64 "-%" PRIx64 "-%" PRIx64 "\"", ino,
             (uint64_t)st.st_size, mtime_ns);
    cache = strncmp(raw, "targets/", 8) == 0 ? CACHE_TARGET : CACHE_METADATA;

    inm = fota_req_header(req, "If-None-Match");
    if (inm != NULL && etag_listed(inm, resp->etag)) {
        close(fd);
        fota_resp_empty(resp, 304);
        snprintf(resp->extra_header[0], sizeof(resp->extra_header[0]), "Cache-Control: %s",
                 cache);
        return;
    }
    range = parse_range(fota_req_header(req, "Range"), (uint64_t)st.st_size, &first, &last);
    if_range = fota_req_header(req, "If-Range");
    if (range != RANGE_NONE && if_range != NULL && strcmp(if_range, resp->etag) != 0)
        range = RANGE_NONE; /* the client's copy is stale: send it all */
    if (range == RANGE_UNSATISFIABLE) {
        close(fd);
        fota_resp_error(resp, 416, "range_not_satisfiable", "the file has %" PRIu64 " bytes",
                        (uint64_t)st.st_size);
        snprintf(resp->extra_header[0], sizeof(resp->extra_header[0]),
                 "Content-Range: bytes */%" PRIu64, (uint64_t)st.st_size);
        return;
    }
    if (range == RANGE_OK) {
        char content_range[96];
        if (fota_resp_file(resp, 206, fd, first, last - first + 1) != 0)
            return;
        snprintf(content_range, sizeof(content_range),
                 "bytes %" PRIu64 "-%" PRIu64 "/%" PRIu64, first, last, (uint64_t)st.st_size);
        fota_resp_file_header(resp, "Content-Range", content_range);
    } else {
        if (fota_resp_file(resp, 200, fd, 0, (uint64_t)st.st_size) != 0)
            return;
    }
    fota_resp_file_header(resp, "Accept-Ranges", "bytes");
    fota_resp_file_header(resp, "Cache-Control", cache);
    resp->content_type = content_type_of(raw);
}
