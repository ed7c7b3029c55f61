/* SPDX-License-Identifier: Apache-2.0 */
/* Strict JSON parsing on jansson, and the canonical encoder TUF signs. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fota/json.h"

/* The encoder refuses values nested deeper than this (values built in code
 * are not bounded by the parser's cap). */
#define CANONICAL_MAX_DEPTH 64

/*
 * Measure nesting before jansson sees the input: jansson recurses once per
 * level, so a hostile 100,000-deep array must be stopped here, cheaply.
 * Brackets inside strings do not count.
 */
static fota_err check_depth(const uint8_t *buf, size_t len, unsigned max_depth)
{
    unsigned depth = 0;
    int in_string = 0;

    for (size_t i = 0; i < len; i++) {
        uint8_t c = buf[i];
        if (in_string) {
            if (c == '\\')
                i++;            /* skip the escaped byte */
            else if (c == '"')
                in_string = 0;
            continue;
        }
        switch (c) {
        case '"':
            in_string = 1;
            break;
        case '[':
        case '{':
            if (++depth > max_depth)
                return FOTA_E_DEPTH;
            break;
        case ']':
        case '}':
            if (depth > 0)
                depth--;
            break;
        default:
            break;
        }
    }
    return FOTA_OK;
}

fota_err fota_json_parse(const uint8_t *buf, size_t len, size_t max_len,
                         unsigned max_depth, json_t **ret_value)
{
    json_error_t jerr;
    json_t *value;
    fota_err err;

    if ((buf == NULL && len > 0) || ret_value == NULL)
        return FOTA_E_INVALID;
    if (len > max_len)
        return FOTA_E_TOO_BIG;
    err = check_depth(buf, len, max_depth);
    if (err != FOTA_OK)
        return err;

    /* No JSON_DECODE_ANY: the top level must be an object or an array.
     * No JSON_ALLOW_NUL: "\u0000" in a string is refused. jansson checks
     * UTF-8 and, without JSON_DISABLE_EOF_CHECK, refuses trailing bytes.
     * jerr is zeroed first: when an allocation fails early jansson returns
     * NULL without setting the error code that json_error_code() reads
     * (valgrind saw the uninitialised byte decide the result). */
    memset(&jerr, 0, sizeof(jerr));
    value = json_loadb((const char *)buf, len, JSON_REJECT_DUPLICATES, &jerr);
    if (value == NULL) {
        if (json_error_code(&jerr) == json_error_duplicate_key)
            return FOTA_E_DUPLICATE;
        return FOTA_E_PARSE;
    }
    *ret_value = value;
    return FOTA_OK;
}

/* ---- canonical encoder ------------------------------------------------ */

struct outbuf {
    char *data;
    size_t len;
    size_t cap;
    size_t max;
};

static fota_err out_put(struct outbuf *o, const void *p, size_t n)
{
    if (n > o->max - o->len)
        return FOTA_E_TOO_BIG;
    if (o->len + n + 1 > o->cap) {
        size_t cap = o->cap ? o->cap : 256;
        char *data;
        while (cap < o->len + n + 1)
            cap *= 2;
        data = realloc(o->data, cap);
        if (data == NULL)
            return FOTA_E_NOMEM;
        o->data = data;
        o->cap = cap;
    }
    memcpy(o->data + o->len, p, n);
    o->len += n;
    o->data[o->len] = '\0';
    return FOTA_OK;
}

static fota_err out_string(struct outbuf *o, const char *s, size_t n)
{
    fota_err err = out_put(o, "\"", 1);
    size_t start = 0;

    /* Only '"' and '\' are escaped; every other byte is written as is. */
    for (size_t i = 0; err == FOTA_OK && i < n; i++) {
        if (s[i] != '"' && s[i] != '\\')
            continue;
        err = out_put(o, s + start, i - start);
        if (err == FOTA_OK)
            err = out_put(o, "\\", 1);
        start = i;
    }
    if (err == FOTA_OK)
        err = out_put(o, s + start, n - start);
    if (err == FOTA_OK)
        err = out_put(o, "\"", 1);
    return err;
}

static int key_cmp(const void *a, const void *b)
{
    /* strcmp compares as unsigned char: byte order of UTF-8 is code point order. */
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static fota_err encode(struct outbuf *o, const json_t *v, unsigned depth);

static fota_err encode_object(struct outbuf *o, const json_t *v, unsigned depth)
{
    size_t n = json_object_size(v);
    const char **keys = NULL;
    const char *key;
    json_t *member;
    size_t i = 0;
    fota_err err;

    if (n > 0) {
        keys = calloc(n, sizeof(*keys));
        if (keys == NULL)
            return FOTA_E_NOMEM;
    }
    json_object_foreach((json_t *)v, key, member)
        keys[i++] = key;
    if (n > 1)
        qsort(keys, n, sizeof(*keys), key_cmp);

    err = out_put(o, "{", 1);
    for (i = 0; err == FOTA_OK && i < n; i++) {
        if (i > 0)
            err = out_put(o, ",", 1);
        if (err == FOTA_OK)
            err = out_string(o, keys[i], strlen(keys[i]));
        if (err == FOTA_OK)
            err = out_put(o, ":", 1);
        if (err == FOTA_OK)
            err = encode(o, json_object_get(v, keys[i]), depth + 1);
    }
    if (err == FOTA_OK)
        err = out_put(o, "}", 1);
    free(keys);
    return err;
}

static fota_err encode(struct outbuf *o, const json_t *v, unsigned depth)
{
    char num[32];
    int n;
    fota_err err;

    if (depth > CANONICAL_MAX_DEPTH)
        return FOTA_E_DEPTH;
    switch (json_typeof(v)) {
    case JSON_OBJECT:
        return encode_object(o, v, depth);
    case JSON_ARRAY:
        err = out_put(o, "[", 1);
        for (size_t i = 0; err == FOTA_OK && i < json_array_size(v); i++) {
            if (i > 0)
                err = out_put(o, ",", 1);
            if (err == FOTA_OK)
                err = encode(o, json_array_get(v, i), depth + 1);
        }
        if (err == FOTA_OK)
            err = out_put(o, "]", 1);
        return err;
    case JSON_STRING:
        return out_string(o, json_string_value(v), json_string_length(v));
    case JSON_INTEGER:
        n = snprintf(num, sizeof(num), "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        if (n <= 0 || (size_t)n >= sizeof(num))
            return FOTA_E_INVALID;
        return out_put(o, num, (size_t)n);
    case JSON_TRUE:
        return out_put(o, "true", 4);
    case JSON_FALSE:
        return out_put(o, "false", 5);
    case JSON_NULL:
        return out_put(o, "null", 4);
    case JSON_REAL:
        return FOTA_E_UNSUPPORTED;  /* canonical JSON has no floating point */
    }
    return FOTA_E_INVALID;
}

fota_err fota_json_canonical(const json_t *value, size_t max_len,
                             char **ret_buf, size_t *ret_len)
{
    struct outbuf o = { .max = max_len };
    fota_err err;

    if (value == NULL || ret_buf == NULL || ret_len == NULL)
        return FOTA_E_INVALID;
    err = encode(&o, value, 0);
    if (err != FOTA_OK) {
        free(o.data);
        return err;
    }
    *ret_buf = o.data;
    *ret_len = o.len;
    return FOTA_OK;
}
