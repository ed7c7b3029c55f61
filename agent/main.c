/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fota-agent: the device daemon (docs/agent.md). It opens the flash and the
 * trusted image keys, supplies the hooks (log lines on stderr, a progress
 * bar on a terminal, the health and reboot commands) and runs the agent
 * core (agent/agent.c) once or forever, with jittered polling and
 * exponential backoff after errors.
 *
 * Exit status of --once: 0 idle, 10 updated, 11 pending, 12 rolled back,
 * 13 refused, 14 transient error, 15 rejected, 16 rebooting; 1 local
 * failure (data dir, flash, keys); 2 usage.
 */
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "agent.h"
#include "flash_file.h"
#include "fota/boot.h"
#include "fota/error.h"
#include "fota/tuf.h"
#include "fota_posix.h"
#include "keyfile.h"

#ifndef FOTA_VERSION
#define FOTA_VERSION "0.0.0"
#endif

#define PROG "fota-agent"
#define EXIT_LOCAL 1
#define EXIT_USAGE 2
#define MAX_KEYS 16
#define CONFIG_MAX 65536
#define DEFAULT_CONFIG "/etc/fota/agent.conf"
#define SCRATCH_LEN 4096
#define BACKOFF_START_S 30

/* ---- options and config keys ----------------------------------------------------- */

enum key {
    K_SERVER, K_CA_FILE, K_DATA_DIR, K_FLASH, K_SECTOR_SIZE, K_WRITE_ALIGN, K_SLOT_SIZE,
    K_HARDWARE_ID, K_TUF_ROOT, K_POLL_INTERVAL, K_HEALTH_CMD, K_REBOOT_CMD,
    K_LOW_SPEED_LIMIT, K_LOW_SPEED_TIME, K_CONNECT_TIMEOUT, K_LOG_LEVEL,
    K_IMAGE_KEY, N_KEYS
};

static const char *const key_names[N_KEYS] = {
    "server", "ca_file", "data_dir", "flash", "sector_size", "write_align", "slot_size",
    "hardware_id", "tuf_root", "poll_interval", "health_cmd", "reboot_cmd",
    "low_speed_limit", "low_speed_time", "connect_timeout", "log_level", "image_key",
};

struct values {
    char *v[N_KEYS];               /* owned; NULL when not set */
    char *image_keys[MAX_KEYS];
    size_t n_image_keys;
};

struct options {
    struct values cli, file;
    const char *config;
    int config_given;
    int once, status, json, help, version;
};

/* The merged settings. */
struct settings {
    const char *server, *ca_file, *data_dir, *flash, *hardware_id, *tuf_root;
    const char *health_cmd, *reboot_cmd;
    const char *image_keys[MAX_KEYS];
    size_t n_image_keys;
    uint32_t sector_size, write_align, slot_size;
    unsigned long poll_interval, low_speed_limit, low_speed_time, connect_timeout;
    enum fota_agent_log_level log_level;
};

