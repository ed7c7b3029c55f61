/* SPDX-License-Identifier: Apache-2.0 */
#ifndef FOTA_AGENT_H
#define FOTA_AGENT_H

/*
 * The device agent core: one update cycle at a time against fota-server
 * (docs/device-protocol.md), driven by `fota-agent` (agent/main.c) on a
 * Linux-class device and by `fota-sim fleet` (sim/fleet.c) for each of its
 * simulated devices: the same code and the same boot logic for both.
 *
 * Blocking I/O (libcurl easy handle per agent). One struct fota_agent is
 * used by one thread at a time; distinct agents may run on distinct threads
 * at once (fota_posix_http_global_init() must have been called once).
 *
 * Data directory (cfg->data_dir), all files written atomically
 * (temp + fsync + rename; fsync skipped when cfg->durable is 0):
 *   identity.pem     the device's Ed25519 private key (0600), made on first start
 *   state.json       {"device":"<id>","enrolment":"none|pending|accepted|rejected",
 *                     "session_counter":N,"seq":N,"last_fresh":T}: counters are
 *                     stored *before* the request that uses them is sent
 *   tuf/             trusted TUF metadata; tuf/root.json must be provisioned
 *   download.json    resume point of the image being downloaded:
 *                     {"target","sha256","length","slot","offset"}
 *   install.json     the update from install until the server heard how it ended:
 *                     {"target","version","sha256","slot","rollout",
 *                      "stage":"installed|confirmed|rolled_back","reason",
 *                      "rebooted_reported"} (docs/agent.md, "Files")
 *   refusal.json     the last refusal report until a signed Director document's
 *                     "reports" seq shows the server stored it (then removed):
 *                     {"reason","target","version","detail","seq"}
 *
 * One cycle (fota_agent_cycle):
 *   1. after a boot: if install.json exists, settle it: the new image on trial
 *      -> report "rebooted", run the health check -> fota_boot_confirm, report
 *      "confirmed"; failed -> fota_boot_reject, report "rolled_back"
 *      (health-check), reboot; the old image running and nothing on trial ->
 *      the bootloader reverted it: report "rolled_back" (reverted);
 *      still pending (never rebooted) -> reboot.
 *   2. enrol until accepted (state "pending": result FOTA_AGENT_PENDING);
 *   3. a session token when there is none or it is about to expire;
 *   4. TUF refresh of <server>/repo/metadata/ (tuf/), then the Director key
 *      set from the TUF target fota/director.json (fetched from
 *      <server>/repo/targets/, checked against TUF, cached in memory);
 *   5. check-in with a fresh nonce and the next seq; verify the Director
 *      document (fota_director_verify, now = the local clock);
 *   6. "install": the TUF target must exist with the Director's length and
 *      sha256, list this hardware id in custom.hardware_ids, and its
 *      security counter (Director and custom.security_counter) must not be
 *      below the device's stored counter; the version must differ from the
 *      running one. Then report "downloading", stream into the inactive slot
 *      (fota_install_begin/resume + write; the TUF length is the hard cap;
 *      download.json updated at each new fota_install_resume_point),
 *      fota_install_finish (image signature, hardware id, counter), report
 *      "installed", write install.json, reboot (hook), and carry on with
 *      step 1 when the hook returns.
 *   Any refusal is reported ("failed", with the fota_strerror name as reason)
 *   and nothing is installed.
 */

#include <stddef.h>
#include <stdint.h>

#include "fota/boot.h"
#include "fota/error.h"

#define FOTA_AGENT_ID_LEN 64                 /* hex device id */
#define FOTA_AGENT_VERSION_MAX 64

struct fota_agent;

struct fota_agent_config {
    const char *server_url;        /* "http://127.0.0.1:8080": /device/v1/ and /repo/ below it */
    const char *ca_file;           /* pinned CA bundle for https; NULL: the system's */
    const char *data_dir;          /* created (0700) when missing; tuf/root.json must be there */
    const char *hardware_id;       /* this device's hardware id */
    const struct fota_device *dev; /* flash, slots, trusted image keys: opened by the caller,
                                    * must outlive the agent */
    unsigned connect_timeout_s;    /* 0: 10 */
    unsigned low_speed_bytes;      /* minimum speed, bytes/s; 0: 1024 */
    unsigned low_speed_time_s;     /* ... over this many seconds; 0: 30 */
    int durable;                   /* 1: fsync state files (devices); 0: skip (simulator) */
};

