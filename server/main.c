/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fota-server: command dispatch (serve, init, token), and the serve life
 * cycle: configuration, keys and secret, the online TUF roles, the HTTP
 * daemon, then a graceful shutdown on SIGTERM/SIGINT (stop accepting, let
 * requests in flight finish, close the stores).
 *
 * Exit status: 0 success, 1 failure, 2 usage error (bad command, flag or
 * configuration value).
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/rand.h>

#include "checkin_queue.h"
#include "config.h"
#include "fota/crypto.h"
#include "http.h"
#include "init_cmd.h"
#include "log.h"
#include "metrics.h"
#include "server.h"
#include "store.h"
#include "store_audit.h"
#include "store_tokens.h"
#include "tuf_online.h"

#define EXIT_USAGE 2

/* How long requests in flight get to finish after SIGTERM. */
#define DRAIN_TIMEOUT_S 60.0

#define TOKEN_BYTES 32
#define TOKEN_DEFAULT_TTL_S (90 * 86400)

static const char main_usage[] =
    "Usage: fota-server [serve] [OPTIONS]        run the update server (the default)\n"
    "       fota-server init --data-dir DIR --repo REPO [OPTIONS]\n"
    "                                           give DIR a repository and a database\n"
    "       fota-server token new --data-dir DIR --scope read|deploy|admin --name NAME\n"
    "                             [--ttl DUR|never]   print a new operator API token once\n"
    "       fota-server token list --data-dir DIR     list tokens (never the tokens)\n"
    "       fota-server token revoke NAME --data-dir DIR\n"
    "       fota-server help | --help | --version\n"
    "\n"
    "Every command takes --help. docs/server.md describes the server.\n";

static const char serve_usage_head[] =
    "Usage: fota-server [serve] [OPTIONS]\n"
    "\n"
    "Serve the repository in DIR/repo, the device endpoints, the operator API,\n"
    "/metrics and the dashboard. SIGTERM or SIGINT stops it gracefully: no new\n"
    "connections, requests in flight finish (up to 60 s), then exit 0.\n"
    "\n"
    "Options (each is also a `key = value` line of --config FILE, with _):\n";

static const char token_usage[] =
    "Usage: fota-server token new --data-dir DIR --scope read|deploy|admin --name NAME\n"
    "                             [--ttl DUR|never]\n"
    "       fota-server token list --data-dir DIR\n"
    "       fota-server token revoke NAME --data-dir DIR\n"
    "\n"
    "Operator API tokens. `new` prints the token on stdout, once: only its SHA-256\n"
    "is stored. Scopes: read (GET everything), deploy (+ releases, rollouts,\n"
    "device accept/reject/tag), admin (+ tokens, decommission). --ttl defaults to\n"
    "90d; `never` makes a token that does not expire. --config FILE may give the\n"
    "data_dir instead of --data-dir.\n"
    "\n"
    "Exit status: 0 done, 1 failed (e.g. no such token), 2 usage error.\n";

static int usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static int usage_error(const char *fmt, ...)
{
    va_list ap;

    fputs("fota-server: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputs(" (see fota-server --help)\n", stderr);
    return EXIT_USAGE;
}

/* ---- serve ----------------------------------------------------------------- */

/* A server may hold many connections, each with a file being sent: raise
 * the soft descriptor limit to the hard one. */
static void raise_fd_limit(void)
{
    struct rlimit rl;

    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
            fota_log(FOTA_LOG_WARN, "start", "detail=\"cannot raise the descriptor limit\"");
    }
}

static const char *signal_name(int sig)
{
    return sig == SIGTERM ? "TERM" : sig == SIGINT ? "INT" : "other";
}

