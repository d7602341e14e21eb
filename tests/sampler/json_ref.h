/* A reference for the JSON prefix validator (sampler/json_constraint.h), written another way:
 * a recursive-descent parser over the whole buffer that tells a definite error (some byte
 * cannot be continued) from running out of input (a valid prefix). Where a character or an
 * escape is cut short it decides whether any completion exists by interval arithmetic on the
 * code points (not by the validator's byte-range tables). Same rules as the validator: RFC
 * 8259, UTF-8 scalar values only, surrogate escapes only in pairs, nesting at most
 * JREF_MAX_DEPTH, no whitespace cap.
 *
 * jref_check(text, n, top_object) returns JREF_COMPLETE, JREF_PREFIX or JREF_ERROR.
 * Header-only (static functions) for the unit test and the fuzz target. */
#ifndef STRATA_TESTS_JSON_REF_H
#define STRATA_TESTS_JSON_REF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define JREF_MAX_DEPTH 64

enum { JREF_COMPLETE = 0, JREF_PREFIX = 1, JREF_ERROR = 2 };
enum { JR_OK = 0, JR_EOF = 1, JR_ERR = 2 };

typedef struct {
    const uint8_t *p;
    size_t n, i;
    int depth;
} jref;

#define JR_NEED(r)                 \
    do {                           \
        if ((r)->i >= (r)->n) return JR_EOF; \
    } while (0)

static void jr_ws(jref *r) {
    while (r->i < r->n && (r->p[r->i] == ' ' || r->p[r->i] == '\t' || r->p[r->i] == '\n' || r->p[r->i] == '\r')) r->i++;
}

/* Whether [lo, hi] meets [a, b]. */
static bool jr_meets(uint32_t lo, uint32_t hi, uint32_t a, uint32_t b) { return lo <= b && a <= hi; }

/* Can code points in [lo, hi] be encoded with L bytes (no overlong form, no surrogate)? */
static bool jr_utf8_feasible(int L, uint32_t lo, uint32_t hi) {
    if (L == 2) return jr_meets(lo, hi, 0x80, 0x7FF);
    if (L == 3) return jr_meets(lo, hi, 0x800, 0xD7FF) || jr_meets(lo, hi, 0xE000, 0xFFFF);
    return jr_meets(lo, hi, 0x10000, 0x10FFFF);
}

static int jr_char(jref *r) {
    uint8_t c = r->p[r->i];
    int L;
    uint32_t v;
    if ((c & 0xE0) == 0xC0) L = 2, v = c & 0x1F;
    else if ((c & 0xF0) == 0xE0) L = 3, v = c & 0x0F;
    else if ((c & 0xF8) == 0xF0) L = 4, v = c & 0x07;
    else return JR_ERR;
    for (int k = 1;; k++) {
        int rest = L - k; /* continuation bytes still to come */
        uint32_t lo = v << (6 * rest), hi = lo | ((1u << (6 * rest)) - 1);
        if (!jr_utf8_feasible(L, lo, hi)) return JR_ERR;
        r->i++;
        if (rest == 0) return JR_OK;
        JR_NEED(r);
        uint8_t d = r->p[r->i];
        if ((d & 0xC0) != 0x80) return JR_ERR;
        v = (v << 6) | (d & 0x3F);
    }
}

static int jr_hexval(uint8_t c) {
    static const char digits[] = "0123456789abcdef";
    if (c >= 'A' && c <= 'F') c = (uint8_t)(c - 'A' + 'a');
    for (int k = 0; k < 16; k++)
        if (digits[k] == c) return k;
    return -1;
}

/* After "\u": four hex digits; `low` when a low surrogate is due. *code receives the value. */
static int jr_hex4(jref *r, bool low, uint32_t *code) {
    uint32_t v = 0;
    for (int k = 1; k <= 4; k++) {
        JR_NEED(r);
        int h = jr_hexval(r->p[r->i]);
        if (h < 0) return JR_ERR;
        v = (v << 4) | (uint32_t)h;
        uint32_t lo = v << (4 * (4 - k)), hi = lo | ((1u << (4 * (4 - k))) - 1);
        bool ok = low ? jr_meets(lo, hi, 0xDC00, 0xDFFF) : (jr_meets(lo, hi, 0, 0xDBFF) || jr_meets(lo, hi, 0xE000, 0xFFFF));
        if (!ok) return JR_ERR;
        r->i++;
    }
    *code = v;
    return JR_OK;
}

