/* `strata quantize IN.gguf OUT.gguf TYPE [--threads N]`: writes a copy of a model with its
 * weights converted to a quantization recipe (Q4_K_M, Q8_0, ...). The work is
 * strata_quantize_file (quantize/quantize.h), shared with the server's /api/create; this file
 * only parses arguments and prints progress. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/util.h"
#include "core/status.h"
#include "quantize/quantize.h"

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
            strata_quantize_type_names());
}

static bool print_tensor(void *user, const strata_quantize_progress *p) {
    (void)user;
    fprintf(stderr, "[%4lld/%4lld] %-32s %-6s -> %s\n", (long long)p->done, (long long)p->n_tensors, p->name,
            strata_type_name(p->from), strata_type_name(p->to));
    return true;
}

int cmd_quantize(int argc, char **argv) {
    const char *pos[3];
    int npos = 0, quiet = 0;
    strata_quantize_params params = strata_quantize_default_params();
    for (int i = 1; i < argc; i++) {
        if (cli_is_help(argv[i])) {
            usage(stdout);
            return 0;
        } else if ((cli_opt_is(argv[i], "threads") || cli_opt_is(argv[i], "num_thread") || !strcmp(argv[i], "-t")) &&
                   i + 1 < argc) {
            params.n_threads = atoi(argv[++i]);
            if (params.n_threads < 1) return cli_error("quantize: --threads needs a positive number");
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
    if (!strata_quantize_type_known(pos[2], NULL, 0))
        return cli_error("quantize: unknown type %s (known: %s)", pos[2], strata_quantize_type_names());
    if (!quiet) params.progress = print_tensor;

    strata_quantize_stats stats;
    if (strata_quantize_file(pos[0], pos[1], pos[2], &params, &stats) != STRATA_OK)
        return cli_error("quantize: %s", strata_last_error());
    if (stats.n_requantized && !quiet)
        fprintf(stderr, "strata: note: %lld tensors were already quantized; requantizing them adds error\n",
                (long long)stats.n_requantized);
    fprintf(stderr, "quantized %s -> %s (%s): %.2f MiB -> %.2f MiB\n", pos[0], pos[1], stats.file_type,
            stats.bytes_in / 1048576.0, stats.bytes_out / 1048576.0);
    return 0;
}
