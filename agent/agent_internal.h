/* SPDX-License-Identifier: Apache-2.0 */
#ifndef FOTA_AGENT_INTERNAL_H
#define FOTA_AGENT_INTERNAL_H

/*
 * What the files of the agent core share (agent.c: the cycle; state.c: the
 * data dir; proto.c: the device protocol; trust.c: TUF and the Director key
 * set; device.c: slots and boot state as the agent reports them;
 * download.c: the install). Nothing here is public: programs use agent.h.
 */

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "agent.h"
#include "fota/boot.h"
#include "fota/crypto.h"
#include "fota/director.h"
#include "fota/tuf.h"
#include "fota_posix.h"

/* Bytes of a downloaded image between two stores of download.json. */
#define AGENT_RESUME_STEP (64u * 1024u)
/* Ranged GETs of one image per cycle before the cycle gives up. */
#define AGENT_DOWNLOAD_TRIES 4
/* A session token is renewed this long before its expiry. */
#define AGENT_TOKEN_MARGIN_S 60
/* How far a counter jumps after a 409 "replayed" (the server keeps a value
 * we no longer know: state.json restored from an old copy, say). */
#define AGENT_REPLAY_JUMP 1048576
/* Caps on what the server may send us (besides the Director document). */
#define AGENT_RESP_MAX 65536u
#define AGENT_TOKEN_MAX 256u
#define AGENT_STATE_FILE_MAX 65536u
#define AGENT_IDENTITY_MAX 16384u

enum agent_enrolment {
    ENROL_NONE = 0,
    ENROL_PENDING = 1,
    ENROL_ACCEPTED = 2,
    ENROL_REJECTED = 3,
};

/* state.json */
struct agent_state {
    enum agent_enrolment enrolment;
    int64_t session_counter;
    int64_t seq;
    int64_t last_fresh;
};

/* download.json: the resume point of the image being downloaded. */
struct agent_download {
    char target[FOTA_DIRECTOR_TARGET_NAME_MAX + 1];
    uint8_t sha256[32];
    uint64_t length;
    int slot;
    uint64_t offset;
};

/* install.json stages: installed (pending or on trial), then settled
 * locally as confirmed or rolled_back, until the server has the reports. */
enum agent_stage {
    STAGE_INSTALLED = 0,
    STAGE_CONFIRMED = 1,
    STAGE_ROLLED_BACK = 2,
};

struct agent_install {
    char target[FOTA_DIRECTOR_TARGET_NAME_MAX + 1];   /* "" when unknown */
    char version[FOTA_AGENT_VERSION_MAX + 1];
    uint8_t sha256[32];
    int have_sha256;
    int slot;
    char rollout[FOTA_DIRECTOR_ROLLOUT_MAX + 1];
    enum agent_stage stage;
    fota_err reason;               /* rolled_back: FOTA_E_HEALTH or FOTA_E_REVERTED */
    int rebooted_reported;         /* "rebooted" accepted by the server */
};

/* The device as the agent reports it (check-in, enrolment, status). */
struct agent_slot_view {
    const char *state;             /* "empty", "pending", "trial", "confirmed", "invalid" */
    int has_header;
    struct fota_image_header header;
    char version[FOTA_AGENT_VERSION_MAX + 1];
};

struct agent_view {
    struct fota_boot_state st;
    int running_slot;
    int running_ok;                /* the running slot holds a parsable header */
    struct agent_slot_view slots[2];
};

struct fota_agent {
    /* configuration, owned copies */
    char *server;                  /* without a trailing "/" */
    char *ca_file;
    char *data_dir;
    char *tuf_dir;
    char *hardware_id;
    const struct fota_device *dev;
    int durable;
    struct fota_agent_hooks hooks;

    /* identity */
    fota_privkey *key;
    json_t *keyobj;
    char id[FOTA_AGENT_ID_LEN + 1];

    struct agent_state st;

    /* session */
    char token[AGENT_TOKEN_MAX + 1];
    int64_t token_expires;

    struct fota_posix_http http;
    int http_ready;

    void *trust_port;              /* the TUF port of the cycle's client (trust.c) */

    /* Director key set, cached by the sha256 of fota/director.json */
    json_t *director_keys;
    char director_sha256[65];

    /* verification of the slot not running, cached by boot-state seq */
    int verify_cache_valid;
    uint32_t verify_cache_seq;
    int verify_cache_slot;
    fota_err verify_cache_result;

    /* the cycle in progress */
    const struct agent_view *view;     /* for a re-enrolment in the middle of it */
    struct fota_agent_cycle_info *info;
    int reboots;                   /* reboot hook calls in this cycle */
};

/* ---- agent.c ---- */
void agent_log(struct fota_agent *a, enum fota_agent_log_level level, const char *event,
               const char *fmt, ...) __attribute__((format(printf, 4, 5)));
