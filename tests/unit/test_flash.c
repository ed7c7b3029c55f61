/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The flash rules (ports/posix/flash_file.c), the area helpers
 * (lib/flash.c), the simulator's fault injection and counters.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "flash_file.h"
#include "fota/flash.h"

#include "test_util.h"

#define SEC 4096u
#define ALIGN 8u
#define NSEC 8u

static const struct fota_flash_geometry geo = {
    .size = SEC * NSEC, .sector_size = SEC, .write_align = ALIGN, .erased_value = 0xff};

static struct fota_flash_sim *new_sim(void)
{
    struct fota_flash_sim *s = NULL;

    assert_int_equal(fota_flash_mem_create(&geo, &s), FOTA_OK);
    return s;
}

static int all_equal(const uint8_t *p, size_t len, uint8_t v)
{
    for (size_t i = 0; i < len; i++) {
        if (p[i] != v)
            return 0;
    }
    return 1;
}

static void pattern(uint8_t *buf, size_t len, uint8_t seed)
{
    for (size_t i = 0; i < len; i++)
        buf[i] = (uint8_t)(seed + i * 7u);
}

/* ---- geometry ------------------------------------------------------------- */

static void test_geometry_checked(void **state)
{
    struct fota_flash_geometry g = geo;
    struct fota_flash_sim *s = NULL;

    (void)state;
    g.sector_size = 3000;
    assert_int_equal(fota_flash_mem_create(&g, &s), FOTA_E_INVALID);
    g = geo;
    g.write_align = 128;   /* over FOTA_FLASH_MAX_ALIGN */
    assert_int_equal(fota_flash_mem_create(&g, &s), FOTA_E_INVALID);
    g = geo;
    g.write_align = 6;
    assert_int_equal(fota_flash_mem_create(&g, &s), FOTA_E_INVALID);
    g = geo;
    g.size = SEC * NSEC + 1;
    assert_int_equal(fota_flash_mem_create(&g, &s), FOTA_E_INVALID);
    g = geo;
    g.size = 0;
    assert_int_equal(fota_flash_mem_create(&g, &s), FOTA_E_INVALID);
    assert_null(s);

    s = new_sim();
    assert_true(all_equal(fota_flash_sim_data(s), geo.size, 0xff));
    assert_int_equal(fota_flash_sim_dev(s)->size, geo.size);
    fota_flash_sim_close(s);
    fota_flash_sim_close(NULL);
}

/* ---- rules ---------------------------------------------------------------- */

static void test_write_only_to_erased(void **state)
{
    struct fota_flash_sim *s = new_sim();
    const struct fota_flash *f = fota_flash_sim_dev(s);
    uint8_t a[32], b[32], before[64];

    (void)state;
    pattern(a, sizeof a, 1);
    pattern(b, sizeof b, 2);
    assert_int_equal(f->write(f->ctx, 64, a, 16), FOTA_OK);
    assert_memory_equal(fota_flash_sim_data(s) + 64, a, 16);

    /* Overlapping the written unit: refused, and not one byte changes, not
     * even in the erased part of the range. */
    memcpy(before, fota_flash_sim_data(s) + 48, sizeof before);
    assert_int_equal(f->write(f->ctx, 48, b, 32), FOTA_E_FLASH);
    assert_memory_equal(fota_flash_sim_data(s) + 48, before, sizeof before);
    /* Even writing the same bytes again, or all-ones, is refused. */
    assert_int_equal(f->write(f->ctx, 64, a, 16), FOTA_E_FLASH);
    memset(b, 0xff, sizeof b);
    assert_int_equal(f->write(f->ctx, 64, b, 8), FOTA_E_FLASH);
    assert_memory_equal(fota_flash_sim_data(s) + 48, before, sizeof before);

    /* After an erase of its sector it can be written again. */
    assert_int_equal(f->erase(f->ctx, 0, SEC), FOTA_OK);
    assert_true(all_equal(fota_flash_sim_data(s), SEC, 0xff));
    assert_int_equal(f->write(f->ctx, 64, a, 16), FOTA_OK);
    fota_flash_sim_close(s);
}

