/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fota-sim: the device simulator. main() dispatches on the first word;
 * each command parses its own options. See docs/powercut.md.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "fota_posix.h"
#include "sim.h"

static const char usage_text[] =
    "Usage: fota-sim [--help] COMMAND [ARGS]\n"
    "\n"
    "Simulated devices for fota: flash in memory, power cuts on demand.\n"
    "\n"
    "Commands:\n"
    "  powercut   prove that a power cut at any flash operation of an update\n"
    "             leaves a device that boots a genuine image and completes\n"
    "             the update (docs/powercut.md)\n"
    "  fleet      run N simulated devices (flash file, boot state, identity,\n"
    "             agent each) against a fota-server, with fault injection\n"
    "             (docs/fleet.md)\n"
    "\n"
    "Run 'fota-sim COMMAND --help' for the options of a command.\n"
    "Exit status: 0 success, 1 failure, 2 usage error.\n";

int sim_parse_u64(const char *cmd, const char *name, const char *s, uint64_t min, uint64_t max,
                  uint64_t *ret)
{
    char prefix[64];

    if (fota_posix_parse_u64(s, min, max, ret) == 0)
        return 1;
    snprintf(prefix, sizeof(prefix), "fota-sim: %s", cmd);
    fota_posix_msg(prefix, "%s: '%s' is not a number in [%" PRIu64 ", %" PRIu64 "]", name,
                   s != NULL ? s : "", min, max);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "fota-sim: missing command (try 'fota-sim --help')\n");
        return SIM_EXIT_USAGE;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        fputs(usage_text, stdout);
        return SIM_EXIT_OK;
    }
    if (strcmp(argv[1], "powercut") == 0)
        return sim_powercut_main(argc - 1, argv + 1);
    if (strcmp(argv[1], "fleet") == 0)
        return sim_fleet_main(argc - 1, argv + 1);
    fprintf(stderr, "fota-sim: unknown command '%s' (try 'fota-sim --help')\n", argv[1]);
    return SIM_EXIT_USAGE;
}
