/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The POSIX port (ports/posix/fota_posix.h): file names, capped reads, atomic
 * stores, URL building, and HTTP GET against a tiny server that runs in a
 * thread of this test on 127.0.0.1 and answers canned responses (good
 * bodies, error statuses, lying or missing lengths, endless and stalled
 * bodies, redirects). No external network is used.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "fota/error.h"
#include "fota_posix.h"

#include "test_util.h"

#define TMP_PREFIX ".fota+tmp."

/* A failure leaves ret_* untouched: the tests check that against these. */
static char untouched_marker;
#define UNTOUCHED_BUF ((uint8_t *)(void *)&untouched_marker)
#define UNTOUCHED_STR ((char *)&untouched_marker)
#define UNTOUCHED_LEN ((size_t)0x5a5a5a)

/* The scratch directory of the running test (setup_dir / teardown_dir). */
static char g_dir[64];

/* ---- helpers -------------------------------------------------------------- */

static void path_in(char *out, size_t size, const char *dir, const char *name)
{
    int n = snprintf(out, size, "%s/%s", dir, name);

    assert_true(n > 0 && (size_t)n < size);
}

static void remove_tree(const char *path, unsigned depth)
{
    struct stat st;
    DIR *d;

    assert_true(depth < 8);
    if (lstat(path, &st) != 0) {
        return;
    }
    if (!S_ISDIR(st.st_mode)) {
        unlink(path);
        return;
    }
    d = opendir(path);
    if (d != NULL) {
        for (struct dirent *e = readdir(d); e != NULL; e = readdir(d)) {
            char child[PATH_MAX];

            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) {
                continue;
            }
            path_in(child, sizeof(child), path, e->d_name);
            remove_tree(child, depth + 1);
        }
        closedir(d);
    }
    rmdir(path);
}

static int setup_dir(void **state)
{
    (void)state;
    snprintf(g_dir, sizeof(g_dir), "/tmp/fota-test-posix-XXXXXX");
    return mkdtemp(g_dir) != NULL ? 0 : -1;
}

static int teardown_dir(void **state)
{
    (void)state;
    remove_tree(g_dir, 0);
    return 0;
}

/* Entries of dir (without "." and ".."); *ret_tmp counts the temp files. */
static unsigned count_entries(const char *dir, unsigned *ret_tmp)
{
    DIR *d = opendir(dir);
    unsigned n = 0, tmp = 0;

    assert_non_null(d);
    for (struct dirent *e = readdir(d); e != NULL; e = readdir(d)) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) {
            continue;
        }
        n++;
        if (strncmp(e->d_name, TMP_PREFIX, strlen(TMP_PREFIX)) == 0) {
            tmp++;
        }
    }
    closedir(d);
    if (ret_tmp != NULL) {
        *ret_tmp = tmp;
    }
    return n;
}

/* dir holds exactly n entries and none of them is a temp file. */
static void assert_entries(const char *dir, unsigned n)
{
    unsigned tmp = 0;
    unsigned got = count_entries(dir, &tmp);

    if (got != n || tmp != 0) {
        fail_msg("%s: %u entries (%u temp), want %u and no temp file", dir, got, tmp, n);
    }
}

/* dir/name is a regular file holding exactly data[0..len). */
static void assert_file_is(const char *dir, const char *name, const void *data, size_t len)
{
    char path[PATH_MAX];
    struct stat st;
    size_t got_len = 0;
    char *got;

    path_in(path, sizeof(path), dir, name);
    assert_int_equal(lstat(path, &st), 0);
    assert_true(S_ISREG(st.st_mode));
    got = tu_read_file(path, &got_len);
    assert_int_equal(got_len, len);
    assert_memory_equal(got, data, len);
    free(got);
}

static void write_in(const char *dir, const char *name, const char *text)
{
    char path[PATH_MAX];

    path_in(path, sizeof(path), dir, name);
    tu_write_file(path, text, strlen(text));
}

/* A deterministic byte pattern, so a body can be checked at any offset. */
static uint8_t pattern_byte(uint64_t i)
{
    return (uint8_t)(i * 7u + i / 251u);
}

static uint8_t *pattern(size_t len)
{
    uint8_t *p = malloc(len + 1);

    assert_non_null(p);
    for (size_t i = 0; i < len; i++) {
        p[i] = pattern_byte(i);
    }
    return p;
}

/* ---- file names ----------------------------------------------------------- */

static void test_name_ok(void **state)
{
    static const char *const good[] = {
        "root.json", "a%2Fb.json", "1.root.json", ".hidden", "...", "a b", "caf\xc3\xa9.json", "a\\b",
    };
    static const char *const bad[] = {
        "", ".", "..", "a/b", "/", "/etc", "a/", "../x", "./x", "x/..",
    };
    /* What follows a NUL is not part of the name: it can neither smuggle a
     * "/" in nor turn ".." into something else. */
    static const char nul_then_slash[] = "x\0/../escape";
    static const char nul_dotdot[] = "..\0x";
    char max[256], over[257], unterminated[256];

    (void)state;
    for (size_t i = 0; i < TU_ARRAY_LEN(good); i++) {
        if (!fota_posix_name_ok(good[i])) {
            fail_msg("\"%s\" refused", good[i]);
        }
    }
    for (size_t i = 0; i < TU_ARRAY_LEN(bad); i++) {
        if (fota_posix_name_ok(bad[i])) {
            fail_msg("\"%s\" accepted", bad[i]);
        }
    }
    assert_false(fota_posix_name_ok(NULL));
    assert_true(fota_posix_name_ok(nul_then_slash));
    assert_false(fota_posix_name_ok(nul_dotdot));

    /* 255 bytes is the longest file name; 256 is refused, and so is a buffer
     * of 256 non-NUL bytes without a terminator: the length check reads no
     * further than that (AddressSanitizer would see an overread). */
    memset(max, 'a', 255);
    max[255] = '\0';
    assert_true(fota_posix_name_ok(max));
    memset(over, 'a', 256);
    over[256] = '\0';
    assert_false(fota_posix_name_ok(over));
    memset(unterminated, 'a', sizeof(unterminated));
    assert_false(fota_posix_name_ok(unterminated));
}

/* Every entry point that takes a name refuses a bad one before touching the
 * directory, and a name after a NUL never reaches the file system. */
static void test_bad_names_refused_everywhere(void **state)
{
    static const char *const bad[] = { "", ".", "..", "a/b", "../x", TMP_PREFIX "abcdef" };
    static const char nul_then_slash[] = "x\0/../escape";
    struct fota_posix_atomic a;
    char over[300];

    (void)state;
    memset(over, 'b', sizeof(over) - 1);
    over[sizeof(over) - 1] = '\0';
    for (size_t i = 0; i <= TU_ARRAY_LEN(bad); i++) {
        const char *name = i < TU_ARRAY_LEN(bad) ? bad[i] : over;
        uint8_t *buf = UNTOUCHED_BUF;
        size_t len = UNTOUCHED_LEN;
        int is_tmp = strncmp(name, TMP_PREFIX, strlen(TMP_PREFIX)) == 0;

        /* A temp-file name is a valid file name that only the store refuses. */
        if (!is_tmp) {
            assert_int_equal(fota_posix_dir_load(g_dir, name, 100, &buf, &len), FOTA_E_INVALID);
            assert_ptr_equal(buf, UNTOUCHED_BUF);
            assert_int_equal(len, UNTOUCHED_LEN);
            assert_int_equal(fota_posix_dir_remove(g_dir, name), FOTA_E_INVALID);
        }
        assert_int_equal(fota_posix_dir_store(g_dir, name, (const uint8_t *)"x", 1), FOTA_E_INVALID);
        assert_int_equal(fota_posix_atomic_open(&a, g_dir, name), FOTA_E_INVALID);
    }
    assert_entries(g_dir, 0);

    assert_int_equal(fota_posix_dir_store(g_dir, nul_then_slash, (const uint8_t *)"in", 2), FOTA_OK);
    assert_entries(g_dir, 1);
    assert_file_is(g_dir, "x", "in", 2);
}

