/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fota repo publish: verify every staged role, then write what changed, a
 * new snapshot and a new timestamp into metadata/.
 *
 * Snapshot and timestamp are built, signed and serialised by lib/tuf_repo.c,
 * as fota-server builds them.
 *
 * Everything is built and verified in memory before the first file is
 * written, so a refusal leaves metadata/ untouched. Files are then written
 * in the order a client reads them backwards: root, targets roles, snapshot,
 * and timestamp last, so that a client never sees a timestamp that points
 * at a snapshot which is not there yet.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "fota/json.h"
#include "fota/tuf.h"
#include "fota/tuf_repo.h"
#include "fota_posix.h"

static const char publish_usage[] =
    "Usage: fota repo publish [--repo DIR] --snapshot-key PRIV [...] --timestamp-key PRIV [...]\n"
    "                         [--snapshot-expires EXPIRY] [--timestamp-expires EXPIRY] [--json]\n"
    "\n"
    "Verify every staged role (a changed role must carry its threshold of\n"
    "signatures: a new root by the published root's keys and by its own, a\n"
    "delegated role by the keys its delegator lists as staged), then write to\n"
    "metadata/: N.root.json and root.json for a new root, V.ROLE.json and\n"
    "ROLE.json for each changed targets role, a new snapshot (V.snapshot.json,\n"
    "snapshot.json) listing every targets role, and a new timestamp.json.\n"
    "With nothing changed it still renews snapshot and timestamp.\n"
    "\n"
    "  --snapshot-key PRIV        snapshot signing key(s) (online key)\n"
    "  --timestamp-key PRIV       timestamp signing key(s) (online key)\n"
    "  --snapshot-expires EXPIRY  default 7d\n"
    "  --timestamp-expires EXPIRY default 1d\n"
    "  --json                     print {\"written\":[files],\"versions\":{role:version}}\n";

/* One file to write, with the bytes already serialised. */
struct pending {
    char *path;
    char *bytes;
    size_t len;
};

struct plan {
    struct pending *files;
    size_t nfiles, cap;
};

static void plan_free(struct plan *p)
{
    for (size_t i = 0; i < p->nfiles; i++) {
        free(p->files[i].path);
        free(p->files[i].bytes);
    }
    free(p->files);
}

/* Queue bytes (a copy) for path (taken over). */
static int plan_add(struct plan *p, char *path, const char *bytes, size_t len)
{
    char *copy;

    if (path == NULL)
        return -1;
    if (p->nfiles == p->cap) {
        size_t cap = p->cap ? p->cap * 2 : 16;
        struct pending *f = realloc(p->files, cap * sizeof *f);
        if (f == NULL) {
            free(path);
            return -1;
        }
        p->files = f;
        p->cap = cap;
    }
    copy = malloc(len + 1);
    if (copy == NULL) {
        free(path);
        return -1;
    }
    memcpy(copy, bytes, len);
    p->files[p->nfiles].path = path;
    p->files[p->nfiles].bytes = copy;
    p->files[p->nfiles].len = len;
    p->nfiles++;
    return 0;
}

/* The state's record of a published file. */
static json_t *published_entry(const json_t *meta)
{
    if (meta == NULL)
        return NULL;
    return json_pack("{s:O,s:O,s:O}", "version", json_object_get(meta, "version"), "length",
                     json_object_get(meta, "length"), "sha256",
                     json_object_get(json_object_get(meta, "hashes"), "sha256"));
}

static void warn_expired(const char *cmd, const char *role, const json_t *env, int64_t now)
{
    const char *expires = cli_env_expires(env);
    int64_t t = 0;

    if (expires != NULL && fota_tuf_parse_time(expires, &t) == FOTA_OK && t <= now)
        fprintf(stderr, "fota: %s: warning: %s v%lld expired at %s; clients will reject it\n",
                cmd, role, (long long)cli_env_version(env), expires);
}

/* Sign an online role's envelope with keys, which must all be keys of that
 * role in root, and check the threshold (lib/tuf_repo.c, as fota-server
 * signs them). */
