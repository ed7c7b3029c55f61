/* SPDX-License-Identifier: Apache-2.0 */
#ifndef FOTA_SERVER_CHECKIN_QUEUE_H
#define FOTA_SERVER_CHECKIN_QUEUE_H

/*
 * Group commit for check-ins (server/checkin_queue.c).
 *
 * Every check-in writes the device's row and asks the rollout planner, in
 * one transaction. With one SQLite connection per pool thread, concurrent
 * check-ins fight for the database's single write lock (busy retries) and
 * each commit by one connection invalidates the page cache of the others,
 * which then re-read their pages: measured, that tripled the store's cost
 * per check-in. Instead, the check-ins of this process go through ONE
 * connection: a handler queues its job; whichever handler finds no batch
 * running takes every queued job and runs them in one transaction (each job
 * in its own savepoint, so one job's failure never undoes another's), then
 * wakes the others. There is no extra thread and no timer: a batch is
 * whatever arrived while the previous one ran.
 *
 * Nothing here is state another process could miss: the queue only holds
 * requests in flight, and each batch is an ordinary transaction, so several
 * server processes on one database stay correct.
 */

#include <stdint.h>

#include "fota/error.h"
#include "rollout.h"
#include "store.h"
#include "store_devices.h"

struct fota_server;

struct fota_checkin_job {
    /* In. */
    struct fota_store_checkin checkin;           /* as for fota_store_device_checkin */
    /* Out, always set by fota_checkin_run. */
    enum fota_store_err store_err;               /* FOTA_STORE_OK: recorded and committed */
    fota_err decide_err;                         /* the planner's result (when store_err is OK
                                                  * or when the planner failed: then store_err
                                                  * is FOTA_STORE_ERROR and nothing is stored) */
    struct fota_store_device device;             /* the device after the update (no JSON) */
    enum fota_rollout_action action;
    struct fota_rollout_target target;           /* for FOTA_ROLLOUT_INSTALL */
};

/*
 * Record job->checkin and take the rollout decision, committed together
 * (possibly with other concurrent check-ins). Blocks until the batch holding
 * the job has committed or failed. On return:
 *   store_err OK:        committed; device, action, target hold the answer.
 *   NOT_FOUND / STATE:   no such device / not accepted; nothing stored.
 *   CONFLICT:            seq not higher than the stored one; nothing stored.
 *   BUSY / ERROR / ...:  the store failed, or the planner did (decide_err);
 *                        nothing stored.
 */
void fota_checkin_run(const struct fota_server *srv, struct fota_checkin_job *job);

/* Close the shared connection: called by serve after fota_http_stop, once no
 * request is in flight (an exit on another path leaves it to the OS: the
 * pointer stays reachable and SQLite's WAL survives an unclosed connection). */
void fota_checkin_queue_close(void);

#endif
