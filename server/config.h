/* SPDX-License-Identifier: Apache-2.0 */
#ifndef FOTA_SERVER_CONFIG_H
#define FOTA_SERVER_CONFIG_H

/*
 * fota-server's configuration (docs/server.md, "Configuration"): a file of
 * `key = value` lines (`#` starts a comment line; a value may be wrapped in
 * double quotes) and one flag per key (`--data-dir D` or `--data-dir=D`, with
 * dashes or underscores); flags override the file.
 *
 * Every function that can fail writes a one-line reason into err (errlen
 * bytes, always NUL-terminated) and returns -1; 0 on success.
 */

#include <stddef.h>
#include <stdint.h>

#include "server.h"

/* Longest config file read, and longest line in it. */
#define FOTA_CONFIG_FILE_MAX (64u * 1024u)
#define FOTA_CONFIG_LINE_MAX 4096u

/* Every field at its documented default (data_dir empty: required). */
void fota_config_defaults(struct fota_server_config *cfg);

/* Set key (underscores, as in the file) to the text value. Unknown keys and
 * malformed values are refused. */
int fota_config_set(struct fota_server_config *cfg, const char *key, const char *value,
                    char *err, size_t errlen);

/* Apply every line of the file at path. */
int fota_config_load_file(struct fota_server_config *cfg, const char *path, char *err,
                          size_t errlen);

/*
 * The serve command line: argv[0..argc) holds only options. --config FILE is
 * read first (wherever it appears), then every other flag is applied in
 * order. Returns 0, or -1 for a malformed flag or value (err says which),
 * or 1 when --help was given (nothing else is checked then).
 */
int fota_config_from_args(struct fota_server_config *cfg, int argc, char **argv, char *err,
                          size_t errlen);

/* Cross-field checks before serving: data_dir set, TLS cert and key both or
 * neither, timestamp_renew_before below timestamp_expiry. */
int fota_config_validate(const struct fota_server_config *cfg, char *err, size_t errlen);

/* "90", "90s", "30m", "6h", "1d", "2w" -> seconds (> 0, at most 100 years).
 * -1 for anything else. */
int fota_config_parse_duration(const char *text, int64_t *ret_seconds);

/* "65536", "64K", "64KiB", "256M", "1G" (binary units) -> bytes (> 0).
 * -1 for anything else. */
int fota_config_parse_size(const char *text, uint64_t *ret_bytes);

/* "host:port", "[v6]:port" -> address text and port (0..65535). */
int fota_config_parse_listen(const char *text, char *ret_addr, size_t addr_len,
                             unsigned *ret_port);

/* The usage text of the serve options (for --help). */
extern const char fota_config_usage[];

#endif
