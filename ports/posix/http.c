/* SPDX-License-Identifier: Apache-2.0 */
/*
 * HTTP GET over libcurl with a hard cap on what a server can make us read.
 * The cap is enforced twice: a Content-Length above it is refused before the
 * body starts, and the write callback aborts the transfer at the first byte
 * past it, so a server that lies about (or omits) its length still cannot
 * push more than max_len bytes into the program. Slow retrieval is bounded
 * by a minimum-speed timeout; nothing is retried and redirects are not
 * followed (a redirect is an answer we did not ask for).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "fota/crypto.h"
#include "fota_posix.h"

fota_err fota_posix_http_global_init(void)
{
    return curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK ? FOTA_OK : FOTA_E_IO;
}

void fota_posix_http_global_cleanup(void)
{
    curl_global_cleanup();
}

fota_err fota_posix_http_init(struct fota_posix_http *h)
{
    CURL *curl;

    if (h == NULL)
        return FOTA_E_INVALID;
    curl = curl_easy_init();
    if (curl == NULL)
        return FOTA_E_NOMEM;
    memset(h, 0, sizeof(*h));
    h->curl = curl;
    h->connect_timeout_s = 10;
    h->low_speed_bytes = 1024;
    h->low_speed_time_s = 30;
    return FOTA_OK;
}

void fota_posix_http_cleanup(struct fota_posix_http *h)
{
    if (h == NULL || h->curl == NULL)
        return;
    curl_easy_cleanup(h->curl);
    h->curl = NULL;
}

/* Where a response body goes, bounded: the part both transfers share. */
struct body {
    uint64_t cap;            /* bytes the sink may get */
    uint64_t seen;           /* bytes given to the sink */
    fota_posix_http_sink sink;
    void *ctx;
    int too_long;
    fota_err sink_err;
};

/* Hand n bytes to the sink; the curl write callback's answer (n, or 0 to
 * stop the transfer with the reason kept in b). */
static size_t body_feed(struct body *b, const char *data, size_t n)
{
    fota_err err;

    if (n > b->cap - b->seen) {
        b->too_long = 1;
        return 0;
    }
    if (n == 0)
        return 0;
    err = b->sink(b->ctx, (const uint8_t *)data, n);
    if (err != FOTA_OK) {
        b->sink_err = err;
        return 0;
    }
    b->seen += n;
    return n;
}

struct xfer {
    CURL *curl;
    struct body b;
    int started;
    int bad_status;
};

static int status_ok(long status)
{
    return status >= 200 && status <= 299;
}

static size_t on_body(char *data, size_t size, size_t nmemb, void *userdata)
{
    struct xfer *x = userdata;
    size_t n = size * nmemb;

    if (!x->started) {
        long status = 0;
        curl_off_t clen = -1;

        x->started = 1;
        curl_easy_getinfo(x->curl, CURLINFO_RESPONSE_CODE, &status);
        /* An error page is not worth reading: stop at its first byte. */
        if (!status_ok(status)) {
            x->bad_status = 1;
            return 0;
        }
        if (curl_easy_getinfo(x->curl, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &clen) == CURLE_OK &&
            clen >= 0 && (uint64_t)clen > x->b.cap) {
            x->b.too_long = 1;
            return 0;
        }
    }
    return body_feed(&x->b, data, n);
}

/*
 * Every request starts from curl_easy_reset: what an earlier request on the
 * handle set (a body, headers, a range, a size limit) must not leak into the
 * next one. The reset keeps the handle's live connections, so keep-alive
 * works across calls. Then the options every request gets: http and https
 * only, no redirects, no signals, the timeouts, and the pinned CA when one
 * is configured. Returns 1 when every option was accepted.
 */
static int setup_common(struct fota_posix_http *h, const char *url, char *curl_err)
{
    int ok = 1;

    curl_easy_reset(h->curl);
    ok &= curl_easy_setopt(h->curl, CURLOPT_URL, url) == CURLE_OK;
#if LIBCURL_VERSION_NUM >= 0x075500
    ok &= curl_easy_setopt(h->curl, CURLOPT_PROTOCOLS_STR, "http,https") == CURLE_OK;
#else
    ok &= curl_easy_setopt(h->curl, CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS)) ==
          CURLE_OK;
