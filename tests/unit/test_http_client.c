/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fota_posix_http_request and fota_posix_http_range against a small HTTP/1.1
 * server run by this test on 127.0.0.1 (one thread, keep-alive, answers by
 * request target). The server logs what each request carried (method,
 * Authorization, Range, Content-Type, body, connection number), so that the
 * tests can check what went out as well as what came back.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "fota_posix.h"

#include "test_util.h"

#define IMG_LEN 300000u             /* the file behind /img* */
#define CUT_AT 70000u               /* /img-cut sends this many body bytes, then closes */
#define SLOW_SENT 100u              /* /img-slow sends this many, then stalls */
#define ENDLESS_CAP (16u << 20)     /* a bound for the server, should a client never stop */
#define BIG_LEN 100000u
#define HEAD_MAX 8192u
#define BODY_MAX 65536u
#define LOG_MAX 64u

/* ---- the server ------------------------------------------------------------- */

struct logged {
    char method[8];
    char target[256];
    char auth[256];             /* Authorization value, "" when absent */
    char range[64];             /* Range value, "" when absent */
    char ctype[64];             /* Content-Type value */
    char expect[64];            /* Expect value */
    int has_auth;
    int has_range;
    unsigned conn;              /* 1-based connection number */
    size_t body_len;
    char body[1024];
};

struct server {
    int listen_fd;
    unsigned port;
    pthread_t thread;
    atomic_int stop;
    pthread_mutex_t lock;
    unsigned nconn;
    unsigned nlog;
    struct logged log[LOG_MAX];
};

static struct server g_srv = {.listen_fd = -1, .lock = PTHREAD_MUTEX_INITIALIZER};

static uint8_t pattern_byte(uint64_t off)
{
    return (uint8_t)(off * 7u + (off >> 9) + 3u);
}

