/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fota-boot: the bootloader of the simulated device, run over a flash file,
 * and the device's other state operations (install, confirm, rollback,
 * status) so that shell tests and the demo can drive the device without an
 * agent. The decisions are libfota's (lib/boot.c, lib/install.c); this
 * program only opens the flash, loads the keys and prints. See docs/boot.md.
 *
 * Exit status: 0 success (boot: an image was chosen), 1 the operation failed
 * (boot: no bootable image; install/confirm/rollback refused or failed),
 * 2 usage or setup error (bad option, unreadable key or flash file).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <jansson.h>

#include "flash_file.h"
#include "fota/boot.h"
#include "fota/crypto.h"
#include "fota/error.h"
#include "fota/image.h"
#include "fota_posix.h"
#include "keyfile.h"

#define PROG "fota-boot"
#define EXIT_OK 0
#define EXIT_FAIL 1
#define EXIT_USAGE 2
#define MAX_KEYS 16
#define SCRATCH_LEN 4096
#define INSTALL_CHUNK 4096

enum action { ACT_BOOT, ACT_INSTALL, ACT_CONFIRM, ACT_ROLLBACK, ACT_STATUS, ACT_NONE };

struct options {
    const char *flash;
    const char *keys[MAX_KEYS];
    size_t n_keys;
    const char *hardware;
    unsigned long threshold;
    unsigned long attempts;
    uint32_t sector_size;
    uint32_t write_align;
    uint32_t slot_size;
    uint32_t create_size;       /* 0: open the existing file */
    int json;
    enum action action;
    int n_actions;
    const char *image;
};

static const char usage_text[] =
    "usage: " PROG " --flash FILE [--create SIZE] [geometry] [keys] [--json] [ACTION]\n"
    "\n"
    "Power on the simulated device whose flash is FILE: choose the slot to boot,\n"
    "verifying its image first, and print which slot boots and why.\n"
    "\n"
    "actions (at most one; the default is to boot):\n"
    "  --install IMAGE     write IMAGE into the inactive slot, verify it, mark it pending\n"
    "  --confirm           the image on trial confirms itself (raises the security counter)\n"
    "  --rollback          operator-authorised switch to the other slot's image\n"
    "  --status            print the boot state and both slots' headers\n"
    "\n"
    "flash:\n"
    "  --flash FILE        the flash image file\n"
    "  --create SIZE       create (or wipe) FILE as SIZE bytes of erased flash first\n"
    "                      (suffix K or M allowed); with no action, stop there\n"
    "  --sector-size N     erase unit (default 4096)\n"
    "  --write-align N     program unit (default 8)\n"
    "  --slot-size N       bytes per slot (default: (size - 2 sectors) / 2, sector aligned)\n"
    "\n"
    "trust:\n"
    "  --key FILE          trusted image key: .pub key object, PEM public or private key\n"
    "                      (repeatable; required except for --status and --create)\n"
    "  --hardware HW       this device's hardware id (required except for --status)\n"
    "  --threshold N       valid signatures needed (default 1)\n"
    "  --attempts N        trial boots given to an installed image (default 3, max 255)\n"
    "\n"
    "  --json              machine-readable output\n"
    "  -h, --help          this text\n"
    "\n"
    "exit status: 0 success (an image was chosen), 1 no bootable image or the\n"
    "operation was refused, 2 usage or setup error\n";

#define msg(...) fota_posix_msg(PROG, __VA_ARGS__)

/* A size or count: decimal, optional K (KiB) or M (MiB) suffix when
 * suffix_ok, at most max. */
