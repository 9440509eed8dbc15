/* The byte-level pre-tokenizer of GPT-2, as Hugging Face `tokenizers` runs it (ByteLevel, use_regex):
 * text is cut into pieces by the regex
 *     's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
 * and each byte of a piece is written as one printable character (the byte-to-unicode table), so
 * every vocabulary entry is a string of those characters.
 *
 * The text is any byte string. Valid UTF-8 is split exactly as `tokenizers` splits it (the character
 * classes come from its own regex engine: unicode_classes.inc); a byte that is not part of valid
 * UTF-8 counts as one character of the class [^\s\p{L}\p{N}], so any input has a split and every
 * byte lands in exactly one piece. */
#ifndef HR_TEXT_PRETOKENIZE_H
#define HR_TEXT_PRETOKENIZE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The end of the piece that starts at pos (pos < n): the next piece starts there. */
size_t hr_pretok_next(const uint8_t *s, size_t n, size_t pos);

/* Whether pos is a place where text can be cut into independently split parts without changing
 * any piece: right after a newline and before a character that is not whitespace. */
bool hr_pretok_safe_cut(const uint8_t *s, size_t n, size_t pos);

/* The byte-to-unicode table of GPT-2: byte b is written as the code point hr_byte_char(b). The
 * printable bytes ! .. ~, ¡ .. ¬ and ® .. ÿ are themselves; the others become U+0100 + k. */
uint32_t hr_byte_char(uint8_t b);
/* The byte a code point stands for, or -1 when it is not one of the 256. */
int hr_char_byte(uint32_t cp);

/* UTF-8: writes cp (at most 4 bytes) and returns the length. */
int hr_utf8_put(uint8_t *out, uint32_t cp);
/* Decodes the character at s[i] (i < n): returns its length, 1..4, and sets *cp; a byte that does not
 * start valid UTF-8 (overlong, surrogate, beyond U+10FFFF, truncated) has length 1 and *cp = -1. */
int hr_utf8_get(const uint8_t *s, size_t n, size_t i, int32_t *cp);

/* The byte-level form of raw bytes: each byte as its UTF-8 character (2 bytes at most each). out
 * must have room for 2 * n bytes; returns the length written. */
size_t hr_bytes_to_level(const uint8_t *raw, size_t n, uint8_t *out);
/* The bytes a byte-level string stands for, or -1 when one of its characters is not in the table
 * (then the string is not a byte-level token). out must have room for n bytes. */
long hr_level_to_bytes(const uint8_t *s, size_t n, uint8_t *out);

#endif
