/* Helpers shared by the `strata` sub-commands: human-readable numbers, option matching and
 * JSON printing. Nothing here knows about any one command. */
#ifndef STRATA_CLI_UTIL_H
#define STRATA_CLI_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct cJSON;

/* Formats a byte count with binary units: "512 B", "1.50 KiB", "12.00 GiB". Writes at most
 * cap bytes (always NUL-terminated when cap > 0); returns the length it needed, as snprintf. */
size_t cli_format_bytes(uint64_t bytes, char *buf, size_t cap);

/* Formats a count with decimal suffixes as model sizes are quoted: "999", "292.9K", "6.74B". */
size_t cli_format_count(uint64_t n, char *buf, size_t cap);

/* True for "-h" and "--help". */
bool cli_is_help(const char *arg);

/* True when `arg` is the long option `name` ("--" + name), treating '-' and '_' alike, so that
 * "--num-gpu" and "--num_gpu" both match "num_gpu" (Ollama's option names use '_'). */
bool cli_opt_is(const char *arg, const char *name);

/* Adds `v` to a JSON object as an exact integer; the CLI's name for strata_json_add_u64
 * (core/json_util.h), which says why. Returns false on ENOMEM. */
bool cli_json_add_u64(struct cJSON *obj, const char *key, uint64_t v);
/* The same for appending to a JSON array (strata_json_append_u64). */
bool cli_json_append_u64(struct cJSON *arr, uint64_t v);

/* Prints `obj` (formatted, newline-terminated) on stdout and deletes it. Returns 0, or reports
 * the failure through cli_error and returns 1. */
int cli_json_print(struct cJSON *obj);

#endif
