#include "text/pretokenize.h"

#include "text/unicode_classes.inc"

typedef enum { CLASS_OTHER, CLASS_LETTER, CLASS_NUMBER, CLASS_SPACE } char_class;

int hr_utf8_get(const uint8_t *s, size_t n, size_t i, int32_t *cp) {
    uint8_t c = s[i];
    if (c < 0x80) {
        *cp = c;
        return 1;
    }
    int len;
    uint32_t v, min;
    if (c >= 0xc2 && c <= 0xdf) len = 2, v = c & 0x1f, min = 0x80;
    else if (c >= 0xe0 && c <= 0xef) len = 3, v = c & 0x0f, min = 0x800;
    else if (c >= 0xf0 && c <= 0xf4) len = 4, v = c & 0x07, min = 0x10000;
    else goto invalid;
    if (i + (size_t)len > n) goto invalid;
    for (int k = 1; k < len; k++) {
        if ((s[i + k] & 0xc0) != 0x80) goto invalid;
        v = v << 6 | (s[i + k] & 0x3f);
    }
    if (v < min || v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff)) goto invalid;
    *cp = (int32_t)v;
    return len;
invalid:
    *cp = -1;
    return 1;
}

int hr_utf8_put(uint8_t *out, uint32_t cp) {
    if (cp < 0x80) {
        out[0] = (uint8_t)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (uint8_t)(0xc0 | cp >> 6);
        out[1] = (uint8_t)(0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (uint8_t)(0xe0 | cp >> 12);
        out[1] = (uint8_t)(0x80 | (cp >> 6 & 0x3f));
        out[2] = (uint8_t)(0x80 | (cp & 0x3f));
        return 3;
    }
    out[0] = (uint8_t)(0xf0 | cp >> 18);
    out[1] = (uint8_t)(0x80 | (cp >> 12 & 0x3f));
    out[2] = (uint8_t)(0x80 | (cp >> 6 & 0x3f));
    out[3] = (uint8_t)(0x80 | (cp & 0x3f));
    return 4;
}

static bool in_ranges(const uint32_t (*r)[2], size_t count, uint32_t cp) {
    size_t lo = 0, hi = count;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (cp < r[mid][0]) hi = mid;
        else if (cp > r[mid][1]) lo = mid + 1;
        else return true;
    }
    return false;
}

#define COUNT(a) (sizeof(a) / sizeof(a[0]))

static char_class classify(int32_t cp) {
    if (cp < 0) return CLASS_OTHER; /* a byte outside valid UTF-8 */
    if (cp < 0x80) {
        if ((cp >= 'a' && cp <= 'z') || (cp >= 'A' && cp <= 'Z')) return CLASS_LETTER;
        if (cp >= '0' && cp <= '9') return CLASS_NUMBER;
        if (cp == ' ' || (cp >= 0x09 && cp <= 0x0d)) return CLASS_SPACE;
        return CLASS_OTHER;
    }
    uint32_t u = (uint32_t)cp;
    if (in_ranges(hr_unicode_letter, COUNT(hr_unicode_letter), u)) return CLASS_LETTER;
    if (in_ranges(hr_unicode_number, COUNT(hr_unicode_number), u)) return CLASS_NUMBER;
    if (in_ranges(hr_unicode_space, COUNT(hr_unicode_space), u)) return CLASS_SPACE;
    return CLASS_OTHER;
}

/* The classes of ASCII, the common case, by table. */
static const uint8_t ascii_class[128] = {
    ['\t'] = CLASS_SPACE, ['\n'] = CLASS_SPACE, ['\v'] = CLASS_SPACE, ['\f'] = CLASS_SPACE, ['\r'] = CLASS_SPACE,
    [' '] = CLASS_SPACE,
    ['0'] = CLASS_NUMBER, ['1'] = CLASS_NUMBER, ['2'] = CLASS_NUMBER, ['3'] = CLASS_NUMBER, ['4'] = CLASS_NUMBER,
    ['5'] = CLASS_NUMBER, ['6'] = CLASS_NUMBER, ['7'] = CLASS_NUMBER, ['8'] = CLASS_NUMBER, ['9'] = CLASS_NUMBER,
#define L2(c) [c] = CLASS_LETTER, [c + 32] = CLASS_LETTER
    L2('A'), L2('B'), L2('C'), L2('D'), L2('E'), L2('F'), L2('G'), L2('H'), L2('I'), L2('J'), L2('K'), L2('L'), L2('M'),
    L2('N'), L2('O'), L2('P'), L2('Q'), L2('R'), L2('S'), L2('T'), L2('U'), L2('V'), L2('W'), L2('X'), L2('Y'), L2('Z'),
#undef L2
};

