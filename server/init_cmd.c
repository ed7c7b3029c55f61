/* SPDX-License-Identifier: Apache-2.0 */
/*
 * `fota-server init`: give a data directory its repository. The published
 * metadata/ and targets/ of a `fota repo` folder are copied into
 * DATA_DIR/repo, after checking that the repository is complete and that
 * the server's snapshot and timestamp keys are the ones its root names
 * (otherwise the server could not renew what it serves). The database is
 * created too. The copy is made in a staging folder and renamed into place,
 * so DATA_DIR/repo is either absent or complete.
 */
#include <dirent.h>
#include <stdarg.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "fota/json.h"
#include "fota/tuf.h"
#include "fota/tuf_repo.h"
#include "fota_posix.h"
#include "init_cmd.h"
#include "server.h"
#include "store.h"
#include "tuf_online.h"

static const char init_usage[] =
    "Usage: fota-server init --data-dir DIR --repo REPO [--config FILE]\n"
    "                        [--snapshot-key FILE] [--timestamp-key FILE]\n"
    "\n"
    "Copy the published repository of a `fota repo` folder (REPO/metadata and\n"
    "REPO/targets, as `fota repo publish` left them) into DIR/repo, and create\n"
    "the database DIR/fota.db. The snapshot and timestamp keys the server will\n"
    "sign with (--snapshot-key/--timestamp-key, the config file, or\n"
    "DIR/keys/<role>.pem) must be the keys REPO's root lists for those roles,\n"
    "with threshold 1; init refuses otherwise. root and targets keys never go\n"
    "to the server. DIR/repo must not hold a repository yet.\n"
    "\n"
    "Exit status: 0 initialised, 1 refused or failed, 2 usage error.\n";

/* Caps on what a repository copy may hold. */
#define INIT_MAX_DEPTH 16
#define INIT_MAX_FILES 100000

