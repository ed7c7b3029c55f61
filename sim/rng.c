/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The simulator's PRNG (splitmix64): tiny, fast and the same on every
 * machine, so that a seed names one run exactly. Not for anything secret.
 */
#include "sim.h"

void sim_rng_seed(struct sim_rng *r, uint64_t seed)
{
    r->s = seed;
}

uint64_t sim_rng_next(struct sim_rng *r)
{
    uint64_t z;

    r->s += 0x9e3779b97f4a7c15ull;
    z = r->s;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

uint64_t sim_rng_below(struct sim_rng *r, uint64_t n)
{
    /* Rejection keeps the draw uniform; n is small next to 2^64, so the loop
     * almost never runs twice. */
    uint64_t limit = UINT64_MAX - (UINT64_MAX % n);
    uint64_t x;

    do {
        x = sim_rng_next(r);
    } while (x >= limit);
    return x % n;
}
