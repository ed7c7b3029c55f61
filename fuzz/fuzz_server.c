/* SPDX-License-Identifier: Apache-2.0 */
#include "fuzz_server.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "fota/crypto.h"

#include <microhttpd.h>

#include "checkin_queue.h"
#include "config.h"
#include "fota/json.h"
#include "fota/tuf.h"
#include "fuzz_common.h"
#include "http.h"
#include "init_cmd.h"
#include "log.h"
#include "routes.h"
#include "server.h"
#include "session.h"
#include "store.h"
#include "store_tokens.h"

#define FZ_HEADERS_MAX 16
#define FZ_QUERY_MAX 32
#define FZ_LINE_MAX 4096
#define FZ_STREAM_CHUNK 4096

/* ---- the fake connection: what MHD_lookup_connection_value answers ------- */

struct fz_pair {
    char *key;
    char *value;     /* NULL: a query key without "=" */
};

struct fz_conn {
    struct fz_pair headers[FZ_HEADERS_MAX];
    size_t n_headers;
    struct fz_pair query[FZ_QUERY_MAX];
    size_t n_query;
};

const char *__wrap_MHD_lookup_connection_value(struct MHD_Connection *connection,
                                               enum MHD_ValueKind kind, const char *key);

const char *__wrap_MHD_lookup_connection_value(struct MHD_Connection *connection,
                                               enum MHD_ValueKind kind, const char *key)
{
    const struct fz_conn *c = (const struct fz_conn *)(void *)connection;

    if (c == NULL || key == NULL)
        return NULL;
    if (kind == MHD_HEADER_KIND) {
        for (size_t i = 0; i < c->n_headers; i++) {
            if (strcasecmp(c->headers[i].key, key) == 0)
                return c->headers[i].value;
        }
    } else if (kind == MHD_GET_ARGUMENT_KIND) {
        for (size_t i = 0; i < c->n_query; i++) {
            if (strcmp(c->query[i].key, key) == 0)
                return c->query[i].value;
        }
    }
    return NULL;
}

static void conn_clear(struct fz_conn *c)
{
    for (size_t i = 0; i < c->n_headers; i++) {
        free(c->headers[i].key);
        free(c->headers[i].value);
    }
    for (size_t i = 0; i < c->n_query; i++) {
        free(c->query[i].key);
        free(c->query[i].value);
    }
    memset(c, 0, sizeof(*c));
}

static char *dup_n(const char *s, size_t n)
{
    char *d = malloc(n + 1);

    if (d == NULL)
        fz_fail("out of memory");
    memcpy(d, s, n);
    d[n] = '\0';
    return d;
}

/* Query values as MHD hands them over: "+" is a space, %XX decoded. */
static char *url_decode(const char *s, size_t n)
{
    char *d = malloc(n + 1);
    size_t j = 0;

    if (d == NULL)
        fz_fail("out of memory");
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '+') {
            d[j++] = ' ';
        } else if (s[i] == '%' && i + 2 < n && fota_hex_value(s[i + 1]) >= 0 &&
                   fota_hex_value(s[i + 2]) >= 0) {
            d[j++] = (char)(fota_hex_value(s[i + 1]) * 16 + fota_hex_value(s[i + 2]));
            i += 2;
        } else {
            d[j++] = s[i];
        }
    }
    d[j] = '\0';
    return d;
}

static void add_query(struct fz_conn *c, const char *q)
{
    while (*q != '\0' && c->n_query < FZ_QUERY_MAX) {
        size_t n = strcspn(q, "&");
        const char *eq = memchr(q, '=', n);

        if (n > 0) {
            struct fz_pair *p = &c->query[c->n_query++];
            if (eq != NULL) {
                p->key = url_decode(q, (size_t)(eq - q));
                p->value = url_decode(eq + 1, n - (size_t)(eq - q) - 1);
            } else {
                p->key = url_decode(q, n);
                p->value = NULL;
            }
        }
        q += n;
        if (*q == '&')
            q++;
    }
}

static void add_header(struct fz_conn *c, const char *name, const char *value)
{
    if (c->n_headers == FZ_HEADERS_MAX)
        return;
    c->headers[c->n_headers].key = dup_n(name, strlen(name));
    c->headers[c->n_headers].value = dup_n(value, strlen(value));
    c->n_headers++;
}

static int has_header(const struct fz_conn *c, const char *name)
{
    return __wrap_MHD_lookup_connection_value((struct MHD_Connection *)(void *)c,
                                              MHD_HEADER_KIND, name) != NULL;
}

