/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The repository on disk: the tool state (fota-repo.json), the staged roles
 * (staged/) and the published metadata (metadata/). Layout in docs/fota.md.
 *
 * fota-repo.json:
 *   {"fota_repo": 1,
 *    "expires": {"root","targets","delegated","snapshot","timestamp"},  EXPIRY strings
 *    "delegations": [{"name": ROLE, "from": DELEGATOR}, ...],            in creation order
 *    "published": {ROLE: {"version", "length"?, "sha256"?}, ...}}
 * "published" records what metadata/ serves; length and sha256 of targets
 * roles and snapshot are what the next snapshot and timestamp list.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "fota/json.h"
#include "fota/tuf.h"
#include "fota/tuf_repo.h"
#include "fota_posix.h"

static const char *const expiry_roles[] = {"root", "targets", "delegated", "snapshot",
                                           "timestamp"};

int cli_is_top_role(const char *role)
{
    return strcmp(role, "root") == 0 || strcmp(role, "targets") == 0 ||
           strcmp(role, "snapshot") == 0 || strcmp(role, "timestamp") == 0;
}

static fota_err check_state(const json_t *state)
{
    const json_t *expires = json_object_get(state, "expires");
    const json_t *delegations = json_object_get(state, "delegations");
    const json_t *published = json_object_get(state, "published");
    const char *name;
    const json_t *v;
    size_t i;
    int64_t t;

    if (json_integer_value(json_object_get(state, "fota_repo")) != 1 ||
        !json_is_integer(json_object_get(state, "fota_repo")))
        return FOTA_E_UNSUPPORTED;
    if (!json_is_object(expires) || !json_is_array(delegations) || !json_is_object(published))
        return FOTA_E_PARSE;
    for (i = 0; i < sizeof expiry_roles / sizeof expiry_roles[0]; i++) {
        const char *s = json_string_value(json_object_get(expires, expiry_roles[i]));
        if (s == NULL || cli_expiry_parse(s, cli_now(), &t) != FOTA_OK)
            return FOTA_E_PARSE;
    }
    json_array_foreach(delegations, i, v) {
        if (!json_is_string(json_object_get(v, "name")) ||
            !json_is_string(json_object_get(v, "from")))
            return FOTA_E_PARSE;
    }
    json_object_foreach((json_t *)published, name, v) {
        const json_t *version = json_object_get(v, "version");
        if (!json_is_integer(version) || json_integer_value(version) < 1)
            return FOTA_E_PARSE;
    }
    return FOTA_OK;
}

/* Wait for the repository lock. A repository on read-only media (a signer's
 * copy being inspected) is used without it. */
static int take_lock(const char *cmd, struct cli_repo *repo)
{
    char *path = cli_path(repo->dir, ".fota-lock");
    struct flock fl;
    int fd;
    int rc;

    if (path == NULL) {
        cli_error(cmd, NULL, "out of memory");
        return CLI_FAIL;
    }
    fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) {
        rc = errno;
        free(path);
        if (rc == EROFS || rc == EACCES)
            return CLI_OK;
        cli_error(cmd, repo->dir, "cannot create the lock file: %s", strerror(rc));
        return CLI_FAIL;
    }
    memset(&fl, 0, sizeof fl);
    fl.l_type = F_WRLCK;
    fl.l_whence = SEEK_SET;
    for (;;) {
        if (fcntl(fd, F_SETLKW, &fl) == 0)
            break;
        if (errno == EINTR)
            continue;
        rc = errno;
        cli_error(cmd, path, "cannot lock the repository: %s", strerror(rc));
        close(fd);
        free(path);
        return CLI_FAIL;
    }
    free(path);
    repo->lock_fd = fd;
    repo->locked = 1;
    return CLI_OK;
}

