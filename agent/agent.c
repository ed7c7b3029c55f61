/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The agent cycle (agent.h): settle what the last boot left, enrol, open a
 * session, report what was settled, refresh TUF, check in, and install what
 * the Director names when everything agrees.
 *
 * The boot-state changes of step 1 (confirm, reject) are local decisions
 * made before any network traffic: a device that cannot reach its server
 * must still confirm a healthy image or give up a broken one, or the
 * bootloader would revert a good update. What the server must hear is kept
 * in install.json until it has heard it, so that a report lost on the way
 * is sent again while the boot-state change is never repeated.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "agent_internal.h"

static const char *const result_names[] = {
    "idle", "updated", "pending", "rolled-back", "refused", "error", "rejected", "rebooting",
};

const char *fota_agent_result_name(enum fota_agent_result r)
{
    return (unsigned)r < sizeof result_names / sizeof result_names[0] ? result_names[r]
                                                                      : "unknown";
}

int agent_is_security_reason(fota_err err)
{
    switch (err) {
    case FOTA_E_PARSE:
    case FOTA_E_TOO_BIG:
    case FOTA_E_DEPTH:
    case FOTA_E_DUPLICATE:
    case FOTA_E_UNSUPPORTED:
    case FOTA_E_SIGNATURE:
    case FOTA_E_THRESHOLD:
    case FOTA_E_EXPIRED:
    case FOTA_E_ROLLBACK:
    case FOTA_E_VERSION:
    case FOTA_E_HASH:
    case FOTA_E_LENGTH:
    case FOTA_E_TYPE:
    case FOTA_E_ROLE:
    case FOTA_E_NO_TARGET:
    case FOTA_E_LIMIT:
    case FOTA_E_KEY:
    case FOTA_E_HARDWARE:
    case FOTA_E_NONCE:
    case FOTA_E_DEVICE:
        return 1;
    default:
        return 0;
    }
}

int64_t agent_now(void)
{
    return (int64_t)time(NULL);
}

void agent_log(struct fota_agent *a, enum fota_agent_log_level level, const char *event,
               const char *fmt, ...)
{
    char line[1536];
    va_list ap;

    if (a->hooks.log == NULL)
        return;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    a->hooks.log(a->hooks.ctx, level, event, line);
}

void agent_outcome(struct fota_agent *a, enum fota_agent_result r, fota_err reason,
                   const char *fmt, ...)
{
    va_list ap;

    if (a->info == NULL)
        return;
    a->info->result = r;
    a->info->reason = reason;
    va_start(ap, fmt);
    vsnprintf(a->info->detail, sizeof a->info->detail, fmt, ap);
    va_end(ap);
}

const char *fota_agent_device_id(const struct fota_agent *a)
{
    return a->id;
}

/* ---- open / close ------------------------------------------------------------ */

static char *dup_or_null(const char *s, int *failed)
{
    char *d;

    if (s == NULL)
        return NULL;
    d = strdup(s);
    if (d == NULL)
        *failed = 1;
    return d;
}

static fota_err make_data_dir(const char *dir)
{
    struct stat sb;

    if (mkdir(dir, 0700) == 0)
        return FOTA_OK;
    if (errno == ENOENT) {
        /* parents first (0755, like mkdir -p), the data dir itself private */
        if (fota_posix_mkdirs(dir) != FOTA_OK)
            return FOTA_E_IO;
        return chmod(dir, 0700) == 0 ? FOTA_OK : FOTA_E_IO;
    }
    if (errno == EEXIST && stat(dir, &sb) == 0 && S_ISDIR(sb.st_mode))
        return FOTA_OK;
    return FOTA_E_IO;
}