static int send_all(int fd, const void *data, size_t len)
{
    const char *p = data;

    while (len > 0) {
        ssize_t n = send(fd, p, len, MSG_NOSIGNAL);

        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

static int send_fmt(int fd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int send_fmt(int fd, const char *fmt, ...)
{
    char buf[1024];
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof buf)
        return -1;
    return send_all(fd, buf, (size_t)n);
}

/* The pattern from off, len bytes; -1 when the client went away. */
static int send_pattern(int fd, uint64_t off, uint64_t len)
{
    uint8_t piece[8192];

    while (len > 0) {
        size_t n = len < sizeof piece ? (size_t)len : sizeof piece;

        for (size_t i = 0; i < n; i++)
            piece[i] = pattern_byte(off + i);
        if (send_all(fd, piece, n) != 0)
            return -1;
        off += n;
        len -= n;
    }
    return 0;
}

/* Wait (at most 10 s, or until the server stops) for the client to close. */
static void wait_for_close(struct server *s, int fd)
{
    for (int i = 0; i < 200 && !atomic_load(&s->stop); i++) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        char c;

        if (poll(&p, 1, 50) == 1 && recv(fd, &c, 1, 0) <= 0)
            return;
    }
}

struct request {
    char method[8];
    char target[256];
    const char *head;           /* the whole head, NUL-terminated */
    const uint8_t *body;
    size_t body_len;
};

/* The value of header name (case-insensitive) in head, copied into out;
 * 0 when absent. */
static int header(const char *head, const char *name, char *out, size_t size)
{
    size_t n = strlen(name);
    const char *line = strstr(head, "\r\n");

    out[0] = '\0';
    while (line != NULL && line[2] != '\r') {
        const char *start = line + 2;
        const char *end = strstr(start, "\r\n");

        if (end == NULL)
            return 0;
        if ((size_t)(end - start) > n && strncasecmp(start, name, n) == 0 && start[n] == ':') {
            const char *v = start + n + 1;
            size_t len;

            while (*v == ' ')
                v++;
            len = (size_t)(end - v);
            if (len >= size)
                len = size - 1;
            memcpy(out, v, len);
            out[len] = '\0';
            return 1;
        }
        line = end;
    }
    return 0;
}

/* "bytes=N-" -> N; 0 when there is no Range (or one we do not serve). */
static uint64_t range_from(const char *head, int *ret_ranged)
{
    char v[64];
    char *end = NULL;
    unsigned long long n;

    *ret_ranged = 0;
    if (!header(head, "Range", v, sizeof v) || strncmp(v, "bytes=", 6) != 0)
        return 0;
    errno = 0;
    n = strtoull(v + 6, &end, 10);
    if (errno != 0 || end == v + 6 || strcmp(end, "-") != 0)
        return 0;
    *ret_ranged = 1;
    return n;
}

/* Answer one request; 1 to keep the connection, 0 to close it. */
static int respond(struct server *s, int fd, const struct request *r)
{
    const char *t = r->target;
    int ranged = 0;
    uint64_t from = range_from(r->head, &ranged);
    uint64_t rest;

    if (strcmp(t, "/echo") == 0) {
        const char *ct = r->body_len > 0 ? "application/json" : "text/plain";

        if (send_fmt(fd, "HTTP/1.1 200 OK\r\nContent-Type: %s\r\nContent-Length: %zu\r\n\r\n", ct,
                     r->body_len) != 0)
            return 0;
        return send_all(fd, r->body, r->body_len) == 0;
    }
    if (strncmp(t, "/status/", 8) == 0) {
        char body[64];
        int n = snprintf(body, sizeof body, "{\"error\":\"%s\"}", t + 8);
        long code = strtol(t + 8, NULL, 10);

        if (code == 204)
            return send_fmt(fd, "HTTP/1.1 204 No Content\r\n\r\n") == 0;
        return send_fmt(fd, "HTTP/1.1 %ld Whatever\r\nContent-Type: application/json\r\n"
                            "Content-Length: %d\r\n\r\n%s", code, n, body) == 0;
    }
    if (strcmp(t, "/big") == 0) {
        if (send_fmt(fd, "HTTP/1.1 200 OK\r\nContent-Length: %u\r\n\r\n", BIG_LEN) != 0)
            return 0;
        return send_pattern(fd, 0, BIG_LEN) == 0;
    }
    if (strcmp(t, "/big-nolen") == 0) {
        if (send_fmt(fd, "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n") == 0)
            send_pattern(fd, 0, BIG_LEN);
        return 0;
    }
    if (strncmp(t, "/img", 4) != 0) {
        send_fmt(fd, "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n");
        return 1;
    }
    if (strcmp(t, "/img-404") == 0)
        return send_fmt(fd, "HTTP/1.1 404 Not Found\r\nContent-Length: 3\r\n\r\nno\n") == 0;
    if (strcmp(t, "/img-500") == 0)
        return send_fmt(fd, "HTTP/1.1 500 Oops\r\nContent-Length: 3\r\n\r\nno\n") == 0;
    if (ranged && from >= IMG_LEN)
        return send_fmt(fd, "HTTP/1.1 416 Range Not Satisfiable\r\nContent-Range: bytes */%u\r\n"
                            "Content-Length: 0\r\n\r\n", IMG_LEN) == 0;
    if (strcmp(t, "/img-ignores-range") == 0) {
        ranged = 0;
        from = 0;
    }
    rest = IMG_LEN - from;
    if (strcmp(t, "/img") == 0 || strcmp(t, "/img-ignores-range") == 0) {
        if (ranged) {
            if (send_fmt(fd, "HTTP/1.1 206 Partial Content\r\nContent-Range: bytes %" PRIu64
                             "-%u/%u\r\nContent-Length: %" PRIu64 "\r\n\r\n",
                         from, IMG_LEN - 1, IMG_LEN, rest) != 0)
                return 0;
        } else if (send_fmt(fd, "HTTP/1.1 200 OK\r\nContent-Length: %u\r\n\r\n", IMG_LEN) != 0) {
            return 0;
        }
        return send_pattern(fd, from, rest) == 0;
    }
    if (strcmp(t, "/img-wrong-start") == 0) {
        /* one byte later than asked */
        if (send_fmt(fd, "HTTP/1.1 206 Partial Content\r\nContent-Range: bytes %" PRIu64
                         "-%u/%u\r\nContent-Length: %" PRIu64 "\r\n\r\n",
                     from + 1, IMG_LEN - 1, IMG_LEN, rest - 1) != 0)
            return 0;
        return send_pattern(fd, from + 1, rest - 1) == 0;
    }
    if (strcmp(t, "/img-endless") == 0) {
        if (ranged)
            send_fmt(fd, "HTTP/1.1 206 Partial Content\r\nContent-Range: bytes %" PRIu64
                         "-%u/%u\r\nConnection: close\r\n\r\n", from, IMG_LEN - 1, IMG_LEN);
        else
            send_fmt(fd, "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n");
        send_pattern(fd, from, ENDLESS_CAP);
        return 0;
    }
    if (strcmp(t, "/img-cut") == 0 || strcmp(t, "/img-cut-nolen") == 0) {
        /* promises the rest (or nothing), sends CUT_AT bytes, closes */
        const char *status = ranged ? "206 Partial Content" : "200 OK";

        if (strcmp(t, "/img-cut") == 0)
            send_fmt(fd, "HTTP/1.1 %s\r\nContent-Range: bytes %" PRIu64 "-%u/%u\r\n"
                         "Content-Length: %" PRIu64 "\r\n\r\n", status, from, IMG_LEN - 1, IMG_LEN,
                     rest);
        else
            send_fmt(fd, "HTTP/1.1 %s\r\nContent-Range: bytes %" PRIu64 "-%u/%u\r\n"
                         "Connection: close\r\n\r\n", status, from, IMG_LEN - 1, IMG_LEN);
        send_pattern(fd, from, CUT_AT);
        return 0;
    }
    if (strcmp(t, "/img-slow") == 0) {
        if (send_fmt(fd, "HTTP/1.1 200 OK\r\nContent-Length: %u\r\n\r\n", IMG_LEN) == 0 &&
            send_pattern(fd, 0, SLOW_SENT) == 0)
            wait_for_close(s, fd);
        return 0;
    }
    send_fmt(fd, "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n");
    return 1;
}

static void log_request(struct server *s, const struct request *r, unsigned conn)
{
    struct logged *l;

    pthread_mutex_lock(&s->lock);
    if (s->nlog < LOG_MAX) {
        l = &s->log[s->nlog];
        memset(l, 0, sizeof *l);
        snprintf(l->method, sizeof l->method, "%s", r->method);
        snprintf(l->target, sizeof l->target, "%s", r->target);
        l->has_auth = header(r->head, "Authorization", l->auth, sizeof l->auth);
        l->has_range = header(r->head, "Range", l->range, sizeof l->range);
        header(r->head, "Content-Type", l->ctype, sizeof l->ctype);
        header(r->head, "Expect", l->expect, sizeof l->expect);
        l->conn = conn;
        l->body_len = r->body_len;
        memcpy(l->body, r->body, r->body_len < sizeof l->body ? r->body_len : sizeof l->body);
    }
    s->nlog++;
    pthread_mutex_unlock(&s->lock);
}

/* Wait for bytes on fd; 1 readable, 0 give up (stop, or a new client is
 * waiting while this connection is idle), -1 timeout tick. */
static int wait_readable(struct server *s, int fd, int idle)
{
    struct pollfd p[2] = {{.fd = fd, .events = POLLIN}, {.fd = s->listen_fd, .events = POLLIN}};

    if (atomic_load(&s->stop))
        return 0;
    if (poll(p, 2, 50) <= 0)
        return -1;
    if (p[0].revents != 0)
        return 1;
    /* One worker: an idle kept-alive connection gives way to a new one. */
    return idle ? 0 : -1;
}

/* Serve requests on fd until the client closes it or it is given up. */
static void serve_connection(struct server *s, int fd, unsigned conn)
{
    static uint8_t buf[HEAD_MAX + BODY_MAX + 1];
    size_t len = 0;

    for (;;) {
        struct request r;
        char *end;
        char *sp;
        char v[32];
        size_t head_len;
        size_t clen = 0;
        int w;

        buf[len] = '\0';
        end = strstr((char *)buf, "\r\n\r\n");
        if (end == NULL) {
            ssize_t n;

            if (len == HEAD_MAX)
                return;
            w = wait_readable(s, fd, len == 0);
            if (w == 0)
                return;
            if (w < 0)
                continue;
            n = recv(fd, buf + len, HEAD_MAX - len, 0);
            if (n <= 0)
                return;
            len += (size_t)n;
            continue;
        }
        head_len = (size_t)(end - (char *)buf) + 4;
        if (header((char *)buf, "Content-Length", v, sizeof v))
            clen = strtoul(v, NULL, 10);
        if (clen > BODY_MAX)
            return;
        while (len < head_len + clen) {
            ssize_t n;

            w = wait_readable(s, fd, 0);
            if (w == 0)
                return;
            if (w < 0)
                continue;
            n = recv(fd, buf + len, head_len + clen - len, 0);
            if (n <= 0)
                return;
            len += (size_t)n;
        }
        memset(&r, 0, sizeof r);
        end[2] = '\0';      /* the head ends after its last header line */
        sp = strchr((char *)buf, ' ');
        if (sp == NULL || (size_t)(sp - (char *)buf) >= sizeof r.method)
            return;
        memcpy(r.method, buf, (size_t)(sp - (char *)buf));
        snprintf(r.target, sizeof r.target, "%.*s", (int)strcspn(sp + 1, " "), sp + 1);
        r.head = (const char *)buf;
        r.body = buf + head_len;
        r.body_len = clen;
        log_request(s, &r, conn);
        if (!respond(s, fd, &r))
            return;
        memmove(buf, buf + head_len + clen, len - head_len - clen);
        len -= head_len + clen;
    }
}

static void *server_main(void *arg)
{
    struct server *s = arg;

    while (!atomic_load(&s->stop)) {
        struct pollfd p = {.fd = s->listen_fd, .events = POLLIN};
        unsigned conn;
        int fd;

        if (poll(&p, 1, 50) != 1)
            continue;
        fd = accept(s->listen_fd, NULL, NULL);
        if (fd < 0)
            continue;
        pthread_mutex_lock(&s->lock);
        conn = ++s->nconn;
        pthread_mutex_unlock(&s->lock);
        serve_connection(s, fd, conn);
        close(fd);
    }
    return NULL;
}

static int server_start(struct server *s)
{
    struct sockaddr_in addr;
    socklen_t alen = sizeof addr;

    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    s->listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (s->listen_fd < 0)
        return -1;
    if (bind(s->listen_fd, (struct sockaddr *)&addr, sizeof addr) != 0 ||
        listen(s->listen_fd, 16) != 0 ||
        getsockname(s->listen_fd, (struct sockaddr *)&addr, &alen) != 0)
        return -1;
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

static unsigned log_count(void)
{
    unsigned n;

    pthread_mutex_lock(&g_srv.lock);
    n = g_srv.nlog;
    pthread_mutex_unlock(&g_srv.lock);
    return n;
}

/* A copy of log entry i (0-based). */
static struct logged log_entry(unsigned i)
{
    struct logged l;

    pthread_mutex_lock(&g_srv.lock);
    assert_true(i < g_srv.nlog && i < LOG_MAX);
    l = g_srv.log[i];
    pthread_mutex_unlock(&g_srv.lock);
    return l;
}

static struct logged last_entry(void)
{
    unsigned n = log_count();

    assert_true(n > 0);
    return log_entry(n - 1);
}

static void url_of(char *out, size_t size, const char *path)
{
    int n = snprintf(out, size, "http://127.0.0.1:%u%s", g_srv.port, path);

    assert_true(n > 0 && (size_t)n < size);
}

static int group_setup(void **state)
{
    (void)state;
    setenv("NO_PROXY", "*", 1);
    setenv("no_proxy", "*", 1);
    if (fota_posix_http_global_init() != FOTA_OK)
        return -1;
    return server_start(&g_srv);
}

static int group_teardown(void **state)
{
    (void)state;
    server_stop(&g_srv);
    fota_posix_http_global_cleanup();
    return 0;
}

static int http_setup(void **state)
{
    struct fota_posix_http *h = calloc(1, sizeof *h);

    if (h == NULL || fota_posix_http_init(h) != FOTA_OK)
        return -1;
    *state = h;
    return 0;
}

static int http_teardown(void **state)
{
    struct fota_posix_http *h = *state;

    fota_posix_http_cleanup(h);
    free(h);
    return 0;
}

/* ---- fota_posix_http_request ---------------------------------------------- */

static void test_init_defaults(void **state)
{
    struct fota_posix_http *h = *state;

    assert_null(h->ca_file);
    assert_int_equal(h->connect_timeout_s, 10);
    assert_int_equal(h->low_speed_bytes, 1024);
    assert_int_equal(h->low_speed_time_s, 30);
    assert_string_equal(h->errmsg, "");
}

static void test_request_post_echo(void **state)
{
    static const char body[] = "{\"nonce\":\"abc\",\"seq\":7}";
    struct fota_posix_http *h = *state;
    char url[128];
    uint8_t *buf = NULL;
    size_t len = 0;
    long status = 0;
    struct logged l;

    url_of(url, sizeof url, "/echo");
    assert_int_equal(fota_posix_http_request(h, "POST", url, "tok-123.abc", body, strlen(body),
                                             4096, &status, &buf, &len),
                     FOTA_OK);
    assert_int_equal(status, 200);
    assert_int_equal(len, strlen(body));
    assert_string_equal((char *)buf, body);
    free(buf);
    l = last_entry();
    assert_string_equal(l.method, "POST");
    assert_string_equal(l.target, "/echo");
    assert_true(l.has_auth);
    assert_string_equal(l.auth, "Bearer tok-123.abc");
    assert_string_equal(l.ctype, "application/json");
    assert_string_equal(l.expect, "");
    assert_int_equal(l.body_len, strlen(body));
    assert_memory_equal(l.body, body, strlen(body));

    /* no bearer: no Authorization; no body: an empty POST */
    assert_int_equal(fota_posix_http_request(h, "POST", url, NULL, NULL, 0, 4096, &status, &buf,
                                             &len),
                     FOTA_OK);
    assert_int_equal(status, 200);
    assert_int_equal(len, 0);
    assert_string_equal((char *)buf, "");
    free(buf);
    l = last_entry();
    assert_false(l.has_auth);
    assert_int_equal(l.body_len, 0);

    /* a GET */
    assert_int_equal(fota_posix_http_request(h, "GET", url, NULL, NULL, 0, 4096, &status, &buf,
                                             &len),
                     FOTA_OK);
    free(buf);
    assert_string_equal(last_entry().method, "GET");
}

static void test_request_statuses(void **state)
{
    static const long codes[] = {200, 201, 400, 401, 403, 404, 409, 429, 500, 503};
    struct fota_posix_http *h = *state;

    for (size_t i = 0; i < TU_ARRAY_LEN(codes); i++) {
        char path[32];
        char url[128];
        char want[64];
        uint8_t *buf = NULL;
        size_t len = 0;
        long status = 0;

        snprintf(path, sizeof path, "/status/%ld", codes[i]);
        url_of(url, sizeof url, path);
        snprintf(want, sizeof want, "{\"error\":\"%ld\"}", codes[i]);
        assert_int_equal(fota_posix_http_request(h, "POST", url, "t", "{}", 2, 4096, &status,
                                                 &buf, &len),
                         FOTA_OK);
        assert_int_equal(status, codes[i]);
        assert_string_equal((char *)buf, want);
        assert_int_equal(len, strlen(want));
        free(buf);
    }
    {
        char url[128];
        uint8_t *buf = NULL;
        size_t len = 7;
        long status = 0;

        url_of(url, sizeof url, "/status/204");
        assert_int_equal(fota_posix_http_request(h, "POST", url, "t", "{}", 2, 4096, &status,
                                                 &buf, &len),
                         FOTA_OK);
        assert_int_equal(status, 204);
        assert_int_equal(len, 0);
        assert_non_null(buf);
        assert_string_equal((char *)buf, "");
        free(buf);
    }
}

static void test_request_over_cap(void **state)
{
    struct fota_posix_http *h = *state;
    char url[128];
    uint8_t *buf = (uint8_t *)"untouched";
    size_t len = 99;
    long status = 99;

    /* announced too long */
    url_of(url, sizeof url, "/big");
    assert_int_equal(fota_posix_http_request(h, "GET", url, NULL, NULL, 0, 1000, &status, &buf,
                                             &len),
                     FOTA_E_TOO_BIG);
    assert_true(strstr(h->errmsg, "1000") != NULL);
    /* no length, too long */
    url_of(url, sizeof url, "/big-nolen");
    assert_int_equal(fota_posix_http_request(h, "GET", url, NULL, NULL, 0, 1000, &status, &buf,
                                             &len),
                     FOTA_E_TOO_BIG);
    assert_string_equal((char *)buf, "untouched");
    assert_int_equal(len, 99);
    assert_int_equal(status, 99);
    /* exactly at the cap is fine; one byte less is too small */
    url_of(url, sizeof url, "/big-nolen");
    assert_int_equal(fota_posix_http_request(h, "GET", url, NULL, NULL, 0, BIG_LEN, &status, &buf,
                                             &len),
                     FOTA_OK);
    assert_int_equal(len, BIG_LEN);
    for (size_t i = 0; i < len; i++)
        assert_int_equal(buf[i], pattern_byte(i));
    free(buf);
    url_of(url, sizeof url, "/big");
    assert_int_equal(fota_posix_http_request(h, "GET", url, NULL, NULL, 0, BIG_LEN - 1, &status,
                                             &buf, &len),
                     FOTA_E_TOO_BIG);
    /* a status with a body over the cap is refused too */
    url_of(url, sizeof url, "/status/503");
    assert_int_equal(fota_posix_http_request(h, "GET", url, NULL, NULL, 0, 5, &status, &buf,
                                             &len),
                     FOTA_E_TOO_BIG);
}

/* A port nobody listens on. */
static unsigned closed_port(void)
{
    struct sockaddr_in addr;
    socklen_t alen = sizeof addr;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    unsigned port;

    assert_true(fd >= 0);
    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fd, (struct sockaddr *)&addr, sizeof addr), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&addr, &alen), 0);
    port = ntohs(addr.sin_port);
    close(fd);
    return port;
}

