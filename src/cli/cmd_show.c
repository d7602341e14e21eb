/* `strata show FILE.gguf [--tensors] [--json]`: what a GGUF file holds, read from its header
 * alone (tensor data is mapped but never touched). Owns the summary of a model's
 * hyper-parameters, the per-layer byte table and the names of llama.cpp's file types. */
#include <cJSON.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/util.h"
#include "gguf/gguf.h"

/* More blocks than any real model has by orders of magnitude; a larger block_count or
 * blk.N index is a broken file, and would otherwise size our table. */
#define SHOW_MAX_BLOCKS 65536

static const char usage[] =
    "Usage: strata show FILE.gguf [--tensors] [--json]\n"
    "\n"
    "Prints the architecture, parameter count, file type, context and embedding length,\n"
    "layer, head and KV-head counts, vocabulary size, tokenizer, whether a chat template is\n"
    "present, and the bytes of each layer (token_embd, blk.0 ... blk.N-1, output).\n"
    "\n"
    "Options:\n"
    "  --tensors  also list every tensor: name, type, shape, bytes, offset (from the file start)\n"
    "  --json     print everything as one JSON object\n";

/* general.file_type values, named as llama.cpp's llama_ftype enum (LLAMA_FTYPE_ prefix
 * dropped). Gaps are ids llama.cpp has retired. */
static const char *const file_type_names[] = {
    [0] = "ALL_F32",
    [1] = "MOSTLY_F16",
    [2] = "MOSTLY_Q4_0",
    [3] = "MOSTLY_Q4_1",
    [4] = "MOSTLY_Q4_1_SOME_F16",
    [7] = "MOSTLY_Q8_0",
    [8] = "MOSTLY_Q5_0",
    [9] = "MOSTLY_Q5_1",
    [10] = "MOSTLY_Q2_K",
    [11] = "MOSTLY_Q3_K_S",
    [12] = "MOSTLY_Q3_K_M",
    [13] = "MOSTLY_Q3_K_L",
    [14] = "MOSTLY_Q4_K_S",
    [15] = "MOSTLY_Q4_K_M",
    [16] = "MOSTLY_Q5_K_S",
    [17] = "MOSTLY_Q5_K_M",
    [18] = "MOSTLY_Q6_K",
    [19] = "MOSTLY_IQ2_XXS",
    [20] = "MOSTLY_IQ2_XS",
    [21] = "MOSTLY_Q2_K_S",
    [22] = "MOSTLY_IQ3_XS",
    [23] = "MOSTLY_IQ3_XXS",
    [24] = "MOSTLY_IQ1_S",
    [25] = "MOSTLY_IQ4_NL",
    [26] = "MOSTLY_IQ3_S",
    [27] = "MOSTLY_IQ3_M",
    [28] = "MOSTLY_IQ2_S",
    [29] = "MOSTLY_IQ2_M",
    [30] = "MOSTLY_IQ4_XS",
    [31] = "MOSTLY_IQ1_M",
    [32] = "MOSTLY_BF16",
    [33] = "MOSTLY_Q4_0_4_4",
    [34] = "MOSTLY_Q4_0_4_8",
    [35] = "MOSTLY_Q4_0_8_8",
    [36] = "MOSTLY_TQ1_0",
    [37] = "MOSTLY_TQ2_0",
    [38] = "MOSTLY_MXFP4_MOE",
    [39] = "MOSTLY_NVFP4",
    [40] = "MOSTLY_Q1_0",
};

/* llama.cpp's marker for "not stored in the file, guessed from the tensors". */
#define FILE_TYPE_GUESSED 1024

static const char *file_type_name(uint32_t id) {
    if (id < sizeof file_type_names / sizeof file_type_names[0] && file_type_names[id]) {
        return file_type_names[id];
    }
    if (id == FILE_TYPE_GUESSED) return "GUESSED";
    return NULL;
}

/* The file type a tensor type implies when it is the most common one, for files that do not
 * store general.file_type (older converters); -1 where no file type corresponds. The K-quant
 * mixes guess the _M variant, as llama.cpp does. */
