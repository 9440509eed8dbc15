#include "text/bpe.h"

#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "text/pretokenize.h"

int hr_ids_push(hr_ids *v, const uint32_t *ids, size_t n) {
    if (v->n + n > v->cap) {
        size_t cap = v->cap ? v->cap : 1024;
        while (cap < v->n + n) cap *= 2;
        uint32_t *data = realloc(v->data, cap * sizeof *data);
        if (!data) return -1;
        v->data = data;
        v->cap = cap;
    }
    memcpy(v->data + v->n, ids, n * sizeof *ids);
    v->n += n;
    return 0;
}

void hr_ids_free(hr_ids *v) {
    free(v->data);
    *v = (hr_ids){0};
}

/* ---- building ---- */

hr_bpe *hr_bpe_alloc(uint32_t n_ids) {
    hr_bpe *b = calloc(1, sizeof *b);
    if (!b) return NULL;
    b->n_ids = n_ids;
    b->token = calloc(n_ids ? n_ids : 1, sizeof *b->token);
    b->token_len = calloc(n_ids ? n_ids : 1, sizeof *b->token_len);
    b->raw = calloc(n_ids ? n_ids : 1, sizeof *b->raw);
    b->raw_len = calloc(n_ids ? n_ids : 1, sizeof *b->raw_len);
    b->use_regex = true;
    b->trim_offsets = true;
    b->unk_id = -1;
    if (!b->token || !b->token_len || !b->raw || !b->raw_len) {
        hr_bpe_free(b);
        return NULL;
    }
    return b;
}

void hr_bpe_free(hr_bpe *b) {
    if (!b) return;
    for (uint32_t i = 0; i < b->n_ids; i++) {
        free(b->token ? b->token[i] : NULL);
        free(b->raw ? b->raw[i] : NULL);
    }
    free(b->token);
    free(b->token_len);
    free(b->raw);
    free(b->raw_len);
    free(b->special);
    hr_strmap_free(&b->vocab);
    hr_strmap_free(&b->raw_vocab);
    free(b->merges);
    hr_u64map_free(&b->merge_of);
    for (uint32_t i = 0; i < b->n_added; i++) free(b->added[i].content);
    free(b->added);
    free(b);
}

static char *dup_bytes(const char *s, size_t len) {
    char *d = malloc(len + 1);
    if (d) {
        memcpy(d, s, len);
        d[len] = 0;
    }
    return d;
}

/* A token for error messages: at most 40 bytes, quoted. */
static const char *shown(const char *s, size_t len, char *buf, size_t cap) {
    snprintf(buf, cap, "'%.*s%s'", (int)(len > 40 ? 40 : len), s, len > 40 ? "..." : "");
    return buf;
}

int hr_bpe_set_token(hr_bpe *b, uint32_t id, const char *s, size_t len, char *err) {
    char buf[64];
    if (id >= b->n_ids) return snprintf(err, HR_BPE_ERR, "id %u is outside 0..%u", id, b->n_ids - 1), -1;
    if (b->token[id])
        return snprintf(err, HR_BPE_ERR, "id %u is given to both %s and another token", id,
                        shown(s, len, buf, sizeof buf)), -1;
    if (!(b->token[id] = dup_bytes(s, len))) return snprintf(err, HR_BPE_ERR, "out of memory"), -1;
    b->token_len[id] = (uint32_t)len;
    bool inserted;
    uint32_t *slot = hr_strmap_upsert(&b->vocab, b->token[id], len, id, &inserted);
    if (!slot) return snprintf(err, HR_BPE_ERR, "out of memory"), -1;
    if (!inserted)
        return snprintf(err, HR_BPE_ERR, "token %s appears twice (ids %u and %u)", shown(s, len, buf, sizeof buf),
                        *slot, id), -1;
    return 0;
}

