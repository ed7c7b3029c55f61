/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fota: the operator CLI. main() dispatches on the first word (key, image,
 * repo, release, root, rollout, device); each module parses its own options.
 * See docs/fota.md.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "fota/json.h"

#ifndef FOTA_VERSION
#define FOTA_VERSION "0.0.0"
#endif

static const char usage_text[] =
    "Usage: fota [--version] [--help] COMMAND [ARGS]\n"
    "\n"
    "The fota operator CLI: keys, signed firmware images, TUF repository signing,\n"
    "and releases, rollouts and devices on fota-server.\n"
    "\n"
    "Commands:\n"
    "  key new      generate a signing key (ed25519, ecdsa, rsa)\n"
    "  key show     print a key's id, type, scheme and public value\n"
    "  image sign   make a signed firmware image from a payload\n"
    "  image verify verify a signed image as a bootloader does\n"
    "  image inspect  print an image's header and trailer records\n"
    "  repo init    create a repository with its four top-level roles\n"
    "  repo sign    sign a staged role with offline keys\n"
    "  repo add-target, repo remove-target\n"
    "               edit the targets of a staged targets role\n"
    "  repo delegate  delegate target paths to a new role\n"
    "  repo bump    mark a staged role changed (new version and expiry)\n"
    "  repo rotate  change the keys of a top-level role (new root version)\n"
    "  repo publish verify staged roles, write metadata, snapshot, timestamp\n"
    "  repo status  staged and published versions, expiry, signatures\n"
    "  release push|list|show\n"
    "               publish images, signed targets and delegated roles through\n"
    "               fota-server\n"
    "  root push    publish a new root version (key rotation) through fota-server\n"
    "  rollout create|list|show|pause|resume|abort\n"
    "               roll a release out to devices in waves (fota-server)\n"
    "  device list|show|accept|reject|tag\n"
    "               the device registry of fota-server\n"
    "\n"
    "Run 'fota COMMAND --help' for the options of a command.\n"
    "Exit status: 0 success, 1 operation failed, 2 usage error.\n";

void cli_error(const char *cmd, const char *what, const char *fmt, ...)
{
    va_list ap;
    char reason[1024];

    va_start(ap, fmt);
    vsnprintf(reason, sizeof reason, fmt, ap);
    va_end(ap);
    if (what != NULL)
        fprintf(stderr, "fota: %s: %s: %s\n", cmd, what, reason);
    else
        fprintf(stderr, "fota: %s: %s\n", cmd, reason);
}

int64_t cli_now(void)
{
    return (int64_t)time(NULL);
}

int cli_print_json(const char *cmd, json_t *value)
{
    char *text = json_dumps(value, JSON_COMPACT | JSON_SORT_KEYS);

    if (text == NULL) {
        cli_error(cmd, NULL, "cannot encode JSON output: %s", fota_strerror(FOTA_E_NOMEM));
        return CLI_FAIL;
    }
    printf("%s\n", text);
    free(text);
    return CLI_OK;
}

int main(int argc, char **argv)
{
    const char *word;
    int status;

    if (argc < 2) {
        cli_error("usage", NULL, "missing command (try 'fota --help')");
        return CLI_USAGE;
    }
    word = argv[1];
    if (strcmp(word, "--help") == 0 || strcmp(word, "-h") == 0 || strcmp(word, "help") == 0) {
        fputs(usage_text, stdout);
        return CLI_OK;
    }
    if (strcmp(word, "--version") == 0 || strcmp(word, "version") == 0) {
        printf("fota %s\n", FOTA_VERSION);
        return CLI_OK;
    }
    if (strcmp(word, "key") == 0) {
        status = cli_cmd_key(argc - 2, argv + 2);
    } else if (strcmp(word, "image") == 0) {
        status = cli_cmd_image(argc - 2, argv + 2);
    } else if (strcmp(word, "repo") == 0) {
        status = cli_cmd_repo(argc - 2, argv + 2);
    } else if (strcmp(word, "release") == 0) {
        status = cli_cmd_release(argc - 2, argv + 2);
    } else if (strcmp(word, "rollout") == 0) {
        status = cli_cmd_rollout(argc - 2, argv + 2);
    } else if (strcmp(word, "device") == 0) {
        status = cli_cmd_device(argc - 2, argv + 2);
    } else if (strcmp(word, "root") == 0) {
        status = cli_cmd_root(argc - 2, argv + 2);
    } else {
        cli_error("usage", word, "unknown command (try 'fota --help')");
        status = CLI_USAGE;
    }
    /* A command that printed its --help returns CLI_HELP, as it stops at
     * once like after an error; for the shell it is a success. */
    return status == CLI_HELP ? CLI_OK : status;
}
