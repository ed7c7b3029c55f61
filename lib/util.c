/* SPDX-License-Identifier: Apache-2.0 */
/* Portable helpers of the crypto interface that need no backend. */
#include <stdlib.h>
#include <string.h>

#include "fota/crypto.h"

int fota_ct_equal(const void *a, const void *b, size_t n)
{
    const volatile unsigned char *pa = a;
    const volatile unsigned char *pb = b;
    unsigned char diff = 0;

    for (size_t i = 0; i < n; i++)
        diff |= (unsigned char)(pa[i] ^ pb[i]);
    /* Map 0 -> 1 and 1..255 -> 0 without a data-dependent branch. */
    return (int)(1 & ((diff - 1u) >> 8));
}

/* Calling memset through a volatile pointer keeps the compiler from
 * proving the store dead and removing it. */
static void *(*const volatile memset_v)(void *, int, size_t) = memset;

void fota_wipe(void *p, size_t n)
{
    if (p != NULL && n > 0)
        memset_v(p, 0, n);
}

void fota_secret_free(void *p, size_t n)
{
    if (p == NULL)
        return;
    fota_wipe(p, n);
    free(p);
}

void fota_hex_encode(const uint8_t *in, size_t len, char *out)
{
    static const char digits[] = "0123456789abcdef";

    for (size_t i = 0; i < len; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 0x0f];
    }
    out[2 * len] = '\0';
}

int fota_hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

fota_err fota_hex_decode(const char *hex, size_t hex_len, uint8_t *out, size_t out_len)
{
    if (hex == NULL || hex_len != 2 * out_len)
        return FOTA_E_PARSE;
    for (size_t i = 0; i < out_len; i++) {
        int hi = fota_hex_value(hex[2 * i]);
        int lo = fota_hex_value(hex[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return FOTA_E_PARSE;
        out[i] = (uint8_t)((hi << 4) | lo);
    }
    return FOTA_OK;
}
