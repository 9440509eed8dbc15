/* The byte-level BPE tokenizer (runtime/text): the pre-tokenizer against splits recorded from Hugging
 * Face tokenizers, the byte table, UTF-8 decoding, training against merges recorded from tokenizers,
 * round trips of random bytes (valid UTF-8 or not), multi-threaded and streamed encoding equal to the
 * plain one, added tokens, tokenizer.json dump/parse, and decode errors. The recorded expectations
 * come from tokenizers 0.23.3 (scripts/check_hf_tokenizers.py compares live, on the whole corpus). */
#include <omp.h>
#include <string.h>

#include "test_util.h"
#include "text/bpe.h"
#include "text/bpe_train.h"
#include "text/pretokenize.h"
#include "text/tokenizer_json.h"

/* text, then its pieces joined by '|' (recorded from pre_tokenizers.ByteLevel(add_prefix_space=False)) */
static const char *const SPLITS[][2] = {
    {"Hello world", "Hello| world"},
    {"  hello", " | hello"},
    {"a\n  b", "a|\n | b"},
    {"a \n b", "a| \n| b"},
    {"x's 'S ''s 're've'll'd'm't", "x|'s| '|S| ''|s| '|re|'ve|'ll|'d|'m|'t"},
    {" 's", " '|s"},
    {"abc   ", "abc|   "},
    {"\t\t\tx", "\t\t|\t|x"},
    {"caf\303\251 na\303\257ve \346\227\245\346\234\254\350\252\236", "caf\303\251| na\303\257ve| \346\227\245\346\234\254\350\252\236"},
    {"\331\241\331\242\331\243 12\302\275 3.14", "\331\241\331\242\331\243| 12\302\275| 3|.|14"},
    {"emoji \360\237\230\200\360\237\230\200!", "emoji| \360\237\230\200\360\237\230\200!"},
    {"e\314\201 combining", "e|\314\201| combining"},
    {"nbsp\302\240x ideo\343\200\200y", "nbsp|\302\240|x| ideo|\343\200\200|y"},
    {"tab\tsep\r\nCRLF", "tab|\t|sep|\r|\n|CRLF"},
    {"   \n\n  x  \n", "   \n\n | x|  \n"},
    {"a,b;c...!?", "a|,|b|;|c|...!?"},
    {"123abc456", "123|abc|456"},
    {" 1 a !", " 1| a| !"},
    {"\342\200\250line sep", "\342\200\250|line| sep"},
    {"mixed\302\240\302\240 spaces", "mixed|\302\240\302\240| spaces"},
};

static void test_pretokenizer(void) {
    for (size_t c = 0; c < sizeof SPLITS / sizeof SPLITS[0]; c++) {
        const uint8_t *s = (const uint8_t *)SPLITS[c][0];
        size_t n = strlen(SPLITS[c][0]);
        char got[256] = {0};
        size_t g = 0;
        for (size_t pos = 0; pos < n;) {
            size_t end = hr_pretok_next(s, n, pos);
            if (pos) got[g++] = '|';
            memcpy(got + g, s + pos, end - pos);
            g += end - pos;
            pos = end;
        }
        CHECK(strcmp(got, SPLITS[c][1]) == 0, "split of \"%s\": got \"%s\", want \"%s\"", SPLITS[c][0], got, SPLITS[c][1]);
    }
    /* invalid UTF-8 bytes are symbols: every byte lands in a piece */
    const uint8_t bad[] = {'a', 0xff, 0xfe, ' ', 0xc0, 0x80, 'b', 0xed, 0xa0, 0x80};
    size_t total = 0, pieces = 0;
    for (size_t pos = 0; pos < sizeof bad; pieces++) {
        size_t end = hr_pretok_next(bad, sizeof bad, pos);
        CHECK(end > pos, "progress at %zu", pos);
        total += end - pos;
        pos = end;
    }
    CHECK(total == sizeof bad && pieces == 5, "invalid bytes: %zu bytes in %zu pieces (want 10 in 5)", total, pieces);
}

