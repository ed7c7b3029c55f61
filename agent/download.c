/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Step 6 of the cycle: an "install" from the Director becomes an image in
 * the inactive slot, marked pending.
 *
 * Every check that can be made before a byte is written is made first:
 * TUF must list the Director's target with the same length and sha256, for
 * this hardware id, with a security counter not below the device's and the
 * same version and counter as the Director says. Then the image streams
 * from a ranged GET straight into fota_install_write (no copy of the whole
 * image anywhere), capped at the signed length; the install checks length
 * and SHA-256 against the signed values and the image's own signature,
 * hardware id and counter before it marks the slot pending.
 *
 * download.json records the resume point (fota_install_resume_point, a
 * sector boundary already programmed) every 64 KiB, so a dropped connection
 * or a power cut costs at most that much again. The bytes re-read from the
 * slot on resume are trusted for nothing: the final SHA-256 covers them.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent_internal.h"

struct dl_sink {
    struct fota_agent *a;
    struct fota_install *in;
    const struct fota_director_decision *d;
    struct agent_download rec;     /* download.json as last stored */
    uint8_t header[FOTA_IMAGE_HEADER_LEN];
    size_t header_have;
    fota_err refusal;              /* a header check that failed */
    uint64_t received;             /* bytes taken in this cycle */
    uint64_t progress_at;
};

static const struct fota_tuf_hash *tuf_sha256(const struct fota_tuf_target *t)
{
    for (size_t i = 0; i < t->n_hashes; i++) {
        if (t->hashes[i].alg == FOTA_HASH_SHA256 && t->hashes[i].digest_len == 32)
            return &t->hashes[i];
    }
    return NULL;
}

/* TUF and the Director must agree, and the target must suit this device.
 * Starts from refusal; *ret_detail says which check failed. */
static fota_err check_target(struct fota_agent *a, const struct agent_view *v,
                             const struct fota_director_decision *d,
                             const struct fota_tuf_target *t, const char **ret_detail)
{
    const struct fota_tuf_hash *h = tuf_sha256(t);
    const json_t *hw_ids, *counter, *version, *e;
    uint32_t floor = v->st.security_counter;
    size_t i;
    int hw_ok = 0;

    if (t->length != d->length) {
        *ret_detail = "TUF and the Director disagree on the length";
        return FOTA_E_LENGTH;
    }
    if (h == NULL || !fota_ct_equal(h->digest, d->sha256, 32)) {
        *ret_detail = "TUF and the Director disagree on the sha256";
        return FOTA_E_HASH;
    }
    hw_ids = t->custom != NULL ? json_object_get(t->custom, "hardware_ids") : NULL;
    json_array_foreach(hw_ids, i, e) {
        if (json_is_string(e) && strcmp(json_string_value(e), a->hardware_id) == 0)
            hw_ok = 1;
    }
    if (!hw_ok) {
        *ret_detail = "the TUF target does not list this hardware id";
        return FOTA_E_HARDWARE;
    }
    counter = t->custom != NULL ? json_object_get(t->custom, "security_counter") : NULL;
    if (!json_is_integer(counter) || json_integer_value(counter) < 0 ||
        (uint64_t)json_integer_value(counter) != d->security_counter) {
        *ret_detail = "TUF and the Director disagree on the security counter";
        return FOTA_E_VERSION;
    }
    if (d->security_counter < floor) {
        *ret_detail = "security counter below the device's";
        return FOTA_E_ROLLBACK;
    }
    version = t->custom != NULL ? json_object_get(t->custom, "version") : NULL;
    if (!json_is_string(version) || strcmp(json_string_value(version), d->version) != 0) {
        *ret_detail = "TUF and the Director disagree on the version";
        return FOTA_E_VERSION;
    }
    if (agent_version_same(d->version, v->slots[v->running_slot].version)) {
        *ret_detail = "the device already runs this version";
        return FOTA_E_VERSION;
    }
    if (d->length > a->dev->slot[1 - v->st.active].size || d->length > UINT32_MAX) {
        *ret_detail = "the image does not fit the slot";
        return FOTA_E_LENGTH;
    }
    *ret_detail = "";
    return FOTA_OK;
}