static int file_type_of_tensor_type(strata_type t) {
    switch (t) {
    case STRATA_TYPE_F32: return 0;
    case STRATA_TYPE_F16: return 1;
    case STRATA_TYPE_Q4_0: return 2;
    case STRATA_TYPE_Q4_1: return 3;
    case STRATA_TYPE_Q8_0: return 7;
    case STRATA_TYPE_Q5_0: return 8;
    case STRATA_TYPE_Q5_1: return 9;
    case STRATA_TYPE_Q2_K: return 10;
    case STRATA_TYPE_Q3_K: return 12;
    case STRATA_TYPE_Q4_K: return 15;
    case STRATA_TYPE_Q5_K: return 17;
    case STRATA_TYPE_Q6_K: return 18;
    case STRATA_TYPE_IQ2_XXS: return 19;
    case STRATA_TYPE_IQ2_XS: return 20;
    case STRATA_TYPE_IQ3_XXS: return 23;
    case STRATA_TYPE_IQ1_S: return 24;
    case STRATA_TYPE_IQ4_NL: return 25;
    case STRATA_TYPE_IQ3_S: return 26;
    case STRATA_TYPE_IQ2_S: return 28;
    case STRATA_TYPE_IQ4_XS: return 30;
    case STRATA_TYPE_IQ1_M: return 31;
    case STRATA_TYPE_BF16: return 32;
    case STRATA_TYPE_TQ1_0: return 36;
    case STRATA_TYPE_TQ2_0: return 37;
    case STRATA_TYPE_MXFP4: return 38;
    default: return -1;
    }
}

/* An optional count from the metadata. */
typedef struct {
    bool present;
    uint64_t value;
} opt_u64;

typedef struct {
    const char *path;
    const gguf_file *f;
    char *architecture; /* NUL-terminated copies; NULL when absent */
    char *name;
    char *tokenizer_model;
    bool chat_template;
    bool file_type_guessed; /* general.file_type absent: file_type comes from the tensors */
    opt_u64 file_type, context_length, embedding_length, block_count, head_count, head_count_kv,
        vocab_size;
    uint64_t parameter_count;
    uint64_t total_bytes; /* all tensor data; equals the sum of the layer table */
    size_t n_blocks;      /* rows blk.0 .. blk.n_blocks-1 of the layer table */
    uint64_t *layer_bytes; /* [0] token_embd, [1 + i] blk.i, [1 + n_blocks] output */
} show_info;

static char *str_dup(gguf_str s) {
    char *c = malloc(s.len + 1);
    if (!c) return NULL;
    memcpy(c, s.ptr, s.len);
    c[s.len] = '\0';
    return c;
}

/* A count stored as an integer, or as a per-layer array of integers (some architectures vary
 * head counts by layer); for an array the largest element is reported, since that is what
 * sizes the buffers. */
static opt_u64 get_count(const gguf_file *f, const char *key) {
    opt_u64 r = {false, 0};
    uint64_t v;
    if (gguf_get_u64(f, key, &v)) {
        r.present = true;
        r.value = v;
        return r;
    }
    const gguf_value *arr = gguf_get_array(f, key);
    if (!arr || arr->arr.count == 0) return r;
    switch (arr->arr.elem_type) {
    case GGUF_TYPE_UINT8: case GGUF_TYPE_INT8: case GGUF_TYPE_UINT16: case GGUF_TYPE_INT16:
    case GGUF_TYPE_UINT32: case GGUF_TYPE_INT32: case GGUF_TYPE_UINT64: case GGUF_TYPE_INT64:
        break;
    default:
        return r;
    }
    for (uint64_t j = 0; j < arr->arr.count; j++) {
        int64_t e = gguf_array_i64(arr, j);
        if (e > 0 && (uint64_t)e > r.value) r.value = (uint64_t)e;
    }
    r.present = true;
    return r;
}

static opt_u64 get_arch_count(const show_info *s, const char *suffix) {
    opt_u64 none = {false, 0};
    if (!s->architecture) return none;
    size_t n = strlen(s->architecture) + strlen(suffix) + 2;
    char *key = malloc(n);
    if (!key) return none;
    snprintf(key, n, "%s.%s", s->architecture, suffix);
    opt_u64 r = get_count(s->f, key);
    free(key);
    return r;
}