#endif
    ok &= curl_easy_setopt(h->curl, CURLOPT_FOLLOWLOCATION, 0L) == CURLE_OK;
    ok &= curl_easy_setopt(h->curl, CURLOPT_NOSIGNAL, 1L) == CURLE_OK;
    ok &= curl_easy_setopt(h->curl, CURLOPT_NOPROGRESS, 1L) == CURLE_OK;
    ok &= curl_easy_setopt(h->curl, CURLOPT_CONNECTTIMEOUT, h->connect_timeout_s) == CURLE_OK;
    ok &= curl_easy_setopt(h->curl, CURLOPT_LOW_SPEED_LIMIT, h->low_speed_bytes) == CURLE_OK;
    ok &= curl_easy_setopt(h->curl, CURLOPT_LOW_SPEED_TIME, h->low_speed_time_s) == CURLE_OK;
    ok &= curl_easy_setopt(h->curl, CURLOPT_USERAGENT, "fota/0.1") == CURLE_OK;
    ok &= curl_easy_setopt(h->curl, CURLOPT_ERRORBUFFER, curl_err) == CURLE_OK;
    if (h->ca_file != NULL) {
        /* Only the pinned bundle: no system directory of CAs beside it. */
        ok &= curl_easy_setopt(h->curl, CURLOPT_CAINFO, h->ca_file) == CURLE_OK;
        ok &= curl_easy_setopt(h->curl, CURLOPT_CAPATH, (char *)NULL) == CURLE_OK;
    }
    return ok;
}

/* Drop every pointer into the caller's stack frame from the handle. */
static void detach(struct fota_posix_http *h)
{
    curl_easy_setopt(h->curl, CURLOPT_ERRORBUFFER, (char *)NULL);
    curl_easy_setopt(h->curl, CURLOPT_WRITEDATA, (void *)NULL);
    curl_easy_setopt(h->curl, CURLOPT_HEADERDATA, (void *)NULL);
    curl_easy_setopt(h->curl, CURLOPT_HTTPHEADER, (struct curl_slist *)NULL);
    curl_easy_setopt(h->curl, CURLOPT_POSTFIELDS, (void *)NULL);
}

fota_err fota_posix_http_stream(struct fota_posix_http *h, const char *url,
                                uint64_t max_len, fota_posix_http_sink sink, void *ctx)
{
    char curl_err[CURL_ERROR_SIZE];
    struct xfer x;
    CURLcode res;
    long status = 0;
    int ok = 1;

    if (h == NULL || h->curl == NULL || url == NULL || sink == NULL)
        return FOTA_E_INVALID;
    h->errmsg[0] = '\0';
    curl_err[0] = '\0';
    memset(&x, 0, sizeof(x));
    x.curl = h->curl;
    x.b.cap = max_len;
    x.b.sink = sink;
    x.b.ctx = ctx;

    ok &= setup_common(h, url, curl_err);
    ok &= curl_easy_setopt(h->curl, CURLOPT_HTTPGET, 1L) == CURLE_OK;
    ok &= curl_easy_setopt(h->curl, CURLOPT_WRITEFUNCTION, on_body) == CURLE_OK;
    ok &= curl_easy_setopt(h->curl, CURLOPT_WRITEDATA, &x) == CURLE_OK;
    /* curl refuses a larger Content-Length by itself; 0 would mean "no
     * limit" to curl, and the write callback covers that case. */
    if (max_len > 0 && max_len <= (uint64_t)INT64_MAX)
        ok &= curl_easy_setopt(h->curl, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)max_len) == CURLE_OK;
    else
        ok &= curl_easy_setopt(h->curl, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)0) == CURLE_OK;
    if (!ok) {
        snprintf(h->errmsg, sizeof(h->errmsg), "GET %s: cannot set up the request", url);
        detach(h);
        return FOTA_E_IO;
    }

    res = curl_easy_perform(h->curl);
    curl_easy_getinfo(h->curl, CURLINFO_RESPONSE_CODE, &status);
    /* The buffer lives on this stack frame: detach it before returning. */
    detach(h);

    if (status != 0 && !status_ok(status)) {
        snprintf(h->errmsg, sizeof(h->errmsg), "GET %s: HTTP %ld", url, status);
        return (status == 404 || status == 403) ? FOTA_E_NOT_FOUND : FOTA_E_IO;
    }
    if (x.bad_status) {
        snprintf(h->errmsg, sizeof(h->errmsg), "GET %s: unexpected HTTP status", url);
        return FOTA_E_IO;
    }
    if (x.b.sink_err != FOTA_OK) {
        snprintf(h->errmsg, sizeof(h->errmsg), "GET %s: stopped after %" PRIu64 " bytes: %s",
                 url, x.b.seen, fota_strerror(x.b.sink_err));
        return x.b.sink_err;
    }
    if (x.b.too_long || res == CURLE_FILESIZE_EXCEEDED) {
        snprintf(h->errmsg, sizeof(h->errmsg), "GET %s: longer than %" PRIu64 " bytes", url,
                 max_len);
        return FOTA_E_LENGTH;
    }
    if (res != CURLE_OK) {
        snprintf(h->errmsg, sizeof(h->errmsg), "GET %s: %.160s", url,
                 curl_err[0] != '\0' ? curl_err : curl_easy_strerror(res));
        return FOTA_E_IO;
    }
    if (!status_ok(status)) {
        snprintf(h->errmsg, sizeof(h->errmsg), "GET %s: HTTP %ld", url, status);
        return FOTA_E_IO;
    }
    return FOTA_OK;
}