static const char usage_text[] =
    "usage: " PROG " [--config FILE] [options]            poll forever\n"
    "       " PROG " --once [options]                     one cycle; the exit status says what happened\n"
    "       " PROG " --status [--json] [options]          the local state only (no network)\n"
    "\n"
    "The fota device agent: enrols with fota-server, checks in, refreshes the TUF\n"
    "metadata, downloads and installs updates into the inactive slot, reboots,\n"
    "confirms or rolls back, and reports each step. See docs/agent.md.\n"
    "\n"
    "options (each is also a config-file key: the name without \"--\", \"-\" -> \"_\"):\n"
    "  --config FILE           config file (default " DEFAULT_CONFIG ", may be absent)\n"
    "  --server URL            fota-server base URL (http://host:port or https://...)\n"
    "  --ca-file FILE          pinned CA bundle for https\n"
    "  --data-dir DIR          identity, state and trusted metadata (default /var/lib/fota)\n"
    "  --flash FILE            the flash (a file as fota-boot uses it)\n"
    "  --sector-size N         erase unit (default 4096)\n"
    "  --write-align N         program unit (default 8)\n"
    "  --slot-size N           bytes per slot (default: as fota-boot)\n"
    "  --hardware-id HW        this device's hardware id\n"
    "  --image-key FILE        trusted image key (repeatable; config: one image_key line each)\n"
    "  --tuf-root FILE         trusted root.json, copied to DATA/tuf/root.json when absent\n"
    "  --poll-interval SECS    seconds between check-ins (default 1800, jittered +-10%)\n"
    "  --health-cmd CMD        health check of a new image on trial (/bin/sh -c; 0 = healthy)\n"
    "  --reboot-cmd CMD        reboot command (default \"systemctl reboot\")\n"
    "  --low-speed-limit B     minimum download speed in bytes/s (default 1024)\n"
    "  --low-speed-time SECS   ... over this many seconds (default 30)\n"
    "  --connect-timeout SECS  (default 10)\n"
    "  --log-level LEVEL       debug, info, warn or error (default info)\n"
    "  --once                  run one cycle and exit\n"
    "  --status                print the device's state and exit\n"
    "  --json                  machine-readable output (--status, --once)\n"
    "  -h, --help              this text\n"
    "  --version               print the version\n"
    "\n"
    "exit status of --once: 0 idle, 10 updated, 11 pending, 12 rolled back, 13 refused,\n"
    "14 transient error, 15 rejected, 16 rebooting; 1 local failure; 2 usage\n";

#define msg(...) fota_posix_msg(PROG, __VA_ARGS__)

static void values_free(struct values *v)
{
    for (int i = 0; i < N_KEYS; i++)
        free(v->v[i]);
    for (size_t i = 0; i < v->n_image_keys; i++)
        free(v->image_keys[i]);
    memset(v, 0, sizeof *v);
}

/* Set key to value in v. -1 (after a message naming where) on error. */
static int values_set(struct values *v, enum key k, const char *value, const char *where)
{
    char *copy;

    if (value[0] == '\0') {
        msg("%s: %s needs a value", where, key_names[k]);
        return -1;
    }
    if (k == K_IMAGE_KEY && v->n_image_keys == MAX_KEYS) {
        msg("%s: at most %d image keys", where, MAX_KEYS);
        return -1;
    }
    if (k != K_IMAGE_KEY && v->v[k] != NULL) {
        msg("%s: %s given twice", where, key_names[k]);
        return -1;
    }
    copy = strdup(value);
    if (copy == NULL) {
        msg("out of memory");
        return -1;
    }
    if (k == K_IMAGE_KEY)
        v->image_keys[v->n_image_keys++] = copy;
    else
        v->v[k] = copy;
    return 0;
}

static int key_lookup(const char *name, size_t len)
{
    for (int i = 0; i < N_KEYS; i++) {
        if (strlen(key_names[i]) == len && strncmp(key_names[i], name, len) == 0)
            return i;
    }
    return -1;
}

/* 0 ok, 1 help/version printed, -1 usage error. */
static int parse_args(int argc, char **argv, struct options *o)
{
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        const char *eq, *value;
        char name[32];
        size_t nlen;
        int k;

        if (strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0) {
            o->help = 1;
            continue;
        }
        if (strcmp(arg, "--version") == 0) {
            o->version = 1;
            continue;
        }
        if (strcmp(arg, "--once") == 0) {
            o->once = 1;
            continue;
        }
        if (strcmp(arg, "--status") == 0) {
            o->status = 1;
            continue;
        }
        if (strcmp(arg, "--json") == 0) {
            o->json = 1;
            continue;
        }
        if (strncmp(arg, "--", 2) != 0) {
            msg("%s: unexpected argument (try --help)", arg);
            return -1;
        }
        eq = strchr(arg + 2, '=');
        nlen = eq != NULL ? (size_t)(eq - (arg + 2)) : strlen(arg + 2);
        if (nlen == 0 || nlen >= sizeof name) {
            msg("%s: unknown option (try --help)", arg);
            return -1;
        }
        memcpy(name, arg + 2, nlen);
        name[nlen] = '\0';
        for (char *p = name; *p != '\0'; p++) {
            if (*p == '-')
                *p = '_';
        }
        k = key_lookup(name, nlen);
        if (k < 0 && strcmp(name, "config") != 0) {
            msg("%s: unknown option (try --help)", arg);
            return -1;
        }
        if (eq != NULL) {
            value = eq + 1;
        } else if (i + 1 < argc) {
            value = argv[++i];
        } else {
            msg("--%.*s needs a value", (int)nlen, arg + 2);
            return -1;
        }
        if (k < 0) {
            if (value[0] == '\0') {
                msg("--config needs a value");
                return -1;
            }
            o->config = value;
            o->config_given = 1;
        } else if (values_set(&o->cli, (enum key)k, value, "command line") != 0) {
            return -1;
        }
    }
    if (o->once && o->status) {
        msg("give at most one of --once and --status");
        return -1;
    }
    return o->help || o->version ? 1 : 0;
}

