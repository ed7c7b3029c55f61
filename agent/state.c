/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The agent's data directory: the identity key, state.json (enrolment and
 * counters), download.json (resume point) and install.json (an update
 * between install and the server hearing how it ended). See agent.h for
 * the layout and docs/agent.md for the fields.
 *
 * Every file is replaced atomically (temp file, rename). On a device
 * (durable) the temp file and the directory are fsync'ed through the POSIX
 * port; the simulator skips the fsyncs, since ten thousand devices writing
 * state files would otherwise measure the disk and not the update system.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent_internal.h"
#include "fota/json.h"

#define IDENTITY_FILE "identity.pem"
#define STATE_FILE "state.json"
#define DOWNLOAD_FILE "download.json"
#define INSTALL_FILE "install.json"

static char *join(const char *dir, const char *name)
{
    size_t len = strlen(dir) + 1 + strlen(name) + 1;
    char *p = malloc(len);

    if (p != NULL)
        snprintf(p, len, "%s/%s", dir, name);
    return p;
}

/* Temp file + rename, no fsync: for the simulator only. */
static fota_err write_fast(const char *dir, const char *name, const void *buf, size_t len,
                           unsigned mode)
{
    char tmp_name[300];
    char *tmp = NULL, *path = NULL;
    const uint8_t *p = buf;
    fota_err err = FOTA_E_NOMEM;
    int fd = -1;

    snprintf(tmp_name, sizeof tmp_name, ".%s.tmp", name);
    tmp = join(dir, tmp_name);
    path = join(dir, name);
    if (tmp == NULL || path == NULL)
        goto out;
    err = FOTA_E_IO;
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0)
        goto out;
    while (len > 0) {
        ssize_t n = write(fd, p, len);

        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            goto out;
        p += n;
        len -= (size_t)n;
    }
    if (fchmod(fd, (mode_t)mode) != 0)
        goto out;
    if (close(fd) != 0) {
        fd = -1;
        goto out;
    }
    fd = -1;
    if (rename(tmp, path) != 0)
        goto out;
    err = FOTA_OK;
out:
    if (fd >= 0)
        close(fd);
    if (err != FOTA_OK && tmp != NULL)
        unlink(tmp);
    free(tmp);
    free(path);
    return err;
}

fota_err agent_write_in(struct fota_agent *a, const char *dir, const char *name, const void *buf,
                        size_t len, unsigned mode)
{
    char *path;
    fota_err err;

    if (!a->durable)
        return write_fast(dir, name, buf, len, mode);
    path = join(dir, name);
    if (path == NULL)
        return FOTA_E_NOMEM;
    err = fota_posix_write_file(path, buf, len, mode, 0);
    free(path);
    return err;
}

fota_err agent_write_file(struct fota_agent *a, const char *name, const void *buf, size_t len,
                          unsigned mode)
{
    return agent_write_in(a, a->data_dir, name, buf, len, mode);
}

fota_err agent_remove_file(struct fota_agent *a, const char *name)
{
    char *path;
    int rc;

    if (a->durable)
        return fota_posix_dir_remove(a->data_dir, name);
    path = join(a->data_dir, name);
    if (path == NULL)
        return FOTA_E_NOMEM;
    rc = unlink(path);
    free(path);
    return rc == 0 || errno == ENOENT ? FOTA_OK : FOTA_E_IO;
}

static fota_err read_json(struct fota_agent *a, const char *name, json_t **ret)
{
    uint8_t *buf = NULL;
    size_t len = 0;
    fota_err err;

    err = fota_posix_dir_load(a->data_dir, name, AGENT_STATE_FILE_MAX, &buf, &len);
    if (err != FOTA_OK)
        return err;
    err = fota_json_parse(buf, len, AGENT_STATE_FILE_MAX, 4, ret);
    free(buf);
    if (err != FOTA_OK)
        return FOTA_E_PARSE;
    if (!json_is_object(*ret)) {
        json_decref(*ret);
        *ret = NULL;
        return FOTA_E_PARSE;
    }
    return FOTA_OK;
}