fota_err fota_agent_open(const struct fota_agent_config *cfg,
                         const struct fota_agent_hooks *hooks, struct fota_agent **ret)
{
    struct fota_agent *a = NULL;
    struct stat sb;
    size_t len;
    int failed = 0;
    fota_err err = FOTA_E_INVALID;

    if (cfg == NULL || hooks == NULL || ret == NULL || hooks->reboot == NULL ||
        cfg->server_url == NULL || cfg->server_url[0] == '\0' || cfg->data_dir == NULL ||
        cfg->data_dir[0] == '\0' || cfg->hardware_id == NULL || cfg->hardware_id[0] == '\0' ||
        cfg->dev == NULL)
        return FOTA_E_INVALID;
    a = calloc(1, sizeof *a);
    if (a == NULL)
        return FOTA_E_NOMEM;
    a->hooks = *hooks;
    a->dev = cfg->dev;
    a->durable = cfg->durable;
    a->server = dup_or_null(cfg->server_url, &failed);
    a->ca_file = dup_or_null(cfg->ca_file, &failed);
    a->data_dir = dup_or_null(cfg->data_dir, &failed);
    a->hardware_id = dup_or_null(cfg->hardware_id, &failed);
    len = strlen(cfg->data_dir) + sizeof "/tuf";
    a->tuf_dir = malloc(len);
    if (failed || a->tuf_dir == NULL) {
        err = FOTA_E_NOMEM;
        goto fail;
    }
    snprintf(a->tuf_dir, len, "%s/tuf", cfg->data_dir);
    /* "http://host:port/" and "http://host:port" name the same server */
    len = strlen(a->server);
    while (len > 0 && a->server[len - 1] == '/')
        a->server[--len] = '\0';

    err = make_data_dir(a->data_dir);
    if (err != FOTA_OK) {
        agent_log(a, FOTA_AGENT_LOG_ERROR, "error", "error data_dir=%s detail=\"%s\"",
                  a->data_dir, strerror(errno));
        goto fail;
    }
    {
        size_t rlen = strlen(a->tuf_dir) + sizeof "/root.json";
        char *root = malloc(rlen);

        if (root == NULL) {
            err = FOTA_E_NOMEM;
            goto fail;
        }
        snprintf(root, rlen, "%s/root.json", a->tuf_dir);
        err = stat(root, &sb) == 0 && S_ISREG(sb.st_mode) ? FOTA_OK : FOTA_E_NOT_FOUND;
        if (err != FOTA_OK)
            agent_log(a, FOTA_AGENT_LOG_ERROR, "error",
                      "error missing=%s detail=\"the trusted TUF root must be provisioned\"",
                      root);
        free(root);
        if (err != FOTA_OK)
            goto fail;
    }
    err = agent_identity_load(a);
    if (err == FOTA_OK) {
        err = agent_state_load(a);
        if (err == FOTA_E_PARSE) {
            /* Only a damaged disk makes an atomically written file
             * unreadable. Start over rather than stay off the air: the
             * device enrols again (same key, same id), and the server's
             * 409 "replayed" moves the counters past the values it saw. */
            agent_log(a, FOTA_AGENT_LOG_WARN, "error",
                      "error file=state.json reason=parse action=reset");
            memset(&a->st, 0, sizeof a->st);
            err = agent_state_store(a);
        }
    }
    if (err != FOTA_OK) {
        agent_log(a, FOTA_AGENT_LOG_ERROR, "error", "error data_dir=%s reason=%s", a->data_dir,
                  fota_strerror(err));
        goto fail;
    }
    err = fota_posix_http_init(&a->http);
    if (err != FOTA_OK)
        goto fail;
    a->http_ready = 1;
    a->http.ca_file = a->ca_file;
    a->http.connect_timeout_s = cfg->connect_timeout_s ? (long)cfg->connect_timeout_s : 10;
    a->http.low_speed_bytes = cfg->low_speed_bytes ? (long)cfg->low_speed_bytes : 1024;
    a->http.low_speed_time_s = cfg->low_speed_time_s ? (long)cfg->low_speed_time_s : 30;
    *ret = a;
    return FOTA_OK;
fail:
    fota_agent_close(a);
    return err;
}

void fota_agent_close(struct fota_agent *a)
{
    if (a == NULL)
        return;
    if (a->http_ready)
        fota_posix_http_cleanup(&a->http);
    fota_wipe(a->token, sizeof a->token);
    fota_privkey_free(a->key);
    json_decref(a->keyobj);
    json_decref(a->director_keys);
    free(a->server);
    free(a->ca_file);
    free(a->data_dir);
    free(a->tuf_dir);
    free(a->hardware_id);
    free(a);
}

/* ---- step 1: settle what the last boot left ------------------------------------- */