/* The block index of a tensor named "blk.N.…", or -1 for any other name. */
static int64_t block_index(const char *name) {
    if (strncmp(name, "blk.", 4) != 0) return -1;
    const char *p = name + 4;
    if (*p < '0' || *p > '9') return -1;
    int64_t idx = 0;
    for (; *p >= '0' && *p <= '9'; p++) {
        idx = idx * 10 + (*p - '0');
        if (idx > SHOW_MAX_BLOCKS) return SHOW_MAX_BLOCKS; /* caller reports it as too large */
    }
    return *p == '.' ? idx : -1;
}

/* Tensors the model reads before its first block. */
static bool is_input_tensor(const char *name) {
    static const char *const prefixes[] = {"token_embd.", "token_embd_norm.", "pos_embd.", "token_types."};
    for (size_t i = 0; i < sizeof prefixes / sizeof prefixes[0]; i++) {
        if (strncmp(name, prefixes[i], strlen(prefixes[i])) == 0) return true;
    }
    return false;
}

/* The type most matrices have ("mostly Q4_0, except 1-d tensors": norms stay F32, so only
 * tensors of two or more dimensions vote). */
static void guess_file_type(show_info *s) {
    uint64_t votes[STRATA_TYPE_COUNT] = {0};
    for (int64_t i = 0; i < gguf_tensor_count(s->f); i++) {
        const gguf_tensor *t = gguf_tensor_at(s->f, i);
        if (t->n_dims >= 2) votes[t->type]++;
    }
    int best = -1;
    for (int t = 0; t < STRATA_TYPE_COUNT; t++) {
        if (votes[t] > 0 && (best < 0 || votes[t] > votes[best])) best = t;
    }
    if (best < 0) return;
    int ft = file_type_of_tensor_type((strata_type)best);
    if (ft < 0) return;
    s->file_type.present = true;
    s->file_type.value = (uint64_t)ft;
    s->file_type_guessed = true;
}

static void show_info_free(show_info *s) {
    free(s->architecture);
    free(s->name);
    free(s->tokenizer_model);
    free(s->layer_bytes);
}

