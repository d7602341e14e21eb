/* `strata run FILE.gguf [PROMPT...]`: loads the model in-process and generates.
 * Only the generated text goes to stdout, streamed; logs and statistics go to stderr.
 * Owns the table of model options as the command line spells them (Ollama's names, with
 * '_' or '-') and the Ollama-style statistics block of --verbose. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/run_options.h"
#include "cli/util.h"
#include "runtime/generate.h"

static const char usage[] =
    "Usage: strata run FILE.gguf [PROMPT...] [options]\n"
    "\n"
    "Generates a continuation of PROMPT (the arguments joined by spaces, or standard input\n"
    "when there are none). Only the generated text is written to stdout, as it is produced;\n"
    "logs go to stderr. Options (Ollama's names; '_' and '-' are interchangeable):\n"
    "  --temperature F      0 = greedy (default 0.8)\n"
    "  --top_k N            (default 40; 0 disables)\n"
    "  --top_p F            (default 0.9)\n"
    "  --min_p F            (default 0)\n"
    "  --typical_p F        (default 1 = off)\n"
    "  --repeat_penalty F   (default 1.1)\n"
    "  --repeat_last_n N    penalty window (default 64; -1 = num_ctx; 0 = off)\n"
    "  --presence_penalty F (default 0)\n"
    "  --frequency_penalty F (default 0)\n"
    "  --seed N             (default: random)\n"
    "  --stop TEXT          stop sequence, repeatable\n"
    "  --num_predict N      tokens to generate at most (default -1 = until end of text)\n"
    "  --num_keep N         tokens kept at the start when the context overflows (default 4)\n"
    "  --num_ctx N          context length (default 4096, capped by the model's)\n"
    "  --num_batch N        prompt tokens per forward pass (default 512)\n"
    "  --num_thread N       threads (default: physical cores this process may use)\n"
    "  --kv_type T          KV cache type: f16 (default), f32, q8_0\n"
    "  --verbose            per device (after allocation) and timing statistics on stderr\n"
    "Placement (see `strata plan`; the loader allocates exactly what the plan says):\n"
    "  --devices SPEC       devices, e.g. sim:12GiB:360:RTX3060,sim:6GiB:288:A2000 (env\n"
    "                       STRATA_DEVICES; the cpu is always there)\n"
    "  --reserve R          kept free per GPU: SIZE or NAME=SIZE,... (default 256MiB; env\n"
    "                       STRATA_GPU_RESERVE)\n"
    "  --num_gpu N          exactly N layers on GPUs, or refused with the largest N that fits\n"
    "                       (-1 = auto, the default)\n"
    "  --main_gpu K         the GPU (0-based) holding the output layer\n"
    "  --tensor_split A,B   deal layers to the GPUs in these proportions\n"
    "  --spread | --fewest  use every GPU, or the fewest that hold the model (default)\n"
    "  --num_parallel N     sequences the KV cache is sized for (default 1)\n"
    "  --num_cpu_moe N      mixtures of experts: keep the experts of blocks 0..N-1 on the CPU\n"
    "                       (default: the planner chooses)\n"
    "\n"
    "When the conversation outgrows num_ctx, a too-long prompt keeps its first num_keep and\n"
    "its most recent tokens, and generation shifts the context (drops the older half after\n"
    "the first num_keep tokens and continues).\n";

static bool emit_stdout(void *user, const char *text, size_t len) {
    (void)user;
    fwrite(text, 1, len, stdout);
    fflush(stdout);
    return !ferror(stdout);
}

/* Go's time.Duration formatting, as Ollama's statistics print it ("1.234s", "12.5ms"). */
static void format_duration(int64_t ns, char *buf, size_t cap) {
    const char *unit;
    double v;
    if (ns < 1000) {
        snprintf(buf, cap, "%lldns", (long long)ns);
        return;
    }
    if (ns < 1000000) {
        v = ns / 1e3;
        unit = "µs";
    } else if (ns < 1000000000) {
        v = ns / 1e6;
        unit = "ms";
    } else {
        v = ns / 1e9;
        unit = "s";
    }
    char num[64];
    snprintf(num, sizeof num, "%.6f", v);
    char *end = num + strlen(num) - 1;
    while (*end == '0') *end-- = 0;
    if (*end == '.') *end = 0;
    snprintf(buf, cap, "%s%s", num, unit);
}

