/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fota repo: dispatch, and the commands that create, sign and inspect a
 * repository (init, sign, status). Editing commands are in repo_edit.c,
 * publishing in repo_publish.c.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "fota/tuf.h"
#include "fota_posix.h"

static const char repo_usage[] =
    "Usage: fota repo SUBCOMMAND [--repo DIR] [OPTIONS]\n"
    "\n"
    "Subcommands:\n"
    "  init           create a repository: staged root and targets, layout\n"
    "  sign           add signatures to a staged role (offline keys)\n"
    "  add-target     add or replace a target file in a targets role\n"
    "  remove-target  remove a target from a targets role\n"
    "  delegate       delegate target paths to a new role\n"
    "  bump           give a staged role a new version and expiry\n"
    "  rotate         change the keys of a top-level role (next root version)\n"
    "  publish        verify, then write metadata, snapshot and timestamp\n"
    "  status         versions, expiry and signatures of every role\n"
    "\n"
    "--repo DIR names the repository (default: the current directory).\n"
    "Run 'fota repo SUBCOMMAND --help' for details.\n";

static const char init_usage[] =
    "Usage: fota repo init [--repo DIR] --root-key PUB [--root-key PUB ...] [--root-threshold N]\n"
    "                      --targets-key PUB [...] [--targets-threshold N]\n"
    "                      --snapshot-key PUB [...] [--snapshot-threshold N]\n"
    "                      --timestamp-key PUB [...] [--timestamp-threshold N]\n"
    "                      [--expires EXPIRY] [--no-consistent-snapshot]\n"
    "\n"
    "Create a repository in DIR (created if missing): fota-repo.json, staged/,\n"
    "metadata/, targets/, an unsigned staged/root.json (version 1) listing the\n"
    "keys of the four top-level roles, and an empty staged/targets.json.\n"
    "Refuses if DIR already holds a repository.\n"
    "\n"
    "  --ROLE-key PUB         a public key of ROLE (a .pub file or a private PEM)\n"
    "  --ROLE-threshold N     signatures ROLE needs, 1..number of keys (default 1)\n"
    "  --expires EXPIRY       expiry of root version 1 (default 365d)\n"
    "  --no-consistent-snapshot  serve unversioned file names only\n"
    "\n"
    "EXPIRY: <int><s|m|h|d|w> from now (30d, 12h, -1h) or YYYY-MM-DDTHH:MM:SSZ.\n";

static const char sign_usage[] =
    "Usage: fota repo sign ROLE [--repo DIR] --key PRIV [--key PRIV ...] [--json]\n"
    "\n"
    "Add (or replace) each key's signature on staged/ROLE.json. ROLE is root,\n"
    "targets or a delegated role; snapshot and timestamp are signed by publish.\n"
    "A key the role does not list is refused; for root, keys of the published\n"
    "root are accepted too, since a new root version needs both.\n"
    "Prints \"ROLE vV: S of T signatures\" (valid distinct keys of threshold).\n"
    "\n"
    "  --key PRIV   a private key PEM\n"
    "  --json       print {\"role\",\"version\",\"signatures\",\"threshold\",\"keyids\",\n"
    "               \"old_root\"?:{\"version\",\"signatures\",\"threshold\"}}\n";

static const char status_usage[] =
    "Usage: fota repo status [--repo DIR] [--json]\n"
    "\n"
    "For every role: staged version, published version, expiry, and valid\n"
    "signatures against the threshold.\n"
    "\n"
    "  --json   print {\"roles\":[{\"role\",\"staged_version\",\"published_version\",\n"
    "           \"expires\",\"signatures\",\"threshold\",\"changed\"}, ...]}\n";

static const char *const top_roles[] = {"root", "targets", "snapshot", "timestamp"};

/* ---- init ---------------------------------------------------------------- */

static json_t *new_envelope(json_t *signed_part)
{
    json_t *env;

    if (signed_part == NULL)
        return NULL;
    env = json_pack("{s:o,s:[]}", "signed", signed_part, "signatures");
    return env;
}