static int is_local_failure(fota_err err)
{
    return err == FOTA_E_IO || err == FOTA_E_FLASH || err == FOTA_E_POWER ||
           err == FOTA_E_NOMEM || err == FOTA_E_INVALID;
}

static fota_err reboot(struct fota_agent *a, const char *why)
{
    fota_err err;

    a->reboots++;
    agent_log(a, FOTA_AGENT_LOG_INFO, "reboot", "reboot reason=%s", why);
    agent_verify_cache_drop(a);
    err = a->hooks.reboot(a->hooks.ctx);
    agent_verify_cache_drop(a);
    if (err != FOTA_OK) {
        agent_log(a, FOTA_AGENT_LOG_ERROR, "reboot", "reboot error=%s", fota_strerror(err));
        agent_outcome(a, FOTA_AGENT_REBOOTING, err, "the reboot failed (%s)",
                      fota_strerror(err));
    }
    return err;
}

/* An image on trial with no install.json (installed by hand, or the file
 * was lost): it still needs its health check, and the server its report. */
static fota_err adopt_trial(struct fota_agent *a, int slot, struct agent_install *ret)
{
    uint8_t raw[FOTA_IMAGE_HEADER_LEN];
    struct fota_image_header h;
    struct agent_install rec;
    fota_err err;

    err = fota_flash_area_read(&a->dev->slot[slot], 0, raw, sizeof raw);
    if (err != FOTA_OK)
        return err;
    if (fota_image_header_decode(raw, &h) != FOTA_OK)
        return FOTA_E_PARSE;
    memset(&rec, 0, sizeof rec);
    agent_version_string(&h, rec.version, sizeof rec.version);
    rec.slot = slot;
    rec.stage = STAGE_INSTALLED;
    err = agent_install_store(a, &rec);
    if (err == FOTA_OK) {
        agent_log(a, FOTA_AGENT_LOG_INFO, "install", "install adopted version=%s slot=%c",
                  rec.version, slot == 0 ? 'A' : 'B');
        *ret = rec;
    }
    return err;
}

/*
 * FOTA_OK when nothing is left to do locally (install.json, if any, is
 * settled). FOTA_E_STATE when a reboot is needed and did not happen (the
 * outcome is REBOOTING). Another code for a local failure.
 */
