/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The commands that edit staged roles: add-target, remove-target, delegate,
 * bump, rotate. Each loads the staged envelope, keeps a copy of "signed",
 * edits, and hands both to cli_role_commit(), which applies the version and
 * expiry rules and writes the file.
 */
#include <errno.h>
#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "fota/json.h"
#include "fota/tuf.h"
#include "fota_posix.h"

static const char add_target_usage[] =
    "Usage: fota repo add-target FILE [--repo DIR] [--name NAME] [--role ROLE] [--custom JSON]\n"
    "\n"
    "Copy FILE into targets/ as <dir/>SHA256.<basename> (and at <dir/>basename\n"
    "too when consistent snapshots are off), hashing it while it is copied, and\n"
    "list it in staged ROLE with its length, sha256 and sha512 hashes. An entry\n"
    "of the same name is replaced. The role's signatures are cleared.\n"
    "\n"
    "  --name NAME    target path (default: FILE's basename); may contain '/'\n"
    "  --role ROLE    targets role to list it in (default: targets)\n"
    "  --custom JSON  a JSON object stored as the target's \"custom\" field\n";

static const char remove_target_usage[] =
    "Usage: fota repo remove-target NAME [--repo DIR] [--role ROLE]\n"
    "\n"
    "Remove target NAME from staged ROLE (default: targets). The file stays in\n"
    "targets/, where older metadata may still point to it.\n";

static const char delegate_usage[] =
    "Usage: fota repo delegate [--repo DIR] [--from ROLE] --name NAME --key PUB [--key PUB ...]\n"
    "                          [--threshold N] (--path PATTERN [...] | --path-hash-prefix HEX [...])\n"
    "                          [--terminating]\n"
    "\n"
    "Delegate target paths from staged ROLE (default: targets) to the role NAME:\n"
    "its keys go into ROLE's delegations.keys, and the role is appended to\n"
    "delegations.roles (replaced in place if ROLE already delegates NAME).\n"
    "Creates staged NAME (version 1, no targets) if it does not exist yet.\n"
    "\n"
    "  --key PUB               a key of NAME (a .pub file or a private PEM)\n"
    "  --threshold N           signatures NAME needs (default 1)\n"
    "  --path PATTERN          target paths NAME may sign ('*' and '?' stop at '/')\n"
    "  --path-hash-prefix HEX  or: prefixes of the sha256 hex of the target path\n"
    "  --terminating           a search stops at NAME if its paths match\n";

static const char bump_usage[] =
    "Usage: fota repo bump ROLE [--repo DIR] [--expires EXPIRY]\n"
    "\n"
    "Mark staged ROLE (root, targets or a delegated role) changed without other\n"
    "edits: it is published as a new version, with a new expiry (the role's\n"
    "default, or EXPIRY), and its signatures are cleared. Use it to renew a\n"
    "role before it expires, or to re-sign it after its keys changed.\n"
    "snapshot and timestamp are renewed by every 'fota repo publish'.\n";

static const char rotate_usage[] =
    "Usage: fota repo rotate ROLE [--repo DIR] [--add-key PUB ...] [--remove-key PUB|KEYID ...]\n"
    "                        [--threshold N] [--expires EXPIRY]\n"
    "\n"
    "Change the keys or threshold of a top-level ROLE (root, targets, snapshot,\n"
    "timestamp) in staged root.json, which becomes the next root version. It\n"
    "must then be signed by the threshold of the published root's keys AND of\n"
    "its own before 'fota repo publish' accepts it.\n"
    "\n"
    "  --add-key PUB          add a key (a .pub file or a private PEM)\n"
    "  --remove-key PUB|KEYID remove a key, named by a key file or its key id\n"
    "  --threshold N          the role's new threshold (1..number of keys)\n"
    "  --expires EXPIRY       expiry of the new root (default 365d)\n";

/* ---- shared -------------------------------------------------------------- */

/* Load staged ROLE to edit it, with a copy of its "signed" part taken
 * before any edit (what cli_role_commit compares against). */
static int load_for_edit(const char *cmd, struct cli_repo *repo, const char *role,
                         json_t **ret_env, json_t **ret_before)
{
    json_t *env = NULL;
    json_t *before;

    if (cli_repo_load_staged(cmd, repo, role, &env) != CLI_OK)
        return CLI_FAIL;
    before = json_deep_copy(json_object_get(env, "signed"));
    if (before == NULL) {
        json_decref(env);
        cli_error(cmd, role, "out of memory");
        return CLI_FAIL;
    }
    *ret_env = env;
    *ret_before = before;
    return CLI_OK;
}

