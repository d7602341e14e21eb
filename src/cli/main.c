/* `strata` entry point: the table of sub-commands, top-level help and version, and
 * cli_error. A new sub-command is one cmd_*.c file plus one line in `commands` below. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/util.h"

typedef struct {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *help; /* one line for `strata --help` */
} cli_command;

/* Kept in the order `strata --help` lists them. */
static const cli_command commands[] = {
    {"serve", cmd_serve, "Start the Ollama-compatible HTTP server (strata serve; STRATA_HOST, default 127.0.0.1:11434)"},
    {"run", cmd_run, "Run a model: through the server, or a .gguf file in-process (strata run MODEL [PROMPT])"},
    {"ps", cmd_ps, "List the models the server has loaded, and where (strata ps [--verbose])"},
    {"list", cmd_list, "List the models in the server's store"},
    {"create", cmd_create, "Create a model from a Modelfile (strata create NAME -f Modelfile)"},
    {"pull", cmd_pull, "Download a model into the server's store (strata pull URL)"},
    {"cp", cmd_cp, "Copy a model (strata cp SOURCE DESTINATION)"},
    {"rm", cmd_rm, "Remove models (strata rm MODEL...)"},
    {"stop", cmd_stop, "Unload a running model (strata stop MODEL)"},
    {"bench", cmd_bench, "Measure prompt and generation speed (strata bench FILE.gguf [-p 512] [-n 128])"},
    {"show", cmd_show, "Show a model of the server (strata show MODEL) or a GGUF file's architecture, sizes and tensors"},
    {"plan", cmd_plan, "Plan where each layer of a model goes across the devices (strata plan FILE.gguf)"},
    {"devices", cmd_devices, "List the devices and the memory and speed the planner sees"},
    {"tokenize", cmd_tokenize, "Print the token ids of a text (strata tokenize FILE.gguf TEXT)"},
    {"detokenize", cmd_detokenize, "Print the text of token ids (strata detokenize FILE.gguf ID...)"},
    {"quantize", cmd_quantize, "Write a quantized copy of a model (strata quantize IN.gguf OUT.gguf Q4_K_M)"},
};

#define N_COMMANDS (sizeof commands / sizeof commands[0])

int cli_error(const char *fmt, ...) {
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    /* Messages often quote file contents (keys, names); scripts rely on exactly one line. */
    for (char *p = msg; *p; p++) {
        if (*p == '\n' || *p == '\r') *p = ' ';
    }
    fprintf(stderr, "strata: %s\n", msg);
    return 1;
}

static void print_usage(FILE *out) {
    fprintf(out, "Usage: strata COMMAND [ARGS...]\n\nCommands:\n");
    for (size_t i = 0; i < N_COMMANDS; i++) {
        fprintf(out, "  %-12s %s\n", commands[i].name, commands[i].help);
    }
    fprintf(out, "  %-12s %s\n", "help", "Show this help, or a command's help (strata help COMMAND)");
    fprintf(out, "\nOptions:\n  -h, --help     Show this help\n  -v, --version  Show the version\n");
}

static const cli_command *find_command(const char *name) {
    for (size_t i = 0; i < N_COMMANDS; i++) {
        if (strcmp(commands[i].name, name) == 0) return &commands[i];
    }
    return NULL;
}

int strata_cli_main(int argc, char **argv) {
    if (argc < 2) {
        print_usage(stdout);
        return 0;
    }
    const char *name = argv[1];
    if (cli_is_help(name)) {
        print_usage(stdout);
        return 0;
    }
    if (strcmp(name, "--version") == 0 || strcmp(name, "-v") == 0 || strcmp(name, "version") == 0) {
        printf("strata version %s\n", STRATA_VERSION);
        return 0;
    }
    if (strcmp(name, "help") == 0) {
        if (argc < 3) {
            print_usage(stdout);
            return 0;
        }
        const cli_command *cmd = find_command(argv[2]);
        if (!cmd) return cli_error("unknown command '%s' (see 'strata --help')", argv[2]);
        char *help_argv[] = {argv[2], "--help", NULL};
        return cmd->run(2, help_argv);
    }
    const cli_command *cmd = find_command(name);
    if (!cmd) {
        if (name[0] == '-') return cli_error("unknown option '%s' (see 'strata --help')", name);
        return cli_error("unknown command '%s' (see 'strata --help')", name);
    }
    return cmd->run(argc - 1, argv + 1);
}