static char *trim(char *s)
{
    char *e;

    while (*s == ' ' || *s == '\t')
        s++;
    e = s + strlen(s);
    while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r'))
        *--e = '\0';
    return s;
}

/* "key = value" lines; '#' starts a comment line; a value may be wrapped in
 * double quotes. 0 ok, -1 after a message naming FILE:LINE. */
static int read_config(struct options *o)
{
    uint8_t *buf = NULL;
    size_t len = 0;
    char *line, *next = NULL;
    unsigned lineno = 0;
    fota_err err;
    int rc = -1;

    o->config = o->config != NULL ? o->config : DEFAULT_CONFIG;
    err = fota_posix_read_file(o->config, CONFIG_MAX, &buf, &len);
    if (err == FOTA_E_NOT_FOUND && !o->config_given)
        return 0;
    if (err != FOTA_OK) {
        msg("%s: cannot read the config file: %s", o->config,
            err == FOTA_E_LENGTH ? "larger than 64 KiB" : strerror(errno));
        return -1;
    }
    if (memchr(buf, '\0', len) != NULL) {
        msg("%s: not a text file", o->config);
        goto out;
    }
    for (line = (char *)buf; line != NULL; line = next) {
        char where[300];
        char *eq, *key, *value;
        int k;

        next = strchr(line, '\n');
        if (next != NULL)
            *next++ = '\0';
        lineno++;
        line = trim(line);
        if (line[0] == '\0' || line[0] == '#')
            continue;
        snprintf(where, sizeof where, "%s:%u", o->config, lineno);
        eq = strchr(line, '=');
        if (eq == NULL) {
            msg("%s: expected key = value", where);
            goto out;
        }
        *eq = '\0';
        key = trim(line);
        value = trim(eq + 1);
        k = key_lookup(key, strlen(key));
        if (k < 0) {
            msg("%s: unknown key '%s'", where, key);
            goto out;
        }
        if (value[0] == '"') {
            size_t vl = strlen(value);

            if (vl < 2 || value[vl - 1] != '"') {
                msg("%s: unterminated quoted value", where);
                goto out;
            }
            value[vl - 1] = '\0';
            value++;
        }
        if (values_set(&o->file, (enum key)k, value, where) != 0)
            goto out;
    }
    rc = 0;
out:
    free(buf);
    return rc;
}

static const char *pick(const struct options *o, enum key k, const char *def)
{
    if (o->cli.v[k] != NULL)
        return o->cli.v[k];
    if (o->file.v[k] != NULL)
        return o->file.v[k];
    return def;
}

/* A whole number in [min, max]; K/M suffixes for sizes. */
static int number(const struct options *o, enum key k, unsigned long def, unsigned long min,
                  unsigned long max, int size_suffix, unsigned long *ret)
{
    const char *s = pick(o, k, NULL);
    unsigned long long v, mult = 1;
    char *end = NULL;

    if (s == NULL) {
        *ret = def;
        return 0;
    }
    errno = 0;
    if (*s < '0' || *s > '9')
        goto bad;
    v = strtoull(s, &end, 10);
    if (errno != 0 || end == s)
        goto bad;
    if (size_suffix && (*end == 'K' || *end == 'k')) {
        mult = 1024;
        end++;
    } else if (size_suffix && (*end == 'M' || *end == 'm')) {
        mult = 1024 * 1024;
        end++;
    }
    if (*end != '\0' || v > max / mult || v * mult < min)
        goto bad;
    *ret = (unsigned long)(v * mult);
    return 0;
bad:
    msg("%s: '%s' is not a number from %lu to %lu", key_names[k], s, min, max);
    return -1;
}

