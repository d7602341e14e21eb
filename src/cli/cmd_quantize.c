/* `strata quantize IN.gguf OUT.gguf TYPE [--threads N]`: writes a copy of a model with its
 * weights converted to a quantization recipe (tensor/recipe.h: Q4_K_M, Q8_0, ...).
 *
 * Every key/value is copied in order, then general.quantization_version (2, the block
 * layouts we write) and general.file_type (the recipe's) are set at the end, where
 * llama.cpp's quantizer puts them; tensors keep their names and shapes and are written in
 * llama.cpp's order (see tensor_order), so that files match its files byte for byte. Each tensor is dequantized to float and requantized row by row, so any
 * type we can read is accepted as input (requantizing an already quantized model loses
 * more precision than starting from F32/F16/BF16: a note says so on stderr). The output is
 * written atomically by the GGUF writer (temporary file, fsync, rename). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backend/cpu/quantize_rows.h"
#include "cli/cli.h"
#include "cli/util.h"
#include "core/status.h"
#include "gguf/gguf.h"
#include "tensor/quant.h"
#include "tensor/recipe.h"

static void usage(FILE *out) {
    fprintf(out,
            "Usage: strata quantize IN.gguf OUT.gguf TYPE [--threads N] [--quiet]\n"
            "\n"
            "Writes OUT.gguf with the weights of IN.gguf quantized to TYPE, one of:\n"
            "  %s\n"
            "2-D weights are quantized (the _M/_S recipes give some tensors more bits, as\n"
            "llama.cpp does); norms and other 1-D tensors keep their type.\n"
            "  --threads N  threads converting rows (default: all CPUs)\n"
            "  --quiet      print only errors and the summary line\n",
            strata_quant_recipe_names());
}

static int default_threads(void) {
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}

/* Output tensor order, as llama.cpp's quantizer writes it: tensors outside the blocks
 * first, then block by block (blk.N by N), by name within each group. */
static int tensor_layer(const char *name) {
    if (strncmp(name, "blk.", 4) != 0) return -1;
    char *end;
    long n = strtol(name + 4, &end, 10);
    return (end != name + 4 && *end == '.' && n >= 0 && n < 1000000) ? (int)n : -1;
}

static const gguf_file *sort_src;
static int tensor_order(const void *a, const void *b) {
    const gguf_tensor *ta = gguf_tensor_at(sort_src, *(const int64_t *)a);
    const gguf_tensor *tb = gguf_tensor_at(sort_src, *(const int64_t *)b);
    const int la = tensor_layer(ta->name), lb = tensor_layer(tb->name);
    if (la != lb) return la < lb ? -1 : 1;
    return strcmp(ta->name, tb->name);
}

