/* libFuzzer target: tokenizer.json (runtime/text/tokenizer_json.c, hr_tokenizer_json_parse: the JSON,
 * the model, vocab, merges, added tokens and pipeline options), then what a loaded tokenizer does:
 * encode (the input itself and a fixed text), decode, and write the file back. Properties: the
 * written file loads and has the same ids; decode(encode(s)) == s where that is promised (every
 * byte has a token, no unk token, no add_prefix_space, no added token that strips whitespace). */
#include "fuzz_util.h"

#include "text/bpe.h"
#include "text/tokenizer_json.h"

static const char SAMPLE[] = "First Citizen:\nBefore we proceed any further, hear me speak.<eos> \xc3\xa9t\xc3\xa9 "
                             "\xe2\x80\x94 ok?\n\n  x\xff";

static bool round_trip_promised(const hr_bpe *b) {
    if (b->add_prefix_space || b->unk_id >= 0) return false;
    for (int c = 0; c < 256; c++)
        if (b->byte_id[c] < 0) return false;
    for (uint32_t i = 0; i < b->n_added; i++)
        if (b->added[i].lstrip || b->added[i].rstrip) return false;
    return true;
}

static void encode_decode(const hr_bpe *b, hr_bpe_encoder *enc, const uint8_t *text, size_t n, bool promised) {
    hr_ids ids = {0};
    char err[HR_BPE_ERR];
    if (hr_bpe_encode(enc, text, n, true, &ids) == 0) {
        uint8_t *back = NULL;
        size_t len = 0;
        if (hr_bpe_decode(b, ids.data, ids.n, false, &back, &len, err)) fuzz_fail("decoding its own ids: %s", err);
        if (promised && (len != n || memcmp(back, text, n))) fuzz_fail("decode(encode(s)) != s (%zu -> %zu bytes)", n, len);
        free(back);
    } else if (promised) {
        fuzz_fail("encoding failed: %s", hr_bpe_encoder_error(enc));
    }
    hr_ids_free(&ids);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char err[HR_BPE_ERR];
    hr_bpe *b = hr_tokenizer_json_parse((const char *)data, size, err);
    if (!b) return 0;
    hr_bpe_encoder *enc = hr_bpe_encoder_new(b);
    if (!enc) fuzz_fail("out of memory");
    bool promised = round_trip_promised(b);
    encode_decode(b, enc, (const uint8_t *)SAMPLE, sizeof SAMPLE - 1, promised);
    encode_decode(b, enc, data, size < 4096 ? size : 4096, promised);
    hr_bpe_encoder_free(enc);
    char *text = hr_tokenizer_json_dump(b, false);
    if (!text) fuzz_fail("out of memory");
    hr_bpe *again = hr_tokenizer_json_parse(text, strlen(text), err);
    if (!again) fuzz_fail("the file it wrote does not load: %s", err);
    if (again->n_ids != b->n_ids || again->n_added != b->n_added || again->unk_id != b->unk_id)
        fuzz_fail("the file it wrote loads differently: %u ids, %u added (was %u, %u)", again->n_ids, again->n_added,
                  b->n_ids, b->n_added);
    for (uint32_t id = 0; id < b->n_ids; id++)
        if ((b->token[id] == NULL) != (again->token[id] == NULL) ||
            (b->token[id] && (b->token_len[id] != again->token_len[id] ||
                              memcmp(b->token[id], again->token[id], b->token_len[id]))))
            fuzz_fail("token %u changed in a round trip", id);
    hr_bpe_free(again);
    free(text);
    hr_bpe_free(b);
    return 0;
}
