/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fota-sim fleet: N simulated devices against a real fota-server
 * (docs/fleet.md).
 *
 * Each device is a flash file (ports/posix flash_file.h) with the A/B layout
 * of fota-boot, a data directory, and its own agent (agent/agent.h): the
 * same agent core and boot logic as a real device. The reboot hook runs
 * fota_boot() over the device's flash in-process, so an update goes through
 * the real trial boot and confirmation.
 *
 * A fixed pool of threads serves a min-heap of devices ordered by their
 * next wake time; a device is in the heap at most once, so one thread at a
 * time runs it, and the thread that runs it owns its flash, agent and
 * per-device fields. Fields the progress display reads (state, version,
 * outcome) and the fleet counters are written under fleet.lock.
 *
 * Faults, chosen per device by a seeded RNG (the same seed picks the same
 * devices): a failing health check for any image but the factory one; one
 * dropped connection per download at a random offset; one power cut at a
 * random offset of a download (the flash operation writing it), after which
 * the device restarts as a real one would (power on, bootloader, a fresh
 * agent process).
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "agent.h"
#include "fota_posix.h"
#include "keyfile.h"
#include "sim.h"

#define CMD "fleet"
#define FLEET_DEVICES_MAX 100000u
#define FLEET_THREADS_MAX 1024u
#define FLEET_KEYS_MAX 16u
#define FLEET_SECTOR 4096u              /* flash erase unit */
#define FLEET_ALIGN 8u                  /* flash write unit */
#define FLEET_SCRATCH 4096u             /* libfota scratch, one per device */
#define FLEET_FACTORY_MAX (64u * 1024u * 1024u)
#define FLEET_ROOT_MAX (1024u * 1024u)
#define FLEET_BACKOFF_MAX_S 30.0
#define FLEET_RESTART_DELAY_S 0.2       /* a restarted agent runs its first cycle at once */
#define FLEET_VERSIONS_MAX 32           /* distinct running versions tracked */
#define FLEET_DETAIL_MAX 10000u         /* per-device list in --json up to this many */
#define FLEET_TICK_S 0.1

enum dev_state {
    DS_NEW = 0,         /* no cycle finished yet */
    DS_PENDING,         /* enrolled, waiting for an operator */
    DS_IDLE,            /* idle on the factory version */
    DS_DOWNLOADING,     /* downloading, or a download waits to be resumed */
    DS_UPDATED,         /* runs another version than the factory one */
    DS_ROLLED_BACK,     /* an update rolled back; back on the factory image */
    DS_REFUSED,         /* the last cycle refused what the server offered */
    DS_ERROR,           /* the last cycle failed (transient) */
    DS_REJECTED,        /* the operator rejected or decommissioned it */
    DS_COUNT
};

static const char *const state_names[DS_COUNT] = {
    "new", "pending", "idle", "downloading", "updated", "rolled_back", "refused", "error",
    "rejected",
};

enum outcome {
    OUT_NONE = 0,
    OUT_CONFIRMED,      /* runs the --until-version image, confirmed, and checked in idle */
    OUT_ROLLED_BACK,    /* rolled back to its factory image and checked in idle */
};

/* Event words of the agent's log hook (agent.h), counted. */
static const char *const event_names[] = {
    "enrol", "session", "tuf", "checkin", "report", "download", "install", "reboot",
    "confirm", "rollback", "refused", "error", "cycle", "other",
};
#define N_EVENTS (sizeof event_names / sizeof event_names[0])

struct version {
    uint16_t major, minor, patch;
    uint32_t build;
    int has_build;
};

struct opts {
    unsigned devices;
    const char *server;
    const char *dir;
    const char *hardware_id;
    const char *keys[FLEET_KEYS_MAX];
    size_t n_keys;
    const char *tuf_root;
    const char *factory_image;
    const char *ca_file;
    unsigned threads;
    double poll_s;
    const char *until_text;
    struct version until;
    int has_until;
    double duration_s;
    double fail_health_pct, drop_pct, cut_pct;
    uint64_t seed;
    uint32_t slot_size;             /* 0: 2 x factory image, in sectors */
    int json, quiet, verbose;
};

struct fleet;

struct device {
    struct fleet *fl;
    unsigned index;
    char name[16];                  /* dev-NNNNN */
    char *dir;                      /* DIR/dev-NNNNN */
    char *data_dir;                 /* DIR/dev-NNNNN/data */
    struct fota_flash_sim *flash;
    struct fota_device dev;
    uint8_t *scratch;
    struct fota_agent *agent;
    struct fota_agent_config cfg;
    struct fota_agent_hooks hooks;
    struct sim_rng rng;             /* jitter, drop offsets */

    /* faults chosen for this device */
    uint8_t bad_health, drops, cut_planned;
    uint8_t cut_chosen, cut_armed, cut_fired;
    uint64_t cut_at;                /* byte offset of the download where power goes */

    /* the download in progress (worker-owned) */
    uint64_t dl_key;                /* hash of the target name, 0: none yet */
    uint64_t dl_total;
    uint64_t drop_at;
    uint8_t drop_chosen, dropped;
    uint8_t transfer_start;         /* the next image bytes start a transfer */
    uint64_t live_bytes;            /* bytes counted from progress in this cycle */
    uint64_t live_done;             /* last progress `done` seen in this cycle */
    unsigned errors_in_row;
    uint8_t rolled_back_ever;       /* this device rolled an update back (marker file) */
    struct version rolled_back;     /* ... of this version */

    /* the last power-on */
    uint8_t bricked;                /* no slot would boot: nothing runs, no agent */
    int boot_slot;
    enum fota_boot_reason boot_reason;
    fota_err boot_err;

    /* read by the progress display: under fleet.lock */
    enum dev_state state;
    enum outcome outcome;
    int version_idx;                /* fleet.versions, -1: unknown */
    double confirmed_at;            /* seconds since start, < 0: not yet */
    char id[FOTA_AGENT_ID_LEN + 1];
    fota_err last_reason;

    /* end of run */
    int verified;
    fota_err verify_err;
    int final_slot;
};

struct heap_entry {
    double wake;
    uint32_t index;
};

struct fleet {
    struct opts o;
    struct device *devs;
    struct fota_image_key keys[FLEET_KEYS_MAX];
    int keys_loaded;
    uint8_t *factory;
    size_t factory_len;
    uint8_t factory_sha256[32];
    struct fota_image_header factory_hdr;
    char factory_version[FOTA_AGENT_VERSION_MAX + 1];
    uint8_t *root_json;
    size_t root_len;
    uint32_t slot_size;
    uint32_t flash_size;
    double t0;                      /* start of the run (after setup), monotonic */
    double t0_unix;                 /* the same instant, seconds since the epoch */
    double setup_s;

    pthread_mutex_t lock;
    pthread_cond_t cond;
    struct heap_entry *heap;
    size_t heap_n;
    int stop;
    unsigned setup_next;            /* setup phase: next device to prepare */
    int setup_failed;

    /* under lock */
    uint64_t bytes;
    uint64_t drops, cuts, health_failures, resumes, cycles, restarts;
    uint64_t events[N_EVENTS];
    char versions[FLEET_VERSIONS_MAX][FOTA_AGENT_VERSION_MAX + 1];
    int n_versions;
    double settled_at;              /* < 0: not settled */
};

static volatile sig_atomic_t interrupted;

/* ---- small helpers --------------------------------------------------------- */

#define fleet_error(...) fota_posix_msg("fota-sim: " CMD, __VA_ARGS__)

static double now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double unix_now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double rng_unit(struct sim_rng *r)
{
    return (double)(sim_rng_next(r) >> 11) / 9007199254740992.0;   /* [0, 1) */
}

static char *path_join(const char *a, const char *b)
{
    size_t n = strlen(a) + strlen(b) + 2;
    char *p = malloc(n);

    if (p != NULL)
        snprintf(p, n, "%s/%s", a, b);
    return p;
}

static int mkdir_private(const char *path)
{
    struct stat st;

    if (mkdir(path, 0700) == 0)
        return 0;
    if (errno == EEXIST && stat(path, &st) == 0 && S_ISDIR(st.st_mode))
        return 0;
    return -1;
}

static int file_exists(const char *path)
{
    struct stat st;

    return stat(path, &st) == 0;
}

static void version_format(const struct fota_image_header *h, char *buf, size_t len)
{
    if (h->build != 0)
        snprintf(buf, len, "%u.%u.%u+%lu", (unsigned)h->major, (unsigned)h->minor,
                 (unsigned)h->patch, (unsigned long)h->build);
    else
        snprintf(buf, len, "%u.%u.%u", (unsigned)h->major, (unsigned)h->minor,
                 (unsigned)h->patch);
}

static int same_image_version(const struct fota_image_header *a, const struct fota_image_header *b)
{
    return a->major == b->major && a->minor == b->minor && a->patch == b->patch &&
           a->build == b->build;
}

/* --until-version V matches an image header: MAJOR.MINOR.PATCH equal, and
 * the build too when V names one. */
static int version_matches(const struct version *v, const struct fota_image_header *h)
{
    return v->major == h->major && v->minor == h->minor && v->patch == h->patch &&
           (!v->has_build || v->build == h->build);
}