int cli_repo_open(const char *cmd, const char *dir, struct cli_repo *ret_repo)
{
    struct cli_repo repo = {0};
    char *path = NULL;
    struct stat st;
    int saved = 0;
    fota_err err;
    int status = CLI_FAIL;

    repo.dir = strdup(dir != NULL ? dir : ".");
    path = repo.dir != NULL ? cli_path(repo.dir, "fota-repo.json") : NULL;
    if (path == NULL) {
        cli_error(cmd, NULL, "out of memory");
        goto out;
    }
    /* No lock file is created in a directory that is not a repository. */
    if (stat(path, &st) != 0 && errno == ENOENT) {
        cli_error(cmd, repo.dir, "not a fota repository (no fota-repo.json; see 'fota repo init')");
        goto out;
    }
    if (take_lock(cmd, &repo) != CLI_OK)
        goto out;
    err = cli_read_json(path, CLI_MAX_METADATA, &repo.state, &saved);
    if (err == FOTA_E_NOT_FOUND) {
        cli_error(cmd, repo.dir, "not a fota repository (no fota-repo.json; see 'fota repo init')");
        goto out;
    }
    if (err == FOTA_E_IO) {
        cli_error(cmd, path, "%s", strerror(saved));
        goto out;
    }
    if (err == FOTA_OK)
        err = check_state(repo.state);
    if (err != FOTA_OK) {
        cli_error(cmd, path, "bad repository state file: %s", fota_strerror(err));
        goto out;
    }
    *ret_repo = repo;
    repo.dir = NULL;
    repo.state = NULL;
    repo.locked = 0;
    status = CLI_OK;
out:
    free(path);
    cli_repo_close(&repo);
    return status;
}

void cli_repo_close(struct cli_repo *repo)
{
    /* Closing the descriptor releases the fcntl lock. */
    if (repo->locked)
        close(repo->lock_fd);
    free(repo->dir);
    json_decref(repo->state);
    repo->dir = NULL;
    repo->state = NULL;
    repo->locked = 0;
}

/* Write a file meant to be read by people (state, staged roles): indented
 * JSON and "\n", replacing path atomically. */
static int save_json(const char *cmd, const char *path, const json_t *value)
{
    char *buf = NULL;
    size_t len = 0;
    fota_err err;

    err = cli_json_bytes(value, 0, &buf, &len);
    if (err != FOTA_OK) {
        cli_error(cmd, path, "%s", fota_strerror(err));
        return CLI_FAIL;
    }
    err = fota_posix_write_file(path, buf, len, 0644, 0);
    if (err != FOTA_OK)
        cli_error(cmd, path, "%s", cli_io_reason(err));
    free(buf);
    return err == FOTA_OK ? CLI_OK : CLI_FAIL;
}

int cli_repo_save_state(const char *cmd, struct cli_repo *repo)
{
    char *path = cli_path(repo->dir, "fota-repo.json");
    int status;

    if (path == NULL) {
        cli_error(cmd, NULL, "out of memory");
        return CLI_FAIL;
    }
    status = save_json(cmd, path, repo->state);
    free(path);
    return status;
}

const char *cli_repo_delegator(const struct cli_repo *repo, const char *role)
{
    const json_t *delegations = json_object_get(repo->state, "delegations");
    const json_t *v;
    size_t i;

    json_array_foreach(delegations, i, v) {
        if (strcmp(json_string_value(json_object_get(v, "name")), role) == 0)
            return json_string_value(json_object_get(v, "from"));
    }
    return NULL;
}

int cli_repo_is_targets_role(const struct cli_repo *repo, const char *role)
{
    return strcmp(role, "targets") == 0 || cli_repo_delegator(repo, role) != NULL;
}

int64_t cli_repo_published_version(const struct cli_repo *repo, const char *role)
{
    const json_t *p = json_object_get(json_object_get(repo->state, "published"), role);

    return json_integer_value(json_object_get(p, "version"));
}

