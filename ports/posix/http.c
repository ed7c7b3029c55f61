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

struct xfer {
    CURL *curl;
    uint64_t max_len;
    uint64_t seen;
    fota_posix_http_sink sink;
    void *ctx;
    fota_err sink_err;
    int started;
    int too_long;
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
    fota_err err;

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
            clen >= 0 && (uint64_t)clen > x->max_len) {
            x->too_long = 1;
            return 0;
        }
    }
    if (n > x->max_len - x->seen) {
        x->too_long = 1;
        return 0;
    }
    if (n == 0)
        return 0;
    err = x->sink(x->ctx, (const uint8_t *)data, n);
    if (err != FOTA_OK) {
        x->sink_err = err;
        return 0;
    }
    x->seen += n;
    return n;
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
    x.max_len = max_len;
    x.sink = sink;
    x.ctx = ctx;

    ok &= curl_easy_setopt(h->curl, CURLOPT_URL, url) == CURLE_OK;
#if LIBCURL_VERSION_NUM >= 0x075500
    ok &= curl_easy_setopt(h->curl, CURLOPT_PROTOCOLS_STR, "http,https") == CURLE_OK;
#endif
    ok &= curl_easy_setopt(h->curl, CURLOPT_HTTPGET, 1L) == CURLE_OK;
    ok &= curl_easy_setopt(h->curl, CURLOPT_FOLLOWLOCATION, 0L) == CURLE_OK;
    ok &= curl_easy_setopt(h->curl, CURLOPT_NOSIGNAL, 1L) == CURLE_OK;
    ok &= curl_easy_setopt(h->curl, CURLOPT_NOPROGRESS, 1L) == CURLE_OK;
    ok &= curl_easy_setopt(h->curl, CURLOPT_CONNECTTIMEOUT, h->connect_timeout_s) == CURLE_OK;
    ok &= curl_easy_setopt(h->curl, CURLOPT_LOW_SPEED_LIMIT, h->low_speed_bytes) == CURLE_OK;
    ok &= curl_easy_setopt(h->curl, CURLOPT_LOW_SPEED_TIME, h->low_speed_time_s) == CURLE_OK;
    ok &= curl_easy_setopt(h->curl, CURLOPT_USERAGENT, "fota/0.1") == CURLE_OK;
    ok &= curl_easy_setopt(h->curl, CURLOPT_ERRORBUFFER, curl_err) == CURLE_OK;
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
        curl_easy_setopt(h->curl, CURLOPT_ERRORBUFFER, NULL);
        return FOTA_E_IO;
    }

    res = curl_easy_perform(h->curl);
    curl_easy_getinfo(h->curl, CURLINFO_RESPONSE_CODE, &status);
    /* The buffer lives on this stack frame: detach it before returning. */
    curl_easy_setopt(h->curl, CURLOPT_ERRORBUFFER, NULL);
    curl_easy_setopt(h->curl, CURLOPT_WRITEDATA, NULL);

    if (status != 0 && !status_ok(status)) {
        snprintf(h->errmsg, sizeof(h->errmsg), "GET %s: HTTP %ld", url, status);
        return (status == 404 || status == 403) ? FOTA_E_NOT_FOUND : FOTA_E_IO;
    }
    if (x.bad_status) {
        snprintf(h->errmsg, sizeof(h->errmsg), "GET %s: unexpected HTTP status", url);
        return FOTA_E_IO;
    }
    if (x.sink_err != FOTA_OK) {
        snprintf(h->errmsg, sizeof(h->errmsg), "GET %s: stopped after %" PRIu64 " bytes: %s",
                 url, x.seen, fota_strerror(x.sink_err));
        return x.sink_err;
    }
    if (x.too_long || res == CURLE_FILESIZE_EXCEEDED) {
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