int cli_repo_init(int argc, char **argv)
{
    static const char *cmd = "repo init";
    static const struct cli_optspec spec[] = {
        {"--repo", CLI_OPT_VALUE},             /* 0 */
        {"--root-key", CLI_OPT_MULTI},         /* 1 */
        {"--targets-key", CLI_OPT_MULTI},      /* 2 */
        {"--snapshot-key", CLI_OPT_MULTI},     /* 3 */
        {"--timestamp-key", CLI_OPT_MULTI},    /* 4 */
        {"--root-threshold", CLI_OPT_VALUE},   /* 5 */
        {"--targets-threshold", CLI_OPT_VALUE}, /* 6 */
        {"--snapshot-threshold", CLI_OPT_VALUE}, /* 7 */
        {"--timestamp-threshold", CLI_OPT_VALUE}, /* 8 */
        {"--expires", CLI_OPT_VALUE},          /* 9 */
        {"--no-consistent-snapshot", CLI_OPT_FLAG}, /* 10 */
    };
    struct cli_args args = {0};
    struct cli_pubkey *keys[4] = {NULL, NULL, NULL, NULL};
    unsigned thresholds[4] = {1, 1, 1, 1};
    char root_expires[21];
    char targets_expires[21];
    const char *dir;
    char *state_path = NULL;
    char *sub = NULL;
    json_t *root_signed = NULL, *root_env = NULL;
    json_t *targets_env = NULL;
    json_t *state = NULL;
    json_t *all_keys, *roles;
    struct cli_repo repo = {0};
    fota_err err;
    int status;

    status = cli_parse(cmd, init_usage, spec, sizeof spec / sizeof spec[0], argc, argv, 0, 0,
                       &args);
    if (status != CLI_OK)
        return status;
    status = CLI_USAGE;
    for (int r = 0; r < 4; r++) {
        if (args.opt[1 + r].count == 0) {
            cli_error(cmd, spec[1 + r].name, "missing (at least one key per role)");
            goto out;
        }
        if (args.opt[5 + r].count > 0 &&
            cli_parse_threshold(cmd, spec[5 + r].name, args.opt[5 + r].value, &thresholds[r]) !=
                CLI_OK)
            goto out;
        if (thresholds[r] > args.opt[1 + r].count) {
            cli_error(cmd, spec[5 + r].name, "threshold %u exceeds the %u key(s) given",
                      thresholds[r], args.opt[1 + r].count);
            goto out;
        }
    }
    if (args.opt[9].count > 0) {
        if (cli_expiry_option(cmd, "--expires", args.opt[9].value, root_expires) != CLI_OK)
            goto out;
    } else if (cli_expiry_option(cmd, "--expires", CLI_DEFAULT_ROOT_EXPIRY, root_expires) !=
               CLI_OK) {
        goto out;
    }
    if (cli_expiry_option(cmd, "--expires", CLI_DEFAULT_TARGETS_EXPIRY, targets_expires) != CLI_OK)
        goto out;

    status = CLI_FAIL;
    dir = args.opt[0].count > 0 ? args.opt[0].value : ".";
    state_path = cli_path(dir, "fota-repo.json");
    if (state_path == NULL)
        goto nomem;
    if (cli_path_exists(state_path)) {
        cli_error(cmd, dir, "already holds a repository (fota-repo.json exists)");
        goto out;
    }

    for (int r = 0; r < 4; r++) {
        status = cli_load_pubkeys(cmd, spec[1 + r].name, args.opt[1 + r].values,
                                  args.opt[1 + r].count, &keys[r]);
        if (status != CLI_OK)
            goto out;
    }
    status = CLI_FAIL;

    all_keys = json_object();
    roles = json_object();
    root_signed = json_pack("{s:s,s:s,s:i,s:s,s:b,s:o,s:o}", "_type", "root", "spec_version",
                            CLI_SPEC_VERSION, "version", 1, "expires", root_expires,
                            "consistent_snapshot", args.opt[10].count == 0, "keys", all_keys,
                            "roles", roles);
    if (root_signed == NULL)
        goto nomem;
    for (int r = 0; r < 4; r++) {
        json_t *role;
        for (unsigned i = 0; i < args.opt[1 + r].count; i++) {
            if (json_object_set(all_keys, keys[r][i].keyid, keys[r][i].keyobj) != 0)
                goto nomem;
        }
        role = json_pack("{s:o,s:I}", "keyids", cli_sorted_keyids(keys[r], args.opt[1 + r].count),
                         "threshold", (json_int_t)thresholds[r]);
        if (role == NULL || json_object_set_new(roles, top_roles[r], role) != 0)
            goto nomem;
    }
    root_env = new_envelope(json_incref(root_signed));
    targets_env = new_envelope(json_pack("{s:s,s:s,s:i,s:s,s:{}}", "_type", "targets",
                                         "spec_version", CLI_SPEC_VERSION, "version", 1,
                                         "expires", targets_expires, "targets"));
    state = json_pack("{s:i,s:{s:s,s:s,s:s,s:s,s:s},s:[],s:{}}", "fota_repo", 1, "expires",
                      "root", CLI_DEFAULT_ROOT_EXPIRY, "targets", CLI_DEFAULT_TARGETS_EXPIRY,
                      "delegated", CLI_DEFAULT_DELEGATED_EXPIRY, "snapshot",
                      CLI_DEFAULT_SNAPSHOT_EXPIRY, "timestamp", CLI_DEFAULT_TIMESTAMP_EXPIRY,
                      "delegations", "published");
    if (root_env == NULL || targets_env == NULL || state == NULL)
        goto nomem;

    static const char *const subdirs[] = {"staged", "metadata", "targets"};
    err = fota_posix_mkdirs(dir);
    for (size_t i = 0; err == FOTA_OK && i < 3; i++) {
        free(sub);
        sub = cli_path(dir, subdirs[i]);
        err = sub != NULL ? fota_posix_mkdirs(sub) : FOTA_E_NOMEM;
    }
    if (err != FOTA_OK) {
        cli_error(cmd, sub != NULL ? sub : dir, "cannot create directory: %s",
                  cli_io_reason(err));
        goto out;
    }

    repo.dir = (char *)dir;
    repo.state = state;
    /* The state file goes last: it is what marks DIR as a repository. */
    if (cli_repo_save_staged(cmd, &repo, "root", root_env) != CLI_OK ||
        cli_repo_save_staged(cmd, &repo, "targets", targets_env) != CLI_OK ||
        cli_repo_save_state(cmd, &repo) != CLI_OK)
        goto out;

    printf("initialised repository %s (consistent snapshots %s)\n", dir,
           args.opt[10].count == 0 ? "on" : "off");
    for (int r = 0; r < 4; r++) {
        printf("%s: threshold %u of %u key(s)\n", top_roles[r], thresholds[r],
               args.opt[1 + r].count);
        for (unsigned i = 0; i < args.opt[1 + r].count; i++)
            printf("  %s (%s)\n", keys[r][i].keyid, keys[r][i].path);
    }
    printf("staged root v1 (expires %s) and targets v1 (expires %s), unsigned\n", root_expires,
           targets_expires);
    printf("next: fota repo sign root --key ROOT_KEY; fota repo sign targets --key TARGETS_KEY\n");
    status = CLI_OK;
    goto out;
nomem:
    cli_error(cmd, NULL, "out of memory");
    status = CLI_FAIL;
out:
    for (int r = 0; r < 4; r++)
        cli_pubkeys_free(keys[r], args.opt != NULL ? args.opt[1 + r].count : 0);
    json_decref(root_signed);
    json_decref(root_env);
    json_decref(targets_env);
    json_decref(state);
    free(state_path);
    free(sub);
    cli_args_free(&args);
    return status;
}