/* load_for_edit, after checking that ROLE is a targets role. */
static int load_targets_role(const char *cmd, struct cli_repo *repo, const char *role,
                             json_t **ret_env, json_t **ret_before)
{
    if (!cli_repo_is_targets_role(repo, role)) {
        cli_error(cmd, role, "not a targets role of this repository");
        return CLI_FAIL;
    }
    return load_for_edit(cmd, repo, role, ret_env, ret_before);
}

static void print_commit(const char *role, const json_t *env, int changed)
{
    if (!changed) {
        printf("%s: unchanged (v%lld)\n", role, (long long)cli_env_version(env));
        return;
    }
    printf("staged %s v%lld (expires %s), signatures cleared: sign it with 'fota repo sign %s'\n",
           role, (long long)cli_env_version(env), cli_env_expires(env), role);
}

/* ---- add-target ---------------------------------------------------------- */

/* A target path: "/"-separated components, none empty, "." or "..", and no
 * control characters, so that it maps onto a file under targets/. */
static int valid_target_name(const char *name)
{
    size_t len = strlen(name);
    const char *c = name;

    if (len == 0 || len > CLI_MAX_NAME)
        return 0;
    for (size_t i = 0; i < len; i++) {
        if ((unsigned char)name[i] < 0x20 || name[i] == 0x7f)
            return 0;
    }
    for (;;) {
        const char *slash = strchr(c, '/');
        size_t n = slash != NULL ? (size_t)(slash - c) : strlen(c);

        if (n == 0 || (n == 1 && c[0] == '.') || (n == 2 && c[0] == '.' && c[1] == '.'))
            return 0;
        /* room for "<64 hex>." in front of the basename in a 255-byte name */
        if (slash == NULL)
            return n <= 180;
        c = slash + 1;
    }
}

struct target_digest {
    uint64_t length;
    char sha256[2 * 32 + 1];
    char sha512[2 * 64 + 1];
};

/* Everything read from the source goes through the hashes (when set) into
 * the file being written. */
struct copy_sink {
    struct fota_posix_atomic *out;
    fota_hash_ctx *h256, *h512; /* NULL: copy only */
    uint64_t length;
};

static fota_err copy_sink_feed(void *ctx, const uint8_t *data, size_t len)
{
    struct copy_sink *s = ctx;

    if (s->h256 != NULL && (fota_hash_update(s->h256, data, len) != FOTA_OK ||
                            fota_hash_update(s->h512, data, len) != FOTA_OK))
        return FOTA_E_CRYPTO;
    s->length += len;
    return fota_posix_atomic_write(s->out, data, len);
}

/* Copy src into targets/<dir of name>/HASH.<basename>, hashing on the way:
 * the file is read once and never held whole in memory. */
