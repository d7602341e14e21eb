/* What the commands that talk to `strata serve` share: opening the client, Ollama's human
 * formats (sizes, times, tables), progress display, and model options given on the command
 * line turned into the JSON "options" object of a request. */
#ifndef STRATA_CLI_REMOTE_H
#define STRATA_CLI_REMOTE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "client/client.h"

struct cJSON;

/* Opens a client for $STRATA_HOST. Returns 0, or prints the error and returns 1. */
int remote_open(strata_client **out);

/* GET `path` from $STRATA_HOST with a client of its own. Returns 0 with the answer in *out
 * (the caller deletes it), or prints the error and returns 1. */
int remote_get(const char *path, struct cJSON **out);

/* The "name" of one entry of a "models" array (/api/tags, /api/ps), or NULL when it has none
 * or, with a non-NULL prefix, when the name does not start with it. */
const char *remote_model_name(const struct cJSON *model, const char *prefix);

/* True when a MODEL argument means a file rather than a store name: an existing path, or
 * text that can only be a path (starts with '/', '.' or '~', or ends with ".gguf"). */
bool remote_arg_is_path(const char *arg);

/* Ollama's format.HumanBytes: decimal units, "4.7 GB", "12 MB", "512 B". */
void remote_human_bytes(int64_t bytes, char *buf, size_t cap);
/* Ollama's format.HumanTime: "4 minutes from now", "2 days ago", "Forever"; `zero` when
 * the time is unset. now is the current Unix time. */
void remote_human_time(double t, bool is_zero, double now, const char *zero, char *buf, size_t cap);
/* Parses an RFC 3339 time ("2024-06-04T14:38:31.83753-07:00") to Unix seconds. Go's zero time
 * ("0001-01-01T00:00:00Z") sets *is_zero. Returns false when the text is not such a time. */
bool remote_parse_time(const char *text, double *out, bool *is_zero);

/* The short model ID Ollama shows: the first 12 hex digits of a digest ("sha256:" dropped). */
void remote_short_id(const char *digest, char out[13]);

/* A table printed as Ollama's CLI prints them: left-aligned columns, each padded to its widest
 * cell and separated by four spaces. Cells are copied. */
typedef struct {
    size_t n_cols;
    char **cells; /* row-major, the header first */
    size_t n_rows;
} remote_table;
void remote_table_init(remote_table *t, size_t n_cols);
/* Appends one row of n_cols strings. Returns false on ENOMEM. */
bool remote_table_add(remote_table *t, const char *const *row);
/* Prints the table (prefix before every line) and frees it. */
void remote_table_print(remote_table *t, const char *prefix);

/* Progress of pull/create/load: on a terminal (stderr) a bar or spinner redrawn in place,
 * otherwise one plain line per new status. */
typedef struct {
    bool tty;
    char status[256];
    bool line_open; /* a redrawn line is on screen */
    bool bar;       /* that line is a byte bar (not redrawn by ticks) */
    int spin;
    int64_t last_draw_ns;
} remote_progress;
void remote_progress_init(remote_progress *p);
/* Shows status (and done/total bytes when total > 0). */
void remote_progress_update(remote_progress *p, const char *status, uint64_t done, uint64_t total);
/* Redraws a spinner on the current status: a strata_client_tick_fn (user is the
 * remote_progress) that never cancels. */
bool remote_progress_tick(void *p);
/* Finishes the current line. */
void remote_progress_done(remote_progress *p);
/* An NDJSON line of /api/pull or /api/create ({status, digest, total, completed}) shown on p. */
bool remote_progress_line(void *p, const struct cJSON *line);

/* If argv[0] is `--NAME` for a model option the Modelfile table knows (num_ctx, temperature,
 * stop, ...; '-' and '_' alike), adds it, typed, to `options` and returns 2 (the option and its
 * value). Returns 0 when argv[0] is not such an option, -1 after printing an error (nothing
 * printed when quiet). */
int remote_parse_model_option(struct cJSON *options, int argc, char **argv, bool quiet);
/* Adds NAME=VALUE to options, typed by the table (stop values accumulate into an array).
 * Returns false with strata_last_error() set. */
bool remote_set_option(struct cJSON *options, const char *name, const char *value);

/* Prints Ollama's --verbose statistics block on stderr from a final generate/chat answer
 * (total_duration, load_duration, prompt_eval_*, eval_*, in ns). */
void remote_print_stats(const struct cJSON *final);

/* Prints an /api/show answer as `strata show MODEL` does (Model, Parameters, System, License). */
void remote_show_info(const struct cJSON *show);

/* Ctrl-C during a request: remote_sigint_arm() installs a handler that records the signal;
 * remote_sigint_tick is a strata_client_tick_fn that cancels the request once it fired. */
void remote_sigint_arm(void);
void remote_sigint_disarm(void);
bool remote_sigint_fired(void);
bool remote_sigint_tick(void *user);

#endif
