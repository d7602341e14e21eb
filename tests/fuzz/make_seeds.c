/* Writes the fuzzers' seed corpora: small valid inputs made by our own code (never copied
 * from elsewhere), one subdirectory per fuzz target, named as the target without "fuzz_".
 *
 *   fuzz_make_seeds DIR    ->  DIR/gguf/NAME.gguf, ...
 *
 * A new corpus is one function below and one line in `corpora`. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "gguf/gguf.h"
#include "template/template.h"

/* Writes w's file as dir/name; returns 0 on success. */
static int write_seed(gguf_writer *w, const char *dir, const char *name) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    strata_status st = gguf_writer_write_file(w, path);
    gguf_writer_free(w);
    if (st != STRATA_OK) {
        fprintf(stderr, "make_seeds: %s: %s\n", path, strata_last_error());
        return -1;
    }
    return 0;
}

/* ---- gguf --------------------------------------------------------------------------- */

static gguf_writer *seed_scalars(void) {
    gguf_writer *w = gguf_writer_new();
    if (!w) return NULL;
    gguf_writer_add_u8(w, "s.u8", 200);
    gguf_writer_add_i8(w, "s.i8", -5);
    gguf_writer_add_u16(w, "s.u16", 60000);
    gguf_writer_add_i16(w, "s.i16", -300);
    gguf_writer_add_u32(w, "s.u32", 123456789);
    gguf_writer_add_i32(w, "s.i32", -123456789);
    gguf_writer_add_u64(w, "s.u64", 1ull << 40);
    gguf_writer_add_i64(w, "s.i64", -(1ll << 40));
    gguf_writer_add_f32(w, "s.f32", 0.5f);
    gguf_writer_add_f64(w, "s.f64", -2.25);
    gguf_writer_add_bool(w, "s.bool", true);
    gguf_writer_add_str(w, "s.str", "hello");
    gguf_writer_add_str(w, "s.empty", "");
    return w;
}

static gguf_writer *seed_arrays(void) {
    gguf_writer *w = gguf_writer_new();
    if (!w) return NULL;
    static const uint8_t u8[] = {1, 2, 255};
    static const int16_t i16[] = {-1, 0, 1};
    static const uint32_t u32[] = {7, 8, 9, 10};
    static const int64_t i64[] = {-1, 1ll << 50};
    static const float f32[] = {0.25f, -1.0f, 3.0f};
    static const double f64[] = {1e-10, 1e10};
    static const uint8_t bools[] = {0, 1};
    static const char *const strs[] = {"<s>", "</s>", "a", ""};
    gguf_writer_add_array(w, "a.u8", GGUF_TYPE_UINT8, u8, 3);
    gguf_writer_add_array(w, "a.i16", GGUF_TYPE_INT16, i16, 3);
    gguf_writer_add_array(w, "a.u32", GGUF_TYPE_UINT32, u32, 4);
    gguf_writer_add_array(w, "a.i64", GGUF_TYPE_INT64, i64, 2);
    gguf_writer_add_array(w, "a.f32", GGUF_TYPE_FLOAT32, f32, 3);
    gguf_writer_add_array(w, "a.f64", GGUF_TYPE_FLOAT64, f64, 2);
    gguf_writer_add_array(w, "a.bool", GGUF_TYPE_BOOL, bools, 2);
    gguf_writer_add_array(w, "a.empty", GGUF_TYPE_INT32, u32, 0);
    gguf_writer_add_str_array(w, "a.str", strs, 4);
    gguf_writer_add_str_array(w, "a.empty_str", strs, 0);
    return w;
}

