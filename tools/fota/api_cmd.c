/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The operator side of fota-server: `fota release`, `fota root`, `fota
 * rollout` and `fota device` talk to the server's /api/v1 (docs/api.md) with
 * an operator token. The token comes from --token-file or the FOTA_TOKEN environment
 * variable, never from the command line, where other users of the machine
 * could read it in the process list.
 *
 * Publishing stays two-key: targets, delegated roles and new roots are
 * signed offline with `fota repo sign`; `fota release push` and `fota root
 * push` only carry them (and the images) to the server, which verifies them
 * against what it serves.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <curl/curl.h>

#include "cli.h"
#include "fota/json.h"
#include "fota/tuf_repo.h"
#include "fota_posix.h"

/* Caps on what the API client reads. */
#define API_MAX_RESPONSE (16u * 1024u * 1024u)
#define API_MAX_TOKEN 4096u
#define API_MAX_ID 128u

/* The options every API command takes, first in each spec. */
#define API_COMMON_OPTS                                                                          \
    {"--server", CLI_OPT_VALUE},     /* 0 */                                                     \
        {"--token-file", CLI_OPT_VALUE}, /* 1 */                                                 \
        {"--cacert", CLI_OPT_VALUE},     /* 2 */                                                 \
        {"--json", CLI_OPT_FLAG}         /* 3 */
#define API_NCOMMON 4

#define API_COMMON_HELP                                                                          \
    "  --server URL       the server (default: $FOTA_SERVER), e.g. https://fota.example:8443\n" \
    "  --token-file FILE  a file holding the operator token (default: $FOTA_TOKEN)\n"           \
    "  --cacert FILE      trust this CA certificate (PEM) for https\n"                          \
    "  --json             print the server's answer as one line of JSON\n"

/* The paging options every list command takes (list_request adds them). */
#define API_PAGE_HELP                                                                            \
    "  --limit N          at most N (1..1000, default 100)\n"                                  \
    "  --after ID         the page after this id\n"

/* ---- the HTTP client ------------------------------------------------------ */

struct api {
    const char *cmd;
    char *base;   /* the server URL without a trailing "/" */
    char *token;
    const char *cacert;
    int json;
    CURL *curl;
};

struct api_body {
    char *data;
    size_t len, cap;
    int too_big;
};

static size_t on_body(char *ptr, size_t size, size_t nmemb, void *ud)
{
    struct api_body *b = ud;
    size_t n = size * nmemb;

    if (n > API_MAX_RESPONSE - b->len) {
        b->too_big = 1;
        return 0;
    }
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        char *p;

        while (cap < b->len + n + 1)
            cap *= 2;
        p = realloc(b->data, cap);
        if (p == NULL)
            return 0;
        b->data = p;
        b->cap = cap;
    }
    memcpy(b->data + b->len, ptr, n);
    b->len += n;
    b->data[b->len] = '\0';
    return n;
}

/* The token: the file's first line, or $FOTA_TOKEN; printable ASCII only
 * (it goes into a header). */
static int load_token(const char *cmd, const char *file, char **ret_token)
{
    uint8_t *buf = NULL;
    size_t len = 0;
    char *tok;
    int saved = 0;
    fota_err err;

    if (file != NULL) {
        err = cli_read_file(file, API_MAX_TOKEN, &buf, &len, &saved);
        if (err != FOTA_OK) {
            cli_error(cmd, file, "%s",
                      err == FOTA_E_IO && saved != 0 ? strerror(saved)
                      : err == FOTA_E_NOT_FOUND      ? "no such file"
                                                     : fota_strerror(err));
            return CLI_FAIL;
        }
        tok = (char *)buf;
    } else {
        const char *env = getenv("FOTA_TOKEN");
        if (env == NULL || env[0] == '\0') {
            cli_error(cmd, NULL, "no operator token: give --token-file FILE or set FOTA_TOKEN");
            return CLI_USAGE;
        }
        if (strlen(env) > API_MAX_TOKEN) {
            cli_error(cmd, "FOTA_TOKEN", "too long");
            return CLI_USAGE;
        }
        tok = strdup(env);
        if (tok == NULL) {
            cli_error(cmd, NULL, "out of memory");
            return CLI_FAIL;
        }
    }
    len = strlen(tok);
    while (len > 0 && (tok[len - 1] == '\n' || tok[len - 1] == '\r' || tok[len - 1] == ' ' ||
                       tok[len - 1] == '\t'))
        tok[--len] = '\0';
    for (size_t i = 0; i < len; i++) {
        if ((unsigned char)tok[i] <= 0x20 || (unsigned char)tok[i] >= 0x7f)
            len = 0;
    }
    if (len == 0) {
        fota_secret_free(tok, strlen(tok));
        cli_error(cmd, file != NULL ? file : "FOTA_TOKEN",
                  "not a token (one line of printable characters)");
        return CLI_FAIL;
    }
    *ret_token = tok;
    return CLI_OK;
}

static void api_close(struct api *a)
{
    if (a->curl != NULL)
        curl_easy_cleanup(a->curl);
    if (a->token != NULL)
        fota_secret_free(a->token, strlen(a->token));
    free(a->base);
    memset(a, 0, sizeof *a);
}

/* Set up from the common options (args.opt[0..3]). */
static int api_open(const char *cmd, const struct cli_args *args, struct api *ret)
{
    struct api a = {0};
    const char *server = args->opt[0].value;
    size_t n;
    int status;

    a.cmd = cmd;
    a.json = args->opt[3].count > 0;
    a.cacert = args->opt[2].value;
    if (server == NULL)
        server = getenv("FOTA_SERVER");
    if (server == NULL || server[0] == '\0') {
        cli_error(cmd, NULL, "no server: give --server URL or set FOTA_SERVER");
        return CLI_USAGE;
    }
    if (strncmp(server, "http://", 7) != 0 && strncmp(server, "https://", 8) != 0) {
        cli_error(cmd, server, "the server URL starts with http:// or https://");
        return CLI_USAGE;
    }
    a.base = strdup(server);
    if (a.base == NULL) {
        cli_error(cmd, NULL, "out of memory");
        return CLI_FAIL;
    }
    n = strlen(a.base);
    while (n > 0 && a.base[n - 1] == '/')
        a.base[--n] = '\0';
    status = load_token(cmd, args->opt[1].value, &a.token);
    if (status != CLI_OK) {
        api_close(&a);
        return status;
    }
    a.curl = curl_easy_init();
    if (a.curl == NULL) {
        cli_error(cmd, NULL, "cannot start libcurl");
        api_close(&a);
        return CLI_FAIL;
    }
    *ret = a;
    return CLI_OK;
}

/* Percent-encode s for a URL path (keep_slash: "/" stays a separator). */
static char *url_encode(const char *s, int keep_slash)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t n = strlen(s);
    char *out = malloc(3 * n + 1), *o = out;

    if (out == NULL)
        return NULL;
    for (const unsigned char *p = (const unsigned char *)s; *p != '\0'; p++) {
        if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
            *p == '-' || *p == '.' || *p == '_' || *p == '~' || (keep_slash && *p == '/')) {
            *o++ = (char)*p;
        } else {
            *o++ = '%';
            *o++ = hex[*p >> 4];
            *o++ = hex[*p & 15];
        }
    }
    *o = '\0';
    return out;
}

struct api_upload {
    FILE *f;
    uint64_t size;
};

/*
 * One request: method path (starting "/api/v1/", already encoded), with a
 * JSON body (text), an upload (file), or neither. On CLI_OK *ret_status is
 * the HTTP status and *ret_json the parsed answer (NULL for an empty one).
 * A transport failure or an answer that is not JSON is reported and
 * CLI_FAIL returned.
 */
