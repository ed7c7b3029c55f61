/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz_server_api: every route of fota-server but the device endpoints'
 * bodies: the operator API (/api/v1/: devices, rollouts, audit, releases,
 * image uploads, new roots), the repository (/repo/), /metrics and the
 * dashboard, with the admin token unless the input brings its own
 * Authorization header (fuzz_server.h gives the request text format).
 *
 * Each input is one request against the set-up state (the fixture device
 * accepted, a release and a rollout), put back before every input.
 */
#include "fuzz_common.h"
#include "fuzz_server.h"

#define REQUEST_MAX (1u << 20)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > REQUEST_MAX)
        return 0;
    fz_server_init();
    fz_server_reset();
    (void)fz_server_text(data, size);
    return 0;
}
