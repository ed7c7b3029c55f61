/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz_server_device: the device endpoints of fota-server (server/devices.c
 * and what they call: sessions, the check-in queue, the rollout planner, the
 * Director signer, the SQLite store), with the input as the request body.
 *
 * Each input starts from the set-up state (fuzz_server.h: the fixture
 * device accepted, a rollout waiting for it) and is posted, in this order,
 * to /device/v1/enrol and /device/v1/session (device-signed envelopes) and
 * to /device/v1/checkin and /device/v1/report with a valid session token of
 * the fixture device, so a body that gets past one endpoint's checks changes
 * the state the next one sees.
 */
#include <stdio.h>

#include "fuzz_common.h"
#include "fuzz_server.h"

#define BODY_MAX (1u << 20)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char auth[256];

    if (size > BODY_MAX)
        return 0;
    fz_server_init();
    fz_server_reset();
    snprintf(auth, sizeof(auth), "Bearer %s", fz_server_session_token());
    fz_server_call("POST", "/device/v1/enrol", NULL, "application/json", data, size);
    fz_server_call("POST", "/device/v1/session", NULL, "application/json", data, size);
    fz_server_call("POST", "/device/v1/checkin", auth, "application/json", data, size);
    fz_server_call("POST", "/device/v1/report", auth, "application/json", data, size);
    return 0;
}
