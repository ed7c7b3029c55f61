/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Option parsing and subcommand dispatch shared by every command.
 * Hand-written rather than getopt_long so that it stays within POSIX,
 * accepts values that begin with '-' ("--expires -1h"), and reports errors
 * in the CLI's one-line format.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static const struct cli_optspec *find_opt(const struct cli_optspec *spec, size_t nspec,
                                          const char *name, size_t name_len, size_t *ret_index)
{
    for (size_t i = 0; i < nspec; i++) {
        if (strlen(spec[i].name) == name_len && memcmp(spec[i].name, name, name_len) == 0) {
            *ret_index = i;
            return &spec[i];
        }
    }
    return NULL;
}

static int is_help(const char *arg)
{
    return strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0;
}

int cli_parse(const char *cmd, const char *usage, const struct cli_optspec *spec, size_t nspec,
              int argc, char **argv, size_t min_pos, size_t max_pos, struct cli_args *ret_args)
{
    struct cli_args args = {0};
    int status = CLI_USAGE;
    int options_done = 0;

    /* --help wins over every other problem on the line, as users expect. */
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--") == 0)
            break;
        if (is_help(argv[i])) {
            fputs(usage, stdout);
            return CLI_HELP;
        }
    }

    args.opt = calloc(nspec > 0 ? nspec : 1, sizeof *args.opt);
    args.pos = calloc((size_t)argc + 1, sizeof *args.pos);
    if (args.opt == NULL || args.pos == NULL) {
        cli_error(cmd, NULL, "out of memory");
        status = CLI_FAIL;
        goto out;
    }

    for (int i = 0; i < argc; i++) {
        const char *arg = argv[i];
        const char *eq;
        const char *value = NULL;
        size_t name_len;
        size_t idx = 0;
        const struct cli_optspec *o;
        struct cli_optval *v;

        if (options_done || arg[0] != '-' || strcmp(arg, "-") == 0) {
            args.pos[args.npos++] = arg;
            continue;
        }
        if (strcmp(arg, "--") == 0) {
            options_done = 1;
            continue;
        }
        eq = strchr(arg, '=');
        name_len = eq != NULL ? (size_t)(eq - arg) : strlen(arg);
        o = find_opt(spec, nspec, arg, name_len, &idx);
        if (o == NULL) {
            cli_error(cmd, arg, "unknown option (try 'fota %s --help')", cmd);
            goto out;
        }
        v = &args.opt[idx];
        if ((o->kind & CLI_OPT_KIND) == CLI_OPT_FLAG) {
            if (eq != NULL) {
                cli_error(cmd, o->name, "takes no value");
                goto out;
            }
            v->count++;
            continue;
        }
        if (eq != NULL) {
            value = eq + 1;
        } else {
            if (i + 1 >= argc) {
                cli_error(cmd, o->name, "missing value");
                goto out;
            }
            value = argv[++i];
        }
        if ((o->kind & CLI_OPT_KIND) == CLI_OPT_VALUE) {
            if (v->count > 0) {
                cli_error(cmd, o->name, "given more than once");
                goto out;
            }
            v->value = value;
            v->count = 1;
            continue;
        }
        if (v->values == NULL) {
            v->values = calloc((size_t)argc, sizeof *v->values);
            if (v->values == NULL) {
                cli_error(cmd, NULL, "out of memory");
                status = CLI_FAIL;
                goto out;
            }
        }
        v->values[v->count++] = value;
    }

    if (args.npos < min_pos) {
        cli_error(cmd, NULL, "missing argument (try 'fota %s --help')", cmd);
        goto out;
    }
    if (args.npos > max_pos) {
        cli_error(cmd, args.pos[max_pos], "unexpected argument (try 'fota %s --help')", cmd);
        goto out;
    }
    for (size_t i = 0; i < nspec; i++) {
        if ((spec[i].kind & CLI_OPT_REQUIRED) != 0 && args.opt[i].count == 0) {
            cli_error(cmd, spec[i].name, "missing (try 'fota %s --help')", cmd);
            goto out;
        }
    }
    args.nopt = nspec;
    *ret_args = args;
    args.opt = NULL;
    args.pos = NULL;
    status = CLI_OK;
out:
    if (args.opt != NULL) {
        for (size_t i = 0; i < nspec; i++)
            free(args.opt[i].values);
    }
    free(args.opt);
    free(args.pos);
    return status;
}

void cli_args_free(struct cli_args *args)
{
    if (args->opt != NULL) {
        for (size_t i = 0; i < args->nopt; i++)
            free(args->opt[i].values);
    }
    free(args->opt);
    free(args->pos);
    args->opt = NULL;
    args->pos = NULL;
    args->npos = 0;
    args->nopt = 0;
}

int cli_dispatch(const char *cmd, const char *usage, const struct cli_subcommand *subs,
                 size_t nsubs, int argc, char **argv)
{
    if (argc < 1) {
        cli_error(cmd, NULL, "missing subcommand (try 'fota %s --help')", cmd);
        return CLI_USAGE;
    }
    if (is_help(argv[0])) {
        fputs(usage, stdout);
        return CLI_OK;
    }
    for (size_t i = 0; i < nsubs; i++) {
        if (strcmp(argv[0], subs[i].name) == 0)
            return subs[i].run(argc - 1, argv + 1);
    }
    cli_error(cmd, argv[0], "unknown subcommand (try 'fota %s --help')", cmd);
    return CLI_USAGE;
}

int cli_parse_threshold(const char *cmd, const char *opt, const char *s, unsigned *ret_n)
{
    char *end = NULL;
    unsigned long n;

    if (s[0] < '0' || s[0] > '9') {
        cli_error(cmd, opt, "'%s' is not a positive integer", s);
        return CLI_USAGE;
    }
    errno = 0;
    n = strtoul(s, &end, 10);
    if (errno != 0 || *end != '\0' || n < 1 || n > 1000) {
        cli_error(cmd, opt, "'%s' is not an integer between 1 and 1000", s);
        return CLI_USAGE;
    }
    *ret_n = (unsigned)n;
    return CLI_OK;
}
