/* Text -> ids (special-token partition, then SPM or BPE per raw fragment) and
 * ids -> text (whole or streamed). */
#include <stdlib.h>
#include <string.h>

#include "tokenizer/tok_internal.h"

/* The special token starting at t[0..n), leftmost-longest: candidates share the first
 * byte and are sorted longest first. User-defined tokens always count; control and
 * unknown-type ones only when parse_special. */
static int32_t match_special(const strata_vocab *v, const char *t, size_t n, bool parse_special, size_t *len) {
    uint8_t b = (uint8_t)t[0];
    for (size_t i = v->special_start[b]; i < v->special_start[b + 1]; i++) {
        int32_t id = v->special[i];
        int type = v->tflags[id] & TF_TYPE_MASK;
        if (!parse_special && type != STRATA_TOKEN_USER_DEFINED) continue;
        size_t l;
        const char *s = tok_text(v, id, &l);
        if (l <= n && memcmp(s, t, l) == 0) {
            *len = l;
            return id;
        }
    }
    return -1;
}

static bool encode_fragment(const strata_vocab *v, const char *text, size_t len, bool after_special,
                            tok_scratch *s, tok_out *o) {
    if (v->kind == STRATA_VOCAB_SPM) return tok_spm_encode(v, text, len, v->add_space_prefix && after_special, s, o);
    tok_span *words;
    size_t nw;
    if (!tok_pretokenize(v, text, len, s, &words, &nw)) return false;
    /* byte offset of each code point is recovered by walking the lengths in order */
    size_t cp_i = 0, off = 0;
    for (size_t w = 0; w < nw; w++) {
        while (cp_i < words[w].start) off += s->cps[cp_i++].len;
        size_t start = off;
        while (cp_i < words[w].end) off += s->cps[cp_i++].len;
        if (!tok_bpe_encode_word(v, text + start, off - start, s, o)) return false;
    }
    return true;
}

int64_t strata_tokenize(const strata_vocab *v, const char *text, size_t len, bool add_special, bool parse_special,
                        int32_t *out, size_t cap) {
    STRATA_ASSERT(v && (text || len == 0) && (out || cap == 0));
    tok_out o = {out, cap, 0};
    tok_scratch s;
    memset(&s, 0, sizeof s);
    bool ok = true;
    if (add_special && v->add_bos && v->bos >= 0) tok_emit(&o, v->bos);

    bool after_special = true; /* the text's start counts as "after a special token" */
    size_t frag = 0;
    for (size_t pos = 0; pos < len && ok;) {
        size_t l = 0;
        int32_t id = v->n_special ? match_special(v, text + pos, len - pos, parse_special, &l) : -1;
        if (id < 0) {
            pos++;
            continue;
        }
        if (pos > frag) ok = encode_fragment(v, text + frag, pos - frag, after_special, &s, &o);
        tok_emit(&o, id);
        after_special = true;
        pos += l;
        frag = pos;
    }
    if (ok && len > frag) ok = encode_fragment(v, text + frag, len - frag, after_special, &s, &o);
    tok_scratch_free(&s);
    if (!ok) {
        strata_fail(STRATA_ERR_NOMEM, "tokenize: out of memory (%zu bytes of text)", len);
        return -1;
    }
    if (add_special && v->add_eos && v->eos >= 0) tok_emit(&o, v->eos);
    return (int64_t)o.n;
}

/* ---- ids -> text -------------------------------------------------------------------------- */

static const char *piece_of(const strata_vocab *v, int32_t id, bool special, size_t *len) {
    if ((v->tflags[id] & TF_SPECIAL_PIECE) && !special) {
        *len = 0;
        return "";
    }
    *len = (size_t)(v->piece_off[id + 1] - v->piece_off[id]);
    return v->piece + v->piece_off[id];
}

int32_t strata_token_to_piece(const strata_vocab *v, int32_t id, char *buf, size_t cap, bool special) {
    STRATA_ASSERT(v && (buf || cap == 0));
    if (id < 0 || id >= v->n) {
        strata_fail(STRATA_ERR_INVALID, "token id %d out of range (vocab of %d)", id, v->n);
        return -1;
    }
    size_t l;
    const char *p = piece_of(v, id, special, &l);
    memcpy(buf, p, l < cap ? l : cap);
    return (int32_t)l;
}