static fota_err sink_discard(void *ctx, const uint8_t *data, size_t len)
{
    (void)ctx;
    (void)data;
    (void)len;
    return FOTA_OK;
}

static void test_connection_refused(void **state)
{
    struct fota_posix_http *h = *state;
    char url[128];
    uint8_t *buf = NULL;
    size_t len = 0;
    long status = 0;
    uint64_t got = 77;

    snprintf(url, sizeof url, "http://127.0.0.1:%u/echo", closed_port());
    assert_int_equal(fota_posix_http_request(h, "POST", url, NULL, "{}", 2, 100, &status, &buf,
                                             &len),
                     FOTA_E_NETWORK);
    assert_true(h->errmsg[0] != '\0');
    assert_int_equal(fota_posix_http_range(h, url, 0, 100, sink_discard, NULL, &got),
                     FOTA_E_NETWORK);
    assert_int_equal(got, 0);
}

static void test_request_bad_args(void **state)
{
    struct fota_posix_http *h = *state;
    char url[128];
    uint8_t *buf = NULL;
    size_t len = 0;
    long status = 0;
    unsigned before;

    url_of(url, sizeof url, "/echo");
    before = log_count();
    assert_int_equal(fota_posix_http_request(h, "PUT", url, NULL, NULL, 0, 100, &status, &buf,
                                             &len),
                     FOTA_E_INVALID);
    assert_int_equal(fota_posix_http_request(h, "GET", url, NULL, "{}", 2, 100, &status, &buf,
                                             &len),
                     FOTA_E_INVALID);
    assert_int_equal(fota_posix_http_request(h, "POST", url, "a\r\nX-Evil: 1", NULL, 0, 100,
                                             &status, &buf, &len),
                     FOTA_E_INVALID);
    assert_int_equal(fota_posix_http_request(h, "POST", url, "", NULL, 0, 100, &status, &buf,
                                             &len),
                     FOTA_E_INVALID);
    assert_int_equal(fota_posix_http_request(h, "POST", url, NULL, NULL, 5, 100, &status, &buf,
                                             &len),
                     FOTA_E_INVALID);
    assert_int_equal(fota_posix_http_request(h, "POST", url, NULL, NULL, 0, 100, NULL, &buf, &len),
                     FOTA_E_INVALID);
    /* only http and https */
    assert_int_equal(fota_posix_http_request(h, "GET", "file:///etc/passwd", NULL, NULL, 0, 100,
                                             &status, &buf, &len),
                     FOTA_E_INVALID);
    assert_int_equal(log_count(), before);
}

