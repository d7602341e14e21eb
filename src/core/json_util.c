/* See json_util.h. */
#include "core/json_util.h"

#include <cJSON.h>
#include <inttypes.h>
#include <stdio.h>

bool strata_json_add_u64(cJSON *obj, const char *key, uint64_t v) {
    char digits[24];
    snprintf(digits, sizeof digits, "%" PRIu64, v);
    return cJSON_AddRawToObject(obj, key, digits) != NULL;
}

bool strata_json_add_i64(cJSON *obj, const char *key, int64_t v) {
    char digits[24];
    snprintf(digits, sizeof digits, "%" PRId64, v);
    return cJSON_AddRawToObject(obj, key, digits) != NULL;
}

bool strata_json_append_u64(cJSON *arr, uint64_t v) {
    char digits[24];
    snprintf(digits, sizeof digits, "%" PRIu64, v);
    cJSON *item = cJSON_CreateRaw(digits);
    if (!item) return false;
    if (!cJSON_AddItemToArray(arr, item)) {
        cJSON_Delete(item);
        return false;
    }
    return true;
}
