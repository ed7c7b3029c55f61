/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fota-tuf-client: the libfota TUF client behind the command line that
 * interoperability test suites drive (the tuf-conformance "client under
 * test" protocol). See docs/tuf-client.md.
 *
 * The workflow itself lives in libfota; this program supplies the POSIX port
 * and does the one thing the engine leaves to its caller: moving target bytes
 * from the network into the target directory, through the streaming check,
 * so that nothing unverified ever appears there.
 *
 * Exit status: 0 on success, 1 on any failure (usage errors included).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fota/crypto.h"
#include "fota/error.h"
#include "fota/tuf.h"
#include "fota_posix.h"

#define PROG "fota-tuf-client"
#define EXIT_OK 0
#define EXIT_FAIL 1
#define MAX_TARGET_NAMES 1024
/* A file name holds at most 255 bytes; encoding triples a byte at worst. */
#define ENCODED_NAME_MAX 256
#define READ_CHUNK 65536

struct options {
    const char *metadata_dir;
    const char *metadata_url;
    const char *target_base_url;
    const char *target_dir;
    const char *target_names[MAX_TARGET_NAMES];
    size_t n_target_names;
    int verbose;
    int help;
    const char *command;
    const char *command_arg;
    size_t n_positional;
};

static void usage(FILE *f)
{
    fprintf(f,
            "usage:\n"
            "  " PROG " --metadata-dir DIR init ROOT_FILE\n"
            "  " PROG " --metadata-dir DIR --metadata-url URL refresh\n"
            "  " PROG " --metadata-dir DIR --metadata-url URL --target-name NAME"
            " [--target-name NAME ...]\n"
            "      --target-base-url URL --target-dir DIR download\n"
            "\n"
            "options (in any order, before the command word; --opt=value works too):\n"
            "  --metadata-dir DIR      trusted metadata (root.json, timestamp.json, ...)\n"
            "  --metadata-url URL      base URL of the repository's metadata\n"
            "  --target-name NAME      target path to download (repeatable, in order)\n"
            "  --target-base-url URL   base URL of the repository's targets\n"
            "  --target-dir DIR        where verified targets are written\n"
            "  -v, --verbose           print every check made\n"
            "  -h, --help              print this help and exit\n"
            "\n"
            "exit status: 0 on success, 1 on any failure\n");
}

#define fail_msg(...) fota_posix_msg(PROG, __VA_ARGS__)

/* Options that take a value; the matching field in struct options. */
static const char **value_slot(struct options *o, const char *name)
{
    if (strcmp(name, "metadata-dir") == 0)
        return &o->metadata_dir;
    if (strcmp(name, "metadata-url") == 0)
        return &o->metadata_url;
    if (strcmp(name, "target-base-url") == 0)
        return &o->target_base_url;
    if (strcmp(name, "target-dir") == 0)
        return &o->target_dir;
    return NULL;
}

/* 0 on success; -1 after printing a usage error. */
static int parse_args(int argc, char **argv, struct options *o)
{
    int i, only_positional = 0;

    memset(o, 0, sizeof(*o));
    for (i = 1; i < argc; i++) {
        const char *arg = argv[i];
        char name[32];
        const char *value = NULL;
        const char *eq;
        const char **slot;
        size_t nlen;

        if (only_positional || arg[0] != '-' || strcmp(arg, "-") == 0) {
            if (o->n_positional == 0)
                o->command = arg;
            else if (o->n_positional == 1)
                o->command_arg = arg;
            o->n_positional++;
            continue;
        }
        if (strcmp(arg, "--") == 0) {
            only_positional = 1;
            continue;
        }
        if (strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0) {
            o->help = 1;
            continue;
        }
        if (strcmp(arg, "-v") == 0 || strcmp(arg, "--verbose") == 0) {
            o->verbose = 1;
            continue;
        }
        if (strncmp(arg, "--", 2) != 0) {
            fail_msg("unknown option %s", arg);
            return -1;
        }
        eq = strchr(arg + 2, '=');
        nlen = eq != NULL ? (size_t)(eq - (arg + 2)) : strlen(arg + 2);
        if (nlen == 0 || nlen >= sizeof(name)) {
            fail_msg("unknown option %s", arg);
            return -1;
        }
        memcpy(name, arg + 2, nlen);
        name[nlen] = '\0';
        slot = value_slot(o, name);
        if (slot == NULL && strcmp(name, "target-name") != 0) {
            fail_msg("unknown option --%s", name);
            return -1;
        }
        if (eq != NULL) {
            value = eq + 1;
        } else if (i + 1 < argc) {
            value = argv[++i];
        } else {
            fail_msg("option --%s needs a value", name);
            return -1;
        }
        if (value[0] == '\0') {
            fail_msg("option --%s needs a non-empty value", name);
            return -1;
        }
        if (slot == NULL) {
            if (o->n_target_names == MAX_TARGET_NAMES) {
                fail_msg("too many --target-name options (at most %d)", MAX_TARGET_NAMES);
                return -1;
            }
            o->target_names[o->n_target_names++] = value;
        } else {
            if (*slot != NULL) {
                fail_msg("option --%s given twice", name);
                return -1;
            }
            *slot = value;
        }
    }
    return 0;
}

/* Check that the command has what it needs and nothing it would ignore. */
static int check_args(const struct options *o)
{
    int is_init, is_refresh, is_download;

    if (o->command == NULL) {
        fail_msg("no command given (init, refresh or download); see --help");
        return -1;
    }
    is_init = strcmp(o->command, "init") == 0;
    is_refresh = strcmp(o->command, "refresh") == 0;
    is_download = strcmp(o->command, "download") == 0;
    if (!is_init && !is_refresh && !is_download) {
        fail_msg("unknown command '%s'; see --help", o->command);
        return -1;
    }
    if (o->n_positional != (is_init ? 2u : 1u)) {
        fail_msg("%s: %s", o->command,
                 is_init ? "takes exactly one argument, the root file"
                         : "takes no argument after the command word");
        return -1;
    }
    if (o->metadata_dir == NULL) {
        fail_msg("%s: --metadata-dir is required", o->command);
        return -1;
    }
    if (!is_init && o->metadata_url == NULL) {
        fail_msg("%s: --metadata-url is required", o->command);
        return -1;
    }
    if (is_download) {
        if (o->n_target_names == 0 || o->target_base_url == NULL || o->target_dir == NULL) {
            fail_msg("download: --target-name, --target-base-url and --target-dir are required");
            return -1;
        }
    } else if (o->n_target_names > 0 || o->target_base_url != NULL || o->target_dir != NULL) {
        fail_msg("%s: --target-name, --target-base-url and --target-dir are only for download",
                 o->command);
        return -1;
    }
    return 0;
}

static void say(struct fota_posix_tuf *t, enum fota_tuf_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void say(struct fota_posix_tuf *t, enum fota_tuf_log_level level, const char *fmt, ...)
{
    char line[1024];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    fota_posix_log_stderr(t, level, line);
}

/* ---- HTTP tuning from the environment ----------------------------------- */

/* A whole number in [1, max] from the environment variable name, or keep
 * *value when it is unset. -1 (after a message) when it is set but bad. */
static int env_long(const char *name, long max, long *value)
{
    const char *s = getenv(name);
    char *end = NULL;
    long v;

    if (s == NULL || s[0] == '\0')
        return 0;
    errno = 0;
    v = strtol(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v < 1 || v > max) {
        fail_msg("%s must be a whole number from 1 to %ld", name, max);
        return -1;
    }
    *value = v;
    return 0;
}

/* Timeouts are for tests and slow links; the defaults suit a device. */
static int http_tuning(struct fota_posix_http *h)
{
    if (env_long("FOTA_HTTP_CONNECT_TIMEOUT", 3600, &h->connect_timeout_s) != 0 ||
        env_long("FOTA_HTTP_LOW_SPEED_LIMIT", 1L << 30, &h->low_speed_bytes) != 0 ||
        env_long("FOTA_HTTP_LOW_SPEED_TIME", 3600, &h->low_speed_time_s) != 0)
        return -1;
    return 0;
}

/* ---- init --------------------------------------------------------------- */

static int cmd_init(const struct options *o)
{
    struct fota_tuf_limits limits;
    uint8_t *buf = NULL;
    size_t len = 0;
    fota_err err;
    int rc = EXIT_FAIL;

    fota_tuf_limits_default(&limits);
    err = fota_posix_read_file(o->command_arg, limits.root_max_len, &buf, &len);
    if (err != FOTA_OK) {
        fail_msg("init failed: %s: cannot read %s%s", fota_strerror(err), o->command_arg,
                 err == FOTA_E_LENGTH ? " (larger than the root size cap)" : "");
        goto out;
    }
    err = fota_posix_mkdir(o->metadata_dir);
    if (err == FOTA_OK)
        err = fota_posix_dir_store(o->metadata_dir, "root.json", buf, len);
    if (err != FOTA_OK) {
        fail_msg("init failed: %s: cannot write %s/root.json", fota_strerror(err),
                 o->metadata_dir);
        goto out;
    }
    rc = EXIT_OK;
out:
    free(buf);
    return rc;
}

/* ---- refresh ------------------------------------------------------------ */

/* Create the client and refresh it; on failure print the final error line
 * and return non-OK with *ret_client untouched. */
static fota_err refresh(struct fota_posix_tuf *t, fota_tuf_client **ret_client)
{
    fota_tuf_client *client = NULL;
    fota_err err;

    err = fota_tuf_client_new(&t->port, NULL, &client);
    if (err != FOTA_OK) {
        fail_msg("refresh failed: %s: trusted %s/root.json is %s", fota_strerror(err),
                 t->metadata_dir, err == FOTA_E_NOT_FOUND ? "missing" : "not valid");
        return err;
    }
    err = fota_tuf_refresh(client);
    if (err != FOTA_OK) {
        fail_msg("refresh failed: %s: %s", fota_strerror(err), fota_tuf_errmsg(client));
        fota_tuf_client_free(client);
        return err;
    }
    *ret_client = client;
    return FOTA_OK;
}

static int cmd_refresh(struct fota_posix_tuf *t)
{
    fota_tuf_client *client = NULL;

    if (refresh(t, &client) != FOTA_OK)
        return EXIT_FAIL;
    fota_tuf_client_free(client);
    return EXIT_OK;
}

/* ---- download ----------------------------------------------------------- */

/* Stream the local file dir/name through a fresh check of target. FOTA_OK
 * only when it exists and matches length and every hash. */
static fota_err local_copy_verifies(const char *dir, const char *name,
                                    const struct fota_tuf_target *target)
{
    struct fota_tuf_target_check check;
    fota_err err = FOTA_E_IO;
    uint8_t *chunk = NULL;
    char *path = NULL;
    size_t plen;
    int fd = -1;

    plen = strlen(dir) + 1 + strlen(name) + 1;
    path = malloc(plen);
    chunk = malloc(READ_CHUNK);
    if (path == NULL || chunk == NULL) {
        err = FOTA_E_NOMEM;
        goto out;
    }
    snprintf(path, plen, "%s/%s", dir, name);
    fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY);
    if (fd < 0) {
        err = errno == ENOENT ? FOTA_E_NOT_FOUND : FOTA_E_IO;
        goto out;
    }
    err = fota_tuf_target_check_init(&check, target);
    if (err != FOTA_OK)
        goto out;
    for (;;) {
        ssize_t n = read(fd, chunk, READ_CHUNK);

        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            fota_tuf_target_check_abort(&check);
            err = FOTA_E_IO;
            goto out;
        }
        if (n == 0)
            break;
        err = fota_tuf_target_check_update(&check, chunk, (size_t)n);
        if (err != FOTA_OK) {
            fota_tuf_target_check_abort(&check);
            goto out;
        }
    }
    err = fota_tuf_target_check_final(&check);
out:
    if (fd >= 0)
        close(fd);
    free(chunk);
    free(path);
    return err;
}