static int parse_num(const char *opt, const char *s, int suffix_ok, uint64_t max,
                     uint64_t *ret_v)
{
    char *end = NULL;
    unsigned long long v;
    uint64_t mult = 1;

    if (s == NULL || *s < '0' || *s > '9') {
        msg("%s: not a number: %s", opt, s == NULL ? "(missing)" : s);
        return -1;
    }
    errno = 0;
    v = strtoull(s, &end, 10);
    if (errno != 0 || end == s) {
        msg("%s: not a number: %s", opt, s);
        return -1;
    }
    if (suffix_ok && (*end == 'K' || *end == 'k')) {
        mult = 1024;
        end++;
    } else if (suffix_ok && (*end == 'M' || *end == 'm')) {
        mult = 1024 * 1024;
        end++;
    }
    if (*end != '\0' || v > max / mult) {
        msg("%s: out of range: %s", opt, s);
        return -1;
    }
    *ret_v = (uint64_t)v * mult;
    return 0;
}

static int set_action(struct options *o, enum action a)
{
    o->action = a;
    o->n_actions++;
    if (o->n_actions > 1) {
        msg("give at most one of --install, --confirm, --rollback, --status");
        return -1;
    }
    return 0;
}

/* 0 ok, 1 help printed, -1 usage error (message printed). */
static int parse_args(int argc, char **argv, struct options *o)
{
    uint64_t v = 0;

    memset(o, 0, sizeof *o);
    o->threshold = 1;
    o->attempts = FOTA_BOOT_ATTEMPTS_DEFAULT;
    o->sector_size = 4096;
    o->write_align = 8;
    o->action = ACT_BOOT;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *val = i + 1 < argc ? argv[i + 1] : NULL;
        int takes = 1;

        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            fputs(usage_text, stdout);
            return 1;
        } else if (strcmp(a, "--json") == 0) {
            o->json = 1;
            takes = 0;
        } else if (strcmp(a, "--confirm") == 0) {
            takes = 0;
            if (set_action(o, ACT_CONFIRM) != 0)
                return -1;
        } else if (strcmp(a, "--rollback") == 0) {
            takes = 0;
            if (set_action(o, ACT_ROLLBACK) != 0)
                return -1;
        } else if (strcmp(a, "--status") == 0) {
            takes = 0;
            if (set_action(o, ACT_STATUS) != 0)
                return -1;
        } else if (val == NULL) {
            msg("%s: unknown option or missing value (try --help)", a);
            return -1;
        } else if (strcmp(a, "--flash") == 0) {
            o->flash = val;
        } else if (strcmp(a, "--key") == 0) {
            if (o->n_keys == MAX_KEYS) {
                msg("--key: at most %d keys", MAX_KEYS);
                return -1;
            }
            o->keys[o->n_keys++] = val;
        } else if (strcmp(a, "--hardware") == 0) {
            o->hardware = val;
        } else if (strcmp(a, "--install") == 0) {
            o->image = val;
            if (set_action(o, ACT_INSTALL) != 0)
                return -1;
        } else if (strcmp(a, "--threshold") == 0) {
            if (parse_num(a, val, 0, MAX_KEYS, &v) != 0)
                return -1;
            if (v == 0) {
                msg("--threshold: must be 1 to %d", MAX_KEYS);
                return -1;
            }
            o->threshold = (unsigned long)v;
        } else if (strcmp(a, "--attempts") == 0) {
            if (parse_num(a, val, 0, 255, &v) != 0)
                return -1;
            o->attempts = (unsigned long)v;
        } else if (strcmp(a, "--sector-size") == 0) {
            if (parse_num(a, val, 1, UINT32_MAX, &v) != 0)
                return -1;
            o->sector_size = (uint32_t)v;
        } else if (strcmp(a, "--write-align") == 0) {
            if (parse_num(a, val, 0, FOTA_FLASH_MAX_ALIGN, &v) != 0)
                return -1;
            o->write_align = (uint32_t)v;
        } else if (strcmp(a, "--slot-size") == 0) {
            if (parse_num(a, val, 1, UINT32_MAX, &v) != 0)
                return -1;
            o->slot_size = (uint32_t)v;
        } else if (strcmp(a, "--create") == 0) {
            if (parse_num(a, val, 1, UINT32_MAX, &v) != 0)
                return -1;
            if (v == 0) {
                msg("--create: size must not be 0");
                return -1;
            }
            o->create_size = (uint32_t)v;
        } else {
            msg("%s: unknown option (try --help)", a);
            return -1;
        }
        i += takes;
    }
    if (o->flash == NULL) {
        msg("--flash FILE is required (try --help)");
        return -1;
    }
    if (o->create_size != 0 && o->n_actions == 0)
        o->action = ACT_NONE;
    if (o->action != ACT_STATUS && o->action != ACT_NONE) {
        if (o->n_keys == 0 || o->hardware == NULL) {
            msg("--key and --hardware are required (try --help)");
            return -1;
        }
        if (o->threshold > o->n_keys) {
            msg("--threshold %lu is more than the %zu keys given", o->threshold, o->n_keys);
            return -1;
        }
    }
    return 0;
}