static int cmd_serve(int argc, char **argv)
{
    struct fota_server_config cfg;
    struct fota_server srv;
    struct fota_http *http = NULL;
    char err[600];
    sigset_t stop_set;
    int rc, sig = 0, online = 0;
    int ret = 1;

    fota_config_defaults(&cfg);
    rc = fota_config_from_args(&cfg, argc, argv, err, sizeof(err));
    if (rc == 1) {
        fputs(serve_usage_head, stdout);
        fputs(fota_config_usage, stdout);
        return 0;
    }
    if (rc != 0)
        return usage_error("%s", err);
    if (fota_config_validate(&cfg, err, sizeof(err)) != 0)
        return usage_error("%s", err);
    fota_log_set_level(cfg.log_level);

    /* Every thread started from here on (MHD's pool, the renewal thread)
     * inherits this mask, so the signals reach only sigtimedwait below. */
    sigemptyset(&stop_set);
    sigaddset(&stop_set, SIGTERM);
    sigaddset(&stop_set, SIGINT);
    if (pthread_sigmask(SIG_BLOCK, &stop_set, NULL) != 0)
        return 1;
    signal(SIGPIPE, SIG_IGN);
    raise_fd_limit();

    if (fota_server_init(&srv, &cfg) != 0)
        return 1;
    /* The online roles: checks the repository and keys, renews timestamp
     * now and from a background thread. */
    if (fota_tuf_online_start(&srv) != 0)
        goto out;
    online = 1;
    if (fota_http_start(&srv, &http) != 0)
        goto out;
    fota_log(FOTA_LOG_INFO, "started", "pid=%ld data_dir=%s", (long)getpid(), cfg.data_dir);

    for (;;) {
        struct timespec tick = {1, 0};
        sig = sigtimedwait(&stop_set, NULL, &tick);
        if (sig > 0)
            break;
        if (sig < 0 && errno != EAGAIN && errno != EINTR) {
            fota_log(FOTA_LOG_ERROR, "signal", "error=\"%s\"", strerror(errno));
            break;
        }
    }

    /* Graceful stop: no new connections; requests in flight finish; a
     * second signal cuts the wait short. */
    fota_log(FOTA_LOG_INFO, "stopping", "signal=%s in_flight=%ld", signal_name(sig),
             fota_metrics_in_flight_now(srv.metrics));
    fota_http_quiesce(http);
    {
        struct timespec start, now;
        clock_gettime(CLOCK_MONOTONIC, &start);
        for (;;) {
            struct timespec poll_ts = {0, 50 * 1000 * 1000};
            double waited;
            if (fota_http_wait_idle(http, 0, NULL) == 0)
                break;
            clock_gettime(CLOCK_MONOTONIC, &now);
            waited = (double)(now.tv_sec - start.tv_sec) +
                     (double)(now.tv_nsec - start.tv_nsec) / 1e9;
            if (waited >= DRAIN_TIMEOUT_S) {
                fota_log(FOTA_LOG_WARN, "stopping", "detail=\"requests still in flight after "
                         "%.0f s: closing them\" in_flight=%ld", DRAIN_TIMEOUT_S,
                         fota_metrics_in_flight_now(srv.metrics));
                break;
            }
            if (sigtimedwait(&stop_set, NULL, &poll_ts) > 0) {
                fota_log(FOTA_LOG_WARN, "stopping", "detail=\"second signal: closing requests "
                         "in flight\" in_flight=%ld", fota_metrics_in_flight_now(srv.metrics));
                break;
            }
        }
    }
    ret = 0;
out:
    fota_http_stop(http);
    /* No handler runs any more: the group-commit connection can go. */
    fota_checkin_queue_close();
    if (online)
        fota_tuf_online_stop();
    fota_store_thread_release();
    fota_server_cleanup(&srv);
    fota_log(ret == 0 ? FOTA_LOG_INFO : FOTA_LOG_ERROR, "stopped", "status=%d", ret);
    return ret;
}

/* ---- token ----------------------------------------------------------------- */

struct token_opts {
    struct fota_server_config cfg;   /* data_dir from --data-dir or --config */
    const char *scope;
    const char *name;
    const char *ttl;
    const char *positional;
};

