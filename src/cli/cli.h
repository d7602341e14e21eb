/* The `strata` command line: one file per sub-command (cli/cmd_*.c), dispatched by
 * cli/main.c. Each command returns the process exit status and prints its own errors as
 * one line on stderr, "strata: <what went wrong>". */
#ifndef STRATA_CLI_CLI_H
#define STRATA_CLI_CLI_H

int strata_cli_main(int argc, char **argv);

int cmd_show(int argc, char **argv);
int cmd_tokenize(int argc, char **argv);
int cmd_detokenize(int argc, char **argv);

/* Prints "strata: " + message + newline to stderr; returns 1 for `return cli_error(...)`. */
int cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
