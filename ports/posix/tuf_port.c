/* SPDX-License-Identifier: Apache-2.0 */
/*
 * struct fota_tuf_port on a POSIX host: metadata files in one directory,
 * remote metadata over HTTP, time(NULL), log lines on stderr.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fota_posix.h"

int64_t fota_posix_now(void)
{
    return (int64_t)time(NULL);
}

void fota_posix_log_stderr(void *ctx, enum fota_tuf_log_level level, const char *line)
{
    const struct fota_posix_tuf *t = ctx;
    const char *prefix = (t != NULL && t->log_prefix != NULL) ? t->log_prefix : "fota";
    int verbose = t != NULL && t->verbose;

    if (line == NULL)
        return;
    if (level < FOTA_TUF_LOG_REJECT && !verbose)
        return;
    fprintf(stderr, "%s: %s%s\n", prefix, level == FOTA_TUF_LOG_REJECT ? "rejected: " : "",
            line);
}

static fota_err port_fetch(void *ctx, const char *name, size_t max_len,
                           uint8_t **ret_buf, size_t *ret_len)
{
    struct fota_posix_tuf *t = ctx;
    fota_err err;

    err = fota_posix_http_get_in(&t->http, t->metadata_url, name, max_len, ret_buf, ret_len);
    /* A 404 is part of the workflow (the end of the root chain): only other
     * failures are worth a line, which says what the transport saw (the
     * engine's own rejection line names the file and the reason). */
    if (err != FOTA_OK && err != FOTA_E_NOT_FOUND && t->http.errmsg[0] != '\0')
        fprintf(stderr, "%s: http: %s\n", t->log_prefix != NULL ? t->log_prefix : "fota",
                t->http.errmsg);
    return err;
}

static fota_err port_load(void *ctx, const char *name, size_t max_len,
                          uint8_t **ret_buf, size_t *ret_len)
{
    struct fota_posix_tuf *t = ctx;

    return fota_posix_dir_load(t->metadata_dir, name, max_len, ret_buf, ret_len);
}

static fota_err port_store(void *ctx, const char *name, const uint8_t *buf, size_t len)
{
    struct fota_posix_tuf *t = ctx;

    return fota_posix_dir_store(t->metadata_dir, name, buf, len);
}

static fota_err port_remove(void *ctx, const char *name)
{
    struct fota_posix_tuf *t = ctx;

    return fota_posix_dir_remove(t->metadata_dir, name);
}

static int64_t port_now(void *ctx)
{
    (void)ctx;
    return fota_posix_now();
}

fota_err fota_posix_tuf_init(struct fota_posix_tuf *t, const char *metadata_dir,
                             const char *metadata_url, const char *log_prefix, int verbose)
{
    fota_err err;

    if (t == NULL || metadata_dir == NULL || metadata_dir[0] == '\0')
        return FOTA_E_INVALID;
    memset(t, 0, sizeof(*t));
    t->metadata_dir = strdup(metadata_dir);
    if (t->metadata_dir == NULL) {
        err = FOTA_E_NOMEM;
        goto out;
    }
    if (metadata_url != NULL) {
        err = fota_posix_url_base(metadata_url, &t->metadata_url);
        if (err != FOTA_OK)
            goto out;
    }
    err = fota_posix_http_init(&t->http);
    if (err != FOTA_OK)
        goto out;
    t->log_prefix = log_prefix;
    t->verbose = verbose;
    t->port.ctx = t;
    t->port.fetch = port_fetch;
    t->port.load = port_load;
    t->port.store = port_store;
    t->port.remove = port_remove;
    t->port.now = port_now;
    t->port.log = fota_posix_log_stderr;
out:
    if (err != FOTA_OK) {
        free(t->metadata_dir);
        free(t->metadata_url);
        memset(t, 0, sizeof(*t));
    }
    return err;
}

void fota_posix_tuf_cleanup(struct fota_posix_tuf *t)
{
    if (t == NULL)
        return;
    fota_posix_http_cleanup(&t->http);
    free(t->metadata_dir);
    free(t->metadata_url);
    memset(t, 0, sizeof(*t));
}

/* The URL of target under base (which ends in "/"): <dir/>HASH.<basename>
 * with consistent snapshots (HASH: the first hash the metadata lists, as
 * written there), else the plain path. */
fota_err fota_posix_target_url(const char *base, const struct fota_tuf_target *target,
                               int consistent, char **ret_url)
{
    const char *slash = strrchr(target->path, '/');
    size_t dir_len = slash != NULL ? (size_t)(slash - target->path) + 1 : 0;
    char *hashed = NULL, *enc = NULL, *url = NULL;
    fota_err err = FOTA_E_NOMEM;
    size_t len;

    if (consistent) {
        const char *hex = target->hashes[0].hex;
        const char *basename = target->path + dir_len;

        len = dir_len + strlen(hex) + 1 + strlen(basename) + 1;
        hashed = malloc(len);
        if (hashed == NULL)
            goto out;
        snprintf(hashed, len, "%.*s%s.%s", (int)dir_len, target->path, hex, basename);
        err = fota_posix_url_path(hashed, &enc);
    } else {
        err = fota_posix_url_path(target->path, &enc);
    }
    if (err != FOTA_OK)
        goto out;
    /* Appended as it is, even when the path starts with "/": a repository
     * serves the target at base + path, as other TUF clients ask for it. */
    len = strlen(base) + strlen(enc) + 1;
    url = malloc(len);
    if (url == NULL) {
        err = FOTA_E_NOMEM;
        goto out;
    }
    snprintf(url, len, "%s%s", base, enc);
    *ret_url = url;
    err = FOTA_OK;
out:
    free(hashed);
    free(enc);
    return err;
}