static fota_err write_json(struct fota_agent *a, const char *name, json_t *obj)
{
    char *text;
    fota_err err;

    if (obj == NULL)
        return FOTA_E_NOMEM;
    text = json_dumps(obj, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(obj);
    if (text == NULL)
        return FOTA_E_NOMEM;
    err = agent_write_file(a, name, text, strlen(text), 0600);
    free(text);
    return err;
}

/* Non-negative integer field. */
static int get_count(const json_t *o, const char *key, int64_t max, int64_t *ret)
{
    const json_t *v = json_object_get(o, key);

    if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > max)
        return 0;
    *ret = (int64_t)json_integer_value(v);
    return 1;
}

static int get_string(const json_t *o, const char *key, char *out, size_t out_size)
{
    const char *s = json_string_value(json_object_get(o, key));

    if (s == NULL || strlen(s) >= out_size)
        return 0;
    memcpy(out, s, strlen(s) + 1);
    return 1;
}

static int get_sha256(const json_t *o, const char *key, uint8_t out[32])
{
    const char *s = json_string_value(json_object_get(o, key));

    return s != NULL && strlen(s) == 64 && fota_hex_decode(s, 64, out, 32) == FOTA_OK;
}

/* ---- identity ------------------------------------------------------------ */

fota_err agent_identity_load(struct fota_agent *a)
{
    fota_privkey *key = NULL;
    json_t *keyobj = NULL;
    uint8_t *buf = NULL;
    char *pem = NULL;
    size_t len = 0, pem_len = 0;
    fota_err err;

    err = fota_posix_dir_load(a->data_dir, IDENTITY_FILE, AGENT_IDENTITY_MAX, &buf, &len);
    if (err == FOTA_OK) {
        err = fota_privkey_from_pem((const char *)buf, len, &key);
        fota_secret_free(buf, len);
        if (err != FOTA_OK) {
            agent_log(a, FOTA_AGENT_LOG_ERROR, "error", "error identity=%s/%s reason=%s",
                      a->data_dir, IDENTITY_FILE, fota_strerror(err));
            goto out;
        }
    } else if (err == FOTA_E_NOT_FOUND) {
        /* First start: the device makes its own key; only its public half
         * ever leaves the device (enrolment). */
        err = fota_privkey_generate(FOTA_KEY_ED25519, &key);
        if (err == FOTA_OK)
            err = fota_privkey_to_pem(key, &pem, &pem_len);
        if (err == FOTA_OK) {
            if (a->durable) {
                char *path = join(a->data_dir, IDENTITY_FILE);

                err = path == NULL ? FOTA_E_NOMEM
                                   : fota_posix_write_file(path, pem, pem_len, 0600,
                                                           FOTA_POSIX_NO_REPLACE);
                free(path);
            } else {
                err = write_fast(a->data_dir, IDENTITY_FILE, pem, pem_len, 0600);
            }
        }
        if (err != FOTA_OK)
            goto out;
    } else {
        goto out;
    }
    err = fota_tuf_key_json(key, &keyobj);
    if (err == FOTA_OK)
        err = fota_tuf_keyid(keyobj, a->id);
    if (err != FOTA_OK)
        goto out;
    a->key = key;
    a->keyobj = keyobj;
    key = NULL;
    keyobj = NULL;
out:
    if (pem != NULL)
        fota_secret_free(pem, pem_len);
    fota_privkey_free(key);
    json_decref(keyobj);
    return err;
}

/* ---- state.json ------------------------------------------------------------ */

static const char *const enrolment_names[] = {"none", "pending", "accepted", "rejected"};

const char *agent_enrolment_name(enum agent_enrolment e)
{
    return (unsigned)e < 4 ? enrolment_names[e] : "none";
}

