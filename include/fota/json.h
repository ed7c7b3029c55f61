/* SPDX-License-Identifier: Apache-2.0 */
#ifndef FOTA_JSON_H
#define FOTA_JSON_H

/*
 * Strict JSON on jansson, and the canonical JSON encoder TUF signs.
 *
 * Parsing rejects, before any caller sees the value: inputs over the size
 * cap, nesting deeper than the depth cap, duplicate object keys, NUL bytes
 * in strings, invalid UTF-8, trailing bytes after the top-level value, and
 * anything that is not an object or array at the top level.
 *
 * Canonical form (OLPC canonical JSON, as TUF 1.0 signs it): object keys
 * sorted by their UTF-8 bytes, no insignificant whitespace, strings written
 * as their raw UTF-8 bytes with only '"' and '\' escaped (by a backslash),
 * integers in plain decimal, no floating-point numbers.
 */

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "fota/error.h"

/* Default caps; callers may pass tighter ones. */
#define FOTA_JSON_MAX_DEPTH 32

/* Parse len bytes. FOTA_E_TOO_BIG when len > max_len, FOTA_E_DEPTH when
 * nesting exceeds max_depth, FOTA_E_DUPLICATE for a repeated key,
 * FOTA_E_PARSE for anything else that is not strict JSON. On success
 * *ret_value holds a new reference (json_decref() it). */
fota_err fota_json_parse(const uint8_t *buf, size_t len, size_t max_len,
                         unsigned max_depth, json_t **ret_value);

/* Encode value canonically. *ret_buf is malloc'ed and NUL-terminated (the
 * NUL is not counted in *ret_len). FOTA_E_UNSUPPORTED when the value holds
 * a real number; FOTA_E_TOO_BIG when the output would exceed max_len. */
fota_err fota_json_canonical(const json_t *value, size_t max_len,
                             char **ret_buf, size_t *ret_len);

#endif
