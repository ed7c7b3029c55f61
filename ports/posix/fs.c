/* SPDX-License-Identifier: Apache-2.0 */
/*
 * File storage for host programs. Trusted metadata and verified targets are
 * only ever made visible by rename() of a fully written, fsync'ed temp file,
 * followed by an fsync of the directory so that the rename itself survives a
 * power cut.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fota_posix.h"

#define NAME_MAX_BYTES 255
/* A prefix no encoded name can start with ("+" is always percent-encoded),
 * and a suffix that is never ".json". */
#define TMP_PREFIX ".fota+tmp."
#define TMP_TEMPLATE TMP_PREFIX "XXXXXX"
/* Chunk size of fota_posix_file_stream. */
#define STREAM_CHUNK (64u * 1024u)
/* struct fota_posix_atomic flags beyond the public FOTA_POSIX_NO_REPLACE. */
#define ATOMIC_SET_MODE 0x100u

int fota_posix_name_ok(const char *name)
{
    size_t len;

    if (name == NULL)
        return 0;
    len = strnlen(name, NAME_MAX_BYTES + 1);
    if (len == 0 || len > NAME_MAX_BYTES)
        return 0;
    if (strchr(name, '/') != NULL)
        return 0;
    if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
        return 0;
    return 1;
}

static fota_err join_path(const char *dir, const char *name, char **ret_path)
{
    size_t dlen = strlen(dir);
    size_t nlen = strlen(name);
    char *p;

    p = malloc(dlen + 1 + nlen + 1);
    if (p == NULL)
        return FOTA_E_NOMEM;
    memcpy(p, dir, dlen);
    p[dlen] = '/';
    memcpy(p + dlen + 1, name, nlen + 1);
    *ret_path = p;
    return FOTA_OK;
}

/* Closing a descriptor on the way out of a failure must not change the
 * errno the header promises to leave behind. */
static void close_keep_errno(int fd)
{
    int saved = errno;

    close(fd);
    errno = saved;
}

/* read(2), retried when a signal interrupts it. */
static ssize_t read_some(int fd, void *buf, size_t len)
{
    for (;;) {
        ssize_t n = read(fd, buf, len);

        if (n >= 0 || errno != EINTR)
            return n;
    }
}

/* Open path for reading, which must be a regular file no longer than
 * max_len. */
static fota_err open_regular(const char *path, uint64_t max_len, int *ret_fd, uint64_t *ret_size)
{
    struct stat st;
    int flags;
    int fd;

    /* O_NONBLOCK: opening a FIFO put where a file belongs would otherwise
     * wait for a writer. It means nothing for a regular file, and is
     * cleared once the file is known to be one. */
    fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0)
        return errno == ENOENT ? FOTA_E_NOT_FOUND : FOTA_E_IO;
    if (fstat(fd, &st) != 0) {
        close_keep_errno(fd);
        return FOTA_E_IO;
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        errno = EINVAL;
        return FOTA_E_IO;
    }
    flags = fcntl(fd, F_GETFL);
    if (flags < 0 || fcntl(fd, F_SETFL, flags & ~O_NONBLOCK) != 0) {
        close_keep_errno(fd);
        return FOTA_E_IO;
    }
    if ((uint64_t)st.st_size > max_len) {
        close(fd);
        return FOTA_E_LENGTH;
    }
    *ret_fd = fd;
    *ret_size = (uint64_t)st.st_size;
    return FOTA_OK;
}

static fota_err write_all(int fd, const uint8_t *buf, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, buf, len);

        if (n < 0) {
            if (errno == EINTR)
                continue;
            return FOTA_E_IO;
        }
        buf += n;
        len -= (size_t)n;
    }
    return FOTA_OK;
}

