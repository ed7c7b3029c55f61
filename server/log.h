/* SPDX-License-Identifier: Apache-2.0 */
#ifndef FOTA_SERVER_LOG_H
#define FOTA_SERVER_LOG_H

/*
 * fota-server's log: one line per event on stderr,
 *     <ISO-8601 UTC time> <level> <event> key=value ...
 * e.g. "2026-11-24T05:00:00.123Z info checkin device=ab12.. status=200 ms=0.4".
 * Each line is written with one write(2), so lines from several threads never
 * interleave; no colours (journald and files read it as it is).
 */

#include <stdarg.h>

enum fota_log_level {
    FOTA_LOG_ERROR = 0,
    FOTA_LOG_WARN = 1,
    FOTA_LOG_INFO = 2,
    FOTA_LOG_DEBUG = 3,
};

/* Lines above this level are dropped (default FOTA_LOG_INFO). Set it once at
 * start, before any thread exists. */
void fota_log_set_level(int level);

/* 1 when a line at level would be written (to skip building costly details). */
int fota_log_enabled(int level);

/* "error", "warn", "info", "debug" -> level; -1 for anything else. */
int fota_log_level_from_name(const char *name);

/* Write one line: event is a short word ("checkin", "start"); fmt gives the
 * key=value pairs (may be NULL or ""). Lines over 2 KiB are cut. Control
 * characters in the formatted text are replaced by '?' so a client cannot
 * forge a log line. */
void fota_log(int level, const char *event, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void fota_vlog(int level, const char *event, const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));

#endif