/* Keep-alive across calls on one handle, and nothing of one request (its
 * Authorization, its Range) carried into the next. */
static void test_handle_reuse_no_leak(void **state)
{
    struct fota_posix_http *h = *state;
    char echo[128];
    char img[128];
    uint8_t *buf = NULL;
    size_t len = 0;
    long status = 0;
    uint64_t got = 0;
    unsigned first = log_count();
    struct logged a, b, c, d;

    url_of(echo, sizeof echo, "/echo");
    url_of(img, sizeof img, "/img");
    assert_int_equal(fota_posix_http_request(h, "POST", echo, "secret-token", "{}", 2, 100,
                                             &status, &buf, &len),
                     FOTA_OK);
    free(buf);
    assert_int_equal(fota_posix_http_range(h, img, 1000, IMG_LEN, sink_discard, NULL, &got),
                     FOTA_OK);
    assert_int_equal(got, IMG_LEN - 1000);
    assert_int_equal(fota_posix_http_request(h, "GET", echo, NULL, NULL, 0, 100, &status, &buf,
                                             &len),
                     FOTA_OK);
    free(buf);
    assert_int_equal(fota_posix_http_range(h, img, 0, IMG_LEN, sink_discard, NULL, &got),
                     FOTA_OK);
    assert_int_equal(log_count(), first + 4);
    a = log_entry(first);
    b = log_entry(first + 1);
    c = log_entry(first + 2);
    d = log_entry(first + 3);
    assert_true(a.has_auth);
    assert_false(a.has_range);
    assert_false(b.has_auth);
    assert_true(b.has_range);
    assert_string_equal(b.range, "bytes=1000-");
    assert_string_equal(b.method, "GET");
    assert_int_equal(b.body_len, 0);
    assert_false(c.has_auth);
    assert_false(c.has_range);
    assert_string_equal(c.method, "GET");
    assert_int_equal(c.body_len, 0);
    assert_false(d.has_auth);
    assert_false(d.has_range);
    /* one connection for all four */
    assert_int_equal(b.conn, a.conn);
    assert_int_equal(c.conn, a.conn);
    assert_int_equal(d.conn, a.conn);
}

