/* Small tokenizer vocabularies written with our own GGUF writer, in memory, for tests and
 * the fuzz target (they must run without the shared testdata).
 *
 * tok_fixture_spm(): a "llama" vocab: <unk> <s> </s>, the 256 byte tokens <0xNN>, a few
 *   scored pieces ("▁hello" beats "▁he" + "llo"), control "<|end|>", user-defined "<|user|>".
 * tok_fixture_bpe(pre): a "gpt2" vocab: the 256 byte symbols, merges spelling
 *   "hello"/" hello"/"world", control "<|endoftext|>", user-defined "<|pad|>".
 * Each returns a malloc'd GGUF image (caller frees after gguf_close) or NULL. */
#ifndef STRATA_TESTS_TOK_FIXTURES_H
#define STRATA_TESTS_TOK_FIXTURES_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gguf/gguf.h"

/* GPT-2's byte -> code point stand-ins, as UTF-8. */
static inline void tok_fixture_byte_symbol(int b, char out[4]) {
    int next = 256, cp = -1;
    for (int x = 0; x < 256; x++) {
        int printable = (x >= '!' && x <= '~') || (x >= 0xA1 && x <= 0xAC) || (x >= 0xAE && x <= 0xFF);
        int c = printable ? x : next++;
        if (x == b) cp = c;
    }
    if (cp < 0x80) {
        out[0] = (char)cp, out[1] = 0;
    } else {
        out[0] = (char)(0xC0 | (cp >> 6)), out[1] = (char)(0x80 | (cp & 0x3F)), out[2] = 0;
    }
}

static inline void *tok_fixture_finish(gguf_writer *w, size_t *size) {
    void *mem = NULL;
    if (gguf_writer_write_memory(w, &mem, size) != STRATA_OK) mem = NULL;
    gguf_writer_free(w);
    return mem;
}

static inline void *tok_fixture_spm(size_t *size) {
    static const struct {
        const char *t;
        float score;
        int type;
    } extra[] = {
        {"\xe2\x96\x81", -1.0f, 1},           {"h", -2.0f, 1},        {"e", -2.0f, 1},
        {"l", -2.0f, 1},                      {"o", -2.0f, 1},        {"w", -2.0f, 1},
        {"r", -2.0f, 1},                      {"d", -2.0f, 1},        {"\xe2\x96\x81h", -3.0f, 1},
        {"\xe2\x96\x81he", -4.0f, 1},         {"ll", -3.5f, 1},       {"llo", -4.5f, 1},
        {"\xe2\x96\x81hello", -1.5f, 1},      {"he", -5.0f, 1},       {"hell", -6.0f, 1},
        {"\xe2\x96\x81w", -3.0f, 1},          {"or", -3.0f, 1},       {"\xe2\x96\x81wor", -4.0f, 1},
        {"\xe2\x96\x81world", -2.0f, 1},      {"ld", -4.0f, 1},       {"\xc3\xa9", -3.0f, 1}, /* é */
        {"<|end|>", 0.0f, 3},                 {"<|user|>", 0.0f, 4},
    };
    size_t n_extra = sizeof extra / sizeof extra[0];
    size_t n = 3 + 256 + n_extra;
    const char **toks = calloc(n, sizeof *toks);
    char(*bytes)[8] = calloc(256, 8);
    float *scores = calloc(n, sizeof *scores);
    int32_t *types = calloc(n, sizeof *types);
    gguf_writer *w = gguf_writer_new();
    void *mem = NULL;
    if (!toks || !bytes || !scores || !types || !w) goto done;
    toks[0] = "<unk>", types[0] = 2;
    toks[1] = "<s>", types[1] = 3;
    toks[2] = "</s>", types[2] = 3;
    for (int b = 0; b < 256; b++) {
        snprintf(bytes[b], 8, "<0x%02X>", b);
        toks[3 + b] = bytes[b];
        types[3 + b] = 6;
    }
    for (size_t i = 0; i < n_extra; i++) {
        toks[259 + i] = extra[i].t;
        scores[259 + i] = extra[i].score;
        types[259 + i] = extra[i].type;
    }
    gguf_writer_add_str(w, "general.architecture", "llama");
    gguf_writer_add_str(w, "tokenizer.ggml.model", "llama");
    gguf_writer_add_str_array(w, "tokenizer.ggml.tokens", toks, n);
    gguf_writer_add_array(w, "tokenizer.ggml.scores", GGUF_TYPE_FLOAT32, scores, n);
    gguf_writer_add_array(w, "tokenizer.ggml.token_type", GGUF_TYPE_INT32, types, n);
    gguf_writer_add_u32(w, "tokenizer.ggml.bos_token_id", 1);
    gguf_writer_add_u32(w, "tokenizer.ggml.eos_token_id", 2);
    gguf_writer_add_u32(w, "tokenizer.ggml.unknown_token_id", 0);
    gguf_writer_add_bool(w, "tokenizer.ggml.add_bos_token", true);
    mem = tok_fixture_finish(w, size);
    w = NULL;
done:
    gguf_writer_free(w);
    free(toks);
    free(bytes);
    free(scores);
    free(types);
    return mem;
}

static inline void *tok_fixture_bpe(const char *pre, size_t *size) {
    /* merges in rank order; each result is also a token */
    static const char *merges[] = {
        "h e", "l l", "he ll", "hell o", "\xc4\xa0 hello", "w o", "r l", "wo rl", "worl d", "\xc4\xa0 world",
        "\xc4\xa0 \xc4\xa0",
    };
    static const char *merged[] = {
        "he", "ll", "hell", "hello", "\xc4\xa0hello", "wo", "rl", "worl", "world", "\xc4\xa0world",
        "\xc4\xa0\xc4\xa0",
    };
    size_t n_m = sizeof merges / sizeof merges[0];
    size_t n = 256 + n_m + 2;
    const char **toks = calloc(n, sizeof *toks);
    char(*bytes)[4] = calloc(256, 4);
    int32_t *types = calloc(n, sizeof *types);
    gguf_writer *w = gguf_writer_new();
    void *mem = NULL;
    if (!toks || !bytes || !types || !w) goto done;
    for (int b = 0; b < 256; b++) {
        tok_fixture_byte_symbol(b, bytes[b]);
        toks[b] = bytes[b];
        types[b] = 1;
    }
    for (size_t i = 0; i < n_m; i++) toks[256 + i] = merged[i], types[256 + i] = 1;
    toks[256 + n_m] = "<|endoftext|>", types[256 + n_m] = 3;
    toks[257 + n_m] = "<|pad|>", types[257 + n_m] = 4;
    gguf_writer_add_str(w, "general.architecture", "gpt2");
    gguf_writer_add_str(w, "tokenizer.ggml.model", "gpt2");
    if (pre) gguf_writer_add_str(w, "tokenizer.ggml.pre", pre);
    gguf_writer_add_str_array(w, "tokenizer.ggml.tokens", toks, n);
    gguf_writer_add_array(w, "tokenizer.ggml.token_type", GGUF_TYPE_INT32, types, n);
    gguf_writer_add_str_array(w, "tokenizer.ggml.merges", merges, n_m);
    gguf_writer_add_u32(w, "tokenizer.ggml.bos_token_id", (uint32_t)(256 + n_m));
    gguf_writer_add_u32(w, "tokenizer.ggml.eos_token_id", (uint32_t)(256 + n_m));
    mem = tok_fixture_finish(w, size);
    w = NULL;
done:
    gguf_writer_free(w);
    free(toks);
    free(bytes);
    free(types);
    return mem;
}

#endif