static int parse_part(const char **s, unsigned long max, unsigned long *ret)
{
    char *end = NULL;
    unsigned long v;

    if (**s < '0' || **s > '9')
        return 0;
    errno = 0;
    v = strtoul(*s, &end, 10);
    if (errno != 0 || end == *s || v > max)
        return 0;
    *s = end;
    *ret = v;
    return 1;
}

/* MAJOR.MINOR.PATCH[+BUILD], as `fota image sign --version` takes it. */
static int parse_version(const char *text, struct version *ret)
{
    const char *s = text;
    unsigned long maj, min, pat, build = 0;
    int has_build = 0;

    if (!parse_part(&s, 65535, &maj) || *s++ != '.' || !parse_part(&s, 65535, &min) ||
        *s++ != '.' || !parse_part(&s, 65535, &pat))
        return 0;
    if (*s == '+') {
        s++;
        if (!parse_part(&s, UINT32_MAX, &build))
            return 0;
        has_build = 1;
    }
    if (*s != '\0')
        return 0;
    ret->major = (uint16_t)maj;
    ret->minor = (uint16_t)min;
    ret->patch = (uint16_t)pat;
    ret->build = (uint32_t)build;
    ret->has_build = has_build;
    return 1;
}

static uint64_t name_hash(const char *s)
{
    uint64_t h = 0xcbf29ce484222325ull;   /* FNV-1a; 0 is kept for "none" */

    while (*s != '\0') {
        h ^= (uint8_t)*s++;
        h *= 0x100000001b3ull;
    }
    return h == 0 ? 1 : h;
}

/* ---- the device's flash ---------------------------------------------------- */

static fota_err device_layout(struct device *d, uint32_t slot_size)
{
    struct fleet *fl = d->fl;
    fota_err err;

    err = fota_flash_default_layout(fota_flash_sim_dev(d->flash), slot_size, d->dev.state,
                                    d->dev.slot);
    if (err != FOTA_OK)
        return err;
    d->dev.keys = fl->keys;
    d->dev.n_keys = fl->o.n_keys;
    d->dev.threshold = 1;
    d->dev.hardware_id = fl->o.hardware_id;
    d->dev.trial_attempts = 0;
    d->dev.scratch = d->scratch;
    d->dev.scratch_len = FLEET_SCRATCH;
    return FOTA_OK;
}

/* The image the device runs now, from its boot state and the slot header. */
static fota_err running_image(struct device *d, int *ret_slot, struct fota_boot_state *ret_st,
                              struct fota_image_header *ret_hdr)
{
    uint8_t raw[FOTA_IMAGE_HEADER_LEN];
    struct fota_boot_state st;
    struct fota_image_header h;
    int slot = 0;
    fota_err err;

    err = fota_boot_running_slot(&d->dev, &slot, &st);
    if (err == FOTA_OK)
        err = fota_flash_area_read(&d->dev.slot[slot], 0, raw, sizeof raw);
    if (err == FOTA_OK)
        err = fota_image_header_decode(raw, &h);
    if (err != FOTA_OK)
        return err;
    *ret_slot = slot;
    *ret_st = st;
    *ret_hdr = h;
    return FOTA_OK;
}

/* Power-on: the bootloader. The decision is kept for the summary. */
static fota_err device_boot(struct device *d)
{
    struct fota_boot_decision dec;
    fota_err err;

    memset(&dec, 0, sizeof dec);
    err = fota_boot(&d->dev, &dec);
    d->boot_err = err;
    if (err == FOTA_OK) {
        d->boot_slot = dec.slot;
        d->boot_reason = dec.reason;
    }
    return err;
}

/*
 * A new device leaves the factory: the factory image installed into slot A
 * through the install API, trial-booted and confirmed, on a flash made under
 * a temporary name and renamed into place only when done, so that an
 * interrupted setup never passes for a provisioned device.
 */
static fota_err device_provision(struct device *d, const char *flash_path)
{
    struct fleet *fl = d->fl;
    struct fota_flash_geometry g;
    struct fota_install in;
    struct fota_image_info info;
    struct fota_boot_decision dec;
    char *tmp = NULL;
    size_t n;
    fota_err err = FOTA_E_NOMEM;

    n = strlen(flash_path) + 5;
    tmp = malloc(n);
    if (tmp == NULL)
        goto out;
    snprintf(tmp, n, "%s.new", flash_path);
    memset(&g, 0, sizeof g);
    g.size = fl->flash_size;
    g.sector_size = FLEET_SECTOR;
    g.write_align = FLEET_ALIGN;
    g.erased_value = 0xff;
    err = fota_flash_file_open(tmp, &g, 1, &d->flash);
    if (err != FOTA_OK)
        goto out;
    err = device_layout(d, fl->slot_size);
    if (err != FOTA_OK)
        goto out;
    memset(&in, 0, sizeof in);
    err = fota_install_begin(&in, &d->dev, (uint32_t)fl->factory_len, fl->factory_sha256);
    for (size_t off = 0; err == FOTA_OK && off < fl->factory_len; off += FLEET_SECTOR) {
        size_t len = fl->factory_len - off < FLEET_SECTOR ? fl->factory_len - off : FLEET_SECTOR;

        err = fota_install_write(&in, fl->factory + off, len);
    }
    if (err == FOTA_OK)
        err = fota_install_finish(&in, &info);
    else
        fota_install_abort(&in);
    if (err == FOTA_OK)
        err = fota_boot(&d->dev, &dec);
    if (err == FOTA_OK && dec.reason != FOTA_BOOT_TRIAL)
        err = FOTA_E_STATE;
    if (err == FOTA_OK)
        err = fota_boot_confirm(&d->dev);
    if (err == FOTA_OK && rename(tmp, flash_path) != 0)
        err = FOTA_E_IO;
out:
    if (err != FOTA_OK && d->flash != NULL) {
        fota_flash_sim_close(d->flash);
        d->flash = NULL;
        if (tmp != NULL)
            unlink(tmp);
    }
    free(tmp);
    return err;
}

static fota_err device_open_flash(struct device *d)
{
    struct fota_flash_geometry g;
    char *path = path_join(d->dir, "flash");
    fota_err err;

    if (path == NULL)
        return FOTA_E_NOMEM;
    memset(&g, 0, sizeof g);
    g.size = 0;                     /* the file's own size: its layout is kept */
    g.sector_size = FLEET_SECTOR;
    g.write_align = FLEET_ALIGN;
    g.erased_value = 0xff;
    err = fota_flash_file_open(path, &g, 0, &d->flash);
    if (err == FOTA_E_NOT_FOUND) {
        err = device_provision(d, path);
    } else if (err == FOTA_OK) {
        err = device_layout(d, 0);
        if (err != FOTA_OK) {
            fota_flash_sim_close(d->flash);
            d->flash = NULL;
        }
    }
    free(path);
    return err;
}

/* ---- the agent's hooks ----------------------------------------------------- */

static void hook_log(void *ctx, enum fota_agent_log_level level, const char *event,
                     const char *line)
{
    static const char *const levels[] = {"debug", "info", "warn", "error"};
    struct device *d = ctx;
    struct fleet *fl = d->fl;
    size_t k;

    for (k = 0; k + 1 < N_EVENTS; k++) {
        if (event != NULL && strcmp(event, event_names[k]) == 0)
            break;
    }
    pthread_mutex_lock(&fl->lock);
    fl->events[k]++;
    pthread_mutex_unlock(&fl->lock);
    if (fl->o.verbose && (unsigned)level < 4)
        fprintf(stderr, "%s %s %s\n", d->name, levels[level], line != NULL ? line : "");
}

static void hook_progress(void *ctx, const char *target, uint64_t done, uint64_t total)
{
    struct device *d = ctx;
    struct fleet *fl = d->fl;
    uint64_t key = name_hash(target != NULL ? target : "");
    uint64_t delta = 0;

    if (key != d->dl_key) {
        /* Another image than the one seen last: a new download, with its
         * own drop. */
        if (d->dl_key != 0) {
            d->drop_chosen = 0;
            d->dropped = 0;
        }
        d->dl_key = key;
    }
    d->dl_total = total;
    if (done > d->live_done) {
        delta = d->live_done == 0 ? 0 : done - d->live_done;
        d->live_done = done;
    }
    d->live_bytes += delta;
    pthread_mutex_lock(&fl->lock);
    fl->bytes += delta;
    d->state = DS_DOWNLOADING;
    pthread_mutex_unlock(&fl->lock);
}

/* A failing health check on a chosen device, for any image but the factory
 * one: the update must roll back by itself. */
static int hook_health(void *ctx)
{
    struct device *d = ctx;
    struct fleet *fl = d->fl;
    struct fota_boot_state st;
    struct fota_image_header h;
    int slot;

    if (!d->bad_health)
        return 0;
    if (running_image(d, &slot, &st, &h) == FOTA_OK && same_image_version(&h, &fl->factory_hdr))
        return 0;
    pthread_mutex_lock(&fl->lock);
    fl->health_failures++;
    pthread_mutex_unlock(&fl->lock);
    return 1;
}

/* The simulated device reboots in place: the bootloader runs over its flash
 * and the agent carries on as after a boot. A cut during the boot is the
 * caller's to handle (the worker restarts the device after the cycle). */
static fota_err hook_reboot(void *ctx)
{
    struct device *d = ctx;

    return device_boot(d);
}

