/* SPDX-License-Identifier: Apache-2.0 */
#ifndef FOTA_FUZZ_COMMON_H
#define FOTA_FUZZ_COMMON_H

/*
 * What the harnesses share: the fixture (fuzz/fixture/, made by
 * fuzz/make_corpus.sh: test keys, a published repository, signed images,
 * the server set-up requests), a private temporary directory removed at
 * exit, and fz_fail() for a broken invariant.
 *
 * Everything loaded here is loaded once per process and kept: the harness
 * runs millions of inputs, and the fixture never changes between them.
 * Any failure to set up is fatal (abort), never a silent pass.
 */

#include <stddef.h>
#include <stdint.h>

#include "fota/crypto.h"

#ifndef FOTA_FUZZ_FIXTURE
#error "FOTA_FUZZ_FIXTURE (the fuzz/fixture directory) must be defined"
#endif

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The fixed clock of the harnesses: 2025-10-09T08:53:20Z, before every
 * expiry of the fixture (2099). */
#define FZ_NOW 1760000000

/* A broken invariant: print and abort (libFuzzer and the driver both treat
 * it as a crash). */
void fz_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

/* With FOTA_FUZZ_VERBOSE set in the environment, one line per outcome on
 * stderr (what an input reached: for checking seeds, not while fuzzing). */
void fz_note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* FOTA_FUZZ_FIXTURE "/" rel; the string is static (one at a time). */
const char *fz_fixture_path(const char *rel);

/* The bytes of a fixture file (malloc'ed, NUL-terminated past *ret_len). */
uint8_t *fz_fixture_read(const char *rel, size_t *ret_len);

/* A fixture key, fixture/keys/<name>.pem, loaded once (kept). */
const fota_privkey *fz_fixture_key(const char *name);

/* This process's private temporary directory (made on first use, removed
 * with everything in it at exit). */
const char *fz_tmpdir(void);

/* Remove path and everything below it (no symlinks followed). */
void fz_rm_tree(const char *path);

/* Copy a regular file or a directory tree. 0 on success. */
int fz_copy_tree(const char *src, const char *dst);

#endif