static int collect(show_info *s) {
    const gguf_file *f = s->f;
    gguf_str str;
    if (gguf_get_str(f, "general.architecture", &str) && !(s->architecture = str_dup(str))) goto nomem;
    if (gguf_get_str(f, "general.name", &str) && !(s->name = str_dup(str))) goto nomem;
    if (gguf_get_str(f, "tokenizer.ggml.model", &str) && !(s->tokenizer_model = str_dup(str))) goto nomem;
    s->chat_template = gguf_find_key(f, "tokenizer.chat_template") >= 0;

    uint32_t ft;
    if (gguf_get_u32(f, "general.file_type", &ft)) {
        s->file_type.present = true;
        s->file_type.value = ft;
    }
    if (!s->file_type.present) guess_file_type(s);
    s->context_length = get_arch_count(s, "context_length");
    s->embedding_length = get_arch_count(s, "embedding_length");
    s->block_count = get_arch_count(s, "block_count");
    s->head_count = get_arch_count(s, "attention.head_count");
    s->head_count_kv = get_arch_count(s, "attention.head_count_kv");
    /* Files converted without grouped-query attention omit head_count_kv; llama.cpp then uses
     * head_count, and so do we. */
    if (!s->head_count_kv.present) s->head_count_kv = s->head_count;
    s->vocab_size = get_arch_count(s, "vocab_size");
    if (!s->vocab_size.present) {
        const gguf_value *tokens = gguf_get_array(f, "tokenizer.ggml.tokens");
        if (tokens) {
            s->vocab_size.present = true;
            s->vocab_size.value = tokens->arr.count;
        }
    }

    /* The table has block_count rows, or more when tensors name higher blocks, so that every
     * tensor's bytes are counted somewhere. */
    if (s->block_count.present && s->block_count.value > SHOW_MAX_BLOCKS) {
        strata_fail(STRATA_ERR_FORMAT, "block_count %" PRIu64 " is implausibly large (limit %d)",
                    s->block_count.value, SHOW_MAX_BLOCKS);
        return -1;
    }
    int64_t n_tensors = gguf_tensor_count(f);
    size_t n_blocks = s->block_count.present ? (size_t)s->block_count.value : 0;
    for (int64_t i = 0; i < n_tensors; i++) {
        const gguf_tensor *t = gguf_tensor_at(f, i);
        int64_t b = block_index(t->name);
        if (b >= SHOW_MAX_BLOCKS) {
            strata_fail(STRATA_ERR_FORMAT, "tensor '%s': block index is implausibly large (limit %d)",
                        t->name, SHOW_MAX_BLOCKS);
            return -1;
        }
        if (b >= 0 && (size_t)b >= n_blocks) n_blocks = (size_t)b + 1;
    }
    s->n_blocks = n_blocks;
    s->layer_bytes = calloc(n_blocks + 2, sizeof *s->layer_bytes);
    if (!s->layer_bytes) goto nomem;

    for (int64_t i = 0; i < n_tensors; i++) {
        const gguf_tensor *t = gguf_tensor_at(f, i);
        int64_t b = block_index(t->name);
        size_t row;
        if (b >= 0) {
            row = 1 + (size_t)b;
        } else if (is_input_tensor(t->name)) {
            row = 0;
        } else {
            /* Everything else that is not in a block — output_norm, output, and rarer extras
             * such as rope_freqs — is counted with the output layer: the planner places all
             * non-repeating tensors other than the input embedding with the output. */
            row = 1 + n_blocks;
        }
        s->layer_bytes[row] += t->bytes;
        s->total_bytes += t->bytes;
        /* Sums cannot overflow: each tensor's bytes lie inside the file (or, header-only,
         * were checked by the reader), and elements per byte are bounded by the type table. */
        s->parameter_count += (uint64_t)gguf_tensor_elements(t);
    }
    return 0;
nomem:
    strata_fail(STRATA_ERR_NOMEM, "out of memory");
    return -1;
}

static void layer_name(const show_info *s, size_t row, char *buf, size_t cap) {
    if (row == 0) {
        snprintf(buf, cap, "token_embd");
    } else if (row == 1 + s->n_blocks) {
        snprintf(buf, cap, "output");
    } else {
        snprintf(buf, cap, "blk.%zu", row - 1);
    }
}

/* File contents shown on a terminal: control bytes would let a file rewrite the screen. */
static void print_safe(const char *s) {
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        putchar(c < 0x20 || c == 0x7f ? '?' : c);
    }
}

static void print_field_str(const char *label, const char *value) {
    printf("  %-18s ", label);
    if (value) {
        print_safe(value);
    } else {
        fputs("-", stdout);
    }
    putchar('\n');
}

static void print_field_u64(const char *label, opt_u64 v) {
    if (v.present) {
        printf("  %-18s %" PRIu64 "\n", label, v.value);
    } else {
        printf("  %-18s -\n", label);
    }
}

static void shape_text(const gguf_tensor *t, char *buf, size_t cap) {
    size_t used = 0;
    buf[0] = '\0';
    for (uint32_t d = 0; d < t->n_dims && used < cap; d++) {
        int n = snprintf(buf + used, cap - used, d ? " x %" PRId64 : "%" PRId64, t->ne[d]);
        if (n < 0) break;
        used += (size_t)n;
    }
}

