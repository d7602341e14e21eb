/* BPE pre-tokenizers: the split patterns of the reference tokenizers, as hand-written
 * matchers over decoded code points (no regex engine).
 *
 * A pre-tokenizer is a list of steps. Each step is one pattern applied to every current
 * fragment: the pattern's matches become fragments, and so do the runs of text between
 * matches; then the next step splits those fragments further. A pattern never sees past
 * its fragment ("(?!\S)" and "$" hold at a fragment's end). Within a pattern the
 * alternatives are tried in order at each position and the first that matches wins
 * (leftmost-first, with the greedy backtracking each comment spells out).
 *
 * Unicode categories (\p{L}, \p{N}, \p{P}, \s) come from utf8proc through tok_cp_flags().
 * The deepseek patterns also list literal characters in brackets; those classes are kept
 * as the pattern's own text and parsed at load (tok_class), never retyped as ranges. */
#include <stdlib.h>
#include <string.h>

#include "tokenizer/tok_internal.h"

/* ---- names ---------------------------------------------------------------------------- */

static const struct {
    const char *name;
    tok_pre_kind kind;
    bool ignore_merges;
} k_pre_names[] = {
    {"default", PRE_DEFAULT, false},
    {"llama3", PRE_LLAMA3, true},
    {"llama-v3", PRE_LLAMA3, true},
    {"llama-bpe", PRE_LLAMA3, true},
    {"falcon3", PRE_LLAMA3, true},
    {"pixtral", PRE_LLAMA3, true},
    {"dbrx", PRE_LLAMA3, false},
    {"smaug-bpe", PRE_LLAMA3, false},
    {"qwen2", PRE_QWEN2, false},
    {"deepseek-r1-qwen", PRE_QWEN2, false},
    {"stablelm2", PRE_QWEN2, false},
    {"megrez", PRE_QWEN2, false},
    {"gpt-2", PRE_GPT2, false},
    {"gpt2", PRE_GPT2, false},
    {"phi-2", PRE_GPT2, false},
    {"mpt", PRE_GPT2, false},
    {"gpt-neox", PRE_GPT2, false},
    {"olmo", PRE_GPT2, false},
    {"jais", PRE_GPT2, false},
    {"roberta-bpe", PRE_GPT2, false},
    {"jina-es", PRE_GPT2, false},
    {"jina-de", PRE_GPT2, false},
    {"starcoder", PRE_STARCODER, false},
    {"refact", PRE_STARCODER, false},
    {"command-r", PRE_STARCODER, false},
    {"smollm", PRE_STARCODER, false},
    {"codeshell", PRE_STARCODER, false},
    {"exaone", PRE_STARCODER, false},
    {"minerva-7b", PRE_STARCODER, false},
    {"falcon", PRE_FALCON, false},
    {"deepseek-llm", PRE_DEEPSEEK_LLM, false},
    {"deepseek-coder", PRE_DEEPSEEK_CODER, false},
};

bool tok_pre_lookup(const char *name, tok_pre_kind *kind, bool *ignore_merges) {
    *kind = PRE_DEFAULT;
    *ignore_merges = false;
    if (!name || !*name) return true; /* absent key: the default, as the reference does */
    for (size_t i = 0; i < sizeof k_pre_names / sizeof k_pre_names[0]; i++) {
        if (strcmp(name, k_pre_names[i].name) == 0) {
            *kind = k_pre_names[i].kind;
            *ignore_merges = k_pre_names[i].ignore_merges;
            return true;
        }
    }
    return false;
}