/* ---- the server ------------------------------------------------------------- */

static struct fota_server srv;
static int ready;
static int repo_dirty;
static char data_dir[4200], tmpl_dir[4200];
static char device_id[FOTA_TUF_KEYID_HEX_LEN + 1];
static char session_token[FOTA_SESSION_TOKEN_LEN + 1];
static char rollout_id[128];

/* The request as http.c would run it once headers and body are in. */
static unsigned run(struct fz_conn *c, const char *method, const char *path,
                    const uint8_t *body, size_t body_len, char **ret_body, size_t *ret_len)
{
    static const uint8_t empty_body[1] = {0};
    const struct fota_route *route, *path_route = NULL;
    struct fota_req req;
    struct fota_resp resp;
    unsigned allowed = 0;
    uint8_t *copy = NULL;

    memset(&req, 0, sizeof(req));
    memset(&resp, 0, sizeof(resp));
    req.srv = &srv;
    req.conn = c;
    req.method = method;
    req.path = path;
    route = fota_route_find(method, path, &allowed, &path_route);
    if (route == NULL)
        return allowed != 0 ? 405 : 404;
    if (route->stream != NULL)
        req.body_max = srv.cfg.max_image;
    else if (route->metadata)
        req.body_max = srv.cfg.max_metadata;
    else
        req.body_max = srv.cfg.max_body;
    if (body_len > req.body_max)
        return 413;
    if (route->methods & (FOTA_M_POST | FOTA_M_PUT | FOTA_M_DELETE | FOTA_M_PATCH)) {
        if (strcmp(route->name, "releases") == 0 || strcmp(route->name, "images") == 0 ||
            strcmp(route->name, "root") == 0)
            repo_dirty |= strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0;
    }
    if (route->stream != NULL) {
        void *ctx = route->stream->begin(&req, &resp);
        int failed = 0;

        if (ctx != NULL) {
            for (size_t off = 0; off < body_len; off += FZ_STREAM_CHUNK) {
                size_t n = body_len - off < FZ_STREAM_CHUNK ? body_len - off : FZ_STREAM_CHUNK;
                if (route->stream->data(ctx, body + off, n, &resp) != 0) {
                    failed = 1;
                    break;
                }
            }
            if (failed)
                route->stream->abort(ctx);
            else
                route->stream->end(ctx, &req, &resp);
        }
        if (resp.status == 0 && (ctx == NULL || failed))
            resp.status = 500;   /* http.c's answer to a silent refusal */
    } else {
        if (strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0) {
            req.body = NULL;
            req.body_len = 0;
        } else if (body_len > 0) {
            /* A NUL past the end, as http.c gives handlers. */
            copy = malloc(body_len + 1);
            if (copy == NULL)
                fz_fail("out of memory");
            memcpy(copy, body, body_len);
            copy[body_len] = 0;
            req.body = copy;
            req.body_len = body_len;
        } else {
            req.body = empty_body;
            req.body_len = 0;
        }
        route->handler(&req, &resp);
    }
    fz_note("%s %s: %u %.160s", method, path, resp.status, resp.body != NULL ? resp.body : "");
    if (resp.status < 100 || resp.status > 599)
        fz_fail("%s %s: handler left status %u", method, path, resp.status);
    if (resp.body != NULL && resp.content_type != NULL &&
        strcmp(resp.content_type, "application/json") == 0) {
        json_t *v = NULL;
        if (fota_json_parse((const uint8_t *)resp.body, resp.body_len, resp.body_len,
                            FOTA_JSON_MAX_DEPTH, &v) != FOTA_OK)
            fz_fail("%s %s: answer %u is not strict JSON: %.200s", method, path, resp.status,
                    resp.body);
        json_decref(v);
    }
    if (ret_body != NULL && resp.body != NULL) {
        *ret_body = resp.body;
        *ret_len = resp.body_len;
        resp.body = NULL;
    }
    free(resp.body);
    if (resp.mhd != NULL)
        MHD_destroy_response(resp.mhd);
    free(copy);
    return resp.status;
}

