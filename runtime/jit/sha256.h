/* SHA-256 (FIPS 180-4), for the kernel cache's keys and its entries' checksums. */
#ifndef HR_JIT_SHA256_H
#define HR_JIT_SHA256_H

#include <stddef.h>
#include <stdint.h>

typedef struct hr_sha256 {
    uint32_t h[8];
    uint64_t length;             /* bytes hashed so far */
    uint8_t block[64];
    size_t used;                 /* bytes waiting in block */
} hr_sha256;

void hr_sha256_init(hr_sha256 *s);
void hr_sha256_update(hr_sha256 *s, const void *data, size_t size);
void hr_sha256_final(hr_sha256 *s, uint8_t digest[32]);
/* The digest of one buffer as 64 lowercase hex digits and a NUL. */
void hr_sha256_hex(const void *data, size_t size, char hex[65]);
void hr_sha256_to_hex(const uint8_t digest[32], char hex[65]);

#endif
