/* SPDX-License-Identifier: Apache-2.0 */
#include "log.h"

#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define LOG_LINE_MAX 2048

static int log_level = FOTA_LOG_INFO;

static const char *const level_names[] = {"error", "warn", "info", "debug"};

void fota_log_set_level(int level)
{
    if (level < FOTA_LOG_ERROR)
        level = FOTA_LOG_ERROR;
    if (level > FOTA_LOG_DEBUG)
        level = FOTA_LOG_DEBUG;
    log_level = level;
}

int fota_log_enabled(int level)
{
    return level <= log_level;
}

int fota_log_level_from_name(const char *name)
{
    for (int i = 0; i < 4; i++) {
        if (strcmp(name, level_names[i]) == 0)
            return i;
    }
    if (strcmp(name, "warning") == 0)
        return FOTA_LOG_WARN;
    return -1;
}

void fota_vlog(int level, const char *event, const char *fmt, va_list ap)
{
    char line[LOG_LINE_MAX];
    struct timespec ts;
    struct tm tm;
    size_t n;
    int w;

    if (!fota_log_enabled(level))
        return;
    if (level < FOTA_LOG_ERROR)
        level = FOTA_LOG_ERROR;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    w = snprintf(line, sizeof(line), "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %s %s",
                 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                 tm.tm_sec, ts.tv_nsec / 1000000L, level_names[level], event);
    if (w < 0)
        return;
    n = (size_t)w < sizeof(line) ? (size_t)w : sizeof(line) - 1;
    if (fmt != NULL && fmt[0] != '\0' && n + 2 < sizeof(line)) {
        size_t start = n + 1;
        line[n] = ' ';
        w = vsnprintf(line + start, sizeof(line) - start - 1, fmt, ap);
        if (w > 0) {
            size_t added = (size_t)w < sizeof(line) - start - 1 ? (size_t)w
                                                                  : sizeof(line) - start - 2;
            /* Anything a client sent may be in here: no line breaks or
             * terminal escapes may reach the log. */
            for (size_t i = start; i < start + added; i++) {
                unsigned char c = (unsigned char)line[i];
                if (c < 0x20 || c == 0x7f)
                    line[i] = '?';
            }
            n = start + added;
        }
    }
    line[n++] = '\n';
    /* One write per line: lines of concurrent threads never mix. A failed
     * write of a log line has nowhere to be reported. */
    if (write(STDERR_FILENO, line, n) < 0)
        return;
}

void fota_log(int level, const char *event, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    fota_vlog(level, event, fmt, ap);
    va_end(ap);
}