/* Replace "{rollout}" and "{device}" in a target. */
static char *expand(const char *target, size_t n)
{
    size_t cap = n + 256, j = 0;
    char *out = malloc(cap);

    if (out == NULL)
        fz_fail("out of memory");
    for (size_t i = 0; i < n;) {
        const char *sub = NULL;
        size_t skip = 0;

        if (n - i >= 9 && memcmp(target + i, "{rollout}", 9) == 0) {
            sub = rollout_id;
            skip = 9;
        } else if (n - i >= 8 && memcmp(target + i, "{device}", 8) == 0) {
            sub = device_id;
            skip = 8;
        }
        if (sub != NULL) {
            size_t sl = strlen(sub);
            if (j + sl + (n - i) + 1 > cap) {
                char *nout;
                cap = j + sl + (n - i) + 256;
                nout = realloc(out, cap);
                if (nout == NULL)
                    fz_fail("out of memory");
                out = nout;
            }
            memcpy(out + j, sub, sl);
            j += sl;
            i += skip;
        } else {
            out[j++] = target[i++];
        }
    }
    out[j] = '\0';
    return out;
}

static unsigned call(struct fz_conn *c, const char *method, const char *target, size_t target_len,
                     const uint8_t *body, size_t body_len, char **ret_body, size_t *ret_len)
{
    char *t = expand(target, target_len);
    char *q = strchr(t, '?');
    unsigned status;

    if (q != NULL) {
        *q = '\0';
        add_query(c, q + 1);
    }
    if (!has_header(c, "Authorization"))
        add_header(c, "Authorization", "Bearer " FZ_TOKEN_ADMIN);
    if (!has_header(c, "Content-Type"))
        add_header(c, "Content-Type", "application/json");
    status = run(c, method, t, body, body_len, ret_body, ret_len);
    free(t);
    return status;
}

/* Parse the request text into c, method and target; returns the offset of
 * the body, or -1 when the text is not a request. */
static long parse_text(const uint8_t *data, size_t size, struct fz_conn *c, char *method,
                       size_t method_len, const char **ret_target, size_t *ret_target_len)
{
    const char *p = (const char *)data, *end = p + size, *nl, *sp;
    size_t n;

    nl = memchr(p, '\n', size);
    if (nl == NULL || nl - p > FZ_LINE_MAX || memchr(p, '\0', (size_t)(nl - p)) != NULL)
        return -1;
    sp = memchr(p, ' ', (size_t)(nl - p));
    if (sp == NULL || sp == p || (size_t)(sp - p) >= method_len)
        return -1;
    memcpy(method, p, (size_t)(sp - p));
    method[sp - p] = '\0';
    n = (size_t)(nl - sp - 1);
    if (n > 0 && sp[n] == '\r')
        n--;
    if (n == 0 || sp[1] != '/')
        return -1;
    *ret_target = sp + 1;
    *ret_target_len = n;
    p = nl + 1;
    /* Headers until an empty line (or the end). */
    while (p < end) {
        const char *colon, *v;
        char name[256], value[FZ_LINE_MAX + 1];
        size_t ln, vn;

        nl = memchr(p, '\n', (size_t)(end - p));
        ln = nl != NULL ? (size_t)(nl - p) : (size_t)(end - p);
        if (ln > 0 && p[ln - 1] == '\r')
            ln--;
        if (ln == 0) {
            p = nl != NULL ? nl + 1 : end;
            break;
        }
        colon = memchr(p, ':', ln);
        if (colon == NULL || colon == p || (size_t)(colon - p) >= sizeof(name) ||
            ln > FZ_LINE_MAX || memchr(p, '\0', ln) != NULL)
            return -1;
        memcpy(name, p, (size_t)(colon - p));
        name[colon - p] = '\0';
        v = colon + 1;
        while (v < p + ln && (*v == ' ' || *v == '\t'))
            v++;
        vn = (size_t)(p + ln - v);
        memcpy(value, v, vn);
        value[vn] = '\0';
        add_header(c, name, value);
        p = nl != NULL ? nl + 1 : end;
    }
    return (long)(p - (const char *)data);
}

unsigned fz_server_text(const uint8_t *data, size_t size)
{
    struct fz_conn c;
    char method[16];
    const char *target = NULL;
    size_t target_len = 0;
    long body_off;
    unsigned status = 0;

    memset(&c, 0, sizeof(c));
    body_off = parse_text(data, size, &c, method, sizeof(method), &target, &target_len);
    if (body_off >= 0)
        status = call(&c, method, target, target_len, data + body_off, size - (size_t)body_off,
                      NULL, NULL);
    conn_clear(&c);
    return status;
}