static int settings_make(const struct options *o, struct settings *s)
{
    const struct values *keys = o->cli.n_image_keys > 0 ? &o->cli : &o->file;
    const char *level;
    unsigned long v = 0;

    memset(s, 0, sizeof s[0]);
    s->server = pick(o, K_SERVER, NULL);
    s->ca_file = pick(o, K_CA_FILE, NULL);
    s->data_dir = pick(o, K_DATA_DIR, "/var/lib/fota");
    s->flash = pick(o, K_FLASH, NULL);
    s->hardware_id = pick(o, K_HARDWARE_ID, NULL);
    s->tuf_root = pick(o, K_TUF_ROOT, NULL);
    s->health_cmd = pick(o, K_HEALTH_CMD, NULL);
    s->reboot_cmd = pick(o, K_REBOOT_CMD, "systemctl reboot");
    for (size_t i = 0; i < keys->n_image_keys; i++)
        s->image_keys[i] = keys->image_keys[i];
    s->n_image_keys = keys->n_image_keys;
    if (number(o, K_SECTOR_SIZE, 4096, 256, 1UL << 24, 1, &v) != 0)
        return -1;
    s->sector_size = (uint32_t)v;
    if (number(o, K_WRITE_ALIGN, 8, 1, FOTA_FLASH_MAX_ALIGN, 0, &v) != 0)
        return -1;
    s->write_align = (uint32_t)v;
    if (number(o, K_SLOT_SIZE, 0, 0, UINT32_MAX, 1, &v) != 0)
        return -1;
    s->slot_size = (uint32_t)v;
    if (number(o, K_POLL_INTERVAL, 1800, 1, 30UL * 86400, 0, &s->poll_interval) != 0 ||
        number(o, K_LOW_SPEED_LIMIT, 1024, 1, 1UL << 30, 1, &s->low_speed_limit) != 0 ||
        number(o, K_LOW_SPEED_TIME, 30, 1, 3600, 0, &s->low_speed_time) != 0 ||
        number(o, K_CONNECT_TIMEOUT, 10, 1, 3600, 0, &s->connect_timeout) != 0)
        return -1;
    level = pick(o, K_LOG_LEVEL, "info");
    if (strcmp(level, "debug") == 0)
        s->log_level = FOTA_AGENT_LOG_DEBUG;
    else if (strcmp(level, "info") == 0)
        s->log_level = FOTA_AGENT_LOG_INFO;
    else if (strcmp(level, "warn") == 0)
        s->log_level = FOTA_AGENT_LOG_WARN;
    else if (strcmp(level, "error") == 0)
        s->log_level = FOTA_AGENT_LOG_ERROR;
    else {
        msg("log_level: '%s' is not debug, info, warn or error", level);
        return -1;
    }
    if (s->flash == NULL) {
        msg("flash is required (--flash FILE or flash = FILE in the config; try --help)");
        return -1;
    }
    if (!o->status) {
        if (s->server == NULL || s->hardware_id == NULL || s->n_image_keys == 0) {
            msg("server, hardware_id and at least one image_key are required (try --help)");
            return -1;
        }
        if (strncmp(s->server, "http://", 7) != 0 && strncmp(s->server, "https://", 8) != 0) {
            msg("server: '%s' is not an http:// or https:// URL", s->server);
            return -1;
        }
    }
    return 0;
}

/* ---- the device: flash and keys ---------------------------------------------- */

struct device {
    struct fota_flash_sim *sim;
    struct fota_image_key keys[MAX_KEYS];
    struct fota_device dev;
    uint8_t scratch[SCRATCH_LEN];
};