static int say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int say(const char *fmt, ...)
{
    va_list ap;

    fputs("fota-server init: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    return 1;
}

/* An online key: the configured file, else DATA_DIR/keys/<role>.pem
 * (as serve finds it, server.c). */
static int load_key(const struct fota_server_config *cfg, const char *configured,
                    const char *role, struct fota_server_key *ret)
{
    char path[1100];
    fota_err err;

    if (configured[0] != '\0')
        snprintf(path, sizeof path, "%s", configured);
    else if (fota_server_default_key_path(cfg->data_dir, role, path, sizeof path) != 0)
        return say("data dir path too long");
    err = fota_server_key_load(ret, path);
    if (err == FOTA_E_NOT_FOUND && configured[0] == '\0')
        return say("no %s key: give --%s-key FILE or put it at %s", role, role, path);
    if (err != FOTA_OK)
        return say("%s key %s: %s", role, path,
                   err == FOTA_E_IO ? strerror(errno) : fota_strerror(err));
    return 0;
}

/* Root must carry its own threshold of signatures (the chain from a
 * device's first root is the device's business; this is a sanity check
 * that REPO holds what `fota repo publish` writes). */
static int check_root(const char *repo)
{
    struct fota_server tmp;
    json_t *root = NULL;
    const json_t *s;
    unsigned valid = 0;
    fota_err err;
    int rc = 1;

    memset(&tmp, 0, sizeof tmp);
    snprintf(tmp.repo_dir, sizeof tmp.repo_dir, "%s", repo);
    err = fota_tuf_online_root(&tmp, &root);
    if (err != FOTA_OK) {
        say("%s/metadata/root.json: %s", repo,
            err == FOTA_E_NOT_FOUND ? "missing (publish the repository with 'fota repo publish')"
                                    : fota_strerror(err));
        goto out;
    }
    s = json_object_get(root, "signed");
    err = fota_tuf_verify_role(root, json_object_get(s, "keys"),
                               json_object_get(json_object_get(s, "roles"), "root"), &valid);
    if (err != FOTA_OK) {
        say("%s/metadata/root.json: root v%lld is not signed by its own threshold (%s)", repo,
            (long long)fota_tuf_repo_version(root), fota_strerror(err));
        goto out;
    }
    rc = 0;
out:
    json_decref(root);
    return rc;
}

struct copy_stats {
    size_t files;
    uint64_t bytes;
};

struct sink {
    struct fota_posix_atomic *out;
    uint64_t n;
};

static fota_err sink_write(void *ctx, const uint8_t *data, size_t len)
{
    struct sink *s = ctx;

    s->n += len;
    return fota_posix_atomic_write(s->out, data, len);
}

static int copy_file(const char *src, const char *dst, struct copy_stats *stats)
{
    struct fota_posix_atomic a = {.fd = -1, .dir_fd = -1};
    struct sink s = {&a, 0};
    fota_err err;

    err = fota_posix_atomic_open_path(&a, dst, 0644, 0);
    if (err == FOTA_OK)
        err = fota_posix_file_stream(src, UINT64_MAX, sink_write, &s);
    if (err == FOTA_OK)
        err = fota_posix_atomic_commit(&a);
    fota_posix_atomic_abort(&a);
    if (err != FOTA_OK)
        return say("copying %s: %s", src, err == FOTA_E_IO ? strerror(errno) : fota_strerror(err));
    stats->files++;
    stats->bytes += s.n;
    return 0;
}

/* Copy the regular files and folders under src into dst (created). Links,
 * devices and the like are refused: the server serves only what is under
 * its repository, and a link could point anywhere. */
static int copy_tree(const char *src, const char *dst, int depth, struct copy_stats *stats)
{
    DIR *d = NULL;
    struct dirent *e;
    int rc = 1;

    if (depth > INIT_MAX_DEPTH)
        return say("%s: folders nested deeper than %d", src, INIT_MAX_DEPTH);
    if (fota_posix_mkdir(dst) != FOTA_OK)
        return say("cannot create %s: %s", dst, strerror(errno));
    d = opendir(src);
    if (d == NULL)
        return say("%s: %s", src, strerror(errno));
    for (;;) {
        char s[4096], t[4096];
        struct stat st;

        errno = 0;
        e = readdir(d);
        if (e == NULL) {
            if (errno != 0) {
                say("%s: %s", src, strerror(errno));
                goto out;
            }
            break;
        }
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        /* Temp files of an interrupted `fota` run are not part of it. */
        if (strncmp(e->d_name, ".fota+tmp.", 10) == 0)
            continue;
        if (snprintf(s, sizeof s, "%s/%s", src, e->d_name) >= (int)sizeof s ||
            snprintf(t, sizeof t, "%s/%s", dst, e->d_name) >= (int)sizeof t) {
            say("%s/%s: path too long", src, e->d_name);
            goto out;
        }
        if (lstat(s, &st) != 0) {
            say("%s: %s", s, strerror(errno));
            goto out;
        }
        if (stats->files >= INIT_MAX_FILES) {
            say("%s: more than %d files", src, INIT_MAX_FILES);
            goto out;
        }
        if (S_ISDIR(st.st_mode)) {
            if (copy_tree(s, t, depth + 1, stats) != 0)
                goto out;
        } else if (S_ISREG(st.st_mode)) {
            if (copy_file(s, t, stats) != 0)
                goto out;
        } else {
            say("%s: not a regular file or folder (links are not copied)", s);
            goto out;
        }
    }
    rc = 0;
out:
    closedir(d);
    return rc;
}

/* Remove a staging tree made by copy_tree (only what it makes: folders and
 * regular files). */
static void remove_tree(const char *path, int depth)
{
    DIR *d;
    struct dirent *e;

    if (depth > INIT_MAX_DEPTH + 1)
        return;
    d = opendir(path);
    if (d == NULL)
        return;
    while ((e = readdir(d)) != NULL) {
        char s[4096];
        struct stat st;

        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        if (snprintf(s, sizeof s, "%s/%s", path, e->d_name) >= (int)sizeof s)
            continue;
        if (lstat(s, &st) == 0 && S_ISDIR(st.st_mode))
            remove_tree(s, depth + 1);
        else
            unlink(s);
    }
    closedir(d);
    rmdir(path);
}

int fota_server_cmd_init(int argc, char **argv)
{
    struct fota_server *srv = NULL;
    char **rest = NULL;
    const char *repo = NULL;
    char err[1024], path[1200], staging[1200], dest[1300];
    struct copy_stats stats = {0, 0};
    struct fota_store *st = NULL;
    struct stat sb;
    int nrest = 0, status = 2, rc;
    enum fota_store_err se;

    /* argv[0] is the first argument after "init". --repo is init's own;
     * every other option is a serve option (config file, keys). */
    rest = calloc((size_t)argc + 1, sizeof *rest);
    srv = calloc(1, sizeof *srv);
    if (rest == NULL || srv == NULL) {
        say("out of memory");
        status = 1;
        goto out;
    }
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            fputs(init_usage, stdout);
            status = 0;
            goto out;
        }
        if (strcmp(argv[i], "--repo") == 0) {
            if (i + 1 >= argc) {
                say("--repo needs a folder");
                goto out;
            }
            repo = argv[++i];
        } else if (strncmp(argv[i], "--repo=", 7) == 0) {
            repo = argv[i] + 7;
        } else {
            rest[nrest++] = argv[i];
        }
    }
    fota_config_defaults(&srv->cfg);
    rc = fota_config_from_args(&srv->cfg, nrest, rest, err, sizeof err);
    if (rc != 0) {
        say("%s (try 'fota-server init --help')", err);
        goto out;
    }
    if (repo == NULL || repo[0] == '\0') {
        say("--repo REPO is required (a folder made by 'fota repo init' and published)");
        goto out;
    }
    if (srv->cfg.data_dir[0] == '\0') {
        say("--data-dir DIR is required");
        goto out;
    }
    status = 1;
    snprintf(srv->repo_dir, sizeof srv->repo_dir, "%s/repo", srv->cfg.data_dir);
    snprintf(srv->db_path, sizeof srv->db_path, "%s/fota.db", srv->cfg.data_dir);

    /* 1. The repository and the keys, before anything is written. */
    if (check_root(repo) != 0)
        goto out;
    if (load_key(&srv->cfg, srv->cfg.snapshot_key, "snapshot", &srv->snapshot) != 0 ||
        load_key(&srv->cfg, srv->cfg.timestamp_key, "timestamp", &srv->timestamp) != 0)
        goto out;
    {
        struct fota_server src = *srv;

        snprintf(src.repo_dir, sizeof src.repo_dir, "%s", repo);
        if (fota_tuf_online_check(&src, err, sizeof err) != 0) {
            say("%s: %s", repo, err);
            goto out;
        }
    }
    snprintf(path, sizeof path, "%s/targets", repo);
    if (stat(path, &sb) != 0 || !S_ISDIR(sb.st_mode)) {
        say("%s: no targets/ folder", repo);
        goto out;
    }
    snprintf(path, sizeof path, "%s/metadata/root.json", srv->repo_dir);
    if (lstat(path, &sb) == 0) {
        say("%s already holds a repository; the server publishes into it from now on "
            "(use 'fota release push')",
            srv->repo_dir);
        goto out;
    }

    /* 2. Copy into a staging folder, then rename it into place. */
    if (fota_posix_mkdirs(srv->cfg.data_dir) != FOTA_OK) {
        say("cannot create %s: %s", srv->cfg.data_dir, strerror(errno));
        goto out;
    }
    snprintf(staging, sizeof staging, "%s/.repo-init.%ld", srv->cfg.data_dir, (long)getpid());
    remove_tree(staging, 0);
    if (fota_posix_mkdir(staging) != FOTA_OK) {
        say("cannot create %s: %s", staging, strerror(errno));
        goto out;
    }
    snprintf(path, sizeof path, "%s/targets", repo);
    snprintf(dest, sizeof dest, "%s/targets", staging);
    if (copy_tree(path, dest, 0, &stats) != 0)
        goto cleanup;
    snprintf(path, sizeof path, "%s/metadata", repo);
    snprintf(dest, sizeof dest, "%s/metadata", staging);
    if (copy_tree(path, dest, 0, &stats) != 0)
        goto cleanup;
    /* An empty DIR/repo (made by hand) is replaced; a non-empty one is not. */
    if (rename(staging, srv->repo_dir) != 0) {
        say("cannot move the repository into %s: %s", srv->repo_dir,
            errno == ENOTEMPTY || errno == EEXIST ? "it exists and is not empty"
                                                  : strerror(errno));
        goto cleanup;
    }

    /* 3. The database. */
    se = fota_store_open(srv->db_path, &st);
    if (se != FOTA_STORE_OK) {
        say("%s: cannot create the database: %s", srv->db_path, fota_store_strerror(se));
        goto out;
    }
    fota_store_close(st);
    printf("initialised %s from %s (%zu files, %llu bytes); snapshot key %.16s, timestamp key "
           "%.16s\n",
           srv->repo_dir, repo, stats.files, (unsigned long long)stats.bytes, srv->snapshot.keyid,
           srv->timestamp.keyid);
    status = 0;
    goto out;
cleanup:
    remove_tree(staging, 0);
out:
    if (srv != NULL) {
        fota_server_key_free(&srv->snapshot);
        fota_server_key_free(&srv->timestamp);
    }
    free(srv);
    free(rest);
    return status;
}