static int copy_target(const char *cmd, const char *src, const char *targets_dir,
                       const char *name, int consistent, struct target_digest *ret_digest,
                       char **ret_stored)
{
    const char *base = strrchr(name, '/');
    char *dst_dir = NULL, *final_path = NULL, *plain_path = NULL, *stored_name = NULL;
    struct fota_posix_atomic tmp = {.fd = -1, .dir_fd = -1};
    fota_hash_ctx h256, h512;
    int have256 = 0, have512 = 0;
    uint8_t d256[FOTA_HASH_MAX_LEN], d512[FOTA_HASH_MAX_LEN];
    struct target_digest digest = {0};
    struct copy_sink sink = {&tmp, &h256, &h512, 0};
    struct stat st;
    fota_err err;
    int status = CLI_FAIL;

    base = base != NULL ? base + 1 : name;
    dst_dir = base == name ? strdup(targets_dir)
                           : cli_pathf("%s/%.*s", targets_dir, (int)(base - 1 - name), name);
    if (dst_dir == NULL)
        goto nomem;

    /* Check the source before creating anything under targets/. */
    if (stat(src, &st) != 0) {
        cli_error(cmd, src, "%s", strerror(errno));
        goto out;
    }
    if (!S_ISREG(st.st_mode)) {
        cli_error(cmd, src, "not a regular file");
        goto out;
    }
    err = fota_posix_mkdirs(dst_dir);
    if (err != FOTA_OK) {
        cli_error(cmd, dst_dir, "cannot create directory: %s", cli_io_reason(err));
        goto out;
    }
    plain_path = cli_pathf("%s/%s", dst_dir, base);
    if (plain_path == NULL)
        goto nomem;
    /* Opened under the plain name; committed under the hashed one, known
     * only once the whole file has been read. */
    err = fota_posix_atomic_open_path(&tmp, plain_path, 0644, 0);
    if (err != FOTA_OK) {
        cli_error(cmd, dst_dir, "cannot create a file: %s", cli_io_reason(err));
        goto out;
    }
    if (fota_hash_init(&h256, FOTA_HASH_SHA256) != FOTA_OK)
        goto crypto;
    have256 = 1;
    if (fota_hash_init(&h512, FOTA_HASH_SHA512) != FOTA_OK)
        goto crypto;
    have512 = 1;
    err = fota_posix_file_stream(src, UINT64_MAX, copy_sink_feed, &sink);
    if (err == FOTA_E_CRYPTO)
        goto crypto;
    if (err != FOTA_OK) {
        cli_error(cmd, src, "copy failed: %s", cli_io_reason(err));
        goto out;
    }
    digest.length = sink.length;
    have256 = 0;
    if (fota_hash_final(&h256, d256) != FOTA_OK)
        goto crypto;
    have512 = 0;
    if (fota_hash_final(&h512, d512) != FOTA_OK)
        goto crypto;
    fota_hex_encode(d256, 32, digest.sha256);
    fota_hex_encode(d512, 64, digest.sha512);

    stored_name = cli_pathf("%s.%s", digest.sha256, base);
    if (stored_name == NULL)
        goto nomem;
    final_path = cli_path(dst_dir, stored_name);
    if (final_path == NULL)
        goto nomem;
    err = fota_posix_atomic_commit_as(&tmp, stored_name);
    if (err != FOTA_OK) {
        cli_error(cmd, final_path, "%s", cli_io_reason(err));
        goto out;
    }

    if (!consistent) {
        /* Without consistent snapshots clients fetch the plain name: copy
         * the stored file (not src, which may have changed since). */
        struct copy_sink again = {&tmp, NULL, NULL, 0};

        err = fota_posix_atomic_open_path(&tmp, plain_path, 0644, 0);
        if (err == FOTA_OK)
            err = fota_posix_file_stream(final_path, digest.length, copy_sink_feed, &again);
        if (err == FOTA_OK && again.length != digest.length)
            err = FOTA_E_LENGTH;
        if (err == FOTA_OK)
            err = fota_posix_atomic_commit(&tmp);
        if (err != FOTA_OK) {
            cli_error(cmd, plain_path, "%s", cli_io_reason(err));
            goto out;
        }
    }
    *ret_digest = digest;
    *ret_stored = final_path;
    final_path = NULL;
    status = CLI_OK;
    goto out;
crypto:
    cli_error(cmd, src, "hashing failed: %s", fota_strerror(FOTA_E_CRYPTO));
    goto out;
nomem:
    cli_error(cmd, NULL, "out of memory");
out:
    if (have256)
        fota_hash_abort(&h256);
    if (have512)
        fota_hash_abort(&h512);
    fota_posix_atomic_abort(&tmp);
    free(dst_dir);
    free(final_path);
    free(plain_path);
    free(stored_name);
    return status;
}

/* 1 when a delegation's paths or path_hash_prefixes cover name. */
static int delegation_covers(const json_t *delegation, const char *name)
{
    const json_t *paths = json_object_get(delegation, "paths");
    const json_t *prefixes = json_object_get(delegation, "path_hash_prefixes");
    const json_t *p;
    size_t i;

    json_array_foreach(paths, i, p) {
        if (json_is_string(p) && fnmatch(json_string_value(p), name, FNM_PATHNAME) == 0)
            return 1;
    }
    if (json_array_size(prefixes) > 0) {
        uint8_t d[FOTA_HASH_MAX_LEN];
        char hex[2 * 32 + 1];

        if (fota_hash(FOTA_HASH_SHA256, name, strlen(name), d) != FOTA_OK)
            return 0;
        fota_hex_encode(d, 32, hex);
        json_array_foreach(prefixes, i, p) {
            const char *s = json_string_value(p);
            if (s != NULL && strncmp(hex, s, strlen(s)) == 0)
                return 1;
        }
    }
    return 0;
}

static void warn_if_not_delegated(const char *cmd, const struct cli_repo *repo, const char *role,
                                  const char *name)
{
    const char *from = cli_repo_delegator(repo, role);
    json_t *delegator = NULL;
    const json_t *d;

    if (from == NULL || cli_repo_load_staged(cmd, repo, from, &delegator) != CLI_OK)
        return;
    d = cli_find_delegation(delegator, role);
    if (d != NULL && !delegation_covers(d, name))
        fprintf(stderr,
                "fota: %s: warning: %s is not among the paths %s delegates to %s; clients "
                "will not look for it there\n",
                cmd, name, from, role);
    json_decref(delegator);
}