static int device_open(const struct settings *s, struct device *d)
{
    struct fota_flash_geometry g = {
        .size = 0,
        .sector_size = s->sector_size,
        .write_align = s->write_align,
        .erased_value = 0xff,
    };
    size_t bad = 0;
    fota_err err;

    err = fota_flash_file_open(s->flash, &g, 0, &d->sim);
    if (err != FOTA_OK) {
        msg("%s: cannot open the flash: %s", s->flash, fota_strerror(err));
        return -1;
    }
    err = fota_flash_default_layout(fota_flash_sim_dev(d->sim), s->slot_size, d->dev.state,
                                    d->dev.slot);
    if (err != FOTA_OK) {
        msg("%s: the flash cannot hold the layout (2 state sectors, 2 slots)", s->flash);
        return -1;
    }
    if (s->n_image_keys > 0) {
        err = fota_keyfile_load_image_keys(s->image_keys, s->n_image_keys, d->keys, &bad);
        if (err != FOTA_OK) {
            msg("%s: not a usable image key: %s", s->image_keys[bad], fota_strerror(err));
            return -1;
        }
    }
    d->dev.keys = d->keys;
    d->dev.n_keys = s->n_image_keys;
    d->dev.threshold = 1;
    d->dev.hardware_id = s->hardware_id != NULL ? s->hardware_id : "";
    d->dev.scratch = d->scratch;
    d->dev.scratch_len = sizeof d->scratch;
    return 0;
}

static void device_close(struct device *d)
{
    fota_keyfile_free_image_keys(d->keys, MAX_KEYS);
    fota_flash_sim_close(d->sim);
}

/* DATA/tuf/root.json from --tuf-root on first start. */
static int provision_root(const struct settings *s)
{
    struct fota_tuf_limits lim;
    uint8_t *buf = NULL;
    size_t len = 0, plen;
    char *tuf = NULL, *root = NULL;
    struct stat sb;
    fota_err err;
    int rc = -1;

    plen = strlen(s->data_dir) + sizeof "/tuf/root.json";
    tuf = malloc(plen);
    root = malloc(plen);
    if (tuf == NULL || root == NULL)
        goto out;
    snprintf(tuf, plen, "%s/tuf", s->data_dir);
    snprintf(root, plen, "%s/tuf/root.json", s->data_dir);
    if (stat(root, &sb) == 0) {
        rc = 0;
        goto out;
    }
    if (s->tuf_root == NULL) {
        msg("%s is missing: give the trusted root once with --tuf-root FILE", root);
        goto out;
    }
    fota_tuf_limits_default(&lim);
    err = fota_posix_read_file(s->tuf_root, lim.root_max_len, &buf, &len);
    if (err != FOTA_OK) {
        msg("%s: cannot read the TUF root: %s", s->tuf_root, fota_strerror(err));
        goto out;
    }
    /* the data dir is private (0700); its parents are created as mkdir -p */
    if (mkdir(s->data_dir, 0700) != 0 && errno != EEXIST &&
        (errno != ENOENT || fota_posix_mkdirs(s->data_dir) != FOTA_OK ||
         chmod(s->data_dir, 0700) != 0)) {
        msg("%s: cannot create the data dir: %s", s->data_dir, strerror(errno));
        goto out;
    }
    err = fota_posix_mkdir(tuf);
    if (err == FOTA_OK)
        err = fota_posix_dir_store(tuf, "root.json", buf, len);
    if (err != FOTA_OK) {
        msg("%s: cannot store the TUF root: %s", root, strerror(errno));
        goto out;
    }
    rc = 0;
out:
    free(buf);
    free(tuf);
    free(root);
    return rc;
}

/* ---- hooks -------------------------------------------------------------------------- */

static volatile sig_atomic_t stop_requested;

struct main_ctx {
    const struct settings *s;
    int tty;
    int bar_open;                  /* a progress line without its newline */
};

static const char *level_name(enum fota_agent_log_level l)
{
    switch (l) {
    case FOTA_AGENT_LOG_DEBUG: return "debug";
    case FOTA_AGENT_LOG_INFO:  return "info";
    case FOTA_AGENT_LOG_WARN:  return "warn";
    default:                   return "error";
    }
}

static void hook_log(void *ctx, enum fota_agent_log_level level, const char *event,
                     const char *line)
{
    struct main_ctx *m = ctx;

    (void)event;
    if (level < m->s->log_level)
        return;
    if (m->bar_open) {
        fputc('\n', stderr);
        m->bar_open = 0;
    }
    if (m->tty) {
        /* journald stamps lines itself; a person at a terminal gets a time */
        char stamp[21];

        fota_tuf_format_time((int64_t)time(NULL), stamp);
        fprintf(stderr, "%s ", stamp);
    }
    fprintf(stderr, PROG ": %s %s\n", level_name(level), line);
}

