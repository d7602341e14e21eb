/* Quantization of a whole GGUF file: the library behind `strata quantize` and the server's
 * `/api/create` with "quantize". This module owns the file-level work (which keys are copied,
 * the order tensors are written in, the conversion of each tensor); the per-tensor type rules
 * are tensor/recipe.h and the row conversion is backend/host.h (the cpu kind's).
 *
 * The output matches llama.cpp's quantizer byte for byte for the same input and recipe
 * (no importance matrix): every key/value is copied in order, then
 * general.quantization_version (2, the block layouts we write) and general.file_type (the
 * recipe's) are set at the end, where llama.cpp puts them; tensors keep their names and
 * shapes and are written in llama.cpp's order (tensors outside the blocks first, then block
 * by block, by name within each group). Each tensor is dequantized to float and requantized
 * row by row, so any type we can read is accepted as input; requantizing an already
 * quantized model loses more precision than starting from F32/F16/BF16 (the stats count such
 * tensors, and strata_quantize_inspect tells a caller beforehand).
 *
 * The output is written atomically by the GGUF writer (temporary file next to it, fsync,
 * rename): a failure or a cancel leaves no file at `out`. The converted tensors are held in
 * memory until the file is written.
 *
 * Thread-safety: the functions keep no global state; calls on different files may run at the
 * same time. */
#ifndef STRATA_QUANTIZE_QUANTIZE_H
#define STRATA_QUANTIZE_QUANTIZE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/status.h"
#include "tensor/type.h"

/* What a progress callback is told after each tensor. */
typedef struct {
    int64_t done;         /* tensors finished, 1..n_tensors */
    int64_t n_tensors;
    const char *name;     /* the tensor just finished (valid during the call only) */
    strata_type from, to; /* its type in the input and in the output */
    uint64_t bytes_done;  /* input tensor bytes finished so far */
    uint64_t bytes_total; /* input tensor bytes in all */
} strata_quantize_progress;

/* Called on the calling thread after each tensor; returning false cancels
 * (STRATA_ERR_CANCELLED, no output written). */
typedef bool (*strata_quantize_progress_fn)(void *user, const strata_quantize_progress *p);

typedef struct {
    int n_threads;                       /* threads converting rows; <= 0: every CPU this process may use */
    strata_quantize_progress_fn progress; /* may be NULL */
    void *user;                          /* passed to progress */
    /* May be NULL. Checked between tensors: once true (set from any thread), the call stops
     * with STRATA_ERR_CANCELLED and writes no output. Not owned; must outlive the call. */
    const atomic_bool *cancel;
} strata_quantize_params;

/* Filled by strata_quantize_file when the caller asks for it. */
typedef struct {
    int64_t n_tensors;
    int64_t n_converted;   /* tensors whose type changed */
    int64_t n_requantized; /* of those, tensors that were already of a quantized type */
    uint64_t bytes_in;     /* tensor data bytes read */
    uint64_t bytes_out;    /* tensor data bytes written */
    char file_type[16];    /* the recipe's canonical name, e.g. "Q4_K_M" */
} strata_quantize_stats;

strata_quantize_params strata_quantize_default_params(void);

/* Writes `out` with the weights of the GGUF file `in` quantized to the recipe `type_name`
 * (case-insensitive; strata_quantize_type_names lists them). p may be NULL (defaults);
 * stats may be NULL. Errors: STRATA_ERR_INVALID for an unknown type (the message lists the
 * supported ones), the reader's status for an unreadable input, STRATA_ERR_UNSUPPORTED for a
 * tensor whose type cannot be converted, STRATA_ERR_CANCELLED, STRATA_ERR_NOMEM, STRATA_ERR_IO. */
strata_status strata_quantize_file(const char *in, const char *out, const char *type_name,
                                   const strata_quantize_params *p, strata_quantize_stats *stats);

/* The supported type names, comma-separated (static storage). */
const char *strata_quantize_type_names(void);
/* True when type_name is a supported type; canon (may be NULL, cap >= 16) gets its canonical
 * spelling ("q4_k_m" -> "Q4_K_M"). */
bool strata_quantize_type_known(const char *type_name, char *canon, size_t cap);

/* What a file is made of, to decide whether quantizing it makes sense. */
typedef struct {
    /* "F32", "F16" or "BF16" for an unquantized file (F16/BF16 when its matrices are, F32
     * otherwise); for a quantized one the type of its first quantized tensor, e.g. "Q8_0". */
    char file_type[16];
    bool quantized;          /* some tensor has a quantized (block) type */
    char first_quantized[96]; /* name of that tensor ("" when none) */
} strata_quantize_source;

/* Reads the header of the GGUF file at path (no tensor data is read). */
strata_status strata_quantize_inspect(const char *path, strata_quantize_source *out);

#endif