static inline char_class class_at(const uint8_t *s, size_t n, size_t i, int *len) {
    if (s[i] < 0x80) {
        *len = 1;
        return (char_class)ascii_class[s[i]];
    }
    int32_t cp;
    *len = hr_utf8_get(s, n, i, &cp);
    return classify(cp);
}

/* The end of the run of characters of class c that starts at i. */
static size_t run_end(const uint8_t *s, size_t n, size_t i, char_class c) {
    int len;
    while (i < n && class_at(s, n, i, &len) == c) i += (size_t)len;
    return i;
}

size_t hr_pretok_next(const uint8_t *s, size_t n, size_t pos) {
    /* 's 't 're 've 'm 'll 'd */
    if (s[pos] == '\'' && pos + 1 < n) {
        uint8_t a = s[pos + 1], b = pos + 2 < n ? s[pos + 2] : 0;
        if (a == 's' || a == 't' || a == 'm' || a == 'd') return pos + 2;
        if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l')) return pos + 3;
    }
    int len;
    char_class c = class_at(s, n, pos, &len);
    /* ' ?\p{L}+', ' ?\p{N}+', ' ?[^\s\p{L}\p{N}]+': a space may lead a run of any of the three */
    if (s[pos] == ' ' && pos + 1 < n) {
        int len2;
        char_class c2 = class_at(s, n, pos + 1, &len2);
        if (c2 != CLASS_SPACE) return run_end(s, n, pos + 1, c2);
    }
    if (c != CLASS_SPACE) return run_end(s, n, pos, c);
    /* '\s+(?!\S)': a whitespace run at the end of the text, or all of it but the last character when
     * something follows (that character then leads the next piece); '\s+': a lone whitespace
     * character before a non-space */
    size_t end = pos, last = pos;
    while (end < n && class_at(s, n, end, &len) == CLASS_SPACE) {
        last = end;
        end += (size_t)len;
    }
    if (end == n || last == pos) return end;
    return last;
}

bool hr_pretok_safe_cut(const uint8_t *s, size_t n, size_t pos) {
    if (pos == 0 || pos >= n || s[pos - 1] != '\n') return false;
    int len;
    return class_at(s, n, pos, &len) != CLASS_SPACE;
}

uint32_t hr_byte_char(uint8_t b) {
    if ((b >= '!' && b <= '~') || (b >= 0xa1 && b <= 0xac) || b >= 0xae) return b;
    /* the rest, in byte order, become U+0100, U+0101, ...: 0x00-0x20 (33), 0x7f-0xa0 (34), 0xad */
    if (b <= 0x20) return 0x100u + b;
    if (b <= 0xa0) return 0x100u + 33 + (b - 0x7f);
    return 0x100u + 33 + 34; /* 0xad */
}

int hr_char_byte(uint32_t cp) {
    if (cp < 0x100) return hr_byte_char((uint8_t)cp) == cp ? (int)cp : -1;
    uint32_t k = cp - 0x100;
    if (k <= 0x20) return (int)k;
    if (k < 33 + 34) return (int)(0x7f + (k - 33));
    if (k == 33 + 34) return 0xad;
    return -1;
}

size_t hr_bytes_to_level(const uint8_t *raw, size_t n, uint8_t *out) {
    size_t o = 0;
    for (size_t i = 0; i < n; i++) o += (size_t)hr_utf8_put(out + o, hr_byte_char(raw[i]));
    return o;
}

long hr_level_to_bytes(const uint8_t *s, size_t n, uint8_t *out) {
    size_t i = 0, o = 0;
    while (i < n) {
        int32_t cp;
        int len = hr_utf8_get(s, n, i, &cp);
        int b = cp < 0 ? -1 : hr_char_byte((uint32_t)cp);
        if (b < 0) return -1;
        out[o++] = (uint8_t)b;
        i += (size_t)len;
    }
    return (long)o;
}
