/* SPDX-License-Identifier: Apache-2.0 */
#include "fuzz_common.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fota_posix.h"
#include "keyfile.h"

#define FZ_FIXTURE_FILE_MAX (16u * 1024u * 1024u)
#define FZ_KEYS_MAX 16

void fz_fail(const char *fmt, ...)
{
    va_list ap;

    fputs("fuzz: invariant broken: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    abort();
}

void fz_note(const char *fmt, ...)
{
    static int verbose = -1;
    va_list ap;

    if (verbose < 0)
        verbose = getenv("FOTA_FUZZ_VERBOSE") != NULL;
    if (!verbose)
        return;
    fputs("  ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

const char *fz_fixture_path(const char *rel)
{
    static char path[4096];
    int n = snprintf(path, sizeof(path), "%s/%s", FOTA_FUZZ_FIXTURE, rel);

    if (n < 0 || (size_t)n >= sizeof(path))
        fz_fail("fixture path too long: %s", rel);
    return path;
}

uint8_t *fz_fixture_read(const char *rel, size_t *ret_len)
{
    uint8_t *buf = NULL;
    fota_err err = fota_posix_read_file(fz_fixture_path(rel), FZ_FIXTURE_FILE_MAX, &buf, ret_len);

    if (err != FOTA_OK)
        fz_fail("cannot read fixture %s (%s): run fuzz/make_corpus.sh", rel,
                fota_strerror(err));
    return buf;
}

const fota_privkey *fz_fixture_key(const char *name)
{
    static struct {
        char name[64];
        fota_privkey *key;
    } keys[FZ_KEYS_MAX];
    static size_t n_keys;
    char rel[128];
    fota_err err;

    for (size_t i = 0; i < n_keys; i++) {
        if (strcmp(keys[i].name, name) == 0)
            return keys[i].key;
    }
    if (n_keys == FZ_KEYS_MAX || strlen(name) >= sizeof(keys[0].name))
        fz_fail("too many fixture keys");
    snprintf(rel, sizeof(rel), "keys/%s.pem", name);
    err = fota_keyfile_load_privkey(fz_fixture_path(rel), &keys[n_keys].key);
    if (err != FOTA_OK)
        fz_fail("cannot load fixture key %s (%s)", rel, fota_strerror(err));
    snprintf(keys[n_keys].name, sizeof(keys[n_keys].name), "%s", name);
    return keys[n_keys++].key;
}

void fz_rm_tree(const char *path)
{
    struct stat st;
    DIR *d;
    struct dirent *e;

    if (lstat(path, &st) != 0)
        return;
    if (!S_ISDIR(st.st_mode)) {
        unlink(path);
        return;
    }
    d = opendir(path);
    if (d != NULL) {
        while ((e = readdir(d)) != NULL) {
            char child[4096];
            int n;
            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
                continue;
            n = snprintf(child, sizeof(child), "%s/%s", path, e->d_name);
            if (n > 0 && (size_t)n < sizeof(child))
                fz_rm_tree(child);
        }
        closedir(d);
    }
    rmdir(path);
}

static int copy_file(const char *src, const char *dst, mode_t mode)
{
    char buf[65536];
    int in = open(src, O_RDONLY | O_CLOEXEC);
    int out = -1, ret = -1;
    ssize_t n;

    if (in < 0)
        return -1;
    out = open(dst, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode & 0777);
    if (out < 0)
        goto out;
    while ((n = read(in, buf, sizeof(buf))) > 0) {
        if (write(out, buf, (size_t)n) != n)
            goto out;
    }
    ret = n == 0 ? 0 : -1;
out:
    if (out >= 0 && close(out) != 0)
        ret = -1;
    close(in);
    return ret;
}

int fz_copy_tree(const char *src, const char *dst)
{
    struct stat st;
    DIR *d;
    struct dirent *e;
    int ret = 0;

    if (lstat(src, &st) != 0)
        return -1;
    if (S_ISREG(st.st_mode))
        return copy_file(src, dst, st.st_mode);
    if (!S_ISDIR(st.st_mode))
        return 0;   /* sockets, links: nothing of ours */
    if (mkdir(dst, 0700) != 0 && errno != EEXIST)
        return -1;
    d = opendir(src);
    if (d == NULL)
        return -1;
    while (ret == 0 && (e = readdir(d)) != NULL) {
        char s[4096], t[4096];
        int a, b;
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        a = snprintf(s, sizeof(s), "%s/%s", src, e->d_name);
        b = snprintf(t, sizeof(t), "%s/%s", dst, e->d_name);
        if (a < 0 || b < 0 || (size_t)a >= sizeof(s) || (size_t)b >= sizeof(t))
            ret = -1;
        else
            ret = fz_copy_tree(s, t);
    }
    closedir(d);
    return ret;
}

static char tmpdir[4096];
static pid_t tmpdir_owner;

static void tmpdir_remove(void)
{
    /* Only the process that made it (libFuzzer's -fork children inherit
     * atexit handlers). */
    if (tmpdir[0] != '\0' && getpid() == tmpdir_owner)
        fz_rm_tree(tmpdir);
}

const char *fz_tmpdir(void)
{
    const char *base = getenv("TMPDIR");
    int n;

    if (tmpdir[0] != '\0')
        return tmpdir;
    if (base == NULL || base[0] == '\0')
        base = "/tmp";
    n = snprintf(tmpdir, sizeof(tmpdir), "%s/fota-fuzz.XXXXXX", base);
    if (n < 0 || (size_t)n >= sizeof(tmpdir) || mkdtemp(tmpdir) == NULL)
        fz_fail("cannot make a temporary directory under %s", base);
    tmpdir_owner = getpid();
    atexit(tmpdir_remove);
    return tmpdir;
}
