/* SPDX-License-Identifier: Apache-2.0 */
#include "metrics.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "http.h"
#include "log.h"
#include "routes.h"
#include "server.h"
#include "store.h"
#include "store_rollouts.h"

/* The statuses fota-server answers with; anything else is counted as "other"
 * (the last slot). */
static const unsigned metric_codes[] = {200, 201, 202, 204, 206, 304, 400, 401, 403, 404,
                                        405, 409, 410, 411, 413, 414, 415, 416, 422, 429,
                                        431, 500, 501, 503};
#define N_CODES (sizeof(metric_codes) / sizeof(metric_codes[0]) + 1)

/* Latency buckets in seconds (upper bounds; +Inf is implied). Fixed so that
 * series from several processes and restarts can be summed. */
static const double metric_buckets[] = {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01,
                                        0.025,  0.05,    0.1,    0.25,  0.5,    1.0,   2.5,
                                        5.0,    10.0};
#define N_BUCKETS (sizeof(metric_buckets) / sizeof(metric_buckets[0]) + 1)

struct route_counters {
    _Atomic uint64_t by_code[N_CODES];
    _Atomic uint64_t hist[N_BUCKETS];   /* per bucket, not cumulative */
    _Atomic uint64_t sum_ns;
};

struct fota_metrics {
    size_t n_routes;
    const char *const *names;
    struct route_counters *routes;      /* n_routes + 1 (unmatched) */
    _Atomic uint64_t checkins;
    _Atomic uint64_t downloads;
    _Atomic uint64_t download_bytes;
    _Atomic long in_flight;
    int64_t start_time;
};

struct fota_metrics *fota_metrics_new(size_t n_routes, const char *const *names)
{
    struct fota_metrics *m = calloc(1, sizeof(*m));

    if (m == NULL)
        return NULL;
    m->routes = calloc(n_routes + 1, sizeof(*m->routes));
    if (m->routes == NULL) {
        free(m);
        return NULL;
    }
    for (size_t r = 0; r <= n_routes; r++) {
        for (size_t i = 0; i < N_CODES; i++)
            atomic_init(&m->routes[r].by_code[i], 0);
        for (size_t i = 0; i < N_BUCKETS; i++)
            atomic_init(&m->routes[r].hist[i], 0);
        atomic_init(&m->routes[r].sum_ns, 0);
    }
    atomic_init(&m->checkins, 0);
    atomic_init(&m->downloads, 0);
    atomic_init(&m->download_bytes, 0);
    atomic_init(&m->in_flight, 0);
    m->n_routes = n_routes;
    m->names = names;
    m->start_time = fota_server_now();
    return m;
}

void fota_metrics_free(struct fota_metrics *m)
{
    if (m == NULL)
        return;
    free(m->routes);
    free(m);
}

void fota_metrics_request(struct fota_metrics *m, size_t route, unsigned status,
                          double seconds)
{
    struct route_counters *rc;
    size_t code = N_CODES - 1, bucket = N_BUCKETS - 1;

    if (m == NULL)
        return;
    if (route > m->n_routes)
        route = m->n_routes;
    rc = &m->routes[route];
    for (size_t i = 0; i < N_CODES - 1; i++) {
        if (metric_codes[i] == status) {
            code = i;
            break;
        }
    }
    if (seconds < 0)
        seconds = 0;
    for (size_t i = 0; i < N_BUCKETS - 1; i++) {
        if (seconds <= metric_buckets[i]) {
            bucket = i;
            break;
        }
    }
    atomic_fetch_add_explicit(&rc->by_code[code], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&rc->hist[bucket], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&rc->sum_ns, (uint64_t)(seconds * 1e9), memory_order_relaxed);
}

void fota_metrics_download(struct fota_metrics *m, uint64_t bytes)
{
    if (m == NULL)
        return;
    atomic_fetch_add_explicit(&m->downloads, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&m->download_bytes, bytes, memory_order_relaxed);
}

void fota_metrics_checkin(struct fota_metrics *m)
{
    if (m != NULL)
        atomic_fetch_add_explicit(&m->checkins, 1, memory_order_relaxed);
}

void fota_metrics_in_flight(struct fota_metrics *m, int delta)
{
    if (m != NULL)
        atomic_fetch_add_explicit(&m->in_flight, delta, memory_order_relaxed);
}

long fota_metrics_in_flight_now(const struct fota_metrics *m)
{
    if (m == NULL)
        return 0;
    return atomic_load_explicit(&((struct fota_metrics *)m)->in_flight, memory_order_relaxed);
}

