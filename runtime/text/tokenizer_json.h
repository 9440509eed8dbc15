/* tokenizer.json, the file format of Hugging Face `tokenizers`, for byte-level BPE tokenizers: read
 * (vocab, merges, added tokens, the ByteLevel options) and written the way `tokenizers` writes it,
 * so a file from either side loads in the other. Other kinds of tokenizer (WordPiece, Unigram, a
 * normalizer, a non-ByteLevel pre-tokenizer, byte fallback, dropout) are refused with
 * "unsupported: ...". */
#ifndef HR_TEXT_TOKENIZER_JSON_H
#define HR_TEXT_TOKENIZER_JSON_H

#include <stdbool.h>
#include <stddef.h>

#include "core/context.h"
#include "text/bpe.h"

/* Ids are integers in 0 .. 2^31 - 1; up to HR_BPE_MAX_UNUSED_IDS of those below the largest may be
 * unused (a file claiming more is refused: each id costs memory, and a row of the model's embedding). */
#define HR_BPE_MAX_UNUSED_IDS 65536

/* From the JSON text. NULL with err (size HR_BPE_ERR) naming the field: "model.merges[12]: unknown
 * token 'xy'". */
hr_bpe *hr_tokenizer_json_parse(const char *json, size_t len, char *err);
/* From a file; the error starts with the path. */
hr_bpe *hr_tokenizer_json_load(const char *path, char *err);

/* The JSON text (malloc'ed, NUL-terminated), or NULL when out of memory. */
char *hr_tokenizer_json_dump(const hr_bpe *bpe, bool pretty);
/* Writes it to path all or nothing (temporary file + rename). 0, or -1 with the context's error. */
int hr_tokenizer_json_save(hr_ctx *ctx, const hr_bpe *bpe, const char *path);

#endif
