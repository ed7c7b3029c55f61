/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fota-sim powercut: the power-cut proof (docs/powercut.md).
 *
 * One scenario, replayed many times: a device runs v1 (confirmed); the agent
 * installs v2 into the other slot, powers on (v2 on trial), confirms, powers
 * on again (v2 confirmed). The reference run counts its flash operations;
 * then power is cut at every one of them, a torn write is made at every
 * write, and random runs cut several times, recovery included. After every
 * power-on the booted slot is judged without trusting fota_boot: it must
 * verify with the device key against the highest security counter the
 * device has reached, and be byte for byte one of the two genuine images.
 * After each cut the agent resumes or retries until v2 runs confirmed.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "fota_posix.h"
#include "sim.h"

#define CMD "powercut"
#define HARDWARE_ID "fota-sim-board"
#define CHUNK 1000u                 /* agent write size: deliberately not aligned */
#define MAX_POWER_ONS 64u           /* a run that needs more has not completed */
#define MAX_CUTS 64u
#define MAX_PROBLEMS_SHOWN 10u

enum bug {
    BUG_NONE = 0,
    BUG_OVERWRITE_ACTIVE,   /* agent writes the new image over the running one */
    BUG_STATE_IN_PLACE,     /* agent rewrites the boot state by erasing both copies */
};

struct opts {
    uint32_t payload_len;
    uint32_t sector_size;
    uint32_t write_align;
    uint32_t random_runs;
    uint32_t max_cuts;
    uint64_t seed;
    int verbose;
    int json;
    enum bug bug;
};

/* What the agent does next after a power-on. */
enum action {
    ACT_NONE = 0,           /* power on again */
    ACT_INSTALL,
    ACT_CONFIRM,
    ACT_STOP,               /* done or bricked */
};

/* Which genuine image a slot holds, byte for byte. */
enum ident {
    IDENT_OTHER = 0,
    IDENT_V1 = 1,
    IDENT_V2 = 2,
};

struct cut {
    uint64_t at;            /* absolute operation index since the run began, from 1 */
    enum fota_flash_cut_mode mode;
};

struct world {
    struct opts o;
    struct sim_device *sd;
    struct sim_signer key;          /* the device trusts this one */
    struct sim_signer other;        /* and not this one */
    struct sim_image v1, v2;
    uint8_t *readback;              /* one slot's worth */
    uint8_t vscratch[1024];         /* the judge's own verifier scratch */
    int progress;                   /* stderr is a terminal and not verbose */
    uint64_t ref_boot_ops;          /* reference run: operations of the trial power-on */
    uint64_t ref_confirm_ops;       /* reference run: operations before the confirm */

    uint64_t bricked;               /* runs: no bootable image, or update not completed */
    uint64_t unsigned_boots;        /* power-ons that booted something they must not */
    uint64_t incomplete;            /* of bricked: runs that never reached v2 confirmed */
    uint64_t agent_errors;          /* install/confirm failures other than a cut */
    uint64_t rule_violations;       /* flash rules broken by the code under test */
    uint64_t runs;
    uint64_t cuts_hit;
    uint64_t power_ons;
    unsigned problems_shown;
    unsigned checks_passed, checks_failed;
};

struct run {
    struct world *w;
    char label[160];
    struct cut cuts[MAX_CUTS];
    size_t n_cuts, next_cut, cuts_hit;
    uint64_t flash_seed;
    uint32_t floor;                 /* highest security counter the device reached */
    unsigned power_ons;
    unsigned bad_boots;
    unsigned agent_errors;
    int bricked;
    int incomplete;                 /* never reached v2 confirmed (counted as bricked) */
    int rule_broken;                /* the code under test broke a flash rule */
    int done;
    char log[512];                  /* what each power-on booted */
    size_t log_len;
    char problem[320];              /* the first thing that went wrong */
    unsigned reasons_seen;          /* bit per enum fota_boot_reason */
    int timed;                      /* first_boot_ops, first_confirm_ops set */
    uint64_t first_boot_ops;        /* operations before the first power-on */
    uint64_t first_confirm_ops;     /* operations before the first confirm */
    /* the reference run's power-ons, to check the scenario itself */
    enum ident boot_ident[4];
    enum fota_boot_reason boot_reason[4];
    unsigned n_boots_seen;
};

/* ---- output -------------------------------------------------------------- */

#define sim_error(...) fota_posix_msg("fota-sim: " CMD, __VA_ARGS__)