/* ---- capped reads ----------------------------------------------------------- */

static void test_read_file_caps(void **state)
{
    static const size_t lens[] = { 0, 1, 100, 4096, 70000 };
    char path[PATH_MAX], sub[PATH_MAX];
    uint8_t *body;
    uint8_t *buf;
    size_t len;

    (void)state;
    body = pattern(70000);
    path_in(path, sizeof(path), g_dir, "f");
    for (size_t i = 0; i < TU_ARRAY_LEN(lens); i++) {
        size_t n = lens[i];

        tu_write_file(path, body, n);

        /* exactly max_len bytes: read whole, NUL one past the end */
        buf = UNTOUCHED_BUF;
        len = UNTOUCHED_LEN;
        assert_int_equal(fota_posix_read_file(path, n, &buf, &len), FOTA_OK);
        assert_int_equal(len, n);
        assert_memory_equal(buf, body, n);
        assert_int_equal(buf[n], 0);
        free(buf);

        /* a larger cap changes nothing */
        buf = UNTOUCHED_BUF;
        assert_int_equal(fota_posix_read_file(path, n + 1000, &buf, &len), FOTA_OK);
        assert_int_equal(len, n);
        free(buf);

        /* one byte over the cap */
        if (n > 0) {
            buf = UNTOUCHED_BUF;
            len = UNTOUCHED_LEN;
            assert_int_equal(fota_posix_read_file(path, n - 1, &buf, &len), FOTA_E_LENGTH);
            assert_ptr_equal(buf, UNTOUCHED_BUF);
            assert_int_equal(len, UNTOUCHED_LEN);
        }
    }
    free(body);

    buf = UNTOUCHED_BUF;
    len = UNTOUCHED_LEN;
    assert_int_equal(fota_posix_read_file(path, SIZE_MAX, &buf, &len), FOTA_E_INVALID);
    path_in(path, sizeof(path), g_dir, "missing");
    assert_int_equal(fota_posix_read_file(path, 100, &buf, &len), FOTA_E_NOT_FOUND);
    /* a missing directory on the way is missing too */
    path_in(path, sizeof(path), g_dir, "no-such-dir/f");
    assert_int_equal(fota_posix_read_file(path, 100, &buf, &len), FOTA_E_NOT_FOUND);

    /* not a regular file: a directory, a character device, an endless one */
    path_in(sub, sizeof(sub), g_dir, "sub");
    assert_int_equal(mkdir(sub, 0755), 0);
    assert_int_equal(fota_posix_read_file(sub, 100, &buf, &len), FOTA_E_IO);
    assert_int_equal(fota_posix_read_file("/dev/null", 100, &buf, &len), FOTA_E_IO);
    assert_int_equal(fota_posix_read_file("/dev/zero", 100, &buf, &len), FOTA_E_IO);
    assert_ptr_equal(buf, UNTOUCHED_BUF);
    assert_int_equal(len, UNTOUCHED_LEN);
}

/* A regular file whose size says 0 but that holds more: the cap still holds
 * while the file is read, not only against what stat said. */
