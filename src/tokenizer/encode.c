/* The two word encoders.
 *
 * SPM (SentencePiece "llama" vocabularies): the text, spaces written as U+2581, starts as
 * one symbol per UTF-8 character; the adjacent pair whose concatenation is the token with
 * the highest score is merged first (ties: the leftmost), until no pair forms a token.
 * Symbols that are not tokens are written as byte tokens <0xNN>.
 *
 * BPE (byte-level "gpt2" vocabularies): a pre-tokenized word starts as one symbol per byte
 * (the byte's GPT-2 unicode stand-in); the adjacent pair with the lowest merge rank is
 * merged first (ties: the leftmost). Vocabularies that ignore merges (Llama 3) take a word
 * that is itself a token directly.
 *
 * Both use a binary heap of candidate pairs with lazy invalidation, so a word of n symbols
 * costs O(n log n) however long it is (fuzzed inputs make very long words). */
#include <stdlib.h>
#include <string.h>

#include "tokenizer/tok_internal.h"

bool tok_merge_lookup(const strata_vocab *v, int32_t l, int32_t r, int32_t *rank, int32_t *result);

/* ---- SPM --------------------------------------------------------------------------------- */

typedef struct {
    size_t start;
    uint32_t len; /* 0 once merged into its left neighbour */
    int64_t prev, next;
} spm_sym;

typedef struct {
    float score;
    uint32_t size;
    int64_t left, right;
} spm_pair;

static bool spm_before(const spm_pair *a, const spm_pair *b) {
    return a->score > b->score || (a->score == b->score && a->left < b->left);
}

static int32_t find_mergeable(const strata_vocab *v, const char *t, size_t l) {
    int32_t id = strata_vocab_find(v, t, l);
    return (id >= 0 && (v->tflags[id] & TF_MERGEABLE)) ? id : -1;
}

static bool spm_push(const strata_vocab *v, tok_scratch *s, size_t *nh, const spm_sym *sym, const char *buf,
                     int64_t l, int64_t r) {
    if (l < 0 || r < 0) return true;
    size_t size = (size_t)sym[l].len + sym[r].len;
    int32_t id = find_mergeable(v, buf + sym[l].start, size);
    if (id < 0) return true;
    if (!tok_grow(&s->heap, &s->heap_cap, *nh + 1, sizeof(spm_pair))) return false;
    spm_pair *h = s->heap;
    spm_pair p = {v->scores[id], (uint32_t)size, l, r};
    size_t i = (*nh)++;
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!spm_before(&p, &h[parent])) break;
        h[i] = h[parent];
        i = parent;
    }
    h[i] = p;
    return true;
}

static spm_pair spm_pop(spm_pair *h, size_t *nh) {
    spm_pair top = h[0], last = h[--*nh];
    size_t i = 0, n = *nh;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n) break;
        if (c + 1 < n && spm_before(&h[c + 1], &h[c])) c++;
        if (!spm_before(&h[c], &last)) break;
        h[i] = h[c];
        i = c;
    }
    if (n > 0) h[i] = last;
    return top;
}

static void emit_bytes(const strata_vocab *v, const char *p, size_t n, tok_out *o) {
    for (size_t i = 0; i < n; i++) {
        int32_t id = v->byte_tok[(uint8_t)p[i]];
        if (id < 0) id = v->unk; /* the vocab cannot represent this byte */
        if (id >= 0) tok_emit(o, id);
    }
}

bool tok_spm_encode(const strata_vocab *v, const char *text, size_t len, bool space_prefix, tok_scratch *s,
                    tok_out *o) {
    /* escape: optional leading space, then every ' ' as U+2581 (3 bytes) */
    size_t need = (len + 1) * 3;
    if (!tok_grow((void **)&s->buf, &s->buf_cap, need, 1)) return false;
    char *buf = s->buf;
    size_t bl = 0;
    static const char mark[3] = {(char)0xE2, (char)0x96, (char)0x81};
    if (space_prefix) memcpy(buf, mark, 3), bl = 3;
    for (size_t i = 0; i < len; i++) {
        if (text[i] == ' ') memcpy(buf + bl, mark, 3), bl += 3;
        else buf[bl++] = text[i];
    }
    if (bl == 0) return true;

    /* one symbol per character (an invalid byte is a character of its own) */
    if (!tok_grow(&s->sym, &s->sym_cap, bl, sizeof(spm_sym))) return false;
    spm_sym *sym = s->sym;
    int64_t n = 0;
    for (size_t p = 0; p < bl;) {
        uint32_t cp;
        size_t cl = tok_utf8_decode((const uint8_t *)buf + p, bl - p, &cp);
        sym[n].start = p;
        sym[n].len = (uint32_t)cl;
        sym[n].prev = n - 1;
        sym[n].next = n + 1;
        n++;
        p += cl;
    }
    sym[n - 1].next = -1;

    size_t nh = 0;
    for (int64_t i = 1; i < n; i++)
        if (!spm_push(v, s, &nh, sym, buf, i - 1, i)) return false;
    while (nh > 0) {
        spm_pair p = spm_pop(s->heap, &nh);
        spm_sym *l = &sym[p.left], *r = &sym[p.right];
        if (l->len == 0 || r->len == 0 || l->next != p.right || l->len + r->len != p.size) continue; /* stale */
        l->len += r->len;
        r->len = 0;
        l->next = r->next;
        if (r->next >= 0) sym[r->next].prev = p.left;
        if (!spm_push(v, s, &nh, sym, buf, l->prev, p.left)) return false;
        if (!spm_push(v, s, &nh, sym, buf, p.left, l->next)) return false;
    }

    for (int64_t i = 0; i >= 0; i = sym[i].next) {
        int32_t id = find_mergeable(v, buf + sym[i].start, sym[i].len);
        if (id >= 0) tok_emit(o, id);
        else emit_bytes(v, buf + sym[i].start, sym[i].len, o);
    }
    return true;
}

