/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Step 4 of the cycle: the TUF refresh of <server>/repo/metadata/ into
 * DATA/tuf/ over the agent's own connection, and the Director key set from
 * the TUF target fota/director.json. The Director key is trusted only
 * through TUF (signed offline by the targets role), never from the
 * server's /device/v1/director-key, so a compromised server cannot swap it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent_internal.h"

struct agent_tuf_port {
    struct fota_tuf_port port;
    struct fota_agent *a;
    char *metadata_url;
};

static fota_err port_fetch(void *ctx, const char *name, size_t max_len, uint8_t **ret_buf,
                           size_t *ret_len)
{
    struct agent_tuf_port *p = ctx;
    fota_err err;

    err = fota_posix_http_get_in(&p->a->http, p->metadata_url, name, max_len, ret_buf, ret_len);
    if (err != FOTA_OK && err != FOTA_E_NOT_FOUND)
        agent_log(p->a, FOTA_AGENT_LOG_DEBUG, "tuf", "tuf fetch=%s error=%s detail=\"%s\"",
                  name, fota_strerror(err), p->a->http.errmsg);
    return err;
}

static fota_err port_load(void *ctx, const char *name, size_t max_len, uint8_t **ret_buf,
                          size_t *ret_len)
{
    struct agent_tuf_port *p = ctx;

    return fota_posix_dir_load(p->a->tuf_dir, name, max_len, ret_buf, ret_len);
}

static fota_err port_store(void *ctx, const char *name, const uint8_t *buf, size_t len)
{
    struct agent_tuf_port *p = ctx;

    if (!fota_posix_name_ok(name))
        return FOTA_E_INVALID;
    return agent_write_in(p->a, p->a->tuf_dir, name, buf, len, 0644);
}

static fota_err port_remove(void *ctx, const char *name)
{
    struct agent_tuf_port *p = ctx;

    return fota_posix_dir_remove(p->a->tuf_dir, name);
}

static int64_t port_now(void *ctx)
{
    (void)ctx;
    return agent_now();
}

static void port_log(void *ctx, enum fota_tuf_log_level level, const char *line)
{
    struct agent_tuf_port *p = ctx;

    if (level == FOTA_TUF_LOG_REJECT)
        agent_log(p->a, FOTA_AGENT_LOG_WARN, "tuf", "tuf rejected=\"%s\"", line);
    else
        agent_log(p->a, FOTA_AGENT_LOG_DEBUG, "tuf", "tuf check=\"%s\"", line);
}

fota_err agent_trust_refresh(struct fota_agent *a, fota_tuf_client **ret_client)
{
    struct agent_tuf_port *p = NULL;
    fota_tuf_client *client = NULL;
    size_t len;
    fota_err err = FOTA_E_NOMEM;

    p = calloc(1, sizeof *p);
    if (p == NULL)
        goto fail;
    len = strlen(a->server) + sizeof "/repo/metadata/";
    p->metadata_url = malloc(len);
    if (p->metadata_url == NULL)
        goto fail;
    snprintf(p->metadata_url, len, "%s/repo/metadata/", a->server);
    p->a = a;
    p->port.ctx = p;
    p->port.fetch = port_fetch;
    p->port.load = port_load;
    p->port.store = port_store;
    p->port.remove = port_remove;
    p->port.now = port_now;
    p->port.log = port_log;
    err = fota_tuf_client_new(&p->port, NULL, &client);
    if (err != FOTA_OK) {
        agent_outcome(a, FOTA_AGENT_ERROR, err, "trusted %s/root.json is %s", a->tuf_dir,
                      err == FOTA_E_NOT_FOUND ? "missing" : "not valid");
        goto fail_logged;
    }
    err = fota_tuf_refresh(client);
    if (err != FOTA_OK) {
        const char *msg = fota_tuf_errmsg(client);

        /* A fetch that failed on the network is transient; anything the
         * client refused (signature, rollback, expiry, size...) is an
         * attack or a broken repository, and the server should know. */
        if (agent_is_security_reason(err))
            agent_refuse(a, err, NULL, NULL, "TUF refresh: %s", msg);
        else
            agent_outcome(a, FOTA_AGENT_ERROR, err == FOTA_E_IO ? FOTA_E_NETWORK : err,
                          "TUF refresh: %s%s%s", msg, a->http.errmsg[0] ? ": " : "",
                          a->http.errmsg);
        goto fail_logged;
    }
    agent_log(a, FOTA_AGENT_LOG_DEBUG, "tuf", "tuf refreshed root=%lld timestamp=%lld "
              "snapshot=%lld targets=%lld",
              (long long)fota_tuf_version(client, "root"),
              (long long)fota_tuf_version(client, "timestamp"),
              (long long)fota_tuf_version(client, "snapshot"),
              (long long)fota_tuf_version(client, "targets"));
    *ret_client = client;
    /* The port must outlive the client (freed by agent_trust_free). */
    a->trust_port = p;
    return FOTA_OK;
fail:
    agent_outcome(a, FOTA_AGENT_ERROR, err, "TUF client: %s", fota_strerror(err));
fail_logged:
    fota_tuf_client_free(client);
    if (p != NULL)
        free(p->metadata_url);
    free(p);
    return err;
}