static void run_problem(struct run *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Keep the first problem of a run; later ones are usually its consequences. */
static void run_problem(struct run *r, const char *fmt, ...)
{
    va_list ap;

    if (r->problem[0] != '\0')
        return;
    va_start(ap, fmt);
    vsnprintf(r->problem, sizeof r->problem, fmt, ap);
    va_end(ap);
}

static void run_log(struct run *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void run_log(struct run *r, const char *fmt, ...)
{
    va_list ap;
    int n;

    if (r->log_len + 1 >= sizeof r->log)
        return;
    va_start(ap, fmt);
    n = vsnprintf(r->log + r->log_len, sizeof r->log - r->log_len, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    r->log_len += (size_t)n;
    if (r->log_len >= sizeof r->log)
        r->log_len = sizeof r->log - 1;
}

static double now_seconds(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void describe_op(const struct world *w, uint64_t index, char *buf, size_t len)
{
    const struct sim_device *sd = w->sd;
    const struct sim_op *op;
    char where[64];

    if (index == 0 || index > sd->n_trace) {
        snprintf(buf, len, "op %" PRIu64, index);
        return;
    }
    op = &sd->trace[index - 1];
    sim_device_where(sd, op->off, where, sizeof where);
    snprintf(buf, len, "op %" PRIu64 ": %s %s, %u bytes", index, op->is_erase ? "erase" : "write",
             where, (unsigned)op->len);
}

/* ---- the judge: what may run ------------------------------------------- */

static enum ident slot_ident(struct world *w, int slot)
{
    const struct fota_flash_area *a = &w->sd->dev.slot[slot];
    const struct sim_image *imgs[2] = {&w->v1, &w->v2};

    for (int i = 0; i < 2; i++) {
        if (imgs[i]->len > a->size)
            continue;
        if (fota_flash_area_read(a, 0, w->readback, imgs[i]->len) != FOTA_OK)
            return IDENT_OTHER;
        if (memcmp(w->readback, imgs[i]->data, imgs[i]->len) == 0)
            return i == 0 ? IDENT_V1 : IDENT_V2;
    }
    return IDENT_OTHER;
}

/*
 * May the image in slot run on a device whose security counter has reached
 * floor? Decided without fota_boot: the verifier run again with the device
 * key, hardware id and floor, its digest compared with the two genuine
 * images', and the bytes compared with theirs (id, from slot_ident: so a
 * verifier bug alone cannot pass a wrong image). 1 and the digest when it
 * may; else 0 and why.
 */
static int judge_slot(struct world *w, int slot, enum ident id, uint32_t floor,
                      uint8_t ret_digest[32], char *why, size_t why_len)
{
    const struct fota_flash_area *a = &w->sd->dev.slot[slot];
    struct fota_image_policy pol;
    struct fota_image_info info;
    fota_err err;

    memset(&pol, 0, sizeof pol);
    pol.keys = &w->sd->key;
    pol.n_keys = 1;
    pol.threshold = 1;
    pol.hardware_id = HARDWARE_ID;
    pol.min_security_counter = floor;
    pol.max_len = a->size;
    pol.exact_len = 0;
    err = fota_image_verify(sim_area_read, (void *)a, &pol, w->vscratch, sizeof w->vscratch, &info);
    if (err != FOTA_OK) {
        snprintf(why, why_len, "slot %c does not verify against security counter %u: %s",
                 'A' + slot, (unsigned)floor, fota_strerror(err));
        return 0;
    }
    if (id == IDENT_OTHER) {
        snprintf(why, why_len, "slot %c verifies but is not one of the two genuine images",
                 'A' + slot);
        return 0;
    }
    if (memcmp(info.digest, id == IDENT_V1 ? w->v1.digest : w->v2.digest, 32) != 0) {
        snprintf(why, why_len, "slot %c: verifier digest differs from the genuine image's",
                 'A' + slot);
        return 0;
    }
    memcpy(ret_digest, info.digest, 32);
    return 1;
}

/* ---- the agent ----------------------------------------------------------- */

static void arm_next_cut(struct run *r)
{
    struct sim_device *sd = r->w->sd;
    uint64_t done = sim_device_ops(sd);

    while (r->next_cut < r->n_cuts && r->cuts[r->next_cut].at <= done)
        r->next_cut++;
    if (r->next_cut < r->n_cuts) {
        fota_flash_sim_cut_after(sd->flash, r->cuts[r->next_cut].at - done,
                                 r->cuts[r->next_cut].mode);
        r->next_cut++;
    }
}

/* Power came back: RAM is gone, flash is what it is. */
static void power_restored(struct run *r)
{
    fota_flash_sim_power_on(r->w->sd->flash);
    r->cuts_hit++;
    arm_next_cut(r);
}

/* Pad len up to the write unit with the erased value (the bug modes write
 * the flash themselves). */
static fota_err write_padded(struct sim_device *sd, const struct fota_flash_area *a, uint32_t off,
                             const uint8_t *data, uint32_t len)
{
    uint8_t buf[1024 + FOTA_FLASH_MAX_ALIGN];
    uint32_t align = sd->port.write_align;
    uint32_t n, padded;
    fota_err err;

    while (len > 0) {
        n = len < 1024u ? len : 1024u;
        padded = (n + align - 1) / align * align;
        memcpy(buf, data, n);
        memset(buf + n, sd->port.erased_value, padded - n);
        err = fota_flash_area_write(a, off, buf, padded);
        if (err != FOTA_OK)
            return err;
        off += n;
        data += n;
        len -= n;
    }
    return FOTA_OK;
}

/* BUG_OVERWRITE_ACTIVE: a single-slot update in place, the classic way to
 * brick a device. The running image is erased sector by sector and v2
 * written over it; then the state records v2 as confirmed. */
static fota_err install_over_active(struct run *r)
{
    struct sim_device *sd = r->w->sd;
    const struct sim_image *img = &r->w->v2;
    struct fota_boot_state st;
    const struct fota_flash_area *a;
    uint32_t sector = sd->port.sector_size;
    fota_err err;

    err = fota_boot_state_load(&sd->dev, &st);
    if (err != FOTA_OK)
        return err;
    a = &sd->dev.slot[st.active ? 1 : 0];
    for (uint32_t off = 0; off < img->len; off += sector) {
        uint32_t n = img->len - off < sector ? img->len - off : sector;
        err = fota_flash_area_erase(a, off, sector);
        if (err != FOTA_OK)
            return err;
        err = write_padded(sd, a, off, img->data + off, n);
        if (err != FOTA_OK)
            return err;
    }
    st.pending = 0;
    st.trial = 0;
    st.security_counter = img->security_counter;
    return fota_boot_state_store(&sd->dev, &st);
}

/* BUG_STATE_IN_PLACE: after confirming, the agent "tidies" the boot state
 * by erasing both copies and writing one: a cut in between leaves no valid
 * copy, and the device falls back to the factory state. */
static fota_err state_rewrite_in_place(struct run *r)
{
    struct sim_device *sd = r->w->sd;
    struct fota_boot_state st;
    uint8_t rec[FOTA_BOOT_STATE_LEN + FOTA_FLASH_MAX_ALIGN];
    uint32_t align = sd->port.write_align;
    uint32_t len = (FOTA_BOOT_STATE_LEN + align - 1) / align * align;
    fota_err err;

    err = fota_boot_state_load(&sd->dev, &st);
    if (err != FOTA_OK)
        return err;
    st.seq++;
    memset(rec, sd->port.erased_value, sizeof rec);
    fota_boot_state_encode(&st, rec);
    err = fota_flash_area_erase(&sd->dev.state[0], 0, sd->dev.state[0].size);
    if (err != FOTA_OK)
        return err;
    err = fota_flash_area_erase(&sd->dev.state[1], 0, sd->dev.state[1].size);
    if (err != FOTA_OK)
        return err;
    return fota_flash_area_write(&sd->dev.state[0], 0, rec, len);
}

/* The agent's install: begin, the image in CHUNK pieces, finish. The
 * install is left as the failing call left it; the caller decides whether
 * to give it up. */
static fota_err install_feed(struct fota_install *in, const struct fota_device *dev,
                             const struct sim_image *img, struct fota_image_info *ret_info)
{
    fota_err err;

    memset(in, 0, sizeof *in);
    err = fota_install_begin(in, dev, img->len, img->file_sha256);
    for (uint32_t off = 0; err == FOTA_OK && off < img->len; off += CHUNK) {
        uint32_t n = img->len - off < CHUNK ? img->len - off : CHUNK;

        err = fota_install_write(in, img->data + off, n);
    }
    if (err == FOTA_OK)
        err = fota_install_finish(in, ret_info);
    return err;
}

static fota_err act_install(struct run *r)
{
    struct sim_device *sd = r->w->sd;
    const struct sim_image *img = &r->w->v2;
    struct fota_install in;
    struct fota_image_info info;
    fota_err err;

    if (r->w->o.bug == BUG_OVERWRITE_ACTIVE)
        return install_over_active(r);

    err = install_feed(&in, &sd->dev, img, &info);
    if (err == FOTA_OK && memcmp(info.digest, img->digest, 32) != 0)
        run_problem(r, "install finished with another image's digest");
    /* After a cut the agent's RAM is gone: nothing to give up. Any other
     * failure is given up as an agent would. */
    if (err != FOTA_OK && err != FOTA_E_POWER)
        fota_install_abort(&in);
    return err;
}

static fota_err act_confirm(struct run *r)
{
    fota_err err;

    if (!(r->timed & 2)) {
        r->timed |= 2;
        r->first_confirm_ops = sim_device_ops(r->w->sd);
    }
    err = fota_boot_confirm(&r->w->sd->dev);

    if (err != FOTA_OK)
        return err;
    /* v2 is confirmed: from here on nothing below its counter may run. */
    if (r->floor < r->w->v2.security_counter)
        r->floor = r->w->v2.security_counter;
    if (r->w->o.bug == BUG_STATE_IN_PLACE)
        err = state_rewrite_in_place(r);
    return err;
}

static const char *ident_name(enum ident id)
{
    switch (id) {
    case IDENT_V1:
        return "v1";
    case IDENT_V2:
        return "v2";
    default:
        return "unknown";
    }
}

/*
 * Power on: fota_boot (again, if a cut falls inside it), then check the
 * invariants on what it chose and decide what the agent does next.
 */
static enum action power_on(struct run *r)
{
    struct world *w = r->w;
    struct sim_device *sd = w->sd;
    struct fota_boot_decision d;
    struct fota_boot_state st;
    enum ident id = IDENT_OTHER;
    uint8_t digest[32];
    char why[256];
    int bad = 0;
    fota_err err;

    if (!(r->timed & 1)) {
        r->timed |= 1;
        r->first_boot_ops = sim_device_ops(sd);
    }
    for (;;) {
        if (r->power_ons >= MAX_POWER_ONS)
            return ACT_STOP;
        r->power_ons++;
        memset(&d, 0, sizeof d);
        err = fota_boot(&sd->dev, &d);
        if (err == FOTA_E_POWER || fota_flash_sim_is_cut(sd->flash)) {
            run_log(r, " [cut in boot]");
            power_restored(r);
            continue;
        }
        break;
    }
    if (err != FOTA_OK) {
        r->bricked = 1;
        run_log(r, " BRICKED(%s)", fota_strerror(err));
        run_problem(r, "power-on %u: fota_boot: %s: no image would boot", r->power_ons,
                    fota_strerror(err));
        return ACT_STOP;
    }
    if (d.slot != 0 && d.slot != 1) {
        r->bad_boots++;
        run_problem(r, "power-on %u: fota_boot chose slot %d", r->power_ons, d.slot);
        return ACT_STOP;
    }

    err = fota_boot_state_load(&sd->dev, &st);
    if (err != FOTA_OK) {
        run_problem(r, "power-on %u: boot state unreadable: %s", r->power_ons, fota_strerror(err));
        return ACT_NONE;
    }
    if (st.security_counter < r->floor) {
        /* The device forgot how far it had come: a rollback would now pass. */
        bad = 1;
        run_problem(r, "power-on %u: stored security counter fell from %u to %u", r->power_ons,
                    (unsigned)r->floor, (unsigned)st.security_counter);
    }
    /* The image must not be below the stored counter either. */
    if (st.security_counter > r->floor)
        r->floor = st.security_counter;
    id = slot_ident(w, d.slot);
    if (!judge_slot(w, d.slot, id, r->floor, digest, why, sizeof why)) {
        bad = 1;
        run_problem(r, "power-on %u: booted slot %c (%s): %s", r->power_ons, 'A' + d.slot,
                    fota_boot_reason_name(d.reason), why);
        run_log(r, " %c:%s/%s!", 'A' + d.slot, ident_name(id), fota_boot_reason_name(d.reason));
    } else {
        if (memcmp(digest, d.image.digest, 32) != 0) {
            bad = 1;
            run_problem(r, "power-on %u: fota_boot reported another image than slot %c holds",
                        r->power_ons, 'A' + d.slot);
        }
        run_log(r, " %c:%s/%s", 'A' + d.slot, ident_name(id), fota_boot_reason_name(d.reason));
    }
    /* One power-on is one boot, however many rules it broke. */
    if (bad)
        r->bad_boots++;
    if ((unsigned)d.reason < 32)
        r->reasons_seen |= 1u << (unsigned)d.reason;
    if (r->n_boots_seen < 4) {
        r->boot_ident[r->n_boots_seen] = id;
        r->boot_reason[r->n_boots_seen] = d.reason;
    }
    r->n_boots_seen++;

    /* The agent after a reboot. */
    if (id == IDENT_V2) {
        if (d.reason == FOTA_BOOT_TRIAL)
            return ACT_CONFIRM;
        if (!st.pending && st.active == d.slot && st.security_counter >= w->v2.security_counter) {
            r->done = 1;
            return ACT_STOP;
        }
        /* v2 runs outside a trial yet is not the confirmed image with its
         * counter: no agent action can change that. */
        run_problem(r, "power-on %u: v2 runs (%s) but the state is active %c, pending %u, "
                    "security counter %u", r->power_ons, fota_boot_reason_name(d.reason),
                    'A' + st.active, (unsigned)st.pending, (unsigned)st.security_counter);
        return ACT_STOP;
    }
    if (id == IDENT_V1 && !st.pending)
        return ACT_INSTALL;
    return ACT_NONE;
}

static void run_scenario(struct world *w, struct run *r)
{
    struct sim_device *sd = w->sd;
    uint64_t violations = sd->rule_violations;
    enum action next = ACT_INSTALL;
    fota_err err;

    r->w = w;
    if (sim_device_load(sd) != FOTA_OK) {
        run_problem(r, "cannot restore the initial flash");
        r->bricked = 1;
        return;
    }
    fota_flash_sim_seed(sd->flash, r->flash_seed);
    r->floor = w->v1.security_counter;
    arm_next_cut(r);

    while (next != ACT_STOP) {
        if (next == ACT_INSTALL || next == ACT_CONFIRM) {
            err = next == ACT_INSTALL ? act_install(r) : act_confirm(r);
            if (err == FOTA_E_POWER || fota_flash_sim_is_cut(sd->flash)) {
                run_log(r, " [cut in %s]", next == ACT_INSTALL ? "install" : "confirm");
                power_restored(r);
            } else if (err != FOTA_OK) {
                /* The agent logs it and reboots; a lasting failure shows up
                 * as an update that never completes. */
                r->agent_errors++;
                run_log(r, " [%s: %s]", next == ACT_INSTALL ? "install" : "confirm",
                        fota_strerror(err));
            }
        }
        next = power_on(r);
    }
    fota_flash_sim_cut_after(sd->flash, 0, FOTA_FLASH_CUT_CLEAN);

    if (!r->bricked && !r->done) {
        r->bricked = 1;
        r->incomplete = 1;
        run_problem(r, "the update did not complete within %u power-ons", MAX_POWER_ONS);
    }
    if (r->done) {
        struct fota_boot_state st;
        if (fota_boot_state_load(&sd->dev, &st) != FOTA_OK || st.pending ||
            st.security_counter != w->v2.security_counter ||
            slot_ident(w, st.active ? 1 : 0) != IDENT_V2) {
            r->bricked = 1;
            r->done = 0;
            run_problem(r, "final state is not v2 confirmed");
        }
    }
    if (sd->rule_violations != violations) {
        char where[64];
        r->rule_broken = 1;
        sim_device_where(sd, sd->last_violation.off, where, sizeof where);
        run_problem(r, "flash rule broken: %s %s, %u bytes (not erased or misaligned)",
                    sd->last_violation.is_erase ? "erase" : "write", where,
                    (unsigned)sd->last_violation.len);
    }
}

static void account(struct world *w, struct run *r)
{
    w->runs++;
    w->cuts_hit += r->cuts_hit;
    w->power_ons += r->power_ons;
    w->unsigned_boots += r->bad_boots;
    w->agent_errors += r->agent_errors;
    if (r->bricked)
        w->bricked++;
    if (r->incomplete)
        w->incomplete++;
    if (r->rule_broken)
        w->rule_violations++;
    if (w->o.verbose) {
        fprintf(stderr, "%s: cuts %zu/%zu, power-ons %u:%s%s%s\n", r->label, r->cuts_hit,
                r->n_cuts, r->power_ons, r->log, r->problem[0] ? " -- FAIL: " : " -- ok",
                r->problem);
    } else if (r->problem[0] != '\0' && w->problems_shown < MAX_PROBLEMS_SHOWN) {
        if (w->progress)
            fputc('\n', stderr);
        fprintf(stderr, "fota-sim: %s: %s: %s\n  boots:%s\n", CMD, r->label, r->problem, r->log);
        w->problems_shown++;
    }
}

static void progress(struct world *w, const char *pass, uint64_t i, uint64_t n)
{
    if (!w->progress)
        return;
    if (i == n || i % 16 == 0)
        fprintf(stderr, "\r%s %" PRIu64 "/%" PRIu64 "   ", pass, i, n);
    if (i == n)
        fputc('\n', stderr);
}

/* ---- checks outside the proof: refusals ----------------------------------- */

static void check_result(struct world *w, int ok, const char *what)
{
    if (ok)
        w->checks_passed++;
    else
        w->checks_failed++;
    if (w->o.verbose || !ok)
        fprintf(stderr, "%scheck: %s: %s\n", ok ? "" : "fota-sim: " CMD ": ", what,
                ok ? "ok" : "FAILED");
}

/* The reference update, without faults: v2 confirmed in B, v1 still in A. */
static int reach_updated(struct world *w)
{
    struct run r;

    memset(&r, 0, sizeof r);
    snprintf(r.label, sizeof r.label, "setup");
    run_scenario(w, &r);
    return r.done && r.problem[0] == '\0';
}

/* Put img in slot (ignoring flash rules) and mark it pending. */
static fota_err force_pending(struct world *w, int slot, const uint8_t *data, uint32_t len)
{
    struct fota_boot_state st;
    fota_err err;

    err = sim_device_plant(w->sd, slot, data, len);
    if (err != FOTA_OK)
        return err;
    err = fota_boot_state_load(&w->sd->dev, &st);
    if (err != FOTA_OK)
        return err;
    st.pending = 1;
    st.trial = 0;
    st.attempts_left = FOTA_BOOT_ATTEMPTS_DEFAULT;
    return fota_boot_state_store(&w->sd->dev, &st);
}

/* Install through the agent's API; FOTA_OK only if finish accepted it. */
static fota_err install_image(struct world *w, const struct sim_image *img)
{
    struct fota_install in;
    fota_err err;

    err = install_feed(&in, &w->sd->dev, img, NULL);
    if (err != FOTA_OK)
        fota_install_abort(&in);
    return err;
}

/* After power-on, is v2 in slot B running and slot A's image judged bad? */
static int boots_v2_and_judges_a_bad(struct world *w)
{
    struct fota_boot_decision d;
    uint8_t digest[32];
    char why[256];

    if (fota_boot(&w->sd->dev, &d) != FOTA_OK || d.slot != 1 || slot_ident(w, 1) != IDENT_V2)
        return 0;
    return !judge_slot(w, 0, slot_ident(w, 0), w->v2.security_counter, digest, why, sizeof why);
}

static int pending_is_clear(struct world *w)
{
    struct fota_boot_state st;

    return fota_boot_state_load(&w->sd->dev, &st) == FOTA_OK && !st.pending;
}

static fota_err build_v3(struct world *w, const struct sim_signer *signer, const char *hw,
                         struct sim_image *ret)
{
    struct sim_image_spec spec;

    memset(&spec, 0, sizeof spec);
    spec.major = 3;
    spec.security_counter = 3;
    spec.hardware_id = hw;
    spec.payload_len = w->o.payload_len;
    spec.fill_seed = 3;
    return sim_image_build(&spec, signer, ret);
}

static int trial_exhaustion(struct world *w)
{
    struct run r;
    uint64_t at = w->ref_confirm_ops + 1;

    memset(&r, 0, sizeof r);
    snprintf(r.label, sizeof r.label, "resets during trial");
    for (unsigned i = 0; i < FOTA_BOOT_ATTEMPTS_DEFAULT && i < MAX_CUTS; i++) {
        r.cuts[i].at = at;
        r.cuts[i].mode = FOTA_FLASH_CUT_CLEAN;
        at += w->ref_boot_ops + 1;
    }
    r.n_cuts = FOTA_BOOT_ATTEMPTS_DEFAULT;
    r.flash_seed = w->o.seed;
    run_scenario(w, &r);
    if (w->o.verbose)
        fprintf(stderr, "%s: cuts %zu/%zu, power-ons %u:%s%s%s\n", r.label, r.cuts_hit, r.n_cuts,
                r.power_ons, r.log, r.problem[0] ? " -- FAIL: " : " -- ok", r.problem);
    return r.done && r.problem[0] == '\0' && r.bad_boots == 0 && r.cuts_hit == r.n_cuts &&
           (r.reasons_seen & (1u << FOTA_BOOT_REVERTED_ATTEMPTS)) != 0;
}

static int run_checks(struct world *w)
{
    struct sim_image v3 = {0}, v3_foreign = {0}, v3_hw = {0};
    struct fota_boot_decision d;
    fota_err err;
    int ok;

    err = build_v3(w, &w->key, HARDWARE_ID, &v3);
    if (err == FOTA_OK)
        err = build_v3(w, &w->other, HARDWARE_ID, &v3_foreign);
    if (err == FOTA_OK)
        err = build_v3(w, &w->key, "other-board", &v3_hw);
    if (err != FOTA_OK) {
        sim_error("cannot build check images: %s", fota_strerror(err));
        w->checks_failed++;
        goto out;
    }

    /* Lower counter: after the update, v1 (counter 1) is genuine but may
     * no longer run, whichever way it is offered. */
    ok = reach_updated(w) && fota_boot_rollback(&w->sd->dev) == FOTA_E_ROLLBACK;
    check_result(w, ok, "operator rollback to v1 after v2 is confirmed is refused");
    ok = reach_updated(w) && install_image(w, &w->v1) != FOTA_OK && pending_is_clear(w);
    check_result(w, ok, "install of v1 (lower counter) is refused");
    ok = reach_updated(w) && force_pending(w, 0, w->v1.data, w->v1.len) == FOTA_OK &&
         boots_v2_and_judges_a_bad(w);
    check_result(w, ok, "v1 marked pending (lower counter) never boots");

    /* Positive control: the same forced path boots a good v3, so the
     * refusals below are the image's doing. */
    ok = reach_updated(w) && force_pending(w, 0, v3.data, v3.len) == FOTA_OK &&
         fota_boot(&w->sd->dev, &d) == FOTA_OK && d.slot == 0 && d.reason == FOTA_BOOT_TRIAL;
    check_result(w, ok, "control: a good v3 marked pending boots on trial");

    ok = reach_updated(w) && install_image(w, &v3_foreign) != FOTA_OK && pending_is_clear(w);
    check_result(w, ok, "install of an image signed by another key is refused");
    ok = reach_updated(w) && force_pending(w, 0, v3_foreign.data, v3_foreign.len) == FOTA_OK &&
         boots_v2_and_judges_a_bad(w);
    check_result(w, ok, "an image signed by another key marked pending never boots");

    ok = reach_updated(w) && force_pending(w, 0, v3_hw.data, v3_hw.len) == FOTA_OK &&
         boots_v2_and_judges_a_bad(w);
    check_result(w, ok, "an image for other hardware marked pending never boots");

    /* A reset during every trial boot (a cut at the confirm's first
     * operation, each time): the attempts run out, the device reverts to v1,
     * and the agent's retried update then completes. */
    ok = trial_exhaustion(w);
    check_result(w, ok, "reset at every trial boot: reverts to v1, the retried update completes");

    /* One payload bit flipped after signing. */
    v3.data[FOTA_IMAGE_HEADER_LEN + w->o.payload_len / 2] ^= 0x01;
    ok = reach_updated(w) && force_pending(w, 0, v3.data, v3.len) == FOTA_OK &&
         boots_v2_and_judges_a_bad(w);
    check_result(w, ok, "a corrupted image marked pending never boots");
out:
    sim_image_free(&v3);
    sim_image_free(&v3_foreign);
    sim_image_free(&v3_hw);
    return w->checks_failed == 0;
}

/* ---- the proof ------------------------------------------------------------ */

static int reference_run(struct world *w, uint64_t *ret_ops, uint64_t *ret_writes)
{
    struct sim_device *sd = w->sd;
    struct run r;
    uint64_t writes = 0;
    int ok;

    memset(&r, 0, sizeof r);
    snprintf(r.label, sizeof r.label, "reference run");
    sd->n_trace = 0;
    sd->trace_overflow = 0;
    sd->trace_on = 1;
    run_scenario(w, &r);
    sd->trace_on = 0;

    ok = r.done && r.problem[0] == '\0' && r.cuts_hit == 0 && !sd->trace_overflow &&
         sd->n_trace == sim_device_ops(sd);
    /* The scenario as specified: v2 on trial, confirm, v2 confirmed. The
     * bug modes change the scenario on purpose. */
    if (ok && w->o.bug == BUG_NONE) {
        ok = r.n_boots_seen == 2 && r.boot_ident[0] == IDENT_V2 &&
             r.boot_reason[0] == FOTA_BOOT_TRIAL && r.boot_ident[1] == IDENT_V2 &&
             r.boot_reason[1] == FOTA_BOOT_CONFIRMED;
        if (!ok)
            run_problem(&r, "not the expected power-ons (v2 on trial, then v2 confirmed)");
    }
    if (!ok) {
        sim_error("the reference run (no faults) failed: %s; boots:%s",
                  r.problem[0] ? r.problem : "operation trace incomplete", r.log);
        return 0;
    }
    for (size_t i = 0; i < sd->n_trace; i++)
        writes += sd->trace[i].is_erase ? 0 : 1;
    if (w->o.verbose) {
        fprintf(stderr, "reference run: %zu operations (%" PRIu64 " writes, %" PRIu64
                " erases), power-ons:%s\n", sd->n_trace, writes, sd->n_trace - writes, r.log);
        for (size_t i = 0; i < sd->n_trace; i++) {
            char op[128];
            describe_op(w, i + 1, op, sizeof op);
            fprintf(stderr, "  %s\n", op);
        }
    }
    if (r.timed == 3) {
        w->ref_confirm_ops = r.first_confirm_ops;
        w->ref_boot_ops = r.first_confirm_ops - r.first_boot_ops;
    }
    *ret_ops = sd->n_trace;
    *ret_writes = writes;
    return 1;
}

static void single_cut_run(struct world *w, uint64_t at, enum fota_flash_cut_mode mode,
                           const char *pass)
{
    struct run r;
    char op[128];

    memset(&r, 0, sizeof r);
    describe_op(w, at, op, sizeof op);
    snprintf(r.label, sizeof r.label, "%s at %s", pass, op);
    r.cuts[0].at = at;
    r.cuts[0].mode = mode;
    r.n_cuts = 1;
    r.flash_seed = w->o.seed * 1000003u + at * 2u + (uint64_t)mode;
    run_scenario(w, &r);
    if (r.cuts_hit != 1)
        run_problem(&r, "the cut did not happen: the scenario is not deterministic");
    if (r.cuts_hit != 1 && !r.bricked)
        r.bricked = 1;
    account(w, &r);
}

/*
 * Random runs: the first cut falls anywhere in the update; each later one
 * a gap after it, half the time a short gap (the power-on, trial-boot and
 * confirm writes that follow a reboot) and otherwise anywhere within an
 * update's length. Short gaps are what reach the recovery paths: a reset
 * during each trial boot until the attempts run out, a cut in the store
 * that records a revert.
 */
#define SHORT_GAP 6u

static void random_run(struct world *w, struct sim_rng *rng, uint64_t index, uint64_t n_ops)
{
    struct run r;
    uint64_t at = 0;
    size_t k;
    int len;

    memset(&r, 0, sizeof r);
    k = 1u + (size_t)sim_rng_below(rng, w->o.max_cuts);
    len = snprintf(r.label, sizeof r.label, "random run %" PRIu64 " (cuts at", index);
    for (size_t i = 0; i < k; i++) {
        if (i > 0 && sim_rng_below(rng, 2) == 0)
            at += 1u + sim_rng_below(rng, SHORT_GAP);
        else
            at += 1u + sim_rng_below(rng, n_ops);
        r.cuts[i].at = at;
        r.cuts[i].mode = sim_rng_below(rng, 2) ? FOTA_FLASH_CUT_TORN : FOTA_FLASH_CUT_CLEAN;
        if (len > 0 && (size_t)len < sizeof r.label)
            len += snprintf(r.label + len, sizeof r.label - (size_t)len, " %" PRIu64 "%s", at,
                            r.cuts[i].mode == FOTA_FLASH_CUT_TORN ? "t" : "");
    }
    if (len > 0 && (size_t)len < sizeof r.label)
        snprintf(r.label + len, sizeof r.label - (size_t)len, ")");
    r.n_cuts = k;
    r.flash_seed = sim_rng_next(rng);
    run_scenario(w, &r);
    account(w, &r);
}

/* ---- setup ---------------------------------------------------------------- */

static fota_err build_images(struct world *w)
{
    struct sim_image_spec spec;
    fota_err err;

    memset(&spec, 0, sizeof spec);
    spec.hardware_id = HARDWARE_ID;
    spec.payload_len = w->o.payload_len;
    spec.major = 1;
    spec.security_counter = 1;
    spec.fill_seed = 1;
    err = sim_image_build(&spec, &w->key, &w->v1);
    if (err != FOTA_OK)
        return err;
    spec.major = 2;
    spec.security_counter = 2;
    spec.fill_seed = 2;
    return sim_image_build(&spec, &w->key, &w->v2);
}

/* The factory: v1 in slot A, confirmed with counter 1. Written without
 * fault injection, straight through the area functions. */
static fota_err factory_setup(struct world *w)
{
    struct sim_device *sd = w->sd;
    struct fota_boot_state st;
    struct fota_boot_decision d;
    fota_err err;

    err = fota_flash_area_erase(&sd->dev.slot[0], 0, sd->dev.slot[0].size);
    if (err == FOTA_OK)
        err = write_padded(sd, &sd->dev.slot[0], 0, w->v1.data, w->v1.len);
    if (err != FOTA_OK)
        return err;
    memset(&st, 0, sizeof st);
    st.active = 0;
    st.pending = 0;
    st.security_counter = w->v1.security_counter;
    err = fota_boot_state_store(&sd->dev, &st);
    if (err != FOTA_OK)
        return err;
    err = fota_boot(&sd->dev, &d);
    if (err != FOTA_OK)
        return err;
    if (d.slot != 0 || d.reason != FOTA_BOOT_CONFIRMED || slot_ident(w, 0) != IDENT_V1)
        return FOTA_E_STATE;
    return sim_device_save(sd);
}

/* ---- options -------------------------------------------------------------- */

static const char usage_text[] =
    "Usage: fota-sim powercut [OPTIONS]\n"
    "\n"
    "Replay an update (install v2, trial boot, confirm) on a simulated device,\n"
    "cutting power at every flash write and erase, tearing every write, and in\n"
    "random runs with several cuts; check after every power-on that the device\n"
    "boots a genuine image that verifies. See docs/powercut.md.\n"
    "\n"
    "Options:\n"
    "  --image-size N    payload bytes of each image (default 65536)\n"
    "  --sector-size N   flash erase unit, a power of two (default 4096)\n"
    "  --write-align N   flash write unit, a power of two <= 64 (default 8)\n"
    "  --random-runs R   runs with random multiple cuts (default 200)\n"
    "  --max-cuts K      most cuts in one random run (default 3)\n"
    "  --seed S          seed of the random runs and torn bytes (default 1)\n"
    "  --verbose         one line per run, and the reference run's operations\n"
    "  --json            a JSON summary before the last line\n"
    "\n"
    "Last line: cut points: N, torn writes: T, random runs: R, bricked: B,\n"
    "unsigned boots: U. Exit status 0 when B and U are 0 and every check\n"
    "passed, 1 otherwise, 2 for a usage error.\n";

#define parse_u64(name, s, min, max, ret) sim_parse_u64(CMD, name, s, min, max, ret)

static int is_pow2(uint64_t v)
{
    return v != 0 && (v & (v - 1)) == 0;
}

static int parse_opts(int argc, char **argv, struct opts *o)
{
    static const struct {
        const char *name;
        uint64_t min, max;
    } num[] = {
        {"--image-size", 1, SIM_IMAGE_PAYLOAD_MAX},
        {"--sector-size", 256, 1u << 20},
        {"--write-align", 1, FOTA_FLASH_MAX_ALIGN},
        {"--random-runs", 0, 1000000},
        {"--max-cuts", 1, MAX_CUTS},
        {"--seed", 0, UINT64_MAX},
    };
    uint64_t v;

    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        const char *value = NULL;
        size_t name_len = strlen(arg);
        const char *eq = strchr(arg, '=');
        size_t k;

        if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
            fputs(usage_text, stdout);
            return -1;
        }
        if (strcmp(arg, "--verbose") == 0 || strcmp(arg, "-v") == 0) {
            o->verbose = 1;
            continue;
        }
        if (strcmp(arg, "--json") == 0) {
            o->json = 1;
            continue;
        }
        if (eq != NULL) {
            name_len = (size_t)(eq - arg);
            value = eq + 1;
        }
        /* Hidden: the proof's self-check (docs/powercut.md). */
        if (name_len == strlen("--inject-bug") && strncmp(arg, "--inject-bug", name_len) == 0) {
            if (value == NULL && i + 1 < argc)
                value = argv[++i];
            if (value != NULL && strcmp(value, "overwrite-active") == 0) {
                o->bug = BUG_OVERWRITE_ACTIVE;
            } else if (value != NULL && strcmp(value, "state-in-place") == 0) {
                o->bug = BUG_STATE_IN_PLACE;
            } else {
                sim_error("--inject-bug: expected overwrite-active or state-in-place");
                return 0;
            }
            continue;
        }
        for (k = 0; k < sizeof num / sizeof num[0]; k++) {
            if (strlen(num[k].name) == name_len && strncmp(arg, num[k].name, name_len) == 0)
                break;
        }
        if (k == sizeof num / sizeof num[0]) {
            sim_error("unknown option '%s' (try 'fota-sim powercut --help')", arg);
            return 0;
        }
        if (value == NULL) {
            if (i + 1 >= argc) {
                sim_error("%s: missing value", num[k].name);
                return 0;
            }
            value = argv[++i];
        }
        if (!parse_u64(num[k].name, value, num[k].min, num[k].max, &v))
            return 0;
        switch (k) {
        case 0: o->payload_len = (uint32_t)v; break;
        case 1: o->sector_size = (uint32_t)v; break;
        case 2: o->write_align = (uint32_t)v; break;
        case 3: o->random_runs = (uint32_t)v; break;
        case 4: o->max_cuts = (uint32_t)v; break;
        default: o->seed = v; break;
        }
    }
    if (!is_pow2(o->sector_size) || !is_pow2(o->write_align) || o->write_align > o->sector_size) {
        sim_error("--sector-size and --write-align must be powers of two, align <= sector");
        return 0;
    }
    return 1;
}

static void print_json(const struct world *w, uint64_t n_ops, uint64_t writes, uint64_t cut_points,
                       uint64_t torn, double seconds)
{
    printf("{\"cut_points\":%" PRIu64 ",\"torn_writes\":%" PRIu64 ",\"random_runs\":%u,"
           "\"bricked\":%" PRIu64 ",\"unsigned_boots\":%" PRIu64 ",\"incomplete_updates\":%" PRIu64
           ",\"flash_rule_violations\":%" PRIu64 ",\"agent_errors\":%" PRIu64
           ",\"runs\":%" PRIu64 ",\"cuts\":%" PRIu64 ",\"power_ons\":%" PRIu64
           ",\"update_ops\":{\"writes\":%" PRIu64 ",\"erases\":%" PRIu64 "}"
           ",\"image_len\":%u,\"sector_size\":%u,\"write_align\":%u,\"max_cuts\":%u"
           ",\"seed\":%" PRIu64 ",\"checks\":{\"passed\":%u,\"failed\":%u},\"seconds\":%.3f}\n",
           cut_points, torn, w->o.random_runs, w->bricked, w->unsigned_boots, w->incomplete,
           w->rule_violations, w->agent_errors, w->runs, w->cuts_hit, w->power_ons, writes,
           n_ops - writes, (unsigned)w->v2.len, w->o.sector_size, w->o.write_align,
           w->o.max_cuts, w->o.seed, w->checks_passed, w->checks_failed, seconds);
}

int sim_powercut_main(int argc, char **argv)
{
    struct world *w;
    struct sim_device_config cfg;
    struct sim_rng rng;
    uint64_t n_ops = 0, writes = 0, cut_points = 0, torn = 0;
    double t0 = now_seconds();
    int status = SIM_EXIT_FAIL;
    int rc;
    fota_err err;

    w = calloc(1, sizeof *w);
    if (w == NULL) {
        sim_error("out of memory");
        return SIM_EXIT_FAIL;
    }
    w->o.payload_len = 64u * 1024u;
    w->o.sector_size = 4096;
    w->o.write_align = 8;
    w->o.random_runs = 200;
    w->o.max_cuts = 3;
    w->o.seed = 1;
    rc = parse_opts(argc, argv, &w->o);
    if (rc <= 0) {
        status = rc < 0 ? SIM_EXIT_OK : SIM_EXIT_USAGE;
        goto out;
    }
    w->progress = !w->o.verbose && isatty(STDERR_FILENO);

    err = sim_signer_generate(FOTA_KEY_ED25519, &w->key);
    if (err == FOTA_OK)
        err = sim_signer_generate(FOTA_KEY_ED25519, &w->other);
    if (err == FOTA_OK)
        err = build_images(w);
    if (err != FOTA_OK) {
        sim_error("cannot build the test images: %s", fota_strerror(err));
        goto out;
    }
    memset(&cfg, 0, sizeof cfg);
    cfg.image_len = w->v2.len > w->v1.len ? w->v2.len : w->v1.len;
    cfg.sector_size = w->o.sector_size;
    cfg.write_align = w->o.write_align;
    cfg.hardware_id = HARDWARE_ID;
    err = sim_device_create(&cfg, &w->key, &w->sd);
    if (err != FOTA_OK) {
        sim_error("cannot create the simulated flash: %s", fota_strerror(err));
        goto out;
    }
    w->readback = malloc(w->sd->dev.slot[0].size);
    if (w->readback == NULL) {
        sim_error("out of memory");
        goto out;
    }
    err = factory_setup(w);
    if (err != FOTA_OK) {
        sim_error("factory setup (v1 confirmed in slot A) failed: %s", fota_strerror(err));
        goto out;
    }
    if (!reference_run(w, &n_ops, &writes))
        goto out;

    for (uint64_t i = 1; i <= n_ops; i++) {
        single_cut_run(w, i, FOTA_FLASH_CUT_CLEAN, "cut");
        cut_points++;
        progress(w, "cut points", i, n_ops);
    }
    for (uint64_t i = 1; i <= n_ops; i++) {
        if (w->sd->trace[i - 1].is_erase)
            continue;
        single_cut_run(w, i, FOTA_FLASH_CUT_TORN, "torn write");
        torn++;
        progress(w, "torn writes", torn, writes);
    }
    sim_rng_seed(&rng, w->o.seed);
    for (uint32_t i = 0; i < w->o.random_runs; i++) {
        random_run(w, &rng, i + 1u, n_ops);
        progress(w, "random runs", i + 1u, w->o.random_runs);
    }

    /* Not part of the counts: images that must never boot. They test the
     * device, so they are skipped when the agent is broken on purpose. */
    if (w->o.bug == BUG_NONE)
        run_checks(w);

    if (w->rule_violations > 0)
        sim_error("%" PRIu64 " runs broke a flash rule (a write to unerased flash)",
                  w->rule_violations);
    if (w->incomplete > 0)
        sim_error("%" PRIu64 " runs never completed the update (counted as bricked)",
                  w->incomplete);
    if (w->checks_failed > 0)
        sim_error("%u refusal checks failed", w->checks_failed);
    if (w->o.json)
        print_json(w, n_ops, writes, cut_points, torn, now_seconds() - t0);
    if (w->o.verbose || w->progress)
        fprintf(stderr, "%" PRIu64 " runs, %" PRIu64 " cuts, %" PRIu64 " power-ons, %.2f s\n",
                w->runs, w->cuts_hit, w->power_ons, now_seconds() - t0);
    printf("cut points: %" PRIu64 ", torn writes: %" PRIu64 ", random runs: %u, bricked: %" PRIu64
           ", unsigned boots: %" PRIu64 "\n",
           cut_points, torn, w->o.random_runs, w->bricked, w->unsigned_boots);
    fflush(stdout);
    if (w->bricked == 0 && w->unsigned_boots == 0 && w->rule_violations == 0 &&
        w->checks_failed == 0)
        status = SIM_EXIT_OK;
out:
    sim_device_free(w->sd);
    sim_signer_free(&w->key);
    sim_signer_free(&w->other);
    sim_image_free(&w->v1);
    sim_image_free(&w->v2);
    free(w->readback);
    free(w);
    return status;
}