int64_t strata_detokenize(const strata_vocab *v, const int32_t *ids, size_t n, char *buf, size_t cap,
                          bool special) {
    STRATA_ASSERT(v && (ids || n == 0) && (buf || cap == 0));
    size_t total = 0;
    bool strip = v->add_space_prefix;
    for (size_t i = 0; i < n; i++) {
        if (ids[i] < 0 || ids[i] >= v->n) {
            strata_fail(STRATA_ERR_INVALID, "token id %d (at %zu) out of range (vocab of %d)", ids[i], i, v->n);
            return -1;
        }
        size_t l;
        const char *p = piece_of(v, ids[i], special, &l);
        if (l == 0) continue;
        if (strip) {
            strip = false;
            if (p[0] == ' ') p++, l--;
        }
        if (total < cap) memcpy(buf + total, p, (cap - total) < l ? (cap - total) : l);
        total += l;
    }
    return (int64_t)total;
}

/* ---- streaming ------------------------------------------------------------------------------- */

struct strata_detok_stream {
    const strata_vocab *v;
    bool special;
    char *buf; /* held bytes + the newest piece */
    size_t cap;
    char hold[4];
    size_t n_hold;
};

strata_detok_stream *strata_detok_stream_new(const strata_vocab *v, bool special) {
    STRATA_ASSERT(v);
    strata_detok_stream *s = calloc(1, sizeof *s);
    if (s) {
        s->cap = v->max_piece + 8;
        s->buf = malloc(s->cap);
    }
    if (!s || !s->buf) {
        free(s);
        strata_fail(STRATA_ERR_NOMEM, "detokenizer stream: out of memory");
        return NULL;
    }
    s->v = v;
    s->special = special;
    return s;
}

void strata_detok_stream_free(strata_detok_stream *s) {
    if (!s) return;
    free(s->buf);
    free(s);
}

/* Where the last, still incomplete character of b[0..n) begins (n if none is pending).
 * A prefix that can no longer become valid UTF-8 is not held. */
static size_t incomplete_tail(const uint8_t *b, size_t n) {
    for (size_t back = 1; back <= 3 && back <= n; back++) {
        size_t k = n - back;
        uint8_t c = b[k];
        if ((c & 0xC0) == 0x80) continue; /* continuation: look further back */
        size_t need = (c >= 0xC2 && c <= 0xDF) ? 2 : (c >= 0xE0 && c <= 0xEF) ? 3 : (c >= 0xF0 && c <= 0xF4) ? 4 : 0;
        if (need == 0 || back >= need) return n; /* ASCII, invalid lead, or complete */
        if (back >= 2) { /* the second byte's narrower ranges for E0, ED, F0, F4 */
            uint8_t c1 = b[k + 1];
            if ((c == 0xE0 && c1 < 0xA0) || (c == 0xED && c1 > 0x9F) || (c == 0xF0 && c1 < 0x90) ||
                (c == 0xF4 && c1 > 0x8F))
                return n;
        }
        return k;
    }
    return n;
}

const char *strata_detok_stream_push(strata_detok_stream *s, int32_t id, size_t *len) {
    STRATA_ASSERT(s && len);
    *len = 0;
    if (id < 0 || id >= s->v->n) {
        strata_fail(STRATA_ERR_INVALID, "token id %d out of range (vocab of %d)", id, s->v->n);
        return NULL;
    }
    size_t l;
    const char *p = piece_of(s->v, id, s->special, &l);
    memcpy(s->buf, s->hold, s->n_hold);
    memcpy(s->buf + s->n_hold, p, l); /* fits: cap >= max piece + 4 */
    size_t n = s->n_hold + l;
    size_t cut = incomplete_tail((const uint8_t *)s->buf, n);
    s->n_hold = n - cut;
    memcpy(s->hold, s->buf + cut, s->n_hold);
    *len = cut;
    return s->buf;
}

const char *strata_detok_stream_flush(strata_detok_stream *s, size_t *len) {
    STRATA_ASSERT(s && len);
    memcpy(s->buf, s->hold, s->n_hold);
    *len = s->n_hold;
    s->n_hold = 0;
    return s->buf;
}