/* An offset in the image being downloaded, drawn from its length (or,
 * before the first progress call names it, the factory image's). */
static uint64_t draw_offset(struct device *d)
{
    uint64_t est = d->dl_total != 0 ? d->dl_total : d->fl->factory_len;

    return sim_rng_below(&d->rng, est);
}

/*
 * Called before each chunk of image bytes. It counts resumes (the first
 * chunk of a transfer arriving at an offset > 0: a Range request after a
 * drop or a restart), cuts the power of a chosen device when its download
 * reaches a random offset (the next flash operation, an erase or a write
 * of this chunk, is the cut one), and drops each download of a chosen
 * device once, at a random offset.
 */
static int hook_drop(void *ctx, uint64_t offset, size_t len)
{
    struct device *d = ctx;
    struct fleet *fl = d->fl;

    if (d->transfer_start) {
        d->transfer_start = 0;
        if (offset > 0) {
            pthread_mutex_lock(&fl->lock);
            fl->resumes++;
            pthread_mutex_unlock(&fl->lock);
        }
    }
    if (d->cut_planned && !d->cut_armed) {
        if (!d->cut_chosen) {
            d->cut_at = draw_offset(d);
            d->cut_chosen = 1;
        }
        if (offset + len > d->cut_at) {
            fota_flash_sim_cut_after(d->flash, 1,
                                     sim_rng_below(&d->rng, 2) ? FOTA_FLASH_CUT_TORN
                                                               : FOTA_FLASH_CUT_CLEAN);
            d->cut_armed = 1;
        }
    }
    if (!d->drops || d->dropped)
        return 0;
    if (!d->drop_chosen) {
        d->drop_at = draw_offset(d);
        d->drop_chosen = 1;
    }
    if (offset + len <= d->drop_at)
        return 0;
    d->dropped = 1;
    d->transfer_start = 1;
    pthread_mutex_lock(&fl->lock);
    fl->drops++;
    pthread_mutex_unlock(&fl->lock);
    return 1;
}

/* ---- one device: setup, a turn, a restart ---------------------------------- */

static fota_err device_agent_open(struct device *d)
{
    fota_err err;

    err = fota_agent_open(&d->cfg, &d->hooks, &d->agent);
    if (err != FOTA_OK) {
        d->agent = NULL;
        return err;
    }
    pthread_mutex_lock(&d->fl->lock);
    snprintf(d->id, sizeof d->id, "%s", fota_agent_device_id(d->agent));
    pthread_mutex_unlock(&d->fl->lock);
    return FOTA_OK;
}

/* DIR/dev-NNNNN/rolled-back holds the version of the last update this
 * device rolled back, so that a later run still counts it as settled. */
static void marker_load(struct device *d)
{
    char *path = path_join(d->dir, "rolled-back");
    uint8_t *buf = NULL;
    size_t len = 0;

    if (path != NULL && fota_posix_read_file(path, 80, &buf, &len) == FOTA_OK) {
        while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == '\r'))
            buf[--len] = '\0';
        if (parse_version((const char *)buf, &d->rolled_back))
            d->rolled_back_ever = 1;
    }
    free(buf);
    free(path);
}

/* The update in the slot not running was just rolled back: remember its
 * version (a rejected image stays in its slot until the next install). */
static void marker_store(struct device *d, int running_slot)
{
    uint8_t raw[FOTA_IMAGE_HEADER_LEN];
    struct fota_image_header h;
    char line[FOTA_AGENT_VERSION_MAX + 2];
    char *path;
    int n;

    if (fota_flash_area_read(&d->dev.slot[1 - running_slot], 0, raw, sizeof raw) != FOTA_OK ||
        fota_image_header_decode(raw, &h) != FOTA_OK)
        return;
    d->rolled_back.major = h.major;
    d->rolled_back.minor = h.minor;
    d->rolled_back.patch = h.patch;
    d->rolled_back.build = h.build;
    d->rolled_back.has_build = 1;
    d->rolled_back_ever = 1;
    version_format(&h, line, sizeof line - 1);
    n = (int)strlen(line);
    line[n++] = '\n';
    path = path_join(d->dir, "rolled-back");
    if (path != NULL)
        fota_posix_write_file(path, line, (size_t)n, 0644, 0);
    free(path);
}

/* The rollback counts for --until-version V when it was V that rolled back. */
static int rollback_counts(const struct fleet *fl, const struct device *d)
{
    const struct version *u = &fl->o.until;
    const struct version *r = &d->rolled_back;

    if (!d->rolled_back_ever)
        return 0;
    if (!fl->o.has_until)
        return 1;
    return u->major == r->major && u->minor == r->minor && u->patch == r->patch &&
           (!u->has_build || u->build == r->build);
}

/* Directories, flash (provisioned when new), the power-on, the agent. */
static fota_err device_setup(struct device *d)
{
    struct fleet *fl = d->fl;
    char *tuf = NULL, *root = NULL;
    fota_err err = FOTA_E_NOMEM;

    if (mkdir_private(d->dir) != 0 || mkdir_private(d->data_dir) != 0) {
        err = FOTA_E_IO;
        goto out;
    }
    tuf = path_join(d->data_dir, "tuf");
    root = tuf != NULL ? path_join(tuf, "root.json") : NULL;
    if (root == NULL)
        goto out;
    if (mkdir_private(tuf) != 0) {
        err = FOTA_E_IO;
        goto out;
    }
    /* A device that already trusts a root keeps it (it may have rotated). */
    if (!file_exists(root)) {
        err = fota_posix_write_file(root, fl->root_json, fl->root_len, 0644, 0);
        if (err != FOTA_OK)
            goto out;
    }
    d->scratch = malloc(FLEET_SCRATCH);
    if (d->scratch == NULL) {
        err = FOTA_E_NOMEM;
        goto out;
    }
    err = device_open_flash(d);
    if (err != FOTA_OK)
        goto out;
    marker_load(d);
    fota_flash_sim_seed(d->flash, fl->o.seed ^ ((uint64_t)d->index * 0x2545f4914f6cdd1dull));
    d->cfg.server_url = fl->o.server;
    d->cfg.ca_file = fl->o.ca_file;
    d->cfg.data_dir = d->data_dir;
    d->cfg.hardware_id = fl->o.hardware_id;
    d->cfg.dev = &d->dev;
    d->cfg.durable = 0;
    d->hooks.ctx = d;
    d->hooks.log = hook_log;
    d->hooks.progress = hook_progress;
    d->hooks.health = hook_health;
    d->hooks.reboot = hook_reboot;
    d->hooks.drop_download = hook_drop;
    /* Switched on: the bootloader runs first; the agent only when it found
     * an image to boot. A bricked device stays in the fleet (the summary
     * lists it) without an agent. */
    err = device_boot(d);
    if (err != FOTA_OK) {
        d->bricked = 1;
        fleet_error("%s: no bootable image: %s", d->name, fota_strerror(err));
        err = FOTA_OK;
        goto out;
    }
    err = device_agent_open(d);
out:
    free(root);
    free(tuf);
    return err;
}

/* Power came back after a cut: the agent process is gone, the bootloader
 * runs, and a fresh agent starts from what the data dir and flash hold. */
static void device_restart(struct device *d)
{
    struct fleet *fl = d->fl;

    if (d->agent != NULL) {
        fota_agent_close(d->agent);
        d->agent = NULL;
    }
    fota_flash_sim_power_on(d->flash);
    if (device_boot(d) != FOTA_OK) {
        d->bricked = 1;
        fleet_error("%s: no bootable image after the power cut: %s", d->name,
                    fota_strerror(d->boot_err));
    } else {
        device_agent_open(d);
    }
    pthread_mutex_lock(&fl->lock);
    fl->restarts++;
    pthread_mutex_unlock(&fl->lock);
}

static int download_waiting(struct device *d)
{
    char *path = path_join(d->data_dir, "download.json");
    int present = path != NULL && file_exists(path);

    free(path);
    return present;
}

static int version_index(struct fleet *fl, const char *v)
{
    for (int i = 0; i < fl->n_versions; i++) {
        if (strcmp(fl->versions[i], v) == 0)
            return i;
    }
    if (fl->n_versions == FLEET_VERSIONS_MAX)
        return -1;
    snprintf(fl->versions[fl->n_versions], sizeof fl->versions[0], "%s", v);
    return fl->n_versions++;
}

static double backoff(struct device *d)
{
    double delay = d->fl->o.poll_s;

    for (unsigned k = 0; k < d->errors_in_row && delay < FLEET_BACKOFF_MAX_S; k++)
        delay *= 2;
    return delay < FLEET_BACKOFF_MAX_S ? delay : FLEET_BACKOFF_MAX_S;
}

/*
 * One turn of a device: a cycle of its agent, a restart when power was cut
 * during it, and the bookkeeping. Returns the delay until its next turn.
 */
