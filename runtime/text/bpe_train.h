/* Training a byte-level BPE the way Hugging Face `tokenizers` does (BpeTrainer with the ByteLevel
 * alphabet, as ByteLevelBPETokenizer.train sets it up), so the same corpus and settings give the
 * same vocabulary, ids and merges:
 *   - the text is read as lines (each keeps its '\n'), each line pre-tokenized on its own, and the
 *     pieces counted;
 *   - the vocabulary starts with the special tokens in the order given, then the 256 byte
 *     characters in code point order;
 *   - then, repeatedly, the most frequent adjacent pair (ties: the smallest pair of ids) is merged
 *     into a new token, until the vocabulary has vocab_size tokens or no pair occurs min_frequency
 *     times. Counts are kept up to date incrementally with the same bookkeeping as `tokenizers`, down
 *     to its quirks (a merge that recreates an existing token adds no new id). */
#ifndef HR_TEXT_BPE_TRAIN_H
#define HR_TEXT_BPE_TRAIN_H

#include "text/bpe.h"

typedef struct {
    uint32_t vocab_size;          /* including special tokens and the 256 bytes */
    uint64_t min_frequency;       /* a pair seen fewer times is never merged (Hugging Face's default here: 2) */
    const char *const *special;   /* special tokens, NULL-terminated (may be NULL) */
    bool add_prefix_space;        /* as the pre-tokenizer option: a space before each line */
    /* called now and then with the stage ("merges") and progress; may be NULL */
    void (*progress)(void *arg, const char *stage, uint64_t done, uint64_t total);
    void *progress_arg;
} hr_bpe_train_opts;

typedef struct hr_bpe_trainer hr_bpe_trainer;

hr_bpe_trainer *hr_bpe_trainer_new(const hr_bpe_train_opts *opts);
void hr_bpe_trainer_free(hr_bpe_trainer *tr);
/* Counts the pieces of text; a line may continue in the next call. Returns 0, or -1 (out of memory). */
int hr_bpe_trainer_feed(hr_bpe_trainer *tr, const uint8_t *text, size_t n);
/* Ends the current file: its last line, if it lacks a '\n', is counted now. */
int hr_bpe_trainer_end_file(hr_bpe_trainer *tr);
uint64_t hr_bpe_trainer_words(const hr_bpe_trainer *tr); /* distinct pieces counted so far */
/* Runs the merges and returns the tokenizer (the trainer can then be freed), or NULL with err set. */
hr_bpe *hr_bpe_trainer_finish(hr_bpe_trainer *tr, char *err);

#endif
