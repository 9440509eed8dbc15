/* Byte-level BPE tokenizers, compatible with Hugging Face `tokenizers` (a ByteLevel pre-tokenizer, a
 * BPE model, ByteLevel decoder): the same ids for the same text, the same vocabulary from the same
 * training corpus (bpe_train.c), and tokenizer.json files either side can read (tokenizer_json.c).
 *
 * Encoding a text: added tokens (<eos>, ...) are cut out first, wherever they occur; each stretch
 * between them is split into pieces by the GPT-2 pre-tokenizer (pretokenize.h); each piece starts as
 * one token per byte, and the merges are applied lowest rank first (leftmost first among equals)
 * until none applies. Decoding concatenates the bytes of the tokens, so decode(encode(s)) == s for
 * any byte string s (without add_prefix_space, which adds a space). */
#ifndef HR_TEXT_BPE_H
#define HR_TEXT_BPE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "text/hashmap.h"

/* A growable list of ids. */
typedef struct {
    uint32_t *data;
    size_t n, cap;
} hr_ids;
int hr_ids_push(hr_ids *v, const uint32_t *ids, size_t n); /* 0, or -1 when out of memory */
void hr_ids_free(hr_ids *v);

/* A token matched in the text before pre-tokenization, as Hugging Face's added vocabulary does. */
typedef struct {
    char *content; /* UTF-8, owned */
    size_t len;
    uint32_t id;
    bool special;     /* control tokens: <pad> <unk> <bos> <eos> */
    bool single_word; /* only matches with no word character on either side */
    bool lstrip, rstrip; /* the match takes the whitespace to its left / right */
    bool normalized;  /* recorded and written back; with no normalizer it changes nothing */
} hr_added_token;

typedef struct {
    uint32_t n_ids;   /* ids are 0 .. n_ids - 1 (an id may be unused: token[id] == NULL) */
    char **token;     /* id -> its string in the vocabulary (byte-level form), owned; NULL if unused */
    uint32_t *token_len;
    uint8_t **raw;    /* id -> the bytes it decodes to (owned) */
    uint32_t *raw_len;
    hr_strmap vocab;     /* the model's vocabulary: token string -> id */
    hr_strmap raw_vocab; /* raw bytes -> id, for ignore_merges */
    int32_t byte_id[256]; /* the token of each single byte, -1 if the vocabulary lacks it */

    uint32_t n_merges;  /* in rank order */
    uint32_t (*merges)[2];
    hr_u64map merge_of; /* (left << 32 | right) -> (rank << 32 | merged id) */

    hr_added_token *added;
    uint32_t n_added;
    uint8_t added_first[32]; /* bitmap of the first bytes of added tokens */
    uint8_t *special;        /* id -> 1 for a special added token (n_ids entries, set by finish) */

    bool add_prefix_space; /* a space before text that does not start with one (changes round trips) */
    bool trim_offsets;     /* offsets only; kept to write the file back */
    bool use_regex;        /* false: each stretch between added tokens is one piece */
    bool ignore_merges;    /* a piece that is itself in the vocabulary is that token, whatever merges say */
    int64_t unk_id;        /* -1: no unk token (a byte without a token is an error) */
    bool fuse_unk;
} hr_bpe;

/* A tokenizer with no merges whose ids are the bytes (vocab 256): `hr.tokenizer.bytes()`. */
hr_bpe *hr_bpe_new_bytes(void);
void hr_bpe_free(hr_bpe *bpe);

/* ---- building (the loader and the trainer) ----
 * hr_bpe_alloc, then set_token for each id, add merges, add added tokens, then finish. Each returns
 * 0 or -1 with a message in err (size HR_BPE_ERR). */
#define HR_BPE_ERR 512
hr_bpe *hr_bpe_alloc(uint32_t n_ids);
int hr_bpe_set_token(hr_bpe *bpe, uint32_t id, const char *s, size_t len, char *err);
int hr_bpe_add_merge(hr_bpe *bpe, uint32_t left, uint32_t right, char *err); /* next rank; a repeated pair keeps its last rank */
int hr_bpe_add_token(hr_bpe *bpe, const hr_added_token *t, char *err);       /* copies content */
int hr_bpe_finish(hr_bpe *bpe, char *err); /* byte table, raw forms; checks merges produce known tokens */

/* The id of a token string (added tokens first, then the vocabulary), or -1. */
int64_t hr_bpe_token_id(const hr_bpe *bpe, const char *s, size_t len);
/* The first of names[] (NULL-terminated) that is an added token or in the vocabulary, or -1. */
int64_t hr_bpe_find_any(const hr_bpe *bpe, const char *const *names);
/* The end-of-document token: the first of <eos>, <|endoftext|>, </s> the tokenizer has, or -1. */
int64_t hr_bpe_eos_id(const hr_bpe *bpe);

/* ---- encoding ----
 * An encoder holds one thread's scratch memory and its cache of recent pieces: use one per thread
 * (the tokenizer itself is read-only once finished). */
typedef struct hr_bpe_encoder hr_bpe_encoder;
hr_bpe_encoder *hr_bpe_encoder_new(const hr_bpe *bpe);
void hr_bpe_encoder_free(hr_bpe_encoder *enc);
const char *hr_bpe_encoder_error(const hr_bpe_encoder *enc);

/* Appends the ids of text to out. at_start: the text begins a sequence (add_prefix_space applies to
 * its first stretch). Returns 0, or -1 with the encoder's error set (out of memory; a byte with no
 * token and no unk token). */
int hr_bpe_encode(hr_bpe_encoder *enc, const uint8_t *text, size_t n, bool at_start, hr_ids *out);

/* The same with up to `threads` OpenMP threads (0: all, at most 64): the text is cut at newlines that cannot
 * change a piece, the parts are encoded independently and joined, so the ids are exactly those of
 * hr_bpe_encode. encs holds `threads` encoders (created on first use when NULL). Returns 0 or -1 with
 * the message in err. */
int hr_bpe_encode_parallel(const hr_bpe *bpe, hr_bpe_encoder **encs, int threads, const uint8_t *text, size_t n,
                           bool at_start, hr_ids *out, char *err);

/* The position up to which text can be encoded now and the rest later with at_start false, giving
 * the same ids as encoding it whole: the last safe cut point at or before n, or 0 when none. Used to
 * stream files in blocks. */
size_t hr_bpe_stream_cut(const hr_bpe *bpe, const uint8_t *text, size_t n);

/* ---- decoding ----
 * Writes the bytes of ids into a malloc'ed buffer (*out, *out_len; NUL-terminated for convenience).
 * skip_special: leave out special added tokens. Returns 0, or -1 with err naming an id outside the
 * vocabulary. */
int hr_bpe_decode(const hr_bpe *bpe, const uint32_t *ids, size_t n, bool skip_special, uint8_t **out,
                  size_t *out_len, char *err);

#endif