struct membuf {
    uint8_t *buf;
    size_t len;
    size_t cap;
    size_t max_len;
};

static fota_err membuf_sink(void *ctx, const uint8_t *data, size_t len)
{
    struct membuf *m = ctx;

    /* The stream never passes more than max_len bytes in total. */
    if (len > m->max_len - m->len)
        return FOTA_E_LENGTH;
    if (len > m->cap - m->len) {
        size_t need = m->len + len;
        size_t cap = m->cap;
        uint8_t *nbuf;

        while (cap < need)
            cap = cap > m->max_len / 2 ? m->max_len : cap * 2;
        nbuf = realloc(m->buf, cap + 1);
        if (nbuf == NULL)
            return FOTA_E_NOMEM;
        m->buf = nbuf;
        m->cap = cap;
    }
    memcpy(m->buf + m->len, data, len);
    m->len += len;
    return FOTA_OK;
}

fota_err fota_posix_http_get(struct fota_posix_http *h, const char *url, size_t max_len,
                             uint8_t **ret_buf, size_t *ret_len)
{
    struct membuf m;
    fota_err err;

    if (ret_buf == NULL || ret_len == NULL || max_len == SIZE_MAX)
        return FOTA_E_INVALID;
    m.cap = max_len < 4096 ? max_len : 4096;
    m.buf = malloc(m.cap + 1);
    if (m.buf == NULL)
        return FOTA_E_NOMEM;
    m.len = 0;
    m.max_len = max_len;
    err = fota_posix_http_stream(h, url, max_len, membuf_sink, &m);
    if (err != FOTA_OK) {
        free(m.buf);
        return err;
    }
    m.buf[m.len] = '\0';
    *ret_buf = m.buf;
    *ret_len = m.len;
    return FOTA_OK;
}

fota_err fota_posix_http_get_in(struct fota_posix_http *h, const char *base, const char *name,
                                size_t max_len, uint8_t **ret_buf, size_t *ret_len)
{
    size_t blen, nlen;
    char *url;
    fota_err err;

    if (base == NULL || name == NULL || !fota_posix_name_ok(name))
        return FOTA_E_INVALID;
    blen = strlen(base);
    nlen = strlen(name);
    url = malloc(blen + nlen + 1);
    if (url == NULL)
        return FOTA_E_NOMEM;
    memcpy(url, base, blen);
    memcpy(url + blen, name, nlen + 1);
    err = fota_posix_http_get(h, url, max_len, ret_buf, ret_len);
    free(url);
    return err;
}

/* ---- requests with a JSON body ------------------------------------------ */

/* The longest bearer token sent; the server's are far shorter. */
#define BEARER_MAX 4096u

/* Transport failures that are the caller's, not the network's. */
static fota_err transport_error(CURLcode res)
{
    switch (res) {
    case CURLE_UNSUPPORTED_PROTOCOL:
    case CURLE_URL_MALFORMAT:
        return FOTA_E_INVALID;
    case CURLE_OUT_OF_MEMORY:
        return FOTA_E_NOMEM;
    default:
        return FOTA_E_NETWORK;
    }
}

