/* Deterministic random numbers for tests (xorshift64 + Box-Muller): the same sequence on every
 * machine and run, so a failing case can be replayed. Header-only; each test keeps its own
 * state. */
#ifndef STRATA_TESTS_SUPPORT_RNG_H
#define STRATA_TESTS_SUPPORT_RNG_H

#include <math.h>
#include <stdint.h>

/* Uniform in (0, 1). */
static inline double test_rng_uniform(uint64_t *s) {
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return ((*s >> 11) + 0.5) * (1.0 / 9007199254740992.0);
}

/* Standard normal. */
static inline float test_rng_gauss(uint64_t *s) {
    const double u = test_rng_uniform(s), v = test_rng_uniform(s);
    return (float)(sqrt(-2.0 * log(u)) * cos(6.283185307179586 * v));
}

#endif
