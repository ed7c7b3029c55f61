/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Image verification benchmark: a 16 MiB image signed in memory, verified
 * with fota_image_verify through a read callback that copies from memory
 * (what a memory-mapped flash or a file cache costs), median of several runs;
 * next to it, fota_sha256 over the same bytes in one call (the ceiling), and
 * the verifier's peak stack measured on a thread with a painted stack.
 * bench/image_verify.sh runs this and `openssl speed -evp sha256` and prints
 * the ratio.
 *
 * Output: one "key value" line per figure, then a human summary.
 *   image-verify-bench [--mib N] [--runs N]
 */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fota/crypto.h"
#include "fota/error.h"
#include "fota/image.h"
#include "fota/image_build.h"

#define HW "bench-board"
#define STACK_SIZE (64u * 1024u)
#define PAINT 0xa5
#define MAX_RUNS 101

struct mem_image {
    const uint8_t *data;
    size_t len;
};

static fota_err mem_read(void *ctx, uint32_t offset, void *buf, size_t len)
{
    const struct mem_image *m = ctx;

    if ((uint64_t)offset + len > m->len)
        return FOTA_E_IO;
    memcpy(buf, m->data + offset, len);
    return FOTA_OK;
}

static double now_seconds(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return (x > y) - (x < y);
}

static void die(const char *what, fota_err err)
{
    fprintf(stderr, "image-verify-bench: %s: %s\n", what, fota_strerror(err));
    exit(1);
}

struct signer {
    fota_privkey *priv;
    struct fota_image_signer img;
    struct fota_image_key trusted;
};

static void signer_new(struct signer *s, fota_key_type type)
{
    fota_err err;

    err = fota_privkey_generate(type, &s->priv);
    if (err == FOTA_OK)
        err = fota_image_signer_init(s->priv, &s->img);
    if (err != FOTA_OK)
        die("key", err);
    s->trusted.key = s->img.pub;
    memcpy(s->trusted.id, s->img.id, sizeof s->trusted.id);
}

static void signer_free(struct signer *s)
{
    fota_image_signer_clear(&s->img);
    fota_privkey_free(s->priv);
}

/* header + payload_len pseudo-random bytes + [SHA-256, one signature]. */
static uint8_t *make_image(size_t payload_len, const struct signer *s, size_t *ret_len)
{
    struct fota_image_header h;
    size_t cap = FOTA_IMAGE_HEADER_LEN + payload_len + FOTA_IMAGE_TRAILER_MAX;
    uint8_t *d = malloc(cap);
    uint32_t x = 1;
    fota_err err;

    if (d == NULL)
        die("image", FOTA_E_NOMEM);
    memset(&h, 0, sizeof(h));
    h.security_counter = 1;
    h.major = 1;
    h.payload_len = (uint32_t)payload_len;
    memcpy(h.hardware_id, HW, sizeof(HW));
    for (size_t i = 0; i < payload_len; i++) {
        x = x * 1103515245u + 12345u;
        d[FOTA_IMAGE_HEADER_LEN + i] = (uint8_t)(x >> 24);
    }
    err = fota_image_build(&h, &s->img, 1, d, cap, ret_len, NULL);
    if (err != FOTA_OK)
        die("image", err);
    return d;
}

static void policy_for(struct fota_image_policy *p, const struct signer *s, size_t len)
{
    memset(p, 0, sizeof(*p));
    p->keys = &s->trusted;
    p->n_keys = 1;
    p->threshold = 1;
    p->hardware_id = HW;
    p->max_len = UINT32_MAX;
    p->exact_len = (uint32_t)len;
}

/* Median MB/s (10^6 bytes, as openssl speed counts) of `runs` verifications. */
static double bench_verify(const uint8_t *img, size_t len, const struct fota_image_policy *p,
                           size_t scratch_len, int runs)
{
    double t[MAX_RUNS];
    struct mem_image m = { img, len };
    uint8_t *scratch = malloc(scratch_len);

    if (scratch == NULL)
        die("scratch", FOTA_E_NOMEM);
    for (int i = 0; i < runs; i++) {
        double t0 = now_seconds();
        fota_err err = fota_image_verify(mem_read, &m, p, scratch, scratch_len, NULL);

        t[i] = now_seconds() - t0;
        if (err != FOTA_OK)
            die("verify", err);
    }
    free(scratch);
    qsort(t, (size_t)runs, sizeof(t[0]), cmp_double);
    return (double)len / t[runs / 2] / 1e6;
}

static double bench_sha256(const uint8_t *img, size_t len, int runs)
{
    double t[MAX_RUNS];
    uint8_t out[32];

    for (int i = 0; i < runs; i++) {
        fota_sha256 ctx;
        double t0 = now_seconds();

        fota_sha256_init(&ctx);
        fota_sha256_update(&ctx, img, len);
        fota_sha256_final(&ctx, out);
        t[i] = now_seconds() - t0;
    }
    qsort(t, (size_t)runs, sizeof(t[0]), cmp_double);
    return (double)len / t[runs / 2] / 1e6;
}

/* ---- peak stack -------------------------------------------------------------- */

struct stack_job {
    void (*fn)(void *);
    void *arg;
};

static void *stack_thread(void *p)
{
    struct stack_job *job = p;

    job->fn(job->arg);
    return NULL;
}

