/* Vocabulary: built from a GGUF file's tokenizer.* keys, owning copies of everything
 * (token texts, scores, types, merges, decoded pieces), plus the lookup tables the
 * encoders need: text -> id, (left id, right id) -> merge, special tokens by first byte. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tokenizer/tok_internal.h"

/* ---- hashing ---------------------------------------------------------------------------- */

static uint64_t hash_bytes(const char *p, size_t n) {
    /* FNV-1a over 8-byte words then the tail, finished with a multiply-xorshift mix. */
    uint64_t h = 0xcbf29ce484222325ull ^ (uint64_t)n;
    while (n >= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        h = (h ^ w) * 0x100000001b3ull;
        h ^= h >> 29;
        p += 8;
        n -= 8;
    }
    while (n--) h = (h ^ (uint8_t)*p++) * 0x100000001b3ull;
    h ^= h >> 32;
    h *= 0xd6e8feb86659fd93ull;
    h ^= h >> 32;
    return h;
}

static uint64_t pow2_at_least(uint64_t n) {
    uint64_t c = 16;
    while (c < n) c <<= 1;
    return c;
}

int32_t strata_vocab_find(const strata_vocab *v, const char *text, size_t len) {
    uint64_t i = hash_bytes(text, len) & v->hash_mask;
    for (;;) {
        int32_t id = v->hash[i];
        if (id < 0) return -1;
        size_t l;
        const char *t = tok_text(v, id, &l);
        if (l == len && memcmp(t, text, len) == 0) return id;
        i = (i + 1) & v->hash_mask;
    }
}

static const tok_merge *merge_find(const strata_vocab *v, int32_t l, int32_t r) {
    uint64_t key = ((uint64_t)(uint32_t)l << 32) | (uint32_t)r;
    uint64_t i = (key * 0x9E3779B97F4A7C15ull >> 20) & v->merges_mask;
    for (;;) {
        const tok_merge *m = &v->merges[i];
        if (m->key == key) return m;
        if (m->key == UINT64_MAX) return NULL;
        i = (i + 1) & v->merges_mask;
    }
}

/* Exposed to bpe.c through this accessor (keeps the table layout private to this file). */
bool tok_merge_lookup(const strata_vocab *v, int32_t l, int32_t r, int32_t *rank, int32_t *result);
bool tok_merge_lookup(const strata_vocab *v, int32_t l, int32_t r, int32_t *rank, int32_t *result) {
    if (!v->merges || l < 0 || r < 0) return false;
    const tok_merge *m = merge_find(v, l, r);
    if (!m) return false;
    *rank = m->rank;
    *result = m->result;
    return true;
}

/* ---- GPT-2 byte <-> unicode mapping ---------------------------------------------------
 * Printable Latin-1 bytes ('!'..'~', 0xA1..0xAC, 0xAE..0xFF) stand for themselves; the other
 * 68 bytes, in increasing order, become U+0100, U+0101, ... */
static void byte_to_cp_table(uint32_t out[256]) {
    uint32_t next = 256;
    for (int b = 0; b < 256; b++) {
        bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
        out[b] = printable ? (uint32_t)b : next++;
    }
}

/* ---- loading ---------------------------------------------------------------------------- */

static bool get_id(const gguf_file *f, const char *key, int32_t n, int32_t *id) {
    int64_t x;
    if (!gguf_get_i64(f, key, &x)) return false;
    if (x < 0 || x >= n) return false; /* out of range: ignored, as if absent */
    *id = (int32_t)x;
    return true;
}

