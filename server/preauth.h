/* SPDX-License-Identifier: Apache-2.0 */
#ifndef FOTA_SERVER_PREAUTH_H
#define FOTA_SERVER_PREAUTH_H

/*
 * The pre-authorised device key list (config `preauthorized_keys`): a device
 * whose key is listed is accepted at once when it enrols, instead of waiting
 * for an operator.
 *
 * File format: one entry per line; blank lines and lines starting with '#'
 * are ignored; leading and trailing blanks are trimmed. An entry is either a
 * device id (the TUF key id: 64 hex characters) or a TUF public key object on
 * one line ({"keytype":..,"scheme":..,"keyval":{"public":..}}), whose key id
 * is computed. A file over FOTA_PREAUTH_FILE_MAX bytes, or with any malformed
 * line, is refused as a whole (nothing is pre-authorised, and it is logged),
 * so a typo can never authorise a key by accident.
 *
 * The parsed list is cached and re-read when the file changes (inode, size or
 * mtime), so an operator may edit it while the server runs.
 */

#define FOTA_PREAUTH_FILE_MAX (64u * 1024u * 1024u)
#define FOTA_PREAUTH_LINE_MAX 4096u

/* 1 when device_id (64 lower-case hex) is listed in the file at path; 0 when
 * it is not, when path is NULL or empty, or when the file is missing,
 * unreadable or malformed (the last two are logged). */
int fota_preauth_contains(const char *path, const char *device_id);

#endif