int cli_repo_add_target(int argc, char **argv)
{
    static const char *cmd = "repo add-target";
    static const struct cli_optspec spec[] = {
        {"--repo", CLI_OPT_VALUE},
        {"--name", CLI_OPT_VALUE},
        {"--role", CLI_OPT_VALUE},
        {"--custom", CLI_OPT_VALUE},
    };
    struct cli_args args = {0};
    struct cli_repo repo = {0};
    json_t *env = NULL, *before = NULL, *root = NULL, *custom = NULL, *entry = NULL;
    struct target_digest digest;
    char *stored = NULL;
    char *targets_dir = NULL;
    const char *file, *name, *role;
    int consistent;
    int changed = 0;
    int status;

    status = cli_parse(cmd, add_target_usage, spec, 4, argc, argv, 1, 1, &args);
    if (status != CLI_OK)
        return status;
    status = CLI_USAGE;
    file = args.pos[0];
    if (args.opt[1].count > 0) {
        name = args.opt[1].value;
    } else {
        const char *slash = strrchr(file, '/');
        name = slash != NULL ? slash + 1 : file;
    }
    role = args.opt[2].count > 0 ? args.opt[2].value : "targets";
    if (!valid_target_name(name)) {
        cli_error(cmd, args.opt[1].count > 0 ? "--name" : file,
                  "'%s' is not a valid target path (empty, '.' or '..' component, control "
                  "character, or too long)",
                  name);
        goto out;
    }
    if (args.opt[3].count > 0) {
        const char *s = args.opt[3].value;
        char *canon = NULL;
        size_t canon_len = 0;
        fota_err err = fota_json_parse((const uint8_t *)s, strlen(s), CLI_MAX_CUSTOM,
                                       FOTA_JSON_MAX_DEPTH, &custom);
        if (err == FOTA_OK && !json_is_object(custom))
            err = FOTA_E_PARSE;
        /* Refuse now what could not be signed later (real numbers). */
        if (err == FOTA_OK)
            err = fota_json_canonical(custom, CLI_MAX_CUSTOM, &canon, &canon_len);
        free(canon);
        if (err != FOTA_OK) {
            cli_error(cmd, "--custom", "not a JSON object TUF can sign: %s", fota_strerror(err));
            goto out;
        }
    }

    status = cli_repo_open(cmd, args.opt[0].value, &repo);
    if (status != CLI_OK)
        goto out;
    status = CLI_FAIL;
    if (load_targets_role(cmd, &repo, role, &env, &before) != CLI_OK ||
        cli_repo_load_staged(cmd, &repo, "root", &root) != CLI_OK)
        goto out;
    consistent = json_is_true(json_object_get(json_object_get(root, "signed"),
                                              "consistent_snapshot"));
    targets_dir = cli_path(repo.dir, "targets");
    if (targets_dir == NULL)
        goto out;
    if (copy_target(cmd, file, targets_dir, name, consistent, &digest, &stored) != CLI_OK)
        goto out;

    entry = json_pack("{s:I,s:{s:s,s:s}}", "length", (json_int_t)digest.length, "hashes",
                      "sha256", digest.sha256, "sha512", digest.sha512);
    if (entry == NULL || (custom != NULL && json_object_set(entry, "custom", custom) != 0) ||
        json_object_set(json_object_get(json_object_get(env, "signed"), "targets"), name,
                        entry) != 0) {
        cli_error(cmd, name, "out of memory");
        goto out;
    }
    if (cli_role_commit(cmd, &repo, role, env, before, NULL, 0, &changed) != CLI_OK)
        goto out;
    printf("stored %s (%llu bytes, sha256 %s)\n", stored, (unsigned long long)digest.length,
           digest.sha256);
    printf("%s: target %s\n", role, name);
    print_commit(role, env, changed);
    warn_if_not_delegated(cmd, &repo, role, name);
    status = CLI_OK;
out:
    free(stored);
    free(targets_dir);
    json_decref(entry);
    json_decref(custom);
    json_decref(env);
    json_decref(before);
    json_decref(root);
    cli_repo_close(&repo);
    cli_args_free(&args);
    return status;
}

/* ---- remove-target ------------------------------------------------------- */

