/* SPDX-License-Identifier: Apache-2.0 */
#include "server.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/rand.h>

#include "fota_posix.h"
#include "keyfile.h"
#include "log.h"
#include "metrics.h"
#include "routes.h"
#include "store.h"
#include "store_meta.h"
#include "store_rollouts.h"

int64_t fota_server_now(void)
{
    return (int64_t)time(NULL);
}

void fota_server_key_free(struct fota_server_key *k)
{
    fota_privkey_free(k->key);
    json_decref(k->pub);
    fota_wipe(k, sizeof(*k));
}

fota_err fota_server_key_load(struct fota_server_key *k, const char *path)
{
    struct fota_server_key tmp;
    fota_err e;

    memset(&tmp, 0, sizeof(tmp));
    memset(k, 0, sizeof(*k));
    e = fota_keyfile_load_privkey(path, &tmp.key);
    if (e != FOTA_OK)
        goto out;
    e = fota_tuf_key_json(tmp.key, &tmp.pub);
    if (e != FOTA_OK)
        goto out;
    e = fota_tuf_keyid(tmp.pub, tmp.keyid);
    if (e != FOTA_OK)
        goto out;
    e = fota_server_key_fast(&tmp);
    if (e != FOTA_OK)
        goto out;
    *k = tmp;
    fota_wipe(&tmp, sizeof(tmp));
out:
    fota_server_key_free(&tmp);
    return e;
}

int fota_server_default_key_path(const char *data_dir, const char *role, char *buf,
                                 size_t len)
{
    int n = snprintf(buf, len, "%s/keys/%s.pem", data_dir, role);

    return n > 0 && (size_t)n < len ? 0 : -1;
}

/* The configured key, or the default file when it exists; none is fine. */
static int load_role_key(struct fota_server_key *k, const char *configured,
                         const char *data_dir, const char *role)
{
    char path[600];
    struct stat st;
    fota_err e;

    if (configured[0] != '\0') {
        snprintf(path, sizeof(path), "%s", configured);
    } else {
        if (fota_server_default_key_path(data_dir, role, path, sizeof(path)) != 0)
            return -1;
        if (stat(path, &st) != 0 && errno == ENOENT) {
            fota_log(FOTA_LOG_WARN, "start", "role=%s key=none detail=\"no %s: the %s role "
                     "is not served\"", role, path, role);
            return 0;
        }
    }
    e = fota_server_key_load(k, path);
    if (e != FOTA_OK) {
        fota_log(FOTA_LOG_ERROR, "start", "role=%s key=%s error=%s", role, path,
                 fota_strerror(e));
        return -1;
    }
    fota_log(FOTA_LOG_INFO, "start", "role=%s key=%s keyid=%s", role, path, k->keyid);
    return 0;
}

/* A rollout still hidden an hour after its creation began was left by a
 * process that stopped while writing it (fota_rollout_prepare): remove it.
 * An hour is far longer than writing even ten million members takes, so a
 * creation still running in another process is never swept. */
#define HIDDEN_ROLLOUT_MAX_AGE 3600

static void sweep_hidden_rollouts(struct fota_store *st)
{
    size_t n = 0;
    enum fota_store_err se;

    se = fota_store_rollout_sweep(st, fota_server_now() - HIDDEN_ROLLOUT_MAX_AGE, &n);
    if (se != FOTA_STORE_OK)
        fota_log(FOTA_LOG_WARN, "start", "detail=\"cannot sweep unfinished rollouts\" error=%s",
                 fota_store_strerror(se));
    else if (n > 0)
        fota_log(FOTA_LOG_WARN, "start", "detail=\"removed %zu rollout(s) whose creation never "
                 "finished\"", n);
}

static int read_token_secret(struct fota_server *srv)
{
    struct fota_store *st = NULL;
    uint8_t candidate[FOTA_STORE_TOKEN_SECRET_LEN];
    enum fota_store_err se;
    int ret = -1;

    _Static_assert(sizeof(srv->token_secret) == FOTA_STORE_TOKEN_SECRET_LEN,
                   "token secret sizes differ");
    se = fota_store_open(srv->db_path, &st);
    if (se != FOTA_STORE_OK) {
        fota_log(FOTA_LOG_ERROR, "start", "db=%s error=%s", srv->db_path,
                 fota_store_strerror(se));
        return -1;
    }
    /* A fresh candidate; the store keeps the first one ever written, so
     * every process sharing the database gets the same secret. */
    if (RAND_bytes(candidate, sizeof(candidate)) != 1) {
        fota_log(FOTA_LOG_ERROR, "start", "error=\"no randomness for the token secret\"");
        goto out;
    }
    se = fota_store_token_secret(st, candidate, srv->token_secret);
    if (se != FOTA_STORE_OK) {
        fota_log(FOTA_LOG_ERROR, "start", "db=%s error=%s detail=\"token secret: %s\"",
                 srv->db_path, fota_store_strerror(se), fota_store_last_error(st));
        goto out;
    }
    sweep_hidden_rollouts(st);
    ret = 0;
out:
    fota_wipe(candidate, sizeof(candidate));
    fota_store_close(st);
    return ret;
}

static const char *const *route_names(void)
{
    static const char *names[FOTA_ROUTES_MAX];

    for (size_t i = 0; i < fota_route_count; i++)
        names[i] = fota_routes[i].name;
    return names;
}

int fota_server_init(struct fota_server *srv, const struct fota_server_config *cfg)
{
    struct stat st;
    int n;

    memset(srv, 0, sizeof(*srv));
    srv->cfg = *cfg;
    n = snprintf(srv->db_path, sizeof(srv->db_path), "%s/fota.db", cfg->data_dir);
    if (n < 0 || (size_t)n >= sizeof(srv->db_path))
        goto fail;
    n = snprintf(srv->repo_dir, sizeof(srv->repo_dir), "%s/repo", cfg->data_dir);
    if (n < 0 || (size_t)n >= sizeof(srv->repo_dir))
        goto fail;
    if (stat(cfg->data_dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
        fota_log(FOTA_LOG_ERROR, "start", "data_dir=%s error=\"not a directory: run "
                 "fota-server init --data-dir %s --repo REPO first\"", cfg->data_dir,
                 cfg->data_dir);
        goto fail;
    }
    if (load_role_key(&srv->snapshot, cfg->snapshot_key, cfg->data_dir, "snapshot") != 0 ||
        load_role_key(&srv->timestamp, cfg->timestamp_key, cfg->data_dir, "timestamp") != 0 ||
        load_role_key(&srv->director, cfg->director_key, cfg->data_dir, "director") != 0)
        goto fail;
    if (read_token_secret(srv) != 0)
        goto fail;
    srv->metrics = fota_metrics_new(fota_route_count, route_names());
    if (srv->metrics == NULL) {
        fota_log(FOTA_LOG_ERROR, "start", "error=\"out of memory\"");
        goto fail;
    }
    return 0;
fail:
    fota_server_cleanup(srv);
    return -1;
}

void fota_server_cleanup(struct fota_server *srv)
{
    fota_server_key_free(&srv->snapshot);
    fota_server_key_free(&srv->timestamp);
    fota_server_key_free(&srv->director);
    fota_metrics_free(srv->metrics);
    srv->metrics = NULL;
    fota_wipe(srv->token_secret, sizeof(srv->token_secret));
}