static fota_err settle_local(struct fota_agent *a)
{
    for (int round = 0; round < 4; round++) {
        struct agent_install rec;
        struct fota_boot_state st;
        int slot = 0;
        fota_err err;

        err = fota_boot_running_slot(a->dev, &slot, &st);
        if (err != FOTA_OK)
            return err;
        err = agent_install_load(a, &rec);
        if (err == FOTA_E_PARSE) {
            agent_log(a, FOTA_AGENT_LOG_WARN, "install", "install error=parse action=remove");
            err = agent_remove_file(a, "install.json");
            if (err != FOTA_OK)
                return err;
            continue;
        }
        if (err == FOTA_E_NOT_FOUND) {
            if (!(st.pending && st.trial))
                return FOTA_OK;
            err = adopt_trial(a, slot, &rec);
            if (err != FOTA_OK)
                return err;
        } else if (err != FOTA_OK) {
            return err;
        }
        if (rec.stage != STAGE_INSTALLED)
            return FOTA_OK;

        if (st.pending && st.trial) {
            int health;

            if (slot != rec.slot) {
                agent_log(a, FOTA_AGENT_LOG_WARN, "install",
                          "install stale=install.json slot=%d trial=%d", rec.slot, slot);
                err = agent_remove_file(a, "install.json");
                if (err != FOTA_OK)
                    return err;
                continue;
            }
            health = a->hooks.health != NULL ? a->hooks.health(a->hooks.ctx) : 0;
            if (health == 0) {
                err = fota_boot_confirm(a->dev);
                if (err == FOTA_OK) {
                    rec.stage = STAGE_CONFIRMED;
                    agent_log(a, FOTA_AGENT_LOG_INFO, "confirm", "confirm version=%s slot=%c",
                              rec.version, slot == 0 ? 'A' : 'B');
                    return agent_install_store(a, &rec);
                }
                if (is_local_failure(err))
                    return err;
                /* The image on trial no longer verifies: it must not become
                 * the confirmed one. */
                agent_log(a, FOTA_AGENT_LOG_WARN, "rollback",
                          "rollback version=%s reason=%s detail=\"confirm refused\"",
                          rec.version, fota_strerror(err));
            } else {
                agent_log(a, FOTA_AGENT_LOG_WARN, "rollback",
                          "rollback version=%s reason=health-check status=%d", rec.version,
                          health);
            }
            err = fota_boot_reject(a->dev);
            if (err != FOTA_OK)
                return err;
            rec.stage = STAGE_ROLLED_BACK;
            rec.reason = FOTA_E_HEALTH;
            err = agent_install_store(a, &rec);
            if (err != FOTA_OK)
                return err;
            return reboot(a, "health-check") == FOTA_OK ? FOTA_OK : FOTA_E_STATE;
        }
        if (st.pending) {
            if (1 - st.active != rec.slot) {
                agent_log(a, FOTA_AGENT_LOG_WARN, "install",
                          "install stale=install.json slot=%d pending=%d", rec.slot,
                          1 - st.active);
                err = agent_remove_file(a, "install.json");
                if (err != FOTA_OK)
                    return err;
                continue;
            }
            if (a->reboots > 0) {
                /* the hook returned, but the bootloader never ran: the
                 * reboot is still to come (or never will): do not loop */
                agent_outcome(a, FOTA_AGENT_REBOOTING, FOTA_OK,
                              "%s installed; waiting for the reboot", rec.version);
                return FOTA_E_STATE;
            }
            if (reboot(a, "install") != FOTA_OK)
                return FOTA_E_STATE;
            continue;
        }
        /* Nothing pending: the image was confirmed (by us in an earlier
         * life, or by hand) or the bootloader went back to the old one. */
        if (st.active == rec.slot) {
            rec.stage = STAGE_CONFIRMED;
            agent_log(a, FOTA_AGENT_LOG_INFO, "confirm", "confirm version=%s slot=%c",
                      rec.version, rec.slot == 0 ? 'A' : 'B');
        } else {
            rec.stage = STAGE_ROLLED_BACK;
            rec.reason = FOTA_E_REVERTED;
            agent_log(a, FOTA_AGENT_LOG_WARN, "rollback", "rollback version=%s reason=reverted",
                      rec.version);
        }
        return agent_install_store(a, &rec);
    }
    agent_outcome(a, FOTA_AGENT_ERROR, FOTA_E_STATE, "install.json and the boot state disagree");
    return FOTA_E_STATE;
}

struct finished {
    enum fota_agent_result result;     /* FOTA_AGENT_IDLE: nothing finished */
    fota_err reason;
    char version[FOTA_AGENT_VERSION_MAX + 1];
    char target[FOTA_DIRECTOR_TARGET_NAME_MAX + 1];
};

/* Tell the server how a settled update ended, then forget it. */
static fota_err flush_reports(struct fota_agent *a, struct finished *f)
{
    struct agent_install rec;
    const char *target;
    fota_err err;

    err = agent_install_load(a, &rec);
    if (err == FOTA_E_NOT_FOUND || (err == FOTA_OK && rec.stage == STAGE_INSTALLED))
        return FOTA_OK;
    if (err != FOTA_OK) {
        agent_outcome(a, FOTA_AGENT_ERROR, err, "cannot read install.json");
        return err;
    }
    target = rec.target[0] != '\0' ? rec.target : NULL;
    if (!rec.rebooted_reported && (rec.stage == STAGE_CONFIRMED || rec.reason == FOTA_E_HEALTH)) {
        err = agent_report(a, "rebooted", target, rec.version, NULL, NULL);
        if (err != FOTA_OK)
            return err;
        rec.rebooted_reported = 1;
        err = agent_install_store(a, &rec);
        if (err != FOTA_OK) {
            agent_outcome(a, FOTA_AGENT_ERROR, err, "cannot store install.json");
            return err;
        }
    }
    if (rec.stage == STAGE_CONFIRMED)
        err = agent_report(a, "confirmed", target, rec.version, NULL, NULL);
    else
        err = agent_report(a, "rolled_back", target, rec.version, fota_strerror(rec.reason),
                           rec.reason == FOTA_E_HEALTH ? "the health check failed on trial"
                                                       : "the bootloader went back");
    if (err != FOTA_OK)
        return err;
    err = agent_remove_file(a, "install.json");
    if (err != FOTA_OK) {
        agent_outcome(a, FOTA_AGENT_ERROR, err, "cannot remove install.json");
        return err;
    }
    f->result = rec.stage == STAGE_CONFIRMED ? FOTA_AGENT_UPDATED : FOTA_AGENT_ROLLED_BACK;
    f->reason = rec.stage == STAGE_CONFIRMED ? FOTA_OK : rec.reason;
    snprintf(f->version, sizeof f->version, "%s", rec.version);
    snprintf(f->target, sizeof f->target, "%s", rec.target);
    return FOTA_OK;
}