static int sign_online(const char *cmd, const char *role, json_t *env, const json_t *root,
                       const struct cli_privkey *keys, size_t nkeys)
{
    const json_t *root_signed = json_object_get(root, "signed");
    const json_t *role_def = json_object_get(json_object_get(root_signed, "roles"), role);
    struct fota_tuf_signer *signers;
    struct cli_sigcount c = {0};
    char line[160];
    fota_err err;

    for (size_t i = 0; i < nkeys; i++) {
        if (!fota_tuf_repo_role_has_key(root, role, keys[i].keyid)) {
            cli_error(cmd, keys[i].path, "key %s is not a %s key of root v%lld", keys[i].keyid,
                      role, (long long)cli_env_version(root));
            return CLI_FAIL;
        }
    }
    signers = calloc(nkeys ? nkeys : 1, sizeof *signers);
    if (signers == NULL) {
        cli_error(cmd, role, "out of memory");
        return CLI_FAIL;
    }
    for (size_t i = 0; i < nkeys; i++) {
        signers[i].key = keys[i].key;
        signers[i].keyid = keys[i].keyid;
    }
    err = fota_tuf_repo_sign_role(env, root, role, signers, nkeys, &c.valid);
    free(signers);
    if (err == FOTA_OK)
        return CLI_OK;
    if (err == FOTA_E_NOMEM || err == FOTA_E_CRYPTO || err == FOTA_E_INVALID) {
        cli_error(cmd, role, "signing %s failed: %s", role, fota_strerror(err));
        return CLI_FAIL;
    }
    c.version = cli_env_version(env);
    c.threshold = (unsigned)json_integer_value(json_object_get(role_def, "threshold"));
    cli_sigcount_format(role, &c, line, sizeof line);
    cli_error(cmd, line, "%s", err == FOTA_E_THRESHOLD ? "threshold not met" : fota_strerror(err));
    return CLI_FAIL;
}

/* Serialise env canonically and queue it under its unversioned name and,
 * when versioned, its versioned one too; returns the snapshot/timestamp meta
 * entry in *ret_meta (may be NULL). */
static int queue_role(const char *cmd, const struct cli_repo *repo, struct plan *plan,
                      const char *role, const json_t *env, int versioned, json_t **ret_meta)
{
    int64_t version = cli_env_version(env);
    char *bytes = NULL;
    size_t len = 0;
    fota_err err;
    int status = CLI_FAIL;

    err = cli_json_bytes(env, 1, &bytes, &len);
    if (err != FOTA_OK) {
        cli_error(cmd, role, "cannot serialise: %s", fota_strerror(err));
        goto out;
    }
    if (versioned && plan_add(plan, cli_repo_metadata_path(repo, version, role), bytes, len) != 0)
        goto nomem;
    if (plan_add(plan, cli_repo_metadata_path(repo, 0, role), bytes, len) != 0)
        goto nomem;
    if (ret_meta != NULL && fota_tuf_repo_meta_entry(version, bytes, len, ret_meta) != FOTA_OK)
        goto nomem;
    status = CLI_OK;
    goto out;
nomem:
    cli_error(cmd, role, "out of memory");
out:
    free(bytes);
    return status;
}

/* Relative path for output ("metadata/2.root.json"). */
static const char *rel(const struct cli_repo *repo, const char *path)
{
    size_t n = strlen(repo->dir);

    if (strncmp(path, repo->dir, n) == 0 && path[n] == '/')
        return path + n + 1;
    return path;
}