struct device {
    struct fota_flash_sim *sim;
    struct fota_image_key keys[MAX_KEYS];
    struct fota_device dev;
    uint8_t scratch[SCRATCH_LEN];
};

static void device_close(struct device *d)
{
    fota_keyfile_free_image_keys(d->keys, MAX_KEYS);
    fota_flash_sim_close(d->sim);
}

static int device_open(const struct options *o, struct device *d)
{
    struct fota_flash_geometry g = {
        .size = o->create_size,
        .sector_size = o->sector_size,
        .write_align = o->write_align,
        .erased_value = 0xff,
    };
    size_t bad = 0;
    fota_err err;

    err = fota_flash_file_open(o->flash, &g, o->create_size != 0, &d->sim);
    if (err != FOTA_OK) {
        msg("%s: cannot open the flash file: %s (sector size %u, write align %u)", o->flash,
            fota_strerror(err), (unsigned)o->sector_size, (unsigned)o->write_align);
        return -1;
    }
    err = fota_flash_default_layout(fota_flash_sim_dev(d->sim), o->slot_size, d->dev.state,
                                    d->dev.slot);
    if (err != FOTA_OK) {
        msg("%s: flash of %u bytes cannot hold the layout (2 state sectors, 2 slots%s)",
            o->flash, (unsigned)fota_flash_sim_dev(d->sim)->size,
            o->slot_size != 0 ? " of --slot-size" : "");
        return -1;
    }
    err = fota_keyfile_load_image_keys(o->keys, o->n_keys, d->keys, &bad);
    if (err != FOTA_OK) {
        if (err == FOTA_E_DUPLICATE)
            msg("%s: the same key as an earlier --key", o->keys[bad]);
        else
            msg("%s: not a usable key: %s%s", o->keys[bad], fota_strerror(err),
                err == FOTA_E_UNSUPPORTED ? " (images are signed with ed25519 or ecdsa)" : "");
        return -1;
    }
    d->dev.keys = d->keys;
    d->dev.n_keys = o->n_keys;
    d->dev.threshold = (unsigned)o->threshold;
    d->dev.hardware_id = o->hardware != NULL ? o->hardware : "";
    d->dev.trial_attempts = (unsigned)o->attempts;
    d->dev.scratch = d->scratch;
    d->dev.scratch_len = sizeof d->scratch;
    return 0;
}

static char slot_name(int slot)
{
    return slot == 0 ? 'A' : 'B';
}

static void version_string(const struct fota_image_header *h, char *buf, size_t len)
{
    snprintf(buf, len, "%u.%u.%u+%lu", (unsigned)h->major, (unsigned)h->minor,
             (unsigned)h->patch, (unsigned long)h->build);
}

static json_t *state_json(const struct fota_boot_state *st)
{
    return json_pack("{s:I,s:s,s:b,s:i,s:b,s:I}", "seq", (json_int_t)st->seq, "active",
                     st->active == 0 ? "A" : "B", "pending", st->pending != 0, "attempts_left",
                     (int)st->attempts_left, "trial", st->trial != 0, "security_counter",
                     (json_int_t)st->security_counter);
}

