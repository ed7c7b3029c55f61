/* SPDX-License-Identifier: Apache-2.0 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fota_posix.h"
#include "log.h"

/* Default event mode: see docs/server.md, "Event mode" for the measurement
 * behind it. */

#define MAX_THREADS 1024u
#define MAX_BODY_CAP (64ull * 1024 * 1024)       /* JSON bodies are small */
/* A targets envelope is held whole in memory (and parsed): keep it sane. */
#define MAX_METADATA_CAP (1024ull * 1024 * 1024)
#define MAX_DURATION_S (100ll * 366 * 86400)

const char fota_config_usage[] =
    "  --config FILE                 read `key = value` lines from FILE (flags override it)\n"
    "  --listen HOST:PORT            address to listen on (default 127.0.0.1:8080)\n"
    "  --data-dir DIR                fota.db, repo/ and keys/ live here (required)\n"
    "  --tls-cert FILE --tls-key FILE  serve HTTPS with this PEM certificate and key\n"
    "  --threads N                   worker threads (default 0: two per core)\n"
    "  --event-mode MODE             poll or epoll (a pool of --threads workers), or\n"
    "                                thread-per-connection (default poll)\n"
    "  --snapshot-key FILE           PEM private keys of the online roles (default\n"
    "  --timestamp-key FILE            DIR/keys/<role>.pem when that file exists)\n"
    "  --director-key FILE\n"
    "  --timestamp-expiry DUR        lifetime of a timestamp.json (default 1d)\n"
    "  --timestamp-renew-before DUR  re-sign timestamp this long before it expires (6h)\n"
    "  --snapshot-expiry DUR         lifetime of a snapshot.json (default 7d)\n"
    "  --director-expiry DUR         lifetime of a Director document (default 1h)\n"
    "  --token-ttl DUR               lifetime of a device session token (default 1h)\n"
    "  --freshness-max-age DUR       older last fresh check-in: possibly frozen (2h)\n"
    "  --max-body SIZE               cap on a JSON request body (default 64K)\n"
    "  --max-image SIZE              cap on an uploaded image (default 256M)\n"
    "  --max-metadata SIZE           cap on a POST /api/v1/releases body (default 16M)\n"
    "  --device-max-clock-skew DUR   refuse device enrol/session requests whose signed time\n"
    "                                is further than DUR from the server's clock (0: off)\n"
    "  --preauthorized-keys FILE     device keys (key objects or key ids) accepted at enrolment\n"
    "  --log-level error|warn|info|debug  (default info)\n"
    "DUR is a number with s, m, h, d or w (seconds when bare); SIZE a number with K, M or G.\n";

