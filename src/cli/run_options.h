/* Model options on the command line (`--temperature 0`, `--num-ctx 2048`, ...), as one table
 * shared by the commands that run a model. Names are Ollama's; '-' and '_' are the same. */
#ifndef STRATA_CLI_RUN_OPTIONS_H
#define STRATA_CLI_RUN_OPTIONS_H

#include <stdbool.h>

#include "model/model.h"
#include "runtime/generate.h"

typedef struct {
    model_params model;
    strata_gen_params gen;
    bool verbose;
} run_options;

void run_options_init(run_options *o);

/* Parses the option at argv[0] (with its value at argv[1] when it takes one). Returns the
 * number of arguments used, or -1 after printing an error naming the option. */
int run_options_parse(run_options *o, int argc, char **argv);

/* Prints Ollama's statistics block on stderr. */
void run_print_stats(const strata_gen_stats *s, int64_t load_ns, int64_t total_ns);

#endif