static double device_turn(struct fleet *fl, struct device *d)
{
    struct fota_agent_cycle_info info;
    struct fota_boot_state st;
    struct fota_image_header h;
    enum dev_state state;
    uint64_t extra;
    char version[FOTA_AGENT_VERSION_MAX + 1] = "";
    int slot = 0, have_image, cut, on_factory = 0, confirmed = 0, waiting;
    double delay;
    fota_err err;

    memset(&info, 0, sizeof info);
    if (d->bricked) {
        pthread_mutex_lock(&fl->lock);
        d->state = DS_ERROR;
        pthread_mutex_unlock(&fl->lock);
        return FLEET_BACKOFF_MAX_S;
    }
    if (d->agent == NULL && device_agent_open(d) != FOTA_OK) {
        d->errors_in_row++;
        pthread_mutex_lock(&fl->lock);
        d->state = DS_ERROR;
        pthread_mutex_unlock(&fl->lock);
        return backoff(d);
    }
    d->transfer_start = 1;
    d->live_bytes = 0;
    d->live_done = 0;
    err = fota_agent_cycle(d->agent, &info);
    cut = fota_flash_sim_is_cut(d->flash);
    if (cut) {
        d->cut_fired = 1;
        device_restart(d);
    }
    if (info.result == FOTA_AGENT_UPDATED || info.result == FOTA_AGENT_ROLLED_BACK ||
        info.result == FOTA_AGENT_REFUSED) {
        /* The download is over: the next one gets its own drop. */
        d->dl_key = 0;
        d->dl_total = 0;
        d->drop_chosen = 0;
        d->dropped = 0;
    }
    have_image = running_image(d, &slot, &st, &h) == FOTA_OK;
    if (have_image) {
        version_format(&h, version, sizeof version);
        on_factory = same_image_version(&h, &fl->factory_hdr);
        confirmed = !st.pending && !st.trial && slot == st.active;
    }
    if (!cut && err == FOTA_OK && info.result == FOTA_AGENT_ROLLED_BACK && have_image)
        marker_store(d, slot);
    waiting = download_waiting(d);

    if (cut || err != FOTA_OK) {
        state = waiting ? DS_DOWNLOADING : DS_ERROR;
    } else {
        switch (info.result) {
        case FOTA_AGENT_PENDING:
            state = DS_PENDING;
            break;
        case FOTA_AGENT_IDLE:
        case FOTA_AGENT_UPDATED:
        case FOTA_AGENT_ROLLED_BACK:
            if (!on_factory)
                state = DS_UPDATED;
            else if (d->rolled_back_ever)
                state = DS_ROLLED_BACK;
            else
                state = DS_IDLE;
            break;
        case FOTA_AGENT_REFUSED:
            state = DS_REFUSED;
            break;
        case FOTA_AGENT_REJECTED:
            state = DS_REJECTED;
            break;
        default:
            state = waiting ? DS_DOWNLOADING : DS_ERROR;
            break;
        }
    }

    pthread_mutex_lock(&fl->lock);
    fl->cycles++;
    if (cut)
        fl->cuts++;
    if (info.bytes_downloaded > d->live_bytes) {
        extra = info.bytes_downloaded - d->live_bytes;
        fl->bytes += extra;
    }
    d->state = state;
    d->last_reason = err != FOTA_OK ? err : info.reason;
    d->version_idx = have_image ? version_index(fl, version) : -1;
    /* Settled: checked in idle (so the server has seen the running
     * version), nothing pending, and either the target version confirmed or
     * back on the factory image after a rollback. */
    d->outcome = OUT_NONE;
    if (!cut && err == FOTA_OK && info.result == FOTA_AGENT_IDLE && have_image && confirmed) {
        if (fl->o.has_until && version_matches(&fl->o.until, &h)) {
            d->outcome = OUT_CONFIRMED;
        } else if (on_factory && rollback_counts(fl, d)) {
            d->outcome = OUT_ROLLED_BACK;
        } else if (!fl->o.has_until) {
            d->outcome = OUT_CONFIRMED;
        }
    }
    if (have_image && confirmed && !on_factory && d->confirmed_at < 0 &&
        (!fl->o.has_until || version_matches(&fl->o.until, &h)))
        d->confirmed_at = now_s() - fl->t0;
    pthread_mutex_unlock(&fl->lock);

    if (cut)
        return FLEET_RESTART_DELAY_S;
    if (err != FOTA_OK || info.result == FOTA_AGENT_ERROR ||
        info.result == FOTA_AGENT_REBOOTING) {
        d->errors_in_row++;
        delay = backoff(d);
    } else {
        d->errors_in_row = 0;
        delay = info.result == FOTA_AGENT_REJECTED ? FLEET_BACKOFF_MAX_S : fl->o.poll_s;
    }
    return delay * (0.8 + 0.4 * rng_unit(&d->rng));
}

/* ---- the scheduler ----------------------------------------------------------- */

static void heap_push(struct fleet *fl, double wake, uint32_t index)
{
    size_t i = fl->heap_n++;

    while (i > 0) {
        size_t parent = (i - 1) / 2;

        if (fl->heap[parent].wake <= wake)
            break;
        fl->heap[i] = fl->heap[parent];
        i = parent;
    }
    fl->heap[i].wake = wake;
    fl->heap[i].index = index;
}

static struct heap_entry heap_pop(struct fleet *fl)
{
    struct heap_entry top = fl->heap[0];
    struct heap_entry last = fl->heap[--fl->heap_n];
    size_t i = 0;

    for (;;) {
        size_t child = 2 * i + 1;

        if (child >= fl->heap_n)
            break;
        if (child + 1 < fl->heap_n && fl->heap[child + 1].wake < fl->heap[child].wake)
            child++;
        if (last.wake <= fl->heap[child].wake)
            break;
        fl->heap[i] = fl->heap[child];
        i = child;
    }
    if (fl->heap_n > 0)
        fl->heap[i] = last;
    return top;
}

static struct timespec abs_time(double t)
{
    struct timespec ts;

    ts.tv_sec = (time_t)t;
    ts.tv_nsec = (long)((t - (double)ts.tv_sec) * 1e9);
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    return ts;
}

static void *worker(void *arg)
{
    struct fleet *fl = arg;
    struct heap_entry e;
    double delay, t;

    pthread_mutex_lock(&fl->lock);
    for (;;) {
        while (!fl->stop) {
            if (fl->heap_n == 0) {
                pthread_cond_wait(&fl->cond, &fl->lock);
                continue;
            }
            t = now_s();
            if (fl->heap[0].wake <= t)
                break;
            struct timespec ts = abs_time(fl->heap[0].wake);
            pthread_cond_timedwait(&fl->cond, &fl->lock, &ts);
        }
        if (fl->stop)
            break;
        e = heap_pop(fl);
        pthread_mutex_unlock(&fl->lock);
        delay = device_turn(fl, &fl->devs[e.index]);
        pthread_mutex_lock(&fl->lock);
        heap_push(fl, now_s() + delay, e.index);
        /* A sleeper may be waiting for a later wake than this one. */
        if (fl->heap[0].index == e.index)
            pthread_cond_signal(&fl->cond);
    }
    pthread_mutex_unlock(&fl->lock);
    return NULL;
}

/* Setup phase: the pool prepares devices in parallel (provisioning a new
 * device writes its whole factory image). */
static void *setup_worker(void *arg)
{
    struct fleet *fl = arg;
    struct device *d;
    unsigned i;
    fota_err err;

    for (;;) {
        pthread_mutex_lock(&fl->lock);
        if (fl->setup_failed || fl->setup_next >= fl->o.devices || interrupted) {
            pthread_mutex_unlock(&fl->lock);
            break;
        }
        i = fl->setup_next++;
        pthread_mutex_unlock(&fl->lock);
        d = &fl->devs[i];
        err = device_setup(d);
        if (err != FOTA_OK) {
            fleet_error("%s: setup failed: %s%s%s", d->dir, fota_strerror(err),
                        err == FOTA_E_IO ? ": " : "", err == FOTA_E_IO ? strerror(errno) : "");
            pthread_mutex_lock(&fl->lock);
            fl->setup_failed = 1;
            pthread_mutex_unlock(&fl->lock);
            break;
        }
    }
    return NULL;
}

static int run_pool(struct fleet *fl, void *(*fn)(void *), pthread_t *threads)
{
    unsigned started = 0;
    int rc = 0;

    for (; started < fl->o.threads; started++) {
        if (pthread_create(&threads[started], NULL, fn, fl) != 0) {
            fleet_error("cannot start thread %u", started + 1);
            rc = -1;
            break;
        }
    }
    return rc < 0 && started == 0 ? -1 : (int)started;
}

/* ---- progress and summary ------------------------------------------------- */

struct tally {
    unsigned long states[DS_COUNT];
    unsigned long versions[FLEET_VERSIONS_MAX];
    unsigned long unknown_version;
    unsigned long confirmed, rolled_back, unsettled;
    uint64_t bytes;
};

/* Under fl->lock. */
static void tally_take(struct fleet *fl, struct tally *t)
{
    memset(t, 0, sizeof *t);
    for (unsigned i = 0; i < fl->o.devices; i++) {
        const struct device *d = &fl->devs[i];

        t->states[d->state]++;
        if (d->version_idx >= 0)
            t->versions[d->version_idx]++;
        else
            t->unknown_version++;
        if (d->outcome == OUT_CONFIRMED)
            t->confirmed++;
        else if (d->outcome == OUT_ROLLED_BACK)
            t->rolled_back++;
        else
            t->unsettled++;
    }
    t->bytes = fl->bytes;
}