static json_t *image_json(const struct fota_image_header *h)
{
    char ver[64];

    version_string(h, ver, sizeof ver);
    return json_pack("{s:s,s:I,s:s,s:I}", "version", ver, "security_counter",
                     (json_int_t)h->security_counter, "hardware_id", h->hardware_id,
                     "payload_len", (json_int_t)h->payload_len);
}

static json_t *flash_json(const struct device *d)
{
    struct fota_flash_stats s;

    fota_flash_sim_stats(d->sim, &s);
    return json_pack("{s:I,s:I}", "writes", (json_int_t)s.writes, "erases",
                     (json_int_t)s.erases);
}

static void print_json(json_t *obj)
{
    char *text = NULL;

    if (obj != NULL)
        text = json_dumps(obj, JSON_SORT_KEYS | JSON_COMPACT);
    if (text == NULL) {
        msg("out of memory");
        return;
    }
    puts(text);
    free(text);
    json_decref(obj);
}

static fota_err area_read(void *ctx, uint32_t off, void *buf, size_t len)
{
    return fota_flash_area_read(ctx, off, buf, len);
}

/* Why a slot does not boot, for the "no bootable image" line. */
static fota_err slot_reason(struct device *d, int slot, uint32_t min_counter)
{
    struct fota_image_policy p = {0};
    struct fota_flash_area *area = &d->dev.slot[slot];

    p.keys = d->dev.keys;
    p.n_keys = d->dev.n_keys;
    p.threshold = d->dev.threshold;
    p.hardware_id = d->dev.hardware_id;
    p.min_security_counter = min_counter;
    p.max_len = area->size;
    return fota_image_verify(area_read, area, &p, d->scratch,
                             sizeof d->scratch, NULL);
}

static int do_boot(const struct options *o, struct device *d)
{
    struct fota_boot_decision dec;
    struct fota_boot_state st;
    char ver[64];
    char why[160];
    fota_err err;

    err = fota_boot(&d->dev, &dec);
    if (err != FOTA_OK) {
        fota_err ra = FOTA_E_NO_IMAGE;
        fota_err rb = FOTA_E_NO_IMAGE;

        if (err == FOTA_E_NO_IMAGE && fota_boot_state_load(&d->dev, &st) == FOTA_OK) {
            ra = slot_reason(d, 0, st.security_counter);
            rb = slot_reason(d, 1, st.security_counter);
        }
        if (o->json) {
            print_json(json_pack("{s:s,s:s,s:s,s:s,s:o}", "result", "no-image", "error",
                                 fota_strerror(err), "slot_a", fota_strerror(ra), "slot_b",
                                 fota_strerror(rb), "flash", flash_json(d)));
        } else if (err == FOTA_E_NO_IMAGE) {
            printf("no bootable image: slot A: %s, slot B: %s\n", fota_strerror(ra),
                   fota_strerror(rb));
        } else {
            printf("no boot decision: %s\n", fota_strerror(err));
        }
        return EXIT_FAIL;
    }
    version_string(&dec.image.header, ver, sizeof ver);
    switch (dec.reason) {
    case FOTA_BOOT_TRIAL:
        snprintf(why, sizeof why, "trial (%u attempt%s left)", (unsigned)dec.state.attempts_left,
                 dec.state.attempts_left == 1 ? "" : "s");
        break;
    case FOTA_BOOT_REVERTED_ATTEMPTS:
        snprintf(why, sizeof why, "reverted: slot %c ran out of trial attempts",
                 slot_name(1 - dec.slot));
        break;
    case FOTA_BOOT_REVERTED_INVALID:
        snprintf(why, sizeof why, "reverted: pending slot %c rejected (%s)",
                 slot_name(1 - dec.slot), fota_strerror(dec.rejected));
        break;
    case FOTA_BOOT_FALLBACK:
        snprintf(why, sizeof why, "fallback: slot %c rejected (%s)", slot_name(1 - dec.slot),
                 fota_strerror(dec.rejected));
        break;
    default:
        snprintf(why, sizeof why, "confirmed");
        break;
    }
    if (o->json) {
        char slot[2] = {slot_name(dec.slot), '\0'};

        print_json(json_pack("{s:s,s:s,s:s,s:o,s:o,s:s*,s:o}", "result", "boot", "slot", slot,
                             "reason", fota_boot_reason_name(dec.reason), "image",
                             image_json(&dec.image.header), "state", state_json(&dec.state),
                             "rejected",
                             dec.rejected == FOTA_OK ? NULL : fota_strerror(dec.rejected),
                             "flash", flash_json(d)));
    } else {
        printf("booting slot %c: %s, security counter %lu, %s\n", slot_name(dec.slot), ver,
               (unsigned long)dec.image.header.security_counter, why);
    }
    return EXIT_OK;
}

