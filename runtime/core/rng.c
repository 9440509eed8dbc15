#include "core/rng.h"

#include <math.h>

/* A keyed mix built from splitmix64-style finalisers: each round is a bijection of the counter,
 * keyed by a different function of the seed. Cheap, stateless and well distributed. */
static uint64_t mix64(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

uint64_t hr_rng_bits(uint64_t seed, uint64_t counter) {
    uint64_t key = mix64(seed + 0x9E3779B97F4A7C15ull);
    uint64_t x = counter;
    for (int round = 0; round < 4; round++) {
        x = mix64(x + key);
        key = mix64(key + 0xD1B54A32D192ED03ull);
    }
    return x;
}

double hr_rng_uniform01(uint64_t seed, uint64_t counter) {
    return (double)(hr_rng_bits(seed, counter) >> 11) * (1.0 / 9007199254740992.0);
}

double hr_rng_normal(uint64_t seed, uint64_t counter) {
    double u1 = hr_rng_uniform01(seed, 2 * counter), u2 = hr_rng_uniform01(seed, 2 * counter + 1);
    if (u1 < 1e-300) u1 = 1e-300; /* log(0) guard; probability 2^-53 */
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}