unsigned fz_server_call(const char *method, const char *target, const char *auth,
                        const char *content_type, const uint8_t *body, size_t body_len)
{
    struct fz_conn c;
    unsigned status;

    memset(&c, 0, sizeof(c));
    /* call() adds the admin token when there is no Authorization header: a
     * request that must go without a token gets an empty one instead. */
    add_header(&c, "Authorization", auth != NULL ? auth : "");
    if (content_type != NULL)
        add_header(&c, "Content-Type", content_type);
    status = call(&c, method, target, strlen(target), body, body_len, NULL, NULL);
    conn_clear(&c);
    return status;
}

/* ---- set-up ------------------------------------------------------------------ */

static void path_join(char *out, size_t len, const char *a, const char *b)
{
    int n = snprintf(out, len, "%s/%s", a, b);

    if (n < 0 || (size_t)n >= len)
        fz_fail("path too long");
}

static void add_token(struct fota_store *st, const char *token, const char *name,
                      enum fota_store_scope scope)
{
    struct fota_store_token t;
    uint8_t d[FOTA_HASH_MAX_LEN];

    memset(&t, 0, sizeof(t));
    if (fota_hash(FOTA_HASH_SHA256, token, strlen(token), d) != FOTA_OK)
        fz_fail("hash");
    fota_hex_encode(d, 32, t.sha256);
    t.sha256[FOTA_STORE_SHA256_HEX] = '\0';
    snprintf(t.name, sizeof(t.name), "%s", name);
    t.scope = scope;
    t.created = fota_server_now();
    if (fota_store_token_insert(st, &t) != FOTA_STORE_OK)
        fz_fail("cannot insert token %s", name);
}

static int name_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Replay fixture/server-setup/ in name order; each must succeed. */
static void replay_setup(void)
{
    DIR *d = opendir(fz_fixture_path("server-setup"));
    struct dirent *e;
    char *names[64];
    size_t n = 0;

    if (d == NULL)
        fz_fail("no fixture/server-setup: run fuzz/make_corpus.sh");
    while ((e = readdir(d)) != NULL && n < 64) {
        if (e->d_name[0] != '.')
            names[n++] = dup_n(e->d_name, strlen(e->d_name));
    }
    closedir(d);
    qsort(names, n, sizeof(names[0]), name_cmp);
    for (size_t i = 0; i < n; i++) {
        char rel[512];
        uint8_t *buf;
        size_t len;
        struct fz_conn c;
        char method[16];
        const char *target = NULL;
        size_t target_len = 0;
        long off;
        unsigned status;
        char *answer = NULL;
        size_t answer_len = 0;

        snprintf(rel, sizeof(rel), "server-setup/%s", names[i]);
        buf = fz_fixture_read(rel, &len);
        memset(&c, 0, sizeof(c));
        off = parse_text(buf, len, &c, method, sizeof(method), &target, &target_len);
        if (off < 0)
            fz_fail("%s is not a request", rel);
        status = call(&c, method, target, target_len, buf + off, len - (size_t)off, &answer,
                      &answer_len);
        if (status < 200 || status > 299)
            fz_fail("set-up %s: status %u: %.300s", rel, status, answer != NULL ? answer : "");
        if (answer != NULL && strncmp(names[i] + 2, "-rollout", 8) == 0) {
            json_t *v = NULL;
            const char *id = NULL;

            if (fota_json_parse((const uint8_t *)answer, answer_len, answer_len, 16, &v) ==
                FOTA_OK)
                id = json_string_value(json_object_get(v, "id"));
            if (id == NULL)
                fz_fail("set-up %s: no rollout id", rel);
            snprintf(rollout_id, sizeof(rollout_id), "%s", id);
            json_decref(v);
        }
        free(answer);
        conn_clear(&c);
        free(buf);
        free(names[i]);
    }
}

static void set_field(char *dst, size_t len, const char *src)
{
    size_t n = strlen(src);

    if (n >= len)
        fz_fail("path too long for the server configuration: %s", src);
    memcpy(dst, src, n + 1);
}

static void close_connections(void)
{
    fota_checkin_queue_close();
    fota_store_thread_release();
}

static void copy_db(const char *from_dir, const char *to_dir)
{
    static const char *const files[] = { "fota.db", "fota.db-wal", "fota.db-shm" };

    for (size_t i = 0; i < 3; i++) {
        char a[4400], b[4400];
        struct stat st;

        path_join(a, sizeof(a), from_dir, files[i]);
        path_join(b, sizeof(b), to_dir, files[i]);
        unlink(b);
        if (stat(a, &st) == 0 && fz_copy_tree(a, b) != 0)
            fz_fail("cannot copy %s", a);
    }
}

