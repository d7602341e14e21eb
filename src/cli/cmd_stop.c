/* `strata stop MODEL`: unloads a loaded model now (a generate request with keep_alive 0). */
#include <cJSON.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/remote.h"
#include "cli/util.h"

int cmd_stop(int argc, char **argv) {
    if (argc == 2 && cli_is_help(argv[1])) {
        fputs("Usage: strata stop MODEL\n\nUnloads a running model now (a request with keep_alive 0).\n", stdout);
        return 0;
    }
    if (argc != 2) return cli_error("stop: expected one MODEL (usage: strata stop MODEL)");
    strata_client *c;
    if (remote_open(&c)) return 1;
    /* As Ollama: stopping a model that is not loaded is an error, not a load-then-unload. */
    cJSON *ps = NULL;
    if (strata_client_call(c, "GET", "/api/ps", NULL, &ps) != STRATA_OK) {
        strata_client_free(c);
        return cli_error("%s", strata_last_error());
    }
    bool running = false;
    const cJSON *m;
    cJSON_ArrayForEach(m, cJSON_GetObjectItemCaseSensitive(ps, "models")) {
        const char *name = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(m, "name"));
        const char *model = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(m, "model"));
        size_t n = strlen(argv[1]);
        for (int k = 0; k < 2; k++) {
            const char *s = k ? model : name;
            /* "llama3" names "llama3:latest". */
            if (s && strncmp(s, argv[1], n) == 0 && (s[n] == 0 || (s[n] == ':' && strcmp(s + n, ":latest") == 0)))
                running = true;
        }
    }
    cJSON_Delete(ps);
    if (!running) {
        strata_client_free(c);
        return cli_error("couldn't find model \"%s\" to stop", argv[1]);
    }
    cJSON *req = cJSON_CreateObject();
    cJSON_AddStringToObject(req, "model", argv[1]);
    cJSON_AddNumberToObject(req, "keep_alive", 0);
    cJSON_AddBoolToObject(req, "stream", false);
    strata_status st = strata_client_call(c, "POST", "/api/generate", req, NULL);
    cJSON_Delete(req);
    strata_client_free(c);
    if (st != STRATA_OK) return cli_error("%s", strata_last_error());
    return 0;
}