static strata_status build_text_hash(strata_vocab *v) {
    uint64_t cap = pow2_at_least((uint64_t)v->n * 2);
    v->hash = malloc(cap * sizeof *v->hash);
    if (!v->hash) return strata_fail(STRATA_ERR_NOMEM, "tokenizer: out of memory (token hash)");
    memset(v->hash, 0xff, cap * sizeof *v->hash);
    v->hash_mask = cap - 1;
    for (int32_t id = 0; id < v->n; id++) {
        size_t l;
        const char *t = tok_text(v, id, &l);
        if (l == 0) continue; /* an empty text can never be looked up meaningfully */
        uint64_t i = hash_bytes(t, l) & v->hash_mask;
        for (;;) {
            int32_t o = v->hash[i];
            if (o < 0) {
                v->hash[i] = id;
                break;
            }
            size_t ol;
            const char *ot = tok_text(v, o, &ol);
            if (ol == l && memcmp(ot, t, l) == 0) {
                /* Duplicate text: the later id wins, as in the reference, except that a
                 * normal token is not shadowed by a special one (deepseek-llm repeats byte
                 * symbols such as "\xc3\x80" as user-defined tokens; bytes must still map to
                 * the normal ones for the text to come back). */
                bool keep = (v->tflags[o] & TF_TYPE_MASK) == STRATA_TOKEN_NORMAL &&
                            (v->tflags[id] & TF_TYPE_MASK) != STRATA_TOKEN_NORMAL;
                if (!keep) v->hash[i] = id;
                break;
            }
            i = (i + 1) & v->hash_mask;
        }
    }
    return STRATA_OK;
}

static strata_status load_merges(strata_vocab *v, const gguf_value *arr) {
    if (arr->arr.elem_type != GGUF_TYPE_STRING)
        return strata_fail(STRATA_ERR_FORMAT, "tokenizer.ggml.merges: expected an array of strings, got %s",
                           gguf_value_type_name(arr->arr.elem_type));
    uint64_t count = arr->arr.count;
    if (count > INT32_MAX) return strata_fail(STRATA_ERR_FORMAT, "tokenizer.ggml.merges: too many merges");
    uint64_t cap = pow2_at_least(count * 2 + 1);
    v->merges = malloc(cap * sizeof *v->merges);
    if (!v->merges) return strata_fail(STRATA_ERR_NOMEM, "tokenizer: out of memory (merges)");
    for (uint64_t i = 0; i < cap; i++) v->merges[i].key = UINT64_MAX;
    v->merges_mask = cap - 1;
    char *buf = NULL;
    size_t buf_cap = 0;
    for (uint64_t j = 0; j < count; j++) {
        gguf_str s = gguf_array_str(arr, j);
        /* "LEFT RIGHT": split at the first space after the first byte (a side may itself
         * begin with a space byte in exotic vocabularies, never be empty) */
        const char *sp = s.len > 1 ? memchr(s.ptr + 1, ' ', s.len - 1) : NULL;
        if (!sp) {
            free(buf);
            return strata_fail(STRATA_ERR_FORMAT, "tokenizer.ggml.merges[%llu]: no space separating the pair",
                               (unsigned long long)j);
        }
        size_t ll = (size_t)(sp - s.ptr), rl = s.len - ll - 1;
        int32_t l = strata_vocab_find(v, s.ptr, ll);
        int32_t r = strata_vocab_find(v, sp + 1, rl);
        if (!tok_grow((void **)&buf, &buf_cap, ll + rl + 1, 1)) {
            free(buf);
            return strata_fail(STRATA_ERR_NOMEM, "tokenizer: out of memory (merges)");
        }
        memcpy(buf, s.ptr, ll);
        memcpy(buf + ll, sp + 1, rl);
        int32_t res = strata_vocab_find(v, buf, ll + rl);
        /* A merge whose sides or result are not tokens can never take part in encoding
         * by ids; it is skipped. */
        if (l < 0 || r < 0 || res < 0) continue;
        uint64_t key = ((uint64_t)(uint32_t)l << 32) | (uint32_t)r;
        uint64_t i = (key * 0x9E3779B97F4A7C15ull >> 20) & v->merges_mask;
        while (v->merges[i].key != UINT64_MAX && v->merges[i].key != key) i = (i + 1) & v->merges_mask;
        if (v->merges[i].key == key) continue; /* duplicate pair: the first (lowest) rank wins */
        v->merges[i].key = key;
        v->merges[i].rank = (int32_t)j;
        v->merges[i].result = res;
        v->n_merges++;
    }
    free(buf);
    return STRATA_OK;
}