/* ---- the cycle ---------------------------------------------------------------------- */

/* Local failures end the cycle with their code, except a simulated power
 * cut, which is a transient error of the device the simulator restarts. */
static fota_err local_failure(struct fota_agent *a, fota_err err, const char *what)
{
    agent_log(a, FOTA_AGENT_LOG_ERROR, "error", "error step=%s reason=%s", what,
              fota_strerror(err));
    agent_outcome(a, FOTA_AGENT_ERROR, err, "%s: %s", what, fota_strerror(err));
    return err == FOTA_E_POWER ? FOTA_OK : err;
}

static fota_err cycle(struct fota_agent *a, struct fota_agent_cycle_info *info,
                      fota_tuf_client **client)
{
    struct finished fin;
    struct agent_view view;
    struct fota_director_decision d;
    const json_t *keyset = NULL;
    fota_err err;

    memset(&fin, 0, sizeof fin);
    fin.result = FOTA_AGENT_IDLE;

    err = settle_local(a);
    if (err == FOTA_E_STATE)
        return FOTA_OK;                        /* REBOOTING (or stuck): outcome set */
    if (err != FOTA_OK)
        return local_failure(a, err, "settle");
    err = agent_view_load(a, 1, &view);
    if (err != FOTA_OK)
        return local_failure(a, err, "slots");
    if (!view.running_ok) {
        agent_outcome(a, FOTA_AGENT_ERROR, FOTA_E_NO_IMAGE,
                      "the running slot %c holds no image", view.running_slot ? 'B' : 'A');
        return FOTA_OK;
    }
    a->view = &view;

    if (agent_ensure_session(a, &view) != FOTA_OK)
        return FOTA_OK;
    if (flush_reports(a, &fin) != FOTA_OK)
        return FOTA_OK;
    if (agent_trust_refresh(a, client) != FOTA_OK)
        goto finished;
    if (agent_director_keys(a, *client, &keyset) != FOTA_OK)
        goto finished;
    if (agent_checkin(a, &view, keyset, &d) != FOTA_OK)
        goto finished;
    if (fin.result != FOTA_AGENT_IDLE)
        goto finished;
    if (d.action != FOTA_DIRECTOR_INSTALL) {
        if (agent_remove_file(a, "download.json") != FOTA_OK)
            agent_log(a, FOTA_AGENT_LOG_WARN, "download", "download error=cannot-remove");
        agent_outcome(a, FOTA_AGENT_IDLE, FOTA_OK, "%s", "");
        return FOTA_OK;
    }
    if (agent_install(a, *client, &view, &d) != FOTA_OK)
        return FOTA_OK;

    /* Installed and pending: reboot into it, settle, report, and check in
     * once more so that the server sees the new version at once. */
    err = settle_local(a);
    if (err == FOTA_E_STATE)
        return FOTA_OK;
    if (err != FOTA_OK)
        return local_failure(a, err, "settle");
    if (flush_reports(a, &fin) != FOTA_OK)
        return FOTA_OK;
    err = agent_view_load(a, 1, &view);
    if (err != FOTA_OK)
        return local_failure(a, err, "slots");
    if (view.running_ok && agent_checkin(a, &view, keyset, &d) == FOTA_OK &&
        d.action == FOTA_DIRECTOR_INSTALL)
        agent_log(a, FOTA_AGENT_LOG_INFO, "checkin", "checkin deferred=next-cycle target=%s",
                  d.target);
finished:
    if (fin.result != FOTA_AGENT_IDLE) {
        if (info->result != FOTA_AGENT_IDLE)
            agent_log(a, FOTA_AGENT_LOG_WARN, "error", "error after=%s detail=\"%s\"",
                      fota_agent_result_name(fin.result), info->detail);
        snprintf(info->target, sizeof info->target, "%s", fin.target);
        if (fin.result == FOTA_AGENT_UPDATED)
            agent_outcome(a, fin.result, FOTA_OK, "%s confirmed", fin.version);
        else
            agent_outcome(a, fin.result, fin.reason, "%s rolled back (%s)", fin.version,
                          fota_strerror(fin.reason));
    }
    return FOTA_OK;
}

