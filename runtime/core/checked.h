/* Size arithmetic on values a user chose (shapes, starts, lengths, counts), checked: each returns
 * false when the exact result does not fit in int64, and the caller refuses the input with a message.
 * One place for it, so no product or sum of user sizes wraps silently into a small, valid-looking
 * number (a view past its storage, a buffer sized to nothing). */
#ifndef HR_CORE_CHECKED_H
#define HR_CORE_CHECKED_H

#include <stdbool.h>
#include <stdint.h>

static inline bool hr_checked_mul(int64_t a, int64_t b, int64_t *out) { return !__builtin_mul_overflow(a, b, out); }
static inline bool hr_checked_add(int64_t a, int64_t b, int64_t *out) { return !__builtin_add_overflow(a, b, out); }

/* The product of n sizes (each >= 0) into *out, false when it passes `limit` or when the product of
 * the nonzero sizes does (an empty tensor's strides are still those products). */
static inline bool hr_checked_numel(int n, const int64_t *shape, int64_t limit, int64_t *out) {
    int64_t p = 1;
    bool empty = false;
    for (int i = 0; i < n; i++) {
        if (shape[i] == 0) empty = true;
        else if (!hr_checked_mul(p, shape[i], &p) || p > limit) return false;
    }
    *out = empty ? 0 : p;
    return true;
}

#endif