static void test_alignment_and_bounds(void **state)
{
    struct fota_flash_sim *s = new_sim();
    const struct fota_flash *f = fota_flash_sim_dev(s);
    uint8_t buf[64];
    struct fota_flash_stats st;

    (void)state;
    memset(buf, 0x11, sizeof buf);
    assert_int_equal(f->write(f->ctx, 4, buf, 8), FOTA_E_FLASH);        /* offset */
    assert_int_equal(f->write(f->ctx, 8, buf, 12), FOTA_E_FLASH);       /* length */
    assert_int_equal(f->write(f->ctx, geo.size - 8, buf, 16), FOTA_E_FLASH);
    assert_int_equal(f->write(f->ctx, UINT32_MAX - 7, buf, 16), FOTA_E_FLASH);
    assert_int_equal(f->write(f->ctx, geo.size, buf, 8), FOTA_E_FLASH);
    assert_int_equal(f->erase(f->ctx, SEC / 2, SEC), FOTA_E_FLASH);     /* partial sector */
    assert_int_equal(f->erase(f->ctx, 0, SEC / 2), FOTA_E_FLASH);
    assert_int_equal(f->erase(f->ctx, SEC * (NSEC - 1), 2 * SEC), FOTA_E_FLASH);
    assert_int_equal(f->erase(f->ctx, UINT32_MAX - SEC + 1, SEC), FOTA_E_FLASH);
    assert_int_equal(f->read(f->ctx, geo.size - 4, buf, 8), FOTA_E_FLASH);
    assert_int_equal(f->read(f->ctx, UINT32_MAX, buf, 2), FOTA_E_FLASH);
    assert_true(all_equal(fota_flash_sim_data(s), geo.size, 0xff));

    /* Reads work at any offset and length inside. */
    assert_int_equal(f->read(f->ctx, 3, buf, 5), FOTA_OK);
    assert_int_equal(f->read(f->ctx, geo.size - 1, buf, 1), FOTA_OK);
    /* Refused operations are not counted; zero-length ones neither. */
    assert_int_equal(f->write(f->ctx, 0, buf, 0), FOTA_OK);
    assert_int_equal(f->erase(f->ctx, 0, 0), FOTA_OK);
    fota_flash_sim_stats(s, &st);
    assert_int_equal(st.writes, 0);
    assert_int_equal(st.erases, 0);
    fota_flash_sim_close(s);
}

/* ---- areas ---------------------------------------------------------------- */

static void test_area_helpers(void **state)
{
    struct fota_flash_sim *s = new_sim();
    const struct fota_flash *f = fota_flash_sim_dev(s);
    struct fota_flash_area a = {.dev = f, .off = 2 * SEC, .size = 2 * SEC};
    struct fota_flash_area bad;
    uint8_t buf[32], back[32];

    (void)state;
    assert_true(fota_flash_area_valid(&a));
    bad = a;
    bad.off = SEC / 2;
    assert_false(fota_flash_area_valid(&bad));
    bad = a;
    bad.size = SEC + 8;
    assert_false(fota_flash_area_valid(&bad));
    bad = a;
    bad.off = 7 * SEC;     /* runs past the device */
    assert_false(fota_flash_area_valid(&bad));
    bad = a;
    bad.off = UINT32_MAX - SEC + 1;
    bad.size = 2 * SEC;
    assert_false(fota_flash_area_valid(&bad));
    bad = a;
    bad.size = 0;
    assert_false(fota_flash_area_valid(&bad));
    assert_false(fota_flash_area_valid(NULL));
    assert_int_equal(fota_flash_area_read(&bad, 0, buf, 1), FOTA_E_FLASH);

    /* Offsets are relative to the area. */
    pattern(buf, sizeof buf, 9);
    assert_int_equal(fota_flash_area_write(&a, 8, buf, sizeof buf), FOTA_OK);
    assert_memory_equal(fota_flash_sim_data(s) + 2 * SEC + 8, buf, sizeof buf);
    assert_int_equal(fota_flash_area_read(&a, 8, back, sizeof back), FOTA_OK);
    assert_memory_equal(back, buf, sizeof buf);

    /* Leaving the area is refused even where the device would allow it. */
    assert_int_equal(fota_flash_area_write(&a, 2 * SEC - 8, buf, 16), FOTA_E_FLASH);
    assert_int_equal(fota_flash_area_read(&a, 2 * SEC, buf, 1), FOTA_E_FLASH);
    assert_int_equal(fota_flash_area_read(&a, UINT32_MAX - 3, buf, 8), FOTA_E_FLASH);
    assert_int_equal(fota_flash_area_erase(&a, 2 * SEC, SEC), FOTA_E_FLASH);
    assert_int_equal(fota_flash_area_erase(&a, SEC, 2 * SEC), FOTA_E_FLASH);
    /* Alignment is checked before the port sees the request. */
    assert_int_equal(fota_flash_area_write(&a, 100, buf, 8), FOTA_E_FLASH);
    assert_int_equal(fota_flash_area_write(&a, 104, buf, 4), FOTA_E_FLASH);
    assert_int_equal(fota_flash_area_erase(&a, 8, SEC), FOTA_E_FLASH);
    assert_int_equal(fota_flash_area_erase(&a, 0, 100), FOTA_E_FLASH);
    /* And the device rule still holds through the area. */
    assert_int_equal(fota_flash_area_write(&a, 8, buf, 8), FOTA_E_FLASH);
    assert_int_equal(fota_flash_area_erase(&a, 0, SEC), FOTA_OK);
    assert_true(all_equal(fota_flash_sim_data(s) + 2 * SEC, SEC, 0xff));
    fota_flash_sim_close(s);
}