static void hook_progress(void *ctx, const char *target, uint64_t done, uint64_t total)
{
    struct main_ctx *m = ctx;
    unsigned pct = total > 0 ? (unsigned)(done * 100 / total) : 100;
    char bar[31];
    unsigned fill = pct * 30 / 100;

    if (!m->tty || m->s->log_level > FOTA_AGENT_LOG_INFO)
        return;
    for (unsigned i = 0; i < 30; i++)
        bar[i] = i < fill ? '#' : '.';
    bar[30] = '\0';
    fprintf(stderr, "\r%s [%s] %3u%% %.1f/%.1f MiB", target, bar, pct,
            (double)done / 1048576.0, (double)total / 1048576.0);
    m->bar_open = done < total;
    if (!m->bar_open)
        fputc('\n', stderr);
}

/* Run cmd with /bin/sh -c; its stdout goes to our stderr (stdout is for
 * --status and --json). The exit status, or -1. */
static int run_command(const char *cmd)
{
    pid_t pid, w;
    int status = 0;

    fflush(stdout);
    fflush(stderr);
    pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        dup2(STDERR_FILENO, STDOUT_FILENO);
        execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
        _exit(127);
    }
    do {
        w = waitpid(pid, &status, 0);
    } while (w < 0 && errno == EINTR);
    if (w < 0)
        return -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static int hook_health(void *ctx)
{
    struct main_ctx *m = ctx;

    if (m->s->health_cmd == NULL)
        return 0;
    return run_command(m->s->health_cmd) == 0 ? 0 : 1;
}

static fota_err hook_reboot(void *ctx)
{
    struct main_ctx *m = ctx;
    int rc = run_command(m->s->reboot_cmd);

    if (rc != 0) {
        msg("reboot command failed (exit %d): %s", rc, m->s->reboot_cmd);
        return FOTA_E_IO;
    }
    return FOTA_OK;
}

/* SIGTERM during a download: the transfer stops as if dropped; the resume
 * point is stored and the next start carries on from it. */
static int hook_drop(void *ctx, uint64_t offset, size_t len)
{
    (void)ctx;
    (void)offset;
    (void)len;
    return stop_requested != 0;
}

static void on_signal(int sig)
{
    (void)sig;
    stop_requested = 1;
}

/* ---- output ------------------------------------------------------------------------- */

static int exit_code(enum fota_agent_result r)
{
    switch (r) {
    case FOTA_AGENT_IDLE:        return 0;
    case FOTA_AGENT_UPDATED:     return 10;
    case FOTA_AGENT_PENDING:     return 11;
    case FOTA_AGENT_ROLLED_BACK: return 12;
    case FOTA_AGENT_REFUSED:     return 13;
    case FOTA_AGENT_ERROR:       return 14;
    case FOTA_AGENT_REJECTED:    return 15;
    case FOTA_AGENT_REBOOTING:   return 16;
    }
    return 14;
}

static void print_json(json_t *o)
{
    char *text = o != NULL ? json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS) : NULL;

    if (text == NULL) {
        msg("out of memory");
    } else {
        puts(text);
        free(text);
    }
    json_decref(o);
}

