/* SPDX-License-Identifier: Apache-2.0 */
/*
 * File I/O of the CLI. The reading, the crash-safe writing and the creation
 * of directories are the POSIX port's (ports/posix/fs.c); this file adds the
 * CLI's error codes and messages, paths, and how JSON is serialised.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "fota/json.h"
#include "fota/tuf_repo.h"
#include "fota_posix.h"

fota_err cli_read_file(const char *path, size_t max_len, uint8_t **ret_buf, size_t *ret_len,
                       int *ret_errno)
{
    fota_err err = fota_posix_read_file(path, max_len, ret_buf, ret_len);

    if (err != FOTA_OK && ret_errno != NULL)
        *ret_errno = err == FOTA_E_IO ? errno : 0;
    /* The port calls a file over the cap FOTA_E_LENGTH ("length"); the CLI
     * says "too-big", as for its other caps. */
    return err == FOTA_E_LENGTH ? FOTA_E_TOO_BIG : err;
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

const char *cli_io_reason(fota_err err)
{
    int saved = errno;

    if (err == FOTA_E_NOMEM)
        return strerror(ENOMEM);
    if ((err == FOTA_E_IO || err == FOTA_E_NOT_FOUND) && saved != 0)
        return strerror(saved);
    return fota_strerror(err);
}

int cli_path_exists(const char *path)
{
    struct stat st;

    return lstat(path, &st) == 0 || errno != ENOENT;
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

fota_err cli_json_bytes(const json_t *value, int canonical, char **ret_buf, size_t *ret_len)
{
    char *text;
    size_t len;
    char *buf;

    /* Published files: canonical JSON with control characters escaped
     * (include/fota/tuf_repo.h), as fota-server writes them too. */
    if (canonical)
        return fota_tuf_repo_bytes(value, CLI_MAX_METADATA, ret_buf, ret_len);
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