/* Set the cycle's result, reason and detail (printf-style). */
void agent_outcome(struct fota_agent *a, enum fota_agent_result r, fota_err reason,
                   const char *fmt, ...) __attribute__((format(printf, 4, 5)));
/* 1 for reasons that mean "a check refused something", 0 for transient or
 * local failures (network, server, flash, memory). */
int agent_is_security_reason(fota_err err);
int64_t agent_now(void);

/* ---- state.c ---- */
/* Replace dir/name atomically (fsync'ed when durable). */
fota_err agent_write_in(struct fota_agent *a, const char *dir, const char *name, const void *buf,
                        size_t len, unsigned mode);
/* The same in the data dir. */
fota_err agent_write_file(struct fota_agent *a, const char *name, const void *buf, size_t len,
                          unsigned mode);
fota_err agent_remove_file(struct fota_agent *a, const char *name);
fota_err agent_identity_load(struct fota_agent *a);
fota_err agent_state_load(struct fota_agent *a);
fota_err agent_state_store(struct fota_agent *a);
const char *agent_enrolment_name(enum agent_enrolment e);
/* FOTA_E_NOT_FOUND when absent; FOTA_E_PARSE when unreadable (the caller
 * deletes it: both files are only hints, never trusted for a verdict). */
fota_err agent_download_load(struct fota_agent *a, struct agent_download *ret);
fota_err agent_download_store(struct fota_agent *a, const struct agent_download *d);
fota_err agent_install_load(struct fota_agent *a, struct agent_install *ret);

/* refusal.json: the last refusal until the server's signed Director document
 * says it stored that report (its "reports" seq reached ours). seq 0: the
 * report was never sent. */
struct agent_refusal {
    char reason[64];
    char target[FOTA_DIRECTOR_TARGET_NAME_MAX + 1];   /* "" when none */
    char version[FOTA_AGENT_VERSION_MAX + 1];         /* "" when none */
    char detail[256];
    int64_t seq;
};
fota_err agent_refusal_load(struct fota_agent *a, struct agent_refusal *ret);
fota_err agent_refusal_store(struct fota_agent *a, const struct agent_refusal *r);
/* After a verified Director document: forget the refusal when reports
 * covers it, else send it again. */
void agent_refusal_settle(struct fota_agent *a, uint64_t reports);
fota_err agent_install_store(struct fota_agent *a, const struct agent_install *in);
const char *agent_stage_name(enum agent_stage s);

/* ---- device.c ---- */
void agent_version_string(const struct fota_image_header *h, char *out, size_t out_len);
/* Versions equal as semantic versions (build metadata ignored). */
int agent_version_same(const char *a, const char *b);
fota_err agent_view_load(struct fota_agent *a, int verify_other, struct agent_view *ret);
void agent_verify_cache_drop(struct fota_agent *a);

/* ---- proto.c ---- */
/* Enrol and open a session as needed. FOTA_OK when the device may check in;
 * otherwise the cycle's outcome has been set (pending, rejected, error). */
fota_err agent_ensure_session(struct fota_agent *a, const struct agent_view *v);
/* Check in; on FOTA_OK *ret is the verified Director decision. Otherwise
 * the outcome has been set (and a refusal reported). */
fota_err agent_checkin(struct fota_agent *a, const struct agent_view *v, const json_t *keyset,
                       struct fota_director_decision *ret);
/* POST a report. target, version, reason, detail may be NULL. */
fota_err agent_report(struct fota_agent *a, const char *event, const char *target,
                      const char *version, const char *reason, const char *detail);
/* Report "failed" and set the REFUSED outcome; detail printf-style. */
void agent_refuse(struct fota_agent *a, fota_err reason, const char *target, const char *version,
                  const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* ---- trust.c ---- */
/* A TUF client refreshed from the server. On failure the outcome is set
 * (REFUSED and reported for a security rejection, ERROR otherwise). */
fota_err agent_trust_refresh(struct fota_agent *a, fota_tuf_client **ret_client);
void agent_trust_free(struct fota_agent *a, fota_tuf_client *client);
/* The Director key set from fota/director.json (cached); borrowed. */
fota_err agent_director_keys(struct fota_agent *a, fota_tuf_client *client,
                             const json_t **ret_keyset);
/* URL of a TUF target under <server>/repo/targets/. */
fota_err agent_target_url(struct fota_agent *a, const struct fota_tuf_target *t, int consistent,
                          char **ret_url);

/* ---- download.c ---- */
/* Step 6: checks, download into the inactive slot, finish, install.json.
 * FOTA_OK when the image is installed and pending; otherwise the outcome
 * has been set. */
fota_err agent_install(struct fota_agent *a, fota_tuf_client *client, const struct agent_view *v,
                       const struct fota_director_decision *d);

#endif