int cli_repo_default_expires(const char *cmd, const struct cli_repo *repo, const char *role,
                             char ret_expires[21])
{
    const char *key = cli_is_top_role(role) ? role : "delegated";
    const char *s = json_string_value(json_object_get(json_object_get(repo->state, "expires"), key));

    return cli_expiry_option(cmd, "fota-repo.json expires", s != NULL ? s : "", ret_expires) ==
                   CLI_OK
               ? CLI_OK
               : CLI_FAIL;
}

char *cli_repo_staged_path(const struct cli_repo *repo, const char *role)
{
    char enc[CLI_MAX_ENCODED_ROLE + 1];

    if (fota_tuf_encode_name(role, enc, sizeof enc) != FOTA_OK)
        return NULL;
    return cli_pathf("%s/staged/%s.json", repo->dir, enc);
}

char *cli_repo_metadata_path(const struct cli_repo *repo, int64_t version, const char *role)
{
    char enc[CLI_MAX_ENCODED_ROLE + 1];

    if (fota_tuf_encode_name(role, enc, sizeof enc) != FOTA_OK)
        return NULL;
    if (version > 0)
        return cli_pathf("%s/metadata/%lld.%s.json", repo->dir, (long long)version, enc);
    return cli_pathf("%s/metadata/%s.json", repo->dir, enc);
}

int64_t cli_env_version(const json_t *env)
{
    return json_integer_value(json_object_get(json_object_get(env, "signed"), "version"));
}

const char *cli_env_expires(const json_t *env)
{
    return json_string_value(json_object_get(json_object_get(env, "signed"), "expires"));
}

fota_err cli_check_envelope(const json_t *env, const char *type)
{
    return fota_tuf_repo_check_envelope(env, type);
}

static int load_envelope(const char *cmd, const char *path, const char *type, json_t **ret_env)
{
    json_t *env = NULL;
    int saved = 0;
    fota_err err;

    err = cli_read_json(path, CLI_MAX_METADATA, &env, &saved);
    if (err == FOTA_E_IO && saved != 0) {
        cli_error(cmd, path, "%s", strerror(saved));
        return CLI_FAIL;
    }
    if (err == FOTA_OK)
        err = cli_check_envelope(env, type);
    if (err != FOTA_OK) {
        cli_error(cmd, path, "%s", err == FOTA_E_NOT_FOUND ? "missing" : fota_strerror(err));
        json_decref(env);
        return CLI_FAIL;
    }
    *ret_env = env;
    return CLI_OK;
}

int cli_repo_load_staged(const char *cmd, const struct cli_repo *repo, const char *role,
                         json_t **ret_env)
{
    char *path;
    int status;

    if (strcmp(role, "root") != 0 && !cli_repo_is_targets_role(repo, role)) {
        cli_error(cmd, role, "no such role in this repository");
        return CLI_FAIL;
    }
    path = cli_repo_staged_path(repo, role);
    if (path == NULL) {
        cli_error(cmd, role, "bad role name");
        return CLI_FAIL;
    }
    status = load_envelope(cmd, path, strcmp(role, "root") == 0 ? "root" : "targets", ret_env);
    free(path);
    return status;
}

int cli_repo_save_staged(const char *cmd, const struct cli_repo *repo, const char *role,
                         const json_t *env)
{
    char *path = cli_repo_staged_path(repo, role);
    int status;

    if (path == NULL) {
        cli_error(cmd, role, "bad role name");
        return CLI_FAIL;
    }
    status = save_json(cmd, path, env);
    free(path);
    return status;
}

int cli_repo_load_published_root(const char *cmd, const struct cli_repo *repo, json_t **ret_env)
{
    int64_t version = cli_repo_published_version(repo, "root");
    char *path;
    int status;

    if (version < 1) {
        *ret_env = NULL;
        return CLI_OK;
    }
    path = cli_repo_metadata_path(repo, version, "root");
    if (path == NULL) {
        cli_error(cmd, NULL, "out of memory");
        return CLI_FAIL;
    }
    status = load_envelope(cmd, path, "root", ret_env);
    free(path);
    return status;
}