int cli_repo_remove_target(int argc, char **argv)
{
    static const char *cmd = "repo remove-target";
    static const struct cli_optspec spec[] = {
        {"--repo", CLI_OPT_VALUE},
        {"--role", CLI_OPT_VALUE},
    };
    struct cli_args args = {0};
    struct cli_repo repo = {0};
    json_t *env = NULL, *before = NULL, *targets;
    const char *name, *role;
    int changed = 0;
    int status;

    status = cli_parse(cmd, remove_target_usage, spec, 2, argc, argv, 1, 1, &args);
    if (status != CLI_OK)
        return status;
    name = args.pos[0];
    role = args.opt[1].count > 0 ? args.opt[1].value : "targets";
    status = cli_repo_open(cmd, args.opt[0].value, &repo);
    if (status != CLI_OK)
        goto out;
    status = CLI_FAIL;
    if (load_targets_role(cmd, &repo, role, &env, &before) != CLI_OK)
        goto out;
    targets = json_object_get(json_object_get(env, "signed"), "targets");
    if (json_object_get(targets, name) == NULL) {
        cli_error(cmd, name, "not a target of staged %s", role);
        goto out;
    }
    json_object_del(targets, name);
    if (cli_role_commit(cmd, &repo, role, env, before, NULL, 0, &changed) != CLI_OK)
        goto out;
    printf("%s: removed target %s\n", role, name);
    print_commit(role, env, changed);
    status = CLI_OK;
out:
    json_decref(env);
    json_decref(before);
    cli_repo_close(&repo);
    cli_args_free(&args);
    return status;
}

/* ---- delegate ------------------------------------------------------------ */

/* Role names map to metadata file names "<encoded>.json" and
 * "V.<encoded>.json". A name starting with digits and a dot ("1.root") could
 * collide with a versioned file of another role, and top-level names with
 * the top-level files, so both are refused. */
static int valid_role_name(const char *name)
{
    char enc[CLI_MAX_ENCODED_ROLE + 1];
    size_t digits = 0;

    if (name[0] == '\0' || cli_is_top_role(name))
        return 0;
    while (name[digits] >= '0' && name[digits] <= '9')
        digits++;
    if (digits > 0 && name[digits] == '.')
        return 0;
    for (const char *p = name; *p != '\0'; p++) {
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            return 0;
    }
    return fota_tuf_encode_name(name, enc, sizeof enc) == FOTA_OK;
}

static int valid_hash_prefix(char *hex)
{
    size_t len = strlen(hex);

    if (len == 0 || len > 64)
        return 0;
    for (size_t i = 0; i < len; i++) {
        char c = hex[i];
        if (c >= 'A' && c <= 'F')
            hex[i] = (char)(c - 'A' + 'a');
        else if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
            return 0;
    }
    return 1;
}

static int create_delegated_role(const char *cmd, struct cli_repo *repo, const char *name,
                                 int *ret_created)
{
    char *path = cli_repo_staged_path(repo, name);
    char expires[21];
    struct stat st;
    json_t *env = NULL;
    int status = CLI_FAIL;

    *ret_created = 0;
    if (path == NULL) {
        cli_error(cmd, name, "bad role name");
        goto out;
    }
    if (lstat(path, &st) == 0) {
        status = CLI_OK; /* kept: a delegation is being re-defined */
        goto out;
    }
    if (cli_repo_default_expires(cmd, repo, name, expires) != CLI_OK)
        goto out;
    env = json_pack("{s:{s:s,s:s,s:i,s:s,s:{}},s:[]}", "signed", "_type", "targets",
                    "spec_version", CLI_SPEC_VERSION, "version", 1, "expires", expires, "targets",
                    "signatures");
    if (env == NULL) {
        cli_error(cmd, name, "out of memory");
        goto out;
    }
    status = cli_repo_save_staged(cmd, repo, name, env);
    *ret_created = status == CLI_OK;
out:
    json_decref(env);
    free(path);
    return status;
}

