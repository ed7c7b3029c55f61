/* SPDX-License-Identifier: Apache-2.0 */
#ifndef FOTA_SERVER_STORE_AUDIT_H
#define FOTA_SERVER_STORE_AUDIT_H

/*
 * The audit log: who (operator token name) did what to which object, append
 * only. See store.h for the conventions.
 */

#include <stddef.h>
#include <stdint.h>

#include "store.h"

struct fota_store_audit {
    int64_t id;                                /* assigned by the store, increasing */
    int64_t time;
    char actor[FOTA_STORE_NAME_MAX + 1];       /* token name ("" for the server itself) */
    char action[FOTA_STORE_EVENT_MAX + 1];     /* "device.accept", "rollout.create", ... */
    char object[FOTA_STORE_OBJECT_MAX + 1];    /* "device/<id>", "rollout/<id>", "" */
    char *detail_json;                         /* JSON text, malloc'ed; NULL when none */
};

/*
 * Append an entry (reads time, actor, action (required, non-empty), object,
 * detail_json (NULL allowed)). *ret_id (may be NULL) = its id.
 * Returns OK, INVALID, BUSY, ERROR.
 */
enum fota_store_err fota_store_audit_append(struct fota_store *st,
                                            const struct fota_store_audit *a, int64_t *ret_id);

/*
 * Entries with id > after (0: from the first), oldest first, at most limit
 * (1..FOTA_STORE_PAGE_MAX); the next page is after the last returned id.
 * *ret_items is malloc'ed (free with fota_store_audit_list_free).
 * Returns OK, INVALID, ERROR.
 */
enum fota_store_err fota_store_audit_list(struct fota_store *st, int64_t after, unsigned limit,
                                          struct fota_store_audit **ret_items, size_t *ret_n,
                                          int *ret_more);
void fota_store_audit_list_free(struct fota_store_audit *items, size_t n);

#endif
