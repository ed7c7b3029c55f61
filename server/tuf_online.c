/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The online roles: snapshot and timestamp re-signed on publish, timestamp
 * renewed before it expires. See tuf_online.h for the locking rules.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "fota/json.h"
#include "fota/tuf.h"
#include "fota/tuf_repo.h"
#include "fota_posix.h"
#include "log.h"
#include "store_meta.h"
#include "tuf_online.h"

/* fcntl locks are per process: threads of one process take this first. */
static pthread_mutex_t repo_mutex = PTHREAD_MUTEX_INITIALIZER;

int fota_repo_lock_take(const struct fota_server *srv, struct fota_repo_lock *ret_lock)
{
    char path[700];
    struct flock fl;
    int fd;
    int saved;

    if (snprintf(path, sizeof path, "%s/repo.lock", srv->cfg.data_dir) >= (int)sizeof path) {
        errno = ENAMETOOLONG;
        return -1;
    }
    pthread_mutex_lock(&repo_mutex);
    fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) {
        saved = errno;
        pthread_mutex_unlock(&repo_mutex);
        fota_log(FOTA_LOG_ERROR, "repo-lock", "path=%s error=\"%s\"", path, strerror(saved));
        errno = saved;
        return -1;
    }
    memset(&fl, 0, sizeof fl);
    fl.l_type = F_WRLCK;
    fl.l_whence = SEEK_SET;
    while (fcntl(fd, F_SETLKW, &fl) != 0) {
        if (errno == EINTR)
            continue;
        saved = errno;
        close(fd);
        pthread_mutex_unlock(&repo_mutex);
        fota_log(FOTA_LOG_ERROR, "repo-lock", "path=%s error=\"%s\"", path, strerror(saved));
        errno = saved;
        return -1;
    }
    ret_lock->fd = fd;
    return 0;
}

void fota_repo_lock_release(struct fota_repo_lock *lock)
{
    if (lock->fd < 0)
        return;
    /* Closing the descriptor drops the fcntl lock. */
    close(lock->fd);
    lock->fd = -1;
    pthread_mutex_unlock(&repo_mutex);
}

/* data_dir/repo/metadata/<name>; NULL when it does not fit. */
static int metadata_path(const struct fota_server *srv, const char *name, char *out, size_t size)
{
    int n = snprintf(out, size, "%s/metadata/%s", srv->repo_dir, name);

    return n < 0 || (size_t)n >= size ? -1 : 0;
}

fota_err fota_tuf_online_read(const struct fota_server *srv, const char *name, uint8_t **ret_buf,
                              size_t *ret_len)
{
    char path[1024];

    if (metadata_path(srv, name, path, sizeof path) != 0)
        return FOTA_E_TOO_BIG;
    return fota_posix_read_file(path, FOTA_TUF_REPO_MAX_METADATA, ret_buf, ret_len);
}

static fota_err write_metadata(const struct fota_server *srv, const char *name, const char *bytes,
                               size_t len)
{
    char path[1024];
    fota_err err;

    if (metadata_path(srv, name, path, sizeof path) != 0)
        return FOTA_E_TOO_BIG;
    err = fota_posix_write_file(path, bytes, len, 0644, 0);
    if (err != FOTA_OK)
        fota_log(FOTA_LOG_ERROR, "repo-write", "file=metadata/%s error=\"%s\"", name,
                 err == FOTA_E_IO ? strerror(errno) : fota_strerror(err));
    return err;
}

/* Read and parse metadata/<name> as an envelope of type. */
static fota_err load_envelope(const struct fota_server *srv, const char *name, const char *type,
                              uint8_t **ret_buf, size_t *ret_len, json_t **ret_env)
{
    uint8_t *buf = NULL;
    size_t len = 0;
    json_t *env = NULL;
    fota_err err;

    err = fota_tuf_online_read(srv, name, &buf, &len);
    if (err != FOTA_OK)
        goto out;
    err = fota_json_parse(buf, len, FOTA_TUF_REPO_MAX_METADATA, FOTA_JSON_MAX_DEPTH, &env);
    if (err != FOTA_OK)
        goto out;
    err = fota_tuf_repo_check_envelope(env, type);
    if (err != FOTA_OK)
        goto out;
    if (ret_buf != NULL) {
        *ret_buf = buf;
        *ret_len = len;
        buf = NULL;
    }
    if (ret_env != NULL) {
        *ret_env = env;
        env = NULL;
    }
out:
    json_decref(env);
    free(buf);
    return err;
}