static void test_default_layout(void **state)
{
    struct fota_flash_sim *s = new_sim();
    struct fota_flash_area st[2], slot[2];

    (void)state;
    assert_int_equal(fota_flash_default_layout(fota_flash_sim_dev(s), 0, st, slot), FOTA_OK);
    assert_int_equal(st[0].off, 0);
    assert_int_equal(st[1].off, SEC);
    assert_int_equal(st[0].size, SEC);
    assert_int_equal(slot[0].off, 2 * SEC);
    assert_int_equal(slot[0].size, 3 * SEC);
    assert_int_equal(slot[1].off, 5 * SEC);
    assert_int_equal(slot[1].size, 3 * SEC);
    assert_int_equal(fota_flash_default_layout(fota_flash_sim_dev(s), 2 * SEC, st, slot),
                     FOTA_OK);
    assert_int_equal(slot[1].off, 4 * SEC);
    assert_int_equal(fota_flash_default_layout(fota_flash_sim_dev(s), 4 * SEC, st, slot),
                     FOTA_E_INVALID);
    assert_int_equal(fota_flash_default_layout(fota_flash_sim_dev(s), SEC + 8, st, slot),
                     FOTA_E_INVALID);
    fota_flash_sim_close(s);
}

/* ---- fault injection ------------------------------------------------------ */

static void test_cut_write_clean(void **state)
{
    struct fota_flash_sim *s = new_sim();
    const struct fota_flash *f = fota_flash_sim_dev(s);
    uint8_t buf[64];

    (void)state;
    pattern(buf, sizeof buf, 3);
    fota_flash_sim_cut_after(s, 3, FOTA_FLASH_CUT_CLEAN);
    assert_int_equal(f->write(f->ctx, 0, buf, 64), FOTA_OK);              /* op 1 */
    assert_int_equal(f->write(f->ctx, 1020, buf, 8), FOTA_E_FLASH);        /* refused: no op */
    assert_int_equal(f->read(f->ctx, 0, buf, 8), FOTA_OK);                 /* not an op */
    assert_int_equal(f->erase(f->ctx, SEC, SEC), FOTA_OK);                 /* op 2 */
    assert_false(fota_flash_sim_is_cut(s));
    assert_int_equal(f->write(f->ctx, 128, buf, 64), FOTA_E_POWER);        /* op 3: cut */
    assert_true(fota_flash_sim_is_cut(s));
    assert_true(all_equal(fota_flash_sim_data(s) + 128, 64, 0xff));        /* not done */
    /* Dead until power-on: reads too. */
    assert_int_equal(f->read(f->ctx, 0, buf, 8), FOTA_E_POWER);
    assert_int_equal(f->write(f->ctx, 256, buf, 8), FOTA_E_POWER);
    assert_int_equal(f->erase(f->ctx, 2 * SEC, SEC), FOTA_E_POWER);
    fota_flash_sim_power_on(s);
    assert_false(fota_flash_sim_is_cut(s));
    assert_int_equal(f->write(f->ctx, 128, buf, 64), FOTA_OK);
    assert_memory_equal(fota_flash_sim_data(s) + 128, buf, 64);
    fota_flash_sim_close(s);
}