static void set_curl_errmsg(struct fota_posix_http *h, const char *method, const char *url,
                            CURLcode res, const char *curl_err)
{
    snprintf(h->errmsg, sizeof(h->errmsg), "%s %s: %.160s", method, url,
             curl_err[0] != '\0' ? curl_err : curl_easy_strerror(res));
}

struct req_xfer {
    CURL *curl;
    struct membuf m;
    int started;
    int too_big;
    fota_err err;            /* the body could not be stored */
};

static size_t on_req_body(char *data, size_t size, size_t nmemb, void *userdata)
{
    struct req_xfer *x = userdata;
    size_t n = size * nmemb;
    fota_err err;

    if (!x->started) {
        curl_off_t clen = -1;

        x->started = 1;
        if (curl_easy_getinfo(x->curl, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &clen) == CURLE_OK &&
            clen >= 0 && (uint64_t)clen > x->m.max_len) {
            x->too_big = 1;
            return 0;
        }
    }
    if (n > x->m.max_len - x->m.len) {
        x->too_big = 1;
        return 0;
    }
    err = membuf_sink(&x->m, (const uint8_t *)data, n);
    if (err != FOTA_OK) {
        x->err = err;
        return 0;
    }
    return n;
}

/* A token goes into a header line as it is: refuse anything that could end
 * the line or is not a visible ASCII character. */
static int bearer_ok(const char *bearer)
{
    size_t len = strlen(bearer);

    if (len == 0 || len > BEARER_MAX)
        return 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)bearer[i];

        if (c <= 0x20 || c >= 0x7f)
            return 0;
    }
    return 1;
}

/* The Authorization line holds a secret: wipe curl's copy and ours. */
static void free_headers(struct curl_slist *list)
{
    for (struct curl_slist *l = list; l != NULL; l = l->next)
        fota_wipe(l->data, strlen(l->data));
    curl_slist_free_all(list);
}

static fota_err add_header(struct curl_slist **list, const char *line)
{
    struct curl_slist *n = curl_slist_append(*list, line);

    if (n == NULL)
        return FOTA_E_NOMEM;
    *list = n;
    return FOTA_OK;
}