/* A CA bundle set on the handle is used for https: a missing file fails the
 * TLS setup and the message names it. */
static void test_ca_file_used(void **state)
{
    struct fota_posix_http *h = *state;
    char url[128];
    uint8_t *buf = NULL;
    size_t len = 0;
    long status = 0;

    h->ca_file = "/nonexistent/fota-test-ca.pem";
    /* plain http is unaffected */
    url_of(url, sizeof url, "/echo");
    assert_int_equal(fota_posix_http_request(h, "GET", url, NULL, NULL, 0, 100, &status, &buf,
                                             &len),
                     FOTA_OK);
    free(buf);
    snprintf(url, sizeof url, "https://127.0.0.1:%u/echo", g_srv.port);
    assert_int_equal(fota_posix_http_request(h, "GET", url, NULL, NULL, 0, 100, &status, &buf,
                                             &len),
                     FOTA_E_NETWORK);
    if (strstr(h->errmsg, "fota-test-ca.pem") == NULL)
        fail_msg("errmsg does not name the CA file: %s", h->errmsg);
}

/* ---- fota_posix_http_range ------------------------------------------------ */

struct collect {
    uint8_t *buf;
    size_t len;
    size_t cap;
    size_t calls;
    size_t fail_after;          /* > 0: the sink fails on that call */
};

