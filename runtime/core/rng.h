/* Counter-based random numbers: value i of a stream is a pure function of (seed, i), so a tensor's
 * contents never depend on the number of threads or on the order in which elements are filled. */
#ifndef HR_RNG_H
#define HR_RNG_H

#include <stdint.h>

/* The runtime's generator: a seed and the next unused counter. Each draw of n values consumes
 * counters [offset, offset + n), so the stream is reproducible from (seed, offset). */
typedef struct {
    uint64_t seed;
    uint64_t offset;
} hr_rng;

/* Uniform 64-bit value number `counter` of stream `seed` (a 4-round Philox-style bijective mix). */
uint64_t hr_rng_bits(uint64_t seed, uint64_t counter);
/* Uniform in [0, 1) with 53 random bits. */
double hr_rng_uniform01(uint64_t seed, uint64_t counter);
/* Standard normal (Box-Muller on two uniforms drawn from counters 2c and 2c+1). */
double hr_rng_normal(uint64_t seed, uint64_t counter);

#endif