fota_err fota_tuf_online_root(const struct fota_server *srv, json_t **ret_root)
{
    return load_envelope(srv, "root.json", "root", NULL, NULL, ret_root);
}

static int64_t env_expires(const json_t *env)
{
    const char *s = json_string_value(json_object_get(json_object_get(env, "signed"), "expires"));
    int64_t t = 0;

    if (s == NULL || fota_tuf_parse_time(s, &t) != FOTA_OK)
        return 0;
    return t;
}

static void expires_after(int64_t now, int64_t seconds, char out[21])
{
    fota_tuf_format_time(now + seconds, out);
}

/* One online key as a signer; FOTA_E_KEY when it is not configured. */
static fota_err signer_of(const struct fota_server_key *k, struct fota_tuf_signer *ret)
{
    if (k->key == NULL || k->keyid[0] == '\0')
        return FOTA_E_KEY;
    ret->key = k->key;
    ret->keyid = k->keyid;
    return FOTA_OK;
}

static int fail(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int fail(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return -1;
}

/* The server's key must be one of role's keys and meet the threshold alone. */
static int check_role_key(const json_t *root, const char *role, const struct fota_server_key *k,
                          const char *option, char *err, size_t errlen)
{
    const json_t *def =
        json_object_get(json_object_get(json_object_get(root, "signed"), "roles"), role);
    json_int_t threshold = json_integer_value(json_object_get(def, "threshold"));

    if (k->key == NULL)
        return fail(err, errlen, "no %s key: give --%s FILE (or put it at DATA_DIR/keys/%s.pem)",
                    role, option, role);
    if (!fota_tuf_repo_role_has_key(root, role, k->keyid))
        return fail(err, errlen,
                    "the %s key (key id %s) is not a %s key of the repository's root v%lld",
                    role, k->keyid, role, (long long)fota_tuf_repo_version(root));
    if (threshold != 1)
        return fail(err, errlen,
                    "root v%lld sets the %s threshold to %lld; the server signs %s with one key",
                    (long long)fota_tuf_repo_version(root), role, (long long)threshold, role);
    return 0;
}

int fota_tuf_online_check_keys(const struct fota_server *srv, const json_t *root, char *err,
                               size_t errlen)
{
    if (check_role_key(root, "snapshot", &srv->snapshot, "snapshot-key", err, errlen) != 0 ||
        check_role_key(root, "timestamp", &srv->timestamp, "timestamp-key", err, errlen) != 0)
        return -1;
    return 0;
}

int fota_tuf_online_check(const struct fota_server *srv, char *err, size_t errlen)
{
    static const char *const files[][2] = {
        {"targets.json", "targets"},
        {"snapshot.json", "snapshot"},
        {"timestamp.json", "timestamp"},
    };
    json_t *root = NULL;
    fota_err e;
    int rc = -1;

    e = fota_tuf_online_root(srv, &root);
    if (e == FOTA_E_NOT_FOUND) {
        fail(err, errlen,
             "no repository in %s (metadata/root.json missing): initialise it with "
             "'fota-server init --data-dir %s --repo REPO' from a repository published with "
             "'fota repo publish'",
             srv->repo_dir, srv->cfg.data_dir);
        goto out;
    }
    if (e != FOTA_OK) {
        fail(err, errlen, "%s/metadata/root.json: %s", srv->repo_dir, fota_strerror(e));
        goto out;
    }
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        e = load_envelope(srv, files[i][0], files[i][1], NULL, NULL, NULL);
        if (e != FOTA_OK) {
            fail(err, errlen, "%s/metadata/%s: %s", srv->repo_dir, files[i][0],
                 e == FOTA_E_NOT_FOUND ? "missing" : fota_strerror(e));
            goto out;
        }
    }
    if (fota_tuf_online_check_keys(srv, root, err, errlen) != 0)
        goto out;
    rc = 0;
out:
    json_decref(root);
    return rc;
}

