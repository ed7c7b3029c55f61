/* SPDX-License-Identifier: Apache-2.0 */
#ifndef FOTA_POSIX_H
#define FOTA_POSIX_H

/*
 * The POSIX port for host programs (fota-tuf-client, fota-agent, fota-sim):
 * file storage in one directory, the clock, HTTP over libcurl, and a bundle
 * of all three as a struct fota_tuf_port.
 *
 * Every function returns a fota_err; outputs named ret_* are written only on
 * FOTA_OK. Nothing here is thread-safe on a shared object: give each thread
 * its own struct.
 */

#include <stddef.h>
#include <stdint.h>

#include "fota/error.h"
#include "fota/tuf.h"

/* ---- files ------------------------------------------------------------ */

/*
 * When a function of this section fails with FOTA_E_IO or FOTA_E_NOT_FOUND,
 * errno holds the system's reason (EACCES, ENOSPC, EEXIST, ...; EINVAL for
 * a path that is not a regular file), so that a program can say why.
 */

/* Called with each chunk of a stream (a file being read, an HTTP body), in
 * order. Any return other than FOTA_OK stops the stream at once and becomes
 * its result. */
typedef fota_err (*fota_posix_sink)(void *ctx, const uint8_t *data, size_t len);

/* 1 when name is usable as one file name inside a directory: not empty, no
 * "/", not "." or "..", at most 255 bytes. */
int fota_posix_name_ok(const char *name);

/* Read the whole regular file at path. FOTA_E_NOT_FOUND when it does not
 * exist, FOTA_E_LENGTH when it holds more than max_len bytes, FOTA_E_IO for
 * anything else (not a regular file, read error). *ret_buf is malloc'ed,
 * owned by the caller, and NUL-terminated one byte past *ret_len (so a
 * text file can be used as a string); the NUL is not counted. */
fota_err fota_posix_read_file(const char *path, size_t max_len,
                              uint8_t **ret_buf, size_t *ret_len);

/* The same for dir/name, after checking name with fota_posix_name_ok
 * (FOTA_E_INVALID otherwise). */
fota_err fota_posix_dir_load(const char *dir, const char *name, size_t max_len,
                             uint8_t **ret_buf, size_t *ret_len);

/* Replace dir/name with exactly buf[0..len) atomically: a temp file in dir,
 * fsync, rename, fsync of dir. A crash leaves the old content or the new. */
fota_err fota_posix_dir_store(const char *dir, const char *name,
                              const uint8_t *buf, size_t len);

/* Delete dir/name; FOTA_OK when it was absent. */
fota_err fota_posix_dir_remove(const char *dir, const char *name);

/* Create dir (one level, mode 0755) unless it already exists as a directory. */
fota_err fota_posix_mkdir(const char *dir);

/*
 * A file written in pieces and made visible under its final name only by
 * fota_posix_atomic_commit. The temp file lives in the same directory and
 * its name starts with ".fota+tmp.": "+" never appears in a name made by
 * fota_tuf_encode_name, so it cannot collide with metadata or targets, and
 * it never ends in ".json".
 *
 * After a successful open, exactly one of commit or abort must be called;
 * both release everything and remove the temp file (commit by renaming it).
 */
struct fota_posix_atomic {
    int fd;
    int dir_fd;
    char *tmp_name;   /* inside the directory */
    char *final_name;
    unsigned mode;    /* set by fota_posix_atomic_open_path */
    unsigned flags;   /* private */
};

fota_err fota_posix_atomic_open(struct fota_posix_atomic *a, const char *dir,
                                const char *name);
fota_err fota_posix_atomic_write(struct fota_posix_atomic *a, const void *data,
                                 size_t len);
/* fsync, rename onto the final name, fsync the directory. On failure the
 * temp file is removed and the final name keeps its previous content. */
fota_err fota_posix_atomic_commit(struct fota_posix_atomic *a);
/* Releases everything and removes the temp file. Calling it again, or after
 * a commit, does nothing; so does calling it on a struct whose fd and dir_fd
 * are -1 and whose names are NULL (one that was never opened). */
void fota_posix_atomic_abort(struct fota_posix_atomic *a);

/* Flags of fota_posix_atomic_open_path and fota_posix_write_file. */
#define FOTA_POSIX_NO_REPLACE 1u /* never replace an existing file */

/*
 * fota_posix_atomic_open for a file named by a path (its directory is the
 * part before the last "/", or "." when there is none; the last component
 * must pass fota_posix_name_ok). The temp file is created mode 0600 and gets
 * exactly `mode` (the umask does not apply) on commit, so a private key is
 * never readable by others, not even while it is written. With
 * FOTA_POSIX_NO_REPLACE, commit links the file into place instead of
 * renaming it over the final name: it fails with FOTA_E_IO and errno EEXIST
 * when that name exists, and never replaces it, even in a race.
 */