/* ---- sign ---------------------------------------------------------------- */

static int role_lists_key(const json_t *role, const char *keyid)
{
    return cli_keyids_index(json_object_get(role, "keyids"), keyid) >= 0;
}

/* Set "signatures", "threshold" and, for a new root version, "old_root" of
 * a --json object from a count. */
static void add_sigcount_json(json_t *o, const struct cli_sigcount *c)
{
    json_object_set_new(o, "signatures", json_integer(c->valid));
    json_object_set_new(o, "threshold", json_integer(c->threshold));
    if (c->have_old) {
        json_object_set_new(o, "old_root",
                            json_pack("{s:I,s:I,s:I}", "version", (json_int_t)c->old_version,
                                      "signatures", (json_int_t)c->old_valid, "threshold",
                                      (json_int_t)c->old_threshold));
    }
}

static json_t *sigcount_json(const char *role, const struct cli_sigcount *c)
{
    json_t *o = json_pack("{s:s,s:I}", "role", role, "version", (json_int_t)c->version);

    if (o != NULL)
        add_sigcount_json(o, c);
    return o;
}

int cli_repo_sign(int argc, char **argv)
{
    static const char *cmd = "repo sign";
    static const struct cli_optspec spec[] = {
        {"--repo", CLI_OPT_VALUE},
        {"--key", CLI_OPT_MULTI | CLI_OPT_REQUIRED},
        {"--json", CLI_OPT_FLAG},
    };
    struct cli_args args = {0};
    struct cli_repo repo = {0};
    struct cli_privkey *keys = NULL;
    size_t nkeys = 0;
    json_t *env = NULL, *staged_root = NULL, *published_root = NULL, *delegator = NULL;
    const json_t *role_keys = NULL, *role_def = NULL;
    const json_t *old_role = NULL;
    struct cli_sigcount count;
    char line[256];
    const char *role;
    int status;

    status = cli_parse(cmd, sign_usage, spec, 3, argc, argv, 1, 1, &args);
    if (status != CLI_OK)
        return status;
    role = args.pos[0];
    status = CLI_USAGE;
    if (strcmp(role, "snapshot") == 0 || strcmp(role, "timestamp") == 0) {
        cli_error(cmd, role, "signed by 'fota repo publish' (--%s-key)", role);
        goto out;
    }
    status = cli_repo_open(cmd, args.opt[0].value, &repo);
    if (status != CLI_OK)
        goto out;
    status = CLI_FAIL;
    if (cli_repo_load_staged(cmd, &repo, role, &env) != CLI_OK ||
        cli_repo_load_staged(cmd, &repo, "root", &staged_root) != CLI_OK ||
        cli_repo_load_published_root(cmd, &repo, &published_root) != CLI_OK)
        goto out;
    if (cli_role_keys(cmd, &repo, role, staged_root, &delegator, &role_keys, &role_def) != CLI_OK)
        goto out;
    if (strcmp(role, "root") == 0 && published_root != NULL)
        old_role = json_object_get(json_object_get(json_object_get(published_root, "signed"),
                                                   "roles"),
                                   "root");

    nkeys = args.opt[1].count;
    if (cli_load_privkeys(cmd, args.opt[1].values, nkeys, &keys) != CLI_OK) {
        nkeys = 0;
        goto out;
    }
    /* Check every key before signing with any, so a refusal changes nothing. */
    for (size_t i = 0; i < nkeys; i++) {
        if (!role_lists_key(role_def, keys[i].keyid) &&
            (old_role == NULL || !role_lists_key(old_role, keys[i].keyid))) {
            cli_error(cmd, keys[i].path, "key %s is not a %s key", keys[i].keyid, role);
            goto out;
        }
    }
    for (size_t i = 0; i < nkeys; i++) {
        fota_err err = fota_tuf_sign(env, keys[i].key, keys[i].keyid);
        if (err != FOTA_OK) {
            cli_error(cmd, keys[i].path, "signing failed: %s", fota_strerror(err));
            goto out;
        }
    }
    if (cli_repo_save_staged(cmd, &repo, role, env) != CLI_OK)
        goto out;
    /* Signing root changes nothing the count depends on but the signatures;
     * count against the envelope just written. */
    if (cli_role_count(cmd, &repo, role, env, strcmp(role, "root") == 0 ? env : staged_root,
                       published_root, &count) != CLI_OK)
        goto out;

    if (args.opt[2].count > 0) {
        json_t *o = sigcount_json(role, &count);
        json_t *ids = json_array();
        for (size_t i = 0; o != NULL && ids != NULL && i < nkeys; i++)
            json_array_append_new(ids, json_string(keys[i].keyid));
        if (o != NULL && ids != NULL)
            json_object_set(o, "keyids", ids);
        status = o != NULL ? cli_print_json(cmd, o) : CLI_FAIL;
        json_decref(o);
        json_decref(ids);
        goto out;
    }
    for (size_t i = 0; i < nkeys; i++)
        printf("signed %s v%lld with %s (%s)\n", role, (long long)count.version, keys[i].keyid,
               keys[i].path);
    cli_sigcount_format(role, &count, line, sizeof line);
    printf("%s\n", line);
    if (cli_repo_published_version(&repo, role) == count.version)
        printf("note: %s v%lld is already published; 'fota repo bump %s' starts a new version\n",
               role, (long long)count.version, role);
    status = CLI_OK;
out:
    cli_privkeys_free(keys, nkeys);
    json_decref(env);
    json_decref(staged_root);
    json_decref(published_root);
    json_decref(delegator);
    cli_repo_close(&repo);
    cli_args_free(&args);
    return status;
}