static void test_bytes_and_utf8(void) {
    bool seen[0x200] = {0};
    int bad = 0;
    for (int b = 0; b < 256; b++) {
        uint32_t cp = hr_byte_char((uint8_t)b);
        if (cp >= 0x200 || seen[cp] || hr_char_byte(cp) != b) bad++;
        else seen[cp] = true;
    }
    CHECK(bad == 0, "byte table is a bijection (%d bad)", bad);
    CHECK(hr_byte_char(' ') == 0x120 && hr_byte_char('\n') == 0x10a && hr_byte_char('A') == 'A' &&
              hr_byte_char(0xad) == 0x143 && hr_byte_char(0x7f) == 0x121,
          "GPT-2 table: space U+0120, newline U+010A, 0xAD U+0143, 0x7F U+0121");
    CHECK(hr_char_byte(0x144) == -1 && hr_char_byte(0xad) == -1, "chars outside the table");
    struct {
        const char *s;
        int len;
        int32_t cp;
    } u[] = {{"A", 1, 'A'}, {"\303\251", 2, 0xe9}, {"\342\202\254", 3, 0x20ac}, {"\360\237\230\200", 4, 0x1f600},
             {"\300\200", 1, -1} /* overlong */, {"\355\240\200", 1, -1} /* surrogate */,
             {"\364\220\200\200", 1, -1} /* > U+10FFFF */, {"\342\202", 1, -1} /* truncated */, {"\200", 1, -1}};
    for (size_t i = 0; i < sizeof u / sizeof u[0]; i++) {
        int32_t cp;
        int len = hr_utf8_get((const uint8_t *)u[i].s, strlen(u[i].s), 0, &cp);
        CHECK(len == u[i].len && cp == u[i].cp, "utf8 case %zu: len %d cp %d", i, len, cp);
    }
}

static const char SMALL_TEXT[] =
    "The quick brown fox jumps over the lazy dog.\nThe lazy dog sleeps; the quick fox doesn't.\n  Indented line "
    "with  double  spaces\ncaf\303\251 caf\303\251 na\303\257ve na\303\257ve \346\227\245\346\234\254 "
    "\346\227\245\346\234\254\nnumbers 123 456 123 456 7890\naaaa aaaa aaaaaa bbbb abab abab\n";
/* ByteLevelBPETokenizer().train(text * 3, vocab_size=340, min_frequency=2, special_tokens=["<pad>", "<eos>"]) */
static const char SMALL_MERGES[] =
    "a a a b d o h e \304\240 do aa aa b b v e \304\240 l 1 2 4 5 T he a f a z a \303\203 c k c af e s f o i ck l e "
    "n a\303\203 p s q u t he u m \302\245 \303\246 \302\257 ve \303\203 \302\251 \303\246 \304\271 \304\240 s "
    "\304\240 ab \304\240 aaaa \304\240 12 \304\240 45 \304\240 fo \304\240 na\303\203 \304\240 qu \304\240 the "
    "\304\240 \303\246\304\271 \304\276 \302\254 \304\240do g \304\240l az caf \303\203\302\251 \302\245\303\246 "
    "\304\276\302\254 \304\240ab ab \304\24012 3 \304\24045 6 \304\240fo x \304\240na\303\203 \302\257ve "
    "\304\240qu ick \304\240\303\246\304\271 \302\245\303\246\304\276\302\254 \304\240laz y ' t 7 8 9 0 I n a c b e "
    "b r b le d e e d e ps i n i t j um n t n um o w o ve p ac r s u ble w it \304\240 bb \304\240 caf\303\203\302\251 "
    "\304\240 78 \304\240 In \304\240 br \304\240 jum \304\240 ove";
static const uint32_t SMALL_IDS[] = {269, 308, 334, 262, 275, 79, 311, 290, 258, 304, 2};

static hr_bpe *train_small(void) {
    const char *special[] = {"<pad>", "<eos>", NULL};
    hr_bpe_train_opts opts = {.vocab_size = 340, .min_frequency = 2, .special = special};
    hr_bpe_trainer *tr = hr_bpe_trainer_new(&opts);
    /* fed in odd-sized pieces, so lines span feeds */
    for (int rep = 0; rep < 3; rep++)
        for (size_t i = 0; i < sizeof SMALL_TEXT - 1; i += 7) {
            size_t k = sizeof SMALL_TEXT - 1 - i < 7 ? sizeof SMALL_TEXT - 1 - i : 7;
            hr_bpe_trainer_feed(tr, (const uint8_t *)SMALL_TEXT + i, k);
        }
    char err[HR_BPE_ERR];
    hr_bpe *b = hr_bpe_trainer_finish(tr, err);
    hr_bpe_trainer_free(tr);
    CHECK(b != NULL, "training: %s", err);
    return b;
}