int cli_repo_delegate(int argc, char **argv)
{
    static const char *cmd = "repo delegate";
    static const struct cli_optspec spec[] = {
        {"--repo", CLI_OPT_VALUE},             /* 0 */
        {"--from", CLI_OPT_VALUE},             /* 1 */
        {"--name", CLI_OPT_VALUE | CLI_OPT_REQUIRED}, /* 2 */
        {"--key", CLI_OPT_MULTI | CLI_OPT_REQUIRED},  /* 3 */
        {"--threshold", CLI_OPT_VALUE},        /* 4 */
        {"--path", CLI_OPT_MULTI},             /* 5 */
        {"--path-hash-prefix", CLI_OPT_MULTI}, /* 6 */
        {"--terminating", CLI_OPT_FLAG},       /* 7 */
    };
    struct cli_args args = {0};
    struct cli_repo repo = {0};
    struct cli_pubkey *keys = NULL;
    size_t nkeys = 0;
    unsigned threshold = 1;
    json_t *env = NULL, *before = NULL, *patterns = NULL, *role_def = NULL;
    json_t *signed_part, *delegations, *dkeys, *droles;
    const char *from, *name, *existing;
    size_t i;
    int replaced = 0, created = 0, changed = 0;
    int status;

    status = cli_parse(cmd, delegate_usage, spec, 8, argc, argv, 0, 0, &args);
    if (status != CLI_OK)
        return status;
    status = CLI_USAGE;
    from = args.opt[1].count > 0 ? args.opt[1].value : "targets";
    name = args.opt[2].value;
    if (!valid_role_name(name)) {
        cli_error(cmd, "--name",
                  "'%s' cannot be a delegated role name (empty, a top-level role, control "
                  "characters, starts with digits and '.', or too long)",
                  name);
        goto out;
    }
    if ((args.opt[5].count > 0) == (args.opt[6].count > 0)) {
        cli_error(cmd, "--path", "give either --path or --path-hash-prefix (one or more)");
        goto out;
    }
    patterns = json_array();
    if (patterns == NULL)
        goto out;
    for (i = 0; i < args.opt[5].count; i++) {
        if (args.opt[5].values[i][0] == '\0') {
            cli_error(cmd, "--path", "empty pattern");
            goto out;
        }
        json_array_append_new(patterns, json_string(args.opt[5].values[i]));
    }
    for (i = 0; i < args.opt[6].count; i++) {
        char *hex = strdup(args.opt[6].values[i]);
        int ok = hex != NULL && valid_hash_prefix(hex);
        if (ok)
            json_array_append_new(patterns, json_string(hex));
        free(hex);
        if (!ok) {
            cli_error(cmd, "--path-hash-prefix", "'%s' is not 1 to 64 hex digits",
                      args.opt[6].values[i]);
            goto out;
        }
    }
    if (args.opt[4].count > 0 &&
        cli_parse_threshold(cmd, "--threshold", args.opt[4].value, &threshold) != CLI_OK)
        goto out;
    if (threshold > args.opt[3].count) {
        cli_error(cmd, "--threshold", "threshold %u exceeds the %u key(s) given", threshold,
                  args.opt[3].count);
        goto out;
    }

    status = cli_repo_open(cmd, args.opt[0].value, &repo);
    if (status != CLI_OK)
        goto out;
    status = CLI_FAIL;
    existing = cli_repo_delegator(&repo, name);
    if (existing != NULL && strcmp(existing, from) != 0) {
        cli_error(cmd, name, "already delegated by %s", existing);
        goto out;
    }
    if (load_targets_role(cmd, &repo, from, &env, &before) != CLI_OK)
        goto out;
    status = cli_load_pubkeys(cmd, "--key", args.opt[3].values, args.opt[3].count, &keys);
    if (status != CLI_OK)
        goto out;
    nkeys = args.opt[3].count;
    status = CLI_FAIL;

    signed_part = json_object_get(env, "signed");
    delegations = json_object_get(signed_part, "delegations");
    if (delegations == NULL) {
        delegations = json_pack("{s:{},s:[]}", "keys", "roles");
        if (delegations == NULL || json_object_set_new(signed_part, "delegations", delegations))
            goto nomem;
    }
    dkeys = json_object_get(delegations, "keys");
    droles = json_object_get(delegations, "roles");
    for (i = 0; i < nkeys; i++) {
        if (json_object_set(dkeys, keys[i].keyid, keys[i].keyobj) != 0)
            goto nomem;
    }
    role_def = json_pack("{s:s,s:o,s:I,s:b,s:O}", "name", name, "keyids",
                         cli_sorted_keyids(keys, nkeys), "threshold", (json_int_t)threshold,
                         "terminating", args.opt[7].count > 0,
                         args.opt[5].count > 0 ? "paths" : "path_hash_prefixes", patterns);
    if (role_def == NULL)
        goto nomem;
    for (i = 0; i < json_array_size(droles); i++) {
        const char *n = json_string_value(json_object_get(json_array_get(droles, i), "name"));
        if (n != NULL && strcmp(n, name) == 0) {
            if (json_array_set(droles, i, role_def) != 0)
                goto nomem;
            replaced = 1;
            break;
        }
    }
    if (!replaced && json_array_append(droles, role_def) != 0)
        goto nomem;
    cli_prune_keys(dkeys, droles);

    /* The new role's file first and the state last, so that an interrupted
     * run can simply be repeated. */
    if (create_delegated_role(cmd, &repo, name, &created) != CLI_OK)
        goto out;
    if (cli_role_commit(cmd, &repo, from, env, before, NULL, 0, &changed) != CLI_OK)
        goto out;
    if (existing == NULL) {
        json_t *entry = json_pack("{s:s,s:s}", "name", name, "from", from);
        if (entry == NULL ||
            json_array_append_new(json_object_get(repo.state, "delegations"), entry) != 0)
            goto nomem;
        if (cli_repo_save_state(cmd, &repo) != CLI_OK)
            goto out;
    }
    printf("%s: %s delegation to %s (threshold %u of %zu key(s), %s%s)\n", from,
           replaced ? "replaced" : "added", name, threshold, nkeys,
           args.opt[5].count > 0 ? "paths" : "path hash prefixes",
           args.opt[7].count > 0 ? ", terminating" : "");
    print_commit(from, env, changed);
    if (created)
        printf("staged %s v1 (no targets): add targets with 'fota repo add-target FILE --role %s'\n",
               name, name);
    status = CLI_OK;
    goto out;
nomem:
    cli_error(cmd, name, "out of memory");
out:
    cli_pubkeys_free(keys, nkeys);
    json_decref(role_def);
    json_decref(patterns);
    json_decref(env);
    json_decref(before);
    cli_repo_close(&repo);
    cli_args_free(&args);
    return status;
}