fota_err fota_posix_read_file(const char *path, size_t max_len,
                              uint8_t **ret_buf, size_t *ret_len)
{
    fota_err err;
    uint8_t *buf = NULL;
    size_t cap, len = 0;
    uint64_t size;
    int fd;

    if (path == NULL || ret_buf == NULL || ret_len == NULL || max_len == SIZE_MAX)
        return FOTA_E_INVALID;
    err = open_regular(path, max_len, &fd, &size);
    if (err != FOTA_OK)
        return err;
    err = FOTA_E_IO;
    /* The size may change under us: read up to one byte past the cap so
     * that growth is noticed, never more. */
    cap = (size_t)size + 1;
    buf = malloc(cap + 1);
    if (buf == NULL) {
        err = FOTA_E_NOMEM;
        goto out;
    }
    for (;;) {
        ssize_t n;

        if (len == cap) {
            uint8_t *nbuf;

            if (len > max_len) {
                err = FOTA_E_LENGTH;
                goto out;
            }
            cap = cap > (max_len + 1) / 2 ? max_len + 1 : cap * 2;
            nbuf = realloc(buf, cap + 1);
            if (nbuf == NULL) {
                err = FOTA_E_NOMEM;
                goto out;
            }
            buf = nbuf;
        }
        n = read_some(fd, buf + len, cap - len);
        if (n < 0)
            goto out;
        if (n == 0)
            break;
        len += (size_t)n;
    }
    if (len > max_len) {
        err = FOTA_E_LENGTH;
        goto out;
    }
    buf[len] = '\0';
    *ret_buf = buf;
    *ret_len = len;
    buf = NULL;
    err = FOTA_OK;
out:
    free(buf);
    close_keep_errno(fd);
    return err;
}

fota_err fota_posix_file_stream(const char *path, uint64_t max_len, fota_posix_sink sink,
                                void *ctx)
{
    fota_err err;
    uint8_t *buf = NULL;
    uint64_t size, total = 0;
    int fd;

    if (path == NULL || sink == NULL)
        return FOTA_E_INVALID;
    err = open_regular(path, max_len, &fd, &size);
    if (err != FOTA_OK)
        return err;
    buf = malloc(STREAM_CHUNK);
    if (buf == NULL) {
        err = FOTA_E_NOMEM;
        goto out;
    }
    for (;;) {
        ssize_t n = read_some(fd, buf, STREAM_CHUNK);

        if (n < 0) {
            err = FOTA_E_IO;
            goto out;
        }
        if (n == 0)
            break;
        /* The file may have grown since fstat: the cap holds while reading. */
        if ((uint64_t)n > max_len - total) {
            err = FOTA_E_LENGTH;
            goto out;
        }
        total += (uint64_t)n;
        err = sink(ctx, buf, (size_t)n);
        if (err != FOTA_OK)
            goto out;
    }
    err = FOTA_OK;
out:
    free(buf);
    close_keep_errno(fd);
    return err;
}

fota_err fota_posix_dir_load(const char *dir, const char *name, size_t max_len,
                             uint8_t **ret_buf, size_t *ret_len)
{
    char *path = NULL;
    fota_err err;

    if (dir == NULL || !fota_posix_name_ok(name))
        return FOTA_E_INVALID;
    err = join_path(dir, name, &path);
    if (err != FOTA_OK)
        return err;
    err = fota_posix_read_file(path, max_len, ret_buf, ret_len);
    free(path);
    return err;
}

static fota_err fsync_dir_fd(int dir_fd)
{
    /* Some file systems refuse fsync on a directory; the rename is then as
     * durable as they can make it. */
    if (fsync(dir_fd) != 0 && errno != EINVAL && errno != EROFS)
        return FOTA_E_IO;
    return FOTA_OK;
}

/* A name a committed file may take: one file name, and never one of our
 * temp names. */
static int final_name_ok(const char *name)
{
    return fota_posix_name_ok(name) && strncmp(name, TMP_PREFIX, strlen(TMP_PREFIX)) != 0;
}

/* fota_posix_atomic_open and fota_posix_atomic_open_path: the temp file is
 * created with create_mode; mode and flags are kept for the commit. */