int hr_bpe_add_merge(hr_bpe *b, uint32_t left, uint32_t right, char *err) {
    char buf[64];
    if (left >= b->n_ids || right >= b->n_ids || !b->token[left] || !b->token[right])
        return snprintf(err, HR_BPE_ERR, "merge %u refers to an unknown id", b->n_merges), -1;
    size_t la = b->token_len[left], lb = b->token_len[right];
    char *joined = malloc(la + lb + 1);
    if (!joined) return snprintf(err, HR_BPE_ERR, "out of memory"), -1;
    memcpy(joined, b->token[left], la);
    memcpy(joined + la, b->token[right], lb);
    uint32_t *merged = hr_strmap_get(&b->vocab, joined, la + lb);
    if (!merged) {
        snprintf(err, HR_BPE_ERR, "merge %u (%s + %s): the merged token %s is not in the vocab", b->n_merges,
                 b->token[left], b->token[right], shown(joined, la + lb, buf, sizeof buf));
        free(joined);
        return -1;
    }
    free(joined);
    if ((b->n_merges & (b->n_merges - 1)) == 0) { /* grow at powers of two */
        uint32_t(*m)[2] = realloc(b->merges, sizeof *m * (b->n_merges ? 2 * (size_t)b->n_merges : 1));
        if (!m) return snprintf(err, HR_BPE_ERR, "out of memory"), -1;
        b->merges = m;
    }
    int64_t *slot = hr_u64map_upsert(&b->merge_of, (uint64_t)left << 32 | right, 0, NULL);
    if (!slot) return snprintf(err, HR_BPE_ERR, "out of memory"), -1;
    *slot = (int64_t)((uint64_t)b->n_merges << 32 | *merged);
    b->merges[b->n_merges][0] = left;
    b->merges[b->n_merges][1] = right;
    b->n_merges++;
    return 0;
}

int hr_bpe_add_token(hr_bpe *b, const hr_added_token *t, char *err) {
    char buf[64];
    if (t->id >= b->n_ids) return snprintf(err, HR_BPE_ERR, "added token id %u is outside 0..%u", t->id, b->n_ids - 1), -1;
    if (t->len == 0) return snprintf(err, HR_BPE_ERR, "added token %u is empty", t->id), -1;
    for (uint32_t i = 0; i < b->n_added; i++)
        if (b->added[i].id == t->id)
            return snprintf(err, HR_BPE_ERR, "added token id %u appears twice", t->id), -1;
    if (b->token[t->id] && (b->token_len[t->id] != t->len || memcmp(b->token[t->id], t->content, t->len) != 0))
        return snprintf(err, HR_BPE_ERR, "added token %s has id %u, which the vocab gives to %s",
                        shown(t->content, t->len, buf, sizeof buf), t->id, b->token[t->id]), -1;
    hr_added_token *a = realloc(b->added, sizeof *a * (b->n_added + 1));
    if (!a) return snprintf(err, HR_BPE_ERR, "out of memory"), -1;
    b->added = a;
    a[b->n_added] = *t;
    if (!(a[b->n_added].content = dup_bytes(t->content, t->len))) return snprintf(err, HR_BPE_ERR, "out of memory"), -1;
    if (!b->token[t->id]) { /* an id beyond the model's vocabulary: known by its content */
        if (!(b->token[t->id] = dup_bytes(t->content, t->len))) return snprintf(err, HR_BPE_ERR, "out of memory"), -1;
        b->token_len[t->id] = (uint32_t)t->len;
    }
    b->n_added++;
    return 0;
}

static const hr_added_token *added_of(const hr_bpe *b, uint32_t id) {
    for (uint32_t i = 0; i < b->n_added; i++)
        if (b->added[i].id == id) return &b->added[i];
    return NULL;
}