static void print_status(const struct fota_agent_status *st, int as_json)
{
    char fresh[21] = "never";

    if (st->last_fresh > 0)
        fota_tuf_format_time(st->last_fresh, fresh);
    if (as_json) {
        json_t *slots = json_array();

        for (int i = 0; i < 2; i++)
            json_array_append_new(
                slots, json_pack("{s:i,s:s,s:s?,s:I}", "slot", i, "state", st->slots[i].state,
                                 "version",
                                 st->slots[i].version[0] ? st->slots[i].version : NULL,
                                 "security_counter",
                                 (json_int_t)st->slots[i].security_counter));
        print_json(json_pack("{s:s,s:s,s:i,s:s?,s:o,s:b,s:I,s:I,s:s?,s:I,s:I,s:b,s:I}",
                             "device_id", st->device_id, "enrolment", st->enrolment,
                             "running_slot", st->running_slot, "running_version",
                             st->running_version[0] ? st->running_version : NULL, "slots", slots,
                             "pending", st->pending, "security_counter",
                             (json_int_t)st->security_counter, "last_fresh",
                             (json_int_t)st->last_fresh, "last_fresh_time",
                             st->last_fresh > 0 ? fresh : NULL, "seq", (json_int_t)st->seq,
                             "session_counter", (json_int_t)st->session_counter,
                             "download_in_progress", st->download_in_progress,
                             "download_offset", (json_int_t)st->download_offset));
        return;
    }
    printf("device:           %s\n", st->device_id);
    printf("enrolment:        %s\n", st->enrolment);
    printf("running:          slot %c, %s\n", st->running_slot ? 'B' : 'A',
           st->running_version[0] ? st->running_version : "(no image)");
    for (int i = 0; i < 2; i++) {
        if (st->slots[i].version[0])
            printf("slot %c:           %s %s (security counter %lu)\n", i ? 'B' : 'A',
                   st->slots[i].state, st->slots[i].version,
                   (unsigned long)st->slots[i].security_counter);
        else
            printf("slot %c:           %s\n", i ? 'B' : 'A', st->slots[i].state);
    }
    printf("pending:          %s\n", st->pending ? "yes" : "no");
    printf("security counter: %lu\n", (unsigned long)st->security_counter);
    printf("last fresh:       %s\n", fresh);
    printf("seq:              %lld (session counter %lld)\n", (long long)st->seq,
           (long long)st->session_counter);
    if (st->download_in_progress)
        printf("download:         in progress, resumes at byte %llu\n",
               (unsigned long long)st->download_offset);
    else
        printf("download:         none\n");
}

static void print_cycle(const struct fota_agent_cycle_info *info)
{
    print_json(json_pack("{s:s,s:i,s:s,s:s,s:s,s:s,s:I}", "result",
                         fota_agent_result_name(info->result), "exit", exit_code(info->result),
                         "reason", fota_strerror(info->reason), "detail", info->detail,
                         "version", info->version, "target", info->target, "bytes_downloaded",
                         (json_int_t)info->bytes_downloaded));
}

/* One agent per data dir: a second one (a manual --once while the service
 * runs) would race it for the counters and the flash. */
static int lock_data_dir(const struct settings *s, int *ret_fd)
{
    size_t len = strlen(s->data_dir) + sizeof "/agent.lock";
    char *path = malloc(len);
    int fd;

    if (path == NULL) {
        msg("out of memory");
        return -1;
    }
    snprintf(path, len, "%s/agent.lock", s->data_dir);
    fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) {
        msg("%s: %s", path, strerror(errno));
        free(path);
        return -1;
    }
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        msg("%s: %s", path,
            errno == EWOULDBLOCK ? "another fota-agent is running on this data dir"
                                 : strerror(errno));
        close(fd);
        free(path);
        return -1;
    }
    free(path);
    *ret_fd = fd;
    return 0;
}

/* ---- the loop ------------------------------------------------------------------------ */

/* seconds * [0.9, 1.1] */
static unsigned long jitter(unsigned long seconds)
{
    uint32_t r = 0;

    if (getrandom(&r, sizeof r, GRND_NONBLOCK) != (ssize_t)sizeof r)
        r = (uint32_t)time(NULL) * 2654435761u;
    return (unsigned long)((double)seconds * (0.9 + 0.2 * ((double)r / 4294967295.0)) + 0.5);
}

