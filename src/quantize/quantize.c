/* Whole-file quantization (see quantize.h). */
#include "quantize/quantize.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "backend/host.h"
#include "gguf/gguf.h"
#include "tensor/quant.h"
#include "tensor/recipe.h"

strata_quantize_params strata_quantize_default_params(void) {
    return (strata_quantize_params){.n_threads = 0, .progress = NULL, .user = NULL, .cancel = NULL};
}

const char *strata_quantize_type_names(void) { return strata_quant_recipe_names(); }

bool strata_quantize_type_known(const char *type_name, char *canon, size_t cap) {
    const strata_quant_recipe *r = type_name ? strata_quant_recipe_find(type_name) : NULL;
    if (r && canon && cap) snprintf(canon, cap, "%s", r->name);
    return r != NULL;
}

/* Output tensor order, as llama.cpp's quantizer writes it: tensors outside the blocks
 * first, then block by block (blk.N by N), by name within each group. */
static int tensor_layer(const char *name) {
    if (strncmp(name, "blk.", 4) != 0) return -1;
    char *end;
    long n = strtol(name + 4, &end, 10);
    return (end != name + 4 && *end == '.' && n >= 0 && n < 1000000) ? (int)n : -1;
}

typedef struct {
    int64_t index;
    int layer;
    const char *name;
} order_entry;

static int order_cmp(const void *a, const void *b) {
    const order_entry *x = a, *y = b;
    if (x->layer != y->layer) return x->layer < y->layer ? -1 : 1;
    return strcmp(x->name, y->name);
}

static bool cancelled(const strata_quantize_params *p) { return p->cancel && atomic_load(p->cancel); }

