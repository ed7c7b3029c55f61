/* SPDX-License-Identifier: Apache-2.0 */
#ifndef FOTA_SERVER_STORE_DEVICES_H
#define FOTA_SERVER_STORE_DEVICES_H

/*
 * The device registry: enrolment, status, session counters, check-ins,
 * tags, and each device's history. See store.h for the conventions (errors,
 * caps, ret_*, times).
 *
 * Counters, seq numbers and security counters are int64_t and must be >= 0
 * (FOTA_STORE_INVALID otherwise). A device's `seq` is shared by check-ins and
 * reports: each must carry a seq higher than the last one accepted.
 */

#include <stddef.h>
#include <stdint.h>

#include "store.h"

enum fota_store_device_status {
    FOTA_STORE_DEVICE_PENDING = 0,
    FOTA_STORE_DEVICE_ACCEPTED = 1,
    FOTA_STORE_DEVICE_REJECTED = 2,
    FOTA_STORE_DEVICE_DECOMMISSIONED = 3,
};
#define FOTA_STORE_DEVICE_STATUS_COUNT 4
/* Bit for status masks: FOTA_STORE_DEVICE_BIT(FOTA_STORE_DEVICE_PENDING) | ... */
#define FOTA_STORE_DEVICE_BIT(s) (1u << (unsigned)(s))

/* "pending", "accepted", "rejected", "decommissioned" (NULL for a bad value). */
const char *fota_store_device_status_name(enum fota_store_device_status s);
/* Returns OK or INVALID. */
enum fota_store_err fota_store_device_status_parse(const char *name,
                                                   enum fota_store_device_status *ret);

#define FOTA_STORE_TAGS_MAX 64     /* tags per device */

struct fota_store_device {
    char id[FOTA_STORE_ID_MAX + 1];              /* TUF key id of the device key */
    char hardware_id[FOTA_STORE_HWID_MAX + 1];
    char version[FOTA_STORE_VERSION_MAX + 1];    /* running version, as last reported */
    enum fota_store_device_status status;
    int64_t security_counter;   /* running image's counter, as last reported */
    int64_t stored_counter;     /* highest counter the device reported as confirmed */
    int64_t session_counter;    /* last accepted session counter */
    int64_t seq;                /* last accepted check-in/report seq */
    int64_t created;
    int64_t updated;            /* last status change */
    int64_t last_seen;          /* last accepted request of any kind */
    int64_t last_fresh;         /* last answered check-in (freshness) */
    int64_t report_seq;         /* seq of the last stored report (0: none) */
    /* JSON text, malloc'ed, owned by the struct (free with
     * fota_store_device_clear); NULL when the function says it does not
     * fill them. */
    char *key_json;             /* TUF public key object */
    char *slots_json;           /* last reported slots array ("[]" before any) */
    char *tags_json;            /* sorted JSON array of tags ("[]" when none) */
};

/* Free the JSON fields of d and set them to NULL (d itself is not freed). */
void fota_store_device_clear(struct fota_store_device *d);
/* Free an array returned by fota_store_device_list (NULL is fine). */
void fota_store_device_list_free(struct fota_store_device *items, size_t n);

/*
 * Enrol: insert the device if its id is new. Reads from d: id, key_json,
 * hardware_id, version, status (PENDING, or ACCEPTED for a pre-authorised
 * key), security_counter, stored_counter (what the caller trusts as
 * confirmed, normally the running counter), created (also used as updated).
 * Other fields are ignored (counters and seq start at 0, slots and tags "[]").
 * If a device with that id exists nothing is changed.
 * Either way the stored device (all fields, JSON included) goes to ret
 * (may be NULL) and *ret_created (may be NULL) is 1 if this call inserted it.
 * Returns OK, INVALID, BUSY, ERROR.
 */
enum fota_store_err fota_store_device_enrol(struct fota_store *st,
                                            const struct fota_store_device *d,
                                            struct fota_store_device *ret, int *ret_created);

/* Every field, JSON included (free with fota_store_device_clear).
 * Returns OK, NOT_FOUND, INVALID, ERROR. */
enum fota_store_err fota_store_device_get(struct fota_store *st, const char *id,
                                          struct fota_store_device *ret);

/*
 * Set the status to next if the current status is in from_mask (bits of
 * FOTA_STORE_DEVICE_BIT; 0 means any). updated = now.
 * Returns OK, NOT_FOUND, CONFLICT (current status not in from_mask), INVALID,
 * BUSY, ERROR.
 */
enum fota_store_err fota_store_device_set_status(struct fota_store *st, const char *id,
                                                 enum fota_store_device_status next,
                                                 unsigned from_mask, int64_t now);

/*
 * Session request: accept counter only if the device is ACCEPTED and counter
 * is higher than the stored session counter; then store it and last_seen = now
 * (one statement). Returns OK, NOT_FOUND, STATE (device not accepted),
 * CONFLICT (counter <= stored: replay), INVALID, BUSY, ERROR.
 */
enum fota_store_err fota_store_device_session(struct fota_store *st, const char *id,
                                              int64_t counter, int64_t now);

struct fota_store_checkin {
    const char *id;
    int64_t seq;                /* must be > stored seq */
    int64_t now;                /* -> last_seen and last_fresh */
    const char *version;        /* running version */
    int64_t security_counter;   /* running counter */
    int confirmed;              /* 1: the running image is confirmed, so
                                 * stored_counter = max(stored, security_counter) */
    const char *slots_json;     /* slots array as JSON text, or NULL to keep */
};

