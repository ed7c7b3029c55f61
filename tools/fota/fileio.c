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