static int fail(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int fail(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;

    if (err != NULL && errlen > 0) {
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return -1;
}

void fota_config_defaults(struct fota_server_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    snprintf(cfg->listen_addr, sizeof(cfg->listen_addr), "127.0.0.1");
    cfg->listen_port = 8080;
    cfg->threads = 0;
    cfg->event_mode = FOTA_EVENT_POLL;
    cfg->timestamp_expiry_s = 86400;
    cfg->timestamp_renew_before_s = 21600;
    cfg->snapshot_expiry_s = 7 * 86400;
    cfg->director_expiry_s = 3600;
    cfg->token_ttl_s = 3600;
    cfg->freshness_max_age_s = 7200;
    cfg->max_body = 65536;
    cfg->max_image = 256ull * 1024 * 1024;
    cfg->max_metadata = 16ull * 1024 * 1024;
    cfg->device_max_clock_skew_s = 0;
    cfg->log_level = FOTA_LOG_INFO;
}

/* Plain decimal, no sign, no spaces; *ret_end points past the digits. */
static int parse_u64_prefix(const char *text, uint64_t *ret_value, const char **ret_end)
{
    char *end = NULL;
    unsigned long long v;

    if (!isdigit((unsigned char)text[0]))
        return -1;
    errno = 0;
    v = strtoull(text, &end, 10);
    if (errno != 0 || end == text)
        return -1;
    *ret_value = v;
    *ret_end = end;
    return 0;
}

int fota_config_parse_duration(const char *text, int64_t *ret_seconds)
{
    uint64_t v, mult = 1;
    const char *end;

    if (text == NULL || parse_u64_prefix(text, &v, &end) != 0)
        return -1;
    if (end[0] != '\0') {
        if (end[1] != '\0')
            return -1;
        switch (end[0]) {
        case 's': mult = 1; break;
        case 'm': mult = 60; break;
        case 'h': mult = 3600; break;
        case 'd': mult = 86400; break;
        case 'w': mult = 7 * 86400; break;
        default: return -1;
        }
    }
    if (v == 0 || v > (uint64_t)MAX_DURATION_S / mult)
        return -1;
    *ret_seconds = (int64_t)(v * mult);
    return 0;
}

int fota_config_parse_size(const char *text, uint64_t *ret_bytes)
{
    uint64_t v, mult = 1;
    const char *end;

    if (text == NULL || parse_u64_prefix(text, &v, &end) != 0)
        return -1;
    if (end[0] != '\0') {
        const char *unit = end;
        char u = (char)toupper((unsigned char)unit[0]);
        if (u == 'K')
            mult = 1024;
        else if (u == 'M')
            mult = 1024 * 1024;
        else if (u == 'G')
            mult = 1024ull * 1024 * 1024;
        else if (u != 'B')
            return -1;
        unit++;
        if (mult != 1 && (strcmp(unit, "iB") == 0 || strcmp(unit, "B") == 0))
            unit += strlen(unit);
        if (unit[0] != '\0')
            return -1;
    }
    if (v == 0 || v > UINT64_MAX / mult)
        return -1;
    *ret_bytes = v * mult;
    return 0;
}

int fota_config_parse_listen(const char *text, char *ret_addr, size_t addr_len,
                             unsigned *ret_port)
{
    const char *colon, *host;
    size_t host_len;
    uint64_t port;
    const char *end;

    if (text == NULL)
        return -1;
    if (text[0] == '[') {
        const char *close = strchr(text, ']');
        if (close == NULL || close[1] != ':')
            return -1;
        host = text + 1;
        host_len = (size_t)(close - host);
        colon = close + 1;
    } else {
        colon = strrchr(text, ':');
        if (colon == NULL)
            return -1;
        host = text;
        host_len = (size_t)(colon - text);
        if (memchr(host, ':', host_len) != NULL)
            return -1; /* a bare IPv6 address needs brackets */
    }
    if (host_len == 0 || host_len >= addr_len)
        return -1;
    if (parse_u64_prefix(colon + 1, &port, &end) != 0 || end[0] != '\0' || port > 65535)
        return -1;
    memcpy(ret_addr, host, host_len);
    ret_addr[host_len] = '\0';
    *ret_port = (unsigned)port;
    return 0;
}

static int set_path(char *dst, size_t dst_len, const char *key, const char *value, char *err,
                    size_t errlen)
{
    size_t n = strlen(value);

    if (n >= dst_len)
        return fail(err, errlen, "%s: path longer than %zu bytes", key, dst_len - 1);
    memcpy(dst, value, n + 1);
    return 0;
}

static int set_duration(int64_t *dst, const char *key, const char *value, char *err,
                        size_t errlen)
{
    if (fota_config_parse_duration(value, dst) != 0)
        return fail(err, errlen, "%s: '%s' is not a duration (like 90s, 30m, 6h, 1d, 2w)", key,
                    value);
    return 0;
}

int fota_config_set(struct fota_server_config *cfg, const char *key, const char *value,
                    char *err, size_t errlen)
{
    if (strcmp(key, "listen") == 0) {
        if (fota_config_parse_listen(value, cfg->listen_addr, sizeof(cfg->listen_addr),
                                     &cfg->listen_port) != 0)
            return fail(err, errlen, "listen: '%s' is not HOST:PORT (or [IPv6]:PORT)", value);
        return 0;
    }
    if (strcmp(key, "data_dir") == 0) {
        if (value[0] == '\0')
            return fail(err, errlen, "data_dir: empty");
        return set_path(cfg->data_dir, sizeof(cfg->data_dir), key, value, err, errlen);
    }
    if (strcmp(key, "tls_cert") == 0)
        return set_path(cfg->tls_cert, sizeof(cfg->tls_cert), key, value, err, errlen);
    if (strcmp(key, "tls_key") == 0)
        return set_path(cfg->tls_key, sizeof(cfg->tls_key), key, value, err, errlen);
    if (strcmp(key, "snapshot_key") == 0)
        return set_path(cfg->snapshot_key, sizeof(cfg->snapshot_key), key, value, err, errlen);
    if (strcmp(key, "timestamp_key") == 0)
        return set_path(cfg->timestamp_key, sizeof(cfg->timestamp_key), key, value, err,
                        errlen);
    if (strcmp(key, "director_key") == 0)
        return set_path(cfg->director_key, sizeof(cfg->director_key), key, value, err, errlen);
    if (strcmp(key, "preauthorized_keys") == 0)
        return set_path(cfg->preauthorized_keys, sizeof(cfg->preauthorized_keys), key, value,
                        err, errlen);
    if (strcmp(key, "threads") == 0) {
        uint64_t v;
        const char *end;
        if (parse_u64_prefix(value, &v, &end) != 0 || end[0] != '\0' || v > MAX_THREADS)
            return fail(err, errlen, "threads: '%s' is not a number from 0 (two per core) to %u",
                        value, MAX_THREADS);
        cfg->threads = (unsigned)v;
        return 0;
    }
    if (strcmp(key, "event_mode") == 0) {
        if (strcmp(value, "poll") == 0)
            cfg->event_mode = FOTA_EVENT_POLL;
        else if (strcmp(value, "epoll") == 0)
            cfg->event_mode = FOTA_EVENT_EPOLL;
        else if (strcmp(value, "thread-per-connection") == 0)
            cfg->event_mode = FOTA_EVENT_THREAD_PER_CONNECTION;
        else
            return fail(err, errlen,
                        "event_mode: '%s' is not poll, epoll or thread-per-connection", value);
        return 0;
    }
    if (strcmp(key, "timestamp_expiry") == 0)
        return set_duration(&cfg->timestamp_expiry_s, key, value, err, errlen);
    if (strcmp(key, "timestamp_renew_before") == 0)
        return set_duration(&cfg->timestamp_renew_before_s, key, value, err, errlen);
    if (strcmp(key, "snapshot_expiry") == 0)
        return set_duration(&cfg->snapshot_expiry_s, key, value, err, errlen);
    if (strcmp(key, "director_expiry") == 0)
        return set_duration(&cfg->director_expiry_s, key, value, err, errlen);
    if (strcmp(key, "token_ttl") == 0)
        return set_duration(&cfg->token_ttl_s, key, value, err, errlen);
    if (strcmp(key, "freshness_max_age") == 0)
        return set_duration(&cfg->freshness_max_age_s, key, value, err, errlen);
    if (strcmp(key, "max_body") == 0) {
        if (fota_config_parse_size(value, &cfg->max_body) != 0 || cfg->max_body > MAX_BODY_CAP)
            return fail(err, errlen, "max_body: '%s' is not a size from 1 byte to 64M", value);
        return 0;
    }
    if (strcmp(key, "max_metadata") == 0) {
        if (fota_config_parse_size(value, &cfg->max_metadata) != 0 ||
            cfg->max_metadata > MAX_METADATA_CAP)
            return fail(err, errlen, "max_metadata: '%s' is not a size from 1 byte to 1G",
                        value);
        return 0;
    }
    if (strcmp(key, "device_max_clock_skew") == 0) {
        /* 0 turns the check off (parse_duration takes only durations > 0). */
        if (strcmp(value, "0") == 0) {
            cfg->device_max_clock_skew_s = 0;
            return 0;
        }
        return set_duration(&cfg->device_max_clock_skew_s, key, value, err, errlen);
    }
    if (strcmp(key, "max_image") == 0) {
        if (fota_config_parse_size(value, &cfg->max_image) != 0)
            return fail(err, errlen, "max_image: '%s' is not a size (like 256M)", value);
        return 0;
    }
    if (strcmp(key, "log_level") == 0) {
        int level = fota_log_level_from_name(value);
        if (level < 0)
            return fail(err, errlen, "log_level: '%s' is not error, warn, info or debug", value);
        cfg->log_level = level;
        return 0;
    }
    return fail(err, errlen, "unknown setting '%s'", key);
}

static char *trim(char *s)
{
    char *end;

    while (*s == ' ' || *s == '\t')
        s++;
    end = s + strlen(s);
    while (end > s && (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\r'))
        end--;
    *end = '\0';
    return s;
}

int fota_config_load_file(struct fota_server_config *cfg, const char *path, char *err,
                          size_t errlen)
{
    uint8_t *buf = NULL;
    size_t len = 0;
    char *line, *next;
    unsigned lineno = 0;
    int ret = -1;
    fota_err e;

    e = fota_posix_read_file(path, FOTA_CONFIG_FILE_MAX, &buf, &len);
    if (e != FOTA_OK) {
        if (e == FOTA_E_LENGTH)
            return fail(err, errlen, "%s: larger than %u bytes", path, FOTA_CONFIG_FILE_MAX);
        return fail(err, errlen, "%s: cannot read (%s)", path, strerror(errno));
    }
    if (memchr(buf, '\0', len) != NULL) {
        fail(err, errlen, "%s: holds a NUL byte", path);
        goto out;
    }
    for (line = (char *)buf; line != NULL; line = next) {
        char *eq, *key, *value;
        size_t vlen;

        lineno++;
        next = strchr(line, '\n');
        if (next != NULL)
            *next++ = '\0';
        if (strlen(line) > FOTA_CONFIG_LINE_MAX) {
            fail(err, errlen, "%s:%u: line longer than %u bytes", path, lineno,
                 FOTA_CONFIG_LINE_MAX);
            goto out;
        }
        line = trim(line);
        if (line[0] == '\0' || line[0] == '#')
            continue;
        eq = strchr(line, '=');
        if (eq == NULL) {
            fail(err, errlen, "%s:%u: expected `key = value`", path, lineno);
            goto out;
        }
        *eq = '\0';
        key = trim(line);
        value = trim(eq + 1);
        vlen = strlen(value);
        if (vlen >= 2 && value[0] == '"' && value[vlen - 1] == '"') {
            value[vlen - 1] = '\0';
            value++;
        }
        if (fota_config_set(cfg, key, value, err, errlen) != 0) {
            char detail[512];
            snprintf(detail, sizeof(detail), "%s", err);
            fail(err, errlen, "%s:%u: %s", path, lineno, detail);
            goto out;
        }
    }
    ret = 0;
out:
    free(buf);
    return ret;
}

/* "--data-dir" / "--data_dir" -> "data_dir" in key (len bytes). */
static int flag_key(const char *flag, size_t flag_len, char *key, size_t len)
{
    if (flag_len < 3 || flag[0] != '-' || flag[1] != '-' || flag_len - 2 >= len)
        return -1;
    for (size_t i = 2; i < flag_len; i++)
        key[i - 2] = flag[i] == '-' ? '_' : flag[i];
    key[flag_len - 2] = '\0';
    return 0;
}

int fota_config_from_args(struct fota_server_config *cfg, int argc, char **argv, char *err,
                          size_t errlen)
{
    char key[64];

    /* --help wins, then the file, then the flags in order. */
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)
            return 1;
    }
    for (int i = 0; i < argc; i++) {
        const char *path = NULL;
        if (strcmp(argv[i], "--config") == 0) {
            if (i + 1 >= argc)
                return fail(err, errlen, "--config needs a FILE");
            path = argv[i + 1];
        } else if (strncmp(argv[i], "--config=", 9) == 0) {
            path = argv[i] + 9;
        }
        if (path != NULL && fota_config_load_file(cfg, path, err, errlen) != 0)
            return -1;
    }
    for (int i = 0; i < argc; i++) {
        const char *arg = argv[i];
        const char *eq = strchr(arg, '=');
        const char *value;
        size_t flag_len = eq != NULL ? (size_t)(eq - arg) : strlen(arg);

        if (flag_key(arg, flag_len, key, sizeof(key)) != 0)
            return fail(err, errlen, "unexpected argument '%s'", arg);
        if (eq != NULL) {
            value = eq + 1;
        } else {
            if (i + 1 >= argc)
                return fail(err, errlen, "%.*s needs a value", (int)flag_len, arg);
            value = argv[++i];
        }
        if (strcmp(key, "config") == 0)
            continue;
        if (fota_config_set(cfg, key, value, err, errlen) != 0) {
            char detail[512];
            snprintf(detail, sizeof(detail), "%s", err);
            size_t klen = strlen(key);
            if (strncmp(detail, "unknown setting", 15) == 0)
                return fail(err, errlen, "unknown option '%.*s'", (int)flag_len, arg);
            /* "max_body: reason" -> "--max-body: reason" */
            if (strncmp(detail, key, klen) == 0 && detail[klen] == ':')
                return fail(err, errlen, "%.*s%s", (int)flag_len, arg, detail + klen);
            return fail(err, errlen, "%.*s: %s", (int)flag_len, arg, detail);
        }
    }
    return 0;
}

int fota_config_validate(const struct fota_server_config *cfg, char *err, size_t errlen)
{
    if (cfg->data_dir[0] == '\0')
        return fail(err, errlen, "data_dir is required (--data-dir DIR or data_dir = DIR)");
    if ((cfg->tls_cert[0] == '\0') != (cfg->tls_key[0] == '\0'))
        return fail(err, errlen, "tls_cert and tls_key go together: give both or neither");
    if (cfg->timestamp_renew_before_s >= cfg->timestamp_expiry_s)
        return fail(err, errlen,
                    "timestamp_renew_before (%" PRId64 "s) must be shorter than "
                    "timestamp_expiry (%" PRId64 "s)",
                    cfg->timestamp_renew_before_s, cfg->timestamp_expiry_s);
    return 0;
}