/* The image header, as soon as it is in: refuse early what the image
 * verifier would refuse at the end anyway (hardware, counter), and an
 * image whose version is not the one the signed metadata named. */
static fota_err check_header(struct dl_sink *s)
{
    struct fota_image_header h;
    char ver[FOTA_AGENT_VERSION_MAX + 1];

    if (fota_image_header_decode(s->header, &h) != FOTA_OK)
        return FOTA_E_PARSE;
    if (strcmp(h.hardware_id, s->a->hardware_id) != 0)
        return FOTA_E_HARDWARE;
    if (h.security_counter != s->d->security_counter)
        return FOTA_E_VERSION;
    agent_version_string(&h, ver, sizeof ver);
    if (!agent_version_same(ver, s->d->version))
        return FOTA_E_VERSION;
    return FOTA_OK;
}

static fota_err sink_write(void *ctx, const uint8_t *data, size_t len)
{
    struct dl_sink *s = ctx;
    struct fota_agent *a = s->a;
    uint64_t offset = s->in->written;
    uint32_t rp;
    fota_err err;

    if (a->hooks.drop_download != NULL && a->hooks.drop_download(a->hooks.ctx, offset, len))
        return FOTA_E_NETWORK;
    if (s->header_have < FOTA_IMAGE_HEADER_LEN && offset < FOTA_IMAGE_HEADER_LEN) {
        size_t n = FOTA_IMAGE_HEADER_LEN - (size_t)offset;

        if (n > len)
            n = len;
        memcpy(s->header + offset, data, n);
        s->header_have = (size_t)offset + n;
        if (s->header_have == FOTA_IMAGE_HEADER_LEN) {
            err = check_header(s);
            if (err != FOTA_OK) {
                s->refusal = err;
                return err;
            }
        }
    }
    err = fota_install_write(s->in, data, len);
    if (err != FOTA_OK)
        return err;
    s->received += len;
    if (a->info != NULL)
        a->info->bytes_downloaded += len;
    rp = fota_install_resume_point(s->in);
    if (rp >= s->rec.offset + AGENT_RESUME_STEP) {
        s->rec.offset = rp;
        err = agent_download_store(a, &s->rec);
        if (err != FOTA_OK)
            return err;
    }
    if (a->hooks.progress != NULL &&
        (s->in->written - s->progress_at >= AGENT_RESUME_STEP ||
         s->in->written == s->in->expected_len)) {
        s->progress_at = s->in->written;
        a->hooks.progress(a->hooks.ctx, s->d->target, s->in->written, s->in->expected_len);
    }
    return FOTA_OK;
}

/* Start or resume the install; download.json names what may be resumed. */
static fota_err start_install(struct fota_agent *a, const struct agent_view *v,
                              struct dl_sink *s)
{
    const struct fota_director_decision *d = s->d;
    struct agent_download old;
    uint32_t from = 0;
    fota_err err;

    memset(&s->rec, 0, sizeof s->rec);
    snprintf(s->rec.target, sizeof s->rec.target, "%s", d->target);
    memcpy(s->rec.sha256, d->sha256, 32);
    s->rec.length = d->length;
    s->rec.slot = 1 - v->st.active;
    if (agent_download_load(a, &old) == FOTA_OK && strcmp(old.target, d->target) == 0 &&
        memcmp(old.sha256, d->sha256, 32) == 0 && old.length == d->length &&
        old.slot == s->rec.slot && !v->st.pending)
        from = (uint32_t)old.offset;
    agent_verify_cache_drop(a);
    s->header_have = 0;
    if (from > 0) {
        err = fota_install_resume(s->in, a->dev, (uint32_t)d->length, d->sha256, from);
        if (err == FOTA_OK && s->in->written >= FOTA_IMAGE_HEADER_LEN) {
            err = fota_flash_area_read(&a->dev->slot[s->in->slot], 0, s->header,
                                       sizeof s->header);
            if (err == FOTA_OK) {
                s->header_have = FOTA_IMAGE_HEADER_LEN;
                s->refusal = check_header(s);
                if (s->refusal != FOTA_OK) {
                    fota_install_abort(s->in);
                    return s->refusal;
                }
            } else {
                fota_install_abort(s->in);
            }
        }
        if (err == FOTA_OK) {
            agent_log(a, FOTA_AGENT_LOG_INFO, "download", "download resume target=%s offset=%lu",
                      d->target, (unsigned long)s->in->written);
            s->rec.offset = s->in->written;
            s->progress_at = s->in->written;
            return FOTA_OK;
        }
        if (err == FOTA_E_POWER || err == FOTA_E_IO)
            return err;
        agent_log(a, FOTA_AGENT_LOG_WARN, "download",
                  "download resume target=%s error=%s action=restart", d->target,
                  fota_strerror(err));
    }
    err = agent_remove_file(a, "download.json");
    if (err == FOTA_OK)
        err = fota_install_begin(s->in, a->dev, (uint32_t)d->length, d->sha256);
    if (err == FOTA_OK) {
        s->rec.offset = 0;
        s->progress_at = 0;
        err = agent_download_store(a, &s->rec);
        if (err != FOTA_OK)
            fota_install_abort(s->in);
    }
    return err;
}