strata_status strata_quantize_file(const char *in_path, const char *out_path, const char *type_name,
                                   const strata_quantize_params *params, strata_quantize_stats *stats) {
    const strata_quantize_params defaults = strata_quantize_default_params();
    const strata_quantize_params *p = params ? params : &defaults;
    if (stats) memset(stats, 0, sizeof *stats);
    if (!in_path || !out_path || !type_name)
        return strata_fail(STRATA_ERR_INVALID, "input, output and type are required");
    const strata_quant_recipe *recipe = strata_quant_recipe_find(type_name);
    if (!recipe)
        return strata_fail(STRATA_ERR_INVALID, "unknown quantization type %s (supported: %s)", type_name,
                           strata_quant_recipe_names());
    const int threads = p->n_threads > 0 ? p->n_threads : backend_host_threads();

    gguf_file *in;
    strata_status st = gguf_open(in_path, GGUF_OPEN_DEFAULT, &in);
    if (st != STRATA_OK) return st;

    const int64_t n_tensors = gguf_tensor_count(in);
    const size_t n_alloc = (size_t)(n_tensors > 0 ? n_tensors : 1);
    void **bufs = calloc(n_alloc, sizeof *bufs);
    order_entry *order = malloc(sizeof *order * n_alloc);
    gguf_writer *w = gguf_writer_new();
    strata_quantize_stats s = {.n_tensors = n_tensors};
    snprintf(s.file_type, sizeof s.file_type, "%s", recipe->name);
    if (!bufs || !order || !w) {
        st = strata_fail(STRATA_ERR_NOMEM, "out of memory");
        goto done;
    }

    /* Metadata: everything in order except the two keys we set, which go last. */
    for (int64_t i = 0; i < gguf_kv_count(in); i++) {
        const char *key = gguf_kv_key(in, i);
        if (!strcmp(key, "general.file_type") || !strcmp(key, "general.quantization_version")) continue;
        if ((st = gguf_writer_copy_kv(w, in, i)) != STRATA_OK) goto done;
    }
    if ((st = gguf_writer_add_u32(w, "general.quantization_version", 2)) != STRATA_OK ||
        (st = gguf_writer_add_u32(w, "general.file_type", recipe->file_type)) != STRATA_OK)
        goto done;

    /* The layer-dependent rules count tensors in file order; types are then chosen in output
     * order (as llama.cpp does). */
    strata_quant_state qs;
    strata_quant_state_init(&qs);
    uint64_t bytes_total = 0;
    for (int64_t i = 0; i < n_tensors; i++) {
        const gguf_tensor *t = gguf_tensor_at(in, i);
        strata_quant_state_count(&qs, t->name);
        order[i] = (order_entry){.index = i, .layer = tensor_layer(t->name), .name = t->name};
        bytes_total += t->bytes;
    }
    qsort(order, (size_t)n_tensors, sizeof *order, order_cmp);

    for (int64_t i = 0; i < n_tensors; i++) {
        if (cancelled(p)) {
            st = strata_fail(STRATA_ERR_CANCELLED, "quantization cancelled");
            goto done;
        }
        const gguf_tensor *t = gguf_tensor_at(in, order[i].index);
        const int64_t cols = t->ne[0], rows = cols > 0 ? gguf_tensor_elements(t) / cols : 0;
        const strata_type out_type = strata_quant_choose(recipe, &qs, t->name, t->n_dims, cols, t->type);
        const void *data = t->data;
        if (out_type != t->type) {
            if (!strata_type_can_dequantize(t->type)) {
                st = strata_fail(STRATA_ERR_UNSUPPORTED, "tensor %s has type %s, which cannot be converted",
                                 t->name, strata_type_name(t->type));
                goto done;
            }
            const strata_type_info *info = strata_type_info_get(t->type);
            if (info && info->quantized) s.n_requantized++;
            s.n_converted++;
            const size_t out_bytes = strata_type_row_bytes(out_type, cols) * (size_t)rows;
            bufs[i] = malloc(out_bytes ? out_bytes : 1);
            if (!bufs[i] || backend_host_convert_rows(t->type, t->data, out_type, bufs[i], rows, cols, threads) != 0) {
                st = strata_fail(STRATA_ERR_NOMEM, "out of memory converting %s", t->name);
                goto done;
            }
            data = bufs[i];
        }
        s.bytes_in += t->bytes;
        s.bytes_out += strata_type_row_bytes(out_type, cols) * (size_t)rows;
        if ((st = gguf_writer_add_tensor(w, t->name, out_type, t->n_dims, t->ne, data)) != STRATA_OK) goto done;
        if (p->progress) {
            const strata_quantize_progress pr = {.done = i + 1,
                                                 .n_tensors = n_tensors,
                                                 .name = t->name,
                                                 .from = t->type,
                                                 .to = out_type,
                                                 .bytes_done = s.bytes_in,
                                                 .bytes_total = bytes_total};
            if (!p->progress(p->user, &pr)) {
                st = strata_fail(STRATA_ERR_CANCELLED, "quantization cancelled");
                goto done;
            }
        }
    }
    if (cancelled(p)) {
        st = strata_fail(STRATA_ERR_CANCELLED, "quantization cancelled");
        goto done;
    }
    st = gguf_writer_write_file(w, out_path);
done:
    gguf_writer_free(w);
    if (bufs)
        for (int64_t i = 0; i < n_tensors; i++) free(bufs[i]);
    free(bufs);
    free(order);
    gguf_close(in);
    if (st == STRATA_OK && stats) *stats = s;
    return st;
}

strata_status strata_quantize_inspect(const char *path, strata_quantize_source *out) {
    memset(out, 0, sizeof *out);
    gguf_file *g;
    strata_status st = gguf_open(path, GGUF_OPEN_HEADER_ONLY, &g);
    if (st != STRATA_OK) return st;
    bool f16 = false, bf16 = false;
    for (int64_t i = 0; i < gguf_tensor_count(g); i++) {
        const gguf_tensor *t = gguf_tensor_at(g, i);
        const strata_type_info *info = strata_type_info_get(t->type);
        if (!info || info->quantized) {
            out->quantized = true;
            snprintf(out->file_type, sizeof out->file_type, "%s", strata_type_name(t->type));
            snprintf(out->first_quantized, sizeof out->first_quantized, "%s", t->name);
            break;
        }
        /* Matrices carry the model's type; vectors (norms) are F32 in every file type. */
        if (t->n_dims >= 2 && t->type == STRATA_TYPE_F16) f16 = true;
        if (t->n_dims >= 2 && t->type == STRATA_TYPE_BF16) bf16 = true;
    }
    if (!out->quantized) snprintf(out->file_type, sizeof out->file_type, "%s", f16 ? "F16" : bf16 ? "BF16" : "F32");
    gguf_close(g);
    return STRATA_OK;
}