/* Record the served versions in the store (informative: the files are the
 * truth, and the repository lock orders writers). */
static void record_state(const struct fota_server *srv, struct fota_store *st,
                         const json_t *root)
{
    struct fota_store_tuf_state cur, next = {0};
    json_t *env = NULL;
    enum fota_store_err se;
    int have;

    if (st == NULL)
        return;
    next.root_version = fota_tuf_repo_version(root);
    if (load_envelope(srv, "targets.json", "targets", NULL, NULL, &env) == FOTA_OK)
        next.targets_version = fota_tuf_repo_version(env);
    json_decref(env);
    env = NULL;
    if (load_envelope(srv, "snapshot.json", "snapshot", NULL, NULL, &env) == FOTA_OK) {
        next.snapshot_version = fota_tuf_repo_version(env);
        next.snapshot_expires = env_expires(env);
    }
    json_decref(env);
    env = NULL;
    if (load_envelope(srv, "timestamp.json", "timestamp", NULL, NULL, &env) == FOTA_OK) {
        next.timestamp_version = fota_tuf_repo_version(env);
        next.timestamp_expires = env_expires(env);
    }
    json_decref(env);
    next.updated = fota_server_now();
    se = fota_store_tuf_get(st, &cur);
    have = se == FOTA_STORE_OK;
    if (se == FOTA_STORE_OK || se == FOTA_STORE_NOT_FOUND)
        se = fota_store_tuf_set(st, have ? &cur : NULL, &next);
    if (se != FOTA_STORE_OK)
        fota_log(FOTA_LOG_WARN, "tuf-state", "error=%s", fota_store_strerror(se));
}

/* metadata/<encoded role>.json, or with version > 0 metadata/V.<encoded role>.json. */
static fota_err write_role(const struct fota_server *srv, const char *role, int64_t version,
                           const char *bytes, size_t len)
{
    char enc[FOTA_TUF_ONLINE_ROLE_FILE_MAX + 1], name[FOTA_TUF_ONLINE_ROLE_FILE_MAX + 32];
    int n;

    if (fota_tuf_encode_name(role, enc, sizeof enc) != FOTA_OK)
        return FOTA_E_TOO_BIG;
    n = version > 0 ? snprintf(name, sizeof name, "%lld.%s.json", (long long)version, enc)
                    : snprintf(name, sizeof name, "%s.json", enc);
    if (n < 0 || (size_t)n >= sizeof name)
        return FOTA_E_TOO_BIG;
    return write_metadata(srv, name, bytes, len);
}

