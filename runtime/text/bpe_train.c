#include "text/bpe_train.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "text/pretokenize.h"

/* ---- counting pieces ---- */

typedef struct arena_chunk {
    struct arena_chunk *prev;
    size_t used, cap;
    uint8_t data[];
} arena_chunk;

struct hr_bpe_trainer {
    hr_bpe_train_opts opts;
    char **special; /* owned copies */
    size_t n_special;
    hr_strmap index;       /* piece bytes (in the arena) -> word number */
    arena_chunk *arena;
    const uint8_t **word;  /* the bytes of word i (in the arena) */
    uint32_t *word_len;
    int64_t *count;
    size_t n_words, cap_words;
    uint8_t *line;         /* a line that continues in the next feed, or the prefixed line */
    size_t line_n, line_cap;
};

hr_bpe_trainer *hr_bpe_trainer_new(const hr_bpe_train_opts *opts) {
    hr_bpe_trainer *tr = calloc(1, sizeof *tr);
    if (!tr) return NULL;
    tr->opts = *opts;
    size_t n = 0;
    while (opts->special && opts->special[n]) n++;
    tr->special = calloc(n + 1, sizeof *tr->special);
    if (!tr->special) goto fail;
    for (size_t i = 0; i < n; i++)
        if (!(tr->special[i] = strdup(opts->special[i]))) goto fail;
    tr->n_special = n;
    tr->opts.special = NULL;
    return tr;
fail:
    hr_bpe_trainer_free(tr);
    return NULL;
}

void hr_bpe_trainer_free(hr_bpe_trainer *tr) {
    if (!tr) return;
    for (size_t i = 0; tr->special && tr->special[i]; i++) free(tr->special[i]);
    free(tr->special);
    hr_strmap_free(&tr->index);
    while (tr->arena) {
        arena_chunk *prev = tr->arena->prev;
        free(tr->arena);
        tr->arena = prev;
    }
    free(tr->word);
    free(tr->word_len);
    free(tr->count);
    free(tr->line);
    free(tr);
}

uint64_t hr_bpe_trainer_words(const hr_bpe_trainer *tr) { return tr->n_words; }

static uint8_t *arena_copy(hr_bpe_trainer *tr, const uint8_t *p, size_t n) {
    if (!tr->arena || tr->arena->cap - tr->arena->used < n) {
        size_t cap = n > (1u << 20) ? n : (1u << 20);
        arena_chunk *c = malloc(sizeof *c + cap);
        if (!c) return NULL;
        *c = (arena_chunk){.prev = tr->arena, .cap = cap};
        tr->arena = c;
    }
    uint8_t *dst = tr->arena->data + tr->arena->used;
    memcpy(dst, p, n);
    tr->arena->used += n;
    return dst;
}

static int count_piece(hr_bpe_trainer *tr, const uint8_t *p, size_t n) {
    uint32_t *w = hr_strmap_get(&tr->index, p, n);
    if (w) {
        tr->count[*w]++;
        return 0;
    }
    if (tr->n_words == tr->cap_words) {
        size_t cap = tr->cap_words ? 2 * tr->cap_words : 4096;
        const uint8_t **word = realloc(tr->word, cap * sizeof *word);
        if (word) tr->word = word;
        uint32_t *len = realloc(tr->word_len, cap * sizeof *len);
        if (len) tr->word_len = len;
        int64_t *count = realloc(tr->count, cap * sizeof *count);
        if (count) tr->count = count;
        if (!word || !len || !count) return -1;
        tr->cap_words = cap;
    }
    uint8_t *key = arena_copy(tr, p, n);
    if (!key || !hr_strmap_upsert(&tr->index, key, n, (uint32_t)tr->n_words, NULL)) return -1;
    tr->word[tr->n_words] = key;
    tr->word_len[tr->n_words] = (uint32_t)n;
    tr->count[tr->n_words++] = 1;
    return 0;
}