static void test_read_file_growing(void **state)
{
    const char *proc = "/proc/self/status";
    uint8_t *buf = UNTOUCHED_BUF;
    size_t len = UNTOUCHED_LEN;
    struct stat st;

    (void)state;
    if (stat(proc, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size != 0) {
        skip();
    }
    assert_int_equal(fota_posix_read_file(proc, 16, &buf, &len), FOTA_E_LENGTH);
    assert_ptr_equal(buf, UNTOUCHED_BUF);
    assert_int_equal(fota_posix_read_file(proc, 1 << 20, &buf, &len), FOTA_OK);
    assert_true(len > 16);
    assert_int_equal(buf[len], 0);
    assert_non_null(strstr((char *)buf, "Name:"));
    free(buf);
}

struct fifo_watchdog {
    const char *path;
    atomic_int done;      /* the reader returned */
    atomic_int unblocked; /* the watchdog had to open the FIFO to free it */
};

/* After a second, free a reader stuck in open() of the FIFO by opening its
 * other end (which only succeeds when a reader is waiting). */
static void *fifo_watchdog_main(void *arg)
{
    struct fifo_watchdog *w = arg;

    const struct timespec tick = { 0, 10 * 1000 * 1000 };

    for (int i = 0; i < 100 && !atomic_load(&w->done); i++) {
        nanosleep(&tick, NULL);
    }
    while (!atomic_load(&w->done)) {
        int fd = open(w->path, O_WRONLY | O_NONBLOCK | O_CLOEXEC);

        if (fd >= 0) {
            atomic_store(&w->unblocked, 1);
            close(fd);
        }
        nanosleep(&tick, NULL);
    }
    return NULL;
}

/* A FIFO put where a file is expected (by whoever can write the directory)
 * must give an error at once, not block until someone writes to it. */
static void test_read_fifo_does_not_block(void **state)
{
    static const char *const how[] = { "read_file", "dir_load" };
    char path[PATH_MAX];

    (void)state;
    path_in(path, sizeof(path), g_dir, "root.json");
    assert_int_equal(mkfifo(path, 0644), 0);
    for (size_t i = 0; i < TU_ARRAY_LEN(how); i++) {
        struct fifo_watchdog w = { .path = path };
        pthread_t th;
        uint8_t *buf = UNTOUCHED_BUF;
        size_t len = UNTOUCHED_LEN;
        fota_err err;

        atomic_init(&w.done, 0);
        atomic_init(&w.unblocked, 0);
        assert_int_equal(pthread_create(&th, NULL, fifo_watchdog_main, &w), 0);
        if (i == 0) {
            err = fota_posix_read_file(path, 100, &buf, &len);
        } else {
            err = fota_posix_dir_load(g_dir, "root.json", 100, &buf, &len);
        }
        atomic_store(&w.done, 1);
        assert_int_equal(pthread_join(th, NULL), 0);
        if (err == FOTA_OK) {
            free(buf);
        }
        if (atomic_load(&w.unblocked)) {
            fail_msg("fota_posix_%s blocked on a FIFO until a writer opened it (then: %s)", how[i],
                     fota_strerror(err));
        }
        assert_int_equal(err, FOTA_E_IO);
        assert_ptr_equal(buf, UNTOUCHED_BUF);
    }
}

static void test_dir_load(void **state)
{
    uint8_t *buf = UNTOUCHED_BUF;
    size_t len = UNTOUCHED_LEN;
    char sub[PATH_MAX];

    (void)state;
    write_in(g_dir, "root.json", "{\"a\":1}");
    assert_int_equal(fota_posix_dir_load(g_dir, "root.json", 7, &buf, &len), FOTA_OK);
    assert_int_equal(len, 7);
    assert_string_equal((char *)buf, "{\"a\":1}");
    free(buf);

    buf = UNTOUCHED_BUF;
    len = UNTOUCHED_LEN;
    assert_int_equal(fota_posix_dir_load(g_dir, "root.json", 6, &buf, &len), FOTA_E_LENGTH);
    assert_int_equal(fota_posix_dir_load(g_dir, "timestamp.json", 100, &buf, &len), FOTA_E_NOT_FOUND);
    assert_int_equal(fota_posix_dir_load("/nonexistent-fota-dir", "root.json", 100, &buf, &len),
                     FOTA_E_NOT_FOUND);
    assert_int_equal(fota_posix_dir_load(NULL, "root.json", 100, &buf, &len), FOTA_E_INVALID);
    path_in(sub, sizeof(sub), g_dir, "snapshot.json");
    assert_int_equal(mkdir(sub, 0755), 0);
    assert_int_equal(fota_posix_dir_load(g_dir, "snapshot.json", 100, &buf, &len), FOTA_E_IO);
    assert_ptr_equal(buf, UNTOUCHED_BUF);
    assert_int_equal(len, UNTOUCHED_LEN);
}

/* ---- atomic stores ------------------------------------------------------------ */

static void test_store_replaces(void **state)
{
    static const char *const contents[] = { "first", "a second, longer content", "3", "" };
    uint8_t all[256];

    (void)state;
    for (size_t i = 0; i < TU_ARRAY_LEN(contents); i++) {
        size_t n = strlen(contents[i]);

        assert_int_equal(fota_posix_dir_store(g_dir, "root.json", (const uint8_t *)contents[i], n), FOTA_OK);
        assert_entries(g_dir, 1);
        assert_file_is(g_dir, "root.json", contents[i], n);
    }
    /* an empty store may pass no buffer at all, a non-empty one may not */
    assert_int_equal(fota_posix_dir_store(g_dir, "empty.json", NULL, 0), FOTA_OK);
    assert_file_is(g_dir, "empty.json", "", 0);
    assert_int_equal(fota_posix_dir_store(g_dir, "null.json", NULL, 1), FOTA_E_INVALID);

    /* every byte value, NUL included, comes back as given */
    for (size_t i = 0; i < sizeof(all); i++) {
        all[i] = (uint8_t)(255 - i);
    }
    assert_int_equal(fota_posix_dir_store(g_dir, "bytes", all, sizeof(all)), FOTA_OK);
    assert_file_is(g_dir, "bytes", all, sizeof(all));
    assert_entries(g_dir, 3);
}

/* The name is replaced, never written through: a symlink or a FIFO in its
 * place is swapped for the new file and what it pointed to is unchanged. */
static void test_store_replaces_links_and_fifos(void **state)
{
    char link_path[PATH_MAX], fifo_path[PATH_MAX], target[PATH_MAX];
    struct stat st;

    (void)state;
    write_in(g_dir, "elsewhere", "untouched");
    path_in(target, sizeof(target), g_dir, "elsewhere");
    path_in(link_path, sizeof(link_path), g_dir, "root.json");
    assert_int_equal(symlink(target, link_path), 0);
    assert_int_equal(fota_posix_dir_store(g_dir, "root.json", (const uint8_t *)"new", 3), FOTA_OK);
    assert_file_is(g_dir, "root.json", "new", 3);
    assert_file_is(g_dir, "elsewhere", "untouched", 9);

    path_in(fifo_path, sizeof(fifo_path), g_dir, "timestamp.json");
    assert_int_equal(mkfifo(fifo_path, 0644), 0);
    assert_int_equal(fota_posix_dir_store(g_dir, "timestamp.json", (const uint8_t *)"ts", 2), FOTA_OK);
    assert_int_equal(lstat(fifo_path, &st), 0);
    assert_file_is(g_dir, "timestamp.json", "ts", 2);
    assert_entries(g_dir, 3);
}

static void test_store_failure_keeps_old(void **state)
{
    char path[PATH_MAX], gone[PATH_MAX];
    struct rlimit old_lim, lim;
    void (*old_handler)(int);
    uint8_t *big;
    fota_err err;

    (void)state;
    assert_int_equal(fota_posix_dir_store(g_dir, "root.json", (const uint8_t *)"old", 3), FOTA_OK);

    /* a refused name */
    assert_int_equal(fota_posix_dir_store(g_dir, "../root.json", (const uint8_t *)"new", 3), FOTA_E_INVALID);
    assert_file_is(g_dir, "root.json", "old", 3);

    /* a directory that was removed */
    path_in(gone, sizeof(gone), g_dir, "gone");
    assert_int_equal(mkdir(gone, 0755), 0);
    assert_int_equal(rmdir(gone), 0);
    assert_int_equal(fota_posix_dir_store(gone, "root.json", (const uint8_t *)"new", 3), FOTA_E_NOT_FOUND);
    assert_int_equal(access(gone, F_OK), -1);

    /* the disk fills up while the new content is written: the file size
     * limit makes write() fail with EFBIG past 4 KiB, as ENOSPC would
     * (tests run as root, so a read-only directory is no obstacle) */
    big = pattern(64 * 1024);
    assert_int_equal(getrlimit(RLIMIT_FSIZE, &old_lim), 0);
    lim = old_lim;
    lim.rlim_cur = 4096;
    old_handler = signal(SIGXFSZ, SIG_IGN);
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
    err = fota_posix_dir_store(g_dir, "root.json", big, 64 * 1024);
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &old_lim), 0);
    signal(SIGXFSZ, old_handler);
    free(big);
    assert_int_equal(err, FOTA_E_IO);
    assert_file_is(g_dir, "root.json", "old", 3);
    assert_entries(g_dir, 1);

    /* the rename fails (the name is a directory): the temp file goes and the
     * directory stays as it was */
    path_in(path, sizeof(path), g_dir, "snapshot.json");
    assert_int_equal(mkdir(path, 0755), 0);
    write_in(path, "inside", "x");
    assert_int_equal(fota_posix_dir_store(g_dir, "snapshot.json", (const uint8_t *)"new", 3), FOTA_E_IO);
    assert_file_is(path, "inside", "x", 1);
    assert_entries(g_dir, 2);
    assert_file_is(g_dir, "root.json", "old", 3);
}

static void test_dir_remove(void **state)
{
    char sub[PATH_MAX];

    (void)state;
    assert_int_equal(fota_posix_dir_remove(g_dir, "root.json"), FOTA_OK);
    assert_int_equal(fota_posix_dir_remove("/nonexistent-fota-dir", "root.json"), FOTA_OK);
    write_in(g_dir, "root.json", "x");
    write_in(g_dir, "keep.json", "y");
    assert_int_equal(fota_posix_dir_remove(g_dir, "root.json"), FOTA_OK);
    assert_entries(g_dir, 1);
    assert_file_is(g_dir, "keep.json", "y", 1);
    assert_int_equal(fota_posix_dir_remove(g_dir, "root.json"), FOTA_OK);

    /* a directory under the name is not deleted */
    path_in(sub, sizeof(sub), g_dir, "sub");
    assert_int_equal(mkdir(sub, 0755), 0);
    assert_int_not_equal(fota_posix_dir_remove(g_dir, "sub"), FOTA_OK);
    assert_int_equal(access(sub, F_OK), 0);
}