int hr_bpe_finish(hr_bpe *b, char *err) {
    for (int c = 0; c < 256; c++) {
        uint8_t s[4];
        int len = hr_utf8_put(s, hr_byte_char((uint8_t)c));
        uint32_t *id = hr_strmap_get(&b->vocab, s, (size_t)len);
        b->byte_id[c] = id ? (int32_t)*id : -1;
    }
    for (uint32_t id = 0; id < b->n_ids; id++) {
        if (!b->token[id]) continue;
        const hr_added_token *a = added_of(b, id);
        uint8_t *raw = malloc(b->token_len[id] + 1);
        if (!raw) return snprintf(err, HR_BPE_ERR, "out of memory"), -1;
        long n = a ? -1 : hr_level_to_bytes((const uint8_t *)b->token[id], b->token_len[id], raw);
        if (n < 0) { /* an added token, or a string outside the byte table: its own bytes (as HF decodes it) */
            memcpy(raw, b->token[id], b->token_len[id]);
            n = (long)b->token_len[id];
        }
        raw[n] = 0;
        b->raw[id] = raw;
        b->raw_len[id] = (uint32_t)n;
        if (!a && !hr_strmap_upsert(&b->raw_vocab, raw, (size_t)n, id, NULL))
            return snprintf(err, HR_BPE_ERR, "out of memory"), -1;
    }
    free(b->special);
    if (!(b->special = calloc(b->n_ids, 1))) return snprintf(err, HR_BPE_ERR, "out of memory"), -1;
    memset(b->added_first, 0, sizeof b->added_first);
    for (uint32_t i = 0; i < b->n_added; i++) {
        b->special[b->added[i].id] = b->added[i].special;
        uint8_t c = (uint8_t)b->added[i].content[0];
        b->added_first[c >> 3] |= (uint8_t)(1u << (c & 7));
    }
    return 0;
}

hr_bpe *hr_bpe_new_bytes(void) {
    hr_bpe *b = hr_bpe_alloc(256);
    char err[HR_BPE_ERR];
    if (!b) return NULL;
    for (int c = 0; c < 256; c++) {
        uint8_t s[4];
        int len = hr_utf8_put(s, hr_byte_char((uint8_t)c));
        if (hr_bpe_set_token(b, (uint32_t)c, (const char *)s, (size_t)len, err)) goto fail;
    }
    b->use_regex = false; /* with no merges every byte is its own token: splitting changes nothing */
    if (hr_bpe_finish(b, err)) goto fail;
    return b;
fail:
    hr_bpe_free(b);
    return NULL;
}

int64_t hr_bpe_token_id(const hr_bpe *b, const char *s, size_t len) {
    for (uint32_t i = 0; i < b->n_added; i++)
        if (b->added[i].len == len && memcmp(b->added[i].content, s, len) == 0) return b->added[i].id;
    uint32_t *id = hr_strmap_get(&b->vocab, s, len);
    return id ? (int64_t)*id : -1;
}

int64_t hr_bpe_find_any(const hr_bpe *b, const char *const *names) {
    for (; *names; names++) {
        int64_t id = hr_bpe_token_id(b, *names, strlen(*names));
        if (id >= 0) return id;
    }
    return -1;
}

int64_t hr_bpe_eos_id(const hr_bpe *b) {
    static const char *const names[] = {"<eos>", "<|endoftext|>", "</s>", NULL};
    return hr_bpe_find_any(b, names);
}

/* ---- encoding ---- */

typedef struct {
    uint32_t rank, pos, id;
} merge_entry;

#define CACHE_KEY_BYTES (2u << 20)
#define CACHE_IDS (512u << 10)
#define CACHE_MAX_PIECE 64
#define CACHE_ENTRIES (32u << 10) /* a table that stays in the CPU caches */

struct hr_bpe_encoder {
    const hr_bpe *bpe;
    char err[HR_BPE_ERR];
    /* symbols of the piece being merged: a doubly linked list over an array */
    uint32_t *sym;
    int32_t *prev, *next;
    merge_entry *heap;
    size_t cap, heap_n;
    uint8_t *prefixed; /* a stretch with the prefix space */
    size_t prefixed_cap;
    /* recent pieces -> their ids: the key bytes and the ids live in two fixed arenas, emptied when full */
    hr_strmap cache;
    uint8_t *cache_keys;
    uint32_t *cache_ids;
    size_t keys_used, ids_used;
    hr_ids part; /* this thread's share of hr_bpe_encode_parallel */
};