static void print_progress(struct fleet *fl, const struct tally *t, double elapsed, double rate,
                           int tty)
{
    char line[1024];
    size_t n = 0;
    int w;

    w = snprintf(line, sizeof line,
                 "%6.1fs  pending %lu  idle %lu  downloading %lu  updated %lu  rolled back %lu"
                 "  refused %lu  error %lu |",
                 elapsed, t->states[DS_PENDING] + t->states[DS_NEW], t->states[DS_IDLE],
                 t->states[DS_DOWNLOADING], t->states[DS_UPDATED], t->states[DS_ROLLED_BACK],
                 t->states[DS_REFUSED], t->states[DS_ERROR] + t->states[DS_REJECTED]);
    if (w > 0)
        n = (size_t)w < sizeof line ? (size_t)w : sizeof line - 1;
    for (int i = 0; i < fl->n_versions && n < sizeof line; i++) {
        w = snprintf(line + n, sizeof line - n, " %s: %lu", fl->versions[i], t->versions[i]);
        if (w > 0)
            n += (size_t)w < sizeof line - n ? (size_t)w : sizeof line - n - 1;
    }
    if (n < sizeof line)
        snprintf(line + n, sizeof line - n, " | %.1f MiB, %.2f MiB/s",
                 (double)t->bytes / 1048576.0, rate / 1048576.0);
    if (tty)
        fprintf(stderr, "\r\033[K%s", line);
    else
        fprintf(stderr, "%s\n", line);
}

struct memory {
    long vm_hwm_kib, vm_rss_kib, rss_anon_kib, rss_file_kib, rss_shmem_kib;
    double cpu_s;                   /* user + system time of the whole run */
};

