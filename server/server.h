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

struct fota_server_config {
    char listen_addr[64];            /* "127.0.0.1" */
    unsigned listen_port;            /* 8080 */
    char data_dir[512];              /* holds fota.db and repo/ */
    char tls_cert[512], tls_key[512];/* empty: plain HTTP */
    unsigned threads;                /* MHD pool size; 0 = cores */
    int use_epoll;                   /* event mode (chosen by measurement; see docs/server.md) */
    char snapshot_key[512], timestamp_key[512], director_key[512];
    int64_t timestamp_expiry_s;      /* 86400 */
    int64_t timestamp_renew_before_s;/* 21600 */
    int64_t snapshot_expiry_s;       /* 604800 */
    int64_t director_expiry_s;       /* 3600 */
    int64_t token_ttl_s;             /* 3600 */
    int64_t freshness_max_age_s;     /* 7200 */
    uint64_t max_body;               /* 65536 */
    uint64_t max_image;              /* 256 MiB */
    char preauthorized_keys[512];    /* file; empty: none */
    int log_level;                   /* 0 error, 1 warn, 2 info, 3 debug */
};

struct fota_server_key {
    fota_privkey *key;               /* NULL when not configured */
    json_t *pub;                     /* TUF public key object */
    char keyid[FOTA_TUF_KEYID_HEX_LEN + 1];
};

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

#endif