fota_err agent_state_load(struct fota_agent *a)
{
    struct agent_state st = {0};
    char device[FOTA_AGENT_ID_LEN + 1];
    char enrol[16];
    json_t *o = NULL;
    fota_err err;
    int i;

    err = read_json(a, STATE_FILE, &o);
    if (err == FOTA_E_NOT_FOUND) {
        memset(&a->st, 0, sizeof a->st);
        return FOTA_OK;
    }
    if (err != FOTA_OK)
        return err;
    err = FOTA_E_PARSE;
    if (!get_string(o, "device", device, sizeof device) ||
        !get_string(o, "enrolment", enrol, sizeof enrol) ||
        !get_count(o, "session_counter", INT64_MAX, &st.session_counter) ||
        !get_count(o, "seq", INT64_MAX, &st.seq) ||
        !get_count(o, "last_fresh", INT64_MAX, &st.last_fresh))
        goto out;
    for (i = 0; i < 4; i++) {
        if (strcmp(enrol, enrolment_names[i]) == 0)
            break;
    }
    if (i == 4)
        goto out;
    st.enrolment = (enum agent_enrolment)i;
    /* A new identity key is a new device: its enrolment starts over, but
     * the counters only ever go up. */
    if (strcmp(device, a->id) != 0)
        st.enrolment = ENROL_NONE;
    a->st = st;
    err = FOTA_OK;
out:
    json_decref(o);
    return err;
}

fota_err agent_state_store(struct fota_agent *a)
{
    return write_json(a, STATE_FILE,
                      json_pack("{s:s,s:s,s:I,s:I,s:I}", "device", a->id, "enrolment",
                                agent_enrolment_name(a->st.enrolment), "session_counter",
                                (json_int_t)a->st.session_counter, "seq",
                                (json_int_t)a->st.seq, "last_fresh",
                                (json_int_t)a->st.last_fresh));
}

/* ---- download.json ------------------------------------------------------------ */

fota_err agent_download_load(struct fota_agent *a, struct agent_download *ret)
{
    struct agent_download d;
    int64_t length = 0, slot = 0, offset = 0;
    json_t *o = NULL;
    fota_err err;

    memset(&d, 0, sizeof d);
    err = read_json(a, DOWNLOAD_FILE, &o);
    if (err != FOTA_OK)
        return err == FOTA_E_NOT_FOUND ? err : FOTA_E_PARSE;
    err = FOTA_E_PARSE;
    if (!get_string(o, "target", d.target, sizeof d.target) ||
        !get_sha256(o, "sha256", d.sha256) || !get_count(o, "length", UINT32_MAX, &length) ||
        !get_count(o, "slot", 1, &slot) || !get_count(o, "offset", length, &offset))
        goto out;
    d.length = (uint64_t)length;
    d.slot = (int)slot;
    d.offset = (uint64_t)offset;
    *ret = d;
    err = FOTA_OK;
out:
    json_decref(o);
    return err;
}

fota_err agent_download_store(struct fota_agent *a, const struct agent_download *d)
{
    char hex[65];

    fota_hex_encode(d->sha256, 32, hex);
    return write_json(a, DOWNLOAD_FILE,
                      json_pack("{s:s,s:s,s:I,s:i,s:I}", "target", d->target, "sha256", hex,
                                "length", (json_int_t)d->length, "slot", d->slot, "offset",
                                (json_int_t)d->offset));
}

/* ---- install.json ------------------------------------------------------------ */

static const char *const stage_names[] = {"installed", "confirmed", "rolled_back"};

const char *agent_stage_name(enum agent_stage s)
{
    return (unsigned)s < 3 ? stage_names[s] : "installed";
}