static void memory_read(struct memory *m)
{
    FILE *f = fopen("/proc/self/status", "r");
    struct rusage ru;
    char line[256];

    memset(m, 0, sizeof *m);
    if (getrusage(RUSAGE_SELF, &ru) == 0)
        m->cpu_s = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
                   (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
    if (f == NULL)
        return;
    while (fgets(line, sizeof line, f) != NULL) {
        long *slot = NULL;
        const char *v = NULL;

        if (strncmp(line, "VmHWM:", 6) == 0) {
            slot = &m->vm_hwm_kib;
            v = line + 6;
        } else if (strncmp(line, "VmRSS:", 6) == 0) {
            slot = &m->vm_rss_kib;
            v = line + 6;
        } else if (strncmp(line, "RssAnon:", 8) == 0) {
            slot = &m->rss_anon_kib;
            v = line + 8;
        } else if (strncmp(line, "RssFile:", 8) == 0) {
            slot = &m->rss_file_kib;
            v = line + 8;
        } else if (strncmp(line, "RssShmem:", 9) == 0) {
            slot = &m->rss_shmem_kib;
            v = line + 9;
        }
        if (slot != NULL)
            *slot = strtol(v, NULL, 10);
    }
    fclose(f);
}

/* The end-of-run check, without trusting the agent or the sim's own
 * records: the running slot from the stored boot state, its image verified
 * with the device's keys, hardware id and stored security counter. */
static void verify_device(struct device *d)
{
    struct fota_image_policy pol;
    struct fota_boot_state st;
    int slot = 0;
    fota_err err;

    d->verified = 0;
    err = fota_boot_running_slot(&d->dev, &slot, &st);
    if (err == FOTA_OK) {
        memset(&pol, 0, sizeof pol);
        pol.keys = d->dev.keys;
        pol.n_keys = d->dev.n_keys;
        pol.threshold = d->dev.threshold;
        pol.hardware_id = d->dev.hardware_id;
        pol.min_security_counter = st.security_counter;
        pol.max_len = d->dev.slot[slot].size;
        err = fota_image_verify(sim_area_read, &d->dev.slot[slot], &pol, d->scratch,
                                FLEET_SCRATCH, NULL);
    }
    d->final_slot = slot;
    d->verify_err = err;
    d->verified = err == FOTA_OK;
}

static const char *outcome_name(enum outcome o)
{
    switch (o) {
    case OUT_CONFIRMED:
        return "confirmed";
    case OUT_ROLLED_BACK:
        return "rolled_back";
    default:
        return "unsettled";
    }
}

static json_t *time_or_null(double t)
{
    return t >= 0 ? json_real(floor(t * 1000.0 + 0.5) / 1000.0) : json_null();
}

static void print_summary_json(struct fleet *fl, const struct tally *t, double elapsed,
                               double last_confirm, unsigned long unverified, int settled,
                               const struct memory *m)
{
    json_t *root = json_object();
    json_t *states = json_object();
    json_t *versions = json_object();
    json_t *events = json_object();
    json_t *bad = json_array();
    json_t *list = NULL;
    char *text;
    unsigned n = fl->o.devices;

    for (int i = 0; i < DS_COUNT; i++)
        json_object_set_new(states, state_names[i], json_integer((json_int_t)t->states[i]));
    for (int i = 0; i < fl->n_versions; i++)
        json_object_set_new(versions, fl->versions[i], json_integer((json_int_t)t->versions[i]));
    if (t->unknown_version > 0)
        json_object_set_new(versions, "unknown", json_integer((json_int_t)t->unknown_version));
    for (size_t k = 0; k < N_EVENTS; k++)
        json_object_set_new(events, event_names[k], json_integer((json_int_t)fl->events[k]));
    if (n <= FLEET_DETAIL_MAX)
        list = json_array();
    for (unsigned i = 0; i < n; i++) {
        const struct device *d = &fl->devs[i];

        if (!d->verified)
            json_array_append_new(bad, json_pack("{s:s,s:s,s:s,s:s}", "name", d->name, "id", d->id,
                                                 "slot", d->final_slot == 0 ? "A" : "B", "reason",
                                                 fota_strerror(d->verify_err)));
        if (list != NULL)
            json_array_append_new(
                list,
                json_pack("{s:s,s:s,s:s,s:s,s:s,s:s*,s:s,s:b,s:b,s:b,s:b,s:b,s:b,s:s}", "name",
                          d->name, "id", d->id, "version",
                          d->version_idx >= 0 ? fl->versions[d->version_idx] : "", "state",
                          state_names[d->state], "outcome", outcome_name(d->outcome),
                          "last_reason",
                          d->last_reason != FOTA_OK ? fota_strerror(d->last_reason) : NULL,
                          "last_boot",
                          d->boot_err != FOTA_OK ? fota_strerror(d->boot_err)
                                                 : fota_boot_reason_name(d->boot_reason),
                          "fail_health", d->bad_health, "drop_connections", d->drops, "power_cut",
                          d->cut_planned, "power_cut_fired", d->cut_fired, "bricked", d->bricked,
                          "verified", d->verified, "slot", d->final_slot == 0 ? "A" : "B"));
    }
    json_object_set_new(root, "devices", json_integer(n));
    json_object_set_new(root, "settled", json_boolean(settled));
    json_object_set_new(root, "until_version",
                        fl->o.has_until ? json_string(fl->o.until_text) : json_null());
    json_object_set_new(root, "factory_version", json_string(fl->factory_version));
    json_object_set_new(root, "started_unix", json_real(fl->t0_unix));
    json_object_set_new(root, "setup_s", time_or_null(fl->setup_s));
    json_object_set_new(root, "elapsed_s", time_or_null(elapsed));
    json_object_set_new(root, "settled_s", time_or_null(fl->settled_at));
    json_object_set_new(root, "last_confirmed_s", time_or_null(last_confirm));
    json_object_set_new(root, "states", states);
    json_object_set_new(root, "versions", versions);
    json_object_set_new(root, "outcomes",
                        json_pack("{s:I,s:I,s:I}", "confirmed", (json_int_t)t->confirmed,
                                  "rolled_back", (json_int_t)t->rolled_back, "unsettled",
                                  (json_int_t)t->unsettled));
    json_object_set_new(root, "bytes_downloaded", json_integer((json_int_t)t->bytes));
    json_object_set_new(root, "bytes_per_device",
                        json_integer((json_int_t)(n > 0 ? t->bytes / n : 0)));
    json_object_set_new(root, "faults",
                        json_pack("{s:I,s:I,s:I}", "drops", (json_int_t)fl->drops, "power_cuts",
                                  (json_int_t)fl->cuts, "health_failures",
                                  (json_int_t)fl->health_failures));
    json_object_set_new(root, "resumes", json_integer((json_int_t)fl->resumes));
    json_object_set_new(root, "cycles", json_integer((json_int_t)fl->cycles));
    json_object_set_new(root, "events", events);
    json_object_set_new(root, "verified", json_integer((json_int_t)(n - unverified)));
    json_object_set_new(root, "unverified", bad);
    json_object_set_new(root, "memory",
                        json_pack("{s:I,s:I,s:I,s:I,s:I,s:f}", "vm_hwm_kib",
                                  (json_int_t)m->vm_hwm_kib, "vm_rss_kib",
                                  (json_int_t)m->vm_rss_kib, "rss_anon_kib",
                                  (json_int_t)m->rss_anon_kib, "rss_file_kib",
                                  (json_int_t)m->rss_file_kib, "rss_shmem_kib",
                                  (json_int_t)m->rss_shmem_kib, "anon_kib_per_device",
                                  n > 0 ? (double)m->rss_anon_kib / n : 0.0));
    json_object_set_new(root, "cpu_s", json_real(floor(m->cpu_s * 1000.0 + 0.5) / 1000.0));
    json_object_set_new(root, "seed", json_integer((json_int_t)fl->o.seed));
    if (list != NULL)
        json_object_set_new(root, "device_list", list);
    text = json_dumps(root, JSON_SORT_KEYS | JSON_COMPACT);
    if (text != NULL)
        puts(text);
    else
        fleet_error("out of memory");
    free(text);
    json_decref(root);
}

static void print_summary_text(struct fleet *fl, const struct tally *t, double elapsed,
                               double last_confirm, unsigned long unverified, int settled,
                               const struct memory *m)
{
    unsigned n = fl->o.devices;
    unsigned shown = 0;

    printf("fleet: %u devices, %.1f s, ", n, elapsed);
    if (fl->o.has_until)
        printf("%s", settled ? "settled" : "NOT settled");
    else
        printf("%s", settled ? "all idle" : "NOT all idle");
    if (fl->settled_at >= 0)
        printf(" after %.1f s", fl->settled_at);
    printf("\n  states:     ");
    for (int i = 0, first = 1; i < DS_COUNT; i++) {
        if (t->states[i] == 0)
            continue;
        printf("%s%s %lu", first ? "" : ", ", state_names[i], t->states[i]);
        first = 0;
    }
    printf("\n  versions:   ");
    for (int i = 0; i < fl->n_versions; i++)
        printf("%s%s: %lu", i ? ", " : "", fl->versions[i], t->versions[i]);
    if (t->unknown_version > 0)
        printf("%sunknown: %lu", fl->n_versions ? ", " : "", t->unknown_version);
    printf("\n");
    if (fl->o.has_until) {
        printf("  outcome:    confirmed %s: %lu, rolled back to %s: %lu, unsettled: %lu\n",
               fl->o.until_text, t->confirmed, fl->factory_version, t->rolled_back,
               t->unsettled);
        if (last_confirm >= 0)
            printf("  last device confirmed %s after %.1f s\n", fl->o.until_text, last_confirm);
    }
    printf("  downloaded: %.2f MiB (%.1f KiB per device)\n", (double)t->bytes / 1048576.0,
           n > 0 ? (double)t->bytes / 1024.0 / n : 0.0);
    printf("  faults:     drops %" PRIu64 ", power cuts %" PRIu64 ", health failures %" PRIu64
           "; resumes %" PRIu64 "\n",
           fl->drops, fl->cuts, fl->health_failures, fl->resumes);
    printf("  memory:     peak RSS %.1f MiB, anonymous %.1f MiB (%.1f KiB per device)\n",
           (double)m->vm_hwm_kib / 1024.0, (double)m->rss_anon_kib / 1024.0,
           n > 0 ? (double)m->rss_anon_kib / n : 0.0);
    printf("  verified:   %lu of %u devices run a verified image\n", n - unverified, n);
    for (unsigned i = 0; i < n && shown < 20; i++) {
        const struct device *d = &fl->devs[i];

        if (d->verified)
            continue;
        printf("  UNVERIFIED  %s %.16s slot %c: %s\n", d->name, d->id, d->final_slot ? 'B' : 'A',
               fota_strerror(d->verify_err));
        shown++;
    }
    if (unverified > shown)
        printf("  ... and %lu more unverified\n", unverified - shown);
}

/* ---- options ----------------------------------------------------------------- */

static const char usage_text[] =
    "Usage: fota-sim fleet --devices N --server URL --dir DIR --hardware-id HW\n"
    "                      --image-key FILE [--image-key FILE ...] --tuf-root FILE\n"
    "                      --factory-image FILE [OPTIONS]\n"
    "\n"
    "Run N simulated devices against a fota-server: each has its own flash file,\n"
    "boot state, identity and agent (the same agent core and boot logic as\n"
    "fota-agent), driven by a small pool of threads. See docs/fleet.md.\n"
    "\n"
    "Required:\n"
    "  --devices N          1..100000 devices, DIR/dev-00000 ... (reused when present)\n"
    "  --server URL         the fota-server (http://HOST:PORT)\n"
    "  --dir DIR            where the devices live (created when missing)\n"
    "  --hardware-id HW     the devices' hardware id\n"
    "  --image-key FILE     a trusted image key (.pub, PEM public or private; repeatable)\n"
    "  --tuf-root FILE      the TUF root.json each new device is provisioned with\n"
    "  --factory-image FILE the signed image a new device runs, confirmed, from the start\n"
    "\n"
    "Options:\n"
    "  --threads T          worker threads (default 16)\n"
    "  --poll-interval S    seconds between check-ins, jittered +-20% (default 2)\n"
    "  --until-version V    stop once every device runs V confirmed or has rolled back\n"
    "                       to its factory image, and checked in idle after that\n"
    "  --duration S         stop after S seconds at most (default 600)\n"
    "  --fail-health PCT    that share of devices fails the health check of any image\n"
    "                       but the factory one\n"
    "  --drop-connections PCT  that share drops one connection per download\n"
    "  --power-cuts PCT     that share has power cut once, at a random flash operation\n"
    "  --seed N             picks the faulty devices and the faults (default 1)\n"
    "  --slot-size BYTES    slot size of new devices (default: 2 x factory image)\n"
    "  --ca-file FILE       pinned CA bundle for an https server\n"
    "  --json               the summary as one JSON object on stdout\n"
    "  --quiet              no progress line\n"
    "  --verbose            every agent log line, prefixed with the device name\n"
    "  -h, --help           this text\n"
    "\n"
    "Exit status: 0 every device settled (with --until-version; otherwise idle)\n"
    "and running a verified image; 1 otherwise (time out, unverified device,\n"
    "setup failure); 2 usage error or unusable key, root or factory image.\n";

#define parse_u64(name, s, min, max, ret) sim_parse_u64(CMD, name, s, min, max, ret)

static int parse_real(const char *name, const char *s, double min, double max, double *ret)
{
    char *end = NULL;
    double v;

    if (s == NULL || ((*s < '0' || *s > '9') && *s != '.')) {
        fleet_error("%s: expected a number", name);
        return 0;
    }
    errno = 0;
    v = strtod(s, &end);
    if (errno != 0 || end == s || *end != '\0' || !(v >= min && v <= max)) {
        fleet_error("%s: '%s' is not a number in [%g, %g]", name, s, min, max);
        return 0;
    }
    *ret = v;
    return 1;
}

/* 1 ok, 0 usage error (message printed), -1 help printed. */
static int parse_opts(int argc, char **argv, struct opts *o)
{
    uint64_t v;

    memset(o, 0, sizeof *o);
    o->threads = 16;
    o->poll_s = 2.0;
    o->duration_s = 600.0;
    o->seed = 1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *val = i + 1 < argc ? argv[i + 1] : NULL;

        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            fputs(usage_text, stdout);
            return -1;
        }
        if (strcmp(a, "--json") == 0) {
            o->json = 1;
            continue;
        }
        if (strcmp(a, "--quiet") == 0 || strcmp(a, "-q") == 0) {
            o->quiet = 1;
            continue;
        }
        if (strcmp(a, "--verbose") == 0 || strcmp(a, "-v") == 0) {
            o->verbose = 1;
            continue;
        }
        if (strncmp(a, "--", 2) != 0) {
            fleet_error("unexpected argument '%s' (try 'fota-sim fleet --help')", a);
            return 0;
        }
        if (val == NULL) {
            fleet_error("%s: unknown option or missing value (try 'fota-sim fleet --help')", a);
            return 0;
        }
        i++;
        if (strcmp(a, "--devices") == 0) {
            if (!parse_u64(a, val, 1, FLEET_DEVICES_MAX, &v))
                return 0;
            o->devices = (unsigned)v;
        } else if (strcmp(a, "--server") == 0) {
            o->server = val;
        } else if (strcmp(a, "--dir") == 0) {
            o->dir = val;
        } else if (strcmp(a, "--hardware-id") == 0) {
            o->hardware_id = val;
        } else if (strcmp(a, "--image-key") == 0) {
            if (o->n_keys == FLEET_KEYS_MAX) {
                fleet_error("--image-key: at most %u keys", FLEET_KEYS_MAX);
                return 0;
            }
            o->keys[o->n_keys++] = val;
        } else if (strcmp(a, "--tuf-root") == 0) {
            o->tuf_root = val;
        } else if (strcmp(a, "--factory-image") == 0) {
            o->factory_image = val;
        } else if (strcmp(a, "--ca-file") == 0) {
            o->ca_file = val;
        } else if (strcmp(a, "--threads") == 0) {
            if (!parse_u64(a, val, 1, FLEET_THREADS_MAX, &v))
                return 0;
            o->threads = (unsigned)v;
        } else if (strcmp(a, "--poll-interval") == 0) {
            if (!parse_real(a, val, 0.05, 3600.0, &o->poll_s))
                return 0;
        } else if (strcmp(a, "--until-version") == 0) {
            if (!parse_version(val, &o->until)) {
                fleet_error("--until-version: '%s' is not MAJOR.MINOR.PATCH[+BUILD]", val);
                return 0;
            }
            o->until_text = val;
            o->has_until = 1;
        } else if (strcmp(a, "--duration") == 0) {
            if (!parse_real(a, val, 0.0, 30.0 * 86400.0, &o->duration_s))
                return 0;
        } else if (strcmp(a, "--fail-health") == 0) {
            if (!parse_real(a, val, 0.0, 100.0, &o->fail_health_pct))
                return 0;
        } else if (strcmp(a, "--drop-connections") == 0) {
            if (!parse_real(a, val, 0.0, 100.0, &o->drop_pct))
                return 0;
        } else if (strcmp(a, "--power-cuts") == 0) {
            if (!parse_real(a, val, 0.0, 100.0, &o->cut_pct))
                return 0;
        } else if (strcmp(a, "--seed") == 0) {
            if (!parse_u64(a, val, 0, UINT64_MAX, &o->seed))
                return 0;
        } else if (strcmp(a, "--slot-size") == 0) {
            if (!parse_u64(a, val, FLEET_SECTOR, 1u << 30, &v))
                return 0;
            if (v % FLEET_SECTOR != 0) {
                fleet_error("--slot-size: must be a multiple of %u", FLEET_SECTOR);
                return 0;
            }
            o->slot_size = (uint32_t)v;
        } else {
            fleet_error("%s: unknown option (try 'fota-sim fleet --help')", a);
            return 0;
        }
    }
    if (o->devices == 0 || o->server == NULL || o->dir == NULL || o->hardware_id == NULL ||
        o->n_keys == 0 || o->tuf_root == NULL || o->factory_image == NULL) {
        fleet_error("--devices, --server, --dir, --hardware-id, --image-key, --tuf-root and "
                    "--factory-image are required (try 'fota-sim fleet --help')");
        return 0;
    }
    return 1;
}

