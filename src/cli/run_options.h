/* Model options on the command line (`--temperature 0`, `--num-ctx 2048`, ...), as one table
 * shared by the commands that run a model. Names are Ollama's; '-' and '_' are the same. */
#ifndef STRATA_CLI_RUN_OPTIONS_H
#define STRATA_CLI_RUN_OPTIONS_H

#include <stdbool.h>

#include "backend/device.h"
#include "model/model.h"
#include "planner/plan.h"
#include "runtime/generate.h"

typedef struct {
    model_params model;
    strata_gen_params gen;
    bool verbose;
    /* Placement (planner/plan.h): --devices SPEC (else env STRATA_DEVICES, else discovery),
     * --reserve (else env STRATA_GPU_RESERVE), --num_gpu, --main_gpu, --tensor_split,
     * --spread / --fewest, --num_parallel. */
    const char *devices;
    const char *reserve;
    plan_options plan;
    int32_t num_cpu_moe; /* --num_cpu_moe N: experts of blocks [0, N) on the CPU; -1: the planner chooses */
    int32_t num_parallel;
} run_options;

void run_options_init(run_options *o);

/* Builds the inventory from the options (and environment) and loads `file` per plan
 * (strata_engine_load_planned). With o->verbose, logs the measured per-device figures on
 * stderr. On success the caller frees *e, then *inv. `need_vocab` false skips the
 * tokenizer (bench). On failure returns the status with strata_last_error() set; nothing is
 * left allocated. */
strata_status run_options_load(const run_options *o, const char *file, bool need_vocab, backend_inventory **inv,
                               strata_engine **e);

/* Parses the option at argv[0] (with its value at argv[1] when it takes one). Returns the
 * number of arguments used, or -1 after printing an error naming the option. */
int run_options_parse(run_options *o, int argc, char **argv);

/* Prints Ollama's statistics block on stderr. */
void run_print_stats(const strata_gen_stats *s, int64_t load_ns, int64_t total_ns);

#endif
