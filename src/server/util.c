/* See util.h. */
#include "server/util.h"

#include <cJSON.h>
#include <inttypes.h>
#include <stdio.h>

bool srv_json_add_u64(cJSON *obj, const char *key, uint64_t v) {
    char buf[32];
    snprintf(buf, sizeof buf, "%" PRIu64, v);
    return cJSON_AddRawToObject(obj, key, buf) != NULL;
}

bool srv_json_add_i64(cJSON *obj, const char *key, int64_t v) {
    char buf[32];
    snprintf(buf, sizeof buf, "%" PRId64, v);
    return cJSON_AddRawToObject(obj, key, buf) != NULL;
}