/* ---- text ---------------------------------------------------------------- */

struct text {
    char *buf;
    size_t len, cap;
    int failed;
};

static void text_add(struct text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void text_add(struct text *t, const char *fmt, ...)
{
    va_list ap;
    int n;

    if (t->failed)
        return;
    for (;;) {
        size_t room = t->cap - t->len;
        va_start(ap, fmt);
        n = vsnprintf(t->buf != NULL ? t->buf + t->len : NULL, room, fmt, ap);
        va_end(ap);
        if (n < 0) {
            t->failed = 1;
            return;
        }
        if ((size_t)n < room) {
            t->len += (size_t)n;
            return;
        }
        size_t cap = t->cap ? t->cap * 2 : 8192;
        while (cap - t->len <= (size_t)n)
            cap *= 2;
        char *nb = realloc(t->buf, cap);
        if (nb == NULL) {
            t->failed = 1;
            return;
        }
        t->buf = nb;
        t->cap = cap;
    }
}

/* A label value as the exposition format wants it: \, " and newline escaped.
 * Values here are ids and names that the store already capped. */
static void text_label(struct text *t, const char *value)
{
    for (const char *p = value; *p != '\0'; p++) {
        if (*p == '\\' || *p == '"')
            text_add(t, "\\%c", *p);
        else if (*p == '\n')
            text_add(t, "\\n");
        else
            text_add(t, "%c", *p);
    }
}

static const char *route_name(const struct fota_metrics *m, size_t r)
{
    return r < m->n_routes ? m->names[r] : "unmatched";
}

static void render_rollouts(struct text *t, struct fota_store *store);

int fota_metrics_render(struct fota_metrics *m, struct fota_store *store, char **ret_text,
                        size_t *ret_len)
{
    struct text t = {0};

    text_add(&t, "# HELP fota_http_requests_total HTTP requests answered, by route and status.\n"
                 "# TYPE fota_http_requests_total counter\n");
    for (size_t r = 0; r <= m->n_routes; r++) {
        for (size_t i = 0; i < N_CODES; i++) {
            uint64_t v = atomic_load_explicit(&m->routes[r].by_code[i], memory_order_relaxed);
            if (v == 0)
                continue;
            if (i < N_CODES - 1)
                text_add(&t, "fota_http_requests_total{route=\"%s\",code=\"%u\"} %" PRIu64 "\n",
                         route_name(m, r), metric_codes[i], v);
            else
                text_add(&t, "fota_http_requests_total{route=\"%s\",code=\"other\"} %" PRIu64
                             "\n", route_name(m, r), v);
        }
    }
    text_add(&t, "# HELP fota_http_request_duration_seconds Time from a request's first "
                 "line to its last byte sent.\n"
                 "# TYPE fota_http_request_duration_seconds histogram\n");
    for (size_t r = 0; r <= m->n_routes; r++) {
        uint64_t cum = 0;
        const char *name = route_name(m, r);
        for (size_t i = 0; i < N_BUCKETS; i++)
            cum += atomic_load_explicit(&m->routes[r].hist[i], memory_order_relaxed);
        if (cum == 0)
            continue;
        cum = 0;
        for (size_t i = 0; i < N_BUCKETS; i++) {
            cum += atomic_load_explicit(&m->routes[r].hist[i], memory_order_relaxed);
            if (i < N_BUCKETS - 1)
                text_add(&t, "fota_http_request_duration_seconds_bucket{route=\"%s\",le=\"%g\"} "
                             "%" PRIu64 "\n", name, metric_buckets[i], cum);
            else
                text_add(&t, "fota_http_request_duration_seconds_bucket{route=\"%s\",le=\"+Inf\"} "
                             "%" PRIu64 "\n", name, cum);
        }
        text_add(&t, "fota_http_request_duration_seconds_sum{route=\"%s\"} %.9f\n", name,
                 (double)atomic_load_explicit(&m->routes[r].sum_ns, memory_order_relaxed) / 1e9);
        text_add(&t, "fota_http_request_duration_seconds_count{route=\"%s\"} %" PRIu64 "\n",
                 name, cum);
    }
    text_add(&t, "# HELP fota_checkins_total Device check-ins answered with a Director "
                 "document.\n# TYPE fota_checkins_total counter\nfota_checkins_total %" PRIu64
                 "\n", atomic_load_explicit(&m->checkins, memory_order_relaxed));
    text_add(&t, "# HELP fota_downloads_total Complete GETs of files under /repo/targets/.\n"
                 "# TYPE fota_downloads_total counter\nfota_downloads_total %" PRIu64 "\n",
             atomic_load_explicit(&m->downloads, memory_order_relaxed));
    text_add(&t, "# HELP fota_download_bytes_total Bytes sent for GETs of /repo/targets/.\n"
                 "# TYPE fota_download_bytes_total counter\nfota_download_bytes_total %" PRIu64
                 "\n", atomic_load_explicit(&m->download_bytes, memory_order_relaxed));
    text_add(&t, "# HELP fota_http_in_flight Requests being handled now.\n"
                 "# TYPE fota_http_in_flight gauge\nfota_http_in_flight %ld\n",
             atomic_load_explicit(&m->in_flight, memory_order_relaxed));
    text_add(&t, "# HELP fota_process_start_time_seconds Start time of this process.\n"
                 "# TYPE fota_process_start_time_seconds gauge\n"
                 "fota_process_start_time_seconds %" PRId64 "\n", m->start_time);
    if (store != NULL)
        render_rollouts(&t, store);
    if (t.failed) {
        free(t.buf);
        return -1;
    }
    *ret_text = t.buf;
    *ret_len = t.len;
    return 0;
}

/* Rollouts still moving (active or paused): their state, open wave and
 * devices per status, read from the store at each scrape. */
#define METRICS_ROLLOUTS_MAX 1000

static void render_rollouts(struct text *t, struct fota_store *store)
{
    struct fota_store_rollout *items = NULL;
    size_t n = 0;
    int more = 0;
    unsigned mask = FOTA_STORE_ROLLOUT_BIT(FOTA_STORE_ROLLOUT_ACTIVE) |
                    FOTA_STORE_ROLLOUT_BIT(FOTA_STORE_ROLLOUT_PAUSED);

    if (fota_store_rollout_list(store, mask, NULL, METRICS_ROLLOUTS_MAX, &items, &n, &more) !=
        FOTA_STORE_OK) {
        fota_log(FOTA_LOG_WARN, "metrics", "detail=\"rollouts not readable from the store\"");
        return;
    }
    text_add(t, "# HELP fota_rollout_devices Devices of an active or paused rollout, by "
                "status.\n# TYPE fota_rollout_devices gauge\n");
    for (size_t i = 0; i < n; i++) {
        struct fota_store_rollout_counts counts;
        if (fota_store_rollout_counts(store, items[i].id, &counts) != FOTA_STORE_OK)
            continue;
        for (int s = 0; s < FOTA_STORE_RD_STATUS_COUNT; s++) {
            int64_t sum = 0;
            for (int w = 0; w < FOTA_STORE_WAVES_MAX; w++)
                sum += counts.n[w][s];
            text_add(t, "fota_rollout_devices{rollout=\"");
            text_label(t, items[i].id);
            text_add(t, "\",status=\"%s\"} %" PRId64 "\n",
                     fota_store_rd_status_name((enum fota_store_rd_status)s), sum);
        }
    }
    text_add(t, "# HELP fota_rollout_state 1 for the state an active or paused rollout is "
                "in.\n# TYPE fota_rollout_state gauge\n");
    for (size_t i = 0; i < n; i++) {
        text_add(t, "fota_rollout_state{rollout=\"");
        text_label(t, items[i].id);
        text_add(t, "\",state=\"%s\"} 1\n", fota_store_rollout_state_name(items[i].state));
    }
    text_add(t, "# HELP fota_rollout_wave Open wave of a rollout (1-based) and its count.\n"
                "# TYPE fota_rollout_wave gauge\n");
    for (size_t i = 0; i < n; i++) {
        text_add(t, "fota_rollout_wave{rollout=\"");
        text_label(t, items[i].id);
        text_add(t, "\"} %d\n", items[i].current_wave + 1);
    }
    fota_store_rollout_list_free(items, n);
}

void fota_metrics_get(struct fota_req *req, struct fota_resp *resp)
{
    char *text = NULL;
    size_t len = 0;

    if (fota_metrics_render(req->srv->metrics, fota_req_store(req), &text, &len) != 0) {
        fota_resp_error(resp, 500, "internal", "out of memory");
        return;
    }
    fota_resp_empty(resp, 200);
    resp->body = text;
    resp->body_len = len;
    resp->content_type = "text/plain; version=0.0.4; charset=utf-8";
}
