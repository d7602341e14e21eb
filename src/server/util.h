/* Small JSON helpers shared by the server's files. */
#ifndef STRATA_SERVER_UTIL_H
#define STRATA_SERVER_UTIL_H

#include <stdbool.h>
#include <stdint.h>

struct cJSON;

/* Adds an exact integer (cJSON's doubles lose precision above 2^53). */
bool srv_json_add_u64(struct cJSON *obj, const char *key, uint64_t v);
bool srv_json_add_i64(struct cJSON *obj, const char *key, int64_t v);

#endif
