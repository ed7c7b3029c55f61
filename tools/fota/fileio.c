/* SPDX-License-Identifier: Apache-2.0 */
/*
 * File I/O of the CLI. Every file is read with a cap, and every file is
 * written so that a crash or power cut leaves either the old content or the
 * new one: temp file in the same directory, fsync, rename, fsync of the
 * directory (the rename is only durable once the directory is).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "fota/json.h"

fota_err cli_read_file(const char *path, size_t max_len, uint8_t **ret_buf, size_t *ret_len,
                       int *ret_errno)
{
    fota_err err = FOTA_E_IO;
    int fd = -1;
    struct stat st;
    uint8_t *buf = NULL;
    size_t len = 0;
    int saved = 0;

    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        saved = errno;
        err = saved == ENOENT ? FOTA_E_NOT_FOUND : FOTA_E_IO;
        goto out;
    }
    if (fstat(fd, &st) != 0) {
        saved = errno;
        goto out;
    }
    if (!S_ISREG(st.st_mode)) {
        saved = EINVAL;
        goto out;
    }
    if ((uint64_t)st.st_size > max_len) {
        err = FOTA_E_TOO_BIG;
        goto out;
    }
    buf = malloc(max_len + 1);
    if (buf == NULL) {
        err = FOTA_E_NOMEM;
        goto out;
    }
    /* Read to the cap, not to st_size: the file may grow under us. */
    for (;;) {
        ssize_t n = read(fd, buf + len, max_len + 1 - len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            saved = errno;
            goto out;
        }
        if (n == 0)
            break;
        len += (size_t)n;
        if (len > max_len) {
            err = FOTA_E_TOO_BIG;
            goto out;
        }
    }
    buf[len] = '\0';
    *ret_buf = buf;
    *ret_len = len;
    buf = NULL;
    err = FOTA_OK;
out:
    if (fd >= 0)
        close(fd);
    free(buf);
    if (err != FOTA_OK && ret_errno != NULL)
        *ret_errno = saved;
    return err;
}

fota_err cli_read_json(const char *path, size_t max_len, json_t **ret_value, int *ret_errno)
{
    uint8_t *buf = NULL;
    size_t len = 0;
    json_t *value = NULL;
    fota_err err;

    err = cli_read_file(path, max_len, &buf, &len, ret_errno);
    if (err != FOTA_OK)
        goto out;
    err = fota_json_parse(buf, len, max_len, FOTA_JSON_MAX_DEPTH, &value);
    if (err != FOTA_OK)
        goto out;
    if (!json_is_object(value)) {
        err = FOTA_E_PARSE;
        goto out;
    }
    *ret_value = value;
    value = NULL;
out:
    json_decref(value);
    free(buf);
    return err;
}

static char *dir_of(const char *path)
{
    const char *slash = strrchr(path, '/');

    if (slash == NULL)
        return strdup(".");
    if (slash == path)
        return strdup("/");
    return strndup(path, (size_t)(slash - path));
}

static int fsync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    int rc = 0;

    if (fd < 0)
        return errno;
    if (fsync(fd) != 0)
        rc = errno;
    close(fd);
    return rc;
}

int cli_tmp_open(const char *final_path, struct cli_tmpfile *ret_tmp)
{
    struct cli_tmpfile t = {.fd = -1};
    int rc = ENOMEM;

    t.dir = dir_of(final_path);
    if (t.dir == NULL)
        goto out;
    t.path = cli_pathf("%s/.fota-tmp.XXXXXX", t.dir);
    if (t.path == NULL)
        goto out;
    /* mkstemp creates the file 0600 with O_EXCL; the final mode is set on
     * commit, so a private key is never readable by others in between. */
    t.fd = mkstemp(t.path);
    if (t.fd < 0) {
        rc = errno;
        goto out;
    }
    *ret_tmp = t;
    return 0;
out:
    free(t.dir);
    free(t.path);
    return rc;
}

