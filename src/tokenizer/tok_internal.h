/* Internals shared by the tokenizer's files: the vocab layout, code point classification
 * (from utf8proc), the pre-tokenizer interface, and the SPM/BPE word encoders.
 * Nothing here is public API. */
#ifndef STRATA_TOKENIZER_TOK_INTERNAL_H
#define STRATA_TOKENIZER_TOK_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tokenizer/tokenizer.h"

/* ---- Code points -------------------------------------------------------------------- */

/* Classes used by the pre-tokenizer patterns. All come from the Unicode general category
 * as utf8proc reports it; CF_WS is Unicode White_Space (Zs, Zl, Zp, U+0009..U+000D, U+0085),
 * which is exactly what \s means in the reference patterns. */
enum {
    CF_L = 1 << 0,  /* \p{L}: Lu Ll Lt Lm Lo */
    CF_N = 1 << 1,  /* \p{N}: Nd Nl No */
    CF_P = 1 << 2,  /* \p{P}: Pc Pd Ps Pe Pi Pf Po */
    CF_S = 1 << 3,  /* \p{S}: Sm Sc Sk So */
    CF_M = 1 << 4,  /* \p{M}: Mn Mc Me */
    CF_WS = 1 << 5, /* \s */
};

/* A decoded code point of the input. Bytes that are not valid UTF-8 each become one
 * pseudo code point (cp = TOK_CP_INVALID, len 1) classified like U+FFFD (a symbol), so the
 * pre-tokenizer sees them and no byte is dropped. */
#define TOK_CP_INVALID 0xFFFFFFFFu
typedef struct {
    uint32_t cp;
    uint8_t len;   /* bytes in the input, 1..4 */
    uint8_t flags; /* CF_* */
} tok_cp;

/* Decodes one UTF-8 character at s[0..n) (n >= 1), strictly (no overlongs, surrogates or
 * values past U+10FFFF). Returns its length; *cp = TOK_CP_INVALID and 1 for a bad byte. */
size_t tok_utf8_decode(const uint8_t *s, size_t n, uint32_t *cp);
/* Encodes cp (<= 0x10FFFF) into buf (4 bytes); returns the length. */
size_t tok_utf8_encode(uint32_t cp, char *buf);
/* CF_* flags of a code point, from utf8proc's category. */
uint8_t tok_cp_flags(uint32_t cp);

/* A set of code point ranges, parsed from the text of a pattern's bracket class
 * (e.g. "A-Za-z\u00b5..."), for the patterns that list literal characters. */
typedef struct {
    uint32_t (*r)[2];
    size_t n;
} tok_class;
strata_status tok_class_parse(tok_class *c, const char *utf8_class);
bool tok_class_has(const tok_class *c, uint32_t cp);
void tok_class_free(tok_class *c);

/* ---- Pre-tokenizers ------------------------------------------------------------------- */

typedef enum {
    PRE_DEFAULT = 0,
    PRE_GPT2,      /* gpt-2, mpt, olmo, ... */
    PRE_LLAMA3,    /* llama-bpe, dbrx, smaug */
    PRE_QWEN2,     /* llama3 pattern with single digits */
    PRE_STARCODER, /* single digits, then gpt2 */
    PRE_FALCON,
    PRE_DEEPSEEK_LLM,
    PRE_DEEPSEEK_CODER,
    PRE_COUNT
} tok_pre_kind;

/* Literal classes of the deepseek patterns, parsed once per vocab. */
typedef struct {
    tok_class ds_letters; /* deepseek-llm "\s?[A-Za-z...]+" */
    tok_class ds_punct;   /* deepseek-llm "\s?[!-/:-~...]+" */
    tok_class cjk;        /* deepseek "[一-龥ࠀ-一가-퟿]+" */
} tok_pre_classes;

/* Looks up a pre-tokenizer name; false when unknown (then *kind = PRE_DEFAULT).
 * *ignore_merges is set for the vocabularies whose whole-word tokens win over merges. */