/* ---- setup ------------------------------------------------------------------ */

enum fault { FAULT_HEALTH, FAULT_DROP, FAULT_CUT };

/* Mark exactly round(n * pct / 100) devices for a fault, picked by a seeded
 * shuffle: the same seed picks the same devices in every run. */
static int choose(struct fleet *fl, double pct, enum fault fault)
{
    unsigned n = fl->o.devices;
    unsigned k = (unsigned)floor((double)n * pct / 100.0 + 0.5);
    uint32_t *order;
    struct sim_rng r;

    if (k == 0)
        return 0;
    order = malloc((size_t)n * sizeof *order);
    if (order == NULL)
        return -1;
    for (unsigned i = 0; i < n; i++)
        order[i] = i;
    sim_rng_seed(&r, fl->o.seed ^ (((uint64_t)fault + 1) * 0x9e3779b97f4a7c15ull));
    for (unsigned i = 0; i < k; i++) {
        unsigned j = i + (unsigned)sim_rng_below(&r, n - i);
        uint32_t t = order[i];
        struct device *d;

        order[i] = order[j];
        order[j] = t;
        d = &fl->devs[order[i]];
        if (fault == FAULT_HEALTH)
            d->bad_health = 1;
        else if (fault == FAULT_DROP)
            d->drops = 1;
        else
            d->cut_planned = 1;
    }
    free(order);
    return 0;
}

struct mem_image {
    const uint8_t *data;
    size_t len;
};

static fota_err mem_read(void *ctx, uint32_t off, void *buf, size_t len)
{
    const struct mem_image *m = ctx;

    if (off > m->len || len > m->len - off)
        return FOTA_E_LENGTH;
    memcpy(buf, m->data + off, len);
    return FOTA_OK;
}

/* Keys, the TUF root, the factory image (verified as the devices will
 * verify it) and the flash geometry. 1 ok, 0 failed (message printed). */
static int load_inputs(struct fleet *fl)
{
    struct fota_image_policy pol;
    struct fota_image_info info;
    struct mem_image m;
    uint8_t scratch[FLEET_SCRATCH];
    size_t bad = 0;
    fota_sha256 h;
    uint64_t slot;
    fota_err err;

    err = fota_keyfile_load_image_keys(fl->o.keys, fl->o.n_keys, fl->keys, &bad);
    if (err != FOTA_OK) {
        fleet_error("%s: not a usable image key: %s", fl->o.keys[bad], fota_strerror(err));
        return 0;
    }
    fl->keys_loaded = 1;
    err = fota_posix_read_file(fl->o.tuf_root, FLEET_ROOT_MAX, &fl->root_json, &fl->root_len);
    if (err != FOTA_OK) {
        fleet_error("%s: cannot read the TUF root: %s", fl->o.tuf_root, fota_strerror(err));
        return 0;
    }
    err = fota_posix_read_file(fl->o.factory_image, FLEET_FACTORY_MAX, &fl->factory,
                               &fl->factory_len);
    if (err != FOTA_OK) {
        fleet_error("%s: cannot read the factory image: %s", fl->o.factory_image,
                    fota_strerror(err));
        return 0;
    }
    memset(&pol, 0, sizeof pol);
    pol.keys = fl->keys;
    pol.n_keys = fl->o.n_keys;
    pol.threshold = 1;
    pol.hardware_id = fl->o.hardware_id;
    pol.max_len = (uint32_t)fl->factory_len;
    pol.exact_len = (uint32_t)fl->factory_len;
    m.data = fl->factory;
    m.len = fl->factory_len;
    err = fota_image_verify(mem_read, &m, &pol, scratch, sizeof scratch, &info);
    if (err != FOTA_OK) {
        fleet_error("%s: the devices would not boot this factory image: %s",
                    fl->o.factory_image, fota_strerror(err));
        return 0;
    }
    fl->factory_hdr = info.header;
    version_format(&fl->factory_hdr, fl->factory_version, sizeof fl->factory_version);
    fota_sha256_init(&h);
    fota_sha256_update(&h, fl->factory, fl->factory_len);
    fota_sha256_final(&h, fl->factory_sha256);

    slot = fl->o.slot_size;
    if (slot == 0)
        slot = ((uint64_t)fl->factory_len * 2 + FLEET_SECTOR - 1) / FLEET_SECTOR * FLEET_SECTOR;
    if (slot < fl->factory_len || slot > (UINT32_MAX - 2u * FLEET_SECTOR) / 2u) {
        fleet_error("--slot-size %" PRIu64 " cannot hold the factory image (%zu bytes)", slot,
                    fl->factory_len);
        return 0;
    }
    fl->slot_size = (uint32_t)slot;
    fl->flash_size = 2u * FLEET_SECTOR + 2u * fl->slot_size;
    return 1;
}

/*
 * Each device keeps its flash file mapped (one memory mapping) and its
 * agent's libcurl handle keeps a connection and a wake-up socket pair open
 * between cycles (three file descriptors). Without them the devices would
 * fail one by one with EMFILE or ENOMEM in the middle of the run, so a
 * fleet that does not fit is refused at the start.
 */
static int check_limits(struct fleet *fl)
{
    unsigned long long n = fl->o.devices;
    unsigned long long fds = 3 * n + 256;
    unsigned long long maps_needed = 2 * (n + 1024);
    unsigned long long maps = 0;
    struct rlimit rl;
    FILE *f;

    f = fopen("/proc/sys/vm/max_map_count", "r");
    if (f != NULL) {
        if (fscanf(f, "%llu", &maps) != 1)
            maps = 0;
        fclose(f);
    }
    if (maps != 0 && maps < maps_needed) {
        fleet_error("%llu devices need about %llu memory mappings, vm.max_map_count is %llu "
                    "(raise it with sysctl)", n, maps_needed, maps);
        return 0;
    }
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY ||
        rl.rlim_cur >= fds)
        return 1;
    rl.rlim_cur = rl.rlim_max == RLIM_INFINITY || rl.rlim_max > fds ? fds : rl.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur < fds) {
        fleet_error("%llu devices need about %llu open files (3 per device); the limit is "
                    "%llu, enough for %llu devices (raise the hard limit: ulimit -Hn)",
                    n, fds, (unsigned long long)rl.rlim_max,
                    rl.rlim_max > 256 ? ((unsigned long long)rl.rlim_max - 256) / 3 : 0ull);
        return 0;
    }
    return 1;
}

static int devices_init(struct fleet *fl)
{
    unsigned n = fl->o.devices;

    fl->devs = calloc(n, sizeof *fl->devs);
    fl->heap = calloc(n, sizeof *fl->heap);
    if (fl->devs == NULL || fl->heap == NULL) {
        fleet_error("out of memory for %u devices", n);
        return 0;
    }
    for (unsigned i = 0; i < n; i++) {
        struct device *d = &fl->devs[i];

        d->fl = fl;
        d->index = i;
        snprintf(d->name, sizeof d->name, "dev-%05u", i);
        d->dir = path_join(fl->o.dir, d->name);
        d->data_dir = d->dir != NULL ? path_join(d->dir, "data") : NULL;
        if (d->data_dir == NULL) {
            fleet_error("out of memory");
            return 0;
        }
        sim_rng_seed(&d->rng, fl->o.seed ^ (((uint64_t)i + 1) * 0xd1b54a32d192ed03ull));
        d->version_idx = -1;
        d->confirmed_at = -1;
        d->boot_err = FOTA_OK;
    }
    if (choose(fl, fl->o.fail_health_pct, FAULT_HEALTH) != 0 ||
        choose(fl, fl->o.drop_pct, FAULT_DROP) != 0 ||
        choose(fl, fl->o.cut_pct, FAULT_CUT) != 0) {
        fleet_error("out of memory");
        return 0;
    }
    return 1;
}