static int api_call(struct api *a, const char *method, const char *path, const char *json_body,
                    const struct api_upload *upload, long *ret_status, json_t **ret_json)
{
    struct api_body body = {0};
    struct curl_slist *headers = NULL, *h;
    char *url = cli_pathf("%s%s", a->base, path);
    char *auth = cli_pathf("Authorization: Bearer %s", a->token);
    char errbuf[CURL_ERROR_SIZE];
    json_t *value = NULL;
    long status = 0;
    CURLcode rc;
    int ret = CLI_FAIL;

    errbuf[0] = '\0';
    if (url == NULL || auth == NULL) {
        cli_error(a->cmd, NULL, "out of memory");
        goto out;
    }
    curl_easy_reset(a->curl);
    h = curl_slist_append(headers, auth);
    if (h != NULL)
        headers = h;
    h = curl_slist_append(headers, "Accept: application/json");
    if (h != NULL)
        headers = h;
    if (json_body != NULL || upload == NULL) {
        h = curl_slist_append(headers, "Content-Type: application/json");
        if (h != NULL)
            headers = h;
    }
    if (upload != NULL) {
        h = curl_slist_append(headers, "Content-Type: application/octet-stream");
        if (h != NULL)
            headers = h;
    }
    curl_easy_setopt(a->curl, CURLOPT_URL, url);
    curl_easy_setopt(a->curl, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(a->curl, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(a->curl, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(a->curl, CURLOPT_WRITEDATA, &body);
    curl_easy_setopt(a->curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(a->curl, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(a->curl, CURLOPT_CONNECTTIMEOUT, 10L);
    curl_easy_setopt(a->curl, CURLOPT_LOW_SPEED_LIMIT, 1024L);
    curl_easy_setopt(a->curl, CURLOPT_LOW_SPEED_TIME, 60L);
    curl_easy_setopt(a->curl, CURLOPT_PROTOCOLS_STR, "http,https");
    if (a->cacert != NULL)
        curl_easy_setopt(a->curl, CURLOPT_CAINFO, a->cacert);
    if (upload != NULL) {
        curl_easy_setopt(a->curl, CURLOPT_UPLOAD, 1L);
        curl_easy_setopt(a->curl, CURLOPT_READDATA, upload->f);
        curl_easy_setopt(a->curl, CURLOPT_INFILESIZE_LARGE, (curl_off_t)upload->size);
    } else if (strcmp(method, "POST") == 0) {
        const char *b = json_body != NULL ? json_body : "";
        curl_easy_setopt(a->curl, CURLOPT_POST, 1L);
        curl_easy_setopt(a->curl, CURLOPT_POSTFIELDS, b);
        curl_easy_setopt(a->curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(b));
    } else if (strcmp(method, "GET") != 0) {
        curl_easy_setopt(a->curl, CURLOPT_CUSTOMREQUEST, method);
    }
    rc = curl_easy_perform(a->curl);
    if (rc != CURLE_OK) {
        cli_error(a->cmd, a->base, "%s",
                  body.too_big ? "answer too long"
                  : errbuf[0] != '\0' ? errbuf
                                      : curl_easy_strerror(rc));
        goto out;
    }
    curl_easy_getinfo(a->curl, CURLINFO_RESPONSE_CODE, &status);
    if (body.len > 0 && fota_json_parse((const uint8_t *)body.data, body.len, API_MAX_RESPONSE,
                                        FOTA_JSON_MAX_DEPTH, &value) != FOTA_OK) {
        cli_error(a->cmd, a->base, "HTTP %ld with an answer that is not JSON", status);
        goto out;
    }
    *ret_status = status;
    *ret_json = value;
    value = NULL;
    ret = CLI_OK;
out:
    /* The header holding the token is wiped before it is freed. */
    if (auth != NULL)
        fota_secret_free(auth, strlen(auth));
    curl_slist_free_all(headers);
    json_decref(value);
    free(body.data);
    free(url);
    return ret;
}

/* Report an error answer: "fota: CMD: server: 409 version: message". */
static int api_refused(const struct api *a, long status, const json_t *answer)
{
    const char *code = json_string_value(json_object_get(answer, "error"));
    const char *msg = json_string_value(json_object_get(answer, "message"));
    char clean[1024];
    size_t i;

    snprintf(clean, sizeof clean, "%s", msg != NULL ? msg : "");
    for (i = 0; clean[i] != '\0'; i++) {
        if ((unsigned char)clean[i] < 0x20)
            clean[i] = '?';
    }
    cli_error(a->cmd, "server", "HTTP %ld%s%s%s%s", status, code != NULL ? " " : "",
              code != NULL ? code : "", clean[0] != '\0' ? ": " : "", clean);
    return CLI_FAIL;
}

/* A request whose answer must be 2xx. */
static int api_expect(struct api *a, const char *method, const char *path, const json_t *body,
                      json_t **ret_json)
{
    char *text = NULL;
    json_t *answer = NULL;
    long status = 0;
    int ret;

    if (body != NULL) {
        text = json_dumps(body, JSON_COMPACT | JSON_SORT_KEYS);
        if (text == NULL) {
            cli_error(a->cmd, NULL, "out of memory");
            return CLI_FAIL;
        }
    }
    ret = api_call(a, method, path, text, NULL, &status, &answer);
    free(text);
    if (ret != CLI_OK)
        return ret;
    if (status < 200 || status > 299) {
        ret = api_refused(a, status, answer);
        json_decref(answer);
        return ret;
    }
    *ret_json = answer;
    return CLI_OK;
}

/* ---- output --------------------------------------------------------------- */

/* One value as table text (malloc'ed): strings with control characters
 * replaced, arrays of strings comma-joined, null as "-". */
static char *cell_text(const json_t *v)
{
    char *s = NULL;

    if (v == NULL || json_is_null(v))
        return strdup("-");
    if (json_is_string(v)) {
        s = strdup(json_string_value(v));
    } else if (json_is_integer(v)) {
        s = cli_pathf("%lld", (long long)json_integer_value(v));
    } else if (json_is_real(v)) {
        s = cli_pathf("%g", json_real_value(v));
    } else if (json_is_boolean(v)) {
        s = strdup(json_is_true(v) ? "yes" : "no");
    } else if (json_is_array(v)) {
        size_t i;
        const json_t *e;
        int all_strings = 1;

        json_array_foreach(v, i, e) all_strings &= json_is_string(e);
        if (all_strings && json_array_size(v) == 0) {
            s = strdup("-");
        } else if (all_strings) {
            size_t len = 1, o = 0;

            json_array_foreach(v, i, e) len += json_string_length(e) + 1;
            s = malloc(len);
            json_array_foreach(v, i, e) {
                size_t n = json_string_length(e);

                if (s == NULL)
                    break;
                if (i > 0)
                    s[o++] = ',';
                memcpy(s + o, json_string_value(e), n);
                o += n;
            }
            if (s != NULL)
                s[o] = '\0';
        } else {
            s = json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS);
        }
    } else {
        s = json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS);
    }
    for (char *p = s; p != NULL && *p != '\0'; p++) {
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            *p = '?';
    }
    return s;
}

/* A value by a dotted path ("target.version"). */
static const json_t *field(const json_t *obj, const char *path)
{
    char key[64];
    const char *dot;

    while ((dot = strchr(path, '.')) != NULL) {
        size_t n = (size_t)(dot - path);
        if (n >= sizeof key)
            return NULL;
        memcpy(key, path, n);
        key[n] = '\0';
        obj = json_object_get(obj, key);
        path = dot + 1;
    }
    return json_object_get(obj, path);
}

struct column {
    const char *title;
    const char *keys; /* "|"-separated alternatives, first present wins */
};

static const json_t *column_value(const json_t *row, const char *keys)
{
    char key[64];
    const char *p = keys;

    for (;;) {
        const char *bar = strchr(p, '|');
        size_t n = bar != NULL ? (size_t)(bar - p) : strlen(p);
        const json_t *v;

        if (n < sizeof key) {
            memcpy(key, p, n);
            key[n] = '\0';
            v = field(row, key);
            if (v != NULL)
                return v;
        }
        if (bar == NULL)
            return NULL;
        p = bar + 1;
    }
}

/* A table: a header line, then one line per row, columns padded. */
static int print_table(const char *cmd, const json_t *rows, const struct column *cols,
                       size_t ncols)
{
    size_t nrows = json_array_size(rows);
    char **cells = calloc((nrows + 1) * ncols, sizeof *cells);
    size_t width[16] = {0};
    int status = CLI_FAIL;

    if (cells == NULL || ncols > 16)
        goto nomem;
    for (size_t c = 0; c < ncols; c++) {
        cells[c] = strdup(cols[c].title);
        if (cells[c] == NULL)
            goto nomem;
    }
    for (size_t r = 0; r < nrows; r++) {
        for (size_t c = 0; c < ncols; c++) {
            char *s = cell_text(column_value(json_array_get(rows, r), cols[c].keys));
            if (s == NULL)
                goto nomem;
            cells[(r + 1) * ncols + c] = s;
        }
    }
    for (size_t i = 0; i < (nrows + 1) * ncols; i++) {
        size_t n = strlen(cells[i]);
        if (n > width[i % ncols])
            width[i % ncols] = n;
    }
    for (size_t r = 0; r <= nrows; r++) {
        for (size_t c = 0; c < ncols; c++) {
            if (c + 1 < ncols)
                printf("%-*s  ", (int)width[c], cells[r * ncols + c]);
            else
                printf("%s\n", cells[r * ncols + c]);
        }
    }
    status = CLI_OK;
    goto out;
nomem:
    cli_error(cmd, NULL, "out of memory");
out:
    for (size_t i = 0; cells != NULL && i < (nrows + 1) * ncols; i++)
        free(cells[i]);
    free(cells);
    return status;
}

/* An object as "key: value" lines, nested objects indented. */
static void print_object(const json_t *obj, int indent)
{
    const char **keys;
    size_t n = json_object_size(obj), i = 0;
    const char *k;
    const json_t *v;

    keys = calloc(n ? n : 1, sizeof *keys);
    if (keys == NULL)
        return;
    json_object_foreach((json_t *)obj, k, v) keys[i++] = k;
    /* Sorted, so the output is stable whatever order the server used. */
    for (size_t a = 1; a < n; a++) {
        for (size_t b = a; b > 0 && strcmp(keys[b - 1], keys[b]) > 0; b--) {
            const char *t = keys[b];
            keys[b] = keys[b - 1];
            keys[b - 1] = t;
        }
    }
    for (i = 0; i < n; i++) {
        v = json_object_get(obj, keys[i]);
        if (json_is_object(v) && json_object_size(v) > 0) {
            printf("%*s%s:\n", indent, "", keys[i]);
            print_object(v, indent + 2);
        } else if (json_is_array(v) && json_array_size(v) > 0 &&
                   json_is_object(json_array_get(v, 0))) {
            size_t j;
            const json_t *e;

            printf("%*s%s:\n", indent, "", keys[i]);
            json_array_foreach(v, j, e) {
                char *s = cell_text(e);
                printf("%*s- %s\n", indent + 2, "", s != NULL ? s : "?");
                free(s);
            }
        } else {
            char *s = cell_text(v);
            printf("%*s%s: %s\n", indent, "", keys[i], s != NULL ? s : "?");
            free(s);
        }
    }
    free(keys);
}

/* Print an answer: --json as one line, else a table of the array under
 * list_key (when given) or the object as lines. */
static int print_answer(const struct api *a, const json_t *answer, const char *list_key,
                        const struct column *cols, size_t ncols)
{
    const json_t *rows;

    if (a->json)
        return cli_print_json(a->cmd, (json_t *)(answer != NULL ? answer : json_null()));
    if (answer == NULL)
        return CLI_OK;
    rows = list_key != NULL ? json_object_get(answer, list_key) : NULL;
    if (json_is_array(rows)) {
        const json_t *next = json_object_get(answer, "next");
        int status = print_table(a->cmd, rows, cols, ncols);

        if (status == CLI_OK && json_is_string(next))
            printf("(more: --after %s)\n", json_string_value(next));
        return status;
    }
    print_object(answer, 0);
    return CLI_OK;
}

/* An id given on the command line goes into a URL path: letters, digits,
 * "-", "_", "." only. */
static int check_id(const char *cmd, const char *what, const char *id)
{
    size_t n = strlen(id);

    if (n == 0 || n > API_MAX_ID)
        goto bad;
    for (size_t i = 0; i < n; i++) {
        char c = id[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_' || c == '.'))
            goto bad;
    }
    if (strcmp(id, ".") == 0 || strcmp(id, "..") == 0)
        goto bad;
    return CLI_OK;
bad:
    cli_error(cmd, what, "'%s' is not an id (letters, digits, '-', '_', '.')", id);
    return CLI_USAGE;
}

/* Append "&key=value" (value escaped) to *query. */
static int query_add(char **query, const char *key, const char *value)
{
    char *esc = curl_easy_escape(NULL, value, 0);
    char *q;

    if (esc == NULL)
        return -1;
    q = cli_pathf("%s%c%s=%s", *query, (*query)[0] == '\0' ? '?' : '&', key, esc);
    curl_free(esc);
    if (q == NULL)
        return -1;
    free(*query);
    *query = q;
    return 0;
}

/* Parse the common options plus spec_extra; open the API. */
static int api_start(const char *cmd, const char *usage, const struct cli_optspec *spec,
                     size_t nspec, int argc, char **argv, size_t min_pos, size_t max_pos,
                     struct cli_args *ret_args, struct api *ret_api)
{
    int status = cli_parse(cmd, usage, spec, nspec, argc, argv, min_pos, max_pos, ret_args);

    if (status != CLI_OK)
        return status;
    status = api_open(cmd, ret_args, ret_api);
    if (status != CLI_OK)
        cli_args_free(ret_args);
    return status;
}

/* A filter option of a list command and its query key. */
struct list_filter {
    const char *option; /* "--status" */
    const char *query;  /* "status" */
    unsigned kind;      /* CLI_OPT_VALUE or CLI_OPT_MULTI */
};

/* Filters a list command may have, besides --limit and --after. */
#define LIST_FILTERS_MAX 12

/* `fota X list [filters] [--limit N] [--after ID]`: GET
 * /api/v1/<what>?<filters and paging> as a table. */
static int list_request(const char *cmd, const char *usage, const char *what,
                        const struct list_filter *filters, size_t nfilters,
                        const struct column *cols, size_t ncols, int argc, char **argv)
{
    struct cli_optspec spec[API_NCOMMON + LIST_FILTERS_MAX + 2] = {API_COMMON_OPTS};
    static const struct list_filter paging[] = {
        {"--limit", "limit", CLI_OPT_VALUE},
        {"--after", "after", CLI_OPT_VALUE},
    };
    struct cli_args args = {0};
    struct api a = {0};
    json_t *answer = NULL;
    char *path = NULL, *query = NULL;
    size_t nopts;
    int status;

    if (nfilters > LIST_FILTERS_MAX)
        nfilters = LIST_FILTERS_MAX;
    nopts = nfilters + 2;
    for (size_t i = 0; i < nopts; i++) {
        const struct list_filter *f = i < nfilters ? &filters[i] : &paging[i - nfilters];

        spec[API_NCOMMON + i].name = f->option;
        spec[API_NCOMMON + i].kind = f->kind;
    }
    status = api_start(cmd, usage, spec, API_NCOMMON + nopts, argc, argv, 0, 0, &args, &a);
    if (status != CLI_OK)
        return status;
    status = CLI_FAIL;
    query = strdup("");
    if (query == NULL)
        goto nomem;
    for (size_t i = 0; i < nopts; i++) {
        const struct list_filter *f = i < nfilters ? &filters[i] : &paging[i - nfilters];
        const struct cli_optval *v = &args.opt[API_NCOMMON + i];

        for (unsigned j = 0; j < v->count; j++) {
            const char *value = f->kind == CLI_OPT_MULTI ? v->values[j] : v->value;
            if (query_add(&query, f->query, value) != 0)
                goto nomem;
        }
    }
    path = cli_pathf("/api/v1/%s%s", what, query);
    if (path == NULL)
        goto nomem;
    status = api_expect(&a, "GET", path, NULL, &answer);
    if (status == CLI_OK)
        status = print_answer(&a, answer, what, cols, ncols);
    goto out;
nomem:
    cli_error(cmd, NULL, "out of memory");
out:
    json_decref(answer);
    free(path);
    free(query);
    api_close(&a);
    cli_args_free(&args);
    return status;
}

/* ---- fota release ---------------------------------------------------------- */

static const char release_usage[] =
    "Usage: fota release COMMAND [ARGS]\n"
    "\n"
    "  push   upload images and publish targets metadata signed offline\n"
    "  list   list the releases the server knows\n"
    "  show   show one release\n"
    "\n"
    "Run 'fota release COMMAND --help' for the options of a command.\n";

static const char push_usage[] =
    "Usage: fota release push [--targets FILE] [--role NAME[=FILE]...] [--repo REPO]\n"
    "                         [IMAGE...] [common options]\n"
    "\n"
    "Publish a release through fota-server: targets metadata and delegated roles\n"
    "signed offline ('fota repo sign targets', 'fota repo sign NAME'), and their\n"
    "images. Each IMAGE is uploaded first, under every target name whose sha256\n"
    "and length the metadata sent lists for it; then the metadata is sent in one\n"
    "request. The server checks it against what it serves (signatures by the\n"
    "keys of the root, or of the role that delegates a role; versions above the\n"
    "published ones; expiry; delegated paths; every target's image present with\n"
    "its length and hashes), then writes it with ONE new snapshot and timestamp\n"
    "and records each target whose custom field has hardware_ids, version and\n"
    "security_counter as a release. Images already uploaded need not be given\n"
    "again.\n"
    "\n"
    "  --targets FILE     the signed targets metadata\n"
    "  --role NAME=FILE   a signed delegated role (repeatable); NAME alone with\n"
    "                     --repo: REPO/staged/<NAME>.json\n"
    "  --repo REPO        the operator's `fota repo` folder: --targets defaults to\n"
    "                     REPO/staged/targets.json (with --role, only when it is\n"
    "                     a new version), and after the publish REPO records what\n"
    "                     was published (so the next edit stages the next version)\n"
    API_COMMON_HELP
    "\n"
    "Exit status: 0 published, 1 refused or failed, 2 usage error.\n";

struct image_digest {
    fota_hash_ctx h;
    uint64_t length;
};

static fota_err digest_feed(void *ctx, const uint8_t *data, size_t len)
{
    struct image_digest *d = ctx;

    d->length += len;
    return fota_hash_update(&d->h, data, len);
}

/* sha256 (hex) and length of a file, read once. */
static int hash_file(const char *cmd, const char *path, char sha256[65], uint64_t *ret_len)
{
    struct image_digest d = {{0}, 0};
    uint8_t out[FOTA_HASH_MAX_LEN];
    fota_err err;

    if (fota_hash_init(&d.h, FOTA_HASH_SHA256) != FOTA_OK) {
        cli_error(cmd, path, "hashing failed");
        return CLI_FAIL;
    }
    err = fota_posix_file_stream(path, UINT64_MAX, digest_feed, &d);
    if (err != FOTA_OK) {
        fota_hash_abort(&d.h);
        cli_error(cmd, path, "%s", cli_io_reason(err));
        return CLI_FAIL;
    }
    if (fota_hash_final(&d.h, out) != FOTA_OK) {
        cli_error(cmd, path, "hashing failed");
        return CLI_FAIL;
    }
    fota_hex_encode(out, 32, sha256);
    *ret_len = d.length;
    return CLI_OK;
}

static int upload_image(struct api *a, const char *path, const char *name, const char *sha256,
                        uint64_t length, json_t *uploaded)
{
    struct api_upload up = {NULL, length};
    char *enc = url_encode(name, 1), *url = NULL;
    json_t *answer = NULL;
    long status = 0;
    int ret = CLI_FAIL;

    url = enc != NULL ? cli_pathf("/api/v1/images/%s", enc) : NULL;
    if (url == NULL) {
        cli_error(a->cmd, NULL, "out of memory");
        goto out;
    }
    up.f = fopen(path, "rb");
    if (up.f == NULL) {
        cli_error(a->cmd, path, "%s", strerror(errno));
        goto out;
    }
    ret = api_call(a, "PUT", url, NULL, &up, &status, &answer);
    if (ret != CLI_OK)
        goto out;
    if (status != 201 && status != 200) {
        ret = api_refused(a, status, answer);
        goto out;
    }
    ret = CLI_FAIL;
    if (!json_is_string(json_object_get(json_object_get(answer, "hashes"), "sha256")) ||
        strcmp(json_string_value(json_object_get(json_object_get(answer, "hashes"), "sha256")),
               sha256) != 0 ||
        json_integer_value(json_object_get(answer, "length")) != (json_int_t)length) {
        cli_error(a->cmd, name, "the server stored something else (sha256 or length differ)");
        goto out;
    }
    if (!a->json)
        printf("uploaded %s (%llu bytes, sha256 %s)\n", name, (unsigned long long)length,
               sha256);
    json_array_append(uploaded, answer);
    ret = CLI_OK;
out:
    if (up.f != NULL)
        fclose(up.f);
    json_decref(answer);
    free(url);
    free(enc);
    return ret;
}

struct file_digest {
    char sha256[65];
    uint64_t length;
};

/* 1 when a target entry lists this sha256 and length. */
static int entry_matches(const json_t *entry, const char *sha256, uint64_t length)
{
    const char *h = json_string_value(json_object_get(json_object_get(entry, "hashes"),
                                                      "sha256"));

    return h != NULL && strcmp(h, sha256) == 0 &&
           json_is_integer(json_object_get(entry, "length")) &&
           json_integer_value(json_object_get(entry, "length")) == (json_int_t)length;
}

/* Read signed metadata of type from path, to send as it is. role names it
 * in the hint for unsigned files ('fota repo sign ROLE'). */
static int load_signed(const char *cmd, const char *path, const char *type, const char *role,
                       json_t **ret_env)
{
    json_t *env = NULL;
    int saved = 0;
    fota_err err;

    err = cli_read_json(path, CLI_MAX_METADATA, &env, &saved);
    if (err == FOTA_OK)
        err = fota_tuf_repo_check_envelope(env, type);
    if (err != FOTA_OK) {
        cli_error(cmd, path, "%s",
                  err == FOTA_E_IO && saved != 0 ? strerror(saved)
                  : err == FOTA_E_NOT_FOUND      ? "no such file"
                  : err == FOTA_E_TYPE && strcmp(type, "root") == 0 ? "not root metadata"
                  : err == FOTA_E_TYPE ? "not targets metadata"
                                       : fota_strerror(err));
        json_decref(env);
        return CLI_FAIL;
    }
    if (json_array_size(json_object_get(env, "signatures")) == 0) {
        cli_error(cmd, path, "not signed; sign it with 'fota repo sign %s'", role);
        json_decref(env);
        return CLI_FAIL;
    }
    *ret_env = env;
    return CLI_OK;
}

/* After a publish through the server, the operator's repository records
 * role as published (version, length and sha256 of the bytes the server
 * wrote: the same serialisation), so that the next edit stages version + 1
 * and `fota repo status` shows what is served. */
static int record_published(const char *cmd, struct cli_repo *repo, const char *role,
                            const json_t *env)
{
    uint8_t d[FOTA_HASH_MAX_LEN];
    char hex[65];
    char *bytes = NULL;
    size_t len = 0;
    json_t *entry;
    int status = CLI_FAIL;

    if (cli_json_bytes(env, 1, &bytes, &len) != FOTA_OK ||
        fota_hash(FOTA_HASH_SHA256, bytes, len, d) != FOTA_OK) {
        cli_error(cmd, repo->dir, "cannot record the published %s", role);
        goto out;
    }
    fota_hex_encode(d, 32, hex);
    entry = json_pack("{s:I,s:I,s:s}", "version", (json_int_t)cli_env_version(env), "length",
                      (json_int_t)len, "sha256", hex);
    if (entry == NULL ||
        json_object_set_new(json_object_get(repo->state, "published"), role, entry) != 0) {
        cli_error(cmd, NULL, "out of memory");
        goto out;
    }
    status = CLI_OK;
out:
    free(bytes);
    return status;
}

/* --role NAME=FILE, or NAME alone for REPO/staged/<encoded NAME>.json. */
static int load_role_option(const char *cmd, const char *value, struct cli_repo *repo,
                            json_t *roles)
{
    const char *eq = strchr(value, '=');
    char *name = eq != NULL ? strndup(value, (size_t)(eq - value)) : strdup(value);
    char *staged = NULL;
    const char *file;
    json_t *env = NULL;
    int status = CLI_USAGE;

    if (name == NULL) {
        cli_error(cmd, NULL, "out of memory");
        return CLI_FAIL;
    }
    if (name[0] == '\0' || (eq != NULL && eq[1] == '\0')) {
        cli_error(cmd, "--role", "'%s' is not NAME=FILE (or NAME with --repo)", value);
        goto out;
    }
    if (json_object_get(roles, name) != NULL) {
        cli_error(cmd, "--role", "role '%s' given twice", name);
        goto out;
    }
    if (eq != NULL) {
        file = eq + 1;
    } else if (repo->dir != NULL) {
        staged = cli_repo_staged_path(repo, name);
        if (staged == NULL) {
            cli_error(cmd, "--role", "'%s': bad role name", name);
            goto out;
        }
        file = staged;
    } else {
        cli_error(cmd, "--role", "'%s': give NAME=FILE, or --repo REPO for its staged file",
                  name);
        goto out;
    }
    status = load_signed(cmd, file, "targets", name, &env);
    if (status != CLI_OK)
        goto out;
    if (json_object_set_new(roles, name, env) != 0) {
        cli_error(cmd, NULL, "out of memory");
        status = CLI_FAIL;
    }
out:
    free(staged);
    free(name);
    return status;
}

/* Every IMAGE must match a target of the metadata sent (any role) before
 * the first upload; each is read once here and once while it is sent, under
 * every target name that lists it (each name once). */
static int upload_images(struct api *a, const struct cli_args *args, const json_t *envs,
                         json_t *uploaded)
{
    struct file_digest *digests = calloc(args->npos ? args->npos : 1, sizeof *digests);
    json_t *done = json_object();
    const json_t *env, *entry;
    const char *role, *name;
    int status = CLI_FAIL;

    if (digests == NULL || done == NULL) {
        cli_error(a->cmd, NULL, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < args->npos; i++) {
        int found = 0;

        if (hash_file(a->cmd, args->pos[i], digests[i].sha256, &digests[i].length) != CLI_OK)
            goto out;
        json_object_foreach((json_t *)envs, role, env) {
            const json_t *listed = json_object_get(json_object_get(env, "signed"), "targets");

            json_object_foreach((json_t *)listed, name, entry) {
                if (entry_matches(entry, digests[i].sha256, digests[i].length))
                    found = 1;
            }
        }
        if (!found) {
            cli_error(a->cmd, args->pos[i],
                      "not listed in the metadata sent (no target with this sha256 and length)");
            goto out;
        }
    }
    for (size_t i = 0; i < args->npos; i++) {
        json_object_foreach((json_t *)envs, role, env) {
            const json_t *listed = json_object_get(json_object_get(env, "signed"), "targets");

            json_object_foreach((json_t *)listed, name, entry) {
                if (!entry_matches(entry, digests[i].sha256, digests[i].length) ||
                    json_object_get(done, name) != NULL)
                    continue;
                if (upload_image(a, args->pos[i], name, digests[i].sha256, digests[i].length,
                                 uploaded) != CLI_OK ||
                    json_object_set_new(done, name, json_true()) != 0)
                    goto out;
            }
        }
    }
    status = CLI_OK;
out:
    json_decref(done);
    free(digests);
    return status;
}

/* "published targets v3, board-y v2 (snapshot v4, timestamp v4)" and the
 * new releases. */
static int print_published(const char *cmd, const json_t *answer, int with_targets,
                           int with_root)
{
    const json_t *rels = json_object_get(answer, "releases"), *v;
    const char *name;
    static const struct column cols[] = {
        {"ID", "id"},
        {"TARGET", "target|target_name|name"},
        {"VERSION", "version"},
        {"COUNTER", "security_counter"},
        {"HARDWARE", "hardware_ids"},
    };
    const char *sep = "";

    printf("published");
    if (with_root) {
        printf(" root v%lld",
               (long long)json_integer_value(json_object_get(answer, "root_version")));
        sep = ",";
    }
    if (with_targets) {
        printf("%s targets v%lld", sep,
               (long long)json_integer_value(json_object_get(answer, "targets_version")));
        sep = ",";
    }
    json_object_foreach(json_object_get(answer, "roles"), name, v) {
        json_t *s = json_string(name);
        char *clean = s != NULL ? cell_text(s) : NULL;

        printf("%s %s v%lld", sep, clean != NULL ? clean : "?", (long long)json_integer_value(v));
        json_decref(s);
        free(clean);
        sep = ",";
    }
    printf(" (snapshot v%lld, timestamp v%lld)\n",
           (long long)json_integer_value(json_object_get(answer, "snapshot_version")),
           (long long)json_integer_value(json_object_get(answer, "timestamp_version")));
    if (json_array_size(rels) > 0) {
        printf("new releases:\n");
        return print_table(cmd, rels, cols, sizeof cols / sizeof cols[0]);
    }
    return CLI_OK;
}

static int release_push(int argc, char **argv)
{
    static const char *cmd = "release push";
    static const struct cli_optspec spec[] = {
        API_COMMON_OPTS,
        {"--targets", CLI_OPT_VALUE}, /* 4 */
        {"--repo", CLI_OPT_VALUE},    /* 5 */
        {"--role", CLI_OPT_MULTI},    /* 6 */
    };
    struct cli_args args = {0};
    struct api a = {0};
    struct cli_repo repo = {0};
    json_t *targets = NULL, *roles = NULL, *envs = NULL, *uploaded = NULL, *body = NULL,
           *answer = NULL;
    const char *tfile, *role;
    const json_t *env;
    char *staged = NULL;
    int status;

    status = api_start(cmd, push_usage, spec, API_NCOMMON + 3, argc, argv, 0, 1000, &args, &a);
    if (status != CLI_OK)
        return status;
    roles = json_object();
    envs = json_object();
    uploaded = json_array();
    if (roles == NULL || envs == NULL || uploaded == NULL)
        goto nomem;
    if (args.opt[5].value != NULL) {
        /* Held to the end: no local edit slips between the push and the
         * record of what was published. */
        status = cli_repo_open(cmd, args.opt[5].value, &repo);
        if (status != CLI_OK)
            goto out;
    }
    for (unsigned i = 0; i < args.opt[6].count; i++) {
        status = load_role_option(cmd, args.opt[6].values[i], &repo, roles);
        if (status != CLI_OK)
            goto out;
    }
    tfile = args.opt[4].value;
    if (tfile == NULL && repo.dir != NULL) {
        staged = cli_repo_staged_path(&repo, "targets");
        if (staged == NULL)
            goto nomem;
        tfile = staged;
    }
    if (tfile == NULL && json_object_size(roles) == 0) {
        cli_error(cmd, NULL,
                  "give --targets FILE, --role NAME=FILE, or --repo REPO (for its staged "
                  "targets)");
        status = CLI_USAGE;
        goto out;
    }
    status = CLI_FAIL;
    if (tfile != NULL && load_signed(cmd, tfile, "targets", "targets", &targets) != CLI_OK)
        goto out;
    /* With --repo and --role, staged targets goes along only when it is a
     * new version: a role is often re-signed without targets changing. */
    if (targets != NULL && staged != NULL && json_object_size(roles) > 0 &&
        cli_env_version(targets) == cli_repo_published_version(&repo, "targets")) {
        json_decref(targets);
        targets = NULL;
    }
    if (targets != NULL && json_object_set(envs, "targets", targets) != 0)
        goto nomem;
    json_object_foreach(roles, role, env) {
        if (json_object_set(envs, role, (json_t *)env) != 0)
            goto nomem;
    }
    if (upload_images(&a, &args, envs, uploaded) != CLI_OK)
        goto out;

    body = json_object();
    if (body == NULL || (targets != NULL && json_object_set(body, "targets", targets) != 0) ||
        (json_object_size(roles) > 0 && json_object_set(body, "roles", roles) != 0))
        goto nomem;
    status = api_expect(&a, "POST", "/api/v1/releases", body, &answer);
    if (status != CLI_OK)
        goto out;
    if (repo.dir != NULL) {
        status = CLI_FAIL;
        json_object_foreach(envs, role, env) {
            if (record_published(cmd, &repo, role, env) != CLI_OK)
                goto out;
        }
        if (cli_repo_save_state(cmd, &repo) != CLI_OK)
            goto out;
    }
    if (a.json) {
        json_t *o = json_pack("{s:O,s:O}", "uploaded", uploaded, "published",
                              answer != NULL ? answer : json_null());
        status = o != NULL ? cli_print_json(cmd, o) : CLI_FAIL;
        json_decref(o);
    } else {
        status = print_published(cmd, answer, targets != NULL, 0);
    }
    goto out;
nomem:
    cli_error(cmd, NULL, "out of memory");
    status = CLI_FAIL;
out:
    json_decref(answer);
    json_decref(body);
    json_decref(uploaded);
    json_decref(envs);
    json_decref(roles);
    json_decref(targets);
    free(staged);
    cli_repo_close(&repo);
    api_close(&a);
    cli_args_free(&args);
    return status;
}

static const struct column release_cols[] = {
    {"ID", "id"},
    {"TARGET", "target|target_name|name"},
    {"VERSION", "version"},
    {"COUNTER", "security_counter"},
    {"HARDWARE", "hardware_ids"},
    {"CREATED", "created"},
};

static const char release_list_usage[] =
    "Usage: fota release list [--limit N] [--after ID] [common options]\n"
    "\n"
    "List the releases (published targets that carry hardware_ids, version\n"
    "and security_counter), ordered by id.\n"
    "\n" API_PAGE_HELP API_COMMON_HELP;

static int release_list(int argc, char **argv)
{
    return list_request("release list", release_list_usage, "releases", NULL, 0, release_cols,
                        sizeof release_cols / sizeof release_cols[0], argc, argv);
}

/* `fota X show ID` and `fota X ACTION ID`: one request on /api/v1/<what>/ID[/action]. */
static int id_request(const char *cmd, const char *usage, const char *what, const char *action,
                      int argc, char **argv)
{
    static const struct cli_optspec spec[] = {API_COMMON_OPTS};
    struct cli_args args = {0};
    struct api a = {0};
    json_t *answer = NULL;
    char *path = NULL;
    int status;

    status = api_start(cmd, usage, spec, API_NCOMMON, argc, argv, 1, 1, &args, &a);
    if (status != CLI_OK)
        return status;
    status = check_id(cmd, "ID", args.pos[0]);
    if (status != CLI_OK)
        goto out;
    path = action != NULL ? cli_pathf("/api/v1/%s/%s/%s", what, args.pos[0], action)
                          : cli_pathf("/api/v1/%s/%s", what, args.pos[0]);
    if (path == NULL) {
        cli_error(cmd, NULL, "out of memory");
        status = CLI_FAIL;
        goto out;
    }
    if (action != NULL) {
        json_t *empty = json_object();

        status = empty != NULL ? api_expect(&a, "POST", path, empty, &answer) : CLI_FAIL;
        json_decref(empty);
    } else {
        status = api_expect(&a, "GET", path, NULL, &answer);
    }
    if (status == CLI_OK)
        status = print_answer(&a, answer, NULL, NULL, 0);
out:
    json_decref(answer);
    free(path);
    api_close(&a);
    cli_args_free(&args);
    return status;
}

static const char release_show_usage[] =
    "Usage: fota release show ID [common options]\n"
    "\n"
    "Show one release: target, length, hashes, version, security counter,\n"
    "hardware ids, the targets version that published it.\n"
    "\n" API_COMMON_HELP;

static int release_show(int argc, char **argv)
{
    return id_request("release show", release_show_usage, "releases", NULL, argc, argv);
}

int cli_cmd_release(int argc, char **argv)
{
    static const struct cli_subcommand subs[] = {
        {"push", release_push},
        {"list", release_list},
        {"show", release_show},
    };

    return cli_dispatch("release", release_usage, subs, sizeof subs / sizeof subs[0], argc, argv);
}

/* ---- fota root ------------------------------------------------------------- */

static const char root_usage[] =
    "Usage: fota root COMMAND [ARGS]\n"
    "\n"
    "  push   publish a new root version through fota-server\n"
    "\n"
    "Run 'fota root COMMAND --help' for the options of a command.\n";

static const char root_push_usage[] =
    "Usage: fota root push (--root FILE | --repo REPO) [--targets FILE] [common options]\n"
    "\n"
    "Publish a new root version (a key rotation, a renewal) through fota-server\n"
    "(POST /api/v1/root; needs an admin token). The root is signed offline with\n"
    "'fota repo sign root' by the threshold of the published root's root keys\n"
    "and by that of its own. The server checks the version (the published one +\n"
    "1), both thresholds, the expiry, and that the new root still lists the\n"
    "server's snapshot and timestamp keys; then it writes N.root.json and\n"
    "root.json and re-signs snapshot and timestamp, so that devices move to the\n"
    "new root at their next refresh.\n"
    "\n"
    "  --root FILE        the signed root metadata\n"
    "  --repo REPO        the operator's `fota repo` folder: its staged root when\n"
    "                     that is above the published version (then recorded as\n"
    "                     published in REPO: metadata/N.root.json, root.json and\n"
    "                     fota-repo.json, as 'fota repo publish' would), else its\n"
    "                     published metadata/N.root.json\n"
    "  --targets FILE     targets metadata signed with the new root's targets keys,\n"
    "                     published in the same request (needed when the root\n"
    "                     rotates the targets keys: the served targets would no\n"
    "                     longer be trusted)\n" API_COMMON_HELP
    "\n"
    "Exit status: 0 published, 1 refused or failed, 2 usage error.\n";

/* The root --repo stands for: the staged one when it is a new version
 * (*ret_staged = 1), else the published one. */
static int repo_root(const char *cmd, struct cli_repo *repo, json_t **ret_env, int *ret_staged)
{
    int64_t published = cli_repo_published_version(repo, "root");
    json_t *env = NULL;
    char *path;
    int status;

    status = cli_repo_load_staged(cmd, repo, "root", &env);
    if (status != CLI_OK)
        return status;
    if (cli_env_version(env) > published) {
        if (json_array_size(json_object_get(env, "signatures")) == 0) {
            cli_error(cmd, "root", "staged root v%lld is not signed; sign it with 'fota repo "
                      "sign root'", (long long)cli_env_version(env));
            json_decref(env);
            return CLI_FAIL;
        }
        *ret_env = env;
        *ret_staged = 1;
        return CLI_OK;
    }
    json_decref(env);
    path = cli_repo_metadata_path(repo, published, "root");
    if (path == NULL) {
        cli_error(cmd, NULL, "out of memory");
        return CLI_FAIL;
    }
    status = load_signed(cmd, path, "root", "root", ret_env);
    free(path);
    *ret_staged = 0;
    return status;
}

/* A root pushed from REPO's staged copy is published there too, as `fota
 * repo publish` would record it: metadata/N.root.json, root.json and the
 * state (saved by the caller). */
static int record_root(const char *cmd, struct cli_repo *repo, const json_t *env)
{
    int64_t version = cli_env_version(env);
    char *bytes = NULL, *paths[2];
    size_t len = 0;
    json_t *entry = NULL;
    int status = CLI_FAIL;

    paths[0] = cli_repo_metadata_path(repo, version, "root");
    paths[1] = cli_repo_metadata_path(repo, 0, "root");
    if (paths[0] == NULL || paths[1] == NULL || cli_json_bytes(env, 1, &bytes, &len) != FOTA_OK)
        goto nomem;
    for (size_t i = 0; i < 2; i++) {
        fota_err err = fota_posix_write_file(paths[i], bytes, len, 0644, 0);

        if (err != FOTA_OK) {
            cli_error(cmd, paths[i], "%s", cli_io_reason(err));
            goto out;
        }
    }
    entry = json_pack("{s:I}", "version", (json_int_t)version);
    if (entry == NULL ||
        json_object_set_new(json_object_get(repo->state, "published"), "root", entry) != 0)
        goto nomem;
    status = CLI_OK;
    goto out;
nomem:
    cli_error(cmd, NULL, "out of memory");
out:
    free(bytes);
    free(paths[0]);
    free(paths[1]);
    return status;
}

static int root_push(int argc, char **argv)
{
    static const char *cmd = "root push";
    static const struct cli_optspec spec[] = {
        API_COMMON_OPTS,
        {"--root", CLI_OPT_VALUE},    /* 4 */
        {"--repo", CLI_OPT_VALUE},    /* 5 */
        {"--targets", CLI_OPT_VALUE}, /* 6 */
    };
    struct cli_args args = {0};
    struct api a = {0};
    struct cli_repo repo = {0};
    json_t *root = NULL, *targets = NULL, *body = NULL, *answer = NULL;
    int from_staged = 0, status;

    status = api_start(cmd, root_push_usage, spec, API_NCOMMON + 3, argc, argv, 0, 0, &args, &a);
    if (status != CLI_OK)
        return status;
    if ((args.opt[4].count > 0) == (args.opt[5].count > 0)) {
        cli_error(cmd, NULL, "give either --root FILE or --repo REPO");
        status = CLI_USAGE;
        goto out;
    }
    if (args.opt[5].count > 0) {
        status = cli_repo_open(cmd, args.opt[5].value, &repo);
        if (status == CLI_OK)
            status = repo_root(cmd, &repo, &root, &from_staged);
    } else {
        status = load_signed(cmd, args.opt[4].value, "root", "root", &root);
    }
    if (status == CLI_OK && args.opt[6].count > 0)
        status = load_signed(cmd, args.opt[6].value, "targets", "targets", &targets);
    if (status != CLI_OK)
        goto out;
    status = CLI_FAIL;
    body = json_pack("{s:O}", "root", root);
    if (body == NULL || (targets != NULL && json_object_set(body, "targets", targets) != 0)) {
        cli_error(cmd, NULL, "out of memory");
        goto out;
    }
    status = api_expect(&a, "POST", "/api/v1/root", body, &answer);
    if (status != CLI_OK)
        goto out;
    if (repo.dir != NULL && (from_staged || targets != NULL)) {
        status = CLI_FAIL;
        if ((from_staged && record_root(cmd, &repo, root) != CLI_OK) ||
            (targets != NULL && record_published(cmd, &repo, "targets", targets) != CLI_OK) ||
            cli_repo_save_state(cmd, &repo) != CLI_OK)
            goto out;
    }
    if (a.json)
        status = cli_print_json(cmd, answer != NULL ? answer : json_null());
    else
        status = print_published(cmd, answer, targets != NULL, 1);
out:
    json_decref(answer);
    json_decref(body);
    json_decref(targets);
    json_decref(root);
    cli_repo_close(&repo);
    api_close(&a);
    cli_args_free(&args);
    return status;
}

int cli_cmd_root(int argc, char **argv)
{
    static const struct cli_subcommand subs[] = {
        {"push", root_push},
    };

    return cli_dispatch("root", root_usage, subs, sizeof subs / sizeof subs[0], argc, argv);
}

/* ---- fota rollout ---------------------------------------------------------- */

static const char rollout_usage[] =
    "Usage: fota rollout COMMAND [ARGS]\n"
    "\n"
    "  create   roll a release out to a group of devices in waves\n"
    "  list     list rollouts\n"
    "  show     a rollout's progress per wave and per state\n"
    "  pause, resume, abort\n"
    "\n"
    "Run 'fota rollout COMMAND --help' for the options of a command.\n";

static const char rollout_create_usage[] =
    "Usage: fota rollout create --release ID (--device ID [...] | --hardware-id HW\n"
    "                           [--version V] [--tag TAG [...]]) [--waves 5,25,100]\n"
    "                           [--success-threshold 0.9] [--failure-limit 0.1]\n"
    "                           [--rollback] [common options]\n"
    "\n"
    "Create a rollout of a release to a group: a list of devices, or every\n"
    "accepted device with a hardware id (and, optionally, running a version\n"
    "and carrying all the tags). The group is fixed now. Waves are cumulative\n"
    "percentages of the group; the next opens when the share of devices that\n"
    "confirmed the release reaches the success threshold; the rollout pauses\n"
    "itself when failures pass the failure limit. --rollback marks a rollout\n"
    "to an earlier release (refused when a device's security counter forbids\n"
    "it).\n"
    "\n"
    "  --release ID            the release (see 'fota release list')\n"
    "  --device ID             a device of the group (repeatable)\n"
    "  --hardware-id HW        or: the devices with this hardware id\n"
    "  --version V             ... running this version\n"
    "  --tag TAG               ... carrying this tag (repeatable)\n"
    "  --waves LIST            comma-separated percentages, increasing, last 100\n"
    "  --success-threshold F   0 < F <= 1\n"
    "  --failure-limit F       0 <= F <= 1\n"
    "  --rollback              a rollback rollout\n" API_COMMON_HELP;

/* "0.9" -> 0.9 within [lo, hi]; lo itself allowed only when lo_ok. */
static int parse_fraction(const char *cmd, const char *opt, const char *s, double lo, int lo_ok,
                          double *ret)
{
    char *end = NULL;
    double v;

    errno = 0;
    v = strtod(s, &end);
    if (errno != 0 || end == s || *end != '\0' || v > 1.0 || v < lo || (!lo_ok && v == lo)) {
        cli_error(cmd, opt, "'%s' is not a fraction in %s%g, 1]", s, lo_ok ? "[" : "(", lo);
        return CLI_USAGE;
    }
    *ret = v;
    return CLI_OK;
}

static int parse_waves(const char *cmd, const char *s, json_t **ret)
{
    json_t *waves = json_array();
    const char *p = s;
    long last = 0;

    if (waves == NULL) {
        cli_error(cmd, NULL, "out of memory");
        return CLI_FAIL;
    }
    for (;;) {
        char *end = NULL;
        long v;

        errno = 0;
        v = strtol(p, &end, 10);
        if (errno != 0 || end == p || v <= last || v > 100 || (*end != ',' && *end != '\0') ||
            json_array_size(waves) >= 16)
            goto bad;
        json_array_append_new(waves, json_integer(v));
        last = v;
        if (*end == '\0')
            break;
        p = end + 1;
    }
    if (last != 100)
        goto bad;
    *ret = waves;
    return CLI_OK;
bad:
    json_decref(waves);
    cli_error(cmd, "--waves",
              "'%s' is not a list of increasing percentages ending in 100 (e.g. 5,25,100)", s);
    return CLI_USAGE;
}

static json_t *string_array(const char **values, unsigned n)
{
    json_t *a = json_array();

    for (unsigned i = 0; a != NULL && i < n; i++) {
        if (json_array_append_new(a, json_string(values[i])) != 0) {
            json_decref(a);
            return NULL;
        }
    }
    return a;
}

static int rollout_create(int argc, char **argv)
{
    static const char *cmd = "rollout create";
    static const struct cli_optspec spec[] = {
        API_COMMON_OPTS,
        {"--release", CLI_OPT_VALUE | CLI_OPT_REQUIRED}, /* 4 */
        {"--device", CLI_OPT_MULTI},                     /* 5 */
        {"--hardware-id", CLI_OPT_VALUE},                /* 6 */
        {"--version", CLI_OPT_VALUE},                    /* 7 */
        {"--tag", CLI_OPT_MULTI},                        /* 8 */
        {"--waves", CLI_OPT_VALUE},                      /* 9 */
        {"--success-threshold", CLI_OPT_VALUE},          /* 10 */
        {"--failure-limit", CLI_OPT_VALUE},              /* 11 */
        {"--rollback", CLI_OPT_FLAG},                    /* 12 */
    };
    static const struct column cols[] = {{"ID", "id"}};
    struct cli_args args = {0};
    struct api a = {0};
    json_t *body = NULL, *group = NULL, *waves = NULL, *answer = NULL;
    double success = 0.9, failure = 0.1;
    int status;

    status = api_start(cmd, rollout_create_usage, spec, API_NCOMMON + 9, argc, argv, 0, 0, &args,
                       &a);
    if (status != CLI_OK)
        return status;
    status = CLI_USAGE;
    if (check_id(cmd, "--release", args.opt[4].value) != CLI_OK)
        goto out;
    if ((args.opt[5].count > 0) == (args.opt[6].count > 0)) {
        cli_error(cmd, NULL, "give the group as --device ID... or as --hardware-id HW");
        goto out;
    }
    if (args.opt[5].count > 0 && (args.opt[7].count > 0 || args.opt[8].count > 0)) {
        cli_error(cmd, NULL, "--version and --tag filter --hardware-id groups only");
        goto out;
    }
    for (unsigned i = 0; i < args.opt[5].count; i++) {
        if (check_id(cmd, "--device", args.opt[5].values[i]) != CLI_OK)
            goto out;
    }
    if (args.opt[9].count > 0 && parse_waves(cmd, args.opt[9].value, &waves) != CLI_OK)
        goto out;
    if (args.opt[10].count > 0 &&
        parse_fraction(cmd, "--success-threshold", args.opt[10].value, 0.0, 0, &success) != CLI_OK)
        goto out;
    if (args.opt[11].count > 0 &&
        parse_fraction(cmd, "--failure-limit", args.opt[11].value, 0.0, 1, &failure) != CLI_OK)
        goto out;
    status = CLI_FAIL;
    if (waves == NULL)
        waves = json_pack("[i,i,i]", 5, 25, 100);
    if (args.opt[5].count > 0) {
        group = json_pack("{s:o}", "devices",
                          string_array(args.opt[5].values, args.opt[5].count));
    } else {
        group = json_pack("{s:s}", "hardware_id", args.opt[6].value);
        if (group != NULL && args.opt[7].count > 0)
            json_object_set_new(group, "version", json_string(args.opt[7].value));
        if (group != NULL && args.opt[8].count > 0)
            json_object_set_new(group, "tags",
                                string_array(args.opt[8].values, args.opt[8].count));
    }
    if (group == NULL || waves == NULL)
        goto nomem;
    body = json_pack("{s:s,s:O,s:O,s:f,s:f,s:b}", "release", args.opt[4].value, "group", group,
                     "waves", waves, "success_threshold", success, "failure_limit", failure,
                     "rollback", args.opt[12].count > 0);
    if (body == NULL)
        goto nomem;
    status = api_expect(&a, "POST", "/api/v1/rollouts", body, &answer);
    if (status != CLI_OK)
        goto out;
    if (!a.json && json_is_string(json_object_get(answer, "id")))
        printf("created rollout %s\n", json_string_value(json_object_get(answer, "id")));
    else
        status = print_answer(&a, answer, NULL, cols, 1);
    goto out;
nomem:
    cli_error(cmd, NULL, "out of memory");
    status = CLI_FAIL;
out:
    json_decref(answer);
    json_decref(body);
    json_decref(group);
    json_decref(waves);
    api_close(&a);
    cli_args_free(&args);
    return status;
}

static const char rollout_list_usage[] =
    "Usage: fota rollout list [--state STATE] [--limit N] [--after ID] [common options]\n"
    "\n"
    "List rollouts: id, release, state, open wave, progress.\n"
    "\n"
    "  --state STATE      only rollouts in this state (active, paused, aborted, completed)\n"
    API_PAGE_HELP API_COMMON_HELP;

static int rollout_list(int argc, char **argv)
{
    static const struct list_filter filters[] = {
        {"--state", "state", CLI_OPT_VALUE},
    };
    static const struct column cols[] = {
        {"ID", "id"},
        {"RELEASE", "release"},
        {"STATE", "state"},
        {"WAVE", "current_wave"},
        {"WAVES", "waves"},
        {"DEVICES", "device_count"},
        {"CREATED", "created"},
    };

    return list_request("rollout list", rollout_list_usage, "rollouts", filters, 1, cols,
                        sizeof cols / sizeof cols[0], argc, argv);
}

static const char rollout_show_usage[] =
    "Usage: fota rollout show ID [common options]\n"
    "\n"
    "Show a rollout: release, group, waves, state, and counts per wave and per\n"
    "device state.\n"
    "\n" API_COMMON_HELP;

/* A rollout: its summary lines, then one table row per wave. */
static int print_rollout(const struct api *a, const json_t *r)
{
    static const struct column cols[] = {
        {"WAVE", "wave"},
        {"PERCENT", "percent"},
        {"DEVICES", "devices"},
        {"OPEN", "open"},
        {"ASSIGNED", "counts.assigned"},
        {"DOWNLOADING", "counts.downloading"},
        {"INSTALLED", "counts.installed"},
        {"REBOOTED", "counts.rebooted"},
        {"CONFIRMED", "counts.confirmed"},
        {"ROLLED_BACK", "counts.rolled_back"},
        {"FAILED", "counts.failed"},
    };
    json_t *summary;
    int status;

    if (a->json || !json_is_array(json_object_get(r, "progress")))
        return print_answer(a, r, NULL, NULL, 0);
    summary = json_deep_copy(r);
    if (summary == NULL) {
        cli_error(a->cmd, NULL, "out of memory");
        return CLI_FAIL;
    }
    json_object_del(summary, "progress");
    print_object(summary, 0);
    json_decref(summary);
    printf("\n");
    status = print_table(a->cmd, json_object_get(r, "progress"), cols,
                         sizeof cols / sizeof cols[0]);
    return status;
}

static int rollout_show(int argc, char **argv)
{
    static const char *cmd = "rollout show";
    static const struct cli_optspec spec[] = {API_COMMON_OPTS};
    struct cli_args args = {0};
    struct api a = {0};
    json_t *answer = NULL;
    char *path = NULL;
    int status;

    status = api_start(cmd, rollout_show_usage, spec, API_NCOMMON, argc, argv, 1, 1, &args, &a);
    if (status != CLI_OK)
        return status;
    status = check_id(cmd, "ID", args.pos[0]);
    if (status != CLI_OK)
        goto out;
    path = cli_pathf("/api/v1/rollouts/%s", args.pos[0]);
    if (path == NULL) {
        cli_error(cmd, NULL, "out of memory");
        status = CLI_FAIL;
        goto out;
    }
    status = api_expect(&a, "GET", path, NULL, &answer);
    if (status == CLI_OK)
        status = print_rollout(&a, answer);
out:
    json_decref(answer);
    free(path);
    api_close(&a);
    cli_args_free(&args);
    return status;
}

static const char rollout_action_usage[] =
    "Usage: fota rollout pause|resume|abort ID [common options]\n"
    "\n"
    "pause: no device of the rollout gets the release until it is resumed;\n"
    "resume: go on where it stopped; abort: end it (devices not yet\n"
    "installing are told to stay).\n"
    "\n" API_COMMON_HELP;

static int rollout_pause(int argc, char **argv)
{
    return id_request("rollout pause", rollout_action_usage, "rollouts", "pause", argc, argv);
}

static int rollout_resume(int argc, char **argv)
{
    return id_request("rollout resume", rollout_action_usage, "rollouts", "resume", argc, argv);
}

static int rollout_abort(int argc, char **argv)
{
    return id_request("rollout abort", rollout_action_usage, "rollouts", "abort", argc, argv);
}

int cli_cmd_rollout(int argc, char **argv)
{
    static const struct cli_subcommand subs[] = {
        {"create", rollout_create}, {"list", rollout_list},     {"show", rollout_show},
        {"pause", rollout_pause},   {"resume", rollout_resume}, {"abort", rollout_abort},
    };

    return cli_dispatch("rollout", rollout_usage, subs, sizeof subs / sizeof subs[0], argc, argv);
}

/* ---- fota device ----------------------------------------------------------- */

static const char device_usage[] =
    "Usage: fota device COMMAND [ARGS]\n"
    "\n"
    "  list     list devices, with filters\n"
    "  show     one device with its history\n"
    "  accept   accept an enrolled device\n"
    "  reject   reject an enrolled device\n"
    "  tag      add or remove tags\n"
    "\n"
    "Run 'fota device COMMAND --help' for the options of a command.\n";

static const char device_list_usage[] =
    "Usage: fota device list [--status S] [--hardware-id HW] [--version V] [--tag TAG]\n"
    "                        [--fresh true|false] [--limit N] [--after ID] [common options]\n"
    "\n"
    "List devices: id, status (pending, accepted, rejected, decommissioned),\n"
    "hardware id, running version, last check-in, and whether that check-in is\n"
    "recent enough (fresh: no means possibly frozen).\n"
    "\n"
    "  --status S         pending, accepted, rejected or decommissioned (or a\n"
    "                     comma-separated list of them)\n"
    "  --hardware-id HW, --version V, --tag TAG   only devices with these\n"
    "  --fresh true|false only devices whose last check-in is (not) recent\n"
    API_PAGE_HELP API_COMMON_HELP;

static int device_list(int argc, char **argv)
{
    static const struct list_filter filters[] = {
        {"--status", "status", CLI_OPT_VALUE},
        {"--hardware-id", "hardware_id", CLI_OPT_VALUE},
        {"--version", "version", CLI_OPT_VALUE},
        {"--tag", "tag", CLI_OPT_VALUE},
        {"--fresh", "fresh", CLI_OPT_VALUE},
    };
    static const struct column cols[] = {
        {"ID", "id"},
        {"STATUS", "status"},
        {"HARDWARE", "hardware_id"},
        {"VERSION", "version"},
        {"FRESH", "fresh"},
        {"LAST SEEN", "last_seen"},
        {"TAGS", "tags"},
    };

    return list_request("device list", device_list_usage, "devices", filters, 5, cols,
                        sizeof cols / sizeof cols[0], argc, argv);
}

static const char device_show_usage[] =
    "Usage: fota device show ID [common options]\n"
    "\n"
    "Show a device: status, hardware id, running version, slots, tags,\n"
    "freshness, and its history of reports.\n"
    "\n" API_COMMON_HELP;

static int device_show(int argc, char **argv)
{
    return id_request("device show", device_show_usage, "devices", NULL, argc, argv);
}

static const char device_decide_usage[] =
    "Usage: fota device accept|reject ID [common options]\n"
    "\n"
    "Accept a pending device (it may then open sessions and check in) or\n"
    "reject it (its enrolments are refused from then on).\n"
    "\n" API_COMMON_HELP;

static int device_accept(int argc, char **argv)
{
    return id_request("device accept", device_decide_usage, "devices", "accept", argc, argv);
}

static int device_reject(int argc, char **argv)
{
    return id_request("device reject", device_decide_usage, "devices", "reject", argc, argv);
}

static const char device_tag_usage[] =
    "Usage: fota device tag ID [--add TAG [...]] [--remove TAG [...]] [common options]\n"
    "\n"
    "Add and remove tags of a device (rollout groups can select by tag).\n"
    "\n"
    "  --add TAG          add a tag (repeatable)\n"
    "  --remove TAG       remove a tag (repeatable)\n" API_COMMON_HELP;

static int device_tag(int argc, char **argv)
{
    static const char *cmd = "device tag";
    static const struct cli_optspec spec[] = {
        API_COMMON_OPTS,
        {"--add", CLI_OPT_MULTI},    /* 4 */
        {"--remove", CLI_OPT_MULTI}, /* 5 */
    };
    struct cli_args args = {0};
    struct api a = {0};
    json_t *body = NULL, *answer = NULL;
    char *path = NULL;
    int status;

    status = api_start(cmd, device_tag_usage, spec, API_NCOMMON + 2, argc, argv, 1, 1, &args, &a);
    if (status != CLI_OK)
        return status;
    status = check_id(cmd, "ID", args.pos[0]);
    if (status != CLI_OK)
        goto out;
    if (args.opt[4].count == 0 && args.opt[5].count == 0) {
        cli_error(cmd, NULL, "give --add TAG or --remove TAG");
        status = CLI_USAGE;
        goto out;
    }
    status = CLI_FAIL;
    body = json_pack("{s:o,s:o}", "add", string_array(args.opt[4].values, args.opt[4].count),
                     "remove", string_array(args.opt[5].values, args.opt[5].count));
    path = cli_pathf("/api/v1/devices/%s/tags", args.pos[0]);
    if (body == NULL || path == NULL) {
        cli_error(cmd, NULL, "out of memory");
        goto out;
    }
    status = api_expect(&a, "POST", path, body, &answer);
    if (status == CLI_OK)
        status = print_answer(&a, answer, NULL, NULL, 0);
out:
    json_decref(answer);
    json_decref(body);
    free(path);
    api_close(&a);
    cli_args_free(&args);
    return status;
}

int cli_cmd_device(int argc, char **argv)
{
    static const struct cli_subcommand subs[] = {
        {"list", device_list},     {"show", device_show}, {"accept", device_accept},
        {"reject", device_reject}, {"tag", device_tag},
    };

    return cli_dispatch("device", device_usage, subs, sizeof subs / sizeof subs[0], argc, argv);
}
