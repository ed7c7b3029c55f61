/* SPDX-License-Identifier: Apache-2.0 */
#ifndef FOTA_FUZZ_SERVER_H
#define FOTA_FUZZ_SERVER_H

/*
 * fota-server's handlers in process, for fuzz_server_device and
 * fuzz_server_api: the real route table, http.c's request helpers and every
 * endpoint module, over a real SQLite store and repository in a temporary
 * directory. Only libmicrohttpd's header and query lookup is replaced (the
 * link option --wrap=MHD_lookup_connection_value): requests never touch a
 * socket.
 *
 * The state every input starts from (made once per process, then copied
 * back before each input): `fota-server init` of the fixture repository,
 * operator tokens FZ_TOKEN_ADMIN / _DEPLOY / _READ, and the requests of
 * fuzz/fixture/server-setup/ replayed in order (the fixture device enrolled
 * and accepted, a release published, a rollout to it).
 *
 * Request text (server_api seeds, server-setup files):
 *     METHOD SP TARGET LF  (Name: value LF)*  LF  body
 * TARGET is the raw path and query; "{rollout}" in it stands for the
 * set-up rollout's id, "{device}" for the fixture device's id. Without an
 * Authorization header the admin token is sent; without a Content-Type,
 * application/json.
 *
 * Invariants checked on every request: a handler always sets a status
 * (100..599), and every JSON body it answers with is strict JSON.
 */

#include <stddef.h>
#include <stdint.h>

#define FZ_TOKEN_ADMIN "fz-admin-token-0123456789"
#define FZ_TOKEN_DEPLOY "fz-deploy-token-0123456789"
#define FZ_TOKEN_READ "fz-read-token-0123456789"

/* Make the starting state (once). */
void fz_server_init(void);

/* Put the starting state back: the database always, the repository when a
 * request since the last reset may have written to it. */
void fz_server_reset(void);

/* Run one request given as text. Returns the HTTP status, or 0 when the
 * text is not a request (nothing ran). */
unsigned fz_server_text(const uint8_t *data, size_t size);

/* Run one request; auth NULL: none. Returns the status. */
unsigned fz_server_call(const char *method, const char *target, const char *auth,
                        const char *content_type, const uint8_t *body, size_t body_len);

/* The fixture device's id and a session token for it. */
const char *fz_server_device_id(void);
const char *fz_server_session_token(void);

#endif