static void test_mkdir(void **state)
{
    char sub[PATH_MAX], file[PATH_MAX];
    struct stat st;

    (void)state;
    path_in(sub, sizeof(sub), g_dir, "meta");
    assert_int_equal(fota_posix_mkdir(sub), FOTA_OK);
    assert_int_equal(stat(sub, &st), 0);
    assert_true(S_ISDIR(st.st_mode));
    assert_int_equal(fota_posix_mkdir(sub), FOTA_OK);
    write_in(g_dir, "file", "x");
    path_in(file, sizeof(file), g_dir, "file");
    assert_int_equal(fota_posix_mkdir(file), FOTA_E_IO);
    path_in(sub, sizeof(sub), g_dir, "a/b");
    assert_int_equal(fota_posix_mkdir(sub), FOTA_E_IO);
    assert_int_equal(fota_posix_mkdir(""), FOTA_E_INVALID);
    assert_int_equal(fota_posix_mkdir(NULL), FOTA_E_INVALID);
}

/* The temp file of an open store: its name, checked against the contract. */
static void check_tmp_name(const struct fota_posix_atomic *a)
{
    size_t n = strlen(a->tmp_name);

    assert_true(strncmp(a->tmp_name, TMP_PREFIX, strlen(TMP_PREFIX)) == 0);
    assert_true(fota_posix_name_ok(a->tmp_name));
    if (n >= 5 && strcmp(a->tmp_name + n - 5, ".json") == 0) {
        fail_msg("temp name %s ends in .json", a->tmp_name);
    }
}

static void test_atomic_abort_leaves_nothing(void **state)
{
    struct fota_posix_atomic a;
    unsigned tmp = 0;

    (void)state;
    /* with no previous file */
    assert_int_equal(fota_posix_atomic_open(&a, g_dir, "1.root.json"), FOTA_OK);
    check_tmp_name(&a);
    assert_int_equal(fota_posix_atomic_write(&a, "part", 4), FOTA_OK);
    assert_int_equal(count_entries(g_dir, &tmp), 1);
    assert_int_equal(tmp, 1);
    fota_posix_atomic_abort(&a);
    assert_entries(g_dir, 0);

    /* over a previous file */
    write_in(g_dir, "1.root.json", "previous");
    assert_int_equal(fota_posix_atomic_open(&a, g_dir, "1.root.json"), FOTA_OK);
    assert_int_equal(fota_posix_atomic_write(&a, "replacement", 11), FOTA_OK);
    assert_file_is(g_dir, "1.root.json", "previous", 8);
    fota_posix_atomic_abort(&a);
    assert_entries(g_dir, 1);
    assert_file_is(g_dir, "1.root.json", "previous", 8);

    /* abort right after open, and of nothing */
    assert_int_equal(fota_posix_atomic_open(&a, g_dir, "x"), FOTA_OK);
    fota_posix_atomic_abort(&a);
    fota_posix_atomic_abort(NULL);
    assert_entries(g_dir, 1);
}

static void test_atomic_commit(void **state)
{
    enum { OPEN = 40 };
    static struct fota_posix_atomic many[OPEN];
    struct fota_posix_atomic a;
    uint8_t *body = pattern(100000);
    unsigned tmp = 0;

    (void)state;
    /* written in pieces, visible only after the commit */
    assert_int_equal(fota_posix_atomic_open(&a, g_dir, "target.bin"), FOTA_OK);
    for (size_t off = 0; off < 100000; off += 7919) {
        size_t n = 100000 - off < 7919 ? 100000 - off : 7919;

        assert_int_equal(fota_posix_atomic_write(&a, body + off, n), FOTA_OK);
    }
    assert_int_equal(fota_posix_atomic_write(&a, NULL, 0), FOTA_OK);
    assert_int_equal(fota_posix_atomic_write(&a, NULL, 1), FOTA_E_INVALID);
    assert_int_equal(count_entries(g_dir, &tmp), 1);
    assert_int_equal(tmp, 1);
    assert_int_equal(fota_posix_atomic_commit(&a), FOTA_OK);
    assert_entries(g_dir, 1);
    assert_file_is(g_dir, "target.bin", body, 100000);
    /* the struct is spent: writing or committing again is refused, an
     * abort does nothing */
    assert_int_equal(fota_posix_atomic_write(&a, "x", 1), FOTA_E_INVALID);
    assert_int_equal(fota_posix_atomic_commit(&a), FOTA_E_INVALID);
    fota_posix_atomic_abort(&a);
    assert_file_is(g_dir, "target.bin", body, 100000);
    free(body);

    /* many stores of one name at once get distinct temp files; the last
     * commit wins */
    for (size_t i = 0; i < OPEN; i++) {
        char c = (char)('A' + i % 26);

        assert_int_equal(fota_posix_atomic_open(&many[i], g_dir, "timestamp.json"), FOTA_OK);
        check_tmp_name(&many[i]);
        for (size_t j = 0; j < i; j++) {
            assert_string_not_equal(many[i].tmp_name, many[j].tmp_name);
        }
        assert_int_equal(fota_posix_atomic_write(&many[i], &c, 1), FOTA_OK);
    }
    assert_int_equal(count_entries(g_dir, &tmp), 1 + OPEN);
    assert_int_equal(tmp, OPEN);
    for (size_t i = 0; i < OPEN; i++) {
        if (i % 2 == 0) {
            fota_posix_atomic_abort(&many[i]);
        } else {
            assert_int_equal(fota_posix_atomic_commit(&many[i]), FOTA_OK);
        }
    }
    assert_entries(g_dir, 2);
    assert_file_is(g_dir, "timestamp.json", "N", 1); /* i = 39 */

    /* a directory that does not exist */
    assert_int_equal(fota_posix_atomic_open(&a, "/nonexistent-fota-dir", "x"), FOTA_E_NOT_FOUND);
}

/* ---- URLs ----------------------------------------------------------------------- */

struct url_case {
    const char *in, *want;
};

/* fota_posix_url_base and fota_posix_url_path have one shape: in, *ret_out.
 * Each case must succeed with exactly want; a bad argument must leave
 * *ret_out alone. */
static void check_url_cases(fota_err (*fn)(const char *, char **), const struct url_case *cases, size_t n)
{
    char *out = UNTOUCHED_STR;

    for (size_t i = 0; i < n; i++) {
        out = UNTOUCHED_STR;
        assert_int_equal(fn(cases[i].in, &out), FOTA_OK);
        if (strcmp(out, cases[i].want) != 0) {
            fail_msg("\"%s\" gave \"%s\", want \"%s\"", cases[i].in, out, cases[i].want);
        }
        free(out);
    }
    out = UNTOUCHED_STR;
    assert_int_equal(fn(NULL, &out), FOTA_E_INVALID);
    assert_int_equal(fn("x", NULL), FOTA_E_INVALID);
    assert_ptr_equal(out, UNTOUCHED_STR);
}

static void test_url_base(void **state)
{
    static const struct url_case cases[] = {
        { "http://127.0.0.1:8080", "http://127.0.0.1:8080/" },
        { "http://127.0.0.1:8080/", "http://127.0.0.1:8080/" },
        { "https://repo.example/metadata", "https://repo.example/metadata/" },
        { "https://repo.example/metadata/", "https://repo.example/metadata/" },
        { "x", "x/" },
    };
    char *out = UNTOUCHED_STR;

    (void)state;
    check_url_cases(fota_posix_url_base, cases, TU_ARRAY_LEN(cases));
    assert_int_equal(fota_posix_url_base("", &out), FOTA_E_INVALID);
    assert_ptr_equal(out, UNTOUCHED_STR);
}