static int line_reserve(hr_bpe_trainer *tr, size_t n) {
    if (n <= tr->line_cap) return 0;
    size_t cap = tr->line_cap ? tr->line_cap : 4096;
    while (cap < n) cap *= 2;
    uint8_t *line = realloc(tr->line, cap);
    if (!line) return -1;
    tr->line = line;
    tr->line_cap = cap;
    return 0;
}

/* One line (one sequence, as Hugging Face reads files): pre-tokenized alone, its pieces counted. */
static int count_line(hr_bpe_trainer *tr, const uint8_t *s, size_t n) {
    if (n == 0) return 0;
    if (tr->opts.add_prefix_space && s[0] != ' ') {
        if (s != tr->line) { /* the line is in the caller's buffer: copy it after a space */
            if (line_reserve(tr, n + 1)) return -1;
            memcpy(tr->line + 1, s, n);
        } else {
            if (line_reserve(tr, n + 1)) return -1;
            memmove(tr->line + 1, tr->line, n);
        }
        tr->line[0] = ' ';
        s = tr->line;
        n++;
    }
    for (size_t pos = 0; pos < n;) {
        size_t end = hr_pretok_next(s, n, pos);
        if (count_piece(tr, s + pos, end - pos)) return -1;
        pos = end;
    }
    return 0;
}

int hr_bpe_trainer_feed(hr_bpe_trainer *tr, const uint8_t *text, size_t n) {
    size_t pos = 0;
    while (pos < n) {
        const uint8_t *nl = memchr(text + pos, '\n', n - pos);
        size_t end = nl ? (size_t)(nl - text) + 1 : n;
        if (!nl || tr->line_n) { /* the line started in an earlier call, or continues in a later one */
            if (line_reserve(tr, tr->line_n + (end - pos) + 1)) return -1;
            memcpy(tr->line + tr->line_n, text + pos, end - pos);
            tr->line_n += end - pos;
            if (nl) {
                size_t len = tr->line_n;
                tr->line_n = 0;
                if (count_line(tr, tr->line, len)) return -1;
            }
        } else if (count_line(tr, text + pos, end - pos)) {
            return -1;
        }
        pos = end;
    }
    return 0;
}

int hr_bpe_trainer_end_file(hr_bpe_trainer *tr) {
    size_t len = tr->line_n;
    tr->line_n = 0;
    return count_line(tr, tr->line, len);
}

/* ---- merging ---- */

typedef struct {
    uint32_t *v;
    uint32_t n, cap;
} word_set; /* word numbers, each once */

static int set_add(word_set *s, uint32_t w) {
    if (s->n && s->v[s->n - 1] == w) return 0; /* a word's changes arrive together */
    if (s->n == s->cap) {
        uint32_t cap = s->cap ? 2 * s->cap : 4;
        uint32_t *v = realloc(s->v, cap * sizeof *v);
        if (!v) return -1;
        s->v = v;
        s->cap = cap;
    }
    s->v[s->n++] = w;
    return 0;
}

typedef struct {
    uint64_t count;
    uint64_t pair; /* left << 32 | right: comparing these compares (left, right) */
    word_set pos;  /* the words the pair was seen in when this entry was made */
} queue_entry;

/* Hugging Face's order: the larger count first, then the smaller pair. */
static bool before(const queue_entry *a, const queue_entry *b) {
    return a->count > b->count || (a->count == b->count && a->pair < b->pair);
}

typedef struct {
    queue_entry *e;
    size_t n, cap;
} queue;

static int queue_push(queue *q, queue_entry x) {
    if (q->n == q->cap) {
        size_t cap = q->cap ? 2 * q->cap : 1024;
        queue_entry *e = realloc(q->e, cap * sizeof *e);
        if (!e) return -1;
        q->e = e;
        q->cap = cap;
    }
    size_t i = q->n++;
    while (i > 0 && before(&x, &q->e[(i - 1) / 2])) {
        q->e[i] = q->e[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    q->e[i] = x;
    return 0;
}

static queue_entry queue_pop(queue *q) {
    queue_entry top = q->e[0], last = q->e[--q->n];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= q->n) break;
        if (c + 1 < q->n && before(&q->e[c + 1], &q->e[c])) c++;
        if (!before(&q->e[c], &last)) break;
        q->e[i] = q->e[c];
        i = c;
    }
    if (q->n) q->e[i] = last;
    return top;
}

