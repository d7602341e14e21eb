/* Fixture models for the end-to-end tests of tool calling (static; included by the tests that
 * use them): Qwen's tool template, and a tiny llama written by our GGUF writer that answers every
 * prompt with one call in that format. */
#ifndef STRATA_TESTS_FIXTURE_MODELS_H
#define STRATA_TESTS_FIXTURE_MODELS_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gguf/gguf.h"
#include "proc.h"

/* Qwen's tool format (Ollama's qwen2.5 template, trimmed): tools listed in a system turn,
 * calls between <tool_call> tags, results in <tool_response>. */
static const char *const tool_template __attribute__((unused)) =
    "{{- if .Tools }}<|im_start|>system\n<tools>\n{{- range .Tools }}\n{\"type\": \"function\", \"function\": "
    "{{ .Function }}}\n{{- end }}\n</tools><|im_end|>\n{{ end }}"
    "{{- range $i, $_ := .Messages }}{{- $last := eq (len (slice $.Messages $i)) 1 -}}"
    "{{- if eq .Role \"user\" }}<|im_start|>user\n{{ .Content }}<|im_end|>\n"
    "{{ else if eq .Role \"assistant\" }}<|im_start|>assistant\n{{ if .Content }}{{ .Content }}"
    "{{- else if .ToolCalls }}<tool_call>\n{{ range .ToolCalls }}{\"name\": \"{{ .Function.Name }}\", \"arguments\": "
    "{{ .Function.Arguments }}}\n{{ end }}</tool_call>{{- end }}{{ if not $last }}<|im_end|>\n{{ end }}"
    "{{- else if eq .Role \"tool\" }}<|im_start|>user\n<tool_response>\n{{ .Content }}\n</tool_response><|im_end|>\n{{ end }}"
    "{{- if and (ne .Role \"assistant\") $last }}<|im_start|>assistant\n{{ end }}{{- end }}";

/* A fixture model that answers every prompt with one tool call, in Qwen's format: a llama
 * with one block whose attention and FFN write nothing (zero output matrices), so the logits
 * depend on the last token alone. Every token's embedding is e0 except the call token's (e1);
 * the output matrix maps e0 to the call token and e1 to </s>: greedy decoding writes the call,
 * then ends. The call token's text is the whole call (SPM pieces write spaces as U+2581). */