fota_err fota_posix_atomic_open_path(struct fota_posix_atomic *a, const char *path,
                                     unsigned mode, unsigned flags);

/* fota_posix_atomic_commit under name, in the same directory, instead of the
 * name given at open: for a file named after its content (a target stored
 * under its hash). name must pass fota_posix_name_ok (FOTA_E_INVALID
 * otherwise). Everything is released whatever the result. */
fota_err fota_posix_atomic_commit_as(struct fota_posix_atomic *a, const char *name);

/* Write path with exactly buf[0..len): fota_posix_atomic_open_path,
 * fota_posix_atomic_write, fota_posix_atomic_commit. */
fota_err fota_posix_write_file(const char *path, const void *buf, size_t len, unsigned mode,
                               unsigned flags);

/* Create dir and every missing parent (mode 0755), like `mkdir -p`.
 * FOTA_E_IO, errno ENOTDIR, when a component exists and is not a
 * directory. */
fota_err fota_posix_mkdirs(const char *dir);

/*
 * Read the regular file at path and pass its bytes to sink in chunks, never
 * holding it whole. A file longer than max_len (checked against its size
 * first, then while reading) gives FOTA_E_LENGTH, and no chunk that would
 * pass max_len reaches sink. FOTA_E_NOT_FOUND, FOTA_E_IO as for
 * fota_posix_read_file; any other failure is the sink's.
 */
fota_err fota_posix_file_stream(const char *path, uint64_t max_len, fota_posix_sink sink,
                                void *ctx);

/* ---- command-line programs ------------------------------------------------ */

/* One line "prefix: <message>\n" on stderr: how the programs report errors. */
void fota_posix_msg(const char *prefix, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Parse s as a plain decimal number (digits only, no sign or spaces) in
 * [min, max]. 0 and *ret set, or -1 with *ret untouched. */
int fota_posix_parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *ret);

/* ---- clock ------------------------------------------------------------ */

/* Seconds since the epoch, UTC (time(NULL)). */
int64_t fota_posix_now(void);

/* ---- HTTP ------------------------------------------------------------- */

/* Call once at program start, before any thread exists, and
 * fota_posix_http_global_cleanup once at the end. */
fota_err fota_posix_http_global_init(void);
void fota_posix_http_global_cleanup(void);

#define FOTA_POSIX_HTTP_ERRMSG_LEN 512

/*
 * One reused connection (libcurl easy handle). No redirects are followed and
 * nothing is retried. A transfer fails when the connection takes longer than
 * connect_timeout_s, or when fewer than low_speed_bytes per second arrive for
 * low_speed_time_s seconds (slow retrieval).
 */
struct fota_posix_http {
    void *curl;                /* CURL * */
    const char *ca_file;       /* borrowed; pinned CA bundle for https (NULL: system default) */
    long connect_timeout_s;    /* default 10 */
    long low_speed_bytes;      /* default 1024 */
    long low_speed_time_s;     /* default 30 */
    char errmsg[FOTA_POSIX_HTTP_ERRMSG_LEN]; /* detail of the last failure, or "" */
};

/* Defaults as above; the fields may be changed before the first request. */
fota_err fota_posix_http_init(struct fota_posix_http *h);
void fota_posix_http_cleanup(struct fota_posix_http *h);

/* Called with each chunk of a response body, in order. Any return other
 * than FOTA_OK aborts the transfer at once and becomes its result. (The same
 * type as fota_posix_sink, under its older name.) */
typedef fota_posix_sink fota_posix_http_sink;

/*
 * GET url and pass the body to sink. A Content-Length above max_len is
 * refused before any body byte is delivered, and the transfer is aborted as
 * soon as more than max_len bytes have arrived, with FOTA_E_LENGTH (no chunk
 * that would pass max_len is given to sink). HTTP 404 and 403 give
 * FOTA_E_NOT_FOUND; any other status outside 2xx, and any transport error,
 * FOTA_E_IO. h->errmsg says what happened on every failure.
 */
fota_err fota_posix_http_stream(struct fota_posix_http *h, const char *url,
                                uint64_t max_len, fota_posix_http_sink sink, void *ctx);

/* GET url into memory, with the same rules. *ret_buf is malloc'ed (owned by
 * the caller; NULL-safe to free even for an empty body, which gives a valid
 * 1-byte allocation and *ret_len 0). */
fota_err fota_posix_http_get(struct fota_posix_http *h, const char *url, size_t max_len,
                             uint8_t **ret_buf, size_t *ret_len);

