/* SPDX-License-Identifier: Apache-2.0 */
/*
 * EXPIRY values: a duration from now ("30d", "12h", "-1h") or an absolute
 * TUF time. Negative durations exist so that tests can make expired
 * metadata on purpose.
 */
#include <string.h>

#include "cli.h"
#include "fota/tuf.h"

/* 9999-12-31T23:59:59Z: the last instant the TUF time format can express. */
#define CLI_MAX_TIME INT64_C(253402300799)

fota_err cli_expiry_parse(const char *s, int64_t now, int64_t *ret_time)
{
    const char *p = s;
    int negative = 0;
    int64_t n = 0;
    int64_t unit;
    int64_t t;
    size_t digits = 0;

    if (s == NULL || s[0] == '\0')
        return FOTA_E_PARSE;
    if (strlen(s) == 20 && s[4] == '-') {
        if (fota_tuf_parse_time(s, &t) != FOTA_OK)
            return FOTA_E_PARSE;
        if (t < 0 || t > CLI_MAX_TIME)
            return FOTA_E_PARSE;
        *ret_time = t;
        return FOTA_OK;
    }

    if (*p == '-') {
        negative = 1;
        p++;
    }
    while (*p >= '0' && *p <= '9') {
        /* 12 digits of weeks is already far beyond year 9999. */
        if (++digits > 12)
            return FOTA_E_PARSE;
        n = n * 10 + (*p - '0');
        p++;
    }
    if (digits == 0 || p[0] == '\0' || p[1] != '\0')
        return FOTA_E_PARSE;
    switch (p[0]) {
    case 's': unit = 1; break;
    case 'm': unit = 60; break;
    case 'h': unit = 3600; break;
    case 'd': unit = 86400; break;
    case 'w': unit = 7 * 86400; break;
    default: return FOTA_E_PARSE;
    }
    if (n > CLI_MAX_TIME / unit)
        return FOTA_E_PARSE;
    t = negative ? now - n * unit : now + n * unit;
    if (t < 0 || t > CLI_MAX_TIME)
        return FOTA_E_PARSE;
    *ret_time = t;
    return FOTA_OK;
}

int cli_expiry_option(const char *cmd, const char *opt, const char *s, char ret_expires[21])
{
    int64_t t = 0;

    if (cli_expiry_parse(s, cli_now(), &t) != FOTA_OK) {
        cli_error(cmd, opt,
                  "bad expiry '%s' (want <int><s|m|h|d|w>, e.g. 30d or -1h, or "
                  "YYYY-MM-DDTHH:MM:SSZ)",
                  s);
        return CLI_USAGE;
    }
    fota_tuf_format_time(t, ret_expires);
    return CLI_OK;
}
