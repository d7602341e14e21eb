/* UTF-8 checks for what the server writes into JSON: only well-formed UTF-8 (RFC 3629: no
 * overlong forms, no surrogates, nothing above U+10FFFF) goes out; anything else becomes
 * U+FFFD. Generated text is cut into tokens that may split a character: the emitter holds
 * an incomplete tail (srv_utf8_incomplete_tail) until the rest arrives. */
#include <stdlib.h>
#include <string.h>

#include "server/internal.h"

/* Length of the well-formed sequence at s[0..n), 0 when it is malformed, or -k (k > 0)
 * when the k bytes present are a valid but incomplete start. */
static int seq_len(const unsigned char *s, size_t n) {
    unsigned char c = s[0];
    if (c < 0x80) return 1;
    int need;
    unsigned char lo = 0x80, hi = 0xBF; /* allowed range of the second byte */
    if (c >= 0xC2 && c <= 0xDF) need = 2;
    else if (c == 0xE0) need = 3, lo = 0xA0;
    else if (c >= 0xE1 && c <= 0xEC) need = 3;
    else if (c == 0xED) need = 3, hi = 0x9F;
    else if (c >= 0xEE && c <= 0xEF) need = 3;
    else if (c == 0xF0) need = 4, lo = 0x90;
    else if (c >= 0xF1 && c <= 0xF3) need = 4;
    else if (c == 0xF4) need = 4, hi = 0x8F;
    else return 0;
    for (int i = 1; i < need; i++) {
        if ((size_t)i >= n) return -i;
        unsigned char b = s[i];
        if (i == 1 ? (b < lo || b > hi) : (b < 0x80 || b > 0xBF)) return 0;
    }
    return need;
}

size_t srv_utf8_incomplete_tail(const char *text, size_t n) {
    const unsigned char *s = (const unsigned char *)text;
    for (size_t back = 1; back <= 3 && back <= n; back++) {
        unsigned char c = s[n - back];
        if (c < 0x80) return 0;
        if (c >= 0xC0) return seq_len(s + n - back, back) < 0 ? back : 0;
    }
    return 0;
}

bool srv_utf8_valid(const char *text, size_t n) {
    const unsigned char *s = (const unsigned char *)text;
    for (size_t i = 0; i < n;) {
        int k = seq_len(s + i, n - i);
        if (k <= 0) return false;
        i += (size_t)k;
    }
    return true;
}

char *srv_utf8_sanitize(const char *text, size_t n, size_t *out_len) {
    const unsigned char *s = (const unsigned char *)text;
    /* Each bad byte becomes 3 bytes at most. */
    char *out = malloc(n * 3 + 1);
    if (!out) return NULL;
    size_t o = 0;
    for (size_t i = 0; i < n;) {
        int k = seq_len(s + i, n - i);
        if (k > 0) {
            memcpy(out + o, s + i, (size_t)k);
            o += (size_t)k;
            i += (size_t)k;
            continue;
        }
        /* A malformed or truncated sequence: one U+FFFD for its maximal valid prefix
         * (at least one byte), as the Unicode standard recommends. */
        size_t skip = k < 0 ? (size_t)-k : 1;
        if (k == 0) {
            for (size_t m = 1; m < 4 && i + m < n; m++) {
                int p = seq_len(s + i, m);
                if (p < 0 && (size_t)-p == m) skip = m;
                else break;
            }
        }
        memcpy(out + o, "\xEF\xBF\xBD", 3);
        o += 3;
        i += skip;
    }
    out[o] = 0;
    if (out_len) *out_len = o;
    return out;
}