static int print_text(const show_info *s, bool tensors) {
    char a[64], b[64];
    const gguf_file *f = s->f;
    print_safe(s->path);
    printf("\n");
    print_field_str("architecture", s->architecture);
    print_field_str("name", s->name);
    cli_format_count(s->parameter_count, a, sizeof a);
    printf("  %-18s %s (%" PRIu64 ")\n", "parameters", a, s->parameter_count);
    if (s->file_type.present) {
        const char *ft = file_type_name((uint32_t)s->file_type.value);
        if (ft) {
            printf("  %-18s %s%s\n", "file type", ft, s->file_type_guessed ? " (guessed from the tensors)" : "");
        } else {
            printf("  %-18s unknown (%" PRIu64 ")\n", "file type", s->file_type.value);
        }
    } else {
        printf("  %-18s -\n", "file type");
    }
    print_field_u64("context length", s->context_length);
    print_field_u64("embedding length", s->embedding_length);
    print_field_u64("layers", s->block_count);
    print_field_u64("heads", s->head_count);
    print_field_u64("KV heads", s->head_count_kv);
    print_field_u64("vocabulary size", s->vocab_size);
    print_field_str("tokenizer model", s->tokenizer_model);
    printf("  %-18s %s\n", "chat template", s->chat_template ? "yes" : "no");
    cli_format_bytes(s->total_bytes, a, sizeof a);
    printf("  %-18s %s (%" PRIu64 ")\n", "total bytes", a, s->total_bytes);
    cli_format_bytes(gguf_file_size(f), a, sizeof a);
    printf("  %-18s %s, GGUF v%" PRIu32 ", %" PRId64 " keys, %" PRId64 " tensors\n", "file", a,
           gguf_version(f), gguf_kv_count(f), gguf_tensor_count(f));

    printf("\n  %-18s %14s %12s\n", "layer", "bytes", "size");
    for (size_t row = 0; row < s->n_blocks + 2; row++) {
        layer_name(s, row, b, sizeof b);
        cli_format_bytes(s->layer_bytes[row], a, sizeof a);
        printf("  %-18s %14" PRIu64 " %12s\n", b, s->layer_bytes[row], a);
    }

    if (tensors) {
        printf("\n  %-32s %-8s %-24s %12s %12s\n", "tensor", "type", "shape", "bytes", "offset");
        uint64_t base = gguf_data_offset(f);
        for (int64_t i = 0; i < gguf_tensor_count(f); i++) {
            const gguf_tensor *t = gguf_tensor_at(f, i);
            char shape[128];
            shape_text(t, shape, sizeof shape);
            printf("  ");
            print_safe(t->name);
            size_t len = strlen(t->name);
            printf("%*s %-8s %-24s %12" PRIu64 " %12" PRIu64 "\n", len < 32 ? (int)(32 - len) : 0, "",
                   strata_type_name(t->type), shape, t->bytes, base + t->offset);
        }
    }
    if (ferror(stdout)) return cli_error("cannot write to standard output");
    return 0;
}

static bool json_add_opt(cJSON *o, const char *key, opt_u64 v) {
    if (!v.present) return cJSON_AddNullToObject(o, key) != NULL;
    return cli_json_add_u64(o, key, v.value);
}

static bool json_add_str(cJSON *o, const char *key, const char *v) {
    return (v ? cJSON_AddStringToObject(o, key, v) : cJSON_AddNullToObject(o, key)) != NULL;
}

