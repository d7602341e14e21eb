/* A plan's device as JSON; see plan.h. */
#include <cJSON.h>

#include "core/json_util.h"
#include "planner/plan.h"

cJSON *plan_device_use_json(cJSON *arr, const char *name, backend_device_kind kind, const plan_device_use *u) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddItemToArray(arr, o);
    cJSON_AddStringToObject(o, "name", name);
    cJSON_AddStringToObject(o, "kind", backend_device_kind_name(kind));
    cJSON_AddNumberToObject(o, "layer_start", u->layer_start);
    cJSON_AddNumberToObject(o, "layer_end", u->layer_end);
    cJSON_AddNumberToObject(o, "layers", u->layer_end - u->layer_start);
    strata_json_add_u64(o, "weights_bytes", u->weights_bytes);
    strata_json_add_u64(o, "kv_bytes", u->kv_bytes);
    strata_json_add_u64(o, "compute_bytes", u->compute_bytes);
    return o;
}