/* A failure while the install is open: abort it, keep download.json for a
 * transient failure (the next cycle resumes), drop it for a refusal. */
static void fail(struct fota_agent *a, struct dl_sink *s, fota_err err, const char *what)
{
    const struct fota_director_decision *d = s->d;
    uint32_t rp = s->in->open ? fota_install_resume_point(s->in) : 0;

    if (s->in->open)
        fota_install_abort(s->in);
    agent_verify_cache_drop(a);
    if (agent_is_security_reason(err)) {
        agent_remove_file(a, "download.json");
        agent_refuse(a, err, d->target, d->version, "%s: %s", what, fota_strerror(err));
        return;
    }
    /* A power cut ends everything at once: nothing more is written. */
    if (err != FOTA_E_POWER && s->rec.offset < rp) {
        s->rec.offset = rp;
        agent_download_store(a, &s->rec);
    }
    agent_log(a, FOTA_AGENT_LOG_WARN, "download",
              "download target=%s error=%s offset=%lu detail=\"%s\"", d->target,
              fota_strerror(err), (unsigned long)s->in->written, a->http.errmsg);
    agent_outcome(a, FOTA_AGENT_ERROR, err, "%s: %s%s%s", what, fota_strerror(err),
                  a->http.errmsg[0] ? ": " : "", a->http.errmsg);
}