enum fota_agent_log_level {
    FOTA_AGENT_LOG_DEBUG = 0,
    FOTA_AGENT_LOG_INFO = 1,
    FOTA_AGENT_LOG_WARN = 2,
    FOTA_AGENT_LOG_ERROR = 3,
};

struct fota_agent_hooks {
    void *ctx;
    /* One line per event ("checkin action=install target=... version=..."),
     * event is a single word ("enrol", "checkin", "download", "install",
     * "reboot", "confirm", "rollback", "refused", "error"). NULL: quiet. */
    void (*log)(void *ctx, enum fota_agent_log_level level, const char *event,
                const char *line);
    /* Download progress, called at most every 64 KiB. NULL: none. */
    void (*progress)(void *ctx, const char *target, uint64_t done, uint64_t total);
    /* Health check of the image now on trial: 0 healthy. NULL: healthy. */
    int (*health)(void *ctx);
    /* Reboot into the bootloader. fota-agent runs the reboot command (on a
     * real device it does not come back); the simulator runs fota_boot()
     * over the device's flash and returns FOTA_OK, and the agent carries on
     * as after a boot. Required. */
    fota_err (*reboot)(void *ctx);
    /* Fault injection (simulator, tests; NULL otherwise): called before each
     * chunk of image bytes at offset; nonzero drops the connection there. */
    int (*drop_download)(void *ctx, uint64_t offset, size_t len);
};

enum fota_agent_result {
    FOTA_AGENT_IDLE = 0,         /* checked in; nothing to do */
    FOTA_AGENT_UPDATED = 1,      /* a new image installed, booted, healthy and confirmed */
    FOTA_AGENT_PENDING = 2,      /* enrolled; waiting for an operator to accept */
    FOTA_AGENT_ROLLED_BACK = 3,  /* the new image failed (health check or bootloader): old image runs */
    FOTA_AGENT_REFUSED = 4,      /* a security check refused what the server offered */
    FOTA_AGENT_ERROR = 5,        /* transient (network, server, flash): retry with backoff */
    FOTA_AGENT_REJECTED = 6,     /* the operator rejected or decommissioned this device */
    FOTA_AGENT_REBOOTING = 7,    /* installed and pending; the reboot hook returned an error
                                  * or did not boot (fota-agent: the command failed) */
};

const char *fota_agent_result_name(enum fota_agent_result r);

struct fota_agent_cycle_info {
    enum fota_agent_result result;
    fota_err reason;             /* FOTA_OK, or why (refusal, error, rollback) */
    char detail[256];            /* one human line; "" when none */
    char version[FOTA_AGENT_VERSION_MAX + 1];   /* running version at the end of the cycle */
    char target[1025];           /* the target the cycle was about, "" if none */
    uint64_t bytes_downloaded;   /* image bytes received in this cycle */
};

struct fota_agent_slot_status {
    const char *state;           /* "empty", "pending", "trial", "confirmed", "invalid" */
    char version[FOTA_AGENT_VERSION_MAX + 1];   /* "" when empty or invalid */
    uint32_t security_counter;
};

struct fota_agent_status {
    char device_id[FOTA_AGENT_ID_LEN + 1];
    const char *enrolment;       /* "none", "pending", "accepted", "rejected" */
    int running_slot;
    char running_version[FOTA_AGENT_VERSION_MAX + 1];
    struct fota_agent_slot_status slots[2];
    int pending;                 /* an image waits for (or is on) trial */
    uint32_t security_counter;   /* the device's stored floor */
    int64_t last_fresh;          /* time of the last verified Director answer, 0: never */
    int64_t seq, session_counter;
    int download_in_progress;    /* download.json present */
    uint64_t download_offset;
};

/* Open: create data_dir, load or make the identity key, load state.json.
 * Fails (FOTA_E_NOT_FOUND) when tuf/root.json is missing. */
fota_err fota_agent_open(const struct fota_agent_config *cfg,
                         const struct fota_agent_hooks *hooks, struct fota_agent **ret);
void fota_agent_close(struct fota_agent *a);

/* One cycle, as described above. Returns FOTA_OK when the cycle ran (its
 * outcome is in *ret, including refusals and transient errors);
 * another code only for misuse or a broken local state (unreadable
 * data dir, flash unusable). */
fota_err fota_agent_cycle(struct fota_agent *a, struct fota_agent_cycle_info *ret);

/* The device's state, from local storage only (no network). */
fota_err fota_agent_status(struct fota_agent *a, struct fota_agent_status *ret);

/* The device id (64 hex), valid while the agent is open. */
const char *fota_agent_device_id(const struct fota_agent *a);

#endif