static void test_training(void) {
    hr_bpe *b = train_small();
    if (!b) return;
    CHECK(b->n_ids == 340, "vocab %u, want 340", b->n_ids);
    char merges[4096] = {0};
    size_t m = 0;
    for (uint32_t r = 0; r < b->n_merges && m < sizeof merges - 64; r++)
        m += (size_t)snprintf(merges + m, sizeof merges - m, "%s%s %s", r ? " " : "", b->token[b->merges[r][0]],
                              b->token[b->merges[r][1]]);
    CHECK(b->n_merges == 82 && strcmp(merges, SMALL_MERGES) == 0, "merges (%u) differ from tokenizers':\n%s", b->n_merges, merges);
    CHECK(b->n_added == 2 && b->added[0].id == 0 && b->added[1].id == 1 && b->added[1].special, "special tokens first");
    hr_bpe_encoder *e = hr_bpe_encoder_new(b);
    hr_ids ids = {0};
    const char *s = "The quick caf\303\251 doesn't aaaaaa 123!";
    CHECK(hr_bpe_encode(e, (const uint8_t *)s, strlen(s), true, &ids) == 0, "encode");
    CHECK(ids.n == 11 && memcmp(ids.data, SMALL_IDS, sizeof SMALL_IDS) == 0, "ids as tokenizers gives them");
    hr_ids_free(&ids);
    hr_bpe_encoder_free(e);
    hr_bpe_free(b);
}

/* Random text: ASCII words, spaces and newlines, multi-byte characters, stray bytes, special tokens. */
static size_t random_text(uint64_t *rng, uint8_t *out, size_t n) {
    static const char *const bits[] = {"the", " quick", "fox", "\n", "  ", "\t", "caf\303\251", "\346\227\245", "123",
                                       "'s", "...", "<eos>", "\360\237\230\200", " aaaa", "\r\n", "\302\240"};
    size_t len = 0;
    while (len + 8 < n) {
        uint64_t r = test_rand_u64(rng);
        if (r % 7 == 0) out[len++] = (uint8_t)(r >> 8); /* any byte, valid UTF-8 or not */
        else {
            const char *b = bits[(r >> 8) % (sizeof bits / sizeof bits[0])];
            memcpy(out + len, b, strlen(b));
            len += strlen(b);
        }
    }
    return len;
}

static void test_round_trips(void) {
    hr_bpe *b = train_small();
    if (!b) return;
    hr_bpe_encoder *e = hr_bpe_encoder_new(b);
    uint64_t rng = 42;
    uint8_t buf[600];
    int bad = 0;
    for (int i = 0; i < 2000; i++) {
        size_t n = random_text(&rng, buf, 8 + test_rand_u64(&rng) % (sizeof buf - 8));
        hr_ids ids = {0};
        uint8_t *back = NULL;
        size_t back_n = 0;
        char err[HR_BPE_ERR];
        if (hr_bpe_encode(e, buf, n, true, &ids) || hr_bpe_decode(b, ids.data, ids.n, false, &back, &back_n, err) ||
            back_n != n || memcmp(back, buf, n) != 0)
            bad++;
        free(back);
        hr_ids_free(&ids);
    }
    CHECK(bad == 0, "decode(encode(s)) == s for random byte strings: %d of 2000 differ", bad);
    hr_bpe_encoder_free(e);
    hr_bpe_free(b);
}

static void test_parallel_and_streaming(void) {
    hr_bpe *b = train_small();
    if (!b) return;
    size_t n = 600000;
    uint8_t *text = malloc(n);
    uint64_t rng = 7;
    n = random_text(&rng, text, n);
    hr_bpe_encoder *encs[4] = {0};
    hr_ids whole = {0};
    encs[0] = hr_bpe_encoder_new(b);
    CHECK(hr_bpe_encode(encs[0], text, n, true, &whole) == 0, "encode whole");
    char err[HR_BPE_ERR];
    for (int threads = 2; threads <= 4; threads++) {
        hr_ids par = {0};
        CHECK(hr_bpe_encode_parallel(b, encs, threads, text, n, true, &par, err) == 0, "parallel: %s", err);
        CHECK(par.n == whole.n && memcmp(par.data, whole.data, whole.n * 4) == 0, "%d threads: same ids as one", threads);
        hr_ids_free(&par);
    }
    /* streamed in blocks of 10 KB, each cut where hr_bpe_stream_cut says */
    hr_ids streamed = {0};
    size_t done = 0, blocks = 0;
    while (done < n) {
        size_t avail = n - done < 10000 ? n - done : 10000;
        size_t cut = done + avail == n ? avail : hr_bpe_stream_cut(b, text + done, avail);
        if (!cut) cut = avail; /* no newline in the block: cannot happen with this text */
        hr_bpe_encode(encs[0], text + done, cut, done == 0, &streamed);
        done += cut;
        blocks++;
    }
    CHECK(blocks > 50 && streamed.n == whole.n && memcmp(streamed.data, whole.data, whole.n * 4) == 0,
          "streamed in %zu blocks: same ids", blocks);
    hr_ids_free(&streamed);
    hr_ids_free(&whole);
    for (int t = 0; t < 4; t++) hr_bpe_encoder_free(encs[t]);
    free(text);
    hr_bpe_free(b);
}