/* Byte value of an SPM byte token "<0xNN>", or -1. */
static int parse_byte_token(const char *t, size_t l) {
    if (l != 6 || t[0] != '<' || t[1] != '0' || t[2] != 'x' || t[5] != '>') return -1;
    int v = 0;
    for (int i = 3; i < 5; i++) {
        char c = t[i];
        int d = (c >= '0' && c <= '9') ? c - '0' : (c >= 'A' && c <= 'F') ? c - 'A' + 10 : (c >= 'a' && c <= 'f') ? c - 'a' + 10 : -1;
        if (d < 0) return -1;
        v = v * 16 + d;
    }
    return v;
}

/* Decoded pieces (what detokenization prints), computed once. */
static strata_status build_pieces(strata_vocab *v) {
    uint32_t b2c[256];
    int cp2b_n = 0;
    static const int CP2B_MAX = 324; /* code points used by the byte mapping are < 324 */
    int16_t cp2b[324];
    if (v->kind == STRATA_VOCAB_BPE) {
        byte_to_cp_table(b2c);
        for (int i = 0; i < CP2B_MAX; i++) cp2b[i] = -1;
        for (int b = 0; b < 256; b++) cp2b[b2c[b]] = (int16_t)b, cp2b_n++;
    }
    /* pieces are never longer than the text (decoding only shrinks) */
    v->piece = malloc(v->text_off[v->n] + 1);
    v->piece_off = malloc(((size_t)v->n + 1) * sizeof *v->piece_off);
    if (!v->piece || !v->piece_off) return strata_fail(STRATA_ERR_NOMEM, "tokenizer: out of memory (pieces)");
    uint64_t o = 0;
    v->max_piece = 0;
    for (int32_t id = 0; id < v->n; id++) {
        v->piece_off[id] = o;
        size_t l;
        const char *t = tok_text(v, id, &l);
        int type = v->tflags[id] & TF_TYPE_MASK;
        char *dst = v->piece + o;
        size_t dl = 0;
        int byte = parse_byte_token(t, l);
        if (type == STRATA_TOKEN_BYTE && byte >= 0) {
            dst[dl++] = (char)byte;
        } else if (type == STRATA_TOKEN_CONTROL || type == STRATA_TOKEN_UNKNOWN || type == STRATA_TOKEN_USER_DEFINED ||
                   type == STRATA_TOKEN_BYTE) {
            memcpy(dst, t, l); /* as written; control/unknown shown only on request */
            dl = l;
        } else if (type == STRATA_TOKEN_UNUSED) {
            dl = 0;
        } else if (v->kind == STRATA_VOCAB_SPM) {
            for (size_t i = 0; i < l;) {
                if (i + 3 <= l && (uint8_t)t[i] == 0xE2 && (uint8_t)t[i + 1] == 0x96 && (uint8_t)t[i + 2] == 0x81) {
                    dst[dl++] = ' '; /* U+2581 LOWER ONE EIGHTH BLOCK marks a space */
                    i += 3;
                } else {
                    dst[dl++] = t[i++];
                }
            }
        } else {
            /* BPE: each code point of the text stands for one byte; anything else is kept */
            for (size_t i = 0; i < l;) {
                uint32_t cp;
                size_t cl = tok_utf8_decode((const uint8_t *)t + i, l - i, &cp);
                if (cp != TOK_CP_INVALID && cp < (uint32_t)CP2B_MAX && cp2b[cp] >= 0) {
                    dst[dl++] = (char)cp2b[cp];
                } else {
                    memcpy(dst + dl, t + i, cl);
                    dl += cl;
                }
                i += cl;
            }
        }
        if (type == STRATA_TOKEN_CONTROL || type == STRATA_TOKEN_UNKNOWN) v->tflags[id] |= TF_SPECIAL_PIECE;
        o += dl;
        if (dl > v->max_piece) v->max_piece = dl;
        if (l > v->max_piece) v->max_piece = l; /* special pieces print their text */
    }
    v->piece_off[v->n] = o;
    (void)cp2b_n;
    return STRATA_OK;
}

