/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The device as the agent reports it: which slot runs, its version, and the
 * state of both slots, from the boot state (lib/boot_state.c) and the image
 * headers. The running image is not verified again (the bootloader did that
 * before it ran it); the other slot is, when asked, so that an old image
 * below the stored security counter or a half-written one is reported as
 * "invalid" and not as a fallback it is not.
 */
#include <stdio.h>
#include <string.h>

#include "agent_internal.h"

void agent_version_string(const struct fota_image_header *h, char *out, size_t out_len)
{
    /* As `fota image sign` and `fota image inspect` write it: "+BUILD" only
     * when the build number is not 0. */
    if (h->build != 0)
        snprintf(out, out_len, "%u.%u.%u+%lu", (unsigned)h->major, (unsigned)h->minor,
                 (unsigned)h->patch, (unsigned long)h->build);
    else
        snprintf(out, out_len, "%u.%u.%u", (unsigned)h->major, (unsigned)h->minor,
                 (unsigned)h->patch);
}

int agent_version_same(const char *a, const char *b)
{
    size_t la = strcspn(a, "+");
    size_t lb = strcspn(b, "+");

    return la == lb && memcmp(a, b, la) == 0;
}

void agent_verify_cache_drop(struct fota_agent *a)
{
    a->verify_cache_valid = 0;
}

static fota_err area_read(void *ctx, uint32_t off, void *buf, size_t len)
{
    return fota_flash_area_read(ctx, off, buf, len);
}

static fota_err verify_slot(struct fota_agent *a, int slot, uint32_t min_counter)
{
    const struct fota_device *dev = a->dev;
    struct fota_image_policy p;

    memset(&p, 0, sizeof p);
    p.keys = dev->keys;
    p.n_keys = dev->n_keys;
    p.threshold = dev->threshold;
    p.hardware_id = dev->hardware_id;
    p.min_security_counter = min_counter;
    p.max_len = dev->slot[slot].size;
    return fota_image_verify(area_read, (void *)&dev->slot[slot], &p, dev->scratch,
                             dev->scratch_len, NULL);
}

static int all_erased(const uint8_t *raw, size_t len, uint8_t erased)
{
    for (size_t i = 0; i < len; i++) {
        if (raw[i] != erased)
            return 0;
    }
    return 1;
}

fota_err agent_view_load(struct fota_agent *a, int verify_other, struct agent_view *ret)
{
    const struct fota_device *dev = a->dev;
    struct agent_view v;
    struct agent_download dl;
    int dl_slot = -1;
    fota_err err;

    memset(&v, 0, sizeof v);
    err = fota_boot_running_slot(dev, &v.running_slot, &v.st);
    if (err != FOTA_OK)
        return err;
    if (agent_download_load(a, &dl) == FOTA_OK)
        dl_slot = dl.slot;
    for (int s = 0; s < 2; s++) {
        struct agent_slot_view *sv = &v.slots[s];
        uint8_t raw[FOTA_IMAGE_HEADER_LEN];

        err = fota_flash_area_read(&dev->slot[s], 0, raw, sizeof raw);
        if (err != FOTA_OK)
            return err;
        if (fota_image_header_decode(raw, &sv->header) != FOTA_OK) {
            sv->state = all_erased(raw, sizeof raw, dev->slot[s].dev->erased_value) ? "empty"
                                                                                    : "invalid";
            continue;
        }
        sv->has_header = 1;
        agent_version_string(&sv->header, sv->version, sizeof sv->version);
        if (s == v.running_slot) {
            sv->state = v.st.pending && v.st.trial ? "trial" : "confirmed";
        } else if (v.st.pending && !v.st.trial) {
            sv->state = "pending";
        } else if (s == dl_slot || sv->header.security_counter < v.st.security_counter) {
            sv->state = "invalid";
        } else if (!verify_other) {
            sv->state = "confirmed";
        } else {
            if (!a->verify_cache_valid || a->verify_cache_seq != v.st.seq ||
                a->verify_cache_slot != s) {
                err = verify_slot(a, s, v.st.security_counter);
                if (err == FOTA_E_IO || err == FOTA_E_POWER || err == FOTA_E_FLASH ||
                    err == FOTA_E_NOMEM || err == FOTA_E_INVALID)
                    return err;
                a->verify_cache_valid = 1;
                a->verify_cache_seq = v.st.seq;
                a->verify_cache_slot = s;
                a->verify_cache_result = err;
            }
            sv->state = a->verify_cache_result == FOTA_OK ? "confirmed" : "invalid";
        }
    }
    v.running_ok = v.slots[v.running_slot].has_header;
    *ret = v;
    return FOTA_OK;
}