void fz_server_init(void)
{
    struct fota_server_config cfg;
    struct fota_store *st = NULL;
    char repo[4400], keys[3][4400], a[4400], b[4400];
    char *argv[8];
    json_t *obj = NULL;

    if (ready)
        return;
    fota_log_set_level(getenv("FOTA_FUZZ_VERBOSE") != NULL ? FOTA_LOG_DEBUG : -1);
    path_join(data_dir, sizeof(data_dir), fz_tmpdir(), "data");
    path_join(tmpl_dir, sizeof(tmpl_dir), fz_tmpdir(), "template");
    if (mkdir(data_dir, 0700) != 0 || mkdir(tmpl_dir, 0700) != 0)
        fz_fail("mkdir");
    snprintf(repo, sizeof(repo), "%s", fz_fixture_path("repo"));
    snprintf(keys[0], sizeof(keys[0]), "%s", fz_fixture_path("keys/snapshot.pem"));
    snprintf(keys[1], sizeof(keys[1]), "%s", fz_fixture_path("keys/timestamp.pem"));
    snprintf(keys[2], sizeof(keys[2]), "%s", fz_fixture_path("keys/director.pem"));
    argv[0] = "--data-dir";
    argv[1] = data_dir;
    argv[2] = "--repo";
    argv[3] = repo;
    argv[4] = "--snapshot-key";
    argv[5] = keys[0];
    argv[6] = "--timestamp-key";
    argv[7] = keys[1];
    {
        /* init prints what it did on stdout: keep libFuzzer's output clean */
        int saved, devnull;

        fflush(stdout);
        saved = dup(1);
        devnull = open("/dev/null", O_WRONLY | O_CLOEXEC);
        if (saved >= 0 && devnull >= 0)
            dup2(devnull, 1);
        if (fota_server_cmd_init(8, argv) != 0)
            fz_fail("fota-server init failed");
        fflush(stdout);
        if (saved >= 0) {
            dup2(saved, 1);
            close(saved);
        }
        if (devnull >= 0)
            close(devnull);
    }
    fota_config_defaults(&cfg);
    set_field(cfg.data_dir, sizeof(cfg.data_dir), data_dir);
    set_field(cfg.snapshot_key, sizeof(cfg.snapshot_key), keys[0]);
    set_field(cfg.timestamp_key, sizeof(cfg.timestamp_key), keys[1]);
    set_field(cfg.director_key, sizeof(cfg.director_key), keys[2]);
    cfg.log_level = 0;
    if (fota_server_init(&srv, &cfg) != 0)
        fz_fail("fota_server_init failed");
    if (fota_store_open(srv.db_path, &st) != FOTA_STORE_OK)
        fz_fail("store");
    add_token(st, FZ_TOKEN_ADMIN, "fuzz-admin", FOTA_STORE_SCOPE_ADMIN);
    add_token(st, FZ_TOKEN_DEPLOY, "fuzz-deploy", FOTA_STORE_SCOPE_DEPLOY);
    add_token(st, FZ_TOKEN_READ, "fuzz-read", FOTA_STORE_SCOPE_READ);
    fota_store_close(st);

    if (fota_tuf_key_json(fz_fixture_key("device"), &obj) != FOTA_OK ||
        fota_tuf_keyid(obj, device_id) != FOTA_OK)
        fz_fail("fixture device key");
    json_decref(obj);
    if (fota_session_token_make(srv.token_secret, device_id,
                                (int64_t)time(NULL) + 10 * 366 * 86400, session_token) != FOTA_OK)
        fz_fail("session token");

    replay_setup();
    close_connections();
    copy_db(data_dir, tmpl_dir);
    path_join(a, sizeof(a), data_dir, "repo");
    path_join(b, sizeof(b), tmpl_dir, "repo");
    if (fz_copy_tree(a, b) != 0)
        fz_fail("cannot copy the repository");
    repo_dirty = 0;
    ready = 1;
}

void fz_server_reset(void)
{
    close_connections();
    copy_db(tmpl_dir, data_dir);
    if (repo_dirty) {
        char a[4400], b[4400];

        path_join(a, sizeof(a), tmpl_dir, "repo");
        path_join(b, sizeof(b), data_dir, "repo");
        fz_rm_tree(b);
        if (fz_copy_tree(a, b) != 0)
            fz_fail("cannot restore the repository");
        repo_dirty = 0;
    }
}

const char *fz_server_device_id(void)
{
    return device_id;
}

const char *fz_server_session_token(void)
{
    return session_token;
}