/* The bracket classes of the deepseek-llm / deepseek-coder split patterns, verbatim. */
static const char k_ds_letters[] =
    "A-Za-z\u00b5\u00c0-\u00d6\u00d8-\u00f6\u00f8-\u01ba\u01bc-\u01bf\u01c4-\u0293\u0295-\u02af"
    "\u0370-\u0373\u0376\u0377\u037b-\u037d\u037f\u0386\u0388-\u038a\u038c\u038e-\u03a1"
    "\u03a3-\u03f5\u03f7-\u0481\u048a-\u052f\u0531-\u0556\u10a0-\u10c5\u13a0-\u13f5"
    "\u13f8-\u13fd\u1c90-\u1cba\u1cbd-\u1cbf\u1d00-\u1d2b\u1d6b-\u1d77\u1d79-\u1d9a"
    "\u1e00-\u1f15\u1f18-\u1f1d\u1f20-\u1f45\u1f48-\u1f4d\u1f50-\u1f57\u1f59\u1f5b\u1f5d"
    "\u1f5f-\u1f7d\u1f80-\u1fb4\u1fb6-\u1fbc\u1fbe\u1fc2-\u1fc4\u1fc6-\u1fcc\u1fd0-\u1fd3"
    "\u1fd6-\u1fdb\u1fe0-\u1fec\u1ff2-\u1ff4\u1ff6-\u1ffc\u2102\u2107\u210a-\u2113\u2115"
    "\u2119-\u211d\u2124\u2126\u2128\u212a-\u212d\u212f-\u2134\u2139\u213c-\u213f"
    "\u2145-\u2149\u214e\u2183\u2184\u2c00-\u2c7b\u2c7e-\u2ce4\u2ceb-\u2cee\u2cf2\u2cf3"
    "\ua640-\ua66d\ua680-\ua69b\ua722-\ua76f\ua771-\ua787\ua78b-\ua78e\uab70-\uabbf"
    "\ufb00-\ufb06\ufb13-\ufb17\uff21-\uff3a\uff41-\uff5a\U00010400-\U0001044f"
    "\U000104b0-\U000104d3\U000104d8-\U000104fb\U00010c80-\U00010cb2\U00010cc0-\U00010cf2"
    "\U000118a0-\U000118df\U0001e900-\U0001e943";
static const char k_ds_punct[] = "!-/:-~\uff01-\uff0f\uff1a-\uff5e\u2018-\u201f\u3000-\u3002";
static const char k_ds_cjk[] = "\u4e00-\u9fa5\u0800-\u4e00\uac00-\ud7ff";

strata_status tok_pre_classes_init(tok_pre_classes *c, tok_pre_kind kind) {
    memset(c, 0, sizeof *c);
    strata_status st = STRATA_OK;
    if (kind == PRE_DEEPSEEK_LLM) {
        if ((st = tok_class_parse(&c->ds_letters, k_ds_letters)) != STRATA_OK) goto fail;
        if ((st = tok_class_parse(&c->ds_punct, k_ds_punct)) != STRATA_OK) goto fail;
    }
    if (kind == PRE_DEEPSEEK_LLM || kind == PRE_DEEPSEEK_CODER) {
        if ((st = tok_class_parse(&c->cjk, k_ds_cjk)) != STRATA_OK) goto fail;
    }
    return STRATA_OK;
fail:
    tok_pre_classes_free(c);
    return st;
}

void tok_pre_classes_free(tok_pre_classes *c) {
    tok_class_free(&c->ds_letters);
    tok_class_free(&c->ds_punct);
    tok_class_free(&c->cjk);
}

/* ---- matchers --------------------------------------------------------------------------
 * Each returns the length (in code points) of the match starting at c[i] within a fragment
 * ending at `end`, or 0. On 0 it may set *skip (>= 1) to the number of positions from i
 * that cannot start a match either, which keeps long runs linear. */

typedef size_t (*tok_matcher)(const strata_vocab *v, const tok_cp *c, size_t i, size_t end, size_t *skip);

#define IS(c, f) (((c).flags & (f)) != 0)
#define OTHER(c) (((c).flags & (CF_WS | CF_L | CF_N)) == 0) /* [^\s\p{L}\p{N}] */

static size_t run(const tok_cp *c, size_t i, size_t end, uint8_t f) {
    size_t j = i;
    while (j < end && IS(c[j], f)) j++;
    return j - i;
}

static size_t run_other(const tok_cp *c, size_t i, size_t end) {
    size_t j = i;
    while (j < end && OTHER(c[j])) j++;
    return j - i;
}

static uint32_t lower_ascii(uint32_t cp) { return (cp >= 'A' && cp <= 'Z') ? cp + 32 : cp; }

