/* SPDX-License-Identifier: Apache-2.0 */
/* Group commit for check-ins: see checkin_queue.h for why. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "checkin_queue.h"
#include "log.h"
#include "server.h"

/* A batch is capped so one handler never works for the whole fleet. */
#define BATCH_MAX 64

struct node {
    struct fota_checkin_job *job;
    int done;
    struct node *next;
};

static pthread_mutex_t q_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t q_done = PTHREAD_COND_INITIALIZER;
static struct node *q_head;
static struct node **q_tail = &q_head;
static int batch_running;                /* a handler is running a batch */

/* The shared connection: touched only by the handler running the batch
 * (batch_running, under q_lock, makes that one handler at a time). */
static struct fota_store *shared;
void fota_checkin_queue_close(void)
{
    pthread_mutex_lock(&q_lock);
    if (!batch_running) {
        fota_store_close(shared);
        shared = NULL;
    }
    pthread_mutex_unlock(&q_lock);
}

static void job_fail(struct fota_checkin_job *job, enum fota_store_err e)
{
    job->store_err = e;
}

/* One job inside the open transaction. nested: wrap it in a savepoint, so
 * that its failure undoes only its own writes. */
static void run_job(struct fota_store *st, struct fota_checkin_job *job, int nested)
{
    enum fota_store_err e = FOTA_STORE_OK;
    int ok;

    if (nested) {
        e = fota_store_begin(st);
        if (e != FOTA_STORE_OK) {
            job_fail(job, e);
            return;
        }
    }
    e = fota_store_device_checkin(st, &job->checkin, &job->device);
    if (e == FOTA_STORE_OK) {
        job->decide_err = fota_rollout_decide(st, job->checkin.id, job->device.hardware_id,
                                              job->checkin.version, job->checkin.now,
                                              &job->action, &job->target);
        if (job->decide_err != FOTA_OK)
            e = FOTA_STORE_ERROR;
    }
    ok = e == FOTA_STORE_OK;
    if (nested) {
        enum fota_store_err end = ok ? fota_store_commit(st) : fota_store_rollback(st);
        if (ok && end != FOTA_STORE_OK) {
            fota_store_rollback(st);
            e = end;
        }
    }
    job->store_err = e;
}

static void run_batch(const struct fota_server *srv, struct node *batch, size_t n)
{
    enum fota_store_err e;
    size_t committed = 0;

    if (shared == NULL) {
        e = fota_store_open(srv->db_path, &shared);
        if (e != FOTA_STORE_OK) {
            fota_log(FOTA_LOG_ERROR, "store", "detail=\"cannot open the check-in connection\" "
                     "error=%s", fota_store_strerror(e));
            shared = NULL;
            for (struct node *p = batch; p != NULL; p = p->next)
                job_fail(p->job, e);
            return;
        }
    }
    e = fota_store_begin(shared);
    if (e != FOTA_STORE_OK) {
        for (struct node *p = batch; p != NULL; p = p->next)
            job_fail(p->job, e);
        return;
    }
    for (struct node *p = batch; p != NULL; p = p->next) {
        run_job(shared, p->job, n > 1);
        committed += p->job->store_err == FOTA_STORE_OK;
    }
    /* Nothing to keep (all refused): a rollback is cheaper than a commit. */
    e = committed > 0 ? fota_store_commit(shared) : fota_store_rollback(shared);
    if (e != FOTA_STORE_OK && committed > 0) {
        /* The commit failed and was rolled back: none of the jobs happened. */
        for (struct node *p = batch; p != NULL; p = p->next) {
            if (p->job->store_err == FOTA_STORE_OK)
                job_fail(p->job, e);
        }
    }
}

void fota_checkin_run(const struct fota_server *srv, struct fota_checkin_job *job)
{
    struct node self = { job, 0, NULL };

    job->store_err = FOTA_STORE_ERROR;
    job->decide_err = FOTA_OK;
    job->action = FOTA_ROLLOUT_STAY;
    memset(&job->device, 0, sizeof(job->device));
    memset(&job->target, 0, sizeof(job->target));

    pthread_mutex_lock(&q_lock);
    *q_tail = &self;
    q_tail = &self.next;
    while (!self.done) {
        struct node *batch, *last;
        size_t n = 1;

        if (batch_running) {
            pthread_cond_wait(&q_done, &q_lock);
            continue;
        }
        /* Become the batch runner: take up to BATCH_MAX queued jobs, oldest
         * first (when ours is not among them, the loop comes round again). */
        batch_running = 1;
        batch = q_head;
        last = batch;
        while (last->next != NULL && n < BATCH_MAX) {
            last = last->next;
            n++;
        }
        q_head = last->next;
        if (q_head == NULL)
            q_tail = &q_head;
        last->next = NULL;
        pthread_mutex_unlock(&q_lock);

        run_batch(srv, batch, n);

        pthread_mutex_lock(&q_lock);
        for (struct node *p = batch; p != NULL; p = p->next)
            p->done = 1;
        batch_running = 0;
        pthread_cond_broadcast(&q_done);
    }
    pthread_mutex_unlock(&q_lock);
}