hr_bpe_encoder *hr_bpe_encoder_new(const hr_bpe *bpe) {
    hr_bpe_encoder *e = calloc(1, sizeof *e);
    if (!e) return NULL;
    e->bpe = bpe;
    e->cache_keys = malloc(CACHE_KEY_BYTES);
    e->cache_ids = malloc(CACHE_IDS * sizeof *e->cache_ids);
    if (!e->cache_keys || !e->cache_ids) {
        hr_bpe_encoder_free(e);
        return NULL;
    }
    return e;
}

void hr_bpe_encoder_free(hr_bpe_encoder *e) {
    if (!e) return;
    free(e->sym);
    free(e->prev);
    free(e->next);
    free(e->heap);
    free(e->prefixed);
    hr_strmap_free(&e->cache);
    free(e->cache_keys);
    free(e->cache_ids);
    hr_ids_free(&e->part);
    free(e);
}

const char *hr_bpe_encoder_error(const hr_bpe_encoder *e) { return e->err; }

static int oom(hr_bpe_encoder *e) {
    snprintf(e->err, sizeof e->err, "out of memory");
    return -1;
}

static int reserve(hr_bpe_encoder *e, size_t n) {
    if (n <= e->cap) return 0;
    size_t cap = e->cap ? e->cap : 256;
    while (cap < n) cap *= 2;
    uint32_t *sym = realloc(e->sym, cap * sizeof *sym);
    if (sym) e->sym = sym;
    int32_t *prev = realloc(e->prev, cap * sizeof *prev);
    if (prev) e->prev = prev;
    int32_t *next = realloc(e->next, cap * sizeof *next);
    if (next) e->next = next;
    merge_entry *heap = realloc(e->heap, 2 * cap * sizeof *heap); /* each merge pushes at most two */
    if (heap) e->heap = heap;
    if (!sym || !prev || !next || !heap) return -1;
    e->cap = cap;
    return 0;
}

static bool entry_less(merge_entry a, merge_entry b) { return a.rank < b.rank || (a.rank == b.rank && a.pos < b.pos); }

static void heap_push(hr_bpe_encoder *e, merge_entry m) {
    size_t i = e->heap_n++;
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!entry_less(m, e->heap[parent])) break;
        e->heap[i] = e->heap[parent];
        i = parent;
    }
    e->heap[i] = m;
}

static merge_entry heap_pop(hr_bpe_encoder *e) {
    merge_entry top = e->heap[0], last = e->heap[--e->heap_n];
    size_t i = 0, n = e->heap_n;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n) break;
        if (c + 1 < n && entry_less(e->heap[c + 1], e->heap[c])) c++;
        if (!entry_less(e->heap[c], last)) break;
        e->heap[i] = e->heap[c];
        i = c;
    }
    if (n) e->heap[i] = last;
    return top;
}

/* Pushes the merge of the pair starting at symbol pos, if there is one. */
static void push_pair(hr_bpe_encoder *e, int32_t pos) {
    if (pos < 0 || e->next[pos] < 0) return;
    int64_t *m = hr_u64map_get(&e->bpe->merge_of, (uint64_t)e->sym[pos] << 32 | e->sym[e->next[pos]]);
    if (m) heap_push(e, (merge_entry){(uint32_t)((uint64_t)*m >> 32), (uint32_t)pos, (uint32_t)*m});
}