#define CALL_PIECE "<tool_call>{\"name\":\xe2\x96\x81\"get_weather\",\xe2\x96\x81\"arguments\":\xe2\x96\x81{\"city\":\xe2\x96\x81\"Paris\"}}</tool_call>"
__attribute__((unused)) static char *write_caller_gguf(const char *dir) {
    enum { DIM = 8, FFN = 8, VOCAB = 260, CALL = 259 };
    gguf_writer *w = gguf_writer_new();
    gguf_writer_add_str(w, "general.architecture", "llama");
    gguf_writer_add_str(w, "general.name", "caller");
    gguf_writer_add_u32(w, "llama.context_length", 512);
    gguf_writer_add_u32(w, "llama.embedding_length", DIM);
    gguf_writer_add_u32(w, "llama.block_count", 1);
    gguf_writer_add_u32(w, "llama.feed_forward_length", FFN);
    gguf_writer_add_u32(w, "llama.attention.head_count", 1);
    gguf_writer_add_u32(w, "llama.attention.head_count_kv", 1);
    gguf_writer_add_u32(w, "llama.rope.dimension_count", DIM);
    gguf_writer_add_f32(w, "llama.attention.layer_norm_rms_epsilon", 1e-5f);
    gguf_writer_add_f32(w, "llama.rope.freq_base", 10000.0f);
    static char *toks[VOCAB];
    static float scores[VOCAB];
    static int32_t types[VOCAB];
    for (int i = 0; i < VOCAB; i++) {
        char buf[160];
        if (i == 0) snprintf(buf, sizeof buf, "<unk>");
        else if (i == 1) snprintf(buf, sizeof buf, "<s>");
        else if (i == 2) snprintf(buf, sizeof buf, "</s>");
        else if (i < CALL) snprintf(buf, sizeof buf, "<0x%02X>", i - 3);
        else snprintf(buf, sizeof buf, "%s", CALL_PIECE);
        toks[i] = strdup(buf);
        scores[i] = i == CALL ? -1000.0f : 0.0f;
        types[i] = i == 0 ? 2 : i < 3 ? 3 : i < CALL ? 6 : 1;
    }
    gguf_writer_add_str(w, "tokenizer.ggml.model", "llama");
    gguf_writer_add_str_array(w, "tokenizer.ggml.tokens", (const char *const *)toks, VOCAB);
    gguf_writer_add_array(w, "tokenizer.ggml.scores", GGUF_TYPE_FLOAT32, scores, VOCAB);
    gguf_writer_add_array(w, "tokenizer.ggml.token_type", GGUF_TYPE_INT32, types, VOCAB);
    gguf_writer_add_u32(w, "tokenizer.ggml.unknown_token_id", 0);
    gguf_writer_add_u32(w, "tokenizer.ggml.bos_token_id", 1);
    gguf_writer_add_u32(w, "tokenizer.ggml.eos_token_id", 2);
    gguf_writer_add_bool(w, "tokenizer.ggml.add_bos_token", true);
    static float embd[VOCAB * DIM], out[VOCAB * DIM], ones[DIM];
    for (int t = 0; t < VOCAB; t++) embd[t * DIM + (t == CALL ? 1 : 0)] = 1.0f;
    out[CALL * DIM + 0] = 10.0f; /* e0 -> the call */
    out[2 * DIM + 1] = 10.0f;    /* e1 -> </s> */
    for (int i = 0; i < DIM; i++) ones[i] = 1.0f;
    const int64_t ne_embd[2] = {DIM, VOCAB}, ne_norm[1] = {DIM}, ne_sq[2] = {DIM, DIM}, ne_up[2] = {DIM, FFN},
                  ne_down[2] = {FFN, DIM};
    gguf_writer_add_tensor(w, "token_embd.weight", STRATA_TYPE_F32, 2, ne_embd, embd);
    gguf_writer_add_tensor(w, "output_norm.weight", STRATA_TYPE_F32, 1, ne_norm, ones);
    gguf_writer_add_tensor(w, "output.weight", STRATA_TYPE_F32, 2, ne_embd, out);
    gguf_writer_add_tensor(w, "blk.0.attn_norm.weight", STRATA_TYPE_F32, 1, ne_norm, ones);
    gguf_writer_add_tensor(w, "blk.0.attn_q.weight", STRATA_TYPE_F32, 2, ne_sq, NULL);
    gguf_writer_add_tensor(w, "blk.0.attn_k.weight", STRATA_TYPE_F32, 2, ne_sq, NULL);
    gguf_writer_add_tensor(w, "blk.0.attn_v.weight", STRATA_TYPE_F32, 2, ne_sq, NULL);
    gguf_writer_add_tensor(w, "blk.0.attn_output.weight", STRATA_TYPE_F32, 2, ne_sq, NULL);
    gguf_writer_add_tensor(w, "blk.0.ffn_norm.weight", STRATA_TYPE_F32, 1, ne_norm, ones);
    gguf_writer_add_tensor(w, "blk.0.ffn_gate.weight", STRATA_TYPE_F32, 2, ne_up, NULL);
    gguf_writer_add_tensor(w, "blk.0.ffn_up.weight", STRATA_TYPE_F32, 2, ne_up, NULL);
    gguf_writer_add_tensor(w, "blk.0.ffn_down.weight", STRATA_TYPE_F32, 2, ne_down, NULL);
    char *path = tmpdir_path(dir, "caller.gguf");
    assert_int_equal(gguf_writer_write_file(w, path), STRATA_OK);
    gguf_writer_free(w);
    for (int i = 0; i < VOCAB; i++) free(toks[i]);
    return path;
}

#endif