/* Tensors of several types; alignment 0 keeps the default. */
static gguf_writer *seed_tensors(uint32_t alignment) {
    gguf_writer *w = gguf_writer_new();
    if (!w) return NULL;
    if (alignment) gguf_writer_add_u32(w, "general.alignment", alignment);
    static const struct {
        const char *name;
        strata_type type;
        uint32_t n_dims;
        int64_t ne[2];
    } ts[] = {
        {"t.f32", STRATA_TYPE_F32, 2, {4, 3}},   {"t.f16", STRATA_TYPE_F16, 1, {5}},
        {"t.bf16", STRATA_TYPE_BF16, 1, {3}},    {"t.q4_0", STRATA_TYPE_Q4_0, 2, {32, 2}},
        {"t.q8_0", STRATA_TYPE_Q8_0, 1, {64}},   {"t.q4_k", STRATA_TYPE_Q4_K, 1, {256}},
        {"t.q6_k", STRATA_TYPE_Q6_K, 1, {256}},  {"t.iq4_nl", STRATA_TYPE_IQ4_NL, 1, {32}},
        {"t.i32", STRATA_TYPE_I32, 2, {2, 2}},
    };
    /* Static: the writer borrows tensor data until the file is written, after we return. */
    static uint8_t data[512];
    for (size_t i = 0; i < sizeof data; i++) data[i] = (uint8_t)(i * 31 + 7);
    for (size_t i = 0; i < sizeof ts / sizeof ts[0]; i++) {
        gguf_writer_add_tensor(w, ts[i].name, ts[i].type, ts[i].n_dims, ts[i].ne, data);
    }
    return w;
}

/* The shape of a real model header: architecture keys, a tokenizer, blocks. */
static gguf_writer *seed_model(void) {
    gguf_writer *w = gguf_writer_new();
    if (!w) return NULL;
    gguf_writer_add_str(w, "general.architecture", "llama");
    gguf_writer_add_u32(w, "general.file_type", 1);
    gguf_writer_add_u32(w, "llama.block_count", 2);
    gguf_writer_add_u32(w, "llama.context_length", 128);
    gguf_writer_add_u32(w, "llama.embedding_length", 8);
    gguf_writer_add_u32(w, "llama.attention.head_count", 2);
    gguf_writer_add_u32(w, "llama.attention.head_count_kv", 1);
    gguf_writer_add_f32(w, "llama.attention.layer_norm_rms_epsilon", 1e-5f);
    gguf_writer_add_str(w, "tokenizer.ggml.model", "llama");
    static const char *const toks[] = {"<unk>", "<s>", "</s>", "\xe2\x96\x81\x61", "b"};
    static const float scores[] = {0, 0, 0, -1, -2};
    static const int32_t types[] = {2, 3, 3, 1, 1};
    gguf_writer_add_str_array(w, "tokenizer.ggml.tokens", toks, 5);
    gguf_writer_add_array(w, "tokenizer.ggml.scores", GGUF_TYPE_FLOAT32, scores, 5);
    gguf_writer_add_array(w, "tokenizer.ggml.token_type", GGUF_TYPE_INT32, types, 5);
    gguf_writer_add_u32(w, "tokenizer.ggml.bos_token_id", 1);
    const int64_t emb[2] = {8, 5}, sq[2] = {8, 8}, vec[1] = {8};
    gguf_writer_add_tensor(w, "token_embd.weight", STRATA_TYPE_F16, 2, emb, NULL);
    for (int b = 0; b < 2; b++) {
        char name[64];
        snprintf(name, sizeof name, "blk.%d.attn_q.weight", b);
        gguf_writer_add_tensor(w, name, STRATA_TYPE_F16, 2, sq, NULL);
        snprintf(name, sizeof name, "blk.%d.attn_norm.weight", b);
        gguf_writer_add_tensor(w, name, STRATA_TYPE_F32, 1, vec, NULL);
    }
    gguf_writer_add_tensor(w, "output_norm.weight", STRATA_TYPE_F32, 1, vec, NULL);
    return w;
}

static int make_gguf_seeds(const char *dir) {
    gguf_writer *empty = gguf_writer_new();
    if (!empty) return -1;
    int rc = 0;
    rc |= write_seed(empty, dir, "empty.gguf");
    rc |= write_seed(seed_scalars(), dir, "scalars.gguf");
    rc |= write_seed(seed_arrays(), dir, "arrays.gguf");
    rc |= write_seed(seed_tensors(0), dir, "tensors.gguf");
    rc |= write_seed(seed_tensors(1), dir, "tensors-align1.gguf");
    rc |= write_seed(seed_tensors(64), dir, "tensors-align64.gguf");
    rc |= write_seed(seed_model(), dir, "model.gguf");
    return rc;
}