/* The pairs touched by one merge step: pair -> a word set (index into sets). */
typedef struct {
    hr_u64map where;
    word_set *sets;
    size_t n_sets, cap_sets;
} updates;

static word_set *updates_set(updates *u, uint64_t pair) {
    bool inserted;
    int64_t *slot = hr_u64map_upsert(&u->where, pair, (int64_t)u->n_sets, &inserted);
    if (!slot) return NULL;
    if (inserted) {
        if (u->n_sets == u->cap_sets) {
            size_t cap = u->cap_sets ? 2 * u->cap_sets : 1024;
            word_set *sets = realloc(u->sets, cap * sizeof *sets);
            if (!sets) return NULL;
            u->sets = sets;
            u->cap_sets = cap;
        }
        u->sets[u->n_sets++] = (word_set){0};
    }
    return &u->sets[*slot];
}

/* Queues every pair touched (with the words it was seen in) whose count is positive, as Hugging Face
 * does after each merge, and empties the updates. Returns 0, or -1 when out of memory (the word sets
 * not yet queued are freed with the updates). */
static int queue_updates(queue *q, updates *u, const hr_u64map *pair_count) {
    int rc = 0;
    for (size_t k = 0; k < u->where.cap && u->where.count; k++) {
        if (u->where.keys[k] == UINT64_MAX) continue;
        word_set *s = &u->sets[u->where.values[k]];
        int64_t count = *hr_u64map_get(pair_count, u->where.keys[k]);
        if (!rc && count > 0 && !(rc = queue_push(q, (queue_entry){(uint64_t)count, u->where.keys[k], *s}))) {
            *s = (word_set){0}; /* now the queue's */
        }
        free(s->v);
        *s = (word_set){0};
    }
    hr_u64map_clear(&u->where);
    u->n_sets = 0;
    return rc;
}

typedef struct {
    uint32_t *sym;
    uint32_t len;
} word_syms;

typedef struct {
    hr_u64map *pair_count;
    updates *upd;
    int64_t count; /* of the word being merged */
    uint32_t w;
    int failed;
} change_ctx;

static void change(change_ctx *c, uint32_t a, uint32_t b, int delta) {
    uint64_t pair = (uint64_t)a << 32 | b;
    int64_t *pc = hr_u64map_upsert(c->pair_count, pair, 0, NULL);
    if (!pc) {
        c->failed = 1;
        return;
    }
    *pc += delta * c->count;
    if (delta > 0) {
        word_set *s = updates_set(c->upd, pair);
        if (!s || set_add(s, c->w)) c->failed = 1;
    }
}

/* Replaces every (a, b) in the word, left to right, by id, reporting the pairs that disappear and
 * appear around each one (Hugging Face's Word::merge). */
static void merge_word(word_syms *word, uint32_t a, uint32_t b, uint32_t id, change_ctx *c) {
    uint32_t *s = word->sym;
    for (uint32_t i = 0; i < word->len; i++) {
        if (s[i] != a || i + 1 >= word->len || s[i + 1] != b) continue;
        if (i > 0) {
            change(c, s[i - 1], a, -1);
            change(c, s[i - 1], id, +1);
        }
        s[i] = id;
        memmove(s + i + 1, s + i + 2, (word->len - i - 2) * sizeof *s);
        word->len--;
        if (i + 1 < word->len) {
            change(c, b, s[i + 1], -1);
            change(c, id, s[i + 1], +1);
        }
    }
}

typedef struct {
    char **str; /* id -> token string (byte-level), owned */
    uint32_t *len;
    size_t n, cap;
    hr_strmap ids; /* string -> id (keys are str[]) */
} vocab_list;