fota_err fota_tuf_online_publish(const struct fota_server *srv, struct fota_store *st,
                                 const json_t *new_root, const char *root_bytes, size_t root_len,
                                 const struct fota_tuf_online_role *roles, size_t nroles,
                                 int64_t *ret_snapshot_version, int64_t *ret_timestamp_version)
{
    json_t *served_root = NULL, *snap_env = NULL, *ts_env = NULL;
    const json_t *root;
    uint8_t *cur_snap = NULL, *cur_ts = NULL;
    size_t cur_snap_len = 0, cur_ts_len = 0;
    char *snap = NULL, *ts = NULL;
    size_t snap_len = 0, ts_len = 0;
    const char **names = NULL;
    const uint8_t **bytes = NULL;
    size_t *lens = NULL;
    struct fota_tuf_signer snap_signer, ts_signer;
    char snap_expires[21], ts_expires[21];
    int64_t now = fota_server_now();
    fota_err err;

    if ((new_root != NULL && root_bytes == NULL) || (nroles > 0 && roles == NULL))
        return FOTA_E_INVALID;
    err = signer_of(&srv->snapshot, &snap_signer);
    if (err == FOTA_OK)
        err = signer_of(&srv->timestamp, &ts_signer);
    if (err != FOTA_OK)
        goto out;
    /* Snapshot and timestamp are signed for the root clients will hold:
     * the new one when it changes. */
    root = new_root;
    if (root == NULL) {
        err = fota_tuf_online_root(srv, &served_root);
        if (err != FOTA_OK)
            goto out;
        root = served_root;
    }
    names = calloc(nroles ? nroles : 1, sizeof *names);
    bytes = calloc(nroles ? nroles : 1, sizeof *bytes);
    lens = calloc(nroles ? nroles : 1, sizeof *lens);
    if (names == NULL || bytes == NULL || lens == NULL) {
        err = FOTA_E_NOMEM;
        goto out;
    }
    for (size_t i = 0; i < nroles; i++) {
        names[i] = roles[i].name;
        bytes[i] = (const uint8_t *)roles[i].bytes;
        lens[i] = roles[i].len;
    }
    err = fota_tuf_online_read(srv, "snapshot.json", &cur_snap, &cur_snap_len);
    if (err != FOTA_OK)
        goto out;
    err = fota_tuf_online_read(srv, "timestamp.json", &cur_ts, &cur_ts_len);
    if (err != FOTA_OK)
        goto out;

    /* Everything is built and signed before the first file is written. */
    expires_after(now, srv->cfg.snapshot_expiry_s, snap_expires);
    expires_after(now, srv->cfg.timestamp_expiry_s, ts_expires);
    err = fota_tuf_repo_next_snapshot(root, cur_snap, cur_snap_len, names, bytes, lens, nroles,
                                      snap_expires, &snap_signer, 1, &snap_env, &snap,
                                      &snap_len);
    if (err != FOTA_OK)
        goto out;
    err = fota_tuf_repo_next_timestamp(root, cur_ts, cur_ts_len, (const uint8_t *)snap, snap_len,
                                       ts_expires, &ts_signer, 1, &ts_env, &ts, &ts_len);
    if (err != FOTA_OK)
        goto out;

    /* root first (clients walk the root chain before anything else), then
     * the targets roles, snapshot, and timestamp last. */
    if (new_root != NULL) {
        err = write_role(srv, "root", fota_tuf_repo_version(new_root), root_bytes, root_len);
        if (err == FOTA_OK)
            err = write_role(srv, "root", 0, root_bytes, root_len);
    }
    for (size_t i = 0; err == FOTA_OK && i < nroles; i++) {
        err = write_role(srv, roles[i].name, roles[i].version, roles[i].bytes, roles[i].len);
        if (err == FOTA_OK)
            err = write_role(srv, roles[i].name, 0, roles[i].bytes, roles[i].len);
    }
    if (err == FOTA_OK)
        err = write_role(srv, "snapshot", fota_tuf_repo_version(snap_env), snap, snap_len);
    if (err == FOTA_OK)
        err = write_role(srv, "snapshot", 0, snap, snap_len);
    if (err == FOTA_OK)
        err = write_role(srv, "timestamp", 0, ts, ts_len);
    if (err != FOTA_OK)
        goto out;
    record_state(srv, st, root);
    if (ret_snapshot_version != NULL)
        *ret_snapshot_version = fota_tuf_repo_version(snap_env);
    if (ret_timestamp_version != NULL)
        *ret_timestamp_version = fota_tuf_repo_version(ts_env);
out:
    free(names);
    free(bytes);
    free(lens);
    free(snap);
    free(ts);
    free(cur_snap);
    free(cur_ts);
    json_decref(snap_env);
    json_decref(ts_env);
    json_decref(served_root);
    return err;
}

/* 1 when env carries the threshold of root's keys for role. */
static int signed_for_role(const json_t *root, const char *role, const json_t *env)
{
    const json_t *s = json_object_get(root, "signed");

    return fota_tuf_verify_role(env, json_object_get(s, "keys"),
                                json_object_get(json_object_get(s, "roles"), role),
                                NULL) == FOTA_OK;
}