static int token_parse(int argc, char **argv, struct token_opts *o, int *ret_help)
{
    char err[600];

    memset(o, 0, sizeof(*o));
    fota_config_defaults(&o->cfg);
    *ret_help = 0;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        const char **dst = NULL;
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            *ret_help = 1;
            return 0;
        }
        if (a[0] != '-') {
            if (o->positional != NULL)
                return usage_error("token: unexpected argument '%s'", a);
            o->positional = a;
            continue;
        }
        if (i + 1 >= argc)
            return usage_error("token: %s needs a value", a);
        if (strcmp(a, "--data-dir") == 0 || strcmp(a, "--data_dir") == 0) {
            if (fota_config_set(&o->cfg, "data_dir", argv[++i], err, sizeof(err)) != 0)
                return usage_error("token: %s", err);
            continue;
        }
        if (strcmp(a, "--config") == 0) {
            if (fota_config_load_file(&o->cfg, argv[++i], err, sizeof(err)) != 0)
                return usage_error("token: %s", err);
            continue;
        }
        if (strcmp(a, "--scope") == 0)
            dst = &o->scope;
        else if (strcmp(a, "--name") == 0)
            dst = &o->name;
        else if (strcmp(a, "--ttl") == 0)
            dst = &o->ttl;
        else
            return usage_error("token: unknown option '%s'", a);
        *dst = argv[++i];
    }
    if (o->cfg.data_dir[0] == '\0')
        return usage_error("token: --data-dir DIR is required");
    return 0;
}

static int token_store_open(const struct token_opts *o, struct fota_store **ret)
{
    char path[700];
    enum fota_store_err se;

    snprintf(path, sizeof(path), "%s/fota.db", o->cfg.data_dir);
    if (access(o->cfg.data_dir, F_OK) != 0) {
        fprintf(stderr, "fota-server token: %s: %s (run fota-server init first)\n",
                o->cfg.data_dir, strerror(errno));
        return 1;
    }
    se = fota_store_open(path, ret);
    if (se != FOTA_STORE_OK) {
        fprintf(stderr, "fota-server token: cannot open %s: %s\n", path,
                fota_store_strerror(se));
        return 1;
    }
    return 0;
}

/* Printable ASCII without spaces, quotes or backslashes: names land in logs,
 * audit entries and JSON. */
static int token_name_ok(const char *name)
{
    size_t n = strlen(name);

    if (n == 0 || n > FOTA_STORE_NAME_MAX)
        return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)name[i];
        if (c <= 0x20 || c >= 0x7f || c == '"' || c == '\\')
            return 0;
    }
    return 1;
}