/* 's|'t|'re|'ve|'m|'ll|'d, optionally ASCII-case-insensitive. */
static size_t contraction(const tok_cp *c, size_t i, size_t end, bool icase) {
    if (c[i].cp != '\'' || i + 1 >= end) return 0;
    uint32_t a = icase ? lower_ascii(c[i + 1].cp) : c[i + 1].cp;
    if (a == 's' || a == 't' || a == 'm' || a == 'd') return 2;
    if (i + 2 >= end) return 0;
    uint32_t b = icase ? lower_ascii(c[i + 2].cp) : c[i + 2].cp;
    if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l')) return 3;
    return 0;
}

/* The whitespace tail shared by the gpt2/llama3 patterns: "\s+(?!\S)" then, when
 * `plain` is set, "\s+". Greedy \s+ takes the whole run; if a non-space follows, the
 * lookahead fails and backtracking gives back one character. */
static size_t ws_tail(const tok_cp *c, size_t i, size_t end, bool plain) {
    size_t k = run(c, i, end, CF_WS);
    if (k == 0) return 0;
    if (i + k == end) return k;
    if (k >= 2) return k - 1;
    return plain ? k : 0;
}

/* gpt-2: 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S) */
static size_t m_gpt2(const strata_vocab *v, const tok_cp *c, size_t i, size_t end, size_t *skip) {
    (void)v, (void)skip;
    size_t n = contraction(c, i, end, false);
    if (n) return n;
    size_t j = i + (c[i].cp == ' ' && i + 1 < end ? 1 : 0);
    /* with the optional space taken; without it the same alternatives fail on a space */
    if ((n = run(c, j, end, CF_L))) return j - i + n;
    if ((n = run(c, j, end, CF_N))) return j - i + n;
    if ((n = run_other(c, j, end))) return j - i + n;
    return ws_tail(c, i, end, false);
}

/* llama3 (ndigits 3) and qwen2 (ndigits 1):
 * (?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|
 * \p{N}{1,N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+ */
static size_t m_llama3_n(const tok_cp *c, size_t i, size_t end, size_t ndigits) {
    size_t n = contraction(c, i, end, true);
    if (n) return n;
    /* [^\r\n\p{L}\p{N}]?\p{L}+ */
    if (IS(c[i], CF_L)) return run(c, i, end, CF_L);
    if (c[i].cp != '\r' && c[i].cp != '\n' && !IS(c[i], CF_N) && i + 1 < end && IS(c[i + 1], CF_L))
        return 1 + run(c, i + 1, end, CF_L);
    /* \p{N}{1,n}: looking no further than n digits (measuring the whole run at every match
     * made a run of digits cost its length squared: 200,000 of them took 2 s) */
    if (IS(c[i], CF_N)) return run(c, i, i + ndigits < end ? i + ndigits : end, CF_N);
    /* " ?[^\s\p{L}\p{N}]+[\r\n]*" */
    size_t j = i + (c[i].cp == ' ' && i + 1 < end ? 1 : 0);
    if ((n = run_other(c, j, end))) {
        j += n;
        while (j < end && (c[j].cp == '\r' || c[j].cp == '\n')) j++;
        return j - i;
    }
    if (!IS(c[i], CF_WS)) return 0; /* unreachable: every class is covered above */
    /* \s*[\r\n]+ : the match ends right after the last CR/LF of the whitespace run */
    size_t k = run(c, i, end, CF_WS), last = SIZE_MAX;
    for (size_t p = i; p < i + k; p++)
        if (c[p].cp == '\r' || c[p].cp == '\n') last = p;
    if (last != SIZE_MAX) return last + 1 - i;
    return ws_tail(c, i, end, true);
}

static size_t m_llama3(const strata_vocab *v, const tok_cp *c, size_t i, size_t end, size_t *skip) {
    (void)v, (void)skip;
    return m_llama3_n(c, i, end, 3);
}

static size_t m_qwen2(const strata_vocab *v, const tok_cp *c, size_t i, size_t end, size_t *skip) {
    (void)v, (void)skip;
    return m_llama3_n(c, i, end, 1);
}

