/* Exact-integer helpers for cJSON, shared by the CLI, the server and the planner.
 *
 * cJSON stores numbers as doubles, which lose precision above 2^53; byte counts, offsets and
 * nanosecond times must print exactly, so these add the decimal digits as a raw JSON number.
 * The item added is owned by `obj`/`arr`, as with any cJSON_Add* call. */
#ifndef STRATA_CORE_JSON_UTIL_H
#define STRATA_CORE_JSON_UTIL_H

#include <stdbool.h>
#include <stdint.h>

struct cJSON;

/* Adds `v` under `key` to a JSON object. Returns false on ENOMEM (nothing is added). */
bool strata_json_add_u64(struct cJSON *obj, const char *key, uint64_t v);
bool strata_json_add_i64(struct cJSON *obj, const char *key, int64_t v);
/* Appends `v` to a JSON array. Returns false on ENOMEM (nothing is appended). */
bool strata_json_append_u64(struct cJSON *arr, uint64_t v);

#endif
