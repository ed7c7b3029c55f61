/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The TUF 1.0.x client workflow (specification section 5, "Detailed client
 * workflow"): root chain, timestamp, snapshot, top-level targets, and the
 * lazy pre-order depth-first search of delegated targets.
 *
 * Everything here is driven through struct fota_tuf_port: no I/O of our own.
 * Each metadata file goes through one `struct check`, which collects the
 * checks that passed (logged as one FOTA_TUF_LOG_CHECK line) or the reason of
 * the first failure (errmsg + FOTA_TUF_LOG_REJECT). A file is stored only
 * after every check on it passed, and then as the exact bytes received.
 *
 * Where the specification leaves room, the choice is explained in a comment
 * at the place it is made.
 */
#include "fota/tuf.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fota/crypto.h"
#include "fota/json.h"

#if defined(__GNUC__)
#define TUF_PRINTF(fmt, args) __attribute__((format(printf, fmt, args)))
#else
#define TUF_PRINTF(fmt, args)
#endif

#define TUF_MSG_LEN 512
#define TUF_FILE_LEN 1024   /* longest metadata file name we build */
#define TUF_SHOW_LEN 72     /* untrusted strings are shown at most this long */
#define TUF_PATH_MAX 4096   /* longest target path find_target accepts */
#define PARENT_ROOT SIZE_MAX
/* Targets roles (top-level included) one client keeps in memory, as a
 * multiple of limits.max_delegations: each search may load that many, and a
 * client serves a few searches. Bounds memory to about
 * TUF_KEPT_PER_SEARCH * max_delegations * targets_max_len of metadata. */
#define TUF_KEPT_PER_SEARCH 4

enum client_state {
    STATE_NEW = 0,
    STATE_REFRESHED,
    STATE_FAILED,
};

struct loaded_role {
    char *name;      /* role name, as delegated */
    json_t *env;     /* the verified envelope {"signed","signatures"} */
    size_t parent;   /* the delegator it was verified for (PARENT_ROOT) */
};

struct fota_tuf_client {
    struct fota_tuf_port port;
    struct fota_tuf_limits limits;
    enum client_state state;
    int64_t now;                /* fixed update start time (spec 5.1) */
    json_t *root;               /* trusted envelopes, NULL until loaded */
    json_t *timestamp;
    json_t *snapshot;
    struct loaded_role *roles;  /* top-level targets and delegated roles */
    size_t n_roles;
    size_t cap_roles;
    char errmsg[TUF_FILE_LEN + 32 + 2 + TUF_MSG_LEN];   /* "<file>: <why>" */
};

/* ---- messages --------------------------------------------------------- */

struct check {
    const fota_tuf_client *c;
    const struct fota_tuf_port *port;   /* for log (client_new has no client yet) */
    char file[TUF_FILE_LEN + 32];       /* "5.snapshot.json", "local timestamp.json" */
    char why[TUF_MSG_LEN];              /* the first failure */
    char passed[TUF_MSG_LEN];           /* checks passed, "; "-separated */
    size_t passed_len;
};

static void port_log(const struct fota_tuf_port *port, enum fota_tuf_log_level level,
                     const char *fmt, ...) TUF_PRINTF(3, 4);
static void port_log(const struct fota_tuf_port *port, enum fota_tuf_log_level level,
                     const char *fmt, ...)
{
    char line[TUF_FILE_LEN + 3 * TUF_MSG_LEN];
    va_list ap;

    if (port == NULL || port->log == NULL)
        return;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    port->log(port->ctx, level, line);
}

/* Untrusted strings (role names, _type values) end up in log lines: show
 * them quoted-free, printable ASCII only, and bounded. */
static const char *show(char out[TUF_SHOW_LEN], const char *s)
{
    size_t i = 0;

    if (s == NULL)
        s = "(null)";
    for (; s[i] != '\0' && i < TUF_SHOW_LEN - 4; i++) {
        unsigned char ch = (unsigned char)s[i];
        out[i] = (ch >= 0x20 && ch < 0x7f) ? (char)ch : '?';
    }
    if (s[i] != '\0') {
        memcpy(out + i, "...", 3);
        i += 3;
    }
    out[i] = '\0';
    return out;
}

static void check_init(struct check *ck, const fota_tuf_client *c,
                       const struct fota_tuf_port *port, const char *fmt, ...) TUF_PRINTF(4, 5);
static void check_init(struct check *ck, const fota_tuf_client *c,
                       const struct fota_tuf_port *port, const char *fmt, ...)
{
    va_list ap;

    memset(ck, 0, sizeof(*ck));
    ck->c = c;
    ck->port = port;
    va_start(ap, fmt);
    vsnprintf(ck->file, sizeof(ck->file), fmt, ap);
    va_end(ap);
}

static fota_err check_fail(struct check *ck, fota_err err, const char *fmt, ...) TUF_PRINTF(3, 4);
static fota_err check_fail(struct check *ck, fota_err err, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(ck->why, sizeof(ck->why), fmt, ap);
    va_end(ap);
    return err;
}

static void check_pass(struct check *ck, const char *fmt, ...) TUF_PRINTF(2, 3);
static void check_pass(struct check *ck, const char *fmt, ...)
{
    size_t room;
    int n;
    va_list ap;

    if (ck->passed_len + 3 >= sizeof(ck->passed))
        return;
    if (ck->passed_len > 0) {
        memcpy(ck->passed + ck->passed_len, "; ", 3);
        ck->passed_len += 2;
    }
    room = sizeof(ck->passed) - ck->passed_len;
    va_start(ap, fmt);
    n = vsnprintf(ck->passed + ck->passed_len, room, fmt, ap);
    va_end(ap);
    if (n < 0)
        ck->passed[ck->passed_len] = '\0';
    else if ((size_t)n >= room)
        ck->passed_len = sizeof(ck->passed) - 1;
    else
        ck->passed_len += (size_t)n;
}

/* A rejection that ends the operation: errmsg and a REJECT line. */
static fota_err reject(fota_tuf_client *c, const struct check *ck, fota_err err)
{
    snprintf(c->errmsg, sizeof(c->errmsg), "%s: %s", ck->file, ck->why);
    port_log(&c->port, FOTA_TUF_LOG_REJECT, "%s: %s [%s]", ck->file, ck->why,
             fota_strerror(err));
    return err;
}

/* A trusted local file that cannot serve: not an error, only a note. */
static void local_unused(const fota_tuf_client *c, const struct check *ck, fota_err err)
{
    port_log(&c->port, FOTA_TUF_LOG_INFO, "%s not used: %s [%s]", ck->file, ck->why,
             fota_strerror(err));
}

static void check_done(const struct check *ck)
{
    port_log(ck->port, FOTA_TUF_LOG_CHECK, "%s: %s", ck->file, ck->passed);
}

/* ---- field access (on already validated metadata) ---------------------- */

static json_t *signed_of(const json_t *env)
{
    return json_object_get(env, "signed");
}

static int64_t version_of(const json_t *env)
{
    return (int64_t)json_integer_value(json_object_get(signed_of(env), "version"));
}

static int64_t meta_version(const json_t *mf)
{
    return (int64_t)json_integer_value(json_object_get(mf, "version"));
}

static json_t *ts_snapshot_meta(const json_t *ts_env)
{
    return json_object_get(json_object_get(signed_of(ts_env), "meta"), "snapshot.json");
}

static json_t *root_role(const json_t *root_env, const char *role)
{
    return json_object_get(json_object_get(signed_of(root_env), "roles"), role);
}

static json_t *root_keys(const json_t *root_env)
{
    return json_object_get(signed_of(root_env), "keys");
}

/* ---- strict shape checks ----------------------------------------------- */

static int is_int_at_least(const json_t *v, json_int_t min)
{
    return json_is_integer(v) && json_integer_value(v) >= min;
}

/* "1.0" or "1.0.31": two or three dot-separated decimal numbers, the first
 * of them exactly "1" (we implement 1.0.x; a later 1.y stays readable). A
 * bare "1" is refused, as python-tuf refuses it. */
static int spec_version_ok(const char *s)
{
    size_t parts = 0;
    const char *p = s;

    if (s == NULL)
        return 0;
    for (;;) {
        const char *start = p;
        while (*p >= '0' && *p <= '9')
            p++;
        if (p == start)
            return 0;
        if (parts == 0 && !(p - start == 1 && start[0] == '1'))
            return 0;
        parts++;
        if (*p == '\0')
            break;
        if (*p != '.')
            return 0;
        p++;
    }
    return parts == 2 || parts == 3;
}

static fota_err check_keys_shape(struct check *ck, const json_t *keys, const char *where)
{
    const char *keyid;
    json_t *key;

    if (!json_is_object(keys))
        return check_fail(ck, FOTA_E_PARSE, "%s \"keys\" is missing or not an object", where);
    json_object_foreach((json_t *)keys, keyid, key) {
        char sh[TUF_SHOW_LEN];
        if (!json_is_object(key) || !json_is_string(json_object_get(key, "keytype")) ||
            !json_is_string(json_object_get(key, "scheme")) ||
            !json_is_object(json_object_get(key, "keyval")))
            return check_fail(ck, FOTA_E_PARSE, "%s key %s is not a key object", where,
                              show(sh, keyid));
    }
    return FOTA_OK;
}

/* {"keyids":[unique strings],"threshold":N>=1} (other members allowed). */
static fota_err check_role_shape(struct check *ck, const json_t *role, const char *what)
{
    const json_t *keyids = json_object_get(role, "keyids");
    json_t *seen = NULL;
    fota_err err = FOTA_E_PARSE;
    size_t i;

    if (!json_is_object(role) || !json_is_array(keyids)) {
        check_fail(ck, err, "%s: \"keyids\" is missing or not an array", what);
        goto out;
    }
    if (!is_int_at_least(json_object_get(role, "threshold"), 1)) {
        check_fail(ck, err, "%s: \"threshold\" is not an integer >= 1", what);
        goto out;
    }
    /* a jansson object as a set keeps the duplicate check linear */
    seen = json_object();
    if (seen == NULL) {
        err = check_fail(ck, FOTA_E_NOMEM, "out of memory");
        goto out;
    }
    for (i = 0; i < json_array_size(keyids); i++) {
        const char *kid = json_string_value(json_array_get(keyids, i));
        if (kid == NULL) {
            check_fail(ck, err, "%s: key id %zu is not a string", what, i);
            goto out;
        }
        if (json_object_get(seen, kid) != NULL) {
            char sh[TUF_SHOW_LEN];
            check_fail(ck, err, "%s: key id %s listed twice", what, show(sh, kid));
            goto out;
        }
        if (json_object_set_new(seen, kid, json_null()) != 0) {
            err = check_fail(ck, FOTA_E_NOMEM, "out of memory");
            goto out;
        }
    }
    err = FOTA_OK;
out:
    json_decref(seen);
    return err;
}

/* METAFILES entry: {"version":N>=1, ("length":L>=0), ("hashes":{alg:hex,...})} */
static fota_err check_metafile_shape(struct check *ck, const char *name, const json_t *mf)
{
    const json_t *length, *hashes;
    const char *alg;
    json_t *hex;
    char sh[TUF_SHOW_LEN];

    if (!json_is_object(mf))
        return check_fail(ck, FOTA_E_PARSE, "meta entry %s is not an object", show(sh, name));
    if (!is_int_at_least(json_object_get(mf, "version"), 1))
        return check_fail(ck, FOTA_E_PARSE, "meta entry %s: \"version\" is not an integer >= 1",
                          show(sh, name));
    length = json_object_get(mf, "length");
    if (length != NULL && !is_int_at_least(length, 0))
        return check_fail(ck, FOTA_E_PARSE, "meta entry %s: \"length\" is not an integer >= 0",
                          show(sh, name));
    hashes = json_object_get(mf, "hashes");
    if (hashes == NULL)
        return FOTA_OK;
    if (!json_is_object(hashes) || json_object_size(hashes) == 0)
        return check_fail(ck, FOTA_E_PARSE, "meta entry %s: \"hashes\" is not a non-empty object",
                          show(sh, name));
    json_object_foreach((json_t *)hashes, alg, hex) {
        if (!json_is_string(hex)) {
            char sh2[TUF_SHOW_LEN];
            return check_fail(ck, FOTA_E_PARSE, "meta entry %s: hash %s is not a string",
                              show(sh, name), show(sh2, alg));
        }
    }
    return FOTA_OK;
}

static fota_err check_root_shape(struct check *ck, const json_t *sig)
{
    static const char *const required[] = { "root", "timestamp", "snapshot", "targets" };
    const json_t *roles = json_object_get(sig, "roles");
    const json_t *cs = json_object_get(sig, "consistent_snapshot");
    const char *name;
    json_t *role;
    fota_err err;
    size_t i;

    if (cs != NULL && !json_is_boolean(cs))
        return check_fail(ck, FOTA_E_PARSE, "\"consistent_snapshot\" is not a boolean");
    err = check_keys_shape(ck, json_object_get(sig, "keys"), "root");
    if (err != FOTA_OK)
        return err;
    if (!json_is_object(roles))
        return check_fail(ck, FOTA_E_PARSE, "\"roles\" is missing or not an object");
    for (i = 0; i < sizeof(required) / sizeof(required[0]); i++) {
        if (json_object_get(roles, required[i]) == NULL)
            return check_fail(ck, FOTA_E_PARSE, "role \"%s\" is missing from \"roles\"",
                              required[i]);
    }
    json_object_foreach((json_t *)roles, name, role) {
        char sh[TUF_SHOW_LEN];
        char what[TUF_SHOW_LEN + 16];
        int known = strcmp(name, "mirrors") == 0;
        for (i = 0; i < sizeof(required) / sizeof(required[0]); i++)
            known |= strcmp(name, required[i]) == 0;
        if (!known)
            return check_fail(ck, FOTA_E_PARSE, "unknown top-level role \"%s\"", show(sh, name));
        snprintf(what, sizeof(what), "role %s", name);
        err = check_role_shape(ck, role, what);
        if (err != FOTA_OK)
            return err;
    }
    return FOTA_OK;
}

static fota_err check_timestamp_shape(struct check *ck, const json_t *sig)
{
    const json_t *meta = json_object_get(sig, "meta");

    /* spec: the timestamp's METAFILES "MUST only include" snapshot.json */
    if (!json_is_object(meta) || json_object_size(meta) != 1 ||
        json_object_get(meta, "snapshot.json") == NULL)
        return check_fail(ck, FOTA_E_PARSE,
                          "\"meta\" must hold exactly one entry, \"snapshot.json\"");
    return check_metafile_shape(ck, "snapshot.json", json_object_get(meta, "snapshot.json"));
}

static fota_err check_snapshot_shape(struct check *ck, const json_t *sig)
{
    const json_t *meta = json_object_get(sig, "meta");
    const char *name;
    json_t *mf;
    fota_err err;

    if (!json_is_object(meta))
        return check_fail(ck, FOTA_E_PARSE, "\"meta\" is missing or not an object");
    json_object_foreach((json_t *)meta, name, mf) {
        err = check_metafile_shape(ck, name, mf);
        if (err != FOTA_OK)
            return err;
    }
    return FOTA_OK;
}

static fota_err check_target_entry_shape(struct check *ck, const char *path, const json_t *t)
{
    const json_t *hashes = json_object_get(t, "hashes");
    const json_t *custom = json_object_get(t, "custom");
    const char *alg;
    json_t *hex;
    char sh[TUF_SHOW_LEN];

    if (!json_is_object(t))
        return check_fail(ck, FOTA_E_PARSE, "target %s is not an object", show(sh, path));
    if (!is_int_at_least(json_object_get(t, "length"), 0))
        return check_fail(ck, FOTA_E_PARSE, "target %s: \"length\" is not an integer >= 0",
                          show(sh, path));
    if (!json_is_object(hashes) || json_object_size(hashes) == 0)
        return check_fail(ck, FOTA_E_PARSE, "target %s: \"hashes\" is not a non-empty object",
                          show(sh, path));
    json_object_foreach((json_t *)hashes, alg, hex) {
        if (!json_is_string(hex))
            return check_fail(ck, FOTA_E_PARSE, "target %s: hash is not a string",
                              show(sh, path));
    }
    if (custom != NULL && !json_is_object(custom))
        return check_fail(ck, FOTA_E_PARSE, "target %s: \"custom\" is not an object",
                          show(sh, path));
    return FOTA_OK;
}

/* ASCII case-insensitive equality (locale-free). */
static int ascii_case_equal(const char *a, const char *b)
{
    for (; *a != '\0' && *b != '\0'; a++, b++) {
        char x = (*a >= 'A' && *a <= 'Z') ? (char)(*a - 'A' + 'a') : *a;
        char y = (*b >= 'A' && *b <= 'Z') ? (char)(*b - 'A' + 'a') : *b;
        if (x != y)
            return 0;
    }
    return *a == *b;
}

/* A top-level role name in any letter case: the encoded name keeps ASCII
 * letters as they are, and a store that ignores case (FAT, a default macOS
 * volume) would put "Root.json" over the trusted root.json. */
static int is_top_level_name(const char *name)
{
    return ascii_case_equal(name, "root") || ascii_case_equal(name, "timestamp") ||
           ascii_case_equal(name, "snapshot") || ascii_case_equal(name, "targets");
}

static fota_err check_string_array(struct check *ck, const json_t *a, const char *what,
                                   const char *role)
{
    char sh[TUF_SHOW_LEN];
    size_t i;

    if (!json_is_array(a))
        return check_fail(ck, FOTA_E_PARSE, "delegated role %s: \"%s\" is not an array",
                          show(sh, role), what);
    for (i = 0; i < json_array_size(a); i++) {
        if (!json_is_string(json_array_get(a, i)))
            return check_fail(ck, FOTA_E_PARSE, "delegated role %s: \"%s\" holds a non-string",
                              show(sh, role), what);
    }
    return FOTA_OK;
}

static fota_err check_delegations_shape(struct check *ck, const json_t *del)
{
    const json_t *roles = json_object_get(del, "roles");
    json_t *names = NULL;
    fota_err err = FOTA_E_PARSE;
    size_t i;

    if (!json_is_object(del)) {
        check_fail(ck, err, "\"delegations\" is not an object");
        goto out;
    }
    err = check_keys_shape(ck, json_object_get(del, "keys"), "delegations");
    if (err != FOTA_OK)
        goto out;
    err = FOTA_E_PARSE;
    if (!json_is_array(roles)) {
        check_fail(ck, err, "delegations \"roles\" is missing or not an array");
        goto out;
    }
    names = json_object();
    if (names == NULL) {
        err = check_fail(ck, FOTA_E_NOMEM, "out of memory");
        goto out;
    }
    for (i = 0; i < json_array_size(roles); i++) {
        const json_t *r = json_array_get(roles, i);
        const char *name = json_string_value(json_object_get(r, "name"));
        const json_t *paths = json_object_get(r, "paths");
        const json_t *prefixes = json_object_get(r, "path_hash_prefixes");
        char sh[TUF_SHOW_LEN];
        char what[TUF_SHOW_LEN + 32];

        if (!json_is_object(r) || name == NULL) {
            check_fail(ck, err, "delegated role %zu has no string \"name\"", i);
            goto out;
        }
        /* Empty, reserved or repeated names cannot name one metadata file:
         * a role called "root" (or "Root", see is_top_level_name) would even
         * overwrite the trusted root. */
        if (name[0] == '\0' || is_top_level_name(name)) {
            err = check_fail(ck, FOTA_E_ROLE, "delegated role name \"%s\" is empty or reserved",
                             show(sh, name));
            goto out;
        }
        if (json_object_get(names, name) != NULL) {
            err = check_fail(ck, FOTA_E_ROLE, "delegated role %s is listed twice",
                             show(sh, name));
            goto out;
        }
        if (json_object_set_new(names, name, json_null()) != 0) {
            err = check_fail(ck, FOTA_E_NOMEM, "out of memory");
            goto out;
        }
        snprintf(what, sizeof(what), "delegated role %s", show(sh, name));
        err = check_role_shape(ck, r, what);
        if (err != FOTA_OK)
            goto out;
        err = FOTA_E_PARSE;
        if (!json_is_boolean(json_object_get(r, "terminating"))) {
            check_fail(ck, err, "%s: \"terminating\" is missing or not a boolean", what);
            goto out;
        }
        if ((paths == NULL) == (prefixes == NULL)) {
            check_fail(ck, err, "%s: needs exactly one of \"paths\" and \"path_hash_prefixes\"",
                       what);
            goto out;
        }
        err = check_string_array(ck, paths != NULL ? paths : prefixes,
                                 paths != NULL ? "paths" : "path_hash_prefixes", name);
        if (err != FOTA_OK)
            goto out;
    }
    err = FOTA_OK;
out:
    json_decref(names);
    return err;
}

static fota_err check_targets_shape(struct check *ck, const json_t *sig)
{
    const json_t *targets = json_object_get(sig, "targets");
    const json_t *del = json_object_get(sig, "delegations");
    const char *path;
    json_t *t;
    fota_err err;

    if (!json_is_object(targets))
        return check_fail(ck, FOTA_E_PARSE, "\"targets\" is missing or not an object");
    json_object_foreach((json_t *)targets, path, t) {
        err = check_target_entry_shape(ck, path, t);
        if (err != FOTA_OK)
            return err;
    }
    if (del == NULL)
        return FOTA_OK;
    return check_delegations_shape(ck, del);
}

/*
 * Parse buf as the envelope of metadata of the given _type and check every
 * field this client reads; no signature is checked here.
 */
static fota_err parse_metadata(struct check *ck, const uint8_t *buf, size_t len, size_t cap,
                               const char *type, json_t **ret_env)
{
    json_t *env = NULL;
    const json_t *sig;
    const char *s;
    int64_t expires;
    char sh[TUF_SHOW_LEN];
    fota_err err;

    err = fota_json_parse(buf, len, cap, FOTA_JSON_MAX_DEPTH, &env);
    if (err != FOTA_OK)
        return check_fail(ck, err, "not strict JSON (%s)", fota_strerror(err));
    err = FOTA_E_PARSE;
    sig = json_object_get(env, "signed");
    if (!json_is_object(env) || !json_is_object(sig)) {
        check_fail(ck, err, "\"signed\" is missing or not an object");
        goto out;
    }
    if (!json_is_array(json_object_get(env, "signatures"))) {
        check_fail(ck, err, "\"signatures\" is missing or not an array");
        goto out;
    }
    s = json_string_value(json_object_get(sig, "_type"));
    if (s == NULL || strcmp(s, type) != 0) {
        err = check_fail(ck, FOTA_E_TYPE, "_type is \"%s\", expected \"%s\"", show(sh, s), type);
        goto out;
    }
    s = json_string_value(json_object_get(sig, "spec_version"));
    if (!spec_version_ok(s)) {
        err = check_fail(ck, FOTA_E_TYPE, "spec_version \"%s\" is not 1.x.y", show(sh, s));
        goto out;
    }
    if (!is_int_at_least(json_object_get(sig, "version"), 1)) {
        check_fail(ck, err, "\"version\" is not an integer >= 1");
        goto out;
    }
    s = json_string_value(json_object_get(sig, "expires"));
    if (s == NULL || fota_tuf_parse_time(s, &expires) != FOTA_OK) {
        check_fail(ck, err, "\"expires\" \"%s\" is not YYYY-MM-DDTHH:MM:SSZ", show(sh, s));
        goto out;
    }
    if (strcmp(type, "root") == 0)
        err = check_root_shape(ck, sig);
    else if (strcmp(type, "timestamp") == 0)
        err = check_timestamp_shape(ck, sig);
    else if (strcmp(type, "snapshot") == 0)
        err = check_snapshot_shape(ck, sig);
    else
        err = check_targets_shape(ck, sig);
    if (err != FOTA_OK)
        goto out;
    *ret_env = env;
    env = NULL;
out:
    json_decref(env);
    return err;
}

/* ---- the individual checks --------------------------------------------- */

/* Threshold of signatures over the canonical "signed" by role's keys. */
static fota_err check_signatures(struct check *ck, const json_t *env, const json_t *keys,
                                 const json_t *role, const char *who)
{
    unsigned valid = 0;
    size_t n_keys = json_array_size(json_object_get(role, "keyids"));
    json_int_t threshold = json_integer_value(json_object_get(role, "threshold"));
    fota_err err;

    err = fota_tuf_verify_role(env, keys, role, &valid);
    if (err == FOTA_E_THRESHOLD)
        return check_fail(ck, err, "only %u of %zu keys of %s signed validly (threshold %"
                          PRId64 ")", valid, n_keys, who, (int64_t)threshold);
    if (err == FOTA_E_DUPLICATE)
        return check_fail(ck, err, "two signatures carry the same key id");
    if (err != FOTA_OK)
        return check_fail(ck, err, "signatures by %s cannot be checked (%s)", who,
                          fota_strerror(err));
    check_pass(ck, "%u of %zu keys of %s signed (threshold %" PRId64 ")", valid, n_keys,
               who, (int64_t)threshold);
    return FOTA_OK;
}

static fota_err check_expiry(struct check *ck, const json_t *env, int64_t now)
{
    const char *s = json_string_value(json_object_get(signed_of(env), "expires"));
    int64_t expires = 0;
    char now_s[21];

    if (s == NULL || fota_tuf_parse_time(s, &expires) != FOTA_OK)
        return check_fail(ck, FOTA_E_PARSE, "\"expires\" is not a valid time");
    fota_tuf_format_time(now, now_s);
    /* spec 5.4.4 and friends: expiry MUST be higher than the start time */
    if (expires <= now)
        return check_fail(ck, FOTA_E_EXPIRED, "expired at %s (update started %s)", s, now_s);
    check_pass(ck, "not expired (%s)", s);
    return FOTA_OK;
}

/* Length and hashes of buf against a METAFILES entry, when it has them. */
static fota_err check_meta_bytes(struct check *ck, const json_t *mf, const char *listed_in,
                                 const uint8_t *buf, size_t len)
{
    const json_t *length = json_object_get(mf, "length");
    const json_t *hashes = json_object_get(mf, "hashes");
    const char *alg_name;
    json_t *hex;
    char sh[TUF_SHOW_LEN];

    if (length != NULL) {
        if ((uint64_t)json_integer_value(length) != (uint64_t)len)
            return check_fail(ck, FOTA_E_LENGTH, "length %zu differs from %" PRId64 " in %s",
                              len, (int64_t)json_integer_value(length), listed_in);
        check_pass(ck, "length %zu as in %s", len, listed_in);
    }
    if (hashes == NULL)
        return FOTA_OK;
    /* every algorithm must be known before any digest counts */
    json_object_foreach((json_t *)hashes, alg_name, hex) {
        fota_hash_alg alg;
        if (fota_hash_alg_from_name(alg_name, &alg) != FOTA_OK)
            return check_fail(ck, FOTA_E_UNSUPPORTED, "unknown hash algorithm \"%s\" in %s",
                              show(sh, alg_name), listed_in);
    }
    json_object_foreach((json_t *)hashes, alg_name, hex) {
        fota_hash_alg alg;
        uint8_t want[FOTA_HASH_MAX_LEN], got[FOTA_HASH_MAX_LEN];
        const char *h = json_string_value(hex);
        size_t dlen;
        fota_err err;

        if (fota_hash_alg_from_name(alg_name, &alg) != FOTA_OK)
            return check_fail(ck, FOTA_E_UNSUPPORTED, "unknown hash algorithm");
        dlen = fota_hash_len(alg);
        if (h == NULL || fota_hex_decode(h, strlen(h), want, dlen) != FOTA_OK)
            return check_fail(ck, FOTA_E_PARSE, "%s digest in %s is not %zu hex bytes",
                              alg_name, listed_in, dlen);
        err = fota_hash(alg, buf, len, got);
        if (err != FOTA_OK)
            return check_fail(ck, err, "%s digest failed", alg_name);
        if (!fota_ct_equal(want, got, dlen))
            return check_fail(ck, FOTA_E_HASH, "%s digest differs from %s", alg_name, listed_in);
        check_pass(ck, "%s matches %s", alg_name, listed_in);
    }
    return FOTA_OK;
}

/* Same keyids, same key objects and same threshold for role in both roots. */
static int role_keys_equal(const json_t *root_a, const json_t *root_b, const char *role)
{
    const json_t *ra = root_role(root_a, role), *rb = root_role(root_b, role);
    const json_t *ka = root_keys(root_a), *kb = root_keys(root_b);
    const json_t *ida = json_object_get(ra, "keyids"), *idb = json_object_get(rb, "keyids");
    size_t i, j;

    if (!json_equal(json_object_get(ra, "threshold"), json_object_get(rb, "threshold")))
        return 0;
    if (json_array_size(ida) != json_array_size(idb))
        return 0;
    /* keyids are unique within a role (checked), so equal size + inclusion
     * is set equality; the key objects must match too, since a key id is
     * only a label here. */
    for (i = 0; i < json_array_size(ida); i++) {
        const char *kid = json_string_value(json_array_get(ida, i));
        int found = 0;
        for (j = 0; j < json_array_size(idb) && !found; j++)
            found = strcmp(kid, json_string_value(json_array_get(idb, j))) == 0;
        if (!found || !json_equal(json_object_get(ka, kid), json_object_get(kb, kid)))
            return 0;
    }
    return 1;
}

/* ---- port wrappers ------------------------------------------------------ */

/* Fetch name; FOTA_E_NOT_FOUND is returned without a message so that the
 * root loop can end on it. */
static fota_err fetch_file(fota_tuf_client *c, struct check *ck, const char *name, size_t cap,
                           uint8_t **ret_buf, size_t *ret_len)
{
    uint8_t *buf = NULL;
    size_t len = 0;
    fota_err err;

    port_log(&c->port, FOTA_TUF_LOG_INFO, "fetch %s", name);
    err = c->port.fetch(c->port.ctx, name, cap, &buf, &len);
    if (err == FOTA_OK && len > cap) {
        free(buf);
        buf = NULL;
        err = FOTA_E_LENGTH;
    }
    if (err == FOTA_E_NOT_FOUND)
        return check_fail(ck, err, "not found on the repository");
    if (err == FOTA_E_LENGTH)
        return check_fail(ck, err, "longer than the %zu-byte limit", cap);
    if (err != FOTA_OK)
        return check_fail(ck, err, "fetch failed (%s)", fota_strerror(err));
    if (buf == NULL)
        return check_fail(ck, FOTA_E_IO, "fetch returned no data");
    *ret_buf = buf;
    *ret_len = len;
    return FOTA_OK;
}

static fota_err load_local(fota_tuf_client *c, struct check *ck, const char *name, size_t cap,
                           uint8_t **ret_buf, size_t *ret_len)
{
    uint8_t *buf = NULL;
    size_t len = 0;
    fota_err err;

    err = c->port.load(c->port.ctx, name, cap, &buf, &len);
    if (err == FOTA_OK && len > cap) {
        free(buf);
        buf = NULL;
        err = FOTA_E_LENGTH;
    }
    if (err == FOTA_E_NOT_FOUND)
        return check_fail(ck, err, "not stored");
    if (err != FOTA_OK)
        return check_fail(ck, err, "cannot be loaded (%s)", fota_strerror(err));
    if (buf == NULL)
        return check_fail(ck, FOTA_E_IO, "load returned no data");
    *ret_buf = buf;
    *ret_len = len;
    return FOTA_OK;
}

static fota_err store_file(fota_tuf_client *c, struct check *ck, const char *name,
                           const uint8_t *buf, size_t len)
{
    fota_err err = c->port.store(c->port.ctx, name, buf, len);

    if (err != FOTA_OK)
        return check_fail(ck, err == FOTA_E_NOMEM ? err : FOTA_E_IO,
                          "could not be stored as %s (%s)", name, fota_strerror(err));
    check_pass(ck, "stored as %s", name);
    return FOTA_OK;
}

/* ---- root (spec 5.2, 5.3) ----------------------------------------------- */

/*
 * Check a root file. With trusted == NULL it is the stored root, checked
 * against its own keys only; otherwise it is version trusted+1 and must be
 * signed by the trusted root's root role and by its own.
 */
static fota_err check_root(struct check *ck, const json_t *trusted, const uint8_t *buf,
                           size_t len, size_t cap, json_t **ret_env)
{
    json_t *env = NULL;
    fota_err err;
    char who[64];

    err = parse_metadata(ck, buf, len, cap, "root", &env);
    if (err != FOTA_OK)
        return err;
    if (trusted != NULL) {
        snprintf(who, sizeof(who), "the root role of trusted root v%" PRId64, version_of(trusted));
        err = check_signatures(ck, env, root_keys(trusted), root_role(trusted, "root"), who);
        if (err != FOTA_OK)
            goto out;
    }
    err = check_signatures(ck, env, root_keys(env), root_role(env, "root"), "its own root role");
    if (err != FOTA_OK)
        goto out;
    if (trusted != NULL) {
        int64_t old = version_of(trusted), v = version_of(env);
        /* spec 5.3.5: exactly N+1; an equal or lower version is a replay */
        if (v <= old) {
            err = check_fail(ck, FOTA_E_ROLLBACK, "version %" PRId64 " is not higher than trusted %"
                             PRId64, v, old);
            goto out;
        }
        if (v != old + 1) {
            err = check_fail(ck, FOTA_E_VERSION, "version %" PRId64 ", expected %" PRId64, v,
                             old + 1);
            goto out;
        }
        check_pass(ck, "version %" PRId64 " follows trusted %" PRId64, v, old);
    }
    *ret_env = env;
    env = NULL;
out:
    json_decref(env);
    return err;
}

static fota_err update_root(fota_tuf_client *c)
{
    struct check ck;
    uint8_t *buf = NULL;
    size_t len = 0;
    json_t *env = NULL;
    int reached_end = 0;
    unsigned i;
    fota_err err = FOTA_OK;

    for (i = 0; i < c->limits.max_root_rotations; i++) {
        int64_t next;
        int rotated;
        char name[48];

        if (version_of(c->root) == INT64_MAX) {
            reached_end = 1;
            break;
        }
        next = version_of(c->root) + 1;

        snprintf(name, sizeof(name), "%" PRId64 ".root.json", next);
        check_init(&ck, c, &c->port, "%s", name);
        err = fetch_file(c, &ck, name, c->limits.root_max_len, &buf, &len);
        if (err == FOTA_E_NOT_FOUND) {
            port_log(&c->port, FOTA_TUF_LOG_INFO, "%s: not on the repository; root v%" PRId64
                     " is the newest", name, next - 1);
            err = FOTA_OK;
            reached_end = 1;
            break;
        }
        if (err != FOTA_OK)
            goto fail;
        err = check_root(&ck, c->root, buf, len, c->limits.root_max_len, &env);
        if (err != FOTA_OK)
            goto fail;
        rotated = !role_keys_equal(c->root, env, "timestamp") ||
                  !role_keys_equal(c->root, env, "snapshot");

        /*
         * Spec 5.3.11, fast-forward recovery, done for each root that
         * changes those keys, and BEFORE that root is stored (rather than
         * after 5.3.10): once root.json holds the new root, a later run can
         * no longer see that the keys changed. Removing first means that a
         * failed removal, a failed store or a power cut in between leaves
         * the old root stored, so the next run finds the rotation again.
         * Removing early costs nothing: this root is already verified.
         */
        if (rotated) {
            port_log(&c->port, FOTA_TUF_LOG_INFO,
                     "root v%" PRId64 ": timestamp or snapshot keys changed; removing stored "
                     "timestamp.json and snapshot.json (fast-forward recovery)",
                     version_of(env));
            err = c->port.remove(c->port.ctx, "timestamp.json");
            if (err == FOTA_OK)
                err = c->port.remove(c->port.ctx, "snapshot.json");
            if (err != FOTA_OK) {
                err = check_fail(&ck, FOTA_E_IO, "could not remove stale timestamp/snapshot (%s)",
                                 fota_strerror(err));
                goto fail;
            }
            check_pass(&ck, "stale timestamp.json and snapshot.json removed");
        }
        err = store_file(c, &ck, "root.json", buf, len);
        if (err != FOTA_OK)
            goto fail;
        check_done(&ck);
        json_decref(c->root);
        c->root = env;
        env = NULL;
        free(buf);
        buf = NULL;
    }
    if (!reached_end)
        port_log(&c->port, FOTA_TUF_LOG_INFO, "stopped after %u new root versions (limit)",
                 c->limits.max_root_rotations);

    check_init(&ck, c, &c->port, "root v%" PRId64, version_of(c->root));
    err = check_expiry(&ck, c->root, c->now);
    if (err != FOTA_OK)
        goto fail;
    check_pass(&ck, "consistent_snapshot %s",
               fota_tuf_consistent_snapshot(c) ? "true" : "false");
    check_done(&ck);
    return FOTA_OK;
fail:
    json_decref(env);
    free(buf);
    return reject(c, &ck, err);
}

/* ---- timestamp (spec 5.4) ----------------------------------------------- */

static fota_err check_timestamp_sig(const fota_tuf_client *c, struct check *ck,
                                    const uint8_t *buf, size_t len, json_t **ret_env)
{
    json_t *env = NULL;
    char who[64];
    fota_err err;

    err = parse_metadata(ck, buf, len, c->limits.timestamp_max_len, "timestamp", &env);
    if (err != FOTA_OK)
        return err;
    snprintf(who, sizeof(who), "the timestamp role of root v%" PRId64, version_of(c->root));
    err = check_signatures(ck, env, root_keys(c->root), root_role(c->root, "timestamp"), who);
    if (err != FOTA_OK) {
        json_decref(env);
        return err;
    }
    *ret_env = env;
    return FOTA_OK;
}

static fota_err update_timestamp(fota_tuf_client *c)
{
    struct check ck;
    uint8_t *buf = NULL;
    size_t len = 0;
    json_t *env = NULL;
    fota_err err;

    /* The stored timestamp, if its signature still holds, is the reference
     * for rollback checks; its expiry does not matter for that. */
    check_init(&ck, c, &c->port, "local timestamp.json");
    err = load_local(c, &ck, "timestamp.json", c->limits.timestamp_max_len, &buf, &len);
    if (err == FOTA_OK)
        err = check_timestamp_sig(c, &ck, buf, len, &env);
    if (err == FOTA_OK) {
        check_pass(&ck, "v%" PRId64 " trusted for rollback checks", version_of(env));
        check_done(&ck);
        c->timestamp = env;
        env = NULL;
    } else if (err != FOTA_E_NOT_FOUND) {
        local_unused(c, &ck, err);
    }
    free(buf);
    buf = NULL;

    check_init(&ck, c, &c->port, "timestamp.json");
    err = fetch_file(c, &ck, "timestamp.json", c->limits.timestamp_max_len, &buf, &len);
    if (err != FOTA_OK)
        goto fail;
    err = check_timestamp_sig(c, &ck, buf, len, &env);
    if (err != FOTA_OK)
        goto fail;
    if (c->timestamp != NULL) {
        int64_t old = version_of(c->timestamp), v = version_of(env);
        int64_t old_sn = meta_version(ts_snapshot_meta(c->timestamp));
        int64_t sn = meta_version(ts_snapshot_meta(env));

        if (v < old) {
            err = check_fail(&ck, FOTA_E_ROLLBACK, "version %" PRId64 " is lower than trusted %"
                             PRId64, v, old);
            goto fail;
        }
        if (v == old) {
            /* spec 5.4.3.1: same version, nothing changed; keep what we
             * trust, which must still be fresh (checked below). */
            check_pass(&ck, "version %" PRId64 " equals trusted; keeping the stored copy", v);
            check_done(&ck);
            json_decref(env);
            env = NULL;
            free(buf);
            buf = NULL;
            check_init(&ck, c, &c->port, "timestamp v%" PRId64 " (stored)", old);
            err = check_expiry(&ck, c->timestamp, c->now);
            if (err != FOTA_OK)
                goto fail;
            check_done(&ck);
            return FOTA_OK;
        }
        check_pass(&ck, "version %" PRId64 " > trusted %" PRId64, v, old);
        if (sn < old_sn) {
            err = check_fail(&ck, FOTA_E_ROLLBACK, "snapshot version %" PRId64 " is lower than %"
                             PRId64 " in trusted timestamp v%" PRId64, sn, old_sn, old);
            goto fail;
        }
        check_pass(&ck, "snapshot v%" PRId64 " >= trusted %" PRId64, sn, old_sn);
    } else {
        check_pass(&ck, "version %" PRId64 " (no trusted timestamp)", version_of(env));
    }
    err = check_expiry(&ck, env, c->now);
    if (err != FOTA_OK)
        goto fail;
    err = store_file(c, &ck, "timestamp.json", buf, len);
    if (err != FOTA_OK)
        goto fail;
    check_done(&ck);
    json_decref(c->timestamp);
    c->timestamp = env;
    free(buf);
    return FOTA_OK;
fail:
    json_decref(env);
    free(buf);
    return reject(c, &ck, err);
}

/* ---- snapshot (spec 5.5) ------------------------------------------------ */

static fota_err check_snapshot_sig(const fota_tuf_client *c, struct check *ck,
                                   const uint8_t *buf, size_t len, size_t cap, json_t **ret_env)
{
    json_t *env = NULL;
    char who[64];
    fota_err err;

    err = parse_metadata(ck, buf, len, cap, "snapshot", &env);
    if (err != FOTA_OK)
        return err;
    snprintf(who, sizeof(who), "the snapshot role of root v%" PRId64, version_of(c->root));
    err = check_signatures(ck, env, root_keys(c->root), root_role(c->root, "snapshot"), who);
    if (err != FOTA_OK) {
        json_decref(env);
        return err;
    }
    *ret_env = env;
    return FOTA_OK;
}

/* spec 5.5.5: nothing listed before may disappear or go back. */
static fota_err check_snapshot_rollback(struct check *ck, const json_t *prev, const json_t *env)
{
    const json_t *old_meta = json_object_get(signed_of(prev), "meta");
    const json_t *new_meta = json_object_get(signed_of(env), "meta");
    const char *name;
    json_t *old_mf;
    char sh[TUF_SHOW_LEN];

    json_object_foreach((json_t *)old_meta, name, old_mf) {
        const json_t *new_mf = json_object_get(new_meta, name);
        if (new_mf == NULL)
            return check_fail(ck, FOTA_E_ROLLBACK, "%s, listed in trusted snapshot v%" PRId64
                              ", is missing", show(sh, name), version_of(prev));
        if (meta_version(new_mf) < meta_version(old_mf))
            return check_fail(ck, FOTA_E_ROLLBACK, "version %" PRId64 " is lower than trusted %"
                              PRId64 " for %s", meta_version(new_mf), meta_version(old_mf),
                              show(sh, name));
    }
    check_pass(ck, "no role removed or rolled back since snapshot v%" PRId64, version_of(prev));
    return FOTA_OK;
}

static size_t cap_from_meta(const json_t *mf, size_t limit)
{
    const json_t *length = json_object_get(mf, "length");

    /* The signed length bounds the download (spec 5.5.1, 5.6.1); our own
     * limit bounds it too, so a device never takes more than it can hold. */
    if (length != NULL && (uint64_t)json_integer_value(length) < (uint64_t)limit)
        return (size_t)json_integer_value(length);
    return limit;
}

static fota_err update_snapshot(fota_tuf_client *c)
{
    const json_t *mf = ts_snapshot_meta(c->timestamp);
    int64_t want = meta_version(mf);
    size_t cap = cap_from_meta(mf, c->limits.snapshot_max_len);
    struct check ck;
    uint8_t *buf = NULL;
    size_t len = 0;
    json_t *prev = NULL, *env = NULL;
    char name[48];
    fota_err err;

    /* The stored snapshot: usable as it is when timestamp still names its
     * version and it is fresh; otherwise the reference for rollback. Its
     * hashes are not checked against the new timestamp: it verified once. */
    check_init(&ck, c, &c->port, "local snapshot.json");
    err = load_local(c, &ck, "snapshot.json", c->limits.snapshot_max_len, &buf, &len);
    if (err == FOTA_OK)
        err = check_snapshot_sig(c, &ck, buf, len, c->limits.snapshot_max_len, &prev);
    free(buf);
    buf = NULL;
    if (err == FOTA_OK) {
        if (version_of(prev) == want && check_expiry(&ck, prev, c->now) == FOTA_OK) {
            check_pass(&ck, "version %" PRId64 " as in timestamp; not fetched", want);
            check_done(&ck);
            c->snapshot = prev;
            return FOTA_OK;
        }
        check_pass(&ck, "v%" PRId64 " kept for rollback checks", version_of(prev));
        check_done(&ck);
    } else if (err != FOTA_E_NOT_FOUND) {
        local_unused(c, &ck, err);
    }

    if (fota_tuf_consistent_snapshot(c))
        snprintf(name, sizeof(name), "%" PRId64 ".snapshot.json", want);
    else
        snprintf(name, sizeof(name), "snapshot.json");
    check_init(&ck, c, &c->port, "%s", name);
    err = fetch_file(c, &ck, name, cap, &buf, &len);
    if (err != FOTA_OK)
        goto fail;
    err = check_meta_bytes(&ck, mf, "timestamp", buf, len);
    if (err != FOTA_OK)
        goto fail;
    err = check_snapshot_sig(c, &ck, buf, len, cap, &env);
    if (err != FOTA_OK)
        goto fail;
    if (version_of(env) != want) {
        err = check_fail(&ck, FOTA_E_VERSION, "version %" PRId64 ", timestamp names %" PRId64,
                         version_of(env), want);
        goto fail;
    }
    check_pass(&ck, "version %" PRId64 " as in timestamp", want);
    if (prev != NULL) {
        err = check_snapshot_rollback(&ck, prev, env);
        if (err != FOTA_OK)
            goto fail;
    }
    err = check_expiry(&ck, env, c->now);
    if (err != FOTA_OK)
        goto fail;
    err = store_file(c, &ck, "snapshot.json", buf, len);
    if (err != FOTA_OK)
        goto fail;
    check_done(&ck);
    c->snapshot = env;
    json_decref(prev);
    free(buf);
    return FOTA_OK;
fail:
    json_decref(prev);
    json_decref(env);
    free(buf);
    return reject(c, &ck, err);
}

/* ---- targets and delegated targets (spec 5.6) --------------------------- */

static const char *role_name_at(const fota_tuf_client *c, size_t idx)
{
    return idx == PARENT_ROOT ? "root" : c->roles[idx].name;
}

static fota_err find_loaded(const fota_tuf_client *c, const char *name, size_t *ret_idx)
{
    size_t i;

    for (i = 0; i < c->n_roles; i++) {
        if (strcmp(c->roles[i].name, name) == 0) {
            *ret_idx = i;
            return FOTA_OK;
        }
    }
    return FOTA_E_NOT_FOUND;
}

/* The delegation entry {"name","keyids","threshold",...} for name in the
 * delegations of the loaded role parent. */
static const json_t *delegation_entry(const fota_tuf_client *c, size_t parent, const char *name)
{
    const json_t *roles = json_object_get(
        json_object_get(signed_of(c->roles[parent].env), "delegations"), "roles");
    size_t i;

    for (i = 0; i < json_array_size(roles); i++) {
        const json_t *r = json_array_get(roles, i);
        if (strcmp(json_string_value(json_object_get(r, "name")), name) == 0)
            return r;
    }
    return NULL;
}

/* Every check of spec 5.6.2 to 5.6.5 on one targets file. */
static fota_err check_targets_file(const fota_tuf_client *c, struct check *ck,
                                   const uint8_t *buf, size_t len, size_t cap, const json_t *mf,
                                   const json_t *keys, const json_t *role, const char *who,
                                   json_t **ret_env)
{
    json_t *env = NULL;
    int64_t want = meta_version(mf);
    fota_err err;

    err = check_meta_bytes(ck, mf, "snapshot", buf, len);
    if (err != FOTA_OK)
        return err;
    err = parse_metadata(ck, buf, len, cap, "targets", &env);
    if (err != FOTA_OK)
        return err;
    err = check_signatures(ck, env, keys, role, who);
    if (err != FOTA_OK)
        goto out;
    if (version_of(env) != want) {
        err = check_fail(ck, FOTA_E_VERSION, "version %" PRId64 ", snapshot names %" PRId64,
                         version_of(env), want);
        goto out;
    }
    check_pass(ck, "version %" PRId64 " as in snapshot", want);
    err = check_expiry(ck, env, c->now);
    if (err != FOTA_OK)
        goto out;
    *ret_env = env;
    env = NULL;
out:
    json_decref(env);
    return err;
}

static fota_err add_role(fota_tuf_client *c, const char *name, json_t *env, size_t parent,
                         size_t *ret_idx)
{
    char *copy;

    if (c->n_roles == c->cap_roles) {
        size_t cap = c->cap_roles == 0 ? 8 : c->cap_roles * 2;
        struct loaded_role *r = realloc(c->roles, cap * sizeof(*r));
        if (r == NULL)
            return FOTA_E_NOMEM;
        c->roles = r;
        c->cap_roles = cap;
    }
    copy = strdup(name);
    if (copy == NULL)
        return FOTA_E_NOMEM;
    c->roles[c->n_roles].name = copy;
    c->roles[c->n_roles].env = env;
    c->roles[c->n_roles].parent = parent;
    *ret_idx = c->n_roles++;
    return FOTA_OK;
}

static size_t max_roles_kept(const fota_tuf_client *c)
{
    size_t per = c->limits.max_delegations;

    if (per > SIZE_MAX / TUF_KEPT_PER_SEARCH)
        return SIZE_MAX;
    return per * TUF_KEPT_PER_SEARCH;
}

/*
 * Make the targets role `name`, delegated by `parent` (PARENT_ROOT for the
 * top-level targets), trusted: reuse it when loaded this run, else use the
 * stored copy when it passes every check, else fetch it.
 */
static fota_err load_role(fota_tuf_client *c, const char *name, size_t parent, size_t *ret_idx)
{
    const json_t *meta = json_object_get(signed_of(c->snapshot), "meta");
    const json_t *keys, *role, *mf;
    struct check ck;
    char sh[TUF_SHOW_LEN];
    char enc[TUF_FILE_LEN], local[TUF_FILE_LEN + 8], remote[TUF_FILE_LEN + 32];
    char key[TUF_FILE_LEN], who[2 * TUF_SHOW_LEN + 32];
    uint8_t *buf = NULL;
    size_t len = 0, cap, idx;
    json_t *env = NULL;
    fota_err err;

    check_init(&ck, c, &c->port, "role %s", show(sh, name));
    if (parent == PARENT_ROOT) {
        keys = root_keys(c->root);
        role = root_role(c->root, "targets");
        snprintf(who, sizeof(who), "the targets role of root v%" PRId64, version_of(c->root));
    } else {
        keys = json_object_get(json_object_get(signed_of(c->roles[parent].env), "delegations"),
                               "keys");
        role = delegation_entry(c, parent, name);
        char sh2[TUF_SHOW_LEN];
        snprintf(who, sizeof(who), "role %s as delegated by %s", show(sh, name),
                 show(sh2, c->roles[parent].name));
        if (role == NULL) {
            err = check_fail(&ck, FOTA_E_ROLE, "not delegated by %s", who);
            goto fail;
        }
    }
    if (find_loaded(c, name, &idx) == FOTA_OK) {
        /* Loaded once per run (never fetched twice). Reached through another
         * delegator, it must also satisfy that delegator's keys: the file
         * is the same, the trust placed in it is not. */
        if (c->roles[idx].parent != parent) {
            check_init(&ck, c, &c->port, "%s (loaded)", show(sh, name));
            err = check_signatures(&ck, c->roles[idx].env, keys, role, who);
            if (err != FOTA_OK)
                goto fail;
            check_done(&ck);
        }
        *ret_idx = idx;
        return FOTA_OK;
    }
    if (c->n_roles >= max_roles_kept(c)) {
        err = check_fail(&ck, FOTA_E_LIMIT, "not loaded: this client already keeps %zu roles "
                         "(%d x max_delegations)", c->n_roles, TUF_KEPT_PER_SEARCH);
        goto fail;
    }
    err = fota_tuf_encode_name(name, enc, sizeof(enc));
    if (err != FOTA_OK) {
        err = check_fail(&ck, FOTA_E_TOO_BIG, "role name too long for a file name");
        goto fail;
    }
    if ((size_t)snprintf(key, sizeof(key), "%s.json", name) >= sizeof(key)) {
        err = check_fail(&ck, FOTA_E_TOO_BIG, "role name too long");
        goto fail;
    }
    mf = json_object_get(meta, key);
    if (mf == NULL) {
        /* spec: never a role that snapshot does not list, not even fetched */
        err = check_fail(&ck, FOTA_E_ROLE, "%s is not listed in snapshot v%" PRId64
                         "; not fetched", show(sh, key), version_of(c->snapshot));
        goto fail;
    }
    cap = cap_from_meta(mf, c->limits.targets_max_len);
    snprintf(local, sizeof(local), "%s.json", enc);

    check_init(&ck, c, &c->port, "local %s", local);
    err = load_local(c, &ck, local, cap, &buf, &len);
    if (err == FOTA_OK)
        err = check_targets_file(c, &ck, buf, len, cap, mf, keys, role, who, &env);
    free(buf);
    buf = NULL;
    if (err == FOTA_OK) {
        check_pass(&ck, "current; not fetched");
        check_done(&ck);
    } else {
        if (err != FOTA_E_NOT_FOUND)
            local_unused(c, &ck, err);
        if (fota_tuf_consistent_snapshot(c))
            snprintf(remote, sizeof(remote), "%" PRId64 ".%s", meta_version(mf), local);
        else
            snprintf(remote, sizeof(remote), "%s", local);
        check_init(&ck, c, &c->port, "%s", remote);
        err = fetch_file(c, &ck, remote, cap, &buf, &len);
        if (err != FOTA_OK)
            goto fail;
        err = check_targets_file(c, &ck, buf, len, cap, mf, keys, role, who, &env);
        if (err != FOTA_OK)
            goto fail;
        err = store_file(c, &ck, local, buf, len);
        if (err != FOTA_OK)
            goto fail;
        check_done(&ck);
        free(buf);
        buf = NULL;
    }
    err = add_role(c, name, env, parent, &idx);
    if (err != FOTA_OK) {
        check_fail(&ck, err, "out of memory");
        goto fail;
    }
    *ret_idx = idx;
    return FOTA_OK;
fail:
    json_decref(env);
    free(buf);
    return reject(c, &ck, err);
}

/* ---- path patterns -------------------------------------------------------- */

/* Length of the UTF-8 sequence starting at s (1 for anything malformed). */
static size_t u8_len(const char *s, size_t left)
{
    unsigned char b = (unsigned char)s[0];
    size_t n = b < 0x80 ? 1 : (b & 0xe0) == 0xc0 ? 2 : (b & 0xf0) == 0xe0 ? 3 :
               (b & 0xf8) == 0xf0 ? 4 : 1;
    size_t i;

    if (n > left)
        return 1;
    for (i = 1; i < n; i++) {
        if (((unsigned char)s[i] & 0xc0) != 0x80)
            return 1;
    }
    return n;
}

static uint32_t u8_decode(const char *s, size_t n)
{
    const unsigned char *u = (const unsigned char *)s;

    switch (n) {
    case 2: return ((uint32_t)(u[0] & 0x1f) << 6) | (u[1] & 0x3f);
    case 3: return ((uint32_t)(u[0] & 0x0f) << 12) | ((uint32_t)(u[1] & 0x3f) << 6) | (u[2] & 0x3f);
    case 4: return ((uint32_t)(u[0] & 0x07) << 18) | ((uint32_t)(u[1] & 0x3f) << 12) |
                   ((uint32_t)(u[2] & 0x3f) << 6) | (u[3] & 0x3f);
    default: return u[0];
    }
}

/*
 * A bracket class "[...]" at p[0] against the character ch. Returns 1/0 for
 * match/no match with *ret_next = index after the class, or -1 when there is
 * no closing ']' (then '[' is an ordinary character, as in fnmatch).
 * "[!...]" negates; a ']' right after "[" or "[!" is a member; "a-z" ranges.
 */
static int class_match(const char *p, size_t plen, uint32_t ch, size_t *ret_next)
{
    size_t i = 1;
    int negate = 0, hit = 0;

    if (i < plen && p[i] == '!') {
        negate = 1;
        i++;
    }
    {
        size_t first = i;
        for (;;) {
            size_t n;
            uint32_t lo, hi;
            if (i >= plen)
                return -1;
            if (p[i] == ']' && i > first)
                break;
            n = u8_len(p + i, plen - i);
            lo = u8_decode(p + i, n);
            i += n;
            hi = lo;
            if (i + 1 < plen && p[i] == '-' && p[i + 1] != ']') {
                n = u8_len(p + i + 1, plen - i - 1);
                hi = u8_decode(p + i + 1, n);
                i += 1 + n;
            }
            if (ch >= lo && ch <= hi)
                hit = 1;
        }
    }
    *ret_next = i + 1;
    return hit != negate;
}

/* Shell-style match of one path segment (no '/' in either). */
static int segment_match(const char *p, size_t plen, const char *s, size_t slen)
{
    size_t pi = 0, si = 0, star_p = 0, star_s = 0;
    int have_star = 0;

    while (si < slen) {
        if (pi < plen) {
            size_t n = u8_len(s + si, slen - si);
            if (p[pi] == '*') {
                have_star = 1;
                star_p = ++pi;
                star_s = si;
                continue;
            }
            if (p[pi] == '?') {
                pi++;
                si += n;
                continue;
            }
            if (p[pi] == '[') {
                size_t next = 0;
                int r = class_match(p + pi, plen - pi, u8_decode(s + si, n), &next);
                if (r == 1) {
                    pi += next;
                    si += n;
                    continue;
                }
                if (r == -1 && s[si] == '[') {
                    pi++;
                    si++;
                    continue;
                }
            } else if (p[pi] == s[si]) {
                pi++;
                si++;
                continue;
            }
        }
        if (!have_star)
            return 0;
        /* let the last '*' take one more character and retry */
        star_s += u8_len(s + star_s, slen - star_s);
        si = star_s;
        pi = star_p;
    }
    while (pi < plen && p[pi] == '*')
        pi++;
    return pi == plen;
}

/* PATHPATTERN: both split on '/', same number of segments, each segment
 * matched on its own, so no wildcard ever matches a '/'. */
static int path_match(const char *pattern, const char *path)
{
    for (;;) {
        const char *pe = strchr(pattern, '/');
        const char *se = strchr(path, '/');
        size_t plen = pe != NULL ? (size_t)(pe - pattern) : strlen(pattern);
        size_t slen = se != NULL ? (size_t)(se - path) : strlen(path);

        if ((pe == NULL) != (se == NULL))
            return 0;
        if (!segment_match(pattern, plen, path, slen))
            return 0;
        if (pe == NULL)
            return 1;
        pattern = pe + 1;
        path = se + 1;
    }
}

static int delegation_matches(const json_t *r, const char *path, const char *path_hash)
{
    const json_t *paths = json_object_get(r, "paths");
    const json_t *prefixes = json_object_get(r, "path_hash_prefixes");
    size_t i;

    if (paths != NULL) {
        for (i = 0; i < json_array_size(paths); i++) {
            if (path_match(json_string_value(json_array_get(paths, i)), path))
                return 1;
        }
        return 0;
    }
    for (i = 0; i < json_array_size(prefixes); i++) {
        const char *prefix = json_string_value(json_array_get(prefixes, i));
        size_t n = strlen(prefix);
        if (n <= 2 * 32 && strncmp(path_hash, prefix, n) == 0)
            return 1;
    }
    return 0;
}

/* ---- public API ------------------------------------------------------------ */

int fota_tuf_delegation_covers(const json_t *entry, const char *path)
{
    uint8_t d[FOTA_HASH_MAX_LEN];
    char hex[65];

    if (entry == NULL || path == NULL)
        return 0;
    if (fota_hash(FOTA_HASH_SHA256, path, strlen(path), d) != FOTA_OK)
        return 0;
    fota_hex_encode(d, 32, hex);
    return delegation_matches(entry, path, hex);
}

void fota_tuf_limits_default(struct fota_tuf_limits *l)
{
    if (l == NULL)
        return;
    l->root_max_len = 512000;
    l->timestamp_max_len = 16384;
    l->snapshot_max_len = 2000000;
    l->targets_max_len = 5000000;
    l->max_root_rotations = 256;
    l->max_delegations = 32;
}

fota_err fota_tuf_client_new(const struct fota_tuf_port *port,
                             const struct fota_tuf_limits *limits,
                             fota_tuf_client **ret_client)
{
    fota_tuf_client *c = NULL;
    struct check ck;
    uint8_t *buf = NULL;
    size_t len = 0;
    fota_err err = FOTA_E_INVALID;

    if (port == NULL || ret_client == NULL || port->fetch == NULL || port->load == NULL ||
        port->store == NULL || port->remove == NULL || port->now == NULL)
        return FOTA_E_INVALID;
    c = calloc(1, sizeof(*c));
    if (c == NULL)
        return FOTA_E_NOMEM;
    c->port = *port;
    if (limits != NULL)
        c->limits = *limits;
    else
        fota_tuf_limits_default(&c->limits);
    /* A zero limit would switch a step off (max_root_rotations 0: no root
     * update at all, which spec 5.3.1 requires) or make every file fail. */
    if (c->limits.root_max_len == 0 || c->limits.timestamp_max_len == 0 ||
        c->limits.snapshot_max_len == 0 || c->limits.targets_max_len == 0 ||
        c->limits.max_root_rotations == 0 || c->limits.max_delegations == 0)
        goto out;

    check_init(&ck, c, port, "root.json (stored)");
    err = load_local(c, &ck, "root.json", c->limits.root_max_len, &buf, &len);
    if (err == FOTA_OK)
        err = check_root(&ck, NULL, buf, len, c->limits.root_max_len, &c->root);
    if (err != FOTA_OK) {
        reject(c, &ck, err);
        goto out;
    }
    check_pass(&ck, "trusted root v%" PRId64, version_of(c->root));
    check_done(&ck);
    *ret_client = c;
    c = NULL;
out:
    free(buf);
    fota_tuf_client_free(c);
    return err;
}

void fota_tuf_client_free(fota_tuf_client *client)
{
    size_t i;

    if (client == NULL)
        return;
    json_decref(client->root);
    json_decref(client->timestamp);
    json_decref(client->snapshot);
    for (i = 0; i < client->n_roles; i++) {
        free(client->roles[i].name);
        json_decref(client->roles[i].env);
    }
    free(client->roles);
    free(client);
}

fota_err fota_tuf_refresh(fota_tuf_client *c)
{
    size_t idx;
    fota_err err;

    if (c == NULL)
        return FOTA_E_INVALID;
    if (c->state != STATE_NEW) {
        snprintf(c->errmsg, sizeof(c->errmsg), "refresh may be called once per client");
        return FOTA_E_STATE;
    }
    c->errmsg[0] = '\0';
    c->state = STATE_FAILED;
    c->now = c->port.now(c->port.ctx);

    err = update_root(c);
    if (err == FOTA_OK)
        err = update_timestamp(c);
    if (err == FOTA_OK)
        err = update_snapshot(c);
    if (err == FOTA_OK)
        err = load_role(c, "targets", PARENT_ROOT, &idx);
    if (err != FOTA_OK)
        return err;
    c->state = STATE_REFRESHED;
    port_log(&c->port, FOTA_TUF_LOG_INFO,
             "refresh done: root v%" PRId64 ", timestamp v%" PRId64 ", snapshot v%" PRId64
             ", targets v%" PRId64, version_of(c->root), version_of(c->timestamp),
             version_of(c->snapshot), version_of(c->roles[idx].env));
    return FOTA_OK;
}

/* Fill *ret from the entry `path` of role idx (shape checked at load; the
 * algorithms and digest lengths are checked here, for the one target used). */
static fota_err fill_target(fota_tuf_client *c, size_t idx, const char *path,
                            struct fota_tuf_target *ret)
{
    json_t *targets = json_object_get(signed_of(c->roles[idx].env), "targets");
    void *it = json_object_iter_at(targets, path);
    const json_t *t = json_object_iter_value(it);
    const json_t *hashes = json_object_get(t, "hashes");
    struct fota_tuf_target out;
    struct check ck;
    const char *alg_name;
    json_t *hex;
    char sh[TUF_SHOW_LEN], sh_role[TUF_SHOW_LEN];

    memset(&out, 0, sizeof(out));
    check_init(&ck, c, &c->port, "target %s in %s", show(sh, path),
               show(sh_role, c->roles[idx].name));
    json_object_foreach((json_t *)hashes, alg_name, hex) {
        struct fota_tuf_hash *h = &out.hashes[out.n_hashes];
        const char *s = json_string_value(hex);

        if (out.n_hashes == FOTA_TUF_MAX_HASHES)
            return reject(c, &ck, check_fail(&ck, FOTA_E_UNSUPPORTED, "too many hashes"));
        if (fota_hash_alg_from_name(alg_name, &h->alg) != FOTA_OK)
            return reject(c, &ck, check_fail(&ck, FOTA_E_UNSUPPORTED,
                                             "unknown hash algorithm \"%s\"",
                                             show(sh, alg_name)));
        h->digest_len = fota_hash_len(h->alg);
        if (fota_hex_decode(s, strlen(s), h->digest, h->digest_len) != FOTA_OK)
            return reject(c, &ck, check_fail(&ck, FOTA_E_PARSE, "%s digest is not %zu hex bytes",
                                             alg_name, h->digest_len));
        h->name = alg_name;
        h->hex = s;
        out.n_hashes++;
    }
    out.path = json_object_iter_key(it);
    out.length = (uint64_t)json_integer_value(json_object_get(t, "length"));
    out.custom = json_object_get(t, "custom");
    out.role = c->roles[idx].name;
    check_pass(&ck, "length %" PRIu64 ", %zu hash%s", out.length, out.n_hashes,
               out.n_hashes == 1 ? "" : "es");
    check_done(&ck);
    *ret = out;
    return FOTA_OK;
}

struct pending {
    const char *name;   /* borrowed from the delegating role's JSON */
    size_t parent;      /* index in client->roles, or PARENT_ROOT */
};

static fota_err push_pending(struct pending **v, size_t *n, size_t *cap, struct pending p)
{
    if (*n == *cap) {
        size_t ncap = *cap == 0 ? 16 : *cap * 2;
        struct pending *nv = realloc(*v, ncap * sizeof(*nv));
        if (nv == NULL)
            return FOTA_E_NOMEM;
        *v = nv;
        *cap = ncap;
    }
    (*v)[(*n)++] = p;
    return FOTA_OK;
}

/*
 * Spec 5.6.7: pre-order depth-first search, in the order python-tuf's
 * reference client walks it: pop, skip visited (role, parent) pairs, load,
 * look the path up, then push the matching delegations so that the first of
 * them is visited next; a matching terminating delegation drops every role
 * still waiting and ends the collection.
 */
fota_err fota_tuf_find_target(fota_tuf_client *c, const char *path,
                              struct fota_tuf_target *ret_target)
{
    struct pending *stack = NULL, *visited = NULL, *kids = NULL;
    size_t n_stack = 0, cap_stack = 0, n_visited = 0, cap_visited = 0, n_kids = 0, cap_kids = 0;
    unsigned budget;
    uint8_t digest[FOTA_HASH_MAX_LEN];
    char path_hash[2 * 32 + 1];
    char sh[TUF_SHOW_LEN];
    struct check ck;
    fota_err err;

    if (c == NULL || path == NULL || ret_target == NULL)
        return FOTA_E_INVALID;
    c->errmsg[0] = '\0';
    if (c->state != STATE_REFRESHED) {
        snprintf(c->errmsg, sizeof(c->errmsg), "find_target needs a successful refresh first");
        return FOTA_E_STATE;
    }
    check_init(&ck, c, &c->port, "target %s", show(sh, path));
    if (strlen(path) > TUF_PATH_MAX)
        return reject(c, &ck, check_fail(&ck, FOTA_E_INVALID, "path longer than %d bytes",
                                         TUF_PATH_MAX));
    err = fota_hash(FOTA_HASH_SHA256, path, strlen(path), digest);
    if (err != FOTA_OK)
        return reject(c, &ck, check_fail(&ck, err, "cannot hash the path"));
    fota_hex_encode(digest, 32, path_hash);

    err = push_pending(&stack, &n_stack, &cap_stack, (struct pending){ "targets", PARENT_ROOT });
    if (err != FOTA_OK)
        goto nomem;
    budget = c->limits.max_delegations;
    while (budget > 0 && n_stack > 0) {
        struct pending cur = stack[--n_stack];
        const json_t *sig, *roles;
        size_t i, idx;
        int seen = 0;

        for (i = 0; i < n_visited && !seen; i++)
            seen = strcmp(visited[i].name, cur.name) == 0 &&
                   strcmp(role_name_at(c, visited[i].parent), role_name_at(c, cur.parent)) == 0;
        if (seen)
            continue;
        err = load_role(c, cur.name, cur.parent, &idx);
        if (err != FOTA_OK)
            goto out;
        sig = signed_of(c->roles[idx].env);
        if (json_object_get(json_object_get(sig, "targets"), path) != NULL) {
            err = fill_target(c, idx, path, ret_target);
            goto out;
        }
        err = push_pending(&visited, &n_visited, &cap_visited, cur);
        if (err != FOTA_OK)
            goto nomem;
        budget--;

        roles = json_object_get(json_object_get(sig, "delegations"), "roles");
        n_kids = 0;
        for (i = 0; i < json_array_size(roles); i++) {
            const json_t *r = json_array_get(roles, i);
            if (!delegation_matches(r, path, path_hash))
                continue;
            err = push_pending(&kids, &n_kids, &cap_kids,
                               (struct pending){ json_string_value(json_object_get(r, "name")),
                                                 idx });
            if (err != FOTA_OK)
                goto nomem;
            if (json_is_true(json_object_get(r, "terminating"))) {
                n_stack = 0;
                break;
            }
        }
        while (n_kids > 0) {
            err = push_pending(&stack, &n_stack, &cap_stack, kids[--n_kids]);
            if (err != FOTA_OK)
                goto nomem;
        }
    }
    /* Out of budget with roles left: FOTA_E_LIMIT says why the search ended;
     * an exhausted tree is a plain "no such target". */
    if (n_stack > 0)
        err = reject(c, &ck, check_fail(&ck, FOTA_E_LIMIT, "not found in the %u roles searched "
                                        "(max_delegations); %zu roles not visited",
                                        c->limits.max_delegations, n_stack));
    else
        err = reject(c, &ck, check_fail(&ck, FOTA_E_NO_TARGET, "no trusted role lists it"));
    goto out;
nomem:
    err = reject(c, &ck, check_fail(&ck, FOTA_E_NOMEM, "out of memory"));
out:
    free(stack);
    free(visited);
    free(kids);
    return err;
}

int fota_tuf_consistent_snapshot(const fota_tuf_client *client)
{
    if (client == NULL || client->root == NULL)
        return 0;
    return json_is_true(json_object_get(signed_of(client->root), "consistent_snapshot"));
}

int64_t fota_tuf_version(const fota_tuf_client *client, const char *role)
{
    size_t idx;

    if (client == NULL || role == NULL)
        return 0;
    if (strcmp(role, "root") == 0)
        return client->root != NULL ? version_of(client->root) : 0;
    if (strcmp(role, "timestamp") == 0)
        return client->timestamp != NULL ? version_of(client->timestamp) : 0;
    if (strcmp(role, "snapshot") == 0)
        return client->snapshot != NULL ? version_of(client->snapshot) : 0;
    if (find_loaded(client, role, &idx) == FOTA_OK)
        return version_of(client->roles[idx].env);
    return 0;
}

const char *fota_tuf_errmsg(const fota_tuf_client *client)
{
    if (client == NULL)
        return "";
    return client->errmsg;
}