/* fota_posix_http_get of base + name (base ends in "/"), for a file name
 * that passes fota_posix_name_ok (FOTA_E_INVALID otherwise): what a TUF
 * port's fetch does with a metadata file name. */
fota_err fota_posix_http_get_in(struct fota_posix_http *h, const char *base, const char *name,
                                size_t max_len, uint8_t **ret_buf, size_t *ret_len);

/*
 * One request with a JSON body (method "POST" or "GET"; body may be NULL),
 * an optional bearer token ("Authorization: Bearer ..."), no redirects, no
 * retries. The answer's status goes to *ret_status and its body (at most
 * max_resp bytes: FOTA_E_TOO_BIG beyond, the transfer stopped) to *ret_buf
 * (malloc'ed, NUL-terminated, also for an empty body) whatever the status.
 * FOTA_E_NETWORK when no complete answer came (connection refused, dropped,
 * timed out, too slow); h->errmsg says what happened.
 */
fota_err fota_posix_http_request(struct fota_posix_http *h, const char *method,
                                 const char *url, const char *bearer, const void *body,
                                 size_t body_len, size_t max_resp, long *ret_status,
                                 uint8_t **ret_buf, size_t *ret_len);

/*
 * GET url from byte `from` on ("Range: bytes=from-" when from > 0) into
 * sink. Accepted: 206 whose Content-Range starts at `from`, or 200 when
 * from == 0. A 200 to a ranged request is FOTA_E_SERVER (the caller restarts
 * from 0). At most total - from bytes are passed on: FOTA_E_LENGTH as soon
 * as the server sends more (endless data). The minimum speed
 * (h->low_speed_*) and connect timeout apply. A transfer that ends early
 * returns FOTA_E_NETWORK after handing over what arrived, so the caller
 * resumes from there. *ret_received (may be NULL): bytes passed to sink.
 * 404/403 is FOTA_E_NOT_FOUND, other statuses FOTA_E_SERVER. A sink error
 * stops the transfer and is returned as is.
 */
fota_err fota_posix_http_range(struct fota_posix_http *h, const char *url, uint64_t from,
                               uint64_t total, fota_posix_http_sink sink, void *ctx,
                               uint64_t *ret_received);

/* Append "/" to a base URL that lacks one. *ret_url is malloc'ed. */
fota_err fota_posix_url_base(const char *url, char **ret_url);

/* Make a target path usable in a URL path with the fewest changes: bytes
 * a URL path may hold (A-Z a-z 0-9 - . _ ~ ! $ & ' ( ) * + , ; = : @ / %)
 * stay as they are, like other TUF clients send them; every other byte
 * (space, controls, non-ASCII, " # < > ? [ \ ] ^ ` { | }) becomes %XX.
 * *ret_path is malloc'ed. */
fota_err fota_posix_url_path(const char *path, char **ret_path);

/* ---- the TUF port ----------------------------------------------------- */

/*
 * Everything the TUF client needs on a POSIX host, bundled. port is filled
 * by fota_posix_tuf_init and points back into this struct, which must
 * therefore stay at one address while the client uses it.
 *
 * fetch GETs metadata_url + name; load/store/remove work on files named
 * name inside metadata_dir; now is fota_posix_now; log prints
 * "<log_prefix>: <line>" on stderr, rejections always and CHECK/INFO lines
 * only when verbose. A failed fetch also logs the HTTP detail as a rejection.
 */
struct fota_posix_tuf {
    struct fota_tuf_port port;
    char *metadata_dir;
    char *metadata_url;          /* ends in "/"; NULL when no URL was given */
    struct fota_posix_http http;
    const char *log_prefix;      /* borrowed */
    int verbose;
};

/* metadata_url may be NULL (then fetch fails with FOTA_E_INVALID). */
fota_err fota_posix_tuf_init(struct fota_posix_tuf *t, const char *metadata_dir,
                             const char *metadata_url, const char *log_prefix,
                             int verbose);
void fota_posix_tuf_cleanup(struct fota_posix_tuf *t);

/* The log callback alone, for programs that build their own port: ctx is a
 * struct fota_posix_tuf (only log_prefix and verbose are read). */
void fota_posix_log_stderr(void *ctx, enum fota_tuf_log_level level, const char *line);

/* The URL of a trusted target under base (which ends in "/", e.g.
 * "http://host/repo/targets/"): <dir/>HASH.<basename> with consistent
 * snapshots (HASH: the first hash the metadata lists, as written there),
 * else the plain path; percent-encoded as fota_posix_url_path does.
 * *ret_url is malloc'ed. */
fota_err fota_posix_target_url(const char *base, const struct fota_tuf_target *target,
                               int consistent, char **ret_url);

#endif