void agent_trust_free(struct fota_agent *a, fota_tuf_client *client)
{
    struct agent_tuf_port *p = a->trust_port;

    fota_tuf_client_free(client);
    if (p != NULL)
        free(p->metadata_url);
    free(p);
    a->trust_port = NULL;
}

fota_err agent_target_url(struct fota_agent *a, const struct fota_tuf_target *t, int consistent,
                          char **ret_url)
{
    char *base;
    size_t len = strlen(a->server) + sizeof "/repo/targets/";
    fota_err err;

    base = malloc(len);
    if (base == NULL)
        return FOTA_E_NOMEM;
    snprintf(base, len, "%s/repo/targets/", a->server);
    err = fota_posix_target_url(base, t, consistent, ret_url);
    free(base);
    return err;
}

static const struct fota_tuf_hash *sha256_of(const struct fota_tuf_target *t)
{
    for (size_t i = 0; i < t->n_hashes; i++) {
        if (t->hashes[i].alg == FOTA_HASH_SHA256 && t->hashes[i].digest_len == 32)
            return &t->hashes[i];
    }
    return NULL;
}

fota_err agent_director_keys(struct fota_agent *a, fota_tuf_client *client,
                             const json_t **ret_keyset)
{
    struct fota_tuf_target t;
    struct fota_tuf_target_check check;
    const struct fota_tuf_hash *h;
    json_t *keyset = NULL;
    uint8_t *buf = NULL;
    size_t len = 0;
    char *url = NULL;
    fota_err err;

    err = fota_tuf_find_target(client, FOTA_DIRECTOR_KEYS_TARGET, &t);
    if (err != FOTA_OK) {
        if (agent_is_security_reason(err))
            agent_refuse(a, err, NULL, NULL, "%s: %s", FOTA_DIRECTOR_KEYS_TARGET,
                         fota_tuf_errmsg(client)[0] ? fota_tuf_errmsg(client)
                                                    : "not listed by the trusted targets");
        else
            agent_outcome(a, FOTA_AGENT_ERROR, err == FOTA_E_IO ? FOTA_E_NETWORK : err,
                          "%s: %s", FOTA_DIRECTOR_KEYS_TARGET, fota_tuf_errmsg(client));
        return err;
    }
    h = sha256_of(&t);
    if (h == NULL || t.length > FOTA_DIRECTOR_KEYS_MAX) {
        err = h == NULL ? FOTA_E_HASH : FOTA_E_TOO_BIG;
        agent_refuse(a, err, NULL, NULL, "%s: %s", FOTA_DIRECTOR_KEYS_TARGET,
                     h == NULL ? "no sha256 in its TUF entry" : "larger than 64 KiB");
        return err;
    }
    if (a->director_keys != NULL && strcmp(a->director_sha256, h->hex) == 0) {
        *ret_keyset = a->director_keys;
        return FOTA_OK;
    }
    err = agent_target_url(a, &t, fota_tuf_consistent_snapshot(client), &url);
    if (err != FOTA_OK) {
        agent_outcome(a, FOTA_AGENT_ERROR, err, "%s: cannot build its URL",
                      FOTA_DIRECTOR_KEYS_TARGET);
        goto out;
    }
    err = fota_posix_http_get(&a->http, url, (size_t)t.length, &buf, &len);
    if (err != FOTA_OK && err != FOTA_E_LENGTH) {
        agent_outcome(a, FOTA_AGENT_ERROR, err == FOTA_E_IO ? FOTA_E_NETWORK : err, "%s: %s",
                      FOTA_DIRECTOR_KEYS_TARGET, a->http.errmsg);
        goto out;
    }
    if (err == FOTA_OK) {
        err = fota_tuf_target_check_init(&check, &t);
        if (err == FOTA_OK) {
            err = fota_tuf_target_check_update(&check, buf, len);
            if (err == FOTA_OK)
                err = fota_tuf_target_check_final(&check);
            else
                fota_tuf_target_check_abort(&check);
        }
    }
    if (err == FOTA_OK)
        err = fota_director_keys_parse(buf, len, &keyset);
    if (err != FOTA_OK) {
        if (agent_is_security_reason(err))
            agent_refuse(a, err, NULL, NULL, "%s does not match its TUF entry or is malformed",
                         FOTA_DIRECTOR_KEYS_TARGET);
        else
            agent_outcome(a, FOTA_AGENT_ERROR, err, "%s: %s", FOTA_DIRECTOR_KEYS_TARGET,
                          fota_strerror(err));
        goto out;
    }
    json_decref(a->director_keys);
    a->director_keys = keyset;
    snprintf(a->director_sha256, sizeof a->director_sha256, "%s", h->hex);
    agent_log(a, FOTA_AGENT_LOG_DEBUG, "tuf", "tuf director-keys sha256=%.16s", h->hex);
    *ret_keyset = keyset;
out:
    free(url);
    free(buf);
    return err;
}