fota_err agent_install_load(struct fota_agent *a, struct agent_install *ret)
{
    struct agent_install in;
    char stage[16];
    char reason[32] = "";
    int64_t slot = 0;
    const json_t *v;
    json_t *o = NULL;
    fota_err err;
    int i;

    memset(&in, 0, sizeof in);
    err = read_json(a, INSTALL_FILE, &o);
    /* Only a file that is there and malformed is FOTA_E_PARSE (the caller
     * removes it); a failure to read it (out of descriptors, I/O) is passed
     * on, so a passing fault never erases the record of an installed
     * update. */
    if (err == FOTA_E_NOT_FOUND || err == FOTA_E_IO || err == FOTA_E_NOMEM)
        return err;
    if (err != FOTA_OK)
        return FOTA_E_PARSE;
    err = FOTA_E_PARSE;
    if (!get_string(o, "target", in.target, sizeof in.target) ||
        !get_string(o, "version", in.version, sizeof in.version) ||
        !get_string(o, "rollout", in.rollout, sizeof in.rollout) ||
        !get_count(o, "slot", 1, &slot) || !get_string(o, "stage", stage, sizeof stage))
        goto out;
    v = json_object_get(o, "sha256");
    if (v != NULL && !json_is_null(v)) {
        if (!get_sha256(o, "sha256", in.sha256))
            goto out;
        in.have_sha256 = 1;
    }
    for (i = 0; i < 3; i++) {
        if (strcmp(stage, stage_names[i]) == 0)
            break;
    }
    if (i == 3)
        goto out;
    in.stage = (enum agent_stage)i;
    in.slot = (int)slot;
    v = json_object_get(o, "reason");
    if (v != NULL && !get_string(o, "reason", reason, sizeof reason))
        goto out;
    in.reason = strcmp(reason, fota_strerror(FOTA_E_HEALTH)) == 0     ? FOTA_E_HEALTH
                : strcmp(reason, fota_strerror(FOTA_E_REVERTED)) == 0 ? FOTA_E_REVERTED
                                                                      : FOTA_OK;
    if (in.stage == STAGE_ROLLED_BACK && in.reason == FOTA_OK)
        goto out;
    in.rebooted_reported = json_is_true(json_object_get(o, "rebooted_reported"));
    *ret = in;
    err = FOTA_OK;
out:
    json_decref(o);
    return err;
}

fota_err agent_install_store(struct fota_agent *a, const struct agent_install *in)
{
    char hex[65];
    json_t *o;

    fota_hex_encode(in->sha256, 32, hex);
    o = json_pack("{s:s,s:s,s:s?,s:i,s:s,s:s,s:b}", "target", in->target, "version", in->version,
                  "sha256", in->have_sha256 ? hex : NULL, "slot", in->slot, "rollout",
                  in->rollout, "stage", agent_stage_name(in->stage), "rebooted_reported",
                  in->rebooted_reported);
    if (o != NULL && in->stage == STAGE_ROLLED_BACK &&
        json_object_set_new(o, "reason", json_string(fota_strerror(in->reason))) != 0) {
        json_decref(o);
        o = NULL;
    }
    return write_json(a, INSTALL_FILE, o);
}

#define REFUSAL_FILE "refusal.json"

static void copy_field(char *dst, size_t cap, const json_t *o, const char *key)
{
    const char *v = json_string_value(json_object_get(o, key));

    snprintf(dst, cap, "%s", v != NULL ? v : "");
}

fota_err agent_refusal_load(struct fota_agent *a, struct agent_refusal *ret)
{
    struct agent_refusal r;
    json_t *o = NULL;
    fota_err err;

    err = read_json(a, REFUSAL_FILE, &o);
    if (err != FOTA_OK)
        return err;
    memset(&r, 0, sizeof r);
    if (!get_count(o, "seq", INT64_MAX, &r.seq) ||
        !json_is_string(json_object_get(o, "reason"))) {
        json_decref(o);
        return FOTA_E_PARSE;
    }
    copy_field(r.reason, sizeof r.reason, o, "reason");
    copy_field(r.target, sizeof r.target, o, "target");
    copy_field(r.version, sizeof r.version, o, "version");
    copy_field(r.detail, sizeof r.detail, o, "detail");
    json_decref(o);
    *ret = r;
    return FOTA_OK;
}

fota_err agent_refusal_store(struct fota_agent *a, const struct agent_refusal *r)
{
    return write_json(a, REFUSAL_FILE,
                      json_pack("{s:s,s:s,s:s,s:s,s:I}", "reason", r->reason, "target", r->target,
                                "version", r->version, "detail", r->detail, "seq",
                                (json_int_t)r->seq));
}