bool tok_pre_lookup(const char *name, tok_pre_kind *kind, bool *ignore_merges);
strata_status tok_pre_classes_init(tok_pre_classes *c, tok_pre_kind kind);
void tok_pre_classes_free(tok_pre_classes *c);

/* A word: code point index range [start, end) into the decoded fragment. */
typedef struct {
    size_t start, end;
} tok_span;

/* Growable scratch for one tokenize call. */
typedef struct {
    tok_cp *cps;
    size_t cps_cap;
    tok_span *a, *b; /* ping-pong span lists */
    size_t a_cap, b_cap;
    /* encoder scratch */
    void *sym;
    size_t sym_cap;
    void *heap;
    size_t heap_cap;
    char *buf;
    size_t buf_cap;
} tok_scratch;

void tok_scratch_free(tok_scratch *s);
bool tok_grow(void **p, size_t *cap, size_t need, size_t elem);

/* Splits text[0..len) into words; on success words and n_words point into the scratch and
 * s->cps holds the decoded code points (words index them). False on allocation failure. */
bool tok_pretokenize(const strata_vocab *v, const char *text, size_t len, tok_scratch *s,
                     tok_span **words, size_t *n_words);

/* ---- Vocab ---------------------------------------------------------------------------- */

/* Per-token flag bits in strata_vocab.tflags (beside the type in the low 3 bits). */
enum {
    TF_TYPE_MASK = 0x7,
    TF_MERGEABLE = 1 << 3, /* may be produced by SPM/BPE merging (normal/undefined/user) */
    TF_SPECIAL = 1 << 4,   /* control/user-defined/unknown: the partition step's tokens */
    TF_EOG = 1 << 5,
    TF_SPECIAL_PIECE = 1 << 6, /* its piece is shown only when special = true */
};

typedef struct {
    uint64_t key; /* left id << 32 | right id; UINT64_MAX = empty */
    int32_t rank;
    int32_t result;
} tok_merge;

struct strata_vocab {
    strata_vocab_type kind;
    int32_t n;
    char *text;        /* all token texts, back to back */
    uint64_t *text_off; /* n + 1 offsets */
    float *scores;
    uint8_t *tflags;
    char *piece;        /* decoded pieces, back to back */
    uint64_t *piece_off; /* n + 1 offsets */
    size_t max_piece;

    int32_t *hash; /* text -> id, open addressing, -1 = empty */
    uint64_t hash_mask;

    tok_merge *merges; /* BPE: (left,right) -> rank/result */
    uint64_t merges_mask;
    int32_t n_merges;

    int32_t *special; /* special ids by (first byte, length desc, id) */
    size_t n_special;
    size_t special_start[257];

    int32_t byte_tok[256]; /* SPM: <0xNN>; BPE: the byte's symbol; -1 if absent */

    int32_t bos, eos, eot, eom, unk, pad;
    bool add_bos, add_eos, add_space_prefix;
    bool ignore_merges;

    tok_pre_kind pre;
    bool pre_known;
    char *pre_name;
    tok_pre_classes classes;
    uint8_t ascii_flags[128];
};

static inline const char *tok_text(const strata_vocab *v, int32_t id, size_t *len) {
    *len = (size_t)(v->text_off[id + 1] - v->text_off[id]);
    return v->text + v->text_off[id];
}

/* Encoders: append ids through `emit`. Return false on allocation failure. */
typedef struct {
    int32_t *out;
    size_t cap;
    size_t n;
} tok_out;

static inline void tok_emit(tok_out *o, int32_t id) {
    if (o->n < o->cap) o->out[o->n] = id;
    o->n++;
}

bool tok_spm_encode(const strata_vocab *v, const char *text, size_t len, bool space_prefix,
                    tok_scratch *s, tok_out *o);
bool tok_bpe_encode_word(const strata_vocab *v, const char *bytes, size_t len, tok_scratch *s,
                         tok_out *o);

#endif