static fota_err atomic_begin(struct fota_posix_atomic *a, const char *dir, const char *name,
                             unsigned create_mode, unsigned mode, unsigned flags)
{
    fota_err err = FOTA_E_IO;
    int dir_fd = -1, fd = -1;
    char *final_name = NULL;
    char tmp[sizeof(TMP_TEMPLATE)];
    unsigned attempt;

    if (a == NULL || dir == NULL || !final_name_ok(name))
        return FOTA_E_INVALID;
    dir_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dir_fd < 0)
        return errno == ENOENT ? FOTA_E_NOT_FOUND : FOTA_E_IO;
    final_name = strdup(name);
    if (final_name == NULL) {
        err = FOTA_E_NOMEM;
        goto out;
    }
    /* mkstemp works on paths, not on directory descriptors: draw the
     * random part ourselves and create the file with O_EXCL. */
    for (attempt = 0; attempt < 64 && fd < 0; attempt++) {
        static const char alphabet[] =
            "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
        uint8_t rnd[6];
        size_t i;
        int rfd;
        ssize_t got;

        rfd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
        if (rfd < 0)
            goto out;
        got = read_some(rfd, rnd, sizeof(rnd));
        close_keep_errno(rfd);
        if (got != (ssize_t)sizeof(rnd)) {
            if (got >= 0)
                errno = EIO;
            goto out;
        }
        memcpy(tmp, TMP_TEMPLATE, sizeof(tmp));
        for (i = 0; i < sizeof(rnd); i++)
            tmp[strlen(TMP_PREFIX) + i] = alphabet[rnd[i] % (sizeof(alphabet) - 1)];
        fd = openat(dir_fd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW,
                    (mode_t)create_mode);
        if (fd < 0 && errno != EEXIST)
            goto out;
    }
    if (fd < 0)
        goto out;
    a->tmp_name = strdup(tmp);
    if (a->tmp_name == NULL) {
        unlinkat(dir_fd, tmp, 0);
        err = FOTA_E_NOMEM;
        goto out;
    }
    a->fd = fd;
    a->dir_fd = dir_fd;
    a->final_name = final_name;
    a->mode = mode;
    a->flags = flags;
    fd = -1;
    dir_fd = -1;
    final_name = NULL;
    err = FOTA_OK;
out:
    if (fd >= 0)
        close_keep_errno(fd);
    if (dir_fd >= 0)
        close_keep_errno(dir_fd);
    free(final_name);
    return err;
}

fota_err fota_posix_atomic_open(struct fota_posix_atomic *a, const char *dir,
                                const char *name)
{
    return atomic_begin(a, dir, name, 0644, 0, 0);
}

fota_err fota_posix_atomic_open_path(struct fota_posix_atomic *a, const char *path,
                                     unsigned mode, unsigned flags)
{
    const char *slash;
    char *dir;
    fota_err err;

    if (a == NULL || path == NULL || (flags & ~FOTA_POSIX_NO_REPLACE) != 0)
        return FOTA_E_INVALID;
    slash = strrchr(path, '/');
    if (slash == NULL)
        dir = strdup(".");
    else if (slash == path)
        dir = strdup("/");
    else
        dir = strndup(path, (size_t)(slash - path));
    if (dir == NULL)
        return FOTA_E_NOMEM;
    /* 0600 until commit sets the final mode. */
    err = atomic_begin(a, dir, slash != NULL ? slash + 1 : path, 0600, mode,
                       flags | ATOMIC_SET_MODE);
    free(dir);
    return err;
}

fota_err fota_posix_atomic_write(struct fota_posix_atomic *a, const void *data, size_t len)
{
    if (a == NULL || a->fd < 0 || (data == NULL && len > 0))
        return FOTA_E_INVALID;
    return write_all(a->fd, data, len);
}

static void atomic_release(struct fota_posix_atomic *a)
{
    int saved = errno;

    if (a->fd >= 0)
        close(a->fd);
    if (a->tmp_name != NULL)
        unlinkat(a->dir_fd, a->tmp_name, 0);
    if (a->dir_fd >= 0)
        close(a->dir_fd);
    free(a->tmp_name);
    free(a->final_name);
    a->fd = -1;
    a->dir_fd = -1;
    a->tmp_name = NULL;
    a->final_name = NULL;
    errno = saved;
}

fota_err fota_posix_atomic_commit(struct fota_posix_atomic *a)
{
    fota_err err = FOTA_E_IO;
    int fd;

    if (a == NULL || a->fd < 0)
        return FOTA_E_INVALID;
    fd = a->fd;
    a->fd = -1;
    if ((a->flags & ATOMIC_SET_MODE) != 0 && fchmod(fd, (mode_t)a->mode) != 0) {
        close_keep_errno(fd);
        goto out;
    }
    if (fsync(fd) != 0) {
        close_keep_errno(fd);
        goto out;
    }
    if (close(fd) != 0)
        goto out;
    if ((a->flags & FOTA_POSIX_NO_REPLACE) != 0) {
        /* link() fails with EEXIST where rename() would replace: no-clobber
         * and atomic at once. The temp name goes before the directory is
         * synced, so that both changes are durable together; if it cannot
         * be removed the file is in place all the same. */
        if (linkat(a->dir_fd, a->tmp_name, a->dir_fd, a->final_name, 0) != 0)
            goto out;
        unlinkat(a->dir_fd, a->tmp_name, 0);
    } else if (renameat(a->dir_fd, a->tmp_name, a->dir_fd, a->final_name) != 0) {
        goto out;
    }
    /* The temp name is gone now: nothing left to unlink. */
    free(a->tmp_name);
    a->tmp_name = NULL;
    err = fsync_dir_fd(a->dir_fd);
out:
    atomic_release(a);
    return err;
}