int cli_tmp_write(struct cli_tmpfile *t, const void *buf, size_t len)
{
    const uint8_t *p = buf;

    while (len > 0) {
        ssize_t n = write(t->fd, p, len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return errno;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

void cli_tmp_abort(struct cli_tmpfile *t)
{
    if (t->fd >= 0)
        close(t->fd);
    if (t->path != NULL)
        unlink(t->path);
    free(t->path);
    free(t->dir);
    t->fd = -1;
    t->path = NULL;
    t->dir = NULL;
}

int cli_tmp_commit(struct cli_tmpfile *t, const char *final_path, unsigned mode, int exclusive)
{
    int rc;

    if (fchmod(t->fd, (mode_t)mode) != 0 || fsync(t->fd) != 0) {
        rc = errno;
        goto out;
    }
    if (close(t->fd) != 0) {
        t->fd = -1;
        rc = errno;
        goto out;
    }
    t->fd = -1;
    if (exclusive) {
        /* link() fails with EEXIST instead of replacing: no-clobber and
         * atomic at once. */
        if (link(t->path, final_path) != 0) {
            rc = errno;
            goto out;
        }
    } else if (rename(t->path, final_path) != 0) {
        rc = errno;
        goto out;
    }
    rc = fsync_dir(t->dir);
out:
    cli_tmp_abort(t);
    return rc;
}

int cli_write_file(const char *path, const void *buf, size_t len, unsigned mode, int exclusive)
{
    struct cli_tmpfile t;
    int rc;

    rc = cli_tmp_open(path, &t);
    if (rc != 0)
        return rc;
    rc = cli_tmp_write(&t, buf, len);
    if (rc != 0) {
        cli_tmp_abort(&t);
        return rc;
    }
    return cli_tmp_commit(&t, path, mode, exclusive);
}

int cli_mkdirs(const char *path)
{
    char *p = strdup(path);
    int rc = 0;

    if (p == NULL)
        return ENOMEM;
    for (char *s = p + 1; *s != '\0'; s++) {
        if (*s != '/')
            continue;
        *s = '\0';
        if (mkdir(p, 0755) != 0 && errno != EEXIST) {
            rc = errno;
            goto out;
        }
        *s = '/';
    }
    if (mkdir(p, 0755) != 0 && errno != EEXIST)
        rc = errno;
out:
    free(p);
    return rc;
}

char *cli_pathf(const char *fmt, ...)
{
    va_list ap;
    int n;
    char *s;

    va_start(ap, fmt);
    n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        return NULL;
    s = malloc((size_t)n + 1);
    if (s == NULL)
        return NULL;
    va_start(ap, fmt);
    vsnprintf(s, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return s;
}

char *cli_path(const char *a, const char *b)
{
    return cli_pathf("%s/%s", a, b);
}

/*
 * Canonical JSON leaves control characters inside strings raw, and a PEM
 * public key (ecdsa, rsa) holds newlines: such bytes are not JSON any strict
 * parser (ours, jansson, Python's json) accepts. When the canonical form has
 * a control character, the file gets the same compact, key-sorted encoding
 * with those characters escaped instead; it parses to the same value, so the
 * canonical form that signatures cover is unchanged. Otherwise the bytes are
 * exactly the canonical form.
 */
static fota_err published_bytes(const json_t *value, char **ret_buf, size_t *ret_len)
{
    char *buf = NULL;
    size_t len = 0;
    fota_err err;
    int has_control = 0;

    err = fota_json_canonical(value, CLI_MAX_METADATA, &buf, &len);
    if (err != FOTA_OK)
        return err;
    for (size_t i = 0; i < len; i++) {
        if ((unsigned char)buf[i] < 0x20)
            has_control = 1;
    }
    if (has_control) {
        free(buf);
        buf = json_dumps(value, JSON_COMPACT | JSON_SORT_KEYS);
        if (buf == NULL)
            return FOTA_E_NOMEM;
        len = strlen(buf);
        if (len > CLI_MAX_METADATA) {
            free(buf);
            return FOTA_E_TOO_BIG;
        }
    }
    *ret_buf = buf;
    *ret_len = len;
    return FOTA_OK;
}

fota_err cli_json_bytes(const json_t *value, int canonical, char **ret_buf, size_t *ret_len)
{
    char *text;
    size_t len;
    char *buf;

    if (canonical)
        return published_bytes(value, ret_buf, ret_len);
    text = json_dumps(value, JSON_INDENT(2) | JSON_SORT_KEYS);
    if (text == NULL)
        return FOTA_E_NOMEM;
    len = strlen(text);
    buf = realloc(text, len + 2);
    if (buf == NULL) {
        free(text);
        return FOTA_E_NOMEM;
    }
    buf[len] = '\n';
    buf[len + 1] = '\0';
    *ret_buf = buf;
    *ret_len = len + 1;
    return FOTA_OK;
}
