/* UTF-8 decoding and code point classes for the pre-tokenizers.
 * Categories come from utf8proc (Debian's libutf8proc): nothing here lists Unicode ranges.
 * The only ranges in this module are parsed at run time from the text of a pattern's own
 * bracket class (tok_class), which is data of that tokenizer, not a category. */
#include <stdlib.h>
#include <string.h>

#include <utf8proc.h>

#include "tokenizer/tok_internal.h"

size_t tok_utf8_decode(const uint8_t *s, size_t n, uint32_t *cp) {
    uint8_t c = s[0];
    if (c < 0x80) {
        *cp = c;
        return 1;
    }
    size_t len;
    uint32_t v, min;
    if (c >= 0xC2 && c <= 0xDF) {
        len = 2, v = c & 0x1F, min = 0x80;
    } else if (c >= 0xE0 && c <= 0xEF) {
        len = 3, v = c & 0x0F, min = 0x800;
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4, v = c & 0x07, min = 0x10000;
    } else {
        *cp = TOK_CP_INVALID;
        return 1;
    }
    if (n < len) {
        *cp = TOK_CP_INVALID;
        return 1;
    }
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80) {
            *cp = TOK_CP_INVALID;
            return 1;
        }
        v = (v << 6) | (s[i] & 0x3F);
    }
    if (v < min || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF)) {
        *cp = TOK_CP_INVALID;
        return 1;
    }
    *cp = v;
    return len;
}

size_t tok_utf8_encode(uint32_t cp, char *b) {
    if (cp < 0x80) {
        b[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        b[0] = (char)(0xC0 | (cp >> 6));
        b[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        b[0] = (char)(0xE0 | (cp >> 12));
        b[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        b[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    b[0] = (char)(0xF0 | (cp >> 18));
    b[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    b[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    b[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

uint8_t tok_cp_flags(uint32_t cp) {
    if (cp == TOK_CP_INVALID) return CF_S; /* as U+FFFD REPLACEMENT CHARACTER (So) */
    uint8_t f = 0;
    switch (utf8proc_category((utf8proc_int32_t)cp)) {
    case UTF8PROC_CATEGORY_LU:
    case UTF8PROC_CATEGORY_LL:
    case UTF8PROC_CATEGORY_LT:
    case UTF8PROC_CATEGORY_LM:
    case UTF8PROC_CATEGORY_LO: f = CF_L; break;
    case UTF8PROC_CATEGORY_MN:
    case UTF8PROC_CATEGORY_MC:
    case UTF8PROC_CATEGORY_ME: f = CF_M; break;
    case UTF8PROC_CATEGORY_ND:
    case UTF8PROC_CATEGORY_NL:
    case UTF8PROC_CATEGORY_NO: f = CF_N; break;
    case UTF8PROC_CATEGORY_PC:
    case UTF8PROC_CATEGORY_PD:
    case UTF8PROC_CATEGORY_PS:
    case UTF8PROC_CATEGORY_PE:
    case UTF8PROC_CATEGORY_PI:
    case UTF8PROC_CATEGORY_PF:
    case UTF8PROC_CATEGORY_PO: f = CF_P; break;
    case UTF8PROC_CATEGORY_SM:
    case UTF8PROC_CATEGORY_SC:
    case UTF8PROC_CATEGORY_SK:
    case UTF8PROC_CATEGORY_SO: f = CF_S; break;
    case UTF8PROC_CATEGORY_ZS:
    case UTF8PROC_CATEGORY_ZL:
    case UTF8PROC_CATEGORY_ZP: f = CF_WS; break;
    default: break;
    }
    /* White_Space also holds these controls (Cc): TAB, LF, VT, FF, CR and NEL. */
    if ((cp >= 0x09 && cp <= 0x0D) || cp == 0x85) f |= CF_WS;
    return f;
}

static int range_cmp(const void *a, const void *b) {
    const uint32_t *x = a, *y = b;
    return x[0] < y[0] ? -1 : x[0] > y[0];
}

strata_status tok_class_parse(tok_class *c, const char *s) {
    size_t n = strlen(s);
    c->r = malloc((n + 1) * sizeof *c->r);
    c->n = 0;
    if (!c->r) return strata_fail(STRATA_ERR_NOMEM, "tokenizer: out of memory parsing a class");
    const uint8_t *p = (const uint8_t *)s, *e = p + n;
    while (p < e) {
        uint32_t lo, hi;
        p += tok_utf8_decode(p, (size_t)(e - p), &lo);
        hi = lo;
        if (p + 1 < e && *p == '-') {
            p++;
            p += tok_utf8_decode(p, (size_t)(e - p), &hi);
        }
        if (lo == TOK_CP_INVALID || hi == TOK_CP_INVALID || hi < lo) {
            tok_class_free(c);
            return strata_fail(STRATA_ERR_INVALID, "tokenizer: bad character class");
        }
        c->r[c->n][0] = lo;
        c->r[c->n][1] = hi;
        c->n++;
    }
    qsort(c->r, c->n, sizeof *c->r, range_cmp);
    /* merge overlapping or touching ranges so that lookups see disjoint ones */
    size_t m = 0;
    for (size_t i = 0; i < c->n; i++) {
        if (m > 0 && c->r[i][0] <= c->r[m - 1][1] + 1) {
            if (c->r[i][1] > c->r[m - 1][1]) c->r[m - 1][1] = c->r[i][1];
        } else {
            c->r[m][0] = c->r[i][0];
            c->r[m][1] = c->r[i][1];
            m++;
        }
    }
    c->n = m;
    return STRATA_OK;
}

bool tok_class_has(const tok_class *c, uint32_t cp) {
    size_t lo = 0, hi = c->n;
    while (lo < hi) { /* first range with start > cp */
        size_t mid = (lo + hi) / 2;
        if (c->r[mid][0] <= cp) lo = mid + 1;
        else hi = mid;
    }
    return lo > 0 && cp <= c->r[lo - 1][1];
}

void tok_class_free(tok_class *c) {
    free(c->r);
    c->r = NULL;
    c->n = 0;
}