fota_err fota_tuf_online_renew(const struct fota_server *srv, struct fota_store *st, int force,
                               int *ret_renewed, int64_t *ret_next_due)
{
    struct fota_repo_lock lock = {-1};
    json_t *root = NULL, *snap_env = NULL, *ts_env = NULL, *new_snap_env = NULL,
           *new_ts_env = NULL;
    uint8_t *snap = NULL, *ts = NULL;
    size_t snap_len = 0, ts_len = 0;
    char *new_snap = NULL, *new_ts = NULL;
    size_t new_snap_len = 0, new_ts_len = 0;
    struct fota_tuf_signer snap_signer, ts_signer;
    const struct fota_server_config *cfg = &srv->cfg;
    char expires[21], name[64];
    int64_t now, snap_due, ts_due, next_due;
    int renewed = 0;
    fota_err err;

    err = signer_of(&srv->snapshot, &snap_signer);
    if (err == FOTA_OK)
        err = signer_of(&srv->timestamp, &ts_signer);
    if (err != FOTA_OK)
        return err;
    if (fota_repo_lock_take(srv, &lock) != 0)
        return FOTA_E_IO;
    /* Read under the lock: another process may have renewed already. */
    now = fota_server_now();
    err = fota_tuf_online_root(srv, &root);
    if (err == FOTA_OK)
        err = load_envelope(srv, "snapshot.json", "snapshot", &snap, &snap_len, &snap_env);
    if (err == FOTA_OK)
        err = load_envelope(srv, "timestamp.json", "timestamp", &ts, &ts_len, &ts_env);
    if (err != FOTA_OK)
        goto out;

    /* A timestamp must not point at a snapshot that expires before it. A
     * file that the served root's keys for its role do not sign (a new root
     * rotated them) is renewed at once. */
    snap_due = env_expires(snap_env) - cfg->timestamp_expiry_s - cfg->timestamp_renew_before_s;
    ts_due = env_expires(ts_env) - cfg->timestamp_renew_before_s;
    if (!signed_for_role(root, "snapshot", snap_env))
        snap_due = now;
    if (!signed_for_role(root, "timestamp", ts_env))
        ts_due = now;
    if (now >= snap_due) {
        expires_after(now, cfg->snapshot_expiry_s, expires);
        err = fota_tuf_repo_next_snapshot(root, snap, snap_len, NULL, NULL, NULL, 0, expires,
                                          &snap_signer, 1, &new_snap_env, &new_snap,
                                          &new_snap_len);
        if (err != FOTA_OK)
            goto out;
        snap_due = env_expires(new_snap_env) - cfg->timestamp_expiry_s -
                   cfg->timestamp_renew_before_s;
    }
    if (force || new_snap != NULL || now >= ts_due) {
        expires_after(now, cfg->timestamp_expiry_s, expires);
        err = fota_tuf_repo_next_timestamp(
            root, ts, ts_len, new_snap != NULL ? (const uint8_t *)new_snap : snap,
            new_snap != NULL ? new_snap_len : snap_len, expires, &ts_signer, 1, &new_ts_env,
            &new_ts, &new_ts_len);
        if (err != FOTA_OK)
            goto out;
        ts_due = env_expires(new_ts_env) - cfg->timestamp_renew_before_s;
    }
    if (new_snap != NULL) {
        snprintf(name, sizeof name, "%lld.snapshot.json",
                 (long long)fota_tuf_repo_version(new_snap_env));
        err = write_metadata(srv, name, new_snap, new_snap_len);
        if (err == FOTA_OK)
            err = write_metadata(srv, "snapshot.json", new_snap, new_snap_len);
        if (err != FOTA_OK)
            goto out;
        renewed = 1;
        fota_log(FOTA_LOG_INFO, "snapshot-renew", "version=%lld expires=%s",
                 (long long)fota_tuf_repo_version(new_snap_env),
                 json_string_value(json_object_get(json_object_get(new_snap_env, "signed"),
                                                   "expires")));
    }
    if (new_ts != NULL) {
        err = write_metadata(srv, "timestamp.json", new_ts, new_ts_len);
        if (err != FOTA_OK)
            goto out;
        renewed = 1;
        fota_log(FOTA_LOG_INFO, "timestamp-renew", "version=%lld expires=%s",
                 (long long)fota_tuf_repo_version(new_ts_env), expires);
    }
    if (renewed)
        record_state(srv, st, root);
    next_due = snap_due < ts_due ? snap_due : ts_due;
    if (ret_renewed != NULL)
        *ret_renewed = renewed;
    if (ret_next_due != NULL)
        *ret_next_due = next_due;
out:
    fota_repo_lock_release(&lock);
    free(snap);
    free(ts);
    free(new_snap);
    free(new_ts);
    json_decref(root);
    json_decref(snap_env);
    json_decref(ts_env);
    json_decref(new_snap_env);
    json_decref(new_ts_env);
    return err;
}

