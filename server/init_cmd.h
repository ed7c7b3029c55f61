/* SPDX-License-Identifier: Apache-2.0 */
#ifndef FOTA_SERVER_INIT_CMD_H
#define FOTA_SERVER_INIT_CMD_H

/*
 * `fota-server init --data-dir DIR --repo REPO [serve options]`
 * (server/init_cmd.c): copy a published `fota repo` folder into DIR/repo
 * after checking that the server's snapshot and timestamp keys are the ones
 * its root names, and create the database. argv[0] is the first argument
 * after "init". Returns the exit status: 0, 1 (refused or failed), 2 (usage).
 */
int fota_server_cmd_init(int argc, char **argv);

#endif