/* ---- tokenizer ---------------------------------------------------------------------- */
/* Inputs for fuzz_tokenizer: byte 0 picks the vocab and flags (see that file), the rest is
 * text: plain words, whitespace runs, contractions, digits, special-token text, multi-byte
 * and invalid UTF-8. */

static int write_bytes(const char *dir, const char *name, const void *data, size_t size) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(data, 1, size, f) != size || fclose(f) != 0) {
        fprintf(stderr, "make_seeds: cannot write %s: %s\n", path, strerror(errno));
        if (f) fclose(f);
        return -1;
    }
    return 0;
}

/* Writes each of n NUL-terminated texts as DIR/PREFIX-i. */
static int write_texts(const char *dir, const char *prefix, const char *const *texts, size_t n) {
    int rc = 0;
    for (size_t t = 0; t < n; t++) {
        char name[64];
        snprintf(name, sizeof name, "%s-%zu", prefix, t);
        rc |= write_bytes(dir, name, texts[t], strlen(texts[t]));
    }
    return rc;
}

static int make_tokenizer_seeds(const char *dir) {
    static const char *const texts[] = {
        "hello world",
        "  hello\n\n\tworld  ",
        "I'll say it's 1234567 o'clock, isn't it?",
        "hello<|end|>world<|user|>",
        "<|endoftext|>hello<|pad|> world",
        "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\xa6\x99 \xe4\xbd\xa0\xe5\xa5\xbd \xd0\xbd\xd0\xb5",
        "\xff\xfe\xc3\x28\xe2\x82 \xed\xa0\x80\xf4\x90\x80\x80",
    };
    static const unsigned char modes[] = {0x00, 0x11, 0x22, 0x33, 0x04, 0x15, 0x26, 0x37, 0x08, 0x19, 0x2a};
    int rc = 0;
    for (size_t m = 0; m < sizeof modes; m++) {
        for (size_t t = 0; t < sizeof texts / sizeof texts[0]; t++) {
            unsigned char buf[256];
            size_t len = strlen(texts[t]);
            buf[0] = modes[m];
            memcpy(buf + 1, texts[t], len);
            char name[64];
            snprintf(name, sizeof name, "m%02x-t%zu", modes[m], t);
            rc |= write_bytes(dir, name, buf, len + 1);
        }
    }
    return rc;
}

/* ---- modelfile ---------------------------------------------------------------------- */
/* Inputs for fuzz_modelfile: Modelfiles using every instruction and quoting form. */

static int make_modelfile_seeds(const char *dir) {
    static const char *const texts[] = {
        "FROM ./model.gguf\n",
        "# comment\nFROM llama3:8b\nPARAMETER temperature 0.7\nPARAMETER num_ctx 4096\nPARAMETER stop <|eot_id|>\n"
        "PARAMETER stop \"<|end|>\"\nSYSTEM You are terse.\nMESSAGE user hi\nMESSAGE assistant hello\nLICENSE MIT\n",
        "from m\r\ntemplate \"\"\"{{ if .System }}<|system|>\n{{ .System }}<|end|>\n{{ end }}\"\"\"\r\n"
        "system \"  padded  \"\r\nparameter seed -1\r\nparameter top_p 0.95\r\n",
        "FROM m\nLICENSE \"\"\"line 1\nline \"2\"\n\"\"\"\nMESSAGE system \"two\nlines\"\n",
    };
    return write_texts(dir, "modelfile", texts, sizeof texts / sizeof texts[0]);
}

/* ---- template ----------------------------------------------------------------------- */
/* Inputs for fuzz_template: byte 0 picks the conversation and flags (see that file), the
 * rest is a template: every built-in one, and samples of the language's features. */

