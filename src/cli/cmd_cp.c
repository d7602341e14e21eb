/* `strata cp SOURCE DESTINATION`: copies a model of the server's store (POST /api/copy). */
#include <cJSON.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/remote.h"
#include "cli/util.h"

int cmd_cp(int argc, char **argv) {
    if (argc == 2 && cli_is_help(argv[1])) {
        fputs("Usage: strata cp SOURCE DESTINATION\n\nCopies a model of the server's store under a new name.\n", stdout);
        return 0;
    }
    if (argc != 3) return cli_error("cp: expected SOURCE and DESTINATION (usage: strata cp SOURCE DESTINATION)");
    strata_client *c;
    if (remote_open(&c)) return 1;
    cJSON *req = cJSON_CreateObject();
    cJSON_AddStringToObject(req, "source", argv[1]);
    cJSON_AddStringToObject(req, "destination", argv[2]);
    strata_status st = strata_client_call(c, "POST", "/api/copy", req, NULL);
    cJSON_Delete(req);
    strata_client_free(c);
    if (st != STRATA_OK) return cli_error("%s", strata_last_error());
    printf("copied '%s' to '%s'\n", argv[1], argv[2]);
    return 0;
}