fota_err fota_posix_atomic_commit_as(struct fota_posix_atomic *a, const char *name)
{
    char *final_name;

    if (a == NULL || a->fd < 0)
        return FOTA_E_INVALID;
    if (!final_name_ok(name)) {
        atomic_release(a);
        return FOTA_E_INVALID;
    }
    final_name = strdup(name);
    if (final_name == NULL) {
        atomic_release(a);
        return FOTA_E_NOMEM;
    }
    free(a->final_name);
    a->final_name = final_name;
    return fota_posix_atomic_commit(a);
}

void fota_posix_atomic_abort(struct fota_posix_atomic *a)
{
    if (a == NULL)
        return;
    atomic_release(a);
}

/* The rest of a whole-file write, once a is open. */
static fota_err write_and_commit(struct fota_posix_atomic *a, const void *buf, size_t len)
{
    fota_err err;

    err = fota_posix_atomic_write(a, buf, len);
    if (err != FOTA_OK) {
        fota_posix_atomic_abort(a);
        return err;
    }
    return fota_posix_atomic_commit(a);
}

fota_err fota_posix_dir_store(const char *dir, const char *name,
                              const uint8_t *buf, size_t len)
{
    struct fota_posix_atomic a;
    fota_err err;

    if (buf == NULL && len > 0)
        return FOTA_E_INVALID;
    err = fota_posix_atomic_open(&a, dir, name);
    if (err != FOTA_OK)
        return err;
    return write_and_commit(&a, buf, len);
}

fota_err fota_posix_write_file(const char *path, const void *buf, size_t len, unsigned mode,
                               unsigned flags)
{
    struct fota_posix_atomic a;
    fota_err err;

    if (buf == NULL && len > 0)
        return FOTA_E_INVALID;
    err = fota_posix_atomic_open_path(&a, path, mode, flags);
    if (err != FOTA_OK)
        return err;
    return write_and_commit(&a, buf, len);
}

fota_err fota_posix_dir_remove(const char *dir, const char *name)
{
    fota_err err = FOTA_E_IO;
    int dir_fd;

    if (dir == NULL || !fota_posix_name_ok(name))
        return FOTA_E_INVALID;
    dir_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dir_fd < 0)
        return errno == ENOENT ? FOTA_OK : FOTA_E_IO;
    if (unlinkat(dir_fd, name, 0) != 0) {
        if (errno == ENOENT)
            err = FOTA_OK;
        goto out;
    }
    err = fsync_dir_fd(dir_fd);
out:
    close_keep_errno(dir_fd);
    return err;
}

fota_err fota_posix_mkdir(const char *dir)
{
    struct stat st;

    if (dir == NULL || dir[0] == '\0')
        return FOTA_E_INVALID;
    if (mkdir(dir, 0755) == 0)
        return FOTA_OK;
    if (errno != EEXIST)
        return FOTA_E_IO;
    if (stat(dir, &st) != 0)
        return FOTA_E_IO;
    if (!S_ISDIR(st.st_mode)) {
        errno = ENOTDIR;
        return FOTA_E_IO;
    }
    return FOTA_OK;
}

fota_err fota_posix_mkdirs(const char *dir)
{
    fota_err err = FOTA_OK;
    char *p;

    if (dir == NULL || dir[0] == '\0')
        return FOTA_E_INVALID;
    p = strdup(dir);
    if (p == NULL)
        return FOTA_E_NOMEM;
    /* Each parent in turn (a leading "/" is not a parent to create). */
    for (char *s = p + 1; *s != '\0' && err == FOTA_OK; s++) {
        if (*s != '/')
            continue;
        *s = '\0';
        err = fota_posix_mkdir(p);
        *s = '/';
    }
    if (err == FOTA_OK)
        err = fota_posix_mkdir(p);
    free(p);
    return err;
}