static void test_url_path(void **state)
{
    static const struct url_case cases[] = {
        { "", "" },
        { "file.bin", "file.bin" },
        { "dir/sub/file-1.0_x~y.bin", "dir/sub/file-1.0_x~y.bin" },
        { "a b", "a%20b" },
        { "caf\xc3\xa9.bin", "caf%C3%A9.bin" },
        { "a#b?c=d", "a%23b%3Fc=d" },
        { "!$&'()*+,;=:@", "!$&'()*+,;=:@" },
        { "already%20encoded", "already%20encoded" },
        { "\"<>[\\]^`{|}", "%22%3C%3E%5B%5C%5D%5E%60%7B%7C%7D" },
        { "\x01\t\n\x1f\x7f\xff", "%01%09%0A%1F%7F%FF" },
    };
    /* What the contract lets through unchanged (RFC 3986 pchar, "/", "%"). */
    static const char keep[] = "-._~!$&'()*+,;=:@/%";
    char *out = NULL;

    (void)state;
    check_url_cases(fota_posix_url_path, cases, TU_ARRAY_LEN(cases));

    /* each byte on its own: kept when the contract says so, else %XX in
     * upper-case hex */
    for (unsigned c = 1; c < 256; c++) {
        char in[2] = { (char)c, '\0' };
        char want[4];
        int kept = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                   strchr(keep, (int)c) != NULL;

        if (kept) {
            snprintf(want, sizeof(want), "%c", (char)c);
        } else {
            snprintf(want, sizeof(want), "%%%02X", c);
        }
        assert_int_equal(fota_posix_url_path(in, &out), FOTA_OK);
        if (strcmp(out, want) != 0) {
            fail_msg("byte 0x%02x: got %s, want %s", c, out, want);
        }
        free(out);
    }
}

/* ---- a canned HTTP server ------------------------------------------------------ */

#define BIG_LEN 200000u
#define BIG_LEN_TEXT "200000" /* the same, for a header */
#define ENDLESS_CAP (8u << 20) /* a bound for the server, should a client never stop */
#define SRV_LOG_MAX 256

struct server {
    int listen_fd;
    unsigned port;
    pthread_t thread;
    atomic_int stop;
    pthread_mutex_t lock;
    unsigned nlog;                 /* requests served */
    char log[SRV_LOG_MAX][160];    /* their request targets */
};

static struct server g_srv = { .listen_fd = -1, .lock = PTHREAD_MUTEX_INITIALIZER };