static int jr_string(jref *r) {
    r->i++; /* the opening quote */
    for (;;) {
        JR_NEED(r);
        uint8_t c = r->p[r->i];
        if (c == '"') {
            r->i++;
            return JR_OK;
        }
        if (c < 0x20) return JR_ERR;
        if (c >= 0x80) {
            int e = jr_char(r);
            if (e != JR_OK) return e;
            continue;
        }
        if (c != '\\') {
            r->i++;
            continue;
        }
        r->i++;
        JR_NEED(r);
        c = r->p[r->i];
        if (c != 'u') {
            if (!(c == '"' || c == '\\' || c == '/' || c == 'b' || c == 'f' || c == 'n' || c == 'r' || c == 't'))
                return JR_ERR;
            r->i++;
            continue;
        }
        r->i++;
        uint32_t code;
        int e = jr_hex4(r, false, &code);
        if (e != JR_OK) return e;
        if (code >= 0xD800 && code <= 0xDBFF) {
            JR_NEED(r);
            if (r->p[r->i] != '\\') return JR_ERR;
            r->i++;
            JR_NEED(r);
            if (r->p[r->i] != 'u') return JR_ERR;
            r->i++;
            e = jr_hex4(r, true, &code);
            if (e != JR_OK) return e;
        }
    }
}

static int jr_digits(jref *r) { /* at least one digit */
    JR_NEED(r);
    if (r->p[r->i] < '0' || r->p[r->i] > '9') return JR_ERR;
    while (r->i < r->n && r->p[r->i] >= '0' && r->p[r->i] <= '9') r->i++;
    return JR_OK;
}

static int jr_number(jref *r) {
    if (r->p[r->i] == '-') {
        r->i++;
        JR_NEED(r);
    }
    if (r->p[r->i] == '0') r->i++;
    else if (r->p[r->i] >= '1' && r->p[r->i] <= '9') jr_digits(r);
    else return JR_ERR;
    if (r->i < r->n && r->p[r->i] == '.') {
        r->i++;
        int e = jr_digits(r);
        if (e != JR_OK) return e;
    }
    if (r->i < r->n && (r->p[r->i] == 'e' || r->p[r->i] == 'E')) {
        r->i++;
        JR_NEED(r);
        if (r->p[r->i] == '+' || r->p[r->i] == '-') r->i++;
        int e = jr_digits(r);
        if (e != JR_OK) return e;
    }
    return JR_OK;
}

static int jr_word(jref *r, const char *w) {
    for (; *w; w++) {
        JR_NEED(r);
        if (r->p[r->i] != (uint8_t)*w) return JR_ERR;
        r->i++;
    }
    return JR_OK;
}

static int jr_value(jref *r);

static int jr_container(jref *r, bool object) {
    if (r->depth >= JREF_MAX_DEPTH) return JR_ERR;
    r->depth++;
    r->i++;
    jr_ws(r);
    JR_NEED(r);
    if (r->p[r->i] == (object ? '}' : ']')) {
        r->i++;
        r->depth--;
        return JR_OK;
    }
    for (;;) {
        int e;
        if (object) {
            JR_NEED(r);
            if (r->p[r->i] != '"') return JR_ERR;
            if ((e = jr_string(r)) != JR_OK) return e;
            jr_ws(r);
            JR_NEED(r);
            if (r->p[r->i] != ':') return JR_ERR;
            r->i++;
            jr_ws(r);
        }
        if ((e = jr_value(r)) != JR_OK) return e;
        jr_ws(r);
        JR_NEED(r);
        if (r->p[r->i] == ',') {
            r->i++;
            jr_ws(r);
            continue;
        }
        if (r->p[r->i] != (object ? '}' : ']')) return JR_ERR;
        r->i++;
        r->depth--;
        return JR_OK;
    }
}

static int jr_value(jref *r) {
    JR_NEED(r);
    switch (r->p[r->i]) {
    case '{': return jr_container(r, true);
    case '[': return jr_container(r, false);
    case '"': return jr_string(r);
    case 't': return jr_word(r, "true");
    case 'f': return jr_word(r, "false");
    case 'n': return jr_word(r, "null");
    default:
        if (r->p[r->i] == '-' || (r->p[r->i] >= '0' && r->p[r->i] <= '9')) return jr_number(r);
        return JR_ERR;
    }
}

static int jref_check(const void *text, size_t n, bool top_object) {
    jref r = {(const uint8_t *)text, n, 0, 0};
    jr_ws(&r);
    if (r.i >= n) return JREF_PREFIX;
    if (top_object && r.p[r.i] != '{') return JREF_ERROR;
    int e = jr_value(&r);
    if (e == JR_EOF) return JREF_PREFIX;
    if (e == JR_ERR) return JREF_ERROR;
    jr_ws(&r);
    return r.i < n ? JREF_ERROR : JREF_COMPLETE;
}

#endif