static void test_cut_erase(void **state)
{
    uint8_t data[SEC];

    (void)state;
    pattern(data, sizeof data, 5);
    for (int mode = 0; mode < 2; mode++) {
        int partial = 0;

        for (uint64_t seed = 1; seed <= 20; seed++) {
            struct fota_flash_sim *s = new_sim();
            const struct fota_flash *f = fota_flash_sim_dev(s);
            const uint8_t *m = fota_flash_sim_data(s) + SEC;
            size_t p = 0;

            assert_int_equal(f->write(f->ctx, SEC, data, SEC), FOTA_OK);
            fota_flash_sim_seed(s, seed);
            fota_flash_sim_cut_after(s, 1, (enum fota_flash_cut_mode)mode);
            assert_int_equal(f->erase(f->ctx, SEC, SEC), FOTA_E_POWER);
            /* A prefix erased ... */
            while (p < SEC && m[p] == 0xff)
                p++;
            assert_true(p < SEC);          /* never the whole range */
            if (p > 0)
                partial++;
            /* ... and the rest as it was (clean) or not at all what it was (torn). */
            if (mode == FOTA_FLASH_CUT_CLEAN)
                assert_memory_equal(m + p, data + p, SEC - p);
            else
                assert_memory_not_equal(m + p, data + p, SEC - p);
            /* Neighbours untouched. */
            assert_true(all_equal(fota_flash_sim_data(s), SEC, 0xff));
            assert_true(all_equal(fota_flash_sim_data(s) + 2 * SEC, SEC, 0xff));
            fota_flash_sim_close(s);
        }
        assert_true(partial > 10);
    }
}

static void test_cut_write_torn(void **state)
{
    uint8_t data[256];
    uint8_t first[256];
    int torn = 0;

    (void)state;
    memset(data, 0x00, sizeof data);
    for (uint64_t seed = 1; seed <= 20; seed++) {
        struct fota_flash_sim *s = new_sim();
        struct fota_flash_sim *again = new_sim();
        const struct fota_flash *f = fota_flash_sim_dev(s);
        const uint8_t *m = fota_flash_sim_data(s) + 512;
        size_t p = 0;

        fota_flash_sim_seed(s, seed);
        fota_flash_sim_cut_after(s, 1, FOTA_FLASH_CUT_TORN);
        assert_int_equal(f->write(f->ctx, 512, data, sizeof data), FOTA_E_POWER);
        while (p < sizeof data && m[p] == data[p])
            p++;
        /* A prefix of the bytes, then garbage: not the whole write. */
        assert_true(p < sizeof data);
        if (p > 8)
            torn++;
        assert_true(all_equal(fota_flash_sim_data(s), 512, 0xff));
        assert_true(all_equal(fota_flash_sim_data(s) + 768, geo.size - 768, 0xff));
        /* The same seed gives the same damage. */
        memcpy(first, m, sizeof first);
        fota_flash_sim_seed(again, seed);
        fota_flash_sim_cut_after(again, 1, FOTA_FLASH_CUT_TORN);
        f = fota_flash_sim_dev(again);
        assert_int_equal(f->write(f->ctx, 512, data, sizeof data), FOTA_E_POWER);
        assert_memory_equal(fota_flash_sim_data(again) + 512, first, sizeof first);
        fota_flash_sim_close(again);
        fota_flash_sim_close(s);
    }
    assert_true(torn > 10);
}

static void test_cut_disarm(void **state)
{
    struct fota_flash_sim *s = new_sim();
    const struct fota_flash *f = fota_flash_sim_dev(s);
    uint8_t buf[8] = {0};

    (void)state;
    fota_flash_sim_cut_after(s, 2, FOTA_FLASH_CUT_CLEAN);
    fota_flash_sim_cut_after(s, 0, FOTA_FLASH_CUT_CLEAN);
    for (uint32_t i = 0; i < 10; i++)
        assert_int_equal(f->write(f->ctx, i * 8, buf, 8), FOTA_OK);
    /* Power-on also disarms a cut that has not happened. */
    fota_flash_sim_cut_after(s, 2, FOTA_FLASH_CUT_CLEAN);
    fota_flash_sim_power_on(s);
    for (uint32_t i = 10; i < 20; i++)
        assert_int_equal(f->write(f->ctx, i * 8, buf, 8), FOTA_OK);
    fota_flash_sim_close(s);
}

/* ---- counters, snapshot, poke --------------------------------------------- */

static void test_counters(void **state)
{
    struct fota_flash_sim *s = new_sim();
    const struct fota_flash *f = fota_flash_sim_dev(s);
    struct fota_flash_stats st;
    uint8_t buf[64] = {0};

    (void)state;
    assert_int_equal(f->write(f->ctx, 0, buf, 64), FOTA_OK);
    assert_int_equal(f->write(f->ctx, 64, buf, 8), FOTA_OK);
    assert_int_equal(f->erase(f->ctx, 0, 2 * SEC), FOTA_OK);
    assert_int_equal(f->erase(f->ctx, 4 * SEC, SEC), FOTA_OK);
    assert_int_equal(f->write(f->ctx, 0, buf, 8), FOTA_OK);
    fota_flash_sim_stats(s, &st);
    assert_int_equal(st.writes, 3);
    assert_int_equal(st.erases, 2);
    assert_int_equal(st.bytes_written, 80);
    assert_int_equal(st.sectors_erased, 3);
    /* A cut operation counts as an operation but wrote nothing. */
    fota_flash_sim_cut_after(s, 1, FOTA_FLASH_CUT_CLEAN);
    assert_int_equal(f->write(f->ctx, 8, buf, 8), FOTA_E_POWER);
    fota_flash_sim_stats(s, &st);
    assert_int_equal(st.writes, 4);
    assert_int_equal(st.bytes_written, 80);
    fota_flash_sim_reset_stats(s);
    fota_flash_sim_stats(s, &st);
    assert_int_equal(st.writes + st.erases + st.bytes_written + st.sectors_erased, 0);
    fota_flash_sim_close(s);
}

