/* libFuzzer target for what the server reads from a request body after JSON parsing: the
 * "options" object (every model option, with type and range checks) and "keep_alive"
 * (durations as strings or numbers). Any body must be applied or refused with a message,
 * and the resolved options must stay within their documented ranges. */
#include <cjson/cJSON.h>
#include <stdint.h>
#include <stdlib.h>

#include "server/internal.h"
#include "server/scheduler.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    cJSON *body = cJSON_ParseWithLength((const char *)data, size);
    if (!body) return 0;
    srv_options o;
    srv_options_init(&o);
    const cJSON *options = cJSON_GetObjectItemCaseSensitive(body, "options");
    if (srv_options_apply_json(&o, options ? options : body) != STRATA_OK &&
        strata_last_error()[0] == 0)
        abort(); /* a refusal must say why */
    if (o.gen.n_stop < 0 || o.gen.n_stop > STRATA_MAX_STOP) abort();
    int64_t ns;
    const cJSON *ka = cJSON_GetObjectItemCaseSensitive(body, "keep_alive");
    if (ka) (void)sched_parse_keep_alive(ka, &ns);
    srv_options_free(&o);
    cJSON_Delete(body);
    return 0;
}