/* ---- the renewal thread ------------------------------------------------- */

static struct {
    pthread_t thread;
    pthread_mutex_t mutex;
    pthread_cond_t cond;
    int started;
    int stop;
} renewer = {.mutex = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER};

/* Longest sleep between two looks at the expiries. */
#define RENEW_MAX_SLEEP_S 60
/* After a failure, try again this soon. */
#define RENEW_RETRY_S 10

static void *renew_thread(void *arg)
{
    struct fota_server *srv = arg;

    pthread_mutex_lock(&renewer.mutex);
    while (!renewer.stop) {
        struct timespec until;
        int64_t next_due = 0, wait_s;
        fota_err err;

        pthread_mutex_unlock(&renewer.mutex);
        err = fota_tuf_online_renew(srv, fota_store_thread_get(srv->db_path), 0, NULL,
                                    &next_due);
        if (err != FOTA_OK) {
            fota_log(FOTA_LOG_ERROR, "timestamp-renew", "error=%s", fota_strerror(err));
            wait_s = RENEW_RETRY_S;
        } else {
            int64_t cap = srv->cfg.timestamp_renew_before_s / 2;

            /* A publish (by this process or another sharing the data dir)
             * writes a timestamp with a new expiry that next_due does not
             * know of: never sleep past half the renewal margin, so that
             * timestamp is still renewed in time however short it is. */
            if (cap > RENEW_MAX_SLEEP_S)
                cap = RENEW_MAX_SLEEP_S;
            wait_s = next_due - fota_server_now();
            if (wait_s > cap)
                wait_s = cap;
            if (wait_s < 1)
                wait_s = 1;
        }
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += (time_t)wait_s;
        pthread_mutex_lock(&renewer.mutex);
        while (!renewer.stop) {
            if (pthread_cond_timedwait(&renewer.cond, &renewer.mutex, &until) != 0)
                break;
        }
    }
    pthread_mutex_unlock(&renewer.mutex);
    fota_store_thread_release();
    return NULL;
}

int fota_tuf_online_start(struct fota_server *srv)
{
    char err[1024];
    fota_err e;

    if (fota_tuf_online_check(srv, err, sizeof err) != 0) {
        fprintf(stderr, "fota-server: %s\n", err);
        return -1;
    }
    e = fota_tuf_online_renew(srv, fota_store_thread_get(srv->db_path), 0, NULL, NULL);
    if (e != FOTA_OK) {
        fprintf(stderr, "fota-server: cannot renew the timestamp of %s: %s\n", srv->repo_dir,
                fota_strerror(e));
        return -1;
    }
    renewer.stop = 0;
    if (pthread_create(&renewer.thread, NULL, renew_thread, srv) != 0) {
        fprintf(stderr, "fota-server: cannot start the timestamp renewal thread\n");
        return -1;
    }
    renewer.started = 1;
    return 0;
}

void fota_tuf_online_stop(void)
{
    if (!renewer.started)
        return;
    pthread_mutex_lock(&renewer.mutex);
    renewer.stop = 1;
    pthread_cond_signal(&renewer.cond);
    pthread_mutex_unlock(&renewer.mutex);
    pthread_join(renewer.thread, NULL);
    renewer.started = 0;
}