fota_err fota_agent_cycle(struct fota_agent *a, struct fota_agent_cycle_info *ret)
{
    struct fota_agent_cycle_info info;
    fota_tuf_client *client = NULL;
    struct agent_view end;
    fota_err err;

    if (a == NULL || ret == NULL)
        return FOTA_E_INVALID;
    memset(&info, 0, sizeof info);
    info.result = FOTA_AGENT_IDLE;
    a->info = &info;
    a->reboots = 0;
    a->view = NULL;
    err = cycle(a, &info, &client);
    if (client != NULL)
        agent_trust_free(a, client);
    if (err == FOTA_OK && agent_view_load(a, 0, &end) == FOTA_OK && end.running_ok)
        snprintf(info.version, sizeof info.version, "%s", end.slots[end.running_slot].version);
    a->info = NULL;
    a->view = NULL;
    if (err != FOTA_OK)
        return err;
    {
        /* the detail is free text: keep the line one key=value list */
        char detail[sizeof info.detail];

        snprintf(detail, sizeof detail, "%s", info.detail);
        for (char *p = detail; *p != '\0'; p++) {
            if (*p == '"' || (unsigned char)*p < 0x20)
                *p = '\'';
        }
        agent_log(a, info.result == FOTA_AGENT_ERROR ? FOTA_AGENT_LOG_WARN : FOTA_AGENT_LOG_INFO,
                  "cycle", "cycle result=%s%s%s version=%s%s%s%s%s%s",
                  fota_agent_result_name(info.result), info.reason != FOTA_OK ? " reason=" : "",
                  info.reason != FOTA_OK ? fota_strerror(info.reason) : "",
                  info.version[0] ? info.version : "none", info.target[0] ? " target=" : "",
                  info.target, detail[0] ? " detail=\"" : "", detail, detail[0] ? "\"" : "");
    }
    *ret = info;
    return FOTA_OK;
}

/* ---- status ------------------------------------------------------------------------------ */

fota_err fota_agent_status(struct fota_agent *a, struct fota_agent_status *ret)
{
    struct fota_agent_status s;
    struct agent_view v;
    struct agent_download dl;
    fota_err err;

    if (a == NULL || ret == NULL)
        return FOTA_E_INVALID;
    err = agent_view_load(a, a->dev->n_keys > 0, &v);
    if (err != FOTA_OK)
        return err;
    memset(&s, 0, sizeof s);
    snprintf(s.device_id, sizeof s.device_id, "%s", a->id);
    s.enrolment = agent_enrolment_name(a->st.enrolment);
    s.running_slot = v.running_slot;
    if (v.running_ok)
        snprintf(s.running_version, sizeof s.running_version, "%s",
                 v.slots[v.running_slot].version);
    for (int i = 0; i < 2; i++) {
        s.slots[i].state = v.slots[i].state;
        if (v.slots[i].has_header) {
            snprintf(s.slots[i].version, sizeof s.slots[i].version, "%s", v.slots[i].version);
            s.slots[i].security_counter = v.slots[i].header.security_counter;
        }
    }
    s.pending = v.st.pending;
    s.security_counter = v.st.security_counter;
    s.last_fresh = a->st.last_fresh;
    s.seq = a->st.seq;
    s.session_counter = a->st.session_counter;
    if (agent_download_load(a, &dl) == FOTA_OK) {
        s.download_in_progress = 1;
        s.download_offset = dl.offset;
    }
    *ret = s;
    return FOTA_OK;
}