static int make_template_seeds(const char *dir) {
    static const char *const samples[] = {
        "{{ if .System }}<S>{{ .System }}</S>{{ end }}<U>{{ .Prompt }}</U><A>{{ .Response }}</A>",
        "{{- range $i, $m := .Messages }}{{ $last := eq (len (slice $.Messages $i)) 1 }}{{ if $last }}{{ .Content }}{{ end }}{{ end -}}",
        "{{ with .Tools }}{{ json . }}{{ else with .Messages }}{{ len . }}{{ end }}{{/* c */}}",
        "{{ $x := 0 }}{{ range 3 }}{{ $x = . }}{{ if eq . 1 }}{{ continue }}{{ end }}{{ printf \"%d-%s\" . `r` }}{{ end }}",
        "{{ and .System (or .Prompt \"x\") | print }}{{ index .Messages 0 \"Role\" }}{{ 'a' }}{{ -1.5e3 }}",
    };
    int rc = 0;
    unsigned char buf[4096];
    for (int f = 0; f < STRATA_CHAT_COUNT; f++) {
        const char *src = strata_chat_family_template((strata_chat_family)f);
        size_t len = strlen(src);
        if (len + 1 > sizeof buf) return -1;
        buf[0] = (unsigned char)(f * 9); /* vary the conversation and flags */
        memcpy(buf + 1, src, len);
        char name[64];
        snprintf(name, sizeof name, "builtin-%s", strata_chat_family_name((strata_chat_family)f));
        rc |= write_bytes(dir, name, buf, len + 1);
    }
    for (size_t i = 0; i < sizeof samples / sizeof samples[0]; i++) {
        size_t len = strlen(samples[i]);
        buf[0] = (unsigned char)(i * 5 + 8);
        memcpy(buf + 1, samples[i], len);
        char name[32];
        snprintf(name, sizeof name, "sample-%zu", i);
        rc |= write_bytes(dir, name, buf, len + 1);
    }
    return rc;
}

/* ---- backend ------------------------------------------------------------------------ */
/* Inputs for fuzz_backend: device specs and sizes as users write them. */

static int make_backend_seeds(const char *dir) {
    static const char *const texts[] = {
        "sim:12GiB:360:RTX3060,sim:12GiB:288:A2000,sim:6GiB:288:A2000",
        "cpu::40,sim:1.5GB",
        "cuda:0:12GiB,cuda:1",
        "cpu:64GiB:20:host",
        "512MiB",
    };
    return write_texts(dir, "spec", texts, sizeof texts / sizeof texts[0]);
}

/* ---- server ------------------------------------------------------------------------- */
/* Inputs for fuzz_server: byte 0 picks the route (fuzz_server.c's table: 0 generate, 1 chat,
 * 2 OpenAI chat, 3 OpenAI completions, 4 embed, 5 embeddings, 6 show, 7 create, 8 copy,
 * 9 delete, 10 pull, 11 tags, 12 ps, 13 /v1/models, 14 blob HEAD, 15 option parsers; 16 is 0 again), the
 * rest is the body as clients send it, hostile ones included. */

static int make_server_seeds(const char *dir) {
    static const char *const texts[] = {
        "\x0f{\"model\":\"m\",\"prompt\":\"hi\",\"options\":{\"temperature\":0,\"num_predict\":64,"
        "\"seed\":1,\"stop\":[\"\\n\",\"User:\"],\"num_ctx\":2048},\"keep_alive\":\"5m\"}",
        "\x0f{\"options\":{\"top_k\":40,\"top_p\":0.9,\"min_p\":0.05,\"typical_p\":1,\"repeat_penalty\":1.1,"
        "\"repeat_last_n\":64,\"presence_penalty\":0.5,\"frequency_penalty\":0.5,\"num_gpu\":-1,"
        "\"main_gpu\":0,\"num_batch\":512,\"num_thread\":2},\"keep_alive\":-1}",
        "\x0f{\"keep_alive\":\"1h30m0.5s\",\"options\":{\"num_keep\":4}}",
        "\x0f{\"keep_alive\":1e10,\"options\":{\"temperature\":\"hot\",\"num_ctx\":1099511627776}}",
        "\x10{\"model\":\"tiny\",\"prompt\":\"Once upon a time\",\"options\":{\"temperature\":1,\"seed\":3}}",
        "\x10{\"model\":\"tiny\",\"prompt\":\"hi\",\"system\":123,\"raw\":\"str\",\"images\":1}",
        "\x10{\"model\":\"tiny\",\"prompt\":\"hi\",\"context\":[1,2,99999999],\"keep_alive\":1e300}",
        "\x10{\"model\":\"tiny\\u0000x\",\"prompt\":\"hi\"}",
        "\x10{\"model\":\"tiny\",\"prompt\":\"\",\"keep_alive\":0}",
        "\x01{\"model\":\"tiny\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\",\"images\":[]}],"
        "\"format\":\"json\"}",
        "\x02{\"model\":\"tiny\",\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"x\"}]}],"
        "\"max_tokens\":\"str\",\"response_format\":{\"type\":\"json_object\"}}",
        "\x03{\"model\":\"tiny\",\"prompt\":\"x\",\"stop\":[\"a\",1],\"seed\":1e300}",
        "\x04{\"model\":\"tiny\",\"input\":[\"a\",\"b\"],\"truncate\":\"str\"}",
        "\x06{\"model\":\"tiny\",\"verbose\":true}",
        "\x07{\"model\":\"copy1\",\"from\":\"tiny\",\"system\":\"s\",\"parameters\":{\"num_ctx\":64},"
        "\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}",
        "\x07{\"model\":\"x\",\"from\":\"/dev/zero\"}",
        "\x08{\"source\":\"tiny\",\"destination\":\"me/tiny:v2\"}",
        "\x09{\"model\":\"me/tiny:v2\"}",
        "\x0a{\"model\":\"llama3\"}",
        "\x0a{\"model\":\"https://example.invalid/m.gguf\"}",
        "\x0esha256:0000000000000000000000000000000000000000000000000000000000000000",
    };
    return write_texts(dir, "body", texts, sizeof texts / sizeof texts[0]);
}