void run_print_stats(const strata_gen_stats *s, int64_t load_ns, int64_t total_ns) {
    char b[64];
    format_duration(total_ns, b, sizeof b);
    fprintf(stderr, "total duration:       %s\n", b);
    format_duration(load_ns, b, sizeof b);
    fprintf(stderr, "load duration:        %s\n", b);
    fprintf(stderr, "prompt eval count:    %d token(s)\n", s->prompt_tokens);
    format_duration(s->prompt_ns, b, sizeof b);
    fprintf(stderr, "prompt eval duration: %s\n", b);
    fprintf(stderr, "prompt eval rate:     %.2f tokens/s\n",
            s->prompt_ns > 0 ? s->prompt_tokens / (s->prompt_ns / 1e9) : 0.0);
    fprintf(stderr, "eval count:           %d token(s)\n", s->gen_tokens);
    format_duration(s->gen_ns, b, sizeof b);
    fprintf(stderr, "eval duration:        %s\n", b);
    fprintf(stderr, "eval rate:            %.2f tokens/s\n", s->gen_ns > 0 ? s->gen_tokens / (s->gen_ns / 1e9) : 0.0);
}

static char *read_stdin(size_t *len) {
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    if (!buf) return NULL;
    for (;;) {
        if (n == cap) {
            char *nb = realloc(buf, cap *= 2);
            if (!nb) {
                free(buf);
                return NULL;
            }
            buf = nb;
        }
        size_t r = fread(buf + n, 1, cap - n, stdin);
        n += r;
        if (r == 0) break;
    }
    *len = n;
    return buf;
}

int cmd_run(int argc, char **argv) {
    /* A model name runs through the server (cmd_run_remote.c); a .gguf file too when a server
     * serves it, otherwise it runs here. */
    int remote = cmd_run_dispatch(argc, argv);
    if (remote >= 0) return remote;
    run_options o;
    run_options_init(&o);
    const char *file = NULL;
    size_t prompt_cap = 1, prompt_len = 0;
    for (int i = 1; i < argc; i++) prompt_cap += strlen(argv[i]) + 1;
    char *prompt = calloc(prompt_cap, 1);
    if (!prompt) return cli_error("out of memory");
    int n_words = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (cli_is_help(a)) {
            fputs(usage, stdout);
            free(prompt);
            return 0;
        }
        if (a[0] == '-' && a[1] == '-') {
            int used = run_options_parse(&o, argc - i, argv + i);
            if (used < 0) {
                free(prompt);
                return 1;
            }
            i += used - 1;
            continue;
        }
        if (!file) {
            file = a;
            continue;
        }
        if (n_words++) prompt[prompt_len++] = ' ';
        memcpy(prompt + prompt_len, a, strlen(a));
        prompt_len += strlen(a);
    }
    if (!file) {
        free(prompt);
        fputs(usage, stderr);
        return cli_error("missing model file");
    }
    if (n_words == 0) {
        free(prompt);
        prompt = read_stdin(&prompt_len);
        if (!prompt) return cli_error("cannot read the prompt from standard input");
    }

    int64_t t0 = strata_now_ns();
    strata_engine *e = NULL;
    backend_inventory *inv = NULL;
    strata_status st = run_options_load(&o, file, true, &inv, &e);
    if (st != STRATA_OK) {
        free(prompt);
        return cli_error("%s: %s", file, strata_last_error());
    }
    strata_engine_info info;
    strata_engine_get_info(e, &info);
    if (o.verbose)
        fprintf(stderr, "strata: %s: %s, %d layers, num_ctx %d, num_batch %d, kv %s, %d threads, %d device(s)\n", file,
                info.arch, info.n_layer, info.n_ctx, info.n_batch, strata_type_name(info.kv_type), info.n_threads,
                info.n_devices);
    strata_gen_stats stats;
    st = strata_generate(e, prompt, prompt_len, &o.gen, emit_stdout, NULL, &stats);
    free(prompt);
    if (isatty(STDOUT_FILENO)) fputc('\n', stdout);
    fflush(stdout);
    int64_t total = strata_now_ns() - t0;
    int rc = 0;
    if (st != STRATA_OK) {
        rc = cli_error("%s", strata_last_error());
    } else {
        if (stats.prompt_truncated)
            fprintf(stderr, "strata: prompt truncated: dropped %d tokens to fit num_ctx %d\n", stats.prompt_truncated,
                    info.n_ctx);
        if (stats.context_shifts && o.verbose)
            fprintf(stderr, "strata: context shifted %d time(s)\n", stats.context_shifts);
        if (o.verbose) run_print_stats(&stats, info.load_ns, total);
    }
    strata_engine_free(e);
    backend_inventory_free(inv);
    return rc;
}