static void test_json_and_added_tokens(void) {
    hr_bpe *b = train_small();
    if (!b) return;
    char *json = hr_tokenizer_json_dump(b, true);
    char err[HR_BPE_ERR];
    hr_bpe *c = hr_tokenizer_json_parse(json, strlen(json), err);
    CHECK(c != NULL, "parse our dump: %s", err);
    if (c) {
        char *again = hr_tokenizer_json_dump(c, true);
        CHECK(strcmp(json, again) == 0, "dump(parse(dump)) == dump");
        free(again);
        hr_bpe_encoder *e1 = hr_bpe_encoder_new(b), *e2 = hr_bpe_encoder_new(c);
        const char *s = "The lazy <eos> fox<eos><eos> na\303\257ve";
        hr_ids a = {0}, z = {0};
        hr_bpe_encode(e1, (const uint8_t *)s, strlen(s), true, &a);
        hr_bpe_encode(e2, (const uint8_t *)s, strlen(s), true, &z);
        CHECK(a.n == z.n && memcmp(a.data, z.data, a.n * 4) == 0, "same ids after the JSON round trip");
        int eos = 0;
        for (size_t i = 0; i < a.n; i++) eos += a.data[i] == 1;
        CHECK(eos == 3, "<eos> matched as one token wherever it is (%d of 3)", eos);
        uint8_t *text;
        size_t len;
        hr_bpe_decode(b, a.data, a.n, true, &text, &len, err);
        CHECK(strcmp((char *)text, "The lazy  fox na\303\257ve") == 0, "skip_special drops <eos>: \"%s\"", text);
        free(text);
        uint32_t bad_id = 340;
        CHECK(hr_bpe_decode(b, &bad_id, 1, false, &text, &len, err) == -1 && strstr(err, "id 340"),
              "decode of an unknown id: %s", err);
        hr_ids_free(&a);
        hr_ids_free(&z);
        hr_bpe_encoder_free(e1);
        hr_bpe_encoder_free(e2);
        hr_bpe_free(c);
    }
    free(json);
    hr_bpe_free(b);

    /* lstrip / rstrip take the whitespace around the token */
    const char *strip_json =
        "{\"added_tokens\": [{\"id\": 3, \"content\": \"<m>\", \"lstrip\": true, \"rstrip\": true, \"special\": true}],"
        " \"pre_tokenizer\": {\"type\": \"ByteLevel\", \"add_prefix_space\": false},"
        " \"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0, \"\304\240\": 1, \"b\": 2}, \"merges\": []}}";
    hr_bpe *s = hr_tokenizer_json_parse(strip_json, strlen(strip_json), err);
    CHECK(s != NULL, "tokenizer with lstrip/rstrip: %s", err);
    if (s) {
        hr_bpe_encoder *e = hr_bpe_encoder_new(s);
        hr_ids ids = {0};
        hr_bpe_encode(e, (const uint8_t *)"a  <m>  b", 9, true, &ids);
        CHECK(ids.n == 3 && ids.data[0] == 0 && ids.data[1] == 3 && ids.data[2] == 2, "a <m> b with the spaces taken");
        hr_ids_free(&ids);
        CHECK(hr_bpe_encode(e, (const uint8_t *)"c", 1, true, &ids) == -1 &&
                  strstr(hr_bpe_encoder_error(e), "byte 0x63 has no token"),
              "a byte without a token: %s", hr_bpe_encoder_error(e));
        hr_ids_free(&ids);
        hr_bpe_encoder_free(e);
        hr_bpe_free(s);
    }
}

