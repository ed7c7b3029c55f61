/* SPDX-License-Identifier: Apache-2.0 */
#ifndef FOTA_FUZZ_TUF_H
#define FOTA_FUZZ_TUF_H

/*
 * The TUF client engine (lib/tuf_client.c) over an in-memory port
 * (tests/unit/tuf_fixture.h) that serves the fixture repository
 * (fuzz/fixture/repo, root v1 trusted) with the fuzzed bytes in the place
 * of one role. Shared by fuzz_tuf_root, _timestamp, _snapshot, _targets.
 *
 * Every input runs several ways (docs/fuzzing.md):
 *   raw       the bytes as the remote file of the role;
 *   re-signed the input's "signed" part re-signed with every fixture key,
 *             so that mutations get past the signature check and reach the
 *             rules behind it (versions, expiry, meta, delegations...);
 *   trusted   the bytes as the device's stored trusted copy of the role
 *             (what storage hands back after a restart).
 * The role above the fuzzed one is re-signed without lengths and hashes
 * for it, so a mutated document is not refused by its hash alone.
 *
 * Invariant: after a refresh succeeds, a new client over the state it
 * stored refreshes again against the same repository without error.
 */

#include <stddef.h>
#include <stdint.h>

enum fz_tuf_role {
    FZ_TUF_ROOT = 0,
    FZ_TUF_TIMESTAMP = 1,
    FZ_TUF_SNAPSHOT = 2,
    FZ_TUF_TARGETS = 3,
};

void fz_tuf_run(enum fz_tuf_role role, const uint8_t *data, size_t size);

#endif