/* The id of s, added at the end when new. -1 when out of memory. */
static int64_t vocab_add(vocab_list *v, const char *s, size_t len) {
    uint32_t *id = hr_strmap_get(&v->ids, s, len);
    if (id) return *id;
    if (v->n == v->cap) {
        size_t cap = v->cap ? 2 * v->cap : 1024;
        char **str = realloc(v->str, cap * sizeof *str);
        if (str) v->str = str;
        uint32_t *l = realloc(v->len, cap * sizeof *l);
        if (l) v->len = l;
        if (!str || !l) return -1;
        v->cap = cap;
    }
    char *copy = malloc(len + 1);
    if (!copy) return -1;
    memcpy(copy, s, len);
    copy[len] = 0;
    v->str[v->n] = copy;
    v->len[v->n] = (uint32_t)len;
    if (!hr_strmap_upsert(&v->ids, copy, len, (uint32_t)v->n, NULL)) {
        free(copy);
        return -1;
    }
    return (int64_t)v->n++;
}

static void vocab_free(vocab_list *v) {
    for (size_t i = 0; i < v->n; i++) free(v->str[i]);
    free(v->str);
    free(v->len);
    hr_strmap_free(&v->ids);
}

static int cmp_u32(const void *a, const void *b) {
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

/* The tokenizer for the vocabulary and merges found. */
static hr_bpe *build(const hr_bpe_trainer *tr, const vocab_list *v, const uint64_t *merges, size_t n_merges,
                     char *err) {
    hr_bpe *b = hr_bpe_alloc((uint32_t)v->n);
    if (!b) return snprintf(err, HR_BPE_ERR, "out of memory"), NULL;
    for (size_t i = 0; i < v->n; i++)
        if (hr_bpe_set_token(b, (uint32_t)i, v->str[i], v->len[i], err)) goto fail;
    for (size_t i = 0; i < n_merges; i++)
        if (hr_bpe_add_merge(b, (uint32_t)(merges[i] >> 32), (uint32_t)merges[i], err)) goto fail;
    for (size_t i = 0; i < tr->n_special; i++) {
        hr_added_token t = {.content = tr->special[i], .len = strlen(tr->special[i]), .special = true};
        t.id = *hr_strmap_get(&v->ids, t.content, t.len);
        bool seen = false; /* a special token given twice is added once */
        for (uint32_t k = 0; k < b->n_added; k++) seen |= b->added[k].id == t.id;
        if (!seen && hr_bpe_add_token(b, &t, err)) goto fail;
    }
    b->add_prefix_space = tr->opts.add_prefix_space;
    if (hr_bpe_finish(b, err)) goto fail;
    return b;
fail:
    hr_bpe_free(b);
    return NULL;
}

hr_bpe *hr_bpe_trainer_finish(hr_bpe_trainer *tr, char *err) {
    hr_bpe *result = NULL;
    vocab_list v = {0};
    word_syms *words = NULL;
    hr_u64map pair_count = {0};
    updates upd = {0};
    queue q = {0};
    uint64_t *merges = NULL;
    size_t n_merges = 0, cap_merges = 0;
    err[0] = 0;
    if (hr_bpe_trainer_end_file(tr)) goto oom;
    for (size_t i = 0; i < tr->n_special; i++) {
        if (!tr->special[i][0]) return snprintf(err, HR_BPE_ERR, "a special token is empty"), NULL;
        if (vocab_add(&v, tr->special[i], strlen(tr->special[i])) < 0) goto oom;
    }
    /* the 256 byte characters, in code point order */
    uint32_t order[256];
    for (int c = 0; c < 256; c++) order[c] = hr_byte_char((uint8_t)c) << 8 | (uint32_t)c;
    qsort(order, 256, sizeof *order, cmp_u32);
    uint32_t byte_sym[256];
    for (int k = 0; k < 256; k++) {
        uint8_t s[4];
        int len = hr_utf8_put(s, order[k] >> 8);
        int64_t id = vocab_add(&v, (const char *)s, (size_t)len);
        if (id < 0) goto oom;
        byte_sym[order[k] & 0xff] = (uint32_t)id;
    }
    /* the words as symbols, their pairs counted */
    words = calloc(tr->n_words ? tr->n_words : 1, sizeof *words);
    if (!words) goto oom;
    for (uint32_t w = 0; w < tr->n_words; w++) {
        uint32_t n = tr->word_len[w];
        if (!(words[w].sym = malloc((n ? n : 1) * sizeof(uint32_t)))) goto oom;
        for (uint32_t i = 0; i < n; i++) words[w].sym[i] = byte_sym[tr->word[w][i]];
        words[w].len = n;
        for (uint32_t i = 0; i + 1 < n; i++) {
            uint64_t pair = (uint64_t)words[w].sym[i] << 32 | words[w].sym[i + 1];
            int64_t *pc = hr_u64map_upsert(&pair_count, pair, 0, NULL);
            word_set *s = updates_set(&upd, pair);
            if (!pc || !s || set_add(s, w)) goto oom;
            *pc += tr->count[w];
        }
    }
    if (queue_updates(&q, &upd, &pair_count)) goto oom;

    uint64_t target = tr->opts.vocab_size, step = 0;
    char *joined = NULL;
    size_t joined_cap = 0;
    while (v.n < target && q.n) {
        queue_entry top = queue_pop(&q);
        int64_t now = *hr_u64map_get(&pair_count, top.pair);
        if (top.count != (uint64_t)now) { /* counts fell since the entry was made: requeue with the new one */
            top.count = (uint64_t)now;
            if (queue_push(&q, top)) goto oom;
            continue;
        }
        if (top.count < 1 || tr->opts.min_frequency > top.count) {
            free(top.pos.v);
            break;
        }
        uint32_t a = (uint32_t)(top.pair >> 32), b = (uint32_t)top.pair;
        size_t len = (size_t)v.len[a] + v.len[b];
        if (len + 1 > joined_cap) {
            char *j = realloc(joined, len + 1);
            if (!j) {
                free(top.pos.v);
                goto oom_joined;
            }
            joined = j;
            joined_cap = len + 1;
        }
        memcpy(joined, v.str[a], v.len[a]);
        memcpy(joined + v.len[a], v.str[b], v.len[b]);
        int64_t id = vocab_add(&v, joined, len);
        if (id >= 0 && n_merges == cap_merges) {
            size_t cap = cap_merges ? 2 * cap_merges : 4096;
            uint64_t *m = realloc(merges, cap * sizeof *m);
            if (m) merges = m, cap_merges = cap;
        }
        if (id < 0 || n_merges == cap_merges) {
            free(top.pos.v);
            goto oom_joined;
        }
        merges[n_merges++] = top.pair;
        change_ctx c = {.pair_count = &pair_count, .upd = &upd};
        for (uint32_t k = 0; k < top.pos.n; k++) {
            c.w = top.pos.v[k];
            c.count = tr->count[c.w];
            merge_word(&words[c.w], a, b, (uint32_t)id, &c);
        }
        free(top.pos.v);
        if (c.failed) goto oom_joined;
        if (queue_updates(&q, &upd, &pair_count)) goto oom_joined;
        if (tr->opts.progress && ++step % 256 == 0) tr->opts.progress(tr->opts.progress_arg, "merges", v.n, target);
    }
    free(joined);
    if (tr->opts.progress) tr->opts.progress(tr->opts.progress_arg, "merges", v.n, v.n);
    result = build(tr, &v, merges, n_merges, err);
    goto done;
oom_joined:
    free(joined);
oom:
    snprintf(err, HR_BPE_ERR, "out of memory while training the BPE");
done:
    for (size_t i = 0; i < q.n; i++) free(q.e[i].pos.v);
    free(q.e);
    for (size_t i = 0; i < upd.n_sets; i++) free(upd.sets[i].v);
    free(upd.sets);
    hr_u64map_free(&upd.where);
    hr_u64map_free(&pair_count);
    for (size_t w = 0; words && w < tr->n_words; w++) free(words[w].sym);
    free(words);
    free(merges);
    vocab_free(&v);
    return result;
}