/* The ids of one piece, appended to out, without the cache. */
static int merge_piece(hr_bpe_encoder *e, const uint8_t *p, size_t n, hr_ids *out) {
    const hr_bpe *b = e->bpe;
    if (b->ignore_merges) {
        uint32_t *id = hr_strmap_get(&b->raw_vocab, p, n);
        if (id) return hr_ids_push(out, id, 1) ? oom(e) : 0;
    }
    if (reserve(e, n)) return oom(e);
    size_t m = 0;
    bool last_unk = false;
    for (size_t i = 0; i < n; i++) {
        int32_t id = b->byte_id[p[i]];
        if (id < 0) {
            if (b->unk_id < 0) {
                snprintf(e->err, sizeof e->err,
                         "byte 0x%02x has no token in the vocab and the tokenizer has no unk_token", p[i]);
                return -1;
            }
            if (b->fuse_unk && last_unk) continue;
            id = (int32_t)b->unk_id;
            last_unk = true;
        } else {
            last_unk = false;
        }
        e->sym[m] = (uint32_t)id;
        e->prev[m] = (int32_t)m - 1;
        e->next[m] = (int32_t)m + 1;
        m++;
    }
    if (m == 0) return 0;
    e->next[m - 1] = -1;
    if (b->n_merges) {
        e->heap_n = 0;
        for (size_t i = 0; i + 1 < m; i++) push_pair(e, (int32_t)i);
        while (e->heap_n) {
            merge_entry top = heap_pop(e);
            int32_t pos = (int32_t)top.pos, right = e->next[pos];
            if (e->prev[pos] == -2 || right < 0) continue; /* merged away, or now the last symbol */
            int64_t *cur = hr_u64map_get(&b->merge_of, (uint64_t)e->sym[pos] << 32 | e->sym[right]);
            if (!cur || (uint32_t)*cur != top.id) continue; /* a stale entry: the pair changed */
            e->sym[pos] = top.id;
            e->next[pos] = e->next[right];
            if (e->next[right] >= 0) e->prev[e->next[right]] = pos;
            e->prev[right] = -2; /* merged away */
            push_pair(e, e->prev[pos]);
            push_pair(e, pos);
        }
    }
    for (int32_t i = 0; i >= 0; i = e->next[i])
        if (hr_ids_push(out, &e->sym[i], 1)) return oom(e);
    return 0;
}

static int encode_piece(hr_bpe_encoder *e, const uint8_t *p, size_t n, hr_ids *out) {
    if (n > CACHE_MAX_PIECE) return merge_piece(e, p, n, out);
    uint32_t *hit = hr_strmap_get(&e->cache, p, n);
    if (hit) return hr_ids_push(out, e->cache_ids + *hit + 1, e->cache_ids[*hit]) ? oom(e) : 0;
    size_t before = out->n;
    if (merge_piece(e, p, n, out)) return -1;
    size_t count = out->n - before;
    if (e->keys_used + n > CACHE_KEY_BYTES || e->ids_used + count + 1 > CACHE_IDS || e->cache.count >= CACHE_ENTRIES) {
        hr_strmap_clear(&e->cache);
        e->keys_used = e->ids_used = 0;
    }
    uint8_t *key = e->cache_keys + e->keys_used;
    memcpy(key, p, n);
    uint32_t *slot = hr_strmap_upsert(&e->cache, key, n, (uint32_t)e->ids_used, NULL);
    if (!slot) return 0; /* no room to remember it: fine */
    e->keys_used += n;
    e->cache_ids[e->ids_used] = (uint32_t)count;
    memcpy(e->cache_ids + e->ids_used + 1, out->data + before, count * sizeof *out->data);
    e->ids_used += count + 1;
    return 0;
}