struct hash_sink {
    fota_sha256 h;
};

static fota_err hash_chunk(void *ctx, const uint8_t *data, size_t len)
{
    struct hash_sink *s = ctx;

    fota_sha256_update(&s->h, data, len);
    return FOTA_OK;
}

static fota_err install_chunk(void *ctx, const uint8_t *data, size_t len)
{
    struct fota_install *in = ctx;
    fota_err err = FOTA_OK;

    /* Fixed pieces, whatever the file reader's chunk size: the counters then
     * describe an agent that receives the image in INSTALL_CHUNK blocks. */
    while (len > 0 && err == FOTA_OK) {
        size_t n = len < INSTALL_CHUNK ? len : INSTALL_CHUNK;

        err = fota_install_write(in, data, n);
        data += n;
        len -= n;
    }
    return err;
}

static int do_install(const struct options *o, struct device *d)
{
    struct hash_sink hs;
    struct fota_install in;
    struct fota_image_info info;
    struct fota_boot_state st;
    uint8_t digest[32];
    uint32_t slot_size = d->dev.slot[0].size;
    uint64_t total = 0;
    char ver[64];
    fota_err err;
    const char *stage = "read";

    /* The agent would take length and SHA-256 from signed metadata; here
     * they are the file's own, so this checks only the image signature. */
    fota_sha256_init(&hs.h);
    err = fota_posix_file_stream(o->image, slot_size, hash_chunk, &hs);
    fota_sha256_final(&hs.h, digest);
    if (err == FOTA_OK) {
        struct stat sb;

        /* file_stream capped the size at the slot size, so it fits 32 bits */
        if (stat(o->image, &sb) != 0 || sb.st_size < 0 || (uint64_t)sb.st_size > slot_size)
            err = FOTA_E_IO;
        else
            total = (uint64_t)sb.st_size;
    }
    if (err != FOTA_OK) {
        msg("%s: %s", o->image, err == FOTA_E_LENGTH ? "larger than a slot" : fota_strerror(err));
        return err == FOTA_E_LENGTH ? EXIT_FAIL : EXIT_USAGE;
    }
    fota_flash_sim_reset_stats(d->sim);
    stage = "begin";
    err = fota_install_begin(&in, &d->dev, (uint32_t)total, digest);
    if (err == FOTA_OK) {
        stage = "write";
        err = fota_posix_file_stream(o->image, slot_size, install_chunk, &in);
        if (err != FOTA_OK)
            fota_install_abort(&in);
    }
    if (err == FOTA_OK) {
        stage = "finish";
        err = fota_install_finish(&in, &info);
    }
    if (err == FOTA_OK)
        err = fota_boot_state_load(&d->dev, &st);
    if (err != FOTA_OK) {
        if (o->json)
            print_json(json_pack("{s:s,s:s,s:s,s:o}", "result", "install-failed", "stage", stage,
                                 "error", fota_strerror(err), "flash", flash_json(d)));
        else
            printf("install refused at %s: %s\n", stage, fota_strerror(err));
        return EXIT_FAIL;
    }
    version_string(&info.header, ver, sizeof ver);
    if (o->json) {
        char slot[2] = {slot_name(1 - st.active), '\0'};

        print_json(json_pack("{s:s,s:s,s:o,s:o,s:o}", "result", "installed", "slot", slot,
                             "image", image_json(&info.header), "state", state_json(&st),
                             "flash", flash_json(d)));
    } else {
        printf("installed %s (security counter %lu) into slot %c: pending, %u trial attempt%s\n",
               ver, (unsigned long)info.header.security_counter, slot_name(1 - st.active),
               (unsigned)st.attempts_left, st.attempts_left == 1 ? "" : "s");
    }
    return EXIT_OK;
}