/* [\p{P}\$\+<=>\^~\|]+ (default) and with ` (falcon) */
static size_t punct_run(const tok_cp *c, size_t i, size_t end, bool backtick) {
    size_t j = i;
    for (; j < end; j++) {
        uint32_t cp = c[j].cp;
        if (IS(c[j], CF_P)) continue;
        if (cp == '$' || cp == '+' || cp == '<' || cp == '=' || cp == '>' || cp == '^' || cp == '~' ||
            cp == '|' || (backtick && cp == '`'))
            continue;
        break;
    }
    return j - i;
}

static size_t m_punct_default(const strata_vocab *v, const tok_cp *c, size_t i, size_t end, size_t *skip) {
    (void)v, (void)skip;
    return punct_run(c, i, end, false);
}

static size_t m_punct_falcon(const strata_vocab *v, const tok_cp *c, size_t i, size_t end, size_t *skip) {
    (void)v, (void)skip;
    return punct_run(c, i, end, true);
}

/* [0-9][0-9][0-9] */
static size_t m_digit3(const strata_vocab *v, const tok_cp *c, size_t i, size_t end, size_t *skip) {
    (void)v, (void)skip;
    if (i + 3 > end) return 0;
    for (size_t k = 0; k < 3; k++)
        if (c[i + k].cp < '0' || c[i + k].cp > '9') return 0;
    return 3;
}

/* \p{N} */
static size_t m_n1(const strata_vocab *v, const tok_cp *c, size_t i, size_t end, size_t *skip) {
    (void)v, (void)skip, (void)end;
    return IS(c[i], CF_N) ? 1 : 0;
}

/* \p{N}+ */
static size_t m_nplus(const strata_vocab *v, const tok_cp *c, size_t i, size_t end, size_t *skip) {
    (void)v, (void)skip;
    return run(c, i, end, CF_N);
}

/* [\r\n] */
static size_t m_crlf1(const strata_vocab *v, const tok_cp *c, size_t i, size_t end, size_t *skip) {
    (void)v, (void)skip, (void)end;
    return (c[i].cp == '\r' || c[i].cp == '\n') ? 1 : 0;
}

/* \s+$ : only a whitespace run that reaches the fragment's end */
static size_t m_ws_end(const strata_vocab *v, const tok_cp *c, size_t i, size_t end, size_t *skip) {
    (void)v;
    size_t k = run(c, i, end, CF_WS);
    if (k == 0) return 0;
    if (i + k == end) return k;
    *skip = k; /* no position inside this run reaches the end either */
    return 0;
}

/* \s?X+ where X is a literal class or a category */
static size_t ws_opt(const tok_cp *c, size_t i, size_t end, const tok_class *cls, uint8_t cat) {
#define IN(k) (cls ? tok_class_has(cls, c[k].cp) : IS(c[k], cat))
    size_t j = i;
    if (IS(c[i], CF_WS) && i + 1 < end && IN(i + 1)) j = i + 1;
    size_t k = j;
    while (k < end && IN(k)) k++;
    return k > j ? k - i : 0;
#undef IN
}

static size_t m_ds_letters(const strata_vocab *v, const tok_cp *c, size_t i, size_t end, size_t *skip) {
    (void)skip;
    return ws_opt(c, i, end, &v->classes.ds_letters, 0);
}

static size_t m_ds_punct(const strata_vocab *v, const tok_cp *c, size_t i, size_t end, size_t *skip) {
    (void)skip;
    return ws_opt(c, i, end, &v->classes.ds_punct, 0);
}

static size_t m_ws_opt_l(const strata_vocab *v, const tok_cp *c, size_t i, size_t end, size_t *skip) {
    (void)v, (void)skip;
    return ws_opt(c, i, end, NULL, CF_L);
}

static size_t m_ws_opt_p(const strata_vocab *v, const tok_cp *c, size_t i, size_t end, size_t *skip) {
    (void)v, (void)skip;
    return ws_opt(c, i, end, NULL, CF_P);
}

static size_t m_cjk(const strata_vocab *v, const tok_cp *c, size_t i, size_t end, size_t *skip) {
    (void)skip;
    size_t k = i;
    while (k < end && tok_class_has(&v->classes.cjk, c[k].cp)) k++;
    return k - i;
}