struct download_sink {
    struct fota_tuf_target_check check;
    struct fota_posix_atomic file;
};

/* Check first, then write: a byte past the signed length, or any write
 * failure, stops the transfer before it reaches the disk. */
static fota_err download_sink_feed(void *ctx, const uint8_t *data, size_t len)
{
    struct download_sink *s = ctx;
    fota_err err;

    err = fota_tuf_target_check_update(&s->check, data, len);
    if (err != FOTA_OK)
        return err;
    return fota_posix_atomic_write(&s->file, data, len);
}

/* Download one target into o->target_dir. On failure, prints the final
 * error line. */
static fota_err download_one(struct fota_posix_tuf *t, fota_tuf_client *client,
                             const struct options *o, const char *base, const char *path)
{
    struct fota_tuf_target target;
    struct download_sink sink;
    char local[ENCODED_NAME_MAX];
    char *url = NULL;
    fota_err err;

    err = fota_tuf_find_target(client, path, &target);
    if (err != FOTA_OK) {
        const char *detail = fota_tuf_errmsg(client);

        if (detail[0] != '\0')
            fail_msg("download failed: %s: %s", fota_strerror(err), detail);
        else
            fail_msg("download failed: %s: %s: no trusted role lists this target",
                     fota_strerror(err), path);
        return err;
    }
    err = fota_tuf_encode_name(target.path, local, sizeof(local));
    if (err != FOTA_OK || !fota_posix_name_ok(local)) {
        err = err != FOTA_OK ? err : FOTA_E_INVALID;
        fail_msg("download failed: %s: %s: cannot be stored as one file name",
                 fota_strerror(err), path);
        return err;
    }

    err = local_copy_verifies(o->target_dir, local, &target);
    if (err == FOTA_OK) {
        say(t, FOTA_TUF_LOG_CHECK, "target %s: %s/%s already verified, not fetched", path,
            o->target_dir, local);
        return FOTA_OK;
    }
    if (err != FOTA_E_NOT_FOUND) {
        /* A file that does not match the trusted metadata is not a verified
         * target: it must not stay, whatever happens next. */
        say(t, FOTA_TUF_LOG_INFO, "target %s: local copy does not verify (%s), removing it",
            path, fota_strerror(err));
        err = fota_posix_dir_remove(o->target_dir, local);
        if (err != FOTA_OK) {
            fail_msg("download failed: %s: cannot remove stale %s/%s", fota_strerror(err),
                     o->target_dir, local);
            return err;
        }
    }

    err = fota_posix_target_url(base, &target, fota_tuf_consistent_snapshot(client), &url);
    if (err != FOTA_OK) {
        fail_msg("download failed: %s: %s: cannot build its URL", fota_strerror(err), path);
        return err;
    }
    say(t, FOTA_TUF_LOG_INFO, "fetching %s", url);

    err = fota_posix_atomic_open(&sink.file, o->target_dir, local);
    if (err != FOTA_OK) {
        fail_msg("download failed: %s: cannot create a file in %s", fota_strerror(err),
                 o->target_dir);
        goto out;
    }
    err = fota_tuf_target_check_init(&sink.check, &target);
    if (err != FOTA_OK) {
        fota_posix_atomic_abort(&sink.file);
        fail_msg("download failed: %s: %s: cannot check its hashes", fota_strerror(err), path);
        goto out;
    }
    err = fota_posix_http_stream(&t->http, url, target.length, download_sink_feed, &sink);
    if (err != FOTA_OK) {
        fota_tuf_target_check_abort(&sink.check);
        fota_posix_atomic_abort(&sink.file);
        fail_msg("download failed: %s: %s: %s", fota_strerror(err), path, t->http.errmsg);
        goto out;
    }
    err = fota_tuf_target_check_final(&sink.check);
    if (err != FOTA_OK) {
        fota_posix_atomic_abort(&sink.file);
        fail_msg("download failed: %s: %s: %s", fota_strerror(err), path,
                 err == FOTA_E_HASH ? "hash mismatch" : "length differs from the signed length");
        goto out;
    }
    err = fota_posix_atomic_commit(&sink.file);
    if (err != FOTA_OK) {
        fail_msg("download failed: %s: cannot store %s/%s", fota_strerror(err), o->target_dir,
                 local);
        goto out;
    }
    say(t, FOTA_TUF_LOG_CHECK, "target %s: %llu bytes, length and %zu hash(es) match; "
        "stored as %s/%s", path, (unsigned long long)target.length, target.n_hashes,
        o->target_dir, local);
out:
    free(url);
    return err;
}