/* ---- BPE --------------------------------------------------------------------------------- */

typedef struct {
    int32_t id;
    int32_t alive;
    int64_t prev, next;
} bpe_sym;

typedef struct {
    int32_t rank;
    int32_t lid, rid;
    int64_t left, right;
} bpe_pair;

static bool bpe_before(const bpe_pair *a, const bpe_pair *b) {
    return a->rank < b->rank || (a->rank == b->rank && a->left < b->left);
}

static bool bpe_push(const strata_vocab *v, tok_scratch *s, size_t *nh, const bpe_sym *sym, int64_t l, int64_t r) {
    if (l < 0 || r < 0) return true;
    int32_t rank, res;
    if (!tok_merge_lookup(v, sym[l].id, sym[r].id, &rank, &res)) return true;
    if (!tok_grow(&s->heap, &s->heap_cap, *nh + 1, sizeof(bpe_pair))) return false;
    bpe_pair *h = s->heap;
    bpe_pair p = {rank, sym[l].id, sym[r].id, l, r};
    size_t i = (*nh)++;
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!bpe_before(&p, &h[parent])) break;
        h[i] = h[parent];
        i = parent;
    }
    h[i] = p;
    return true;
}

static bpe_pair bpe_pop(bpe_pair *h, size_t *nh) {
    bpe_pair top = h[0], last = h[--*nh];
    size_t i = 0, n = *nh;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n) break;
        if (c + 1 < n && bpe_before(&h[c + 1], &h[c])) c++;
        if (!bpe_before(&h[c], &last)) break;
        h[i] = h[c];
        i = c;
    }
    if (n > 0) h[i] = last;
    return top;
}

bool tok_bpe_encode_word(const strata_vocab *v, const char *bytes, size_t len, tok_scratch *s, tok_out *o) {
    if (len == 0) return true;
    const uint8_t *b = (const uint8_t *)bytes;

    if (v->ignore_merges) {
        /* the word spelled in byte symbols, looked up whole */
        if (!tok_grow((void **)&s->buf, &s->buf_cap, len * 2, 1)) return false;
        size_t bl = 0;
        bool ok = true;
        for (size_t i = 0; i < len && ok; i++) {
            int32_t bt = v->byte_tok[b[i]];
            if (bt < 0) {
                ok = false;
                break;
            }
            size_t tl;
            const char *t = tok_text(v, bt, &tl);
            memcpy(s->buf + bl, t, tl); /* byte symbols are 1 or 2 bytes of UTF-8 */
            bl += tl;
        }
        if (ok) {
            int32_t id = find_mergeable(v, s->buf, bl);
            if (id >= 0) {
                tok_emit(o, id);
                return true;
            }
        }
    }

    if (!tok_grow(&s->sym, &s->sym_cap, len, sizeof(bpe_sym))) return false;
    bpe_sym *sym = s->sym;
    int64_t n = (int64_t)len;
    for (int64_t i = 0; i < n; i++) {
        sym[i].id = v->byte_tok[b[i]];
        sym[i].alive = 1;
        sym[i].prev = i - 1;
        sym[i].next = i + 1 < n ? i + 1 : -1;
    }
    size_t nh = 0;
    for (int64_t i = 1; i < n; i++)
        if (!bpe_push(v, s, &nh, sym, i - 1, i)) return false;
    while (nh > 0) {
        bpe_pair p = bpe_pop(s->heap, &nh);
        bpe_sym *l = &sym[p.left], *r = &sym[p.right];
        if (!l->alive || !r->alive || l->next != p.right || l->id != p.lid || r->id != p.rid) continue; /* stale */
        int32_t rank, res;
        if (!tok_merge_lookup(v, l->id, r->id, &rank, &res)) continue;
        l->id = res;
        r->alive = 0;
        l->next = r->next;
        if (r->next >= 0) sym[r->next].prev = p.left;
        if (!bpe_push(v, s, &nh, sym, l->prev, p.left)) return false;
        if (!bpe_push(v, s, &nh, sym, p.left, l->next)) return false;
    }
    for (int64_t i = 0; i >= 0; i = sym[i].next) {
        int32_t id = sym[i].id;
        if (id < 0) id = v->unk; /* a byte without a symbol in this vocab */
        if (id >= 0) tok_emit(o, id);
    }
    return true;
}