int cli_repo_publish(int argc, char **argv)
{
    static const char *cmd = "repo publish";
    static const struct cli_optspec spec[] = {
        {"--repo", CLI_OPT_VALUE},              /* 0 */
        {"--snapshot-key", CLI_OPT_MULTI | CLI_OPT_REQUIRED},  /* 1 */
        {"--timestamp-key", CLI_OPT_MULTI | CLI_OPT_REQUIRED}, /* 2 */
        {"--snapshot-expires", CLI_OPT_VALUE},  /* 3 */
        {"--timestamp-expires", CLI_OPT_VALUE}, /* 4 */
        {"--json", CLI_OPT_FLAG},               /* 5 */
    };
    struct cli_args args = {0};
    struct cli_repo repo = {0};
    struct cli_privkey *snap_keys = NULL, *ts_keys = NULL;
    size_t nsnap = 0, nts = 0;
    json_t *root = NULL, *published_root = NULL;
    json_t *roles = NULL;      /* role names, targets first */
    json_t *staged = NULL;     /* role -> staged envelope */
    json_t *snap_meta = NULL;  /* snapshot "meta" */
    json_t *new_state = NULL;  /* "published" after this run */
    json_t *snapshot = NULL, *timestamp = NULL, *ts_meta = NULL, *versions = NULL;
    struct plan plan = {0};
    char snap_expires[21], ts_expires[21];
    int64_t now = cli_now();
    int64_t root_pub, root_version;
    int root_changed;
    const json_t *d, *v;
    const char *name;
    size_t i;
    int status;

    status = cli_parse(cmd, publish_usage, spec, 6, argc, argv, 0, 0, &args);
    if (status != CLI_OK)
        return status;
    status = CLI_USAGE;
    if (args.opt[3].count > 0 &&
        cli_expiry_option(cmd, "--snapshot-expires", args.opt[3].value, snap_expires) != CLI_OK)
        goto out;
    if (args.opt[4].count > 0 &&
        cli_expiry_option(cmd, "--timestamp-expires", args.opt[4].value, ts_expires) != CLI_OK)
        goto out;
    status = cli_repo_open(cmd, args.opt[0].value, &repo);
    if (status != CLI_OK)
        goto out;
    status = CLI_FAIL;
    if (args.opt[3].count == 0 &&
        cli_repo_default_expires(cmd, &repo, "snapshot", snap_expires) != CLI_OK)
        goto out;
    if (args.opt[4].count == 0 &&
        cli_repo_default_expires(cmd, &repo, "timestamp", ts_expires) != CLI_OK)
        goto out;

    if (cli_repo_load_staged(cmd, &repo, "root", &root) != CLI_OK ||
        cli_repo_load_published_root(cmd, &repo, &published_root) != CLI_OK)
        goto out;
    new_state = json_deep_copy(json_object_get(repo.state, "published"));
    staged = json_object();
    snap_meta = json_object();
    versions = json_object();
    roles = json_pack("[s]", "targets");
    if (new_state == NULL || staged == NULL || snap_meta == NULL || versions == NULL ||
        roles == NULL)
        goto nomem;
    json_array_foreach(json_object_get(repo.state, "delegations"), i, d)
        json_array_append(roles, json_object_get(d, "name"));

    /* 1. root: a new version needs the old root's threshold and its own. */
    root_pub = cli_repo_published_version(&repo, "root");
    root_version = cli_env_version(root);
    root_changed = root_pub == 0 || root_version != root_pub;
    if (root_changed) {
        struct cli_sigcount c;
        char line[256];

        if (root_pub > 0 && root_version != root_pub + 1) {
            cli_error(cmd, "root", "staged version %lld does not follow published version %lld",
                      (long long)root_version, (long long)root_pub);
            goto out;
        }
        for (i = 0; i < 4; i++) {
            static const char *const top[] = {"root", "targets", "snapshot", "timestamp"};
            if (!json_is_object(json_object_get(
                    json_object_get(json_object_get(root, "signed"), "roles"), top[i]))) {
                cli_error(cmd, "root", "staged root does not define role %s", top[i]);
                goto out;
            }
        }
        if (cli_role_count(cmd, &repo, "root", root, root, published_root, &c) != CLI_OK)
            goto out;
        if (!cli_sigcount_ok(&c)) {
            cli_sigcount_format("root", &c, line, sizeof line);
            cli_error(cmd, line, "threshold not met; sign it with 'fota repo sign root'");
            goto out;
        }
        warn_expired(cmd, "root", root, now);
        if (queue_role(cmd, &repo, &plan, "root", root, 1, NULL) != CLI_OK)
            goto out;
        if (json_object_set_new(new_state, "root",
                                json_pack("{s:I}", "version", (json_int_t)root_version)) != 0)
            goto nomem;
    }
    json_object_set_new(versions, "root", json_integer(root_version));

    /* 2. every targets role, changed or not, against the keys that now
     * delegate to it: a rotated key must not leave a role nobody can trust. */
    json_array_foreach(roles, i, d) {
        const char *role = json_string_value(d);
        json_t *env = NULL;
        struct cli_sigcount c;
        char line[256];
        int64_t pub = cli_repo_published_version(&repo, role);
        int changed;
        json_t *meta = NULL;

        if (cli_repo_load_staged(cmd, &repo, role, &env) != CLI_OK)
            goto out;
        json_object_set_new(staged, role, env);
        changed = pub == 0 || cli_env_version(env) != pub;
        if (changed && cli_env_version(env) < pub) {
            cli_error(cmd, role, "staged version %lld is below published version %lld",
                      (long long)cli_env_version(env), (long long)pub);
            goto out;
        }
        if (cli_role_count(cmd, &repo, role, env, root, published_root, &c) != CLI_OK)
            goto out;
        if (!cli_sigcount_ok(&c)) {
            cli_sigcount_format(role, &c, line, sizeof line);
            if (changed)
                cli_error(cmd, line, "threshold not met; sign it with 'fota repo sign %s'", role);
            else
                cli_error(cmd, line,
                          "threshold not met by the keys that now delegate to it; "
                          "'fota repo bump %s' and sign it again",
                          role);
            goto out;
        }
        if (changed) {
            warn_expired(cmd, role, env, now);
            if (queue_role(cmd, &repo, &plan, role, env, 1, &meta) != CLI_OK)
                goto out;
            if (json_object_set_new(new_state, role, published_entry(meta)) != 0) {
                json_decref(meta);
                goto nomem;
            }
        } else {
            const json_t *p = json_object_get(json_object_get(repo.state, "published"), role);
            if (!json_is_integer(json_object_get(p, "length")) ||
                !json_is_string(json_object_get(p, "sha256"))) {
                cli_error(cmd, role, "fota-repo.json lacks its published length and hash");
                goto out;
            }
            meta = json_pack("{s:O,s:O,s:{s:O}}", "version", json_object_get(p, "version"),
                             "length", json_object_get(p, "length"), "hashes", "sha256",
                             json_object_get(p, "sha256"));
        }
        if (meta == NULL)
            goto nomem;
        name = role;
        {
            char *key = cli_pathf("%s.json", name);
            int rc = key != NULL ? json_object_set_new(snap_meta, key, meta) : -1;
            free(key);
            if (rc != 0)
                goto nomem;
        }
        json_object_set_new(versions, role, json_integer(cli_env_version(env)));
    }

    /* 3. snapshot and timestamp, signed with the online keys. */
    if (cli_load_privkeys(cmd, args.opt[1].values, args.opt[1].count, &snap_keys) != CLI_OK)
        goto out;
    nsnap = args.opt[1].count;
    if (cli_load_privkeys(cmd, args.opt[2].values, args.opt[2].count, &ts_keys) != CLI_OK)
        goto out;
    nts = args.opt[2].count;

    if (fota_tuf_repo_snapshot_new(cli_repo_published_version(&repo, "snapshot") + 1,
                                   snap_expires, snap_meta, &snapshot) != FOTA_OK)
        goto nomem;
    if (sign_online(cmd, "snapshot", snapshot, root, snap_keys, nsnap) != CLI_OK)
        goto out;
    if (queue_role(cmd, &repo, &plan, "snapshot", snapshot, 1, &ts_meta) != CLI_OK)
        goto out;
    if (json_object_set_new(new_state, "snapshot", published_entry(ts_meta)) != 0)
        goto nomem;
    json_object_set_new(versions, "snapshot", json_integer(cli_env_version(snapshot)));

    if (fota_tuf_repo_timestamp_new(cli_repo_published_version(&repo, "timestamp") + 1,
                                    ts_expires, ts_meta, &timestamp) != FOTA_OK)
        goto nomem;
    if (sign_online(cmd, "timestamp", timestamp, root, ts_keys, nts) != CLI_OK)
        goto out;
    {
        json_t *meta = NULL;
        int rc;

        /* timestamp.json only: clients always fetch it by that name. */
        if (queue_role(cmd, &repo, &plan, "timestamp", timestamp, 0, &meta) != CLI_OK)
            goto out;
        rc = json_object_set_new(new_state, "timestamp", published_entry(meta));
        json_decref(meta);
        if (rc != 0)
            goto nomem;
    }
    json_object_set_new(versions, "timestamp", json_integer(cli_env_version(timestamp)));

    /* 4. write, in plan order (timestamp last), then record the state. */
    for (i = 0; i < plan.nfiles; i++) {
        fota_err err = fota_posix_write_file(plan.files[i].path, plan.files[i].bytes,
                                             plan.files[i].len, 0644, 0);
        if (err != FOTA_OK) {
            cli_error(cmd, plan.files[i].path, "%s", cli_io_reason(err));
            goto out;
        }
    }
    json_object_set(repo.state, "published", new_state);
    if (cli_repo_save_state(cmd, &repo) != CLI_OK)
        goto out;

    if (args.opt[5].count > 0) {
        json_t *written = json_array();
        json_t *o;
        for (i = 0; written != NULL && i < plan.nfiles; i++)
            json_array_append_new(written, json_string(rel(&repo, plan.files[i].path)));
        o = json_pack("{s:o,s:O}", "written", written, "versions", versions);
        status = o != NULL ? cli_print_json(cmd, o) : CLI_FAIL;
        json_decref(o);
        goto out;
    }
    for (i = 0; i < plan.nfiles; i++)
        printf("wrote %s (%zu bytes)\n", rel(&repo, plan.files[i].path), plan.files[i].len);
    json_object_foreach(versions, name, v)
        printf("%s v%lld\n", name, (long long)json_integer_value(v));
    status = CLI_OK;
    goto out;
nomem:
    cli_error(cmd, NULL, "out of memory");
out:
    plan_free(&plan);
    cli_privkeys_free(snap_keys, nsnap);
    cli_privkeys_free(ts_keys, nts);
    json_decref(root);
    json_decref(published_root);
    json_decref(roles);
    json_decref(staged);
    json_decref(snap_meta);
    json_decref(new_state);
    json_decref(snapshot);
    json_decref(timestamp);
    json_decref(ts_meta);
    json_decref(versions);
    cli_repo_close(&repo);
    cli_args_free(&args);
    return status;
}