static int send_all(int fd, const void *data, size_t len)
{
    const char *p = data;

    while (len > 0) {
        ssize_t n = send(fd, p, len, MSG_NOSIGNAL);

        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            return -1;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Status line and headers; every response closes its connection. */
static int send_head(int fd, const char *status, const char *headers)
{
    char head[512];
    int n = snprintf(head, sizeof(head), "HTTP/1.1 %s\r\n%sConnection: close\r\n\r\n", status, headers);

    if (n < 0 || (size_t)n >= sizeof(head)) {
        return -1;
    }
    return send_all(fd, head, (size_t)n);
}

static void send_text(int fd, const char *status, const char *body)
{
    char headers[64];

    snprintf(headers, sizeof(headers), "Content-Length: %zu\r\nContent-Type: text/plain\r\n", strlen(body));
    if (send_head(fd, status, headers) == 0) {
        send_all(fd, body, strlen(body));
    }
}

/* limit bytes of the pattern (as plain data, or as chunks when chunked);
 * stops early when the client goes away. */
static void send_pattern(int fd, uint64_t limit, int chunked)
{
    uint8_t piece[8192];
    uint64_t off = 0;

    while (off < limit) {
        size_t n = limit - off < sizeof(piece) ? (size_t)(limit - off) : sizeof(piece);
        char size_line[32];

        for (size_t i = 0; i < n; i++) {
            piece[i] = pattern_byte(off + i);
        }
        if (chunked) {
            int m = snprintf(size_line, sizeof(size_line), "%zx\r\n", n);

            if (send_all(fd, size_line, (size_t)m) != 0) {
                return;
            }
        }
        if (send_all(fd, piece, n) != 0 || (chunked && send_all(fd, "\r\n", 2) != 0)) {
            return;
        }
        off += n;
    }
    if (chunked) {
        send_all(fd, "0\r\n\r\n", 5);
    }
}

/* Wait (at most 5 s) until the client closes the connection. */
static void wait_for_close(int fd)
{
    struct pollfd p = { .fd = fd, .events = POLLIN };
    char c;

    while (poll(&p, 1, 5000) == 1 && recv(fd, &c, 1, 0) > 0) {
        /* a client sends nothing more after its request: just wait */
    }
}

/*
 * What the server answers, by request target. headers NULL means a
 * Content-Length that matches body; otherwise the headers are sent as given,
 * which is how a response lies about its length or leaves it out. Without a
 * body, pattern_len bytes of the pattern follow (in chunks when chunked).
 */
struct route {
    const char *target;
    const char *status;
    const char *headers;
    const char *body;
    uint64_t pattern_len;
    int chunked;
    int stall; /* after the body, wait for the client to give up */
};

#define CHUNKED "Transfer-Encoding: chunked\r\n"

static const struct route routes[] = {
    { "/ok", "200 OK", NULL, "hello world", 0, 0, 0 },
    { "/empty", "200 OK", NULL, "", 0, 0, 0 },
    { "/no-content", "204 No Content", "", "", 0, 0, 0 },
    { "/big", "200 OK", "Content-Length: " BIG_LEN_TEXT "\r\n", NULL, BIG_LEN, 0, 0 },
    { "/chunked", "200 OK", CHUNKED, NULL, BIG_LEN, 1, 0 },
    /* no length: the body would end when the server closes, which it never
     * does while the client reads */
    { "/endless", "200 OK", "", NULL, ENDLESS_CAP, 0, 0 },
    { "/endless-chunked", "200 OK", CHUNKED, NULL, ENDLESS_CAP, 1, 0 },
    { "/claims-huge", "200 OK", "Content-Length: 1000000000\r\n", NULL, 100, 0, 0 },
    /* more bytes than the Content-Length says, and fewer */
    { "/overlong", "200 OK", "Content-Length: 10\r\n", "0123456789-and-much-more-that-must-not-be-read", 0, 0, 0 },
    { "/short", "200 OK", "Content-Length: 100\r\n", "0123456789", 0, 0, 0 },
    { "/stall", "200 OK", "Content-Length: 100000\r\n", "0123456789", 0, 0, 1 },
    { "/302", "302 Found", "Location: /ok\r\nContent-Length: 0\r\n", "", 0, 0, 0 },
    { "/302-body", "302 Found", "Location: /ok\r\nContent-Length: 5\r\n", "moved", 0, 0, 0 },
    { "/404", "404 Not Found", NULL, "no such file\n", 0, 0, 0 },
    { "/404-empty", "404 Not Found", NULL, "", 0, 0, 0 },
    { "/403", "403 Forbidden", NULL, "forbidden\n", 0, 0, 0 },
    { "/500", "500 Internal Server Error", NULL, "oops\n", 0, 0, 0 },
};

static void respond(int fd, const char *target)
{
    const struct route *r = NULL;

    /* /echo/<anything>: the request target itself, to see what went out */
    if (strncmp(target, "/echo/", 6) == 0) {
        send_text(fd, "200 OK", target);
        return;
    }
    for (size_t i = 0; i < TU_ARRAY_LEN(routes) && r == NULL; i++) {
        if (strcmp(target, routes[i].target) == 0) {
            r = &routes[i];
        }
    }
    if (r == NULL) {
        send_text(fd, "404 Not Found", "unknown\n");
        return;
    }
    if (r->headers == NULL) {
        send_text(fd, r->status, r->body);
        return;
    }
    if (send_head(fd, r->status, r->headers) != 0) {
        return;
    }
    if (r->body != NULL) {
        send_all(fd, r->body, strlen(r->body));
    } else {
        send_pattern(fd, r->pattern_len, r->chunked);
    }
    if (r->stall) {
        wait_for_close(fd);
    }
}

/* Read one request head and answer it. */
static void serve_connection(struct server *s, int fd)
{
    struct timeval tv = { 2, 0 };
    char req[4096];
    size_t len = 0;
    char *sp;

    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    for (;;) {
        ssize_t n = recv(fd, req + len, sizeof(req) - 1 - len, 0);

        if (n <= 0) {
            return;
        }
        len += (size_t)n;
        req[len] = '\0';
        if (strstr(req, "\r\n\r\n") != NULL) {
            break;
        }
        if (len == sizeof(req) - 1) {
            return;
        }
    }
    if (strncmp(req, "GET ", 4) != 0) {
        send_text(fd, "405 Method Not Allowed", "");
        return;
    }
    sp = strchr(req + 4, ' ');
    if (sp == NULL) {
        return;
    }
    *sp = '\0';
    pthread_mutex_lock(&s->lock);
    if (s->nlog < SRV_LOG_MAX) {
        size_t n = strnlen(req + 4, sizeof(s->log[0]) - 1);

        memcpy(s->log[s->nlog], req + 4, n);
        s->log[s->nlog][n] = '\0';
    }
    s->nlog++;
    pthread_mutex_unlock(&s->lock);
    respond(fd, req + 4);
}

static void *server_main(void *arg)
{
    struct server *s = arg;

    while (!atomic_load(&s->stop)) {
        struct pollfd p = { .fd = s->listen_fd, .events = POLLIN };
        int fd;

        if (poll(&p, 1, 50) != 1) {
            continue;
        }
        fd = accept(s->listen_fd, NULL, NULL);
        if (fd < 0) {
            continue;
        }
        serve_connection(s, fd);
        close(fd);
    }
    return NULL;
}

static int server_start(struct server *s)
{
    struct sockaddr_in addr;
    socklen_t alen = sizeof(addr);

    memset(&addr, 0, sizeof(addr));
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;
    s->listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (s->listen_fd < 0) {
        return -1;
    }
    if (bind(s->listen_fd, (struct sockaddr *)&addr, sizeof(addr)) != 0 || listen(s->listen_fd, 16) != 0 ||
        getsockname(s->listen_fd, (struct sockaddr *)&addr, &alen) != 0) {
        return -1;
    }
    s->port = ntohs(addr.sin_port);
    atomic_init(&s->stop, 0);
    return pthread_create(&s->thread, NULL, server_main, s) == 0 ? 0 : -1;
}

static void server_stop(struct server *s)
{
    atomic_store(&s->stop, 1);
    pthread_join(s->thread, NULL);
    close(s->listen_fd);
    s->listen_fd = -1;
}

static unsigned server_requests(void)
{
    unsigned n;

    pthread_mutex_lock(&g_srv.lock);
    n = g_srv.nlog;
    pthread_mutex_unlock(&g_srv.lock);
    return n;
}

/* The target of request number i (0-based). */
static void server_request(unsigned i, char *out, size_t size)
{
    pthread_mutex_lock(&g_srv.lock);
    assert_true(i < g_srv.nlog && i < SRV_LOG_MAX);
    snprintf(out, size, "%s", g_srv.log[i]);
    pthread_mutex_unlock(&g_srv.lock);
}

static void url_of(char *out, size_t size, const char *path)
{
    int n = snprintf(out, size, "http://127.0.0.1:%u%s", g_srv.port, path);

    assert_true(n > 0 && (size_t)n < size);
}

static int group_setup(void **state)
{
    (void)state;
    /* The requests go to 127.0.0.1 whatever proxy the environment names. */
    setenv("NO_PROXY", "*", 1);
    setenv("no_proxy", "*", 1);
    if (fota_posix_http_global_init() != FOTA_OK) {
        return -1;
    }
    return server_start(&g_srv);
}

static int group_teardown(void **state)
{
    (void)state;
    server_stop(&g_srv);
    fota_posix_http_global_cleanup();
    return 0;
}

/* ---- HTTP GET ----------------------------------------------------------------- */

struct get_case {
    const char *path;
    size_t max_len;
    fota_err want;
    const char *body; /* the whole body on FOTA_OK; NULL: BIG_LEN bytes of the pattern */
};

static void check_get(struct fota_posix_http *h, const struct get_case *c)
{
    char url[128];
    uint8_t *buf = UNTOUCHED_BUF;
    size_t len = UNTOUCHED_LEN;
    fota_err err;

    url_of(url, sizeof(url), c->path);
    err = fota_posix_http_get(h, url, c->max_len, &buf, &len);
    if (err != c->want) {
        fail_msg("GET %s (max %zu): %s, want %s (%s)", c->path, c->max_len, fota_strerror(err),
                 fota_strerror(c->want), h->errmsg);
    }
    if (err != FOTA_OK) {
        assert_ptr_equal(buf, UNTOUCHED_BUF);
        assert_int_equal(len, UNTOUCHED_LEN);
        if (h->errmsg[0] == '\0') {
            fail_msg("GET %s: %s without an errmsg", c->path, fota_strerror(err));
        }
        return;
    }
    assert_string_equal(h->errmsg, "");
    assert_true(len <= c->max_len);
    if (c->body != NULL) {
        assert_int_equal(len, strlen(c->body));
        assert_memory_equal(buf, c->body, len);
    } else {
        uint8_t *want = pattern(BIG_LEN);

        assert_int_equal(len, BIG_LEN);
        assert_memory_equal(buf, want, BIG_LEN);
        free(want);
    }
    assert_int_equal(buf[len], 0);
    free(buf);
}

static void test_http_get(void **state)
{
    static const struct get_case cases[] = {
        { "/ok", 11, FOTA_OK, "hello world" },
        { "/ok", 1000, FOTA_OK, "hello world" },
        { "/ok", 10, FOTA_E_LENGTH, NULL },
        { "/ok", 0, FOTA_E_LENGTH, NULL },
        { "/empty", 0, FOTA_OK, "" },
        { "/empty", 100, FOTA_OK, "" },
        { "/no-content", 100, FOTA_OK, "" },
        { "/big", BIG_LEN, FOTA_OK, NULL },
        { "/big", BIG_LEN - 1, FOTA_E_LENGTH, NULL },
        { "/chunked", BIG_LEN, FOTA_OK, NULL },
        { "/chunked", BIG_LEN - 1, FOTA_E_LENGTH, NULL },
        { "/404", 1000, FOTA_E_NOT_FOUND, NULL },
        { "/404-empty", 1000, FOTA_E_NOT_FOUND, NULL },
        { "/403", 1000, FOTA_E_NOT_FOUND, NULL },
        { "/500", 1000, FOTA_E_IO, NULL },
        { "/302", 1000, FOTA_E_IO, NULL },
        { "/302-body", 1000, FOTA_E_IO, NULL },
        { "/claims-huge", 1000, FOTA_E_LENGTH, NULL },
        { "/overlong", 1000, FOTA_OK, "0123456789" },
        { "/overlong", 9, FOTA_E_LENGTH, NULL },
        { "/short", 1000, FOTA_E_IO, NULL },
        { "/endless", 1000, FOTA_E_LENGTH, NULL },
        { "/endless", 1 << 20, FOTA_E_LENGTH, NULL },
        { "/endless-chunked", 1000, FOTA_E_LENGTH, NULL },
        /* after all that, the same handle still works */
        { "/ok", 11, FOTA_OK, "hello world" },
    };
    struct fota_posix_http h;

    (void)state;
    assert_int_equal(fota_posix_http_init(&h), FOTA_OK);
    for (size_t i = 0; i < TU_ARRAY_LEN(cases); i++) {
        check_get(&h, &cases[i]);
    }
    fota_posix_http_cleanup(&h);
    fota_posix_http_cleanup(&h);
}

static void test_http_errors_say_why(void **state)
{
    struct fota_posix_http h;
    char url[128];
    uint8_t *buf = UNTOUCHED_BUF;
    size_t len = UNTOUCHED_LEN;

    (void)state;
    assert_int_equal(fota_posix_http_init(&h), FOTA_OK);
    url_of(url, sizeof(url), "/404");
    assert_int_equal(fota_posix_http_get(&h, url, 100, &buf, &len), FOTA_E_NOT_FOUND);
    assert_non_null(strstr(h.errmsg, "404"));
    url_of(url, sizeof(url), "/500");
    assert_int_equal(fota_posix_http_get(&h, url, 100, &buf, &len), FOTA_E_IO);
    assert_non_null(strstr(h.errmsg, "500"));

    /* bad arguments */
    assert_int_equal(fota_posix_http_get(&h, url, SIZE_MAX, &buf, &len), FOTA_E_INVALID);
    assert_int_equal(fota_posix_http_get(&h, NULL, 100, &buf, &len), FOTA_E_INVALID);
    assert_int_equal(fota_posix_http_get(&h, url, 100, NULL, &len), FOTA_E_INVALID);
    assert_int_equal(fota_posix_http_get(NULL, url, 100, &buf, &len), FOTA_E_INVALID);
    /* only http and https */
    assert_int_equal(fota_posix_http_get(&h, "file:///etc/passwd", 100000, &buf, &len), FOTA_E_IO);
    assert_ptr_equal(buf, UNTOUCHED_BUF);
    assert_int_equal(len, UNTOUCHED_LEN);
    fota_posix_http_cleanup(&h);
}

/* Nobody listens: a transport error, at once. */
static void test_http_connection_refused(void **state)
{
    struct sockaddr_in addr;
    socklen_t alen = sizeof(addr);
    struct fota_posix_http h;
    char url[128];
    uint8_t *buf = UNTOUCHED_BUF;
    size_t len = UNTOUCHED_LEN;
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    (void)state;
    assert_true(fd >= 0);
    memset(&addr, 0, sizeof(addr));
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fd, (struct sockaddr *)&addr, sizeof(addr)), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&addr, &alen), 0);
    close(fd); /* bound, never listened: the port refuses connections */
    snprintf(url, sizeof(url), "http://127.0.0.1:%u/ok", (unsigned)ntohs(addr.sin_port));
    assert_int_equal(fota_posix_http_init(&h), FOTA_OK);
    assert_int_equal(fota_posix_http_get(&h, url, 100, &buf, &len), FOTA_E_IO);
    assert_true(h.errmsg[0] != '\0');
    assert_ptr_equal(buf, UNTOUCHED_BUF);
    fota_posix_http_cleanup(&h);
}

