/* SPDX-License-Identifier: Apache-2.0 */
#ifndef FOTA_CLI_H
#define FOTA_CLI_H

/*
 * Private header of the `fota` operator CLI (tools/fota). Nothing here is
 * part of libfota: symbols are prefixed cli_ and live only in this program.
 *
 * Conventions: every command returns an exit status (CLI_OK, CLI_FAIL,
 * CLI_USAGE) and reports its own errors on stderr as one line
 * "fota: <command>: <what>: <reason>" through cli_error(). Helpers that can
 * fail return CLI_OK or an exit status the caller passes up unchanged, having
 * already printed the error.
 */

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "fota/crypto.h"
#include "fota/error.h"
#include "fota/tuf.h"
#include "fota/tuf_repo.h"

enum {
    CLI_OK = 0,    /* success */
    CLI_FAIL = 1,  /* the operation failed: verification, threshold, I/O */
    CLI_USAGE = 2, /* bad or missing option */
    CLI_HELP = 3,  /* internal: --help was printed; commands return it as it
                    * is, and main() exits 0 */
};

/* Caps on what the tool reads. */
#define CLI_MAX_METADATA (16u * 1024u * 1024u) /* metadata and state files */
#define CLI_MAX_KEYFILE (64u * 1024u)          /* key files (PEM or .pub) */
#define CLI_MAX_CUSTOM (64u * 1024u)           /* --custom JSON */
#define CLI_MAX_NAME 1024u                     /* target path length */
#define CLI_MAX_ENCODED_ROLE 200u              /* encoded role name in file names */

#define CLI_SPEC_VERSION FOTA_TUF_SPEC_VERSION

/* ---- errors and output (main.c) ---------------------------------------- */