fota_err fota_posix_http_request(struct fota_posix_http *h, const char *method,
                                 const char *url, const char *bearer, const void *body,
                                 size_t body_len, size_t max_resp, long *ret_status,
                                 uint8_t **ret_buf, size_t *ret_len)
{
    char curl_err[CURL_ERROR_SIZE];
    char auth[sizeof("Authorization: Bearer ") + BEARER_MAX];
    struct curl_slist *headers = NULL;
    struct req_xfer x;
    CURLcode res;
    long status = 0;
    int is_post;
    int ok = 1;
    fota_err err;

    if (h == NULL || h->curl == NULL || method == NULL || url == NULL || ret_status == NULL ||
        ret_buf == NULL || ret_len == NULL || max_resp == SIZE_MAX)
        return FOTA_E_INVALID;
    if (body == NULL && body_len != 0)
        return FOTA_E_INVALID;
    if (body_len > (size_t)INT64_MAX)
        return FOTA_E_INVALID;
    is_post = strcmp(method, "POST") == 0;
    /* A GET carries no body: a server is free to ignore one. */
    if (!is_post && (strcmp(method, "GET") != 0 || body_len != 0))
        return FOTA_E_INVALID;
    if (bearer != NULL && !bearer_ok(bearer))
        return FOTA_E_INVALID;
    h->errmsg[0] = '\0';
    curl_err[0] = '\0';
    memset(&x, 0, sizeof(x));
    x.curl = h->curl;
    x.m.cap = max_resp < 4096 ? max_resp : 4096;
    x.m.max_len = max_resp;
    x.m.buf = malloc(x.m.cap + 1);
    if (x.m.buf == NULL)
        return FOTA_E_NOMEM;

    /* Expect: curl would wait for a 100 Continue before a larger body. */
    err = add_header(&headers, "Expect:");
    if (err == FOTA_OK)
        err = add_header(&headers, "Accept: application/json");
    if (err == FOTA_OK && is_post)
        err = add_header(&headers, "Content-Type: application/json");
    if (err == FOTA_OK && bearer != NULL) {
        snprintf(auth, sizeof(auth), "Authorization: Bearer %s", bearer);
        err = add_header(&headers, auth);
        fota_wipe(auth, sizeof(auth));
    }
    if (err != FOTA_OK)
        goto out;

    ok &= setup_common(h, url, curl_err);
    if (is_post) {
        /* POSTFIELDS with an explicit size: the body is sent from the
         * caller's buffer, not copied, and may hold NUL bytes. */
        ok &= curl_easy_setopt(h->curl, CURLOPT_POST, 1L) == CURLE_OK;
        ok &= curl_easy_setopt(h->curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body_len) ==
              CURLE_OK;
        ok &= curl_easy_setopt(h->curl, CURLOPT_POSTFIELDS, body != NULL ? body : "") == CURLE_OK;
    } else {
        ok &= curl_easy_setopt(h->curl, CURLOPT_HTTPGET, 1L) == CURLE_OK;
    }
    ok &= curl_easy_setopt(h->curl, CURLOPT_HTTPHEADER, headers) == CURLE_OK;
    ok &= curl_easy_setopt(h->curl, CURLOPT_WRITEFUNCTION, on_req_body) == CURLE_OK;
    ok &= curl_easy_setopt(h->curl, CURLOPT_WRITEDATA, &x) == CURLE_OK;
    if (!ok) {
        snprintf(h->errmsg, sizeof(h->errmsg), "%s %s: cannot set up the request", method, url);
        detach(h);
        err = FOTA_E_IO;
        goto out;
    }

    res = curl_easy_perform(h->curl);
    curl_easy_getinfo(h->curl, CURLINFO_RESPONSE_CODE, &status);
    detach(h);

    if (x.too_big) {
        snprintf(h->errmsg, sizeof(h->errmsg), "%s %s: HTTP %ld, answer longer than %zu bytes",
                 method, url, status, max_resp);
        err = FOTA_E_TOO_BIG;
        goto out;
    }
    if (x.err != FOTA_OK) {
        snprintf(h->errmsg, sizeof(h->errmsg), "%s %s: %s", method, url, fota_strerror(x.err));
        err = x.err;
        goto out;
    }
    if (res != CURLE_OK) {
        set_curl_errmsg(h, method, url, res, curl_err);
        err = transport_error(res);
        goto out;
    }
    if (status < 100 || status > 599) {
        snprintf(h->errmsg, sizeof(h->errmsg), "%s %s: no valid HTTP status", method, url);
        err = FOTA_E_NETWORK;
        goto out;
    }
    x.m.buf[x.m.len] = '\0';
    *ret_status = status;
    *ret_buf = x.m.buf;
    *ret_len = x.m.len;
    x.m.buf = NULL;
    err = FOTA_OK;
out:
    free_headers(headers);
    free(x.m.buf);
    return err;
}

/* ---- ranged downloads ------------------------------------------------------ */

struct range_xfer {
    CURL *curl;
    uint64_t from;
    struct body b;           /* b.cap: total - from */
    int have_range;          /* a Content-Range was parsed for the current answer */
    int bad_range;           /* ... or one we could not read, or two */
    uint64_t range_start;
    int headers_done;
    fota_err verdict;        /* why the answer was refused (FOTA_OK: accepted) */
    long status;
};

/* Case-insensitive "name:" at the start of a header line; returns what
 * follows the colon, or NULL. */
static const char *header_value(const char *line, size_t len, const char *name)
{
    size_t n = strlen(name);

    if (len <= n || line[n] != ':')
        return NULL;
    for (size_t i = 0; i < n; i++) {
        char a = line[i];
        char b = name[i];

        if (a >= 'A' && a <= 'Z')
            a = (char)(a - 'A' + 'a');
        if (a != b)
            return NULL;
    }
    return line + n + 1;
}

/* "bytes <first>-<last>/<size or *>" with optional blanks around; only the
 * first byte position matters to us. 1 on success. */
static int parse_content_range(const char *v, const char *end, uint64_t *ret_first)
{
    uint64_t first = 0;
    int digits = 0;

    while (v < end && (*v == ' ' || *v == '\t'))
        v++;
    if (end - v < 6 || strncmp(v, "bytes ", 6) != 0)
        return 0;
    v += 6;
    while (v < end && *v == ' ')
        v++;
    while (v < end && *v >= '0' && *v <= '9') {
        unsigned d = (unsigned)(*v - '0');

        if (first > (UINT64_MAX - d) / 10)
            return 0;
        first = first * 10 + d;
        digits++;
        v++;
    }
    if (digits == 0 || v >= end || *v != '-')
        return 0;
    *ret_first = first;
    return 1;
}