static void sleep_for(unsigned long seconds)
{
    struct timespec ts = {.tv_sec = (time_t)seconds, .tv_nsec = 0};

    /* a signal ends the sleep (no SA_RESTART), and the loop sees the flag */
    while (!stop_requested && nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

static int run(const struct settings *s, const struct options *o, struct fota_agent *agent,
               struct main_ctx *m)
{
    unsigned long backoff = 0;

    if (o->status) {
        struct fota_agent_status st;
        fota_err err = fota_agent_status(agent, &st);

        if (err != FOTA_OK) {
            msg("cannot read the device's state: %s", fota_strerror(err));
            return EXIT_LOCAL;
        }
        print_status(&st, o->json);
        return 0;
    }
    for (;;) {
        struct fota_agent_cycle_info info;
        unsigned long wait;
        fota_err err = fota_agent_cycle(agent, &info);

        if (err != FOTA_OK) {
            msg("local failure: %s (data dir %s, flash %s)", fota_strerror(err), s->data_dir,
                s->flash);
            return EXIT_LOCAL;
        }
        if (o->once) {
            if (o->json)
                print_cycle(&info);
            return stop_requested ? 0 : exit_code(info.result);
        }
        if (stop_requested)
            return 0;
        if (info.result == FOTA_AGENT_ERROR) {
            backoff = backoff == 0 ? BACKOFF_START_S : backoff * 2;
            if (backoff > s->poll_interval)
                backoff = s->poll_interval;
            wait = jitter(backoff);
        } else {
            backoff = 0;
            wait = jitter(s->poll_interval);
        }
        if (wait == 0)
            wait = 1;
        {
            char line[64];

            snprintf(line, sizeof line, "sleep seconds=%lu", wait);
            hook_log(m, FOTA_AGENT_LOG_DEBUG, "sleep", line);
        }
        sleep_for(wait);
        if (stop_requested)
            return 0;
    }
}

int main(int argc, char **argv)
{
    static struct device d;
    struct options o;
    struct settings s;
    struct main_ctx m;
    struct fota_agent_config cfg;
    struct fota_agent_hooks hooks;
    struct fota_agent *agent = NULL;
    struct sigaction sa;
    int rc, have_http = 0, lock_fd = -1;
    fota_err err;

    memset(&o, 0, sizeof o);
    rc = parse_args(argc, argv, &o);
    if (rc != 0) {
        if (rc > 0) {
            if (o.help)
                fputs(usage_text, stdout);
            else
                printf(PROG " %s\n", FOTA_VERSION);
        }
        values_free(&o.cli);
        return rc > 0 ? 0 : EXIT_USAGE;
    }
    rc = EXIT_USAGE;
    if (read_config(&o) != 0 || settings_make(&o, &s) != 0)
        goto out;
    rc = EXIT_LOCAL;
    if (provision_root(&s) != 0 || device_open(&s, &d) != 0)
        goto out;

    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sa.sa_handler = SIG_IGN;
    sigaction(SIGPIPE, &sa, NULL);

    if (fota_posix_http_global_init() != FOTA_OK) {
        msg("cannot initialise libcurl");
        goto out;
    }
    have_http = 1;
    memset(&m, 0, sizeof m);
    m.s = &s;
    m.tty = isatty(STDERR_FILENO);
    memset(&cfg, 0, sizeof cfg);
    cfg.server_url = s.server != NULL ? s.server : "http://127.0.0.1";
    cfg.ca_file = s.ca_file;
    cfg.data_dir = s.data_dir;
    cfg.hardware_id = s.hardware_id != NULL ? s.hardware_id : "unknown";
    cfg.dev = &d.dev;
    cfg.connect_timeout_s = (unsigned)s.connect_timeout;
    cfg.low_speed_bytes = (unsigned)s.low_speed_limit;
    cfg.low_speed_time_s = (unsigned)s.low_speed_time;
    cfg.durable = 1;
    memset(&hooks, 0, sizeof hooks);
    hooks.ctx = &m;
    hooks.log = hook_log;
    hooks.progress = hook_progress;
    hooks.health = hook_health;
    hooks.reboot = hook_reboot;
    hooks.drop_download = hook_drop;
    err = fota_agent_open(&cfg, &hooks, &agent);
    if (err != FOTA_OK) {
        msg("cannot open the data dir %s: %s", s.data_dir, fota_strerror(err));
        goto out;
    }
    if (!o.status && lock_data_dir(&s, &lock_fd) != 0)
        goto out;
    rc = run(&s, &o, agent, &m);
out:
    if (lock_fd >= 0)
        close(lock_fd);
    fota_agent_close(agent);
    if (have_http)
        fota_posix_http_global_cleanup();
    device_close(&d);
    values_free(&o.cli);
    values_free(&o.file);
    return rc;
}
