/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Simulated NOR flash in memory or in a MAP_SHARED file, with the rules of
 * include/fota/flash.h and power-cut injection (see flash_file.h).
 *
 * Both variants keep the bytes in one contiguous buffer so that the power-cut
 * simulator can replay an update thousands of times at memcpy speed; the
 * file variant only differs in where that buffer comes from.
 */
#include "flash_file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fota/boot.h"

struct fota_flash_sim {
    struct fota_flash dev;      /* dev.ctx points back to this struct */
    uint8_t *mem;
    int mapped;                 /* 1: mem is an mmap of a file */
    int cut;                    /* 1: power is off */
    uint64_t countdown;         /* operations left before the cut; 0: disarmed */
    enum fota_flash_cut_mode mode;
    uint64_t rng;
    struct fota_flash_stats stats;
};

static int is_pow2(uint32_t v)
{
    return v != 0 && (v & (v - 1)) == 0;
}

static int geometry_ok(const struct fota_flash_geometry *g)
{
    if (g == NULL)
        return 0;
    if (!is_pow2(g->sector_size) || !is_pow2(g->write_align))
        return 0;
    if (g->write_align > g->sector_size || g->write_align > FOTA_FLASH_MAX_ALIGN)
        return 0;
    return g->size != 0 && g->size % g->sector_size == 0;
}