/* Decide on the answer once its headers are complete. */
static fota_err range_verdict(struct range_xfer *x)
{
    curl_off_t clen = -1;

    if (x->status == 404 || x->status == 403)
        return FOTA_E_NOT_FOUND;
    if (x->status == 206) {
        /* A 206 for another offset would splice foreign bytes into the
         * image at our position. */
        if (!x->have_range || x->bad_range || x->range_start != x->from)
            return FOTA_E_SERVER;
    } else if (x->status == 200) {
        /* The whole file from byte 0: only right when we asked for it. */
        if (x->from != 0)
            return FOTA_E_SERVER;
    } else {
        return FOTA_E_SERVER;
    }
    if (curl_easy_getinfo(x->curl, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &clen) == CURLE_OK &&
        clen >= 0 && (uint64_t)clen > x->b.cap) {
        x->b.too_long = 1;
        return FOTA_E_LENGTH;
    }
    return FOTA_OK;
}

static size_t on_range_header(char *data, size_t size, size_t nmemb, void *userdata)
{
    struct range_xfer *x = userdata;
    size_t n = size * nmemb;
    const char *v;
    size_t len = n;

    while (len > 0 && (data[len - 1] == '\n' || data[len - 1] == '\r'))
        len--;
    if (n >= 5 && strncmp(data, "HTTP/", 5) == 0) {
        /* A new answer starts (after a 1xx, or the first one). */
        x->have_range = 0;
        x->bad_range = 0;
        x->headers_done = 0;
        return n;
    }
    if (len == 0) {
        long status = 0;

        curl_easy_getinfo(x->curl, CURLINFO_RESPONSE_CODE, &status);
        if (status < 200)
            return n;          /* an interim answer: the real one follows */
        x->status = status;
        x->headers_done = 1;
        x->verdict = range_verdict(x);
        return x->verdict == FOTA_OK ? n : 0;
    }
    v = header_value(data, len, "content-range");
    if (v != NULL) {
        uint64_t first = 0;

        /* Two Content-Range lines, or one we cannot read: refused (for a
         * 206) when the headers are complete. */
        if (x->have_range || !parse_content_range(v, data + len, &first))
            x->bad_range = 1;
        x->have_range = 1;
        x->range_start = first;
    }
    return n;
}

static size_t on_range_body(char *data, size_t size, size_t nmemb, void *userdata)
{
    struct range_xfer *x = userdata;
    size_t n = size * nmemb;

    if (!x->headers_done || x->verdict != FOTA_OK)
        return 0;
    return body_feed(&x->b, data, n);
}