static fota_err sink_collect(void *ctx, const uint8_t *data, size_t len)
{
    struct collect *c = ctx;

    c->calls++;
    if (c->fail_after > 0 && c->calls >= c->fail_after)
        return FOTA_E_HASH;
    assert_true(len <= c->cap - c->len);
    memcpy(c->buf + c->len, data, len);
    c->len += len;
    return FOTA_OK;
}

static void collect_init(struct collect *c)
{
    memset(c, 0, sizeof *c);
    c->cap = 2 * IMG_LEN;
    c->buf = malloc(c->cap);
    assert_non_null(c->buf);
}

static void assert_pattern(const struct collect *c, uint64_t from)
{
    for (size_t i = 0; i < c->len; i++) {
        if (c->buf[i] != pattern_byte(from + i))
            fail_msg("byte %zu (offset %" PRIu64 ") differs", i, from + i);
    }
}

static fota_err range(struct fota_posix_http *h, const char *path, uint64_t from,
                      uint64_t total, struct collect *c, uint64_t *ret_got)
{
    char url[128];

    url_of(url, sizeof url, path);
    c->len = 0;
    c->calls = 0;
    return fota_posix_http_range(h, url, from, total, sink_collect, c, ret_got);
}

static void test_range_from_zero(void **state)
{
    struct fota_posix_http *h = *state;
    struct collect c;
    uint64_t got = 0;

    collect_init(&c);
    assert_int_equal(range(h, "/img", 0, IMG_LEN, &c, &got), FOTA_OK);
    assert_int_equal(got, IMG_LEN);
    assert_int_equal(c.len, IMG_LEN);
    assert_pattern(&c, 0);
    assert_false(last_entry().has_range);
    /* a 200 (the whole file) is what a request from 0 gets */
    assert_int_equal(range(h, "/img-ignores-range", 0, IMG_LEN, &c, &got), FOTA_OK);
    assert_int_equal(got, IMG_LEN);
    free(c.buf);
}