/* ---- status -------------------------------------------------------------- */

static json_t *status_entry(const char *role, int64_t staged, int64_t published,
                            const char *expires, const struct cli_sigcount *c, int have_count)
{
    json_t *o = json_pack("{s:s,s:s?,s:b}", "role", role, "expires", expires, "changed",
                          staged > 0 && staged != published);

    if (o == NULL)
        return NULL;
    json_object_set_new(o, "staged_version", staged > 0 ? json_integer(staged) : json_null());
    json_object_set_new(o, "published_version",
                        published > 0 ? json_integer(published) : json_null());
    if (have_count)
        add_sigcount_json(o, c);
    return o;
}

static void status_line(const char *role, int64_t staged, int64_t published, const char *expires,
                        const struct cli_sigcount *c, int have_count, int64_t now)
{
    char sv[32], pv[32], sigs[160];
    int64_t t = 0;
    const char *flag = "";

    snprintf(sv, sizeof sv, staged > 0 ? "v%lld" : "-", (long long)staged);
    snprintf(pv, sizeof pv, published > 0 ? "v%lld" : "-", (long long)published);
    if (have_count && c->have_old)
        snprintf(sigs, sizeof sigs, "%u/%u (root v%lld keys: %u/%u)", c->valid, c->threshold,
                 (long long)c->old_version, c->old_valid, c->old_threshold);
    else if (have_count)
        snprintf(sigs, sizeof sigs, "%u/%u", c->valid, c->threshold);
    else
        snprintf(sigs, sizeof sigs, "-");
    if (expires != NULL && fota_tuf_parse_time(expires, &t) == FOTA_OK && t <= now)
        flag = " EXPIRED";
    else if (staged > 0 && staged != published)
        flag = " changed";
    printf("%-20s %-8s %-9s %-20s %s%s\n", role, sv, pv, expires != NULL ? expires : "-", sigs,
           flag);
}