/* ---- bump ---------------------------------------------------------------- */

int cli_repo_bump(int argc, char **argv)
{
    static const char *cmd = "repo bump";
    static const struct cli_optspec spec[] = {
        {"--repo", CLI_OPT_VALUE},
        {"--expires", CLI_OPT_VALUE},
    };
    struct cli_args args = {0};
    struct cli_repo repo = {0};
    json_t *env = NULL, *before = NULL;
    char expires[21];
    const char *role;
    int changed = 0;
    int status;

    status = cli_parse(cmd, bump_usage, spec, 2, argc, argv, 1, 1, &args);
    if (status != CLI_OK)
        return status;
    role = args.pos[0];
    status = CLI_USAGE;
    if (strcmp(role, "snapshot") == 0 || strcmp(role, "timestamp") == 0) {
        cli_error(cmd, role, "renewed by every 'fota repo publish'; nothing to bump");
        goto out;
    }
    if (args.opt[1].count > 0 &&
        cli_expiry_option(cmd, "--expires", args.opt[1].value, expires) != CLI_OK)
        goto out;
    status = cli_repo_open(cmd, args.opt[0].value, &repo);
    if (status != CLI_OK)
        goto out;
    status = CLI_FAIL;
    if (args.opt[1].count == 0 && cli_repo_default_expires(cmd, &repo, role, expires) != CLI_OK)
        goto out;
    if (load_for_edit(cmd, &repo, role, &env, &before) != CLI_OK)
        goto out;
    if (cli_role_commit(cmd, &repo, role, env, before, expires, 1, &changed) != CLI_OK)
        goto out;
    print_commit(role, env, changed);
    status = CLI_OK;
out:
    json_decref(env);
    json_decref(before);
    cli_repo_close(&repo);
    cli_args_free(&args);
    return status;
}

/* ---- rotate -------------------------------------------------------------- */

static int looks_like_keyid(const char *s)
{
    struct stat st;

    if (strlen(s) != FOTA_TUF_KEYID_HEX_LEN || lstat(s, &st) == 0)
        return 0;
    for (const char *p = s; *p != '\0'; p++) {
        if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
            return 0;
    }
    return 1;
}

