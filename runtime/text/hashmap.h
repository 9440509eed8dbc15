/* Two small open-addressing hash tables for the tokenizers: byte strings -> u32 (vocabularies, word
 * counts) and u64 -> i64 (token pairs). Both grow by doubling at 50% load; neither removes. */
#ifndef HR_TEXT_HASHMAP_H
#define HR_TEXT_HASHMAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Byte strings to u32. Keys are borrowed: the caller keeps them alive (and unchanged) as long as the
 * map, which stores only the pointer, the length and the hash. */
typedef struct {
    const uint8_t *key;
    uint32_t len;
    uint32_t value;
    uint64_t hash; /* 0 marks an empty slot (hashes are forced non-zero) */
} hr_strmap_slot;

typedef struct {
    hr_strmap_slot *slots;
    size_t cap, count; /* cap is 0 or a power of two */
} hr_strmap;

uint64_t hr_hash_bytes(const uint8_t *p, size_t n);
/* The value of key, or NULL when absent. */
uint32_t *hr_strmap_get(const hr_strmap *m, const void *key, size_t len);
/* The value slot of key, inserting it with value `init` when absent (*inserted says which). NULL when
 * out of memory. */
uint32_t *hr_strmap_upsert(hr_strmap *m, const void *key, size_t len, uint32_t init, bool *inserted);
void hr_strmap_clear(hr_strmap *m); /* empties, keeps the memory */
void hr_strmap_free(hr_strmap *m);

/* u64 -> i64. The key UINT64_MAX is reserved (marks an empty slot). */
typedef struct {
    uint64_t *keys;
    int64_t *values;
    size_t cap, count;
} hr_u64map;

int64_t *hr_u64map_get(const hr_u64map *m, uint64_t key);
/* Inserts key with value `init` when absent. NULL when out of memory. */
int64_t *hr_u64map_upsert(hr_u64map *m, uint64_t key, int64_t init, bool *inserted);
void hr_u64map_clear(hr_u64map *m);
void hr_u64map_free(hr_u64map *m);

#endif
