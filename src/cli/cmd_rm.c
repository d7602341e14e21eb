/* `strata rm MODEL...`: removes models from the server's store (DELETE /api/delete). */
#include <cJSON.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/remote.h"
#include "cli/util.h"

int cmd_rm(int argc, char **argv) {
    if (argc < 2 || cli_is_help(argv[1])) {
        fputs("Usage: strata rm MODEL [MODEL...]\n\nRemoves models from the server's store.\n", argc < 2 ? stderr : stdout);
        return argc < 2 ? cli_error("rm: missing MODEL") : 0;
    }
    strata_client *c;
    if (remote_open(&c)) return 1;
    int rc = 0;
    for (int i = 1; i < argc && rc == 0; i++) {
        cJSON *req = cJSON_CreateObject();
        cJSON_AddStringToObject(req, "model", argv[i]);
        strata_status st = strata_client_call(c, "DELETE", "/api/delete", req, NULL);
        cJSON_Delete(req);
        if (st != STRATA_OK)
            rc = cli_error("%s", strata_last_error());
        else
            printf("deleted '%s'\n", argv[i]);
    }
    strata_client_free(c);
    return rc;
}