int cmd_quantize(int argc, char **argv) {
    const char *pos[3];
    int npos = 0, threads = default_threads(), quiet = 0;
    for (int i = 1; i < argc; i++) {
        if (cli_is_help(argv[i])) {
            usage(stdout);
            return 0;
        } else if ((cli_opt_is(argv[i], "threads") || cli_opt_is(argv[i], "num_thread") || !strcmp(argv[i], "-t")) &&
                   i + 1 < argc) {
            threads = atoi(argv[++i]);
            if (threads < 1) return cli_error("quantize: --threads needs a positive number");
        } else if (cli_opt_is(argv[i], "quiet") || !strcmp(argv[i], "-q")) {
            quiet = 1;
        } else if (argv[i][0] == '-' && argv[i][1] != '\0') {
            return cli_error("quantize: unknown option %s (see strata quantize --help)", argv[i]);
        } else if (npos < 3) {
            pos[npos++] = argv[i];
        } else {
            return cli_error("quantize: too many arguments (see strata quantize --help)");
        }
    }
    if (npos != 3) {
        usage(stderr);
        return 1;
    }
    const strata_quant_recipe *recipe = strata_quant_recipe_find(pos[2]);
    if (!recipe) return cli_error("quantize: unknown type %s (known: %s)", pos[2], strata_quant_recipe_names());

    gguf_file *in;
    if (gguf_open(pos[0], GGUF_OPEN_DEFAULT, &in) != STRATA_OK) return cli_error("%s", strata_last_error());

    int rc = 1;
    const int64_t n_tensors = gguf_tensor_count(in);
    void **bufs = calloc((size_t)(n_tensors > 0 ? n_tensors : 1), sizeof *bufs);
    int64_t *order = malloc(sizeof *order * (size_t)(n_tensors > 0 ? n_tensors : 1));
    gguf_writer *w = gguf_writer_new();
    if (!bufs || !order || !w) {
        cli_error("quantize: out of memory");
        goto done;
    }

    /* Metadata: everything in order except the two keys we set, which go last (where
     * llama.cpp's quantizer puts them, so that our files match its files byte for byte). */
    for (int64_t i = 0; i < gguf_kv_count(in); i++) {
        const char *key = gguf_kv_key(in, i);
        if (!strcmp(key, "general.file_type") || !strcmp(key, "general.quantization_version")) continue;
        if (gguf_writer_copy_kv(w, in, i) != STRATA_OK) {
            cli_error("quantize: %s", strata_last_error());
            goto done;
        }
    }
    if (gguf_writer_add_u32(w, "general.quantization_version", 2) != STRATA_OK ||
        gguf_writer_add_u32(w, "general.file_type", recipe->file_type) != STRATA_OK) {
        cli_error("quantize: %s", strata_last_error());
        goto done;
    }

    strata_quant_state qs;
    strata_quant_state_init(&qs);
    for (int64_t i = 0; i < n_tensors; i++) {
        strata_quant_state_count(&qs, gguf_tensor_at(in, i)->name);
        order[i] = i;
    }
    sort_src = in;
    qsort(order, (size_t)n_tensors, sizeof *order, tensor_order);

    uint64_t bytes_in = 0, bytes_out = 0;
    int requantized = 0;
    for (int64_t i = 0; i < n_tensors; i++) {
        const gguf_tensor *t = gguf_tensor_at(in, order[i]);
        const int64_t cols = t->ne[0], rows = cols > 0 ? gguf_tensor_elements(t) / cols : 0;
        strata_type out_type = strata_quant_choose(recipe, &qs, t->name, t->n_dims, cols, t->type);
        const void *data = t->data;
        if (out_type != t->type) {
            if (!strata_type_can_dequantize(t->type)) {
                cli_error("quantize: tensor %s has type %s, which cannot be converted", t->name,
                          strata_type_name(t->type));
                goto done;
            }
            const strata_type_info *info = strata_type_info_get(t->type);
            if (info && info->quantized) requantized++;
            const size_t out_bytes = strata_type_row_bytes(out_type, cols) * (size_t)rows;
            bufs[i] = malloc(out_bytes ? out_bytes : 1);
            if (!bufs[i] || cpu_convert_rows(t->type, t->data, out_type, bufs[i], rows, cols, threads) != 0) {
                cli_error("quantize: out of memory converting %s", t->name);
                goto done;
            }
            data = bufs[i];
        }
        bytes_in += t->bytes;
        bytes_out += strata_type_row_bytes(out_type, cols) * (size_t)rows;
        if (!quiet)
            fprintf(stderr, "[%4lld/%4lld] %-32s %-6s -> %s\n", (long long)i + 1, (long long)n_tensors, t->name,
                strata_type_name(t->type), strata_type_name(out_type));
        if (gguf_writer_add_tensor(w, t->name, out_type, t->n_dims, t->ne, data) != STRATA_OK) {
            cli_error("quantize: %s", strata_last_error());
            goto done;
        }
    }
    if (requantized && !quiet)
        fprintf(stderr, "strata: note: %d tensors were already quantized; requantizing them adds error\n",
                requantized);
    if (gguf_writer_write_file(w, pos[1]) != STRATA_OK) {
        cli_error("quantize: %s", strata_last_error());
        goto done;
    }
    fprintf(stderr, "quantized %s -> %s (%s): %.2f MiB -> %.2f MiB\n", pos[0], pos[1], recipe->name,
            bytes_in / 1048576.0, bytes_out / 1048576.0);
    rc = 0;
done:
    gguf_writer_free(w);
    if (bufs)
        for (int64_t i = 0; i < n_tensors; i++) free(bufs[i]);
    free(bufs);
    free(order);
    gguf_close(in);
    return rc;
}