typedef struct {
    uint32_t first; /* first byte of the text */
    uint64_t len;
    int32_t id;
} special_key;

static int special_cmp(const void *a, const void *b) {
    const special_key *x = a, *y = b;
    if (x->first != y->first) return x->first < y->first ? -1 : 1;
    if (x->len != y->len) return x->len > y->len ? -1 : 1;
    return x->id < y->id ? -1 : x->id > y->id;
}

static strata_status build_specials(strata_vocab *v) {
    size_t n = 0;
    for (int32_t id = 0; id < v->n; id++)
        if (v->tflags[id] & TF_SPECIAL) n++;
    v->special = malloc((n ? n : 1) * sizeof *v->special);
    special_key *keys = malloc((n ? n : 1) * sizeof *keys);
    if (!v->special || !keys) {
        free(keys);
        return strata_fail(STRATA_ERR_NOMEM, "tokenizer: out of memory (specials)");
    }
    n = 0;
    for (int32_t id = 0; id < v->n; id++) {
        if (!(v->tflags[id] & TF_SPECIAL)) continue;
        size_t l;
        const char *t = tok_text(v, id, &l);
        keys[n].first = (uint8_t)t[0];
        keys[n].len = l;
        keys[n].id = id;
        n++;
    }
    /* by first byte, then longest first (leftmost-longest matching), then id */
    qsort(keys, n, sizeof *keys, special_cmp);
    for (size_t i = 0; i < n; i++) v->special[i] = keys[i].id;
    v->n_special = n;
    size_t i = 0;
    for (uint32_t b = 0; b < 256; b++) {
        while (i < n && keys[i].first < b) i++;
        v->special_start[b] = i;
    }
    v->special_start[256] = n;
    free(keys);
    return STRATA_OK;
}

/* Control tokens that end a turn, in order of preference for EOT when the file names none
 * (the first one present wins); every one present also ends generation. */
static const char *const k_eot_texts[] = {
    "<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>", "<EOT>", "_<EOT>",
    "<\xef\xbd\x9c" "end\xe2\x96\x81of\xe2\x96\x81sentence\xef\xbd\x9c>", NULL,
};
/* These end generation too but are not end-of-turn markers. */
static const char *const k_eog_texts[] = {"<|eom_id|>", "<|end_of_text|>", NULL};

static void mark_eog(strata_vocab *v) {
    for (int pass = 0; pass < 2; pass++) {
        const char *const *list = pass == 0 ? k_eot_texts : k_eog_texts;
        for (int i = 0; list[i]; i++) {
            int32_t id = strata_vocab_find(v, list[i], strlen(list[i]));
            if (id < 0) continue;
            int type = v->tflags[id] & TF_TYPE_MASK;
            if (type != STRATA_TOKEN_CONTROL && type != STRATA_TOKEN_USER_DEFINED) continue;
            if (pass == 0 && v->eot < 0) v->eot = id;
            v->tflags[id] |= TF_EOG;
        }
    }
}

void strata_vocab_free(strata_vocab *v) {
    if (!v) return;
    free(v->text);
    free(v->text_off);
    free(v->scores);
    free(v->tflags);
    free(v->piece);
    free(v->piece_off);
    free(v->hash);
    free(v->merges);
    free(v->special);
    free(v->pre_name);
    tok_pre_classes_free(&v->classes);
    free(v);
}