/* Bytes of a painted stack that fn(arg) on a fresh thread touched. */
static size_t stack_touched(void (*fn)(void *), void *arg)
{
    void *mem = NULL;
    pthread_attr_t attr;
    pthread_t t;
    struct stack_job job = { fn, arg };
    const uint8_t *b;
    size_t i = 0;

    if (posix_memalign(&mem, 4096, STACK_SIZE) != 0)
        die("stack", FOTA_E_NOMEM);
    memset(mem, PAINT, STACK_SIZE);
    if (pthread_attr_init(&attr) != 0 || pthread_attr_setstack(&attr, mem, STACK_SIZE) != 0 ||
        pthread_create(&t, &attr, stack_thread, &job) != 0 || pthread_join(t, NULL) != 0)
        die("thread", FOTA_E_IO);
    pthread_attr_destroy(&attr);
    b = mem;
    while (i < STACK_SIZE && b[i] == PAINT)
        i++;
    free(mem);
    return STACK_SIZE - i;
}

static void nothing(void *arg)
{
    (void)arg;
}

struct verify_job {
    struct mem_image m;
    const struct fota_image_policy *policy;
    uint8_t *scratch;
    size_t scratch_len;
    fota_err rc;
};

static void verify_job_run(void *arg)
{
    struct verify_job *j = arg;

    j->rc = fota_image_verify(mem_read, &j->m, j->policy, j->scratch, j->scratch_len, NULL);
}

/* Peak stack of verifying img under p (less an empty thread's). */
static size_t stack_of(const uint8_t *img, size_t len, const struct fota_image_policy *p,
                       fota_err want)
{
    uint8_t scratch[256];
    struct verify_job job = { { img, len }, p, scratch, sizeof(scratch), FOTA_E_INVALID };
    size_t base = stack_touched(nothing, NULL);
    size_t used = stack_touched(verify_job_run, &job);

    if (job.rc != want)
        die("stack run", job.rc);
    return used > base ? used - base : 0;
}

static size_t stack_peak(const uint8_t *img, size_t len, const struct fota_image_policy *p,
                         fota_err want)
{
    size_t a = stack_of(img, len, p, want);
    size_t b = stack_of(img, len, p, want);

    return a > b ? a : b;
}

static long parse_arg(const char *s, long lo, long hi)
{
    char *end = NULL;
    long v;

    errno = 0;
    v = strtol(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v < lo || v > hi) {
        fprintf(stderr, "image-verify-bench: bad number %s\n", s);
        exit(2);
    }
    return v;
}

int main(int argc, char **argv)
{
    static const size_t scratch_sizes[] = { 256, 4096, 65536 };
    long mib = 16, runs = 9;
    struct signer ed, ec, other;
    struct fota_image_policy p_ed, p_ec, p_none;
    uint8_t *img_ed, *img_ec;
    size_t len_ed, len_ec;
    double sha, verify[3];
    size_t st_none, st_ed, st_ec;

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--mib") == 0 && i + 1 < argc) {
            mib = parse_arg(argv[++i], 1, 1024);
        } else if (strcmp(argv[i], "--runs") == 0 && i + 1 < argc) {
            runs = parse_arg(argv[++i], 1, MAX_RUNS);
        } else {
            fprintf(stderr, "usage: image-verify-bench [--mib N] [--runs N]\n");
            return 2;
        }
    }
    signer_new(&ed, FOTA_KEY_ED25519);
    signer_new(&ec, FOTA_KEY_ECDSA_P256);
    signer_new(&other, FOTA_KEY_ED25519);

    /* Stack first, on small images (the payload loop is the same at any
     * size), while each kind of signature check is still the first of its
     * kind in the process: the larger of a first and a second run counts. */
    img_ed = make_image(5000, &ed, &len_ed);
    img_ec = make_image(5000, &ec, &len_ec);
    policy_for(&p_ed, &ed, len_ed);
    policy_for(&p_ec, &ec, len_ec);
    policy_for(&p_none, &other, len_ed);   /* trusts no signer: no signature is checked */
    st_none = stack_peak(img_ed, len_ed, &p_none, FOTA_E_THRESHOLD);
    st_ed = stack_peak(img_ed, len_ed, &p_ed, FOTA_OK);
    st_ec = stack_peak(img_ec, len_ec, &p_ec, FOTA_OK);
    free(img_ed);

    img_ed = make_image((size_t)mib << 20, &ed, &len_ed);
    policy_for(&p_ed, &ed, len_ed);
    sha = bench_sha256(img_ed, len_ed, (int)runs);
    for (size_t i = 0; i < 3; i++)
        verify[i] = bench_verify(img_ed, len_ed, &p_ed, scratch_sizes[i], (int)runs);

    printf("image_bytes %zu\n", len_ed);
    printf("runs %ld\n", runs);
    printf("sha256_oneshot_mbps %.1f\n", sha);
    for (size_t i = 0; i < 3; i++)
        printf("verify_scratch%zu_mbps %.1f\n", scratch_sizes[i], verify[i]);
    printf("stack_verifier_sha256_bytes %zu\n", st_none);
    printf("stack_ed25519_bytes %zu\n", st_ed);
    printf("stack_ecdsa_p256_bytes %zu\n", st_ec);

    free(img_ed);
    free(img_ec);
    signer_free(&ed);
    signer_free(&ec);
    signer_free(&other);
    return 0;
}