static void test_bytes_tokenizer(void) {
    hr_bpe *b = hr_bpe_new_bytes();
    hr_bpe_encoder *e = hr_bpe_encoder_new(b);
    uint8_t all[256];
    for (int i = 0; i < 256; i++) all[i] = (uint8_t)(255 - i);
    hr_ids ids = {0};
    hr_bpe_encode(e, all, 256, true, &ids);
    int bad = 0;
    for (int i = 0; i < 256; i++) bad += ids.data[i] != (uint32_t)(255 - i);
    CHECK(ids.n == 256 && bad == 0, "bytes: id == byte");
    hr_ids_free(&ids);
    CHECK(hr_bpe_encode(e, all, 0, true, &ids) == 0 && ids.n == 0, "empty text, no ids");
    char *json = hr_tokenizer_json_dump(b, false);
    char err[HR_BPE_ERR];
    hr_bpe *c = hr_tokenizer_json_parse(json, strlen(json), err);
    CHECK(c && c->n_ids == 256 && c->byte_id['A'] == 'A' && c->byte_id[0] == 0, "bytes tokenizer as tokenizer.json");
    hr_bpe_free(c);
    free(json);
    hr_bpe_encoder_free(e);
    hr_bpe_free(b);
}

/* Found by fuzzing (tests/fuzz/fuzz_tokenizer_json): a short file naming a huge id made the loader
 * allocate every id up to it (an id of 4e8: 3.2 GB for the token table alone). Ids past 2^31 are no
 * ids at all; below that, at most HR_BPE_MAX_UNUSED_IDS may be unused. */
static void test_huge_ids(void) {
    static const struct {
        const char *json, *what, *error;
    } cases[] = {
        {"{\"model\": {\"vocab\": {\"a\": 0, \"b\": 400000000}, \"merges\": []}, \"pre_tokenizer\": {\"type\": \"ByteLevel\"}}",
         "a vocab id of 4e8", "model.vocab: token 'b' has id 400000000 but the file holds 2 tokens"},
        {"{\"model\": {\"vocab\": {\"a\": 2147483647}, \"merges\": []}, \"pre_tokenizer\": {\"type\": \"ByteLevel\"}}",
         "a vocab id of 2^31 - 1", "has id 2147483647"},
        {"{\"model\": {\"vocab\": {\"a\": 4611686018427387904}, \"merges\": []}, \"pre_tokenizer\": {\"type\": \"ByteLevel\"}}",
         "a vocab id of 2^62", "model.vocab: token 'a' has no valid id"},
        {"{\"added_tokens\": [{\"id\": 4611686018427387904, \"content\": \"<x>\"}], \"model\": {\"vocab\": {\"a\": 0}, "
         "\"merges\": []}, \"pre_tokenizer\": {\"type\": \"ByteLevel\"}}",
         "an added token id of 2^62", "added_tokens[0].id: missing or not an integer"},
        {"{\"added_tokens\": [{\"id\": 70000, \"content\": \"<x>\"}], \"model\": {\"vocab\": {\"a\": 0}, "
         "\"merges\": []}, \"pre_tokenizer\": {\"type\": \"ByteLevel\"}}",
         "an added token id past the unused ids allowed", "added_tokens: token '<x>' has id 70000"},
    };
    char err[HR_BPE_ERR];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        hr_bpe *b = hr_tokenizer_json_parse(cases[i].json, strlen(cases[i].json), err);
        CHECK(!b && strstr(err, cases[i].error), "%s is refused: %s", cases[i].what, b ? "(loaded)" : err);
        hr_bpe_free(b);
    }
    /* the unused ids allowed: exactly HR_BPE_MAX_UNUSED_IDS above the tokens the file holds */
    char json[512];
    snprintf(json, sizeof json,
             "{\"added_tokens\": [{\"id\": %d, \"content\": \"<x>\"}], \"model\": {\"vocab\": {\"a\": 0}, "
             "\"merges\": []}, \"pre_tokenizer\": {\"type\": \"ByteLevel\"}}", HR_BPE_MAX_UNUSED_IDS + 1);
    hr_bpe *b = hr_tokenizer_json_parse(json, strlen(json), err);
    CHECK(b && b->n_ids == HR_BPE_MAX_UNUSED_IDS + 2, "%d unused ids load: %s", HR_BPE_MAX_UNUSED_IDS, b ? "" : err);
    hr_bpe_free(b);
}

int main(void) {
    test_pretokenizer();
    test_bytes_and_utf8();
    test_training();
    test_round_trips();
    test_parallel_and_streaming();
    test_json_and_added_tokens();
    test_bytes_tokenizer();
    test_huge_ids();
    return test_summary("text.tokenizer");
}