/* "fota: <cmd>: <what>: <reason>\n" on stderr; what may be NULL. */
void cli_error(const char *cmd, const char *what, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Seconds since the epoch (the clock every expiry is computed from). */
int64_t cli_now(void);

/* Print a JSON value as one compact line on stdout. CLI_FAIL on failure. */
int cli_print_json(const char *cmd, json_t *value);

/* ---- option parsing (opts.c) ------------------------------------------- */

enum {
    CLI_OPT_FLAG = 0,  /* --terminating */
    CLI_OPT_VALUE = 1, /* --repo DIR (at most once) */
    CLI_OPT_MULTI = 2, /* --key PRIV (repeatable) */
    CLI_OPT_KIND = 0x0f,
    /* or'ed with VALUE or MULTI: the option must be given */
    CLI_OPT_REQUIRED = 0x10,
};

struct cli_optspec {
    const char *name; /* with the dashes: "--repo" */
    unsigned kind;    /* CLI_OPT_FLAG, _VALUE or _MULTI, maybe | CLI_OPT_REQUIRED */
};

struct cli_optval {
    unsigned count;      /* how many times the option was given */
    const char *value;   /* CLI_OPT_VALUE: the value */
    const char **values; /* CLI_OPT_MULTI: count values, in order */
};

struct cli_args {
    struct cli_optval *opt; /* parallel to the spec array */
    size_t nopt;
    const char **pos;       /* positional arguments */
    size_t npos;
};

/*
 * Parse argv (argv[0] is the first argument after the command words) against
 * spec. "--name value" and "--name=value" are accepted, options in any order,
 * "--" ends the options. --help or -h anywhere prints usage on stdout and
 * returns CLI_HELP (the command returns it; main() exits 0). Unknown
 * options, a missing value, a value option given twice, a positional count
 * outside [min_pos, max_pos], or a required option not given (checked in
 * spec order, after the rest) print an error and return CLI_USAGE. On
 * CLI_OK, release with cli_args_free().
 */
int cli_parse(const char *cmd, const char *usage, const struct cli_optspec *spec, size_t nspec,
              int argc, char **argv, size_t min_pos, size_t max_pos, struct cli_args *ret_args);
void cli_args_free(struct cli_args *args);

/* A subcommand: argv[0] is its first argument (after "fota CMD NAME"). */
struct cli_subcommand {
    const char *name;
    int (*run)(int argc, char **argv);
};

/* Run the subcommand of cmd ("key", "repo") that argv[0] names. --help or -h
 * prints usage (CLI_OK); a missing or unknown subcommand is a usage error. */
int cli_dispatch(const char *cmd, const char *usage, const struct cli_subcommand *subs,
                 size_t nsubs, int argc, char **argv);

/* Parse a threshold value: an integer in [1, 1000]. CLI_USAGE on error. */
int cli_parse_threshold(const char *cmd, const char *opt, const char *s, unsigned *ret_n);

/* ---- expiry (expiry.c) ------------------------------------------------- */

/*
 * Parse EXPIRY: "<int><unit>" (unit s, m, h, d, w; optionally negative)
 * relative to now, or an absolute "YYYY-MM-DDTHH:MM:SSZ". The result must lie
 * between 1970 and 9999. FOTA_E_PARSE on anything else.
 */
fota_err cli_expiry_parse(const char *s, int64_t now, int64_t *ret_time);

/* Parse and format as the "expires" string; CLI_USAGE with an error naming
 * opt on a bad value. */
int cli_expiry_option(const char *cmd, const char *opt, const char *s, char ret_expires[21]);

/* ---- keys (key.c) ------------------------------------------------------ */

/* A private key loaded from a PEM file, with its TUF key object and id. */
struct cli_privkey {
    fota_privkey *key;
    json_t *keyobj;
    char keyid[FOTA_TUF_KEYID_HEX_LEN + 1];
    const char *path; /* borrowed */
};

/* A public key: a .pub key object file or a private PEM (its public half). */
struct cli_pubkey {
    json_t *keyobj; /* normalised {"keytype","scheme","keyval":{"public"}} */
    char keyid[FOTA_TUF_KEYID_HEX_LEN + 1];
    const char *path; /* borrowed */
};

int cli_load_privkey(const char *cmd, const char *path, struct cli_privkey *ret_key);
void cli_privkey_clear(struct cli_privkey *key);
int cli_load_pubkey(const char *cmd, const char *path, struct cli_pubkey *ret_key);
void cli_pubkey_clear(struct cli_pubkey *key);

/* Load n public keys given to option opt; two files naming the same key are
 * a usage error (CLI_USAGE). Release with cli_pubkeys_free(). */
int cli_load_pubkeys(const char *cmd, const char *opt, const char *const *paths, size_t n,
                     struct cli_pubkey **ret_keys);
void cli_pubkeys_free(struct cli_pubkey *keys, size_t n);
int cli_load_privkeys(const char *cmd, const char *const *paths, size_t n,
                      struct cli_privkey **ret_keys);
void cli_privkeys_free(struct cli_privkey *keys, size_t n);

int cli_cmd_key(int argc, char **argv);

/* ---- files (fileio.c) ---------------------------------------------- */

/*
 * Files are read, written (temp file, fsync, rename, fsync of the directory)
 * and directories created by the POSIX port (ports/posix/fota_posix.h:
 * fota_posix_read_file, fota_posix_write_file, fota_posix_atomic_*,
 * fota_posix_mkdirs, fota_posix_file_stream). What is here only adds the
 * CLI's error reporting.
 */

/* fota_posix_read_file, with the CLI's error codes: FOTA_E_NOT_FOUND,
 * FOTA_E_TOO_BIG (over max_len, as for every other cap of the CLI) or
 * FOTA_E_IO, when *ret_errno (may be NULL) gets errno. */
fota_err cli_read_file(const char *path, size_t max_len, uint8_t **ret_buf, size_t *ret_len,
                       int *ret_errno);

/* Read and strictly parse a JSON file (object at top level). */
fota_err cli_read_json(const char *path, size_t max_len, json_t **ret_value, int *ret_errno);

/* Why a fota_posix_* file call failed, for an error line: the system's
 * reason (strerror(errno)) where the port leaves one, else err's. Call it
 * right after the failing call, before errno can change. */
const char *cli_io_reason(fota_err err);

/* 1 when something (even a dangling link) exists at path, or when it
 * cannot be told that nothing does. */
int cli_path_exists(const char *path);

/* Join a and b with "/": malloc'ed, or NULL when out of memory. */
char *cli_path(const char *a, const char *b);
char *cli_pathf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Serialise a value: canonical (published metadata and .pub files: exactly
 * the canonical JSON, except that control characters inside strings, which
 * canonical JSON leaves raw, are escaped so that the file stays JSON), or
 * indented + "\n" (staged files and state, meant to be read by people). */
fota_err cli_json_bytes(const json_t *value, int canonical, char **ret_buf, size_t *ret_len);

/* ---- the repository (repo_store.c) ------------------------------------- */

struct cli_repo {
    char *dir;
    json_t *state; /* fota-repo.json */
    int locked;    /* lock_fd holds the repository lock */
    int lock_fd;
};

/* Defaults for fota-repo.json "expires". */
#define CLI_DEFAULT_ROOT_EXPIRY "365d"
#define CLI_DEFAULT_TARGETS_EXPIRY "90d"
#define CLI_DEFAULT_DELEGATED_EXPIRY "90d"
#define CLI_DEFAULT_SNAPSHOT_EXPIRY "7d"
#define CLI_DEFAULT_TIMESTAMP_EXPIRY "1d"

/* Open the repository in dir (NULL: "."): takes the repository lock
 * (REPO/.fota-lock, an fcntl write lock held until cli_repo_close, so that
 * a cron publish and an operator's edit never interleave), then loads and
 * checks fota-repo.json. */
int cli_repo_open(const char *cmd, const char *dir, struct cli_repo *ret_repo);
void cli_repo_close(struct cli_repo *repo);
int cli_repo_save_state(const char *cmd, struct cli_repo *repo);

int cli_is_top_role(const char *role);
/* 1 for "targets" and every delegated role the state knows. */
int cli_repo_is_targets_role(const struct cli_repo *repo, const char *role);
/* The delegator of a delegated role, or NULL. */
const char *cli_repo_delegator(const struct cli_repo *repo, const char *role);

/* Published version of role (0 when never published). */
int64_t cli_repo_published_version(const struct cli_repo *repo, const char *role);

/* Default expiry of role ("root", "targets", "snapshot", "timestamp", else
 * delegated) as an "expires" string computed from now. */
int cli_repo_default_expires(const char *cmd, const struct cli_repo *repo, const char *role,
                             char ret_expires[21]);

/* staged/<encoded role>.json and metadata/<prefix><encoded role>.json */
char *cli_repo_staged_path(const struct cli_repo *repo, const char *role);
char *cli_repo_metadata_path(const struct cli_repo *repo, int64_t version, const char *role);

/* Load a staged envelope, checking its shape and _type. */
int cli_repo_load_staged(const char *cmd, const struct cli_repo *repo, const char *role,
                         json_t **ret_env);
int cli_repo_save_staged(const char *cmd, const struct cli_repo *repo, const char *role,
                         const json_t *env);
/* The published root envelope (metadata/N.root.json), or *ret_env = NULL
 * when no root has been published. */
int cli_repo_load_published_root(const char *cmd, const struct cli_repo *repo, json_t **ret_env);

/* Check the envelope shape: {"signed":{"_type":type,"version":int>=1,
 * "expires":time,...},"signatures":[...]}. */
fota_err cli_check_envelope(const json_t *env, const char *type);
int64_t cli_env_version(const json_t *env);
const char *cli_env_expires(const json_t *env);

/* ---- role edits and verification (repo_role.c) -------------------------- */

/*
 * Commit an edit of a staged role: `before` is a copy of env["signed"] taken
 * before editing env. When nothing changed, nothing is written
 * (*ret_changed = 0). Otherwise signatures are cleared, and when the staged
 * role equalled the published one its version becomes published+1 and its
 * expiry the default (or `expires`, when not NULL, which always applies);
 * then the staged file is written. force (fota repo bump) commits even an
 * unchanged role.
 */
int cli_role_commit(const char *cmd, struct cli_repo *repo, const char *role, json_t *env,
                    const json_t *before, const char *expires, int force, int *ret_changed);

/* Index of keyid in a role's "keyids" array, or -1 (also when keyids is not
 * an array). */
int cli_keyids_index(const json_t *keyids, const char *keyid);
/* A JSON array of the key ids of keys, sorted (as TUF tools write them). */
json_t *cli_sorted_keyids(const struct cli_pubkey *keys, size_t n);
/* Sort a JSON array of strings in place. */
void cli_sort_strings(json_t *array);
/* Remove from keys every key id that no role in roles (an object of role
 * objects, or an array of delegated role objects) names. */
void cli_prune_keys(json_t *keys, const json_t *roles);

/* The entry of delegator_env's delegations.roles named role, or NULL. */
const json_t *cli_find_delegation(const json_t *delegator_env, const char *role);

/* The keys object and role object ({"keyids","threshold"}) that sign role,
 * as staged (borrowed from the envelopes given). */
int cli_role_keys(const char *cmd, const struct cli_repo *repo, const char *role,
                  const json_t *staged_root, json_t **owned_delegator, const json_t **ret_keys,
                  const json_t **ret_role);

struct cli_sigcount {
    int64_t version;
    unsigned valid, threshold;
    int have_old; /* a new root version: also counted against the old root */
    int64_t old_version;
    unsigned old_valid, old_threshold;
};

/* Count signatures on a staged role (see `fota repo sign`). */
int cli_role_count(const char *cmd, const struct cli_repo *repo, const char *role,
                   const json_t *env, const json_t *staged_root, const json_t *published_root,
                   struct cli_sigcount *ret_count);
int cli_sigcount_ok(const struct cli_sigcount *c);
/* "ROLE vV: S of T signatures[, root vO keys: S of T signatures]" */
void cli_sigcount_format(const char *role, const struct cli_sigcount *c, char *out, size_t size);

/* ---- commands ---------------------------------------------------------- */

int cli_cmd_image(int argc, char **argv);   /* image_cmd.c */
int cli_cmd_repo(int argc, char **argv);
int cli_repo_init(int argc, char **argv);
int cli_repo_sign(int argc, char **argv);
int cli_repo_add_target(int argc, char **argv);
int cli_repo_remove_target(int argc, char **argv);
int cli_repo_delegate(int argc, char **argv);
int cli_repo_bump(int argc, char **argv);
int cli_repo_rotate(int argc, char **argv);
int cli_repo_publish(int argc, char **argv);
int cli_repo_status(int argc, char **argv);
int cli_cmd_release(int argc, char **argv);  /* api_cmd.c: talks to fota-server */
int cli_cmd_rollout(int argc, char **argv);  /* api_cmd.c */
int cli_cmd_device(int argc, char **argv);   /* api_cmd.c */
int cli_cmd_root(int argc, char **argv);     /* api_cmd.c: new root versions */

#endif