/* splitmix64: tiny, fast, and good enough to pick cut lengths and garbage. */
static uint64_t rng_next(struct fota_flash_sim *s)
{
    uint64_t z;

    s->rng += 0x9e3779b97f4a7c15ull;
    z = s->rng;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static void fill_garbage(struct fota_flash_sim *s, uint8_t *p, size_t len)
{
    while (len > 0) {
        uint64_t r = rng_next(s);
        size_t n = len < sizeof r ? len : sizeof r;

        memcpy(p, &r, n);
        p += n;
        len -= n;
    }
}

static int in_bounds(const struct fota_flash_sim *s, uint32_t off, size_t len)
{
    return off <= s->dev.size && len <= (size_t)(s->dev.size - off);
}

/* Count an operation that passed the rules; 1 when it is the one to cut. */
static int count_op(struct fota_flash_sim *s)
{
    if (s->countdown == 0)
        return 0;
    s->countdown--;
    if (s->countdown != 0)
        return 0;
    s->cut = 1;
    return 1;
}

static fota_err sim_read(void *ctx, uint32_t off, void *buf, size_t len)
{
    struct fota_flash_sim *s = ctx;

    if (s->cut)
        return FOTA_E_POWER;
    if (!in_bounds(s, off, len) || (buf == NULL && len != 0))
        return FOTA_E_FLASH;
    if (len != 0)
        memcpy(buf, s->mem + off, len);
    return FOTA_OK;
}

static fota_err sim_write(void *ctx, uint32_t off, const void *buf, size_t len)
{
    struct fota_flash_sim *s = ctx;
    uint8_t *dst;
    size_t prefix;

    if (s->cut)
        return FOTA_E_POWER;
    if (!in_bounds(s, off, len) || (buf == NULL && len != 0))
        return FOTA_E_FLASH;
    if (off % s->dev.write_align != 0 || len % s->dev.write_align != 0)
        return FOTA_E_FLASH;
    dst = s->mem + off;
    for (size_t i = 0; i < len; i++) {
        if (dst[i] != s->dev.erased_value)
            return FOTA_E_FLASH;
    }
    if (len == 0)
        return FOTA_OK;
    s->stats.writes++;
    if (count_op(s)) {
        if (s->mode == FOTA_FLASH_CUT_TORN) {
            prefix = (size_t)(rng_next(s) % len);
            memcpy(dst, buf, prefix);
            fill_garbage(s, dst + prefix, len - prefix);
        }
        return FOTA_E_POWER;
    }
    memcpy(dst, buf, len);
    s->stats.bytes_written += len;
    return FOTA_OK;
}

static fota_err sim_erase(void *ctx, uint32_t off, size_t len)
{
    struct fota_flash_sim *s = ctx;
    uint8_t *dst;
    size_t prefix;

    if (s->cut)
        return FOTA_E_POWER;
    if (!in_bounds(s, off, len))
        return FOTA_E_FLASH;
    if (off % s->dev.sector_size != 0 || len % s->dev.sector_size != 0)
        return FOTA_E_FLASH;
    if (len == 0)
        return FOTA_OK;
    dst = s->mem + off;
    s->stats.erases++;
    if (count_op(s)) {
        prefix = (size_t)(rng_next(s) % len);
        memset(dst, s->dev.erased_value, prefix);
        if (s->mode == FOTA_FLASH_CUT_TORN)
            fill_garbage(s, dst + prefix, len - prefix);
        return FOTA_E_POWER;
    }
    memset(dst, s->dev.erased_value, len);
    s->stats.sectors_erased += len / s->dev.sector_size;
    return FOTA_OK;
}

static struct fota_flash_sim *sim_new(const struct fota_flash_geometry *g)
{
    struct fota_flash_sim *s = calloc(1, sizeof *s);

    if (s == NULL)
        return NULL;
    s->dev.ctx = s;
    s->dev.size = g->size;
    s->dev.sector_size = g->sector_size;
    s->dev.write_align = g->write_align;
    s->dev.erased_value = g->erased_value;
    s->dev.read = sim_read;
    s->dev.write = sim_write;
    s->dev.erase = sim_erase;
    s->rng = 1;
    return s;
}

fota_err fota_flash_mem_create(const struct fota_flash_geometry *g,
                               struct fota_flash_sim **ret_sim)
{
    struct fota_flash_sim *s;

    if (ret_sim == NULL || !geometry_ok(g))
        return FOTA_E_INVALID;
    s = sim_new(g);
    if (s == NULL)
        return FOTA_E_NOMEM;
    s->mem = malloc(g->size);
    if (s->mem == NULL) {
        free(s);
        return FOTA_E_NOMEM;
    }
    memset(s->mem, g->erased_value, g->size);
    *ret_sim = s;
    return FOTA_OK;
}

fota_err fota_flash_file_open(const char *path, const struct fota_flash_geometry *g,
                              int create, struct fota_flash_sim **ret_sim)
{
    struct fota_flash_geometry geo;
    struct fota_flash_sim *s = NULL;
    struct stat st;
    void *map;
    int fd = -1;
    fota_err err = FOTA_E_INVALID;

    if (path == NULL || g == NULL || ret_sim == NULL)
        goto out;
    geo = *g;
    if (create) {
        if (!geometry_ok(&geo))
            goto out;
        fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    } else {
        fd = open(path, O_RDWR | O_CLOEXEC);
    }
    if (fd < 0) {
        err = errno == ENOENT ? FOTA_E_NOT_FOUND : FOTA_E_IO;
        goto out;
    }
    if (create) {
        if (ftruncate(fd, (off_t)geo.size) != 0) {
            err = FOTA_E_IO;
            goto out;
        }
    } else {
        if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
            err = FOTA_E_IO;
            goto out;
        }
        if (st.st_size <= 0 || (uint64_t)st.st_size > UINT32_MAX)
            goto out;
        if (geo.size == 0)
            geo.size = (uint32_t)st.st_size;
        if ((uint64_t)st.st_size != geo.size || !geometry_ok(&geo))
            goto out;
    }
    map = mmap(NULL, geo.size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (map == MAP_FAILED) {
        err = FOTA_E_IO;
        goto out;
    }
    s = sim_new(&geo);
    if (s == NULL) {
        munmap(map, geo.size);
        err = FOTA_E_NOMEM;
        goto out;
    }
    s->mem = map;
    s->mapped = 1;
    if (create)
        memset(s->mem, geo.erased_value, geo.size);
    *ret_sim = s;
    err = FOTA_OK;
out:
    if (fd >= 0)
        close(fd);
    return err;
}

void fota_flash_sim_close(struct fota_flash_sim *s)
{
    if (s == NULL)
        return;
    if (s->mapped) {
        msync(s->mem, s->dev.size, MS_SYNC);
        munmap(s->mem, s->dev.size);
    } else {
        free(s->mem);
    }
    free(s);
}

const struct fota_flash *fota_flash_sim_dev(const struct fota_flash_sim *s)
{
    return &s->dev;
}

const uint8_t *fota_flash_sim_data(const struct fota_flash_sim *s)
{
    return s->mem;
}

fota_err fota_flash_sim_poke(struct fota_flash_sim *s, uint32_t off, const void *buf, size_t len)
{
    if (!in_bounds(s, off, len) || (buf == NULL && len != 0))
        return FOTA_E_FLASH;
    if (len != 0)
        memcpy(s->mem + off, buf, len);
    return FOTA_OK;
}

fota_err fota_flash_sim_snapshot(const struct fota_flash_sim *s, uint8_t *buf, size_t len)
{
    if (buf == NULL || len != s->dev.size)
        return FOTA_E_INVALID;
    memcpy(buf, s->mem, len);
    return FOTA_OK;
}

fota_err fota_flash_sim_restore(struct fota_flash_sim *s, const uint8_t *buf, size_t len)
{
    if (buf == NULL || len != s->dev.size)
        return FOTA_E_INVALID;
    memcpy(s->mem, buf, len);
    return FOTA_OK;
}

void fota_flash_sim_stats(const struct fota_flash_sim *s, struct fota_flash_stats *ret_stats)
{
    *ret_stats = s->stats;
}

void fota_flash_sim_reset_stats(struct fota_flash_sim *s)
{
    memset(&s->stats, 0, sizeof s->stats);
}

void fota_flash_sim_cut_after(struct fota_flash_sim *s, uint64_t n, enum fota_flash_cut_mode mode)
{
    s->countdown = n;
    s->mode = mode;
}

void fota_flash_sim_seed(struct fota_flash_sim *s, uint64_t seed)
{
    s->rng = seed;
}

int fota_flash_sim_is_cut(const struct fota_flash_sim *s)
{
    return s->cut;
}

void fota_flash_sim_power_on(struct fota_flash_sim *s)
{
    s->cut = 0;
    s->countdown = 0;
}

fota_err fota_flash_default_layout(const struct fota_flash *f, uint32_t slot_size,
                                   struct fota_flash_area ret_state[2],
                                   struct fota_flash_area ret_slot[2])
{
    uint32_t sec;
    uint32_t avail;

    if (f == NULL || ret_state == NULL || ret_slot == NULL || !is_pow2(f->sector_size))
        return FOTA_E_INVALID;
    sec = f->sector_size;
    if (f->size % sec != 0 || f->size / sec < 4)
        return FOTA_E_INVALID;
    avail = f->size - 2 * sec;
    if (slot_size == 0)
        slot_size = avail / 2 / sec * sec;
    if (slot_size == 0 || slot_size % sec != 0 || slot_size > avail / 2)
        return FOTA_E_INVALID;
    for (int i = 0; i < 2; i++) {
        ret_state[i].dev = f;
        ret_state[i].off = (uint32_t)i * sec;
        ret_state[i].size = sec;
        ret_slot[i].dev = f;
        ret_slot[i].off = 2 * sec + (uint32_t)i * slot_size;
        ret_slot[i].size = slot_size;
    }
    return FOTA_OK;
}
