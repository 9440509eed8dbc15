#include "text/hashmap.h"

#include <stdlib.h>
#include <string.h>

/* FNV-1a over 8-byte words, then a 64-bit finaliser: fast on the short keys tokenizers use. */
uint64_t hr_hash_bytes(const uint8_t *p, size_t n) {
    uint64_t h = 0xcbf29ce484222325ull ^ (uint64_t)n;
    while (n >= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        h = (h ^ w) * 0x100000001b3ull;
        h ^= h >> 29;
        p += 8;
        n -= 8;
    }
    while (n--) h = (h ^ *p++) * 0x100000001b3ull;
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    return h ? h : 1;
}

static uint64_t mix64(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* ---- strings ---- */

static hr_strmap_slot *str_find(const hr_strmap *m, const void *key, size_t len, uint64_t h) {
    size_t mask = m->cap - 1;
    for (size_t i = h & mask;; i = (i + 1) & mask) {
        hr_strmap_slot *s = &m->slots[i];
        if (!s->hash) return s;
        if (s->hash == h && s->len == len && memcmp(s->key, key, len) == 0) return s;
    }
}

static int str_grow(hr_strmap *m) {
    size_t cap = m->cap ? m->cap * 2 : 64;
    hr_strmap_slot *slots = calloc(cap, sizeof *slots);
    if (!slots) return -1;
    hr_strmap old = *m;
    m->slots = slots;
    m->cap = cap;
    for (size_t i = 0; i < old.cap; i++)
        if (old.slots[i].hash) *str_find(m, old.slots[i].key, old.slots[i].len, old.slots[i].hash) = old.slots[i];
    free(old.slots);
    return 0;
}

uint32_t *hr_strmap_get(const hr_strmap *m, const void *key, size_t len) {
    if (!m->count) return NULL;
    hr_strmap_slot *s = str_find(m, key, len, hr_hash_bytes(key, len));
    return s->hash ? &s->value : NULL;
}

uint32_t *hr_strmap_upsert(hr_strmap *m, const void *key, size_t len, uint32_t init, bool *inserted) {
    if ((m->count + 1) * 2 > m->cap && str_grow(m)) return NULL;
    uint64_t h = hr_hash_bytes(key, len);
    hr_strmap_slot *s = str_find(m, key, len, h);
    if (inserted) *inserted = !s->hash;
    if (!s->hash) {
        *s = (hr_strmap_slot){.key = key, .len = (uint32_t)len, .value = init, .hash = h};
        m->count++;
    }
    return &s->value;
}

void hr_strmap_clear(hr_strmap *m) {
    if (m->slots) memset(m->slots, 0, m->cap * sizeof *m->slots);
    m->count = 0;
}

void hr_strmap_free(hr_strmap *m) {
    free(m->slots);
    *m = (hr_strmap){0};
}

/* ---- u64 ---- */

#define U64_EMPTY UINT64_MAX

static size_t u64_find(const hr_u64map *m, uint64_t key) {
    size_t mask = m->cap - 1;
    for (size_t i = mix64(key) & mask;; i = (i + 1) & mask)
        if (m->keys[i] == key || m->keys[i] == U64_EMPTY) return i;
}

static int u64_grow(hr_u64map *m) {
    size_t cap = m->cap ? m->cap * 2 : 64;
    uint64_t *keys = malloc(cap * sizeof *keys);
    int64_t *values = malloc(cap * sizeof *values);
    if (!keys || !values) {
        free(keys);
        free(values);
        return -1;
    }
    memset(keys, 0xff, cap * sizeof *keys);
    hr_u64map old = *m;
    m->keys = keys;
    m->values = values;
    m->cap = cap;
    for (size_t i = 0; i < old.cap; i++)
        if (old.keys[i] != U64_EMPTY) {
            size_t j = u64_find(m, old.keys[i]);
            m->keys[j] = old.keys[i];
            m->values[j] = old.values[i];
        }
    free(old.keys);
    free(old.values);
    return 0;
}

int64_t *hr_u64map_get(const hr_u64map *m, uint64_t key) {
    if (!m->count) return NULL;
    size_t i = u64_find(m, key);
    return m->keys[i] == key ? &m->values[i] : NULL;
}

int64_t *hr_u64map_upsert(hr_u64map *m, uint64_t key, int64_t init, bool *inserted) {
    if ((m->count + 1) * 2 > m->cap && u64_grow(m)) return NULL;
    size_t i = u64_find(m, key);
    if (inserted) *inserted = m->keys[i] != key;
    if (m->keys[i] != key) {
        m->keys[i] = key;
        m->values[i] = init;
        m->count++;
    }
    return &m->values[i];
}

void hr_u64map_clear(hr_u64map *m) {
    if (m->keys) memset(m->keys, 0xff, m->cap * sizeof *m->keys);
    m->count = 0;
}

void hr_u64map_free(hr_u64map *m) {
    free(m->keys);
    free(m->values);
    *m = (hr_u64map){0};
}