/* A redirect is an answer we did not ask for: the Location is not fetched. */
static void test_http_redirect_not_followed(void **state)
{
    static const char *const paths[] = { "/302", "/302-body" };
    struct fota_posix_http h;

    (void)state;
    assert_int_equal(fota_posix_http_init(&h), FOTA_OK);
    for (size_t i = 0; i < TU_ARRAY_LEN(paths); i++) {
        unsigned before = server_requests();
        char url[128], seen[160];
        uint8_t *buf = UNTOUCHED_BUF;
        size_t len = UNTOUCHED_LEN;

        url_of(url, sizeof(url), paths[i]);
        assert_int_equal(fota_posix_http_get(&h, url, 1000, &buf, &len), FOTA_E_IO);
        assert_int_equal(server_requests(), before + 1);
        server_request(before, seen, sizeof(seen));
        assert_string_equal(seen, paths[i]);
    }
    fota_posix_http_cleanup(&h);
}

struct count_sink {
    uint64_t total;
    unsigned calls;
    unsigned fail_at;   /* fail the call with this number (1-based); 0: never */
    fota_err fail_with;
    int mismatch;       /* a byte differed from the pattern */
};

static fota_err count_sink(void *ctx, const uint8_t *data, size_t len)
{
    struct count_sink *c = ctx;

    c->calls++;
    if (c->fail_at != 0 && c->calls >= c->fail_at) {
        return c->fail_with;
    }
    for (size_t i = 0; i < len; i++) {
        if (data[i] != pattern_byte(c->total + i)) {
            c->mismatch = 1;
        }
    }
    c->total += len;
    return FOTA_OK;
}

static fota_err stream(struct fota_posix_http *h, const char *path, uint64_t max_len, struct count_sink *c)
{
    char url[128];

    url_of(url, sizeof(url), path);
    return fota_posix_http_stream(h, url, max_len, count_sink, c);
}

static void test_http_stream(void **state)
{
    static const uint64_t caps[] = { 0, 1, 1000, 8191, 8192, 8193, 100000 };
    struct fota_posix_http h;
    struct count_sink c;

    (void)state;
    assert_int_equal(fota_posix_http_init(&h), FOTA_OK);

    /* a whole body, in order, in several chunks */
    memset(&c, 0, sizeof(c));
    assert_int_equal(stream(&h, "/big", BIG_LEN, &c), FOTA_OK);
    assert_int_equal(c.total, BIG_LEN);
    assert_true(c.calls > 1);
    assert_false(c.mismatch);
    /* no cap at all is allowed for streaming */
    memset(&c, 0, sizeof(c));
    assert_int_equal(stream(&h, "/chunked", UINT64_MAX, &c), FOTA_OK);
    assert_int_equal(c.total, BIG_LEN);
    assert_false(c.mismatch);

    /* a body that never ends: never more than max_len bytes reach the sink */
    for (size_t i = 0; i < TU_ARRAY_LEN(caps); i++) {
        static const char *const endless[] = { "/endless", "/endless-chunked" };

        for (size_t e = 0; e < TU_ARRAY_LEN(endless); e++) {
            memset(&c, 0, sizeof(c));
            assert_int_equal(stream(&h, endless[e], caps[i], &c), FOTA_E_LENGTH);
            if (c.total > caps[i]) {
                fail_msg("%s: %llu bytes reached the sink with max_len %llu", endless[e],
                         (unsigned long long)c.total, (unsigned long long)caps[i]);
            }
            assert_false(c.mismatch);
        }
    }

    /* a Content-Length over the cap: refused before any body byte */
    memset(&c, 0, sizeof(c));
    assert_int_equal(stream(&h, "/claims-huge", 1000, &c), FOTA_E_LENGTH);
    assert_int_equal(c.calls, 0);
    memset(&c, 0, sizeof(c));
    assert_int_equal(stream(&h, "/big", BIG_LEN - 1, &c), FOTA_E_LENGTH);
    assert_int_equal(c.calls, 0);

    /* error pages and redirects never reach the sink */
    {
        static const struct {
            const char *path;
            fota_err want;
        } pages[] = {
            { "/404", FOTA_E_NOT_FOUND }, { "/403", FOTA_E_NOT_FOUND }, { "/500", FOTA_E_IO },
            { "/302-body", FOTA_E_IO },
        };

        for (size_t i = 0; i < TU_ARRAY_LEN(pages); i++) {
            memset(&c, 0, sizeof(c));
            assert_int_equal(stream(&h, pages[i].path, 1000, &c), pages[i].want);
            assert_int_equal(c.calls, 0);
        }
    }
    fota_posix_http_cleanup(&h);
}