/* One stretch of text between added tokens. */
static int encode_stretch(hr_bpe_encoder *e, const uint8_t *s, size_t n, bool prefix, hr_ids *out) {
    const hr_bpe *b = e->bpe;
    if (n == 0) return 0;
    if (prefix && b->add_prefix_space && s[0] != ' ') {
        if (n + 1 > e->prefixed_cap) {
            uint8_t *buf = realloc(e->prefixed, n + 1);
            if (!buf) return oom(e);
            e->prefixed = buf;
            e->prefixed_cap = n + 1;
        }
        e->prefixed[0] = ' ';
        memcpy(e->prefixed + 1, s, n);
        s = e->prefixed;
        n++;
    }
    if (!b->use_regex) return encode_piece(e, s, n, out);
    for (size_t pos = 0; pos < n;) {
        size_t end = hr_pretok_next(s, n, pos);
        if (encode_piece(e, s + pos, end - pos, out)) return -1;
        pos = end;
    }
    return 0;
}

static bool is_space_byte(uint8_t c) { return c == ' ' || (c >= 0x09 && c <= 0x0d); }

static bool is_word_byte(const uint8_t *s, size_t n, size_t i) {
    int32_t cp;
    hr_utf8_get(s, n, i, &cp);
    return cp >= 0 && !(cp < 0x80 && (is_space_byte((uint8_t)cp) || (!((cp | 0x20) >= 'a' && (cp | 0x20) <= 'z') &&
                                                                       !(cp >= '0' && cp <= '9') && cp != '_')));
}

/* The start of the UTF-8 character that ends right before i. */
static size_t char_before(const uint8_t *s, size_t i) {
    size_t j = i - 1;
    while (j > 0 && i - j < 4 && (s[j] & 0xc0) == 0x80) j--;
    return j;
}

/* The next added token at or after from (leftmost, then longest): its [start, end) after lstrip and
 * rstrip, and the token. Returns false when there is none. floor: lstrip never reaches before it. */
static bool next_added(const hr_bpe *b, const uint8_t *s, size_t n, size_t from, size_t floor, size_t *start,
                       size_t *end, const hr_added_token **tok) {
    for (size_t i = from; i < n; i++) {
        if (!(b->added_first[s[i] >> 3] & (1u << (s[i] & 7)))) continue;
        const hr_added_token *best = NULL;
        for (uint32_t k = 0; k < b->n_added; k++) {
            const hr_added_token *t = &b->added[k];
            if (t->len > n - i || (best && t->len <= best->len) || memcmp(s + i, t->content, t->len) != 0) continue;
            if (t->single_word && ((i > 0 && is_word_byte(s, n, char_before(s, i))) ||
                                   (i + t->len < n && is_word_byte(s, n, i + t->len))))
                continue;
            best = t;
        }
        if (!best) continue;
        size_t a = i, z = i + best->len;
        if (best->lstrip)
            while (a > floor && is_space_byte(s[a - 1])) a--;
        if (best->rstrip)
            while (z < n && is_space_byte(s[z])) z++;
        *start = a;
        *end = z;
        *tok = best;
        return true;
    }
    return false;
}

int hr_bpe_encode(hr_bpe_encoder *e, const uint8_t *s, size_t n, bool at_start, hr_ids *out) {
    const hr_bpe *b = e->bpe;
    e->err[0] = 0;
    if (b->n_merges == 0 && !b->n_added && !b->add_prefix_space && !b->ignore_merges) { /* bytes: one token each */
        uint32_t ids[1024];
        for (size_t i = 0; i < n;) {
            size_t k = 0;
            for (; k < 1024 && i < n; k++, i++) {
                if (b->byte_id[s[i]] < 0) return merge_piece(e, s + i, 1, out); /* reports the byte */
                ids[k] = (uint32_t)b->byte_id[s[i]];
            }
            if (hr_ids_push(out, ids, k)) return oom(e);
        }
        return 0;
    }
    size_t pos = 0;
    bool first = true;
    while (pos < n) {
        size_t a = n, z = n;
        const hr_added_token *t = NULL;
        if (b->n_added) next_added(b, s, n, pos, pos, &a, &z, &t);
        if (a > pos && encode_stretch(e, s + pos, a - pos, at_start || !first, out)) return -1;
        first = false;
        if (!t) break;
        if (hr_ids_push(out, &t->id, 1)) return oom(e);
        pos = z;
    }
    return 0;
}

