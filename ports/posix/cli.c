/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Small helpers the command-line programs (fota-agent, fota-boot,
 * fota-sim, fota-tuf-client, fota-server) share: the error line on stderr
 * and strict decimal parsing of option values.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "fota_posix.h"

void fota_posix_msg(const char *prefix, const char *fmt, ...)
{
    va_list ap;

    fputs(prefix, stderr);
    fputs(": ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

int fota_posix_parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *ret)
{
    char *end = NULL;
    unsigned long long v;

    if (s == NULL || *s < '0' || *s > '9')
        return -1;
    errno = 0;
    v = strtoull(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v < min || v > max)
        return -1;
    *ret = v;
    return 0;
}