static int cmd_download(struct fota_posix_tuf *t, const struct options *o)
{
    fota_tuf_client *client = NULL;
    char *base = NULL;
    int rc = EXIT_FAIL;
    fota_err err;
    size_t i;

    err = fota_posix_url_base(o->target_base_url, &base);
    if (err != FOTA_OK) {
        fail_msg("download failed: %s: bad --target-base-url", fota_strerror(err));
        goto out;
    }
    err = fota_posix_mkdir(o->target_dir);
    if (err != FOTA_OK) {
        fail_msg("download failed: %s: cannot create %s", fota_strerror(err), o->target_dir);
        goto out;
    }
    if (refresh(t, &client) != FOTA_OK)
        goto out;
    for (i = 0; i < o->n_target_names; i++) {
        if (download_one(t, client, o, base, o->target_names[i]) != FOTA_OK)
            goto out;
    }
    rc = EXIT_OK;
out:
    fota_tuf_client_free(client);
    free(base);
    return rc;
}

int main(int argc, char **argv)
{
    struct fota_posix_tuf port;
    struct options o;
    int rc = EXIT_FAIL;
    int have_port = 0, have_http = 0;

    if (parse_args(argc, argv, &o) != 0)
        return EXIT_FAIL;
    if (o.help) {
        usage(stdout);
        return EXIT_OK;
    }
    if (check_args(&o) != 0)
        return EXIT_FAIL;
    if (strcmp(o.command, "init") == 0)
        return cmd_init(&o);

    if (fota_posix_http_global_init() != FOTA_OK) {
        fail_msg("%s failed: %s: cannot initialise libcurl", o.command,
                 fota_strerror(FOTA_E_IO));
        goto out;
    }
    have_http = 1;
    if (fota_posix_tuf_init(&port, o.metadata_dir, o.metadata_url, PROG, o.verbose) != FOTA_OK) {
        fail_msg("%s failed: %s: cannot set up the client", o.command,
                 fota_strerror(FOTA_E_NOMEM));
        goto out;
    }
    have_port = 1;
    if (http_tuning(&port.http) != 0)
        goto out;
    if (strcmp(o.command, "refresh") == 0)
        rc = cmd_refresh(&port);
    else
        rc = cmd_download(&port, &o);
out:
    if (have_port)
        fota_posix_tuf_cleanup(&port);
    if (have_http)
        fota_posix_http_global_cleanup();
    return rc;
}