/*
 * Check-in: in one guarded statement (all fields or nothing), and only if
 * the device is ACCEPTED and c->seq is higher than the stored seq, store
 * seq, last_seen = last_fresh = now, version, security_counter,
 * stored_counter (see confirmed) and slots. (When the reported version
 * differs from the stored one, a first form that matches only an unchanged
 * version changes nothing and a second form runs; see the .c file.)
 * On OK, ret (may be NULL) gets the device AFTER the update, without the JSON
 * fields (they are set to NULL; nothing to free).
 * Returns OK, NOT_FOUND, STATE (not accepted), CONFLICT (seq <= stored:
 * replay), INVALID, BUSY, ERROR. Nothing is written unless OK.
 */
enum fota_store_err fota_store_device_checkin(struct fota_store *st,
                                              const struct fota_store_checkin *c,
                                              struct fota_store_device *ret);

/*
 * Reports: accept seq only if the device is ACCEPTED and seq is higher than
 * the stored seq; store it as seq and report_seq, and last_seen = now (one
 * statement).
 * Returns OK, NOT_FOUND, STATE, CONFLICT (replay), INVALID, BUSY, ERROR.
 */
enum fota_store_err fota_store_device_seq(struct fota_store *st, const char *id,
                                          int64_t seq, int64_t now);

struct fota_store_device_filter {
    unsigned status_mask;       /* FOTA_STORE_DEVICE_BIT(..) | ...; 0: any */
    const char *hardware_id;    /* NULL: any */
    const char *version;        /* NULL: any */
    const char *tag;            /* NULL: any; else devices carrying this tag */
    int64_t fresh_before;       /* 0: no filter; else last_fresh < fresh_before
                                 * (never-fresh devices have last_fresh 0 and match) */
    int64_t fresh_since;        /* 0: no filter; else last_fresh >= fresh_since */
};

/*
 * List devices matching filter (NULL: all), ordered by id, with id > after
 * (after NULL or "": from the start), at most limit (1..FOTA_STORE_PAGE_MAX).
 * The next page starts after the last returned id; *ret_more = 1 when more
 * rows match. Items have slots_json and tags_json, key_json NULL.
 * *ret_items is malloc'ed (free with fota_store_device_list_free; NULL when
 * *ret_n == 0). Returns OK, INVALID, ERROR.
 */
enum fota_store_err fota_store_device_list(struct fota_store *st,
                                           const struct fota_store_device_filter *filter,
                                           const char *after, unsigned limit,
                                           struct fota_store_device **ret_items, size_t *ret_n,
                                           int *ret_more);

/*
 * Add then remove tags, in one transaction (adding a present tag or removing
 * an absent one is not an error). Each tag is 1..FOTA_STORE_TAG_MAX bytes;
 * a device carries at most FOTA_STORE_TAGS_MAX tags (INVALID past that, and
 * nothing changes). Returns OK, NOT_FOUND, INVALID, BUSY, ERROR.
 */
enum fota_store_err fota_store_device_tags(struct fota_store *st, const char *id,
                                           const char *const *add, size_t n_add,
                                           const char *const *remove, size_t n_remove);

/* Number of devices per status, indexed by enum fota_store_device_status.
 * Returns OK, ERROR. */
enum fota_store_err fota_store_device_counts(struct fota_store *st,
                                             int64_t ret_counts[FOTA_STORE_DEVICE_STATUS_COUNT]);

/* Number of ACCEPTED devices whose last_fresh < before ("possibly frozen").
 * Returns OK, ERROR. */
enum fota_store_err fota_store_device_count_stale(struct fota_store *st, int64_t before,
                                                  int64_t *ret_n);

/* One history entry. */
struct fota_store_history {
    int64_t id;                                  /* assigned by the store, increasing */
    char device_id[FOTA_STORE_ID_MAX + 1];
    int64_t time;
    char event[FOTA_STORE_EVENT_MAX + 1];        /* enrol, downloading, installed, ... */
    char target[FOTA_STORE_TARGET_MAX + 1];      /* "" when none */
    char version[FOTA_STORE_VERSION_MAX + 1];    /* "" when none */
    char reason[FOTA_STORE_REASON_MAX + 1];      /* "" when none */
    char *detail;                                /* text (JSON or plain), malloc'ed; NULL when none */
};

/*
 * Append an entry. Reads device_id, time, event (required), target, version,
 * reason (empty strings allowed), detail (NULL allowed). *ret_id (may be
 * NULL) = the new entry's id.
 * Returns OK, CONFLICT (unknown device), INVALID, BUSY, ERROR.
 */
enum fota_store_err fota_store_device_history_append(struct fota_store *st,
                                                     const struct fota_store_history *h,
                                                     int64_t *ret_id);

/*
 * The most recent entries of a device, newest first, at most limit
 * (1..FOTA_STORE_PAGE_MAX), with id < before (0: from the newest).
 * *ret_items is malloc'ed (free with fota_store_history_list_free).
 * Returns OK (also for an unknown device: no rows), INVALID, ERROR.
 */
enum fota_store_err fota_store_device_history_list(struct fota_store *st, const char *id,
                                                   int64_t before, unsigned limit,
                                                   struct fota_store_history **ret_items,
                                                   size_t *ret_n, int *ret_more);
void fota_store_history_list_free(struct fota_store_history *items, size_t n);

#endif