size_t hr_bpe_stream_cut(const hr_bpe *b, const uint8_t *s, size_t n) {
    for (uint32_t i = 0; i < b->n_added; i++)
        if (b->added[i].lstrip || memchr(b->added[i].content, '\n', b->added[i].len)) return 0;
    for (size_t pos = n; pos > 0; pos--) {
        if (s[pos - 1] != '\n') continue;
        if (pos == n) continue; /* what follows is not known yet */
        if (hr_pretok_safe_cut(s, n, pos)) return pos;
    }
    return 0;
}

int hr_bpe_encode_parallel(const hr_bpe *b, hr_bpe_encoder **encs, int threads, const uint8_t *s, size_t n,
                           bool at_start, hr_ids *out, char *err) {
    if (threads <= 0) threads = omp_get_max_threads();
    if (threads > 64) threads = 64;
    /* one part per thread, each ending at a safe cut near an equal share; small texts stay whole */
    size_t bounds[65] = {0}, share = n / (size_t)threads + 1;
    int n_parts = 0;
    while (bounds[n_parts] < n) {
        size_t from = bounds[n_parts], cut = n;
        if (n_parts + 1 < threads && share >= (1u << 16) && n - from > share) {
            size_t c = hr_bpe_stream_cut(b, s + from, share);
            if (c) cut = from + c;
        }
        bounds[++n_parts] = cut;
    }
    for (int t = 0; t < n_parts; t++)
        if (!encs[t] && !(encs[t] = hr_bpe_encoder_new(b))) return snprintf(err, HR_BPE_ERR, "out of memory"), -1;
    if (n_parts <= 1) {
        if (n && hr_bpe_encode(encs[0], s, n, at_start, out))
            return snprintf(err, HR_BPE_ERR, "%s", hr_bpe_encoder_error(encs[0])), -1;
        return 0;
    }
    /* each thread writes into its encoder's own buffer, kept from call to call: the pages are touched
     * once, not again for every block (page faults serialise threads) */
    int failed[64] = {0};
#pragma omp parallel for num_threads(n_parts) schedule(static, 1)
    for (int i = 0; i < n_parts; i++) {
        encs[i]->part.n = 0;
        failed[i] = hr_bpe_encode(encs[i], s + bounds[i], bounds[i + 1] - bounds[i], at_start && i == 0, &encs[i]->part);
    }
    for (int i = 0; i < n_parts; i++)
        if (failed[i]) return snprintf(err, HR_BPE_ERR, "%s", hr_bpe_encoder_error(encs[i])), -1;
    for (int i = 0; i < n_parts; i++)
        if (hr_ids_push(out, encs[i]->part.data, encs[i]->part.n)) return snprintf(err, HR_BPE_ERR, "out of memory"), -1;
    return 0;
}

/* ---- decoding ---- */

int hr_bpe_decode(const hr_bpe *b, const uint32_t *ids, size_t n, bool skip_special, uint8_t **out, size_t *out_len,
                  char *err) {
    size_t total = 0;
    for (size_t i = 0; i < n; i++) {
        if (ids[i] >= b->n_ids || !b->raw[ids[i]])
            return snprintf(err, HR_BPE_ERR, "id %u (position %zu) is not in the vocabulary (size %u)", ids[i], i + 1,
                            b->n_ids), -1;
        total += b->raw_len[ids[i]];
    }
    uint8_t *buf = malloc(total + 1), *p = buf;
    if (!buf) return snprintf(err, HR_BPE_ERR, "out of memory"), -1;
    for (size_t i = 0; i < n; i++) {
        if (skip_special && b->special && b->special[ids[i]]) continue;
        memcpy(p, b->raw[ids[i]], b->raw_len[ids[i]]);
        p += b->raw_len[ids[i]];
    }
    *p = 0;
    *out = buf;
    *out_len = (size_t)(p - buf);
    return 0;
}
