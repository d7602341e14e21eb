/* The `strata` command line: one file per sub-command (cli/cmd_*.c), dispatched by
 * cli/main.c through its command table. Each command returns the process exit status and
 * prints its own errors as one line on stderr, "strata: <what went wrong>".
 *
 * A command is called with argv[0] set to its own name ("show"), argv[1..argc-1] its
 * arguments; it prints its usage on stdout and returns 0 when given -h/--help. */
#ifndef STRATA_CLI_CLI_H
#define STRATA_CLI_CLI_H

#define STRATA_VERSION "0.1.0"

int strata_cli_main(int argc, char **argv);

int cmd_show(int argc, char **argv);
int cmd_run(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_tokenize(int argc, char **argv);
int cmd_detokenize(int argc, char **argv);
int cmd_plan(int argc, char **argv);
int cmd_devices(int argc, char **argv);
int cmd_serve(int argc, char **argv);
/* Client commands (through `strata serve`; cli/remote.h). */
int cmd_ps(int argc, char **argv);
int cmd_list(int argc, char **argv);
int cmd_create(int argc, char **argv);
int cmd_pull(int argc, char **argv);
int cmd_cp(int argc, char **argv);
int cmd_rm(int argc, char **argv);
int cmd_stop(int argc, char **argv);
/* `run` and `show` with a model name go through the server; these return the exit status, or
 * -1 when the argument is a file to handle in-process (cmd_run, cmd_show go on). */
int cmd_run_dispatch(int argc, char **argv);
int cmd_show_dispatch(int argc, char **argv);
int cmd_quantize(int argc, char **argv);

/* Prints "strata: " + message + newline to stderr; returns 1 for `return cli_error(...)`.
 * Newlines inside the message are printed as spaces so a failure is always one line. */
int cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