/* ---- the pre-tokenizers, as step lists (table entries, one per kind) ------------------ */

#define MAX_STEPS 6
static const tok_matcher k_steps[PRE_COUNT][MAX_STEPS] = {
    [PRE_DEFAULT] = {m_punct_default, m_gpt2, m_nplus, m_digit3},
    [PRE_GPT2] = {m_gpt2},
    [PRE_LLAMA3] = {m_llama3},
    [PRE_QWEN2] = {m_qwen2},
    [PRE_STARCODER] = {m_n1, m_gpt2},
    [PRE_FALCON] = {m_punct_falcon, m_gpt2, m_digit3},
    [PRE_DEEPSEEK_LLM] = {m_crlf1, m_ds_letters, m_ds_punct, m_ws_end, m_cjk, m_nplus},
    [PRE_DEEPSEEK_CODER] = {m_crlf1, m_ws_opt_l, m_ws_opt_p, m_cjk, m_n1},
};

bool tok_grow(void **p, size_t *cap, size_t need, size_t elem) {
    if (need <= *cap) return true;
    size_t nc = *cap ? *cap : 64;
    while (nc < need) nc *= 2;
    void *q = realloc(*p, nc * elem);
    if (!q) return false;
    *p = q;
    *cap = nc;
    return true;
}

void tok_scratch_free(tok_scratch *s) {
    free(s->cps);
    free(s->a);
    free(s->b);
    free(s->sym);
    free(s->heap);
    free(s->buf);
    memset(s, 0, sizeof *s);
}

static bool push_span(tok_span **arr, size_t *cap, size_t *n, size_t a, size_t b) {
    if (!tok_grow((void **)arr, cap, *n + 1, sizeof **arr)) return false;
    (*arr)[*n].start = a;
    (*arr)[*n].end = b;
    (*n)++;
    return true;
}

bool tok_pretokenize(const strata_vocab *v, const char *text, size_t len, tok_scratch *s,
                     tok_span **words, size_t *n_words) {
    /* decode (one entry per code point; at most len of them) */
    if (!tok_grow((void **)&s->cps, &s->cps_cap, len + 1, sizeof *s->cps)) return false;
    const uint8_t *t = (const uint8_t *)text;
    size_t n = 0;
    for (size_t p = 0; p < len;) {
        tok_cp *c = &s->cps[n++];
        if (t[p] < 0x80) {
            c->cp = t[p];
            c->len = 1;
            c->flags = v->ascii_flags[t[p]];
            p++;
            continue;
        }
        size_t l = tok_utf8_decode(t + p, len - p, &c->cp);
        c->len = (uint8_t)l;
        c->flags = tok_cp_flags(c->cp);
        p += l;
    }

    size_t na = 0, nb = 0;
    if (n > 0 && !push_span(&s->a, &s->a_cap, &na, 0, n)) return false;
    for (int st = 0; st < MAX_STEPS && k_steps[v->pre][st]; st++) {
        tok_matcher m = k_steps[v->pre][st];
        nb = 0;
        for (size_t f = 0; f < na; f++) {
            size_t start = s->a[f].start, end = s->a[f].end, gap = start, pos = start;
            while (pos < end) {
                size_t skip = 1;
                size_t ml = m(v, s->cps, pos, end, &skip);
                if (ml == 0) {
                    pos += skip;
                    continue;
                }
                if (gap < pos && !push_span(&s->b, &s->b_cap, &nb, gap, pos)) return false;
                if (!push_span(&s->b, &s->b_cap, &nb, pos, pos + ml)) return false;
                pos += ml;
                gap = pos;
            }
            if (gap < end && !push_span(&s->b, &s->b_cap, &nb, gap, end)) return false;
        }
        tok_span *tmp = s->a;
        size_t tcap = s->a_cap;
        s->a = s->b;
        s->a_cap = s->b_cap;
        s->b = tmp;
        s->b_cap = tcap;
        na = nb;
    }
    *words = s->a;
    *n_words = na;
    return true;
}