fota_err fota_posix_http_range(struct fota_posix_http *h, const char *url, uint64_t from,
                               uint64_t total, fota_posix_http_sink sink, void *ctx,
                               uint64_t *ret_received)
{
    char curl_err[CURL_ERROR_SIZE];
    char range[32];
    struct range_xfer x;
    CURLcode res;
    int ok = 1;

    if (h == NULL || h->curl == NULL || url == NULL || sink == NULL || from > total)
        return FOTA_E_INVALID;
    if (ret_received != NULL)
        *ret_received = 0;
    h->errmsg[0] = '\0';
    /* Nothing left to fetch: a request would only earn a 416. */
    if (from == total)
        return FOTA_OK;
    curl_err[0] = '\0';
    memset(&x, 0, sizeof(x));
    x.curl = h->curl;
    x.from = from;
    x.b.cap = total - from;
    x.b.sink = sink;
    x.b.ctx = ctx;
    x.verdict = FOTA_E_NETWORK;     /* until an answer's headers are complete */

    ok &= setup_common(h, url, curl_err);
    ok &= curl_easy_setopt(h->curl, CURLOPT_HTTPGET, 1L) == CURLE_OK;
    if (from > 0) {
        snprintf(range, sizeof(range), "%" PRIu64 "-", from);
        ok &= curl_easy_setopt(h->curl, CURLOPT_RANGE, range) == CURLE_OK;
    }
    /* No transparent decompression: offsets count the bytes of the file. */
    ok &= curl_easy_setopt(h->curl, CURLOPT_HTTP_CONTENT_DECODING, 0L) == CURLE_OK;
    ok &= curl_easy_setopt(h->curl, CURLOPT_HEADERFUNCTION, on_range_header) == CURLE_OK;
    ok &= curl_easy_setopt(h->curl, CURLOPT_HEADERDATA, &x) == CURLE_OK;
    ok &= curl_easy_setopt(h->curl, CURLOPT_WRITEFUNCTION, on_range_body) == CURLE_OK;
    ok &= curl_easy_setopt(h->curl, CURLOPT_WRITEDATA, &x) == CURLE_OK;
    if (!ok) {
        snprintf(h->errmsg, sizeof(h->errmsg), "GET %s: cannot set up the request", url);
        detach(h);
        return FOTA_E_IO;
    }

    res = curl_easy_perform(h->curl);
    detach(h);
    if (ret_received != NULL)
        *ret_received = x.b.seen;

    if (x.b.sink_err != FOTA_OK) {
        snprintf(h->errmsg, sizeof(h->errmsg), "GET %s: stopped after %" PRIu64 " bytes: %s",
                 url, x.b.seen, fota_strerror(x.b.sink_err));
        return x.b.sink_err;
    }
    if (x.b.too_long) {
        snprintf(h->errmsg, sizeof(h->errmsg),
                 "GET %s: more than the %" PRIu64 " bytes left from %" PRIu64, url, x.b.cap, from);
        return FOTA_E_LENGTH;
    }
    if (x.headers_done && x.verdict != FOTA_OK) {
        if (x.status == 206)
            snprintf(h->errmsg, sizeof(h->errmsg),
                     "GET %s: HTTP 206 for another range than bytes=%" PRIu64 "-", url, from);
        else if (x.status == 200)
            snprintf(h->errmsg, sizeof(h->errmsg),
                     "GET %s: HTTP 200 (whole file) to a request from byte %" PRIu64, url, from);
        else
            snprintf(h->errmsg, sizeof(h->errmsg), "GET %s: HTTP %ld", url, x.status);
        return x.verdict;
    }
    if (res != CURLE_OK) {
        set_curl_errmsg(h, "GET", url, res, curl_err);
        return transport_error(res);
    }
    if (x.b.seen < x.b.cap) {
        snprintf(h->errmsg, sizeof(h->errmsg),
                 "GET %s: ended after %" PRIu64 " of %" PRIu64 " bytes", url, x.b.seen, x.b.cap);
        return FOTA_E_NETWORK;
    }
    return FOTA_OK;
}

fota_err fota_posix_url_base(const char *url, char **ret_url)
{
    size_t len;
    char *out;

    if (url == NULL || ret_url == NULL || url[0] == '\0')
        return FOTA_E_INVALID;
    len = strlen(url);
    out = malloc(len + 2);
    if (out == NULL)
        return FOTA_E_NOMEM;
    memcpy(out, url, len);
    if (url[len - 1] != '/')
        out[len++] = '/';
    out[len] = '\0';
    *ret_url = out;
    return FOTA_OK;
}

fota_err fota_posix_url_path(const char *path, char **ret_path)
{
    static const char hex[] = "0123456789ABCDEF";
    /* Bytes a URL path may carry as they are (RFC 3986 pchar, "/" and "%").
     * Keeping them verbatim matches what other TUF clients request, so a
     * repository serves us the same file it serves them. */
    static const char keep[] = "-._~!$&'()*+,;=:@/%";
    size_t len, i, o = 0;
    char *out;

    if (path == NULL || ret_path == NULL)
        return FOTA_E_INVALID;
    len = strlen(path);
    if (len > (SIZE_MAX - 1) / 3)
        return FOTA_E_TOO_BIG;
    out = malloc(len * 3 + 1);
    if (out == NULL)
        return FOTA_E_NOMEM;
    for (i = 0; i < len; i++) {
        unsigned char c = (unsigned char)path[i];

        if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
            strchr(keep, c) != NULL) {
            out[o++] = (char)c;
        } else {
            out[o++] = '%';
            out[o++] = hex[c >> 4];
            out[o++] = hex[c & 0x0f];
        }
    }
    out[o] = '\0';
    *ret_path = out;
    return FOTA_OK;
}