/* The sink's error ends the transfer at once and is the result. */
static void test_http_stream_sink_error(void **state)
{
    static const char *const paths[] = { "/big", "/chunked", "/endless", "/endless-chunked" };
    static const unsigned fail_at[] = { 1, 2, 3 };
    struct fota_posix_http h;

    (void)state;
    assert_int_equal(fota_posix_http_init(&h), FOTA_OK);
    for (size_t p = 0; p < TU_ARRAY_LEN(paths); p++) {
        for (size_t f = 0; f < TU_ARRAY_LEN(fail_at); f++) {
            struct count_sink c;

            memset(&c, 0, sizeof(c));
            c.fail_at = fail_at[f];
            c.fail_with = FOTA_E_HASH;
            assert_int_equal(stream(&h, paths[p], UINT64_MAX, &c), FOTA_E_HASH);
            assert_int_equal(c.calls, fail_at[f]);
            assert_true(h.errmsg[0] != '\0');
        }
    }
    fota_posix_http_cleanup(&h);
}

/* A server that sends headers and a few bytes, then nothing: the minimum
 * speed ends the transfer instead of letting it hang. */
static void test_http_slow_retrieval(void **state)
{
    struct fota_posix_http h;
    struct count_sink c;
    time_t start;

    (void)state;
    assert_int_equal(fota_posix_http_init(&h), FOTA_OK);
    h.low_speed_bytes = 1000;
    h.low_speed_time_s = 1;
    memset(&c, 0, sizeof(c));
    start = time(NULL);
    assert_int_equal(stream(&h, "/stall", 1 << 20, &c), FOTA_E_IO);
    assert_true(time(NULL) - start <= 4);
    assert_true(h.errmsg[0] != '\0');
    fota_posix_http_cleanup(&h);
}

/* ---- the TUF port bundle -------------------------------------------------------- */

static void test_tuf_port(void **state)
{
    struct fota_posix_tuf t;
    struct fota_tuf_port *port;
    char base[128], seen[160];
    uint8_t *buf = UNTOUCHED_BUF;
    size_t len = UNTOUCHED_LEN;
    int64_t now;
    unsigned before;

    (void)state;
    url_of(base, sizeof(base), "/echo"); /* no trailing "/": init adds it */
    assert_int_equal(fota_posix_tuf_init(&t, g_dir, base, "test", 0), FOTA_OK);
    port = &t.port;
    assert_ptr_equal(port->ctx, &t);

    before = server_requests();
    assert_int_equal(port->fetch(port->ctx, "2.root.json", 1000, &buf, &len), FOTA_OK);
    assert_int_equal(len, strlen("/echo/2.root.json"));
    assert_memory_equal(buf, "/echo/2.root.json", len);
    free(buf);
    /* an encoded name goes out as it is */
    assert_int_equal(port->fetch(port->ctx, "3.a%2Fb.json", 1000, &buf, &len), FOTA_OK);
    free(buf);
    assert_int_equal(server_requests(), before + 2);
    server_request(before + 1, seen, sizeof(seen));
    assert_string_equal(seen, "/echo/3.a%2Fb.json");

    /* the cap reaches the transport; bad names never do */
    buf = UNTOUCHED_BUF;
    len = UNTOUCHED_LEN;
    assert_int_equal(port->fetch(port->ctx, "2.root.json", 5, &buf, &len), FOTA_E_LENGTH);
    before = server_requests();
    assert_int_equal(port->fetch(port->ctx, "../x", 1000, &buf, &len), FOTA_E_INVALID);
    assert_int_equal(port->fetch(port->ctx, "a/b", 1000, &buf, &len), FOTA_E_INVALID);
    assert_int_equal(server_requests(), before);
    assert_ptr_equal(buf, UNTOUCHED_BUF);

    /* storage goes to metadata_dir */
    assert_int_equal(port->store(port->ctx, "root.json", (const uint8_t *)"{}", 2), FOTA_OK);
    assert_file_is(g_dir, "root.json", "{}", 2);
    assert_int_equal(port->load(port->ctx, "root.json", 2, &buf, &len), FOTA_OK);
    assert_int_equal(len, 2);
    free(buf);
    buf = UNTOUCHED_BUF;
    assert_int_equal(port->load(port->ctx, "root.json", 1, &buf, &len), FOTA_E_LENGTH);
    assert_int_equal(port->remove(port->ctx, "root.json"), FOTA_OK);
    assert_int_equal(port->load(port->ctx, "root.json", 2, &buf, &len), FOTA_E_NOT_FOUND);
    assert_entries(g_dir, 0);

    now = port->now(port->ctx);
    assert_true(now >= (int64_t)time(NULL) - 5 && now <= (int64_t)time(NULL) + 5);
    fota_posix_tuf_cleanup(&t);
    fota_posix_tuf_cleanup(&t);

    /* a 404 at the base URL is "not found" */
    url_of(base, sizeof(base), "/nothing/");
    assert_int_equal(fota_posix_tuf_init(&t, g_dir, base, "test", 0), FOTA_OK);
    assert_int_equal(t.port.fetch(t.port.ctx, "5.root.json", 1000, &buf, &len), FOTA_E_NOT_FOUND);
    fota_posix_tuf_cleanup(&t);

    /* without a URL, nothing is fetched */
    assert_int_equal(fota_posix_tuf_init(&t, g_dir, NULL, "test", 0), FOTA_OK);
    assert_null(t.metadata_url);
    assert_int_equal(t.port.fetch(t.port.ctx, "1.root.json", 1000, &buf, &len), FOTA_E_INVALID);
    fota_posix_tuf_cleanup(&t);
    assert_ptr_equal(buf, UNTOUCHED_BUF);

    assert_int_equal(fota_posix_tuf_init(&t, "", NULL, "test", 0), FOTA_E_INVALID);
    assert_int_equal(fota_posix_tuf_init(&t, NULL, NULL, "test", 0), FOTA_E_INVALID);
    assert_int_equal(fota_posix_tuf_init(&t, g_dir, "", "test", 0), FOTA_E_INVALID);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_name_ok),
        cmocka_unit_test_setup_teardown(test_bad_names_refused_everywhere, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_read_file_caps, setup_dir, teardown_dir),
        cmocka_unit_test(test_read_file_growing),
        cmocka_unit_test_setup_teardown(test_read_fifo_does_not_block, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_dir_load, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_store_replaces, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_store_replaces_links_and_fifos, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_store_failure_keeps_old, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_dir_remove, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_mkdir, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_atomic_abort_leaves_nothing, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_atomic_commit, setup_dir, teardown_dir),
        cmocka_unit_test(test_url_base),
        cmocka_unit_test(test_url_path),
        cmocka_unit_test(test_http_get),
        cmocka_unit_test(test_http_errors_say_why),
        cmocka_unit_test(test_http_connection_refused),
        cmocka_unit_test(test_http_redirect_not_followed),
        cmocka_unit_test(test_http_stream),
        cmocka_unit_test(test_http_stream_sink_error),
        cmocka_unit_test(test_http_slow_retrieval),
        cmocka_unit_test_setup_teardown(test_tuf_port, setup_dir, teardown_dir),
    };

    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