static strata_status load(const gguf_file *f, strata_vocab *v) {
    strata_status st;
    gguf_str model;
    if (!gguf_get_str(f, "tokenizer.ggml.model", &model))
        return strata_fail(STRATA_ERR_FORMAT, "tokenizer.ggml.model: missing (no tokenizer in this file)");
    if (gguf_str_eq(model, "llama")) {
        v->kind = STRATA_VOCAB_SPM;
    } else if (gguf_str_eq(model, "gpt2")) {
        v->kind = STRATA_VOCAB_BPE;
    } else {
        int shown = model.len > 64 ? 64 : (int)model.len;
        return strata_fail(STRATA_ERR_UNSUPPORTED,
                           "tokenizer.ggml.model '%.*s' is not supported (only 'llama' = SentencePiece and "
                           "'gpt2' = byte-level BPE)",
                           shown, model.ptr);
    }

    const gguf_value *toks = gguf_get_array(f, "tokenizer.ggml.tokens");
    if (!toks) return strata_fail(STRATA_ERR_FORMAT, "tokenizer.ggml.tokens: missing or not an array");
    if (toks->arr.elem_type != GGUF_TYPE_STRING)
        return strata_fail(STRATA_ERR_FORMAT, "tokenizer.ggml.tokens: expected strings, got %s",
                           gguf_value_type_name(toks->arr.elem_type));
    if (toks->arr.count == 0) return strata_fail(STRATA_ERR_FORMAT, "tokenizer.ggml.tokens: empty");
    if (toks->arr.count > INT32_MAX - 1)
        return strata_fail(STRATA_ERR_FORMAT, "tokenizer.ggml.tokens: %llu tokens is too many",
                           (unsigned long long)toks->arr.count);
    v->n = (int32_t)toks->arr.count;

    const gguf_value *scores = gguf_get_array(f, "tokenizer.ggml.scores");
    const gguf_value *types = gguf_get_array(f, "tokenizer.ggml.token_type");
    if (scores && scores->arr.count != toks->arr.count)
        return strata_fail(STRATA_ERR_FORMAT, "tokenizer.ggml.scores: %llu entries for %d tokens",
                           (unsigned long long)scores->arr.count, v->n);
    if (types && types->arr.count != toks->arr.count)
        return strata_fail(STRATA_ERR_FORMAT, "tokenizer.ggml.token_type: %llu entries for %d tokens",
                           (unsigned long long)types->arr.count, v->n);
    if (scores && (scores->arr.elem_type == GGUF_TYPE_STRING || scores->arr.elem_type == GGUF_TYPE_BOOL))
        return strata_fail(STRATA_ERR_FORMAT, "tokenizer.ggml.scores: not numeric (%s)",
                           gguf_value_type_name(scores->arr.elem_type));
    if (types && (types->arr.elem_type == GGUF_TYPE_STRING || types->arr.elem_type == GGUF_TYPE_BOOL ||
                  types->arr.elem_type == GGUF_TYPE_FLOAT32 || types->arr.elem_type == GGUF_TYPE_FLOAT64))
        return strata_fail(STRATA_ERR_FORMAT, "tokenizer.ggml.token_type: not integers (%s)",
                           gguf_value_type_name(types->arr.elem_type));

    /* texts */
    uint64_t total = 0;
    for (int32_t i = 0; i < v->n; i++) total += gguf_array_str(toks, (uint64_t)i).len;
    v->text = malloc(total + 1);
    v->text_off = malloc(((size_t)v->n + 1) * sizeof *v->text_off);
    v->scores = calloc((size_t)v->n, sizeof *v->scores);
    v->tflags = calloc((size_t)v->n, 1);
    if (!v->text || !v->text_off || !v->scores || !v->tflags)
        return strata_fail(STRATA_ERR_NOMEM, "tokenizer: out of memory (%d tokens)", v->n);
    uint64_t o = 0;
    for (int32_t i = 0; i < v->n; i++) {
        gguf_str s = gguf_array_str(toks, (uint64_t)i);
        v->text_off[i] = o;
        memcpy(v->text + o, s.ptr, s.len);
        o += s.len;
        if (scores) v->scores[i] = (float)gguf_array_f64(scores, (uint64_t)i);
        int64_t t = types ? gguf_array_i64(types, (uint64_t)i) : STRATA_TOKEN_NORMAL;
        if (t < 0 || t > STRATA_TOKEN_BYTE) t = STRATA_TOKEN_NORMAL; /* unknown kinds: plain text */
        uint8_t fl = (uint8_t)t;
        if (t == STRATA_TOKEN_NORMAL || t == STRATA_TOKEN_UNDEFINED || t == STRATA_TOKEN_USER_DEFINED) fl |= TF_MERGEABLE;
        if ((t == STRATA_TOKEN_CONTROL || t == STRATA_TOKEN_USER_DEFINED || t == STRATA_TOKEN_UNKNOWN) && s.len > 0)
            fl |= TF_SPECIAL;
        v->tflags[i] = fl;
    }
    v->text_off[v->n] = o;

    if ((st = build_text_hash(v)) != STRATA_OK) return st;

    /* pre-tokenizer */
    gguf_str pre = {"", 0};
    gguf_get_str(f, "tokenizer.ggml.pre", &pre);
    v->pre_name = malloc(pre.len + 1);
    if (!v->pre_name) return strata_fail(STRATA_ERR_NOMEM, "tokenizer: out of memory");
    memcpy(v->pre_name, pre.ptr, pre.len);
    v->pre_name[pre.len] = 0;
    bool pre_has_nul = memchr(pre.ptr, 0, pre.len) != NULL;
    v->pre_known = !pre_has_nul && tok_pre_lookup(v->pre_name, &v->pre, &v->ignore_merges);
    if (pre_has_nul) v->pre = PRE_DEFAULT, v->ignore_merges = false;
    if (v->kind == STRATA_VOCAB_BPE) {
        if ((st = tok_pre_classes_init(&v->classes, v->pre)) != STRATA_OK) return st;
        const gguf_value *merges = gguf_get_array(f, "tokenizer.ggml.merges");
        if (merges && (st = load_merges(v, merges)) != STRATA_OK) return st;
    }
    for (int c = 0; c < 128; c++) v->ascii_flags[c] = tok_cp_flags((uint32_t)c);

    /* byte tokens */
    for (int b = 0; b < 256; b++) {
        v->byte_tok[b] = -1;
        char buf[8];
        if (v->kind == STRATA_VOCAB_SPM) {
            snprintf(buf, sizeof buf, "<0x%02X>", b);
            v->byte_tok[b] = strata_vocab_find(v, buf, 6);
            if (v->byte_tok[b] < 0 && b < 0x80) { /* a vocab without byte tokens: the character itself */
                buf[0] = (char)b;
                v->byte_tok[b] = strata_vocab_find(v, buf, 1);
            }
        } else {
            uint32_t b2c[256];
            byte_to_cp_table(b2c);
            size_t l = tok_utf8_encode(b2c[b], buf);
            v->byte_tok[b] = strata_vocab_find(v, buf, l);
        }
    }

    /* special ids and flags */
    v->bos = v->eos = v->eot = v->eom = v->unk = v->pad = -1;
    if (v->kind == STRATA_VOCAB_SPM) { /* SentencePiece's conventional ids, when present */
        if (v->n > 0) v->unk = 0;
        if (v->n > 1) v->bos = 1;
        if (v->n > 2) v->eos = 2;
    }
    get_id(f, "tokenizer.ggml.bos_token_id", v->n, &v->bos);
    get_id(f, "tokenizer.ggml.eos_token_id", v->n, &v->eos);
    get_id(f, "tokenizer.ggml.eot_token_id", v->n, &v->eot);
    get_id(f, "tokenizer.ggml.eom_token_id", v->n, &v->eom);
    get_id(f, "tokenizer.ggml.unknown_token_id", v->n, &v->unk);
    get_id(f, "tokenizer.ggml.padding_token_id", v->n, &v->pad);
    v->add_bos = v->kind == STRATA_VOCAB_SPM || (v->pre == PRE_LLAMA3 && v->ignore_merges);
    v->add_eos = false;
    v->add_space_prefix = v->kind == STRATA_VOCAB_SPM;
    gguf_get_bool(f, "tokenizer.ggml.add_bos_token", &v->add_bos);
    gguf_get_bool(f, "tokenizer.ggml.add_eos_token", &v->add_eos);
    gguf_get_bool(f, "tokenizer.ggml.add_space_prefix", &v->add_space_prefix);

    mark_eog(v);
    if (v->eos >= 0) v->tflags[v->eos] |= TF_EOG;
    if (v->eot >= 0) v->tflags[v->eot] |= TF_EOG;
    if (v->eom >= 0) v->tflags[v->eom] |= TF_EOG;

    if ((st = build_pieces(v)) != STRATA_OK) return st;
    if ((st = build_specials(v)) != STRATA_OK) return st;
    return STRATA_OK;
}

