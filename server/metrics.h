/* SPDX-License-Identifier: Apache-2.0 */
#ifndef FOTA_SERVER_METRICS_H
#define FOTA_SERVER_METRICS_H

/*
 * Process-local counters for GET /metrics (Prometheus text format 0.0.4).
 * Every counter is a C11 atomic updated without locks from any pool thread.
 * They count what THIS process served; a Prometheus server sums processes.
 * Fleet state (devices per rollout and status) is not counted here: it is
 * read from the store when /metrics is scraped, so every process reports the
 * same shared truth.
 *
 * Exposed series:
 *   fota_http_requests_total{route,code}        every request answered
 *   fota_http_request_duration_seconds{route}   histogram (fixed buckets)
 *   fota_checkins_total                          check-ins answered 200
 *   fota_downloads_total, fota_download_bytes_total
 *                                                complete GETs of /repo/targets/
 *   fota_http_in_flight                          requests being handled now
 *   fota_rollout_devices{rollout,status}         from the store
 *   fota_process_start_time_seconds
 */

#include <stddef.h>
#include <stdint.h>

struct fota_metrics;

/* Allocate zeroed counters for n_routes routes (plus one "unmatched" slot at
 * index n_routes); names[i] labels route i (borrowed, static). NULL when out
 * of memory. */
struct fota_metrics *fota_metrics_new(size_t n_routes, const char *const *names);
void fota_metrics_free(struct fota_metrics *m);

/* One answered request on route (n_routes: no route matched) with status,
 * taking seconds from its first byte to its last. */
void fota_metrics_request(struct fota_metrics *m, size_t route, unsigned status,
                          double seconds);

/* One complete target download of bytes bytes. */
void fota_metrics_download(struct fota_metrics *m, uint64_t bytes);

/* One check-in answered with a Director document. */
void fota_metrics_checkin(struct fota_metrics *m);

/* Requests being handled (+1 when one starts, -1 when it ends). */
void fota_metrics_in_flight(struct fota_metrics *m, int delta);
long fota_metrics_in_flight_now(const struct fota_metrics *m);

/* The exposition text into a malloc'ed buffer (*ret_text, *ret_len), with the
 * store's per-rollout counts when store is not NULL. 0 or -1 (out of
 * memory). */
struct fota_store;
int fota_metrics_render(struct fota_metrics *m, struct fota_store *store, char **ret_text,
                        size_t *ret_len);

#endif