int cli_repo_status(int argc, char **argv)
{
    static const char *cmd = "repo status";
    static const struct cli_optspec spec[] = {
        {"--repo", CLI_OPT_VALUE},
        {"--json", CLI_OPT_FLAG},
    };
    struct cli_args args = {0};
    struct cli_repo repo = {0};
    json_t *staged_root = NULL, *published_root = NULL;
    json_t *out_roles = NULL;
    json_t *names = NULL;
    const json_t *d;
    size_t i;
    int json_out;
    int64_t now = cli_now();
    int status;

    status = cli_parse(cmd, status_usage, spec, 2, argc, argv, 0, 0, &args);
    if (status != CLI_OK)
        return status;
    json_out = args.opt[1].count > 0;
    status = cli_repo_open(cmd, args.opt[0].value, &repo);
    if (status != CLI_OK)
        goto out;
    status = CLI_FAIL;
    if (cli_repo_load_staged(cmd, &repo, "root", &staged_root) != CLI_OK ||
        cli_repo_load_published_root(cmd, &repo, &published_root) != CLI_OK)
        goto out;
    out_roles = json_array();
    names = json_pack("[s,s]", "root", "targets");
    if (out_roles == NULL || names == NULL)
        goto out;
    json_array_foreach(json_object_get(repo.state, "delegations"), i, d)
        json_array_append(names, json_object_get(d, "name"));

    if (!json_out)
        printf("%-20s %-8s %-9s %-20s %s\n", "ROLE", "STAGED", "PUBLISHED", "EXPIRES",
               "SIGNATURES");
    json_array_foreach(names, i, d) {
        const char *role = json_string_value(d);
        json_t *env = NULL;
        struct cli_sigcount c = {0};
        int have = 0;

        if (cli_repo_load_staged(cmd, &repo, role, &env) != CLI_OK)
            goto out;
        have = cli_role_count(cmd, &repo, role, env, staged_root, published_root, &c) == CLI_OK;
        if (json_out)
            json_array_append_new(out_roles,
                                  status_entry(role, cli_env_version(env),
                                               cli_repo_published_version(&repo, role),
                                               cli_env_expires(env), &c, have));
        else
            status_line(role, cli_env_version(env), cli_repo_published_version(&repo, role),
                        cli_env_expires(env), &c, have, now);
        json_decref(env);
    }

    /* snapshot and timestamp exist only as published files. */
    for (int r = 2; r < 4; r++) {
        const char *role = top_roles[r];
        int64_t published = cli_repo_published_version(&repo, role);
        json_t *env = NULL;
        struct cli_sigcount c = {0};
        const json_t *keys_root = published_root != NULL ? published_root : staged_root;
        const json_t *role_def;
        const char *expires = NULL;
        int have = 0;

        if (published > 0) {
            char *path = cli_repo_metadata_path(&repo, 0, role);
            if (path != NULL && cli_read_json(path, CLI_MAX_METADATA, &env, NULL) == FOTA_OK &&
                cli_check_envelope(env, role) == FOTA_OK) {
                expires = cli_env_expires(env);
                role_def = json_object_get(
                    json_object_get(json_object_get(keys_root, "signed"), "roles"), role);
                c.version = cli_env_version(env);
                c.threshold = (unsigned)json_integer_value(json_object_get(role_def, "threshold"));
                fota_tuf_verify_role(env, json_object_get(json_object_get(keys_root, "signed"),
                                                          "keys"),
                                     role_def, &c.valid);
                have = 1;
            }
            free(path);
        }
        if (json_out)
            json_array_append_new(out_roles, status_entry(role, 0, published, expires, &c, have));
        else
            status_line(role, 0, published, expires, &c, have, now);
        json_decref(env);
    }
    if (json_out) {
        json_t *o = json_pack("{s:O}", "roles", out_roles);
        status = o != NULL ? cli_print_json(cmd, o) : CLI_FAIL;
        json_decref(o);
        goto out;
    }
    status = CLI_OK;
out:
    json_decref(out_roles);
    json_decref(names);
    json_decref(staged_root);
    json_decref(published_root);
    cli_repo_close(&repo);
    cli_args_free(&args);
    return status;
}

/* ---- dispatch ------------------------------------------------------------ */

int cli_cmd_repo(int argc, char **argv)
{
    static const struct cli_subcommand subs[] = {
        {"init", cli_repo_init},
        {"sign", cli_repo_sign},
        {"add-target", cli_repo_add_target},
        {"remove-target", cli_repo_remove_target},
        {"delegate", cli_repo_delegate},
        {"bump", cli_repo_bump},
        {"rotate", cli_repo_rotate},
        {"publish", cli_repo_publish},
        {"status", cli_repo_status},
    };

    return cli_dispatch("repo", repo_usage, subs, sizeof subs / sizeof subs[0], argc, argv);
}