/* DIR/device-ids.txt: one device id per line, in the form fota-server's
 * preauthorized_keys file takes. */
static void write_ids(struct fleet *fl)
{
    size_t cap = (size_t)fl->o.devices * (FOTA_AGENT_ID_LEN + 1) + 128;
    char *buf = malloc(cap);
    char *path = path_join(fl->o.dir, "device-ids.txt");
    size_t n = 0;
    int w;

    if (buf != NULL && path != NULL) {
        w = snprintf(buf, cap, "# fota-sim fleet: the device ids of %s, one per line\n",
                     fl->o.dir);
        if (w > 0 && (size_t)w < cap)
            n = (size_t)w;
        for (unsigned i = 0; i < fl->o.devices; i++) {
            if (fl->devs[i].id[0] == '\0')
                continue;
            w = snprintf(buf + n, cap - n, "%s\n", fl->devs[i].id);
            if (w > 0 && (size_t)w < cap - n)
                n += (size_t)w;
        }
        if (fota_posix_write_file(path, buf, n, 0644, 0) != FOTA_OK)
            fleet_error("%s: cannot write: %s", path, strerror(errno));
    }
    free(buf);
    free(path);
}

static void on_signal(int sig)
{
    (void)sig;
    interrupted = 1;
}

static void install_signals(void)
{
    struct sigaction sa;

    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sa.sa_handler = SIG_IGN;
    sigaction(SIGPIPE, &sa, NULL);
}

static void sleep_s(double s)
{
    struct timespec ts;

    ts.tv_sec = (time_t)s;
    ts.tv_nsec = (long)((s - (double)ts.tv_sec) * 1e9);
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR && !interrupted) {
    }
}

/* Under fl->lock: every device has reached its goal. */
static int all_settled(const struct fleet *fl)
{
    for (unsigned i = 0; i < fl->o.devices; i++) {
        if (fl->devs[i].outcome == OUT_NONE)
            return 0;
    }
    return 1;
}

/* The main thread: progress, and the end of the run. 1 when settled. */
static int watch(struct fleet *fl)
{
    int tty = isatty(STDERR_FILENO) && !fl->o.verbose;
    double period = tty ? 1.0 : 5.0;
    double next_print = period, last_t = 0;
    uint64_t last_bytes = 0;
    struct tally t;
    int settled = 0, printed = 0;

    for (;;) {
        double elapsed;

        sleep_s(FLEET_TICK_S);
        elapsed = now_s() - fl->t0;
        pthread_mutex_lock(&fl->lock);
        settled = all_settled(fl);
        if (settled && fl->settled_at < 0)
            fl->settled_at = elapsed;
        tally_take(fl, &t);
        pthread_mutex_unlock(&fl->lock);
        if (!fl->o.quiet && (elapsed >= next_print || (settled && fl->o.has_until))) {
            double dt = elapsed - last_t;

            print_progress(fl, &t, elapsed,
                           dt > 0 ? (double)(t.bytes - last_bytes) / dt : 0.0, tty);
            printed = 1;
            last_t = elapsed;
            last_bytes = t.bytes;
            next_print = elapsed + period;
        }
        if ((settled && fl->o.has_until) || interrupted || elapsed >= fl->o.duration_s)
            break;
    }
    if (printed && tty)
        fputc('\n', stderr);
    if (interrupted)
        fleet_error("interrupted");
    else if (!settled)
        fleet_error("stopped after %.0f s with devices not settled", fl->o.duration_s);
    return settled;
}

static void fleet_free(struct fleet *fl)
{
    if (fl->devs != NULL) {
        for (unsigned i = 0; i < fl->o.devices; i++) {
            struct device *d = &fl->devs[i];

            if (d->agent != NULL)
                fota_agent_close(d->agent);
            fota_flash_sim_close(d->flash);
            free(d->scratch);
            free(d->dir);
            free(d->data_dir);
        }
    }
    if (fl->keys_loaded)
        fota_keyfile_free_image_keys(fl->keys, fl->o.n_keys);
    free(fl->devs);
    free(fl->heap);
    free(fl->factory);
    free(fl->root_json);
}

int sim_fleet_main(int argc, char **argv)
{
    struct fleet *fl;
    pthread_t *threads = NULL;
    pthread_condattr_t ca;
    struct tally t;
    struct memory mem;
    double elapsed, last_confirm = -1;
    unsigned long unverified = 0;
    int status = SIM_EXIT_FAIL, rc, settled = 0, started, sync_ready = 0, http_ready = 0;

    fl = calloc(1, sizeof *fl);
    if (fl == NULL) {
        fleet_error("out of memory");
        return SIM_EXIT_FAIL;
    }
    fl->settled_at = -1;
    rc = parse_opts(argc, argv, &fl->o);
    if (rc <= 0) {
        status = rc < 0 ? SIM_EXIT_OK : SIM_EXIT_USAGE;
        goto out;
    }
    if (!load_inputs(fl)) {
        status = SIM_EXIT_USAGE;
        goto out;
    }
    if (!check_limits(fl))
        goto out;
    if (fota_posix_mkdirs(fl->o.dir) != FOTA_OK) {
        fleet_error("%s: cannot create: %s", fl->o.dir, strerror(errno));
        goto out;
    }
    if (!devices_init(fl))
        goto out;
    threads = calloc(fl->o.threads, sizeof *threads);
    if (threads == NULL) {
        fleet_error("out of memory");
        goto out;
    }
    if (pthread_condattr_init(&ca) != 0 ||
        pthread_condattr_setclock(&ca, CLOCK_MONOTONIC) != 0 ||
        pthread_cond_init(&fl->cond, &ca) != 0 || pthread_mutex_init(&fl->lock, NULL) != 0) {
        fleet_error("cannot set up the scheduler");
        goto out;
    }
    pthread_condattr_destroy(&ca);
    sync_ready = 1;
    if (fota_posix_http_global_init() != FOTA_OK) {
        fleet_error("cannot initialise libcurl");
        goto out;
    }
    http_ready = 1;
    install_signals();

    /* Setup: directories, flash (factory-provisioned when new), the first
     * power-on, the agent (a new device makes its identity). */
    fl->t0 = now_s();
    started = run_pool(fl, setup_worker, threads);
    for (int i = 0; i < started; i++)
        pthread_join(threads[i], NULL);
    if (started < 0 || fl->setup_failed || interrupted) {
        if (interrupted)
            fleet_error("interrupted during setup");
        goto out;
    }
    write_ids(fl);
    if (!fl->o.quiet)
        fprintf(stderr, "fota-sim: %s: %u devices ready in %.1f s (factory %s, slot %u bytes); "
                "running against %s\n", CMD, fl->o.devices, now_s() - fl->t0,
                fl->factory_version, (unsigned)fl->slot_size, fl->o.server);

    /* First check-ins spread over one poll interval. */
    fl->setup_s = now_s() - fl->t0;
    fl->t0 = now_s();
    fl->t0_unix = unix_now();
    for (unsigned i = 0; i < fl->o.devices; i++)
        heap_push(fl, fl->t0 + fl->o.poll_s * rng_unit(&fl->devs[i].rng), i);
    started = run_pool(fl, worker, threads);
    if (started > 0)
        settled = watch(fl);
    pthread_mutex_lock(&fl->lock);
    fl->stop = 1;
    pthread_cond_broadcast(&fl->cond);
    pthread_mutex_unlock(&fl->lock);
    for (int i = 0; i < started; i++)
        pthread_join(threads[i], NULL);
    if (started <= 0)
        goto out;
    elapsed = now_s() - fl->t0;

    /* Every agent closed, then every device checked on its own. */
    for (unsigned i = 0; i < fl->o.devices; i++) {
        struct device *d = &fl->devs[i];

        if (d->agent != NULL) {
            fota_agent_close(d->agent);
            d->agent = NULL;
        }
        fota_flash_sim_cut_after(d->flash, 0, FOTA_FLASH_CUT_CLEAN);
        if (fota_flash_sim_is_cut(d->flash))
            fota_flash_sim_power_on(d->flash);
        verify_device(d);
        if (!d->verified)
            unverified++;
        if (d->outcome == OUT_CONFIRMED && d->confirmed_at > last_confirm)
            last_confirm = d->confirmed_at;
    }
    if (!fl->o.has_until) {
        /* Without a target version, "settled" is every device idle. */
        settled = 1;
        for (unsigned i = 0; i < fl->o.devices; i++) {
            if (fl->devs[i].outcome == OUT_NONE)
                settled = 0;
        }
    }
    memory_read(&mem);
    tally_take(fl, &t);
    if (fl->o.json)
        print_summary_json(fl, &t, elapsed, last_confirm, unverified, settled, &mem);
    else
        print_summary_text(fl, &t, elapsed, last_confirm, unverified, settled, &mem);
    fflush(stdout);
    if (settled && unverified == 0 && !interrupted)
        status = SIM_EXIT_OK;
out:
    fleet_free(fl);
    if (http_ready)
        fota_posix_http_global_cleanup();
    if (sync_ready) {
        pthread_mutex_destroy(&fl->lock);
        pthread_cond_destroy(&fl->cond);
    }
    free(threads);
    free(fl);
    return status;
}