/* "<what> refused: <reason>", or {"result":"<what>-failed","error":...}. */
static int refused(const struct options *o, const char *what, fota_err err)
{
    char result[32];

    if (o->json) {
        snprintf(result, sizeof result, "%s-failed", what);
        print_json(json_pack("{s:s,s:s}", "result", result, "error", fota_strerror(err)));
    } else {
        printf("%s refused: %s\n", what, fota_strerror(err));
    }
    return EXIT_FAIL;
}

static int do_confirm(const struct options *o, struct device *d)
{
    struct fota_boot_state before;
    struct fota_boot_state after;
    fota_err err;

    err = fota_boot_state_load(&d->dev, &before);
    if (err == FOTA_OK)
        err = fota_boot_confirm(&d->dev);
    if (err == FOTA_OK)
        err = fota_boot_state_load(&d->dev, &after);
    if (err != FOTA_OK)
        return refused(o, "confirm", err);
    if (o->json) {
        print_json(json_pack("{s:s,s:b,s:o}", "result", "confirmed", "changed",
                             after.seq != before.seq, "state", state_json(&after)));
    } else if (after.seq != before.seq) {
        printf("confirmed slot %c: active, security counter %lu\n", slot_name(after.active),
               (unsigned long)after.security_counter);
    } else {
        printf("nothing on trial: slot %c stays active\n", slot_name(after.active));
    }
    return EXIT_OK;
}

static int do_rollback(const struct options *o, struct device *d)
{
    struct fota_boot_state st;
    fota_err err;

    err = fota_boot_rollback(&d->dev);
    if (err == FOTA_OK)
        err = fota_boot_state_load(&d->dev, &st);
    if (err != FOTA_OK)
        return refused(o, "rollback", err);
    if (o->json)
        print_json(json_pack("{s:s,s:o}", "result", "rolled-back", "state", state_json(&st)));
    else
        printf("rolled back: slot %c is active\n", slot_name(st.active));
    return EXIT_OK;
}

static json_t *slot_status(struct device *d, const struct options *o, int slot,
                           uint32_t min_counter, char *line, size_t line_len)
{
    uint8_t raw[FOTA_IMAGE_HEADER_LEN];
    struct fota_image_header h;
    fota_err verr = FOTA_E_NO_IMAGE;
    json_t *obj;
    char ver[64];
    fota_err err;

    err = fota_flash_area_read(&d->dev.slot[slot], 0, raw, sizeof raw);
    if (err == FOTA_OK)
        err = fota_image_header_decode(raw, &h);
    if (o->n_keys > 0)
        verr = slot_reason(d, slot, min_counter);
    if (err != FOTA_OK) {
        snprintf(line, line_len, "slot %c: no image header (%s)", slot_name(slot),
                 fota_strerror(err));
        return json_pack("{s:n,s:s*}", "image", "verify",
                         o->n_keys > 0 ? fota_strerror(verr) : NULL);
    }
    version_string(&h, ver, sizeof ver);
    snprintf(line, line_len, "slot %c: %s, security counter %lu, hardware %s, payload %lu bytes%s%s",
             slot_name(slot), ver, (unsigned long)h.security_counter, h.hardware_id,
             (unsigned long)h.payload_len, o->n_keys > 0 ? ", verify: " : "",
             o->n_keys > 0 ? fota_strerror(verr) : "");
    obj = json_pack("{s:o,s:s*}", "image", image_json(&h), "verify",
                    o->n_keys > 0 ? fota_strerror(verr) : NULL);
    return obj;
}