strata_status strata_vocab_load(const gguf_file *f, strata_vocab **out) {
    STRATA_ASSERT(f && out);
    *out = NULL;
    strata_vocab *v = calloc(1, sizeof *v);
    if (!v) return strata_fail(STRATA_ERR_NOMEM, "tokenizer: out of memory");
    strata_status st = load(f, v);
    if (st != STRATA_OK) {
        strata_vocab_free(v);
        return st;
    }
    *out = v;
    return STRATA_OK;
}

/* ---- accessors -------------------------------------------------------------------------- */

strata_vocab_type strata_vocab_kind(const strata_vocab *v) { return v->kind; }
int32_t strata_vocab_n_tokens(const strata_vocab *v) { return v->n; }
const char *strata_vocab_pre_name(const strata_vocab *v) { return v->pre_name; }
bool strata_vocab_pre_known(const strata_vocab *v) { return v->pre_known; }
int32_t strata_vocab_bos(const strata_vocab *v) { return v->bos; }
int32_t strata_vocab_eos(const strata_vocab *v) { return v->eos; }
int32_t strata_vocab_eot(const strata_vocab *v) { return v->eot; }
int32_t strata_vocab_unk(const strata_vocab *v) { return v->unk; }
int32_t strata_vocab_pad(const strata_vocab *v) { return v->pad; }
bool strata_vocab_add_bos(const strata_vocab *v) { return v->add_bos; }
bool strata_vocab_add_eos(const strata_vocab *v) { return v->add_eos; }
bool strata_vocab_add_space_prefix(const strata_vocab *v) { return v->add_space_prefix; }

bool strata_vocab_is_eog(const strata_vocab *v, int32_t id) {
    return id >= 0 && id < v->n && (v->tflags[id] & TF_EOG);
}

bool strata_vocab_is_special(const strata_vocab *v, int32_t id) {
    return id >= 0 && id < v->n && (v->tflags[id] & TF_SPECIAL);
}

strata_token_type strata_vocab_token_type(const strata_vocab *v, int32_t id) {
    if (id < 0 || id >= v->n) return STRATA_TOKEN_UNDEFINED;
    return (strata_token_type)(v->tflags[id] & TF_TYPE_MASK);
}

float strata_vocab_score(const strata_vocab *v, int32_t id) {
    return (id >= 0 && id < v->n) ? v->scores[id] : 0.0f;
}

const char *strata_vocab_token_text(const strata_vocab *v, int32_t id, size_t *len) {
    if (id < 0 || id >= v->n) {
        if (len) *len = 0;
        return NULL;
    }
    size_t l;
    const char *t = tok_text(v, id, &l);
    if (len) *len = l;
    return t;
}
