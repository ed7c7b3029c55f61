/* SPDX-License-Identifier: Apache-2.0 */
/* fuzz_tuf_timestamp: the TUF client engine with the fuzzed bytes as the timestamp role
 * (fuzz_tuf.h says how each input runs). */
#include "fuzz_common.h"
#include "fuzz_tuf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fz_tuf_run(FZ_TUF_TIMESTAMP, data, size);
    return 0;
}