int cli_repo_rotate(int argc, char **argv)
{
    static const char *cmd = "repo rotate";
    static const struct cli_optspec spec[] = {
        {"--repo", CLI_OPT_VALUE},       /* 0 */
        {"--add-key", CLI_OPT_MULTI},    /* 1 */
        {"--remove-key", CLI_OPT_MULTI}, /* 2 */
        {"--threshold", CLI_OPT_VALUE},  /* 3 */
        {"--expires", CLI_OPT_VALUE},    /* 4 */
    };
    struct cli_args args = {0};
    struct cli_repo repo = {0};
    struct cli_pubkey *add = NULL;
    size_t nadd = 0;
    json_t *env = NULL, *before = NULL;
    json_t *signed_part, *role_def, *keyids, *keys;
    unsigned threshold = 0;
    char expires[21];
    const char *role;
    int64_t published_root;
    int changed = 0;
    size_t i;
    int status;

    status = cli_parse(cmd, rotate_usage, spec, 5, argc, argv, 1, 1, &args);
    if (status != CLI_OK)
        return status;
    role = args.pos[0];
    status = CLI_USAGE;
    if (!cli_is_top_role(role)) {
        cli_error(cmd, role, "not a top-level role (root, targets, snapshot, timestamp); "
                             "re-run 'fota repo delegate' to change a delegation");
        goto out;
    }
    if (args.opt[1].count + args.opt[2].count + args.opt[3].count + args.opt[4].count == 0) {
        cli_error(cmd, role, "nothing to do (give --add-key, --remove-key, --threshold or "
                             "--expires)");
        goto out;
    }
    if (args.opt[3].count > 0 &&
        cli_parse_threshold(cmd, "--threshold", args.opt[3].value, &threshold) != CLI_OK)
        goto out;
    if (args.opt[4].count > 0 &&
        cli_expiry_option(cmd, "--expires", args.opt[4].value, expires) != CLI_OK)
        goto out;

    status = cli_repo_open(cmd, args.opt[0].value, &repo);
    if (status != CLI_OK)
        goto out;
    status = CLI_FAIL;
    if (load_for_edit(cmd, &repo, "root", &env, &before) != CLI_OK)
        goto out;
    signed_part = json_object_get(env, "signed");
    keys = json_object_get(signed_part, "keys");
    role_def = json_object_get(json_object_get(signed_part, "roles"), role);
    keyids = json_object_get(role_def, "keyids");
    if (!json_is_array(keyids)) {
        cli_error(cmd, role, "the staged root does not define this role");
        goto out;
    }

    for (i = 0; i < args.opt[2].count; i++) {
        const char *arg = args.opt[2].values[i];
        char keyid[FOTA_TUF_KEYID_HEX_LEN + 1];
        int idx;

        if (looks_like_keyid(arg)) {
            memcpy(keyid, arg, sizeof keyid);
        } else {
            struct cli_pubkey k;
            if (cli_load_pubkey(cmd, arg, &k) != CLI_OK)
                goto out;
            memcpy(keyid, k.keyid, sizeof keyid);
            cli_pubkey_clear(&k);
        }
        idx = cli_keyids_index(keyids, keyid);
        if (idx < 0) {
            cli_error(cmd, arg, "key %s is not a %s key", keyid, role);
            goto out;
        }
        json_array_remove(keyids, (size_t)idx);
    }
    status = cli_load_pubkeys(cmd, "--add-key", args.opt[1].values, args.opt[1].count, &add);
    if (status != CLI_OK)
        goto out;
    nadd = args.opt[1].count;
    status = CLI_FAIL;
    for (i = 0; i < nadd; i++) {
        if (cli_keyids_index(keyids, add[i].keyid) >= 0) {
            cli_error(cmd, add[i].path, "key %s is already a %s key", add[i].keyid, role);
            goto out;
        }
        if (json_array_append_new(keyids, json_string(add[i].keyid)) != 0 ||
            json_object_set(keys, add[i].keyid, add[i].keyobj) != 0)
            goto nomem;
    }
    cli_sort_strings(keyids);
    if (json_array_size(keyids) == 0) {
        cli_error(cmd, role, "would be left without keys");
        goto out;
    }
    if (threshold > 0) {
        if (threshold > json_array_size(keyids)) {
            cli_error(cmd, "--threshold", "threshold %u exceeds the %zu key(s) of %s", threshold,
                      json_array_size(keyids), role);
            status = CLI_USAGE;
            goto out;
        }
        if (json_object_set_new(role_def, "threshold", json_integer(threshold)) != 0)
            goto nomem;
    } else if ((size_t)json_integer_value(json_object_get(role_def, "threshold")) >
               json_array_size(keyids)) {
        cli_error(cmd, role, "threshold %lld exceeds the %zu key(s) left; give --threshold",
                  (long long)json_integer_value(json_object_get(role_def, "threshold")),
                  json_array_size(keyids));
        goto out;
    }
    cli_prune_keys(keys, json_object_get(signed_part, "roles"));

    if (cli_role_commit(cmd, &repo, "root", env, before, args.opt[4].count > 0 ? expires : NULL,
                        0, &changed) != CLI_OK)
        goto out;
    printf("%s: threshold %lld of %zu key(s)\n", role,
           (long long)json_integer_value(json_object_get(role_def, "threshold")),
           json_array_size(keyids));
    for (i = 0; i < json_array_size(keyids); i++)
        printf("  %s\n", json_string_value(json_array_get(keyids, i)));
    print_commit("root", env, changed);
    published_root = cli_repo_published_version(&repo, "root");
    if (changed && published_root > 0)
        printf("root v%lld needs the threshold of root v%lld's keys and of its own\n",
               (long long)cli_env_version(env), (long long)published_root);
    status = CLI_OK;
    goto out;
nomem:
    cli_error(cmd, role, "out of memory");
out:
    cli_pubkeys_free(add, nadd);
    json_decref(env);
    json_decref(before);
    cli_repo_close(&repo);
    cli_args_free(&args);
    return status;
}