/* ---- sampler ------------------------------------------------------------------------ */
/* Inputs for fuzz_sampler (the JSON prefix validator): byte 0 picks the top level (bit 0:
 * object only), the rest is text: every kind of value, escapes, UTF-8, cut-off prefixes. */

static int make_sampler_seeds(const char *dir) {
    static const char *const texts[] = {
        "\x01{\"name\": \"Lily\", \"age\": 3, \"tags\": [\"a\", \"b\"], \"ok\": true, \"x\": null}",
        "\x00[0, -0, 1.5, -2e10, 3E-7, 12345678901234567890, 0.0e+0]",
        "\x00\"esc \\\" \\\\ \\/ \\b \\f \\n \\r \\t \\u00e9 \\uD83D\\uDE00\"",
        "\x00\"utf8 \xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\"",
        "\x01 {\n  \"nested\": {\"a\": [[[{}]]], \"b\": {\"c\": false}}\n}\n",
        "\x01{\"cut\": [1, 2, \"abc",
        "\x00\"\xe2\x82",
        "\x00-12.5e",
        "\x00[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]",
    };
    int rc = 0;
    for (size_t t = 0; t < sizeof texts / sizeof texts[0]; t++) {
        char name[32];
        snprintf(name, sizeof name, "json-%zu", t);
        /* byte 0 may be NUL: the length is 1 + the text after it */
        rc |= write_bytes(dir, name, texts[t], 1 + strlen(texts[t] + 1));
    }
    return rc;
}

/* ---- driver ------------------------------------------------------------------------- */

static const struct {
    const char *subdir; /* = the fuzz target's name without "fuzz_" */
    int (*make)(const char *dir);
} corpora[] = {
    {"gguf", make_gguf_seeds},
    {"tokenizer", make_tokenizer_seeds},
    {"modelfile", make_modelfile_seeds},
    {"template", make_template_seeds},
    {"backend", make_backend_seeds},
    {"server", make_server_seeds},
    {"sampler", make_sampler_seeds},
};

static int make_dir(const char *path) {
    if (mkdir(path, 0755) == 0 || errno == EEXIST) return 0;
    fprintf(stderr, "make_seeds: cannot create %s: %s\n", path, strerror(errno));
    return -1;
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s DIR\n", argv[0]);
        return 2;
    }
    if (make_dir(argv[1]) != 0) return 1;
    int rc = 0;
    for (size_t i = 0; i < sizeof corpora / sizeof corpora[0]; i++) {
        char dir[4096];
        snprintf(dir, sizeof dir, "%s/%s", argv[1], corpora[i].subdir);
        if (make_dir(dir) != 0 || corpora[i].make(dir) != 0) rc = 1;
    }
    return rc;
}