static int do_status(const struct options *o, struct device *d)
{
    uint8_t raw[FOTA_BOOT_STATE_LEN];
    struct fota_boot_state copy[2];
    struct fota_boot_state st;
    int valid[2];
    char lines[2][256];
    json_t *slots[2];
    fota_err err;

    for (int i = 0; i < 2; i++) {
        err = fota_flash_area_read(&d->dev.state[i], 0, raw, sizeof raw);
        if (err != FOTA_OK) {
            msg("cannot read the boot state: %s", fota_strerror(err));
            return EXIT_FAIL;
        }
        valid[i] = fota_boot_state_decode(raw, &copy[i]) == FOTA_OK;
    }
    err = fota_boot_state_load(&d->dev, &st);
    if (err != FOTA_OK) {
        msg("cannot load the boot state: %s", fota_strerror(err));
        return EXIT_FAIL;
    }
    for (int i = 0; i < 2; i++)
        slots[i] = slot_status(d, o, i, st.security_counter, lines[i], sizeof lines[i]);
    if (o->json) {
        json_t *copies = json_array();

        for (int i = 0; i < 2; i++) {
            if (valid[i])
                json_array_append_new(copies, json_pack("{s:b,s:I}", "valid", 1, "seq",
                                                        (json_int_t)copy[i].seq));
            else
                json_array_append_new(copies, json_pack("{s:b}", "valid", 0));
        }
        print_json(json_pack("{s:s,s:o,s:o,s:o,s:o}", "result", "status", "state",
                             state_json(&st), "copies", copies, "slot_a", slots[0], "slot_b",
                             slots[1]));
        return EXIT_OK;
    }
    printf("state: seq %lu, active %c, %s, security counter %lu%s\n", (unsigned long)st.seq,
           slot_name(st.active),
           st.pending ? (st.trial ? "pending on trial" : "pending") : "nothing pending",
           (unsigned long)st.security_counter, (!valid[0] && !valid[1]) ? " (factory)" : "");
    if (st.pending)
        printf("  attempts left: %u\n", (unsigned)st.attempts_left);
    for (int i = 0; i < 2; i++) {
        if (valid[i])
            printf("  copy %d: seq %lu\n", i, (unsigned long)copy[i].seq);
        else
            printf("  copy %d: invalid or erased\n", i);
    }
    for (int i = 0; i < 2; i++) {
        printf("%s\n", lines[i]);
        json_decref(slots[i]);
    }
    return EXIT_OK;
}

int main(int argc, char **argv)
{
    struct options o;
    static struct device d;
    int status;
    int rc;

    rc = parse_args(argc, argv, &o);
    if (rc != 0)
        return rc > 0 ? EXIT_OK : EXIT_USAGE;
    if (device_open(&o, &d) != 0) {
        device_close(&d);
        return EXIT_USAGE;
    }
    switch (o.action) {
    case ACT_INSTALL:
        status = do_install(&o, &d);
        break;
    case ACT_CONFIRM:
        status = do_confirm(&o, &d);
        break;
    case ACT_ROLLBACK:
        status = do_rollback(&o, &d);
        break;
    case ACT_STATUS:
        status = do_status(&o, &d);
        break;
    case ACT_NONE:
        status = EXIT_OK;
        break;
    default:
        status = do_boot(&o, &d);
        break;
    }
    device_close(&d);
    return status;
}
