/* SPDX-License-Identifier: Apache-2.0 */
/* The pre-authorised device key list: see preauth.h. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fota/crypto.h"
#include "fota/json.h"
#include "fota/tuf.h"
#include "log.h"
#include "preauth.h"

#define ID_LEN 32

/* The parsed file: sorted raw key ids. Only immutable-until-the-file-changes
 * data is cached here, so several processes still agree (each reads the
 * same file). */
struct preauth_list {
    char path[512];
    dev_t dev;
    ino_t ino;
    off_t size;
    struct timespec mtime;
    uint8_t (*ids)[ID_LEN];
    size_t count;
    int valid;                           /* parsed successfully */
};

static pthread_mutex_t cache_lock = PTHREAD_MUTEX_INITIALIZER;
static struct preauth_list cache;

static int id_cmp(const void *a, const void *b)
{
    return memcmp(a, b, ID_LEN);
}

static int is_blank(char c)
{
    return c == ' ' || c == '\t' || c == '\r';
}

/* One trimmed, non-empty, non-comment line -> raw key id. */
static int parse_entry(const char *line, size_t len, uint8_t ret_id[ID_LEN])
{
    char keyid[FOTA_TUF_KEYID_HEX_LEN + 1];
    json_t *obj = NULL;
    fota_pubkey *key = NULL;
    int rc = -1;

    if (len == FOTA_TUF_KEYID_HEX_LEN)
        return fota_hex_decode(line, len, ret_id, ID_LEN) == FOTA_OK ? 0 : -1;
    if (line[0] != '{')
        return -1;
    if (fota_json_parse((const uint8_t *)line, len, FOTA_PREAUTH_LINE_MAX, 4, &obj) != FOTA_OK)
        goto out;
    /* A key of a type the server cannot verify could never enrol: refuse
     * the file rather than list it silently. */
    if (fota_tuf_key_parse(obj, &key) != FOTA_OK)
        goto out;
    if (fota_tuf_keyid(obj, keyid) != FOTA_OK)
        goto out;
    if (fota_hex_decode(keyid, FOTA_TUF_KEYID_HEX_LEN, ret_id, ID_LEN) != FOTA_OK)
        goto out;
    rc = 0;
out:
    fota_pubkey_free(key);
    json_decref(obj);
    return rc;
}

/* Parse text into list->ids; on failure logs the line number and leaves the
 * list empty. */
static int parse_file(struct preauth_list *list, const char *text, size_t len)
{
    size_t cap = 0, count = 0, lineno = 0;
    uint8_t (*ids)[ID_LEN] = NULL;
    size_t pos = 0;

    while (pos < len) {
        const char *nl = memchr(text + pos, '\n', len - pos);
        size_t end = nl != NULL ? (size_t)(nl - text) : len;
        size_t a = pos, b = end;

        lineno++;
        pos = end + 1;
        while (a < b && is_blank(text[a]))
            a++;
        while (b > a && is_blank(text[b - 1]))
            b--;
        if (a == b || text[a] == '#')
            continue;
        if (b - a > FOTA_PREAUTH_LINE_MAX)
            goto bad;
        if (count == cap) {
            size_t ncap = cap != 0 ? 2 * cap : 64;
            void *p = realloc(ids, ncap * ID_LEN);
            if (p == NULL)
                goto bad;
            ids = p;
            cap = ncap;
        }
        if (parse_entry(text + a, b - a, ids[count]) != 0)
            goto bad;
        count++;
    }
    if (count > 1)
        qsort(ids, count, ID_LEN, id_cmp);
    list->ids = ids;
    list->count = count;
    list->valid = 1;
    return 0;
bad:
    fota_log(FOTA_LOG_ERROR, "preauth",
             "path=%s line=%zu error=\"malformed entry; no key is pre-authorised\"", list->path,
             lineno);
    free(ids);
    return -1;
}

static void list_clear(struct preauth_list *list)
{
    free(list->ids);
    list->ids = NULL;
    list->count = 0;
    list->valid = 0;
}

static int same_file(const struct preauth_list *list, const char *path, const struct stat *st)
{
    return list->valid && strcmp(list->path, path) == 0 && list->dev == st->st_dev &&
           list->ino == st->st_ino && list->size == st->st_size &&
           list->mtime.tv_sec == st->st_mtim.tv_sec && list->mtime.tv_nsec == st->st_mtim.tv_nsec;
}

/* (Re)load the cache from path if it changed. Called with cache_lock held. */
static int cache_refresh(const char *path)
{
    struct stat st;
    char *text = NULL;
    size_t got = 0;
    int fd = -1;
    int rc = -1;

    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0 || fstat(fd, &st) != 0) {
        fota_log(FOTA_LOG_WARN, "preauth", "path=%s error=\"%s\"", path, strerror(errno));
        goto out;
    }
    if (same_file(&cache, path, &st)) {
        rc = 0;
        goto out;
    }
    list_clear(&cache);
    if (strlen(path) >= sizeof(cache.path) || !S_ISREG(st.st_mode) ||
        (uint64_t)st.st_size > FOTA_PREAUTH_FILE_MAX) {
        fota_log(FOTA_LOG_ERROR, "preauth", "path=%s error=\"not a regular file or too big\"",
                 path);
        goto out;
    }
    memcpy(cache.path, path, strlen(path) + 1);
    text = malloc((size_t)st.st_size + 1);
    if (text == NULL)
        goto out;
    while (got < (size_t)st.st_size) {
        ssize_t n = read(fd, text + got, (size_t)st.st_size - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    if (got != (size_t)st.st_size) {
        fota_log(FOTA_LOG_ERROR, "preauth", "path=%s error=\"short read\"", path);
        goto out;
    }
    if (parse_file(&cache, text, got) != 0)
        goto out;
    cache.dev = st.st_dev;
    cache.ino = st.st_ino;
    cache.size = st.st_size;
    cache.mtime = st.st_mtim;
    rc = 0;
out:
    free(text);
    if (fd >= 0)
        close(fd);
    return rc;
}

int fota_preauth_contains(const char *path, const char *device_id)
{
    uint8_t id[ID_LEN];
    int found = 0;

    if (path == NULL || path[0] == '\0' || device_id == NULL)
        return 0;
    if (strlen(device_id) != FOTA_TUF_KEYID_HEX_LEN ||
        fota_hex_decode(device_id, FOTA_TUF_KEYID_HEX_LEN, id, ID_LEN) != FOTA_OK)
        return 0;
    pthread_mutex_lock(&cache_lock);
    if (cache_refresh(path) == 0 && cache.count > 0)
        found = bsearch(id, cache.ids, cache.count, ID_LEN, id_cmp) != NULL;
    pthread_mutex_unlock(&cache_lock);
    return found;
}