static void test_range_from_offset(void **state)
{
    static const uint64_t offsets[] = {1, 4095, 4096, 150001, IMG_LEN - 1};
    struct fota_posix_http *h = *state;
    struct collect c;

    collect_init(&c);
    for (size_t i = 0; i < TU_ARRAY_LEN(offsets); i++) {
        uint64_t from = offsets[i];
        uint64_t got = 0;
        char want[64];

        assert_int_equal(range(h, "/img", from, IMG_LEN, &c, &got), FOTA_OK);
        assert_int_equal(got, IMG_LEN - from);
        assert_int_equal(c.len, IMG_LEN - from);
        assert_pattern(&c, from);
        snprintf(want, sizeof want, "bytes=%" PRIu64 "-", from);
        assert_string_equal(last_entry().range, want);
    }
    /* nothing left: no request at all */
    {
        unsigned before = log_count();
        uint64_t got = 5;

        assert_int_equal(range(h, "/img", IMG_LEN, IMG_LEN, &c, &got), FOTA_OK);
        assert_int_equal(got, 0);
        assert_int_equal(log_count(), before);
        assert_int_equal(range(h, "/img", IMG_LEN + 1, IMG_LEN, &c, &got), FOTA_E_INVALID);
    }
    free(c.buf);
}

static void test_range_refusals(void **state)
{
    struct fota_posix_http *h = *state;
    struct collect c;
    uint64_t got = 99;

    collect_init(&c);
    /* a 206 for another offset */
    assert_int_equal(range(h, "/img-wrong-start", 1000, IMG_LEN, &c, &got), FOTA_E_SERVER);
    assert_int_equal(got, 0);
    assert_int_equal(c.calls, 0);
    /* a 200 (the whole file) to a ranged request */
    got = 99;
    assert_int_equal(range(h, "/img-ignores-range", 1000, IMG_LEN, &c, &got), FOTA_E_SERVER);
    assert_int_equal(got, 0);
    assert_int_equal(c.calls, 0);
    assert_true(strstr(h->errmsg, "200") != NULL);
    /* statuses */
    assert_int_equal(range(h, "/img-404", 0, IMG_LEN, &c, &got), FOTA_E_NOT_FOUND);
    assert_int_equal(range(h, "/img-404", 10, IMG_LEN, &c, &got), FOTA_E_NOT_FOUND);
    assert_int_equal(range(h, "/img-500", 10, IMG_LEN, &c, &got), FOTA_E_SERVER);
    assert_int_equal(range(h, "/status/409", 0, IMG_LEN, &c, &got), FOTA_E_SERVER);
    /* the server's file is shorter than the signed length: 416 */
    assert_int_equal(range(h, "/img", IMG_LEN + 5, IMG_LEN + 100, &c, &got), FOTA_E_SERVER);
    assert_int_equal(c.calls, 0);
    /* and the handle still works */
    assert_int_equal(range(h, "/img", 7, IMG_LEN, &c, &got), FOTA_OK);
    assert_int_equal(got, IMG_LEN - 7);
    free(c.buf);
}