static int print_json(const show_info *s, bool tensors) {
    const gguf_file *f = s->f;
    cJSON *o = cJSON_CreateObject();
    bool ok = o != NULL;
    ok = ok && json_add_str(o, "file", s->path);
    ok = ok && json_add_str(o, "architecture", s->architecture);
    ok = ok && json_add_str(o, "name", s->name);
    ok = ok && cli_json_add_u64(o, "parameter_count", s->parameter_count);
    const char *ft = s->file_type.present ? file_type_name((uint32_t)s->file_type.value) : NULL;
    ok = ok && json_add_str(o, "file_type", ft);
    ok = ok && json_add_opt(o, "file_type_id", s->file_type);
    ok = ok && cJSON_AddBoolToObject(o, "file_type_guessed", s->file_type_guessed) != NULL;
    ok = ok && json_add_opt(o, "context_length", s->context_length);
    ok = ok && json_add_opt(o, "embedding_length", s->embedding_length);
    ok = ok && json_add_opt(o, "block_count", s->block_count);
    ok = ok && json_add_opt(o, "head_count", s->head_count);
    ok = ok && json_add_opt(o, "head_count_kv", s->head_count_kv);
    ok = ok && json_add_opt(o, "vocab_size", s->vocab_size);
    ok = ok && json_add_str(o, "tokenizer_model", s->tokenizer_model);
    ok = ok && cJSON_AddBoolToObject(o, "chat_template", s->chat_template) != NULL;
    ok = ok && cli_json_add_u64(o, "total_bytes", s->total_bytes);
    ok = ok && cli_json_add_u64(o, "file_bytes", gguf_file_size(f));
    ok = ok && cli_json_add_u64(o, "gguf_version", gguf_version(f));
    ok = ok && cli_json_add_u64(o, "alignment", gguf_alignment(f));
    ok = ok && cli_json_add_u64(o, "data_offset", gguf_data_offset(f));
    ok = ok && cli_json_add_u64(o, "kv_count", (uint64_t)gguf_kv_count(f));
    ok = ok && cli_json_add_u64(o, "tensor_count", (uint64_t)gguf_tensor_count(f));

    cJSON *layers = ok ? cJSON_AddArrayToObject(o, "layers") : NULL;
    ok = layers != NULL;
    for (size_t row = 0; ok && row < s->n_blocks + 2; row++) {
        char name[32];
        layer_name(s, row, name, sizeof name);
        cJSON *l = cJSON_CreateObject();
        ok = l && cJSON_AddItemToArray(layers, l);
        if (!ok) cJSON_Delete(l);
        ok = ok && cJSON_AddStringToObject(l, "name", name) != NULL;
        ok = ok && cli_json_add_u64(l, "bytes", s->layer_bytes[row]);
    }

    if (ok && tensors) {
        cJSON *arr = cJSON_AddArrayToObject(o, "tensors");
        ok = arr != NULL;
        uint64_t base = gguf_data_offset(f);
        for (int64_t i = 0; ok && i < gguf_tensor_count(f); i++) {
            const gguf_tensor *t = gguf_tensor_at(f, i);
            cJSON *j = cJSON_CreateObject();
            ok = j && cJSON_AddItemToArray(arr, j);
            if (!ok) cJSON_Delete(j);
            ok = ok && cJSON_AddStringToObject(j, "name", t->name) != NULL;
            ok = ok && cJSON_AddStringToObject(j, "type", strata_type_name(t->type)) != NULL;
            cJSON *shape = ok ? cJSON_AddArrayToObject(j, "shape") : NULL;
            ok = shape != NULL;
            for (uint32_t d = 0; ok && d < t->n_dims; d++) ok = cli_json_append_u64(shape, (uint64_t)t->ne[d]);
            ok = ok && cli_json_add_u64(j, "bytes", t->bytes);
            ok = ok && cli_json_add_u64(j, "offset", base + t->offset);
        }
    }
    if (!ok) {
        cJSON_Delete(o);
        return cli_error("out of memory while building JSON");
    }
    return cli_json_print(o);
}

int cmd_show(int argc, char **argv) {
    /* A name that is not a file is a model of the server's store (cmd_show_remote.c). */
    int remote = cmd_show_dispatch(argc, argv);
    if (remote >= 0) return remote;
    const char *path = NULL;
    bool tensors = false, json = false;
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (cli_is_help(arg)) {
            fputs(usage, stdout);
            return 0;
        } else if (cli_opt_is(arg, "tensors")) {
            tensors = true;
        } else if (cli_opt_is(arg, "json")) {
            json = true;
        } else if (arg[0] == '-' && arg[1] != '\0') {
            return cli_error("show: unknown option '%s' (see 'strata show --help')", arg);
        } else if (path) {
            return cli_error("show: expected one FILE.gguf, got '%s' and '%s'", path, arg);
        } else {
            path = arg;
        }
    }
    if (!path) return cli_error("show: missing FILE.gguf (usage: strata show FILE.gguf [--tensors] [--json])");

    gguf_file *f = NULL;
    /* The reader's message already starts with the path. */
    if (gguf_open(path, GGUF_OPEN_DEFAULT, &f) != STRATA_OK) return cli_error("%s", strata_last_error());

    show_info s = {0};
    s.path = path;
    s.f = f;
    int rc;
    if (collect(&s) != 0) {
        rc = cli_error("%s: %s", path, strata_last_error());
    } else {
        rc = json ? print_json(&s, tensors) : print_text(&s, tensors);
    }
    show_info_free(&s);
    gguf_close(f);
    return rc;
}