static void test_snapshot_restore_poke(void **state)
{
    struct fota_flash_sim *s = new_sim();
    const struct fota_flash *f = fota_flash_sim_dev(s);
    uint8_t *snap = malloc(geo.size);
    uint8_t buf[16];

    (void)state;
    assert_non_null(snap);
    pattern(buf, sizeof buf, 4);
    assert_int_equal(f->write(f->ctx, 0, buf, 16), FOTA_OK);
    assert_int_equal(fota_flash_sim_snapshot(s, snap, geo.size), FOTA_OK);
    assert_int_equal(fota_flash_sim_snapshot(s, snap, geo.size - 1), FOTA_E_INVALID);
    assert_int_equal(f->erase(f->ctx, 0, SEC), FOTA_OK);
    assert_int_equal(fota_flash_sim_restore(s, snap, geo.size), FOTA_OK);
    assert_memory_equal(fota_flash_sim_data(s), buf, 16);
    assert_int_equal(fota_flash_sim_restore(s, snap, 1), FOTA_E_INVALID);
    /* poke ignores the rules (over written bytes) but not the bounds. */
    assert_int_equal(fota_flash_sim_poke(s, 3, "xyz", 3), FOTA_OK);
    assert_memory_equal(fota_flash_sim_data(s) + 3, "xyz", 3);
    assert_int_equal(fota_flash_sim_poke(s, geo.size - 1, "ab", 2), FOTA_E_FLASH);
    free(snap);
    fota_flash_sim_close(s);
}

/* ---- the file variant ----------------------------------------------------- */

static void test_file_flash(void **state)
{
    char path[] = "/tmp/fota-test-flash-XXXXXX";
    struct fota_flash_geometry g = geo;
    struct fota_flash_sim *s = NULL;
    const struct fota_flash *f;
    uint8_t buf[32];
    int fd;

    (void)state;
    fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    pattern(buf, sizeof buf, 6);

    assert_int_equal(fota_flash_file_open(path, &g, 1, &s), FOTA_OK);
    f = fota_flash_sim_dev(s);
    assert_true(all_equal(fota_flash_sim_data(s), g.size, 0xff));
    assert_int_equal(f->write(f->ctx, SEC, buf, 32), FOTA_OK);
    assert_int_equal(f->write(f->ctx, SEC, buf, 32), FOTA_E_FLASH);
    fota_flash_sim_close(s);
    s = NULL;

    /* Reopened: contents kept, size taken from the file. */
    g.size = 0;
    assert_int_equal(fota_flash_file_open(path, &g, 0, &s), FOTA_OK);
    assert_int_equal(fota_flash_sim_dev(s)->size, geo.size);
    assert_memory_equal(fota_flash_sim_data(s) + SEC, buf, 32);
    fota_flash_sim_close(s);
    s = NULL;

    g.size = geo.size * 2;
    assert_int_equal(fota_flash_file_open(path, &g, 0, &s), FOTA_E_INVALID);
    g.size = 0;
    g.sector_size = 3 * SEC;
    assert_int_equal(fota_flash_file_open(path, &g, 0, &s), FOTA_E_INVALID);
    assert_null(s);
    unlink(path);
    g = geo;
    assert_int_equal(fota_flash_file_open(path, &g, 0, &s), FOTA_E_NOT_FOUND);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_geometry_checked),
        cmocka_unit_test(test_write_only_to_erased),
        cmocka_unit_test(test_alignment_and_bounds),
        cmocka_unit_test(test_area_helpers),
        cmocka_unit_test(test_default_layout),
        cmocka_unit_test(test_cut_write_clean),
        cmocka_unit_test(test_cut_erase),
        cmocka_unit_test(test_cut_write_torn),
        cmocka_unit_test(test_cut_disarm),
        cmocka_unit_test(test_counters),
        cmocka_unit_test(test_snapshot_restore_poke),
        cmocka_unit_test(test_file_flash),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
