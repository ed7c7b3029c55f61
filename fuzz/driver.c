/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A standalone driver for the libFuzzer harnesses, for builds without
 * libFuzzer (gcc, make check): runs LLVMFuzzerTestOneInput once over every
 * regular file of the directories (or the files) given on the command line,
 * in name order, so that each harness replays its seed corpus and its
 * regression inputs as an ordinary test. A directory that does not exist is
 * skipped (not every harness has regressions). A crash, a sanitizer report
 * or an abort() in the harness is the failure; the driver prints the name
 * of each input (on stderr) before running it, so that the culprit is the
 * last line printed.
 *
 *   fuzz_json_run fuzz/corpus/json fuzz/regressions/json
 */
#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Inputs larger than this are not seeds (libFuzzer's own default -max_len
 * for a corpus of small files is far lower). */
#define DRIVER_INPUT_MAX (16u * 1024u * 1024u)

static int run_file(const char *path, int verbose)
{
    FILE *f = fopen(path, "rb");
    uint8_t *buf = NULL;
    size_t len = 0, cap = 0;
    int ret = -1;

    if (f == NULL) {
        fprintf(stderr, "driver: %s: %s\n", path, strerror(errno));
        return -1;
    }
    for (;;) {
        size_t n;
        if (len == cap) {
            size_t ncap = cap ? cap * 2 : 4096;
            uint8_t *nbuf;
            if (ncap > DRIVER_INPUT_MAX) {
                fprintf(stderr, "driver: %s: larger than %u bytes\n", path, DRIVER_INPUT_MAX);
                goto out;
            }
            nbuf = realloc(buf, ncap);
            if (nbuf == NULL)
                goto out;
            buf = nbuf;
            cap = ncap;
        }
        n = fread(buf + len, 1, cap - len, f);
        len += n;
        if (n == 0)
            break;
    }
    if (ferror(f)) {
        fprintf(stderr, "driver: %s: read error\n", path);
        goto out;
    }
    if (verbose)
        fprintf(stderr, "driver: %s (%zu bytes)\n", path, len);
    else
        fprintf(stderr, "driver: %s\n", path);
    /* An exact-size copy, so that ASan catches a read one past the end. */
    {
        uint8_t *exact = malloc(len ? len : 1);
        if (exact == NULL)
            goto out;
        memcpy(exact, buf, len);
        LLVMFuzzerTestOneInput(exact, len);
        free(exact);
    }
    ret = 0;
out:
    free(buf);
    fclose(f);
    return ret;
}

static int name_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Every regular file of dir, in name order. Returns the number run, or -1. */
static long run_dir(const char *dir, int verbose)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    char **names = NULL;
    size_t n = 0, cap = 0;
    long count = 0;

    if (d == NULL)
        return errno == ENOENT ? 0 : -1;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        if (n == cap) {
            size_t ncap = cap ? cap * 2 : 64;
            char **nn = realloc(names, ncap * sizeof(*nn));
            if (nn == NULL) {
                count = -1;
                goto out;
            }
            names = nn;
            cap = ncap;
        }
        names[n] = strdup(e->d_name);
        if (names[n] == NULL) {
            count = -1;
            goto out;
        }
        n++;
    }
    if (n > 1)
        qsort(names, n, sizeof(*names), name_cmp);
    for (size_t i = 0; i < n; i++) {
        size_t plen = strlen(dir) + strlen(names[i]) + 2;
        char *path = malloc(plen);
        struct stat st;

        if (path == NULL) {
            count = -1;
            goto out;
        }
        snprintf(path, plen, "%s/%s", dir, names[i]);
        if (stat(path, &st) == 0 && S_ISREG(st.st_mode)) {
            if (run_file(path, verbose) != 0) {
                free(path);
                count = -1;
                goto out;
            }
            count++;
        }
        free(path);
    }
out:
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
    closedir(d);
    return count;
}

int main(int argc, char **argv)
{
    int verbose = getenv("FOTA_FUZZ_VERBOSE") != NULL;
    long total = 0;

    if (argc < 2) {
        fprintf(stderr, "usage: %s DIR|FILE...\n"
                "Run the fuzz harness once over every file (of each directory).\n", argv[0]);
        return 2;
    }
    for (int i = 1; i < argc; i++) {
        struct stat st;
        long n;

        if (stat(argv[i], &st) == 0 && S_ISREG(st.st_mode)) {
            if (run_file(argv[i], verbose) != 0)
                return 1;
            total++;
            continue;
        }
        n = run_dir(argv[i], verbose);
        if (n < 0) {
            fprintf(stderr, "driver: %s: cannot read\n", argv[i]);
            return 1;
        }
        total += n;
    }
    printf("%s: %ld input(s) ran\n", argv[0], total);
    return 0;
}