static void iso_time(int64_t t, char *buf, size_t len)
{
    struct tm tm;
    time_t tt = (time_t)t;

    if (t == 0 || gmtime_r(&tt, &tm) == NULL) {
        snprintf(buf, len, "-");
        return;
    }
    strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static void token_audit(struct fota_store *st, const char *action, const char *name)
{
    struct fota_store_audit a;

    memset(&a, 0, sizeof(a));
    a.time = fota_server_now();
    snprintf(a.actor, sizeof(a.actor), "cli");
    snprintf(a.action, sizeof(a.action), "%s", action);
    snprintf(a.object, sizeof(a.object), "token/%s", name);
    if (fota_store_audit_append(st, &a, NULL) != FOTA_STORE_OK)
        fprintf(stderr, "fota-server token: warning: the audit log entry was not written\n");
}

static int token_new(const struct token_opts *o)
{
    uint8_t raw[TOKEN_BYTES], digest[FOTA_HASH_MAX_LEN];
    char b64[4 * ((TOKEN_BYTES + 2) / 3) + 1];
    char expires_text[32];
    struct fota_store_token tok;
    struct fota_store *st = NULL;
    enum fota_store_scope scope;
    enum fota_store_err se;
    int64_t ttl = TOKEN_DEFAULT_TTL_S;
    int n, ret = 1;

    if (o->scope == NULL || o->name == NULL)
        return usage_error("token new: --scope and --name are required");
    if (fota_store_scope_parse(o->scope, &scope) != FOTA_STORE_OK)
        return usage_error("token new: --scope '%s' is not read, deploy or admin", o->scope);
    if (!token_name_ok(o->name))
        return usage_error("token new: --name must be 1 to %d printable characters without "
                           "spaces or quotes", FOTA_STORE_NAME_MAX);
    if (o->ttl != NULL) {
        if (strcmp(o->ttl, "never") == 0)
            ttl = 0;
        else if (fota_config_parse_duration(o->ttl, &ttl) != 0)
            return usage_error("token new: --ttl '%s' is not a duration (90d, 12h, never)",
                               o->ttl);
    }
    if (o->positional != NULL)
        return usage_error("token new: unexpected argument '%s'", o->positional);
    if (token_store_open(o, &st) != 0)
        return 1;

    /* 256 random bits, base64url without padding: 43 characters. */
    if (RAND_bytes(raw, sizeof(raw)) != 1) {
        fprintf(stderr, "fota-server token new: no randomness available\n");
        goto out;
    }
    n = EVP_EncodeBlock((unsigned char *)b64, raw, sizeof(raw));
    if (n <= 0)
        goto out;
    while (n > 0 && b64[n - 1] == '=')
        n--;
    b64[n] = '\0';
    for (int i = 0; i < n; i++) {
        if (b64[i] == '+')
            b64[i] = '-';
        else if (b64[i] == '/')
            b64[i] = '_';
    }
    if (fota_hash(FOTA_HASH_SHA256, b64, (size_t)n, digest) != FOTA_OK)
        goto out;

    memset(&tok, 0, sizeof(tok));
    fota_hex_encode(digest, 32, tok.sha256);
    snprintf(tok.name, sizeof(tok.name), "%s", o->name);
    tok.scope = scope;
    tok.created = fota_server_now();
    tok.expires = ttl > 0 ? tok.created + ttl : 0;
    se = fota_store_token_insert(st, &tok);
    if (se == FOTA_STORE_CONFLICT) {
        fprintf(stderr, "fota-server token new: a live token named '%s' exists (revoke it "
                "first, or pick another name)\n", o->name);
        goto out;
    }
    if (se != FOTA_STORE_OK) {
        fprintf(stderr, "fota-server token new: cannot store the token: %s\n",
                fota_store_strerror(se));
        goto out;
    }
    token_audit(st, "token.create", o->name);
    iso_time(tok.expires, expires_text, sizeof(expires_text));
    printf("%s\n", b64);
    fflush(stdout);
    fprintf(stderr, "fota-server token new: token '%s' (scope %s, expires %s). It is shown "
            "only this once; the server keeps only its SHA-256.\n", o->name,
            fota_store_scope_name(scope), tok.expires ? expires_text : "never");
    ret = 0;
out:
    fota_wipe(raw, sizeof(raw));
    fota_wipe(b64, sizeof(b64));
    fota_store_close(st);
    return ret;
}

static int token_list(const struct token_opts *o)
{
    struct fota_store *st = NULL;
    struct fota_store_token *items = NULL;
    size_t n = 0;
    int more = 0;
    enum fota_store_err se;
    int64_t now = fota_server_now();

    if (o->positional != NULL || o->scope != NULL || o->name != NULL || o->ttl != NULL)
        return usage_error("token list: takes only --data-dir or --config");
    if (token_store_open(o, &st) != 0)
        return 1;
    se = fota_store_token_list(st, &items, &n, &more);
    if (se != FOTA_STORE_OK) {
        fprintf(stderr, "fota-server token list: %s\n", fota_store_strerror(se));
        fota_store_close(st);
        return 1;
    }
    printf("%-24s %-7s %-20s %-20s %s\n", "NAME", "SCOPE", "CREATED", "EXPIRES", "STATE");
    for (size_t i = 0; i < n; i++) {
        char created[32], expires[32];
        const char *state = items[i].revoked ? "revoked"
                            : (items[i].expires != 0 && items[i].expires <= now) ? "expired"
                                                                                  : "live";
        iso_time(items[i].created, created, sizeof(created));
        iso_time(items[i].expires, expires, sizeof(expires));
        printf("%-24s %-7s %-20s %-20s %s\n", items[i].name,
               fota_store_scope_name(items[i].scope) ? fota_store_scope_name(items[i].scope)
                                                     : "?",
               created, items[i].expires ? expires : "never", state);
    }
    if (more)
        printf("(more tokens than shown)\n");
    free(items);
    fota_store_close(st);
    return 0;
}

static int token_revoke(const struct token_opts *o)
{
    struct fota_store *st = NULL;
    enum fota_store_err se;
    int ret = 1;

    if (o->positional == NULL)
        return usage_error("token revoke: which token? (fota-server token revoke NAME)");
    if (o->scope != NULL || o->name != NULL || o->ttl != NULL)
        return usage_error("token revoke: takes NAME and --data-dir or --config");
    if (token_store_open(o, &st) != 0)
        return 1;
    se = fota_store_token_revoke(st, o->positional, fota_server_now());
    if (se == FOTA_STORE_OK) {
        token_audit(st, "token.revoke", o->positional);
        fprintf(stderr, "fota-server token revoke: '%s' revoked\n", o->positional);
        ret = 0;
    } else if (se == FOTA_STORE_NOT_FOUND) {
        fprintf(stderr, "fota-server token revoke: no live token named '%s'\n", o->positional);
    } else {
        fprintf(stderr, "fota-server token revoke: %s\n", fota_store_strerror(se));
    }
    fota_store_close(st);
    return ret;
}

static int cmd_token(int argc, char **argv)
{
    struct token_opts o;
    int help = 0, rc;

    if (argc < 1 || strcmp(argv[0], "--help") == 0 || strcmp(argv[0], "-h") == 0 ||
        strcmp(argv[0], "help") == 0) {
        fputs(token_usage, argc < 1 ? stderr : stdout);
        return argc < 1 ? EXIT_USAGE : 0;
    }
    rc = token_parse(argc - 1, argv + 1, &o, &help);
    if (help) {
        fputs(token_usage, stdout);
        return 0;
    }
    if (rc != 0)
        return rc;
    if (strcmp(argv[0], "new") == 0)
        return token_new(&o);
    if (strcmp(argv[0], "list") == 0)
        return token_list(&o);
    if (strcmp(argv[0], "revoke") == 0)
        return token_revoke(&o);
    return usage_error("token: unknown subcommand '%s' (new, list, revoke)", argv[0]);
}

int main(int argc, char **argv)
{
    const char *cmd = argc > 1 ? argv[1] : NULL;

    if (cmd == NULL || cmd[0] == '-') {
        if (cmd != NULL && (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0)) {
            fputs(main_usage, stdout);
            return 0;
        }
        if (cmd != NULL && strcmp(cmd, "--version") == 0) {
            printf("fota-server 0.1.0\n");
            return 0;
        }
        return cmd_serve(argc - 1, argv + 1);
    }
    if (strcmp(cmd, "help") == 0) {
        fputs(main_usage, stdout);
        return 0;
    }
    if (strcmp(cmd, "serve") == 0)
        return cmd_serve(argc - 2, argv + 2);
    if (strcmp(cmd, "token") == 0)
        return cmd_token(argc - 2, argv + 2);
    if (strcmp(cmd, "init") == 0)
        return fota_server_cmd_init(argc - 2, argv + 2);
    return usage_error("unknown command '%s'", cmd);
}
