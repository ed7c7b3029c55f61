/* SPDX-License-Identifier: Apache-2.0 */
#ifndef FOTA_SERVER_SERVER_H
#define FOTA_SERVER_SERVER_H

/*
 * The server's shared, read-mostly context. Everything in it is fixed after
 * start-up (configuration, keys, paths) or is a process-local counter
 * (metrics). Mutable fleet state lives only in the store.
 */

#include <stdint.h>

#include "fota/crypto.h"
#include "fota/tuf.h"

struct fota_metrics;                 /* server/metrics.h */

/* How libmicrohttpd runs connections (docs/server.md, "Event mode"). */
enum fota_event_mode {
    FOTA_EVENT_POLL,                 /* a pool of `threads`, each poll()ing its connections */
    FOTA_EVENT_EPOLL,                /* the same pool with epoll */
    FOTA_EVENT_THREAD_PER_CONNECTION /* one thread per connection; `threads` unused */
};

struct fota_server_config {
    char listen_addr[64];            /* "127.0.0.1" */
    unsigned listen_port;            /* 8080 */
    char data_dir[512];              /* holds fota.db and repo/ */
    char tls_cert[512], tls_key[512];/* empty: plain HTTP */
    unsigned threads;                /* MHD pool size; 0 = two per core */
    enum fota_event_mode event_mode; /* chosen by measurement; see docs/server.md */
    char snapshot_key[512], timestamp_key[512], director_key[512];
    int64_t timestamp_expiry_s;      /* 86400 */
    int64_t timestamp_renew_before_s;/* 21600 */
    int64_t snapshot_expiry_s;       /* 604800 */
    int64_t director_expiry_s;       /* 3600 */
    int64_t token_ttl_s;             /* 3600 */
    int64_t freshness_max_age_s;     /* 7200 */
    uint64_t max_body;               /* 65536 */
    uint64_t max_image;              /* 256 MiB */
    uint64_t max_metadata;           /* 16 MiB: POST /api/v1/releases (a targets envelope) */
    int64_t device_max_clock_skew_s; /* 0: off (signed enrol/session "time" not checked) */
    char preauthorized_keys[512];    /* file; empty: none */
    int log_level;                   /* 0 error, 1 warn, 2 info, 3 debug */
};

struct fota_server_key {
    fota_privkey *key;               /* NULL when not configured */
    json_t *pub;                     /* TUF public key object */
    char keyid[FOTA_TUF_KEYID_HEX_LEN + 1];
    /* Ed25519 keys also sign through libsodium, ~2x faster than OpenSSL 3.0
     * (the Director signs every check-in answer); the signatures are the
     * same bytes (Ed25519 is deterministic). Set by fota_server_key_fast(). */
    int fast;
    uint8_t fast_sk[64];             /* libsodium's secret key: seed || public */
};

/* Prepare the libsodium signer of an Ed25519 key (a no-op for others).
 * Called by fota_server_key_load(). */
fota_err fota_server_key_fast(struct fota_server_key *k);

/* Sign msg with k: libsodium when k->fast, OpenSSL otherwise. *ret_sig is
 * malloc'ed (free()). */
fota_err fota_server_key_sign(const struct fota_server_key *k, const uint8_t *msg,
                              size_t msg_len, uint8_t **ret_sig, size_t *ret_sig_len);

struct fota_server {
    struct fota_server_config cfg;
    char db_path[600];               /* data_dir/fota.db */
    char repo_dir[600];              /* data_dir/repo */
    struct fota_server_key snapshot, timestamp, director;
    uint8_t token_secret[32];        /* from the store (shared by every process), read at start */
    struct fota_metrics *metrics;
    volatile int stopping;
};

/* Time now, seconds since the epoch (UTC). */
int64_t fota_server_now(void);

/* ---- Added by server/server.c's owner (S1): start-up and shutdown --------- */

#include <stddef.h>

#include "fota/error.h"

/*
 * Fill srv for serving with cfg: the paths (data_dir/fota.db, data_dir/repo;
 * data_dir must exist), the online keys (each configured PEM file, or
 * data_dir/keys/<role>.pem when it exists; a role without either stays
 * unset: key == NULL), the token secret from the store (created there by
 * the first process) and the metrics. 0, or -1 after logging why (srv is
 * then cleaned up).
 */
int fota_server_init(struct fota_server *srv, const struct fota_server_config *cfg);

/* Release everything fota_server_init made (keys, metrics, secret). */
void fota_server_cleanup(struct fota_server *srv);

/* Load an online key from a PEM private key file: k->key, k->pub (its TUF
 * public key object) and k->keyid. On failure k is left zeroed. */
fota_err fota_server_key_load(struct fota_server_key *k, const char *path);
void fota_server_key_free(struct fota_server_key *k);

/* data_dir/keys/<role>.pem, the default place of an online key. */
int fota_server_default_key_path(const char *data_dir, const char *role, char *buf,
                                 size_t len);

#endif
