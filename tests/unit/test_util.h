/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Helpers shared by the cmocka unit tests: whole-file reads of the vectors in
 * tests/vectors, scratch files, line-oriented vector files, shell commands.
 *
 * Include after <cmocka.h>. Every helper ends the running test through
 * fail_msg / assert_* when something it needs is missing, so callers have no
 * error path to write. They are static inline so that a test using only some
 * of them still builds without unused-function warnings.
 */
#ifndef FOTA_TEST_UTIL_H
#define FOTA_TEST_UTIL_H

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

/* The largest file a test reads whole: the vectors stay far below it. */
#define TU_MAX_FILE (4u << 20)

#define TU_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* ---- files ---------------------------------------------------------------- */

/* The whole file at path, malloc'ed and NUL-terminated one byte past
 * *ret_len (the NUL is not counted; ret_len may be NULL). */
static inline char *tu_read_file(const char *path, size_t *ret_len)
{
    FILE *f = fopen(path, "rb");
    char *buf;
    size_t len;

    if (f == NULL) {
        fail_msg("cannot open %s", path);
    }
    buf = malloc(TU_MAX_FILE + 1);
    assert_non_null(buf);
    len = fread(buf, 1, TU_MAX_FILE + 1, f);
    assert_int_equal(ferror(f), 0);
    fclose(f);
    assert_true(len <= TU_MAX_FILE);
    buf[len] = '\0';
    if (ret_len != NULL) {
        *ret_len = len;
    }
    return buf;
}

/* tests/vectors/<rel>, read as tu_read_file does. */
static inline char *tu_read_vector(const char *rel, size_t *ret_len)
{
    char path[PATH_MAX];
    int n = snprintf(path, sizeof(path), "%s/%s", FOTA_TEST_VECTORS, rel);

    assert_true(n > 0 && (size_t)n < sizeof(path));
    return tu_read_file(path, ret_len);
}

/* A one-line vector file without its trailing newline. */
static inline char *tu_read_vector_line(const char *rel)
{
    size_t len = 0;
    char *s = tu_read_vector(rel, &len);

    while (len > 0 && (s[len - 1] == '\n' || s[len - 1] == '\r')) {
        s[--len] = '\0';
    }
    return s;
}

/* Create or truncate path and write exactly data[0..len). */
static inline void tu_write_file(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");

    if (f == NULL) {
        fail_msg("cannot create %s", path);
    }
    assert_int_equal(fwrite(data, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
}

/* ---- line-oriented vector files ------------------------------------------- */

/* Walks a text buffer line by line, in place: each "\n" becomes the NUL that
 * ends the line before it. Bytes after a NUL inside a line are not seen. */
struct tu_lines {
    char *at;
    char *end;
    unsigned lineno; /* 1-based number of the line last returned */
};

static inline void tu_lines_init(struct tu_lines *it, char *text, size_t len)
{
    it->at = text;
    it->end = text + len;
    it->lineno = 0;
}

/* Read tests/vectors/<rel> and start walking it; the returned text is what
 * the lines point into, to be freed after the walk. */
static inline char *tu_lines_of_vector(struct tu_lines *it, const char *rel)
{
    size_t len = 0;
    char *text = tu_read_vector(rel, &len);

    tu_lines_init(it, text, len);
    return text;
}

/* The next line, or NULL at the end of the buffer. */
static inline char *tu_lines_next(struct tu_lines *it)
{
    char *line = it->at;
    char *nl;

    if (line >= it->end) {
        return NULL;
    }
    nl = memchr(line, '\n', (size_t)(it->end - line));
    if (nl != NULL) {
        *nl = '\0';
        it->at = nl + 1;
    } else {
        it->at = it->end;
    }
    it->lineno++;
    return line;
}

/* The next line that is neither empty nor a "#" comment, or NULL. */
static inline char *tu_lines_next_record(struct tu_lines *it)
{
    char *line = tu_lines_next(it);

    while (line != NULL && (line[0] == '\0' || line[0] == '#')) {
        line = tu_lines_next(it);
    }
    return line;
}

/* Split line in place at single spaces into exactly n fields; what follows
 * the n-th field (a "# note") is left alone. Fails the test when the line
 * has fewer than n fields. */
static inline void tu_split_fields(char *line, char **fields, size_t n, unsigned lineno)
{
    char *p = line;

    for (size_t i = 0; i < n; i++) {
        char *sp;

        if (*p == '\0') {
            fail_msg("line %u: %zu fields, want %zu", lineno, i, n);
        }
        fields[i] = p;
        sp = strchr(p, ' ');
        if (sp == NULL) {
            p += strlen(p);
        } else {
            *sp = '\0';
            p = sp + 1;
        }
    }
}

/* ---- commands ------------------------------------------------------------- */

/* 1 when the shell command ran and exited with status 0. */
static inline int tu_run_ok(const char *cmd)
{
    int st = system(cmd);

    return st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 0;
}

#endif