fota_err agent_install(struct fota_agent *a, fota_tuf_client *client, const struct agent_view *v,
                       const struct fota_director_decision *d)
{
    struct fota_tuf_target t;
    struct fota_install in;
    struct fota_image_info info;
    struct agent_install rec;
    struct dl_sink s;
    const char *detail = "";
    char *url = NULL;
    fota_err err;
    int tries = 0;

    snprintf(a->info->target, sizeof a->info->target, "%s", d->target);
    memset(&in, 0, sizeof in);
    memset(&s, 0, sizeof s);
    s.a = a;
    s.in = &in;
    s.d = d;

    err = fota_tuf_find_target(client, d->target, &t);
    if (err == FOTA_OK)
        err = check_target(a, v, d, &t, &detail);
    else
        detail = fota_tuf_errmsg(client)[0] ? fota_tuf_errmsg(client)
                                             : "no trusted TUF role lists the target";
    if (err != FOTA_OK) {
        if (agent_is_security_reason(err))
            agent_refuse(a, err, d->target, d->version, "%s", detail);
        else
            agent_outcome(a, FOTA_AGENT_ERROR, err == FOTA_E_IO ? FOTA_E_NETWORK : err,
                          "TUF target lookup: %s", detail);
        return err;
    }
    err = agent_target_url(a, &t, fota_tuf_consistent_snapshot(client), &url);
    if (err != FOTA_OK) {
        agent_outcome(a, FOTA_AGENT_ERROR, err, "cannot build the URL of %s", d->target);
        return err;
    }
    err = agent_report(a, "downloading", d->target, d->version, NULL, NULL);
    if (err != FOTA_OK)
        goto out;
    err = start_install(a, v, &s);
    if (err != FOTA_OK) {
        if (agent_is_security_reason(err))
            agent_refuse(a, err, d->target, d->version, "image header: %s", fota_strerror(err));
        else
            agent_outcome(a, FOTA_AGENT_ERROR, err, "cannot start the install: %s",
                          fota_strerror(err));
        goto out;
    }
    agent_log(a, FOTA_AGENT_LOG_INFO, "download", "download target=%s version=%s length=%lu "
              "offset=%lu slot=%c", d->target, d->version, (unsigned long)d->length,
              (unsigned long)in.written, in.slot == 0 ? 'A' : 'B');
    /* (a resume point at the very end leaves nothing to fetch) */
    while (in.written < d->length) {
        uint64_t got = 0;

        a->http.errmsg[0] = '\0';
        err = fota_posix_http_range(&a->http, url, in.written, d->length, sink_write, &s, &got);
        if (err == FOTA_OK && in.written != d->length)
            err = FOTA_E_NETWORK;              /* ended early without saying so */
        if (err == FOTA_OK)
            break;
        if (s.refusal != FOTA_OK) {
            fail(a, &s, s.refusal, "image header");
            goto out;
        }
        tries++;
        if ((err != FOTA_E_NETWORK && err != FOTA_E_SERVER) || tries >= AGENT_DOWNLOAD_TRIES ||
            !in.open) {
            fail(a, &s, err, "download");
            goto out;
        }
        if (err == FOTA_E_SERVER && in.written > 0) {
            /* A server that answers a range with the whole file (or an
             * error): start over from byte 0 rather than trust the offset. */
            fota_install_abort(&in);
            err = fota_install_begin(&in, a->dev, (uint32_t)d->length, d->sha256);
            if (err != FOTA_OK) {
                fail(a, &s, err, "download");
                goto out;
            }
            s.header_have = 0;
            s.rec.offset = 0;
            err = agent_download_store(a, &s.rec);
            if (err != FOTA_OK) {
                fail(a, &s, err, "download");
                goto out;
            }
        }
        agent_log(a, FOTA_AGENT_LOG_INFO, "download",
                  "download target=%s retry=%d offset=%lu detail=\"%s\"", d->target, tries,
                  (unsigned long)in.written, a->http.errmsg);
    }
    err = fota_install_finish(&in, &info);
    agent_verify_cache_drop(a);
    if (err != FOTA_OK) {
        agent_remove_file(a, "download.json");
        if (agent_is_security_reason(err)) {
            agent_refuse(a, err, d->target, d->version, "image refused: %s",
                         fota_strerror(err));
        } else {
            /* A local failure (flash, power, I/O) is not the update's
             * fault and says nothing about the image: no "failed" report
             * (the server would stop offering the update, and a device
             * whose power was cut could not have sent it anyway); the next
             * cycle downloads again. */
            agent_outcome(a, FOTA_AGENT_ERROR, err, "install failed: %s", fota_strerror(err));
        }
        goto out;
    }
    memset(&rec, 0, sizeof rec);
    snprintf(rec.target, sizeof rec.target, "%s", d->target);
    snprintf(rec.version, sizeof rec.version, "%s", d->version);
    memcpy(rec.sha256, d->sha256, 32);
    rec.have_sha256 = 1;
    rec.slot = in.slot;
    snprintf(rec.rollout, sizeof rec.rollout, "%s", d->rollout);
    rec.stage = STAGE_INSTALLED;
    err = agent_install_store(a, &rec);
    if (err == FOTA_OK)
        err = agent_remove_file(a, "download.json");
    if (err != FOTA_OK) {
        agent_outcome(a, FOTA_AGENT_ERROR, err, "cannot store install.json");
        goto out;
    }
    agent_log(a, FOTA_AGENT_LOG_INFO, "install",
              "install target=%s version=%s slot=%c security_counter=%lu", d->target,
              d->version, in.slot == 0 ? 'A' : 'B',
              (unsigned long)info.header.security_counter);
    /* The server hears of it now; if this report is lost, the check-in
     * after the reboot still shows where the device is. */
    agent_report(a, "installed", d->target, d->version, NULL, NULL);
    err = FOTA_OK;
out:
    free(url);
    return err;
}