static void test_range_over_length(void **state)
{
    struct fota_posix_http *h = *state;
    struct collect c;
    uint64_t got = 0;

    collect_init(&c);
    /* endless body, no length: stopped at the cap */
    assert_int_equal(range(h, "/img-endless", 0, IMG_LEN, &c, &got), FOTA_E_LENGTH);
    assert_true(got <= IMG_LEN);
    assert_int_equal(got, c.len);
    assert_pattern(&c, 0);
    assert_int_equal(range(h, "/img-endless", 5000, IMG_LEN, &c, &got), FOTA_E_LENGTH);
    assert_true(got <= IMG_LEN - 5000);
    assert_int_equal(got, c.len);
    assert_pattern(&c, 5000);
    /* an announced length above what is left: refused before any byte */
    assert_int_equal(range(h, "/img", 0, IMG_LEN - 1, &c, &got), FOTA_E_LENGTH);
    assert_int_equal(got, 0);
    assert_int_equal(range(h, "/img", 1000, IMG_LEN - 1, &c, &got), FOTA_E_LENGTH);
    assert_int_equal(got, 0);
    free(c.buf);
}

static void test_range_ends_early(void **state)
{
    struct fota_posix_http *h = *state;
    struct collect c;
    uint64_t got = 0;

    collect_init(&c);
    /* the server promised the rest and closed after CUT_AT bytes */
    assert_int_equal(range(h, "/img-cut", 0, IMG_LEN, &c, &got), FOTA_E_NETWORK);
    assert_int_equal(got, CUT_AT);
    assert_int_equal(c.len, CUT_AT);
    assert_pattern(&c, 0);
    assert_int_equal(range(h, "/img-cut", 2000, IMG_LEN, &c, &got), FOTA_E_NETWORK);
    assert_int_equal(got, CUT_AT);
    assert_pattern(&c, 2000);
    /* ... or promised nothing and closed: still short of the signed length */
    assert_int_equal(range(h, "/img-cut-nolen", 3000, IMG_LEN, &c, &got), FOTA_E_NETWORK);
    assert_int_equal(got, CUT_AT);
    assert_pattern(&c, 3000);
    /* resuming from where it stopped completes the file */
    assert_int_equal(range(h, "/img", 3000 + got, IMG_LEN, &c, &got), FOTA_OK);
    assert_int_equal(got, IMG_LEN - 3000 - CUT_AT);
    assert_pattern(&c, 3000 + CUT_AT);
    free(c.buf);
}

static void test_range_too_slow(void **state)
{
    struct fota_posix_http *h = *state;
    struct collect c;
    uint64_t got = 0;
    time_t t0 = time(NULL);

    collect_init(&c);
    h->low_speed_time_s = 1;
    assert_int_equal(range(h, "/img-slow", 0, IMG_LEN, &c, &got), FOTA_E_NETWORK);
    assert_int_equal(got, SLOW_SENT);
    assert_pattern(&c, 0);
    assert_true(time(NULL) - t0 <= 5);
    assert_true(h->errmsg[0] != '\0');
    free(c.buf);
}

static void test_range_sink_error(void **state)
{
    struct fota_posix_http *h = *state;
    struct collect c;
    uint64_t got = 0;

    collect_init(&c);
    c.fail_after = 2;
    assert_int_equal(range(h, "/img", 0, IMG_LEN, &c, &got), FOTA_E_HASH);
    assert_int_equal(got, c.len);
    assert_true(got < IMG_LEN);
    free(c.buf);
}

#define T(f) cmocka_unit_test_setup_teardown(f, http_setup, http_teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_init_defaults),
        T(test_request_post_echo),
        T(test_request_statuses),
        T(test_request_over_cap),
        T(test_connection_refused),
        T(test_request_bad_args),
        T(test_handle_reuse_no_leak),
        T(test_ca_file_used),
        T(test_range_from_zero),
        T(test_range_from_offset),
        T(test_range_refusals),
        T(test_range_over_length),
        T(test_range_ends_early),
        T(test_range_too_slow),
        T(test_range_sink_error),
    };

    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
