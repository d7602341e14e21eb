/* Fuzz target: tokenize / detokenize arbitrary bytes with small vocabularies written by our
 * own GGUF writer at start-up (no shared testdata needed).
 *
 * Input: byte 0 picks the vocab and flags, the rest is the text.
 *   bits 0-3: vocab (0 = SPM, 1.. = BPE with one of the pre-tokenizers below)
 *   bit 4: add_special, bit 5: parse_special
 * Checked: tokenize never fails and agrees with itself on a short buffer; every id is in
 * range; detokenize gives the text back (BPE always; SPM when no special token split the
 * text, since the space prefix is added again after one); the streaming detokenizer gives
 * the same bytes as detokenize, and never splits a valid UTF-8 character. An SPM text
 * holding U+2581 itself is not checked for the round trip (it stands for a space). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../tokenizer/tok_fixtures.h"
#include "tokenizer/tokenizer.h"

static const char *const k_pres[] = {"gpt-2", "llama-bpe", "qwen2", "starcoder", "falcon",
                                     "deepseek-llm", "deepseek-coder", "default", "mpt", "unknown-pre"};
#define N_VOCABS (1 + sizeof k_pres / sizeof k_pres[0])
static strata_vocab *g_vocabs[N_VOCABS];

static strata_vocab *load(void *mem, size_t size) {
    gguf_file *f;
    strata_vocab *v = NULL;
    if (!mem || gguf_open_memory(mem, size, GGUF_OPEN_DEFAULT, &f) != STRATA_OK) abort();
    if (strata_vocab_load(f, &v) != STRATA_OK) abort();
    gguf_close(f);
    free(mem);
    return v;
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc, (void)argv;
    size_t size;
    void *mem = tok_fixture_spm(&size);
    g_vocabs[0] = load(mem, size);
    for (size_t i = 0; i < sizeof k_pres / sizeof k_pres[0]; i++) {
        mem = tok_fixture_bpe(k_pres[i], &size);
        g_vocabs[1 + i] = load(mem, size);
    }
    return 0;
}

/* Length of the valid UTF-8 character at s[0..n), or 0 if it is not one. */
static size_t utf8_char_len(const uint8_t *s, size_t n) {
    uint8_t c = s[0];
    if (c < 0x80) return 1;
    size_t need = (c >= 0xC2 && c <= 0xDF) ? 2 : (c >= 0xE0 && c <= 0xEF) ? 3 : (c >= 0xF0 && c <= 0xF4) ? 4 : 0;
    if (need == 0 || need > n) return 0;
    for (size_t k = 1; k < need; k++)
        if ((s[k] & 0xC0) != 0x80) return 0;
    if ((c == 0xE0 && s[1] < 0xA0) || (c == 0xED && s[1] > 0x9F) || (c == 0xF0 && s[1] < 0x90) ||
        (c == 0xF4 && s[1] > 0x8F))
        return 0;
    return need;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size == 0) return 0;
    uint8_t mode = data[0];
    const strata_vocab *v = g_vocabs[(mode & 15) % N_VOCABS];
    bool add_special = mode & 16, parse_special = mode & 32;
    const char *text = (const char *)data + 1;
    size_t len = size - 1;

    int64_t n = strata_tokenize(v, text, len, add_special, parse_special, NULL, 0);
    if (n < 0) abort();
    int32_t *ids = malloc(((size_t)n + 1) * sizeof *ids);
    if (!ids) abort();
    if (strata_tokenize(v, text, len, add_special, parse_special, ids, (size_t)n) != n) abort();
    if (n > 0) { /* a short buffer gets the same prefix */
        int32_t first;
        if (strata_tokenize(v, text, len, add_special, parse_special, &first, 1) != n || first != ids[0]) abort();
    }
    bool split_by_special = false;
    for (int64_t i = 0; i < n; i++) {
        if (ids[i] < 0 || ids[i] >= strata_vocab_n_tokens(v)) abort();
        if (strata_vocab_is_special(v, ids[i])) split_by_special = true;
    }

    /* detokenize, with the tokens that tokenize recognised shown */
    size_t skip = add_special && strata_vocab_add_bos(v) && strata_vocab_bos(v) >= 0 ? 1 : 0;
    if ((int64_t)skip > n) skip = 0;
    int64_t nb = strata_detokenize(v, ids + skip, (size_t)n - skip, NULL, 0, parse_special);
    if (nb < 0) abort();
    char *back = malloc((size_t)nb + 1);
    if (!back) abort();
    if (strata_detokenize(v, ids + skip, (size_t)n - skip, back, (size_t)nb, parse_special) != nb) abort();
    /* SPM cannot tell a literal U+2581 from the space it stands for: such texts come back
     * with spaces, as with SentencePiece itself. */
    bool has_mark = memmem(text, len, "\xe2\x96\x81", 3) != NULL;
    bool exact = strata_vocab_kind(v) == STRATA_VOCAB_BPE || (!split_by_special && !has_mark);
    if (exact && (!add_special || !strata_vocab_add_eos(v))) {
        if ((size_t)nb != len || memcmp(back, text, len) != 0) abort();
    }

    /* streaming: same bytes (but for the prefix space detokenize removes), whole characters */
    strata_detok_stream *s = strata_detok_stream_new(v, parse_special);
    if (!s) abort();
    char *streamed = malloc((size_t)nb + 2);
    size_t *cuts = malloc(((size_t)n + 1) * sizeof *cuts); /* where each push's output ended */
    size_t sl = 0, l, n_cuts = 0;
    if (!streamed || !cuts) abort();
    for (int64_t i = (int64_t)skip; i < n; i++) {
        const char *p = strata_detok_stream_push(s, ids[i], &l);
        if (!p || sl + l > (size_t)nb + 1) abort();
        memcpy(streamed + sl, p, l);
        sl += l;
        cuts[n_cuts++] = sl;
    }
    const char *p = strata_detok_stream_flush(s, &l);
    if (sl + l > (size_t)nb + 1) abort();
    memcpy(streamed + sl, p, l);
    sl += l;
    strata_detok_stream_free(s);
    bool same = sl == (size_t)nb && memcmp(streamed, back, sl) == 0;
    bool prefixed = sl == (size_t)nb + 1 && streamed[0] == ' ' && memcmp(streamed + 1, back, (size_t)nb) == 0;
    if (!same && !prefixed) abort();
    /* no push ended inside a valid character of the whole output */
    size_t ci = 0;
    for (size_t q = 0; q < sl;) {
        size_t cl = utf8_char_len((const uint8_t *)streamed + q, sl - q);
        if (cl == 0) cl = 1;
        while (ci < n_cuts && cuts[ci] <= q) ci++;
        if (ci < n_cuts && cuts[ci] < q + cl) abort();
        q += cl;
    }
    free(cuts);

    free(streamed);
    free(back);
    free(ids);
    return 0;
}
