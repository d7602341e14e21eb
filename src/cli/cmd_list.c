/* `strata list [PREFIX]`: the models in the server's store (GET /api/tags), as Ollama's
 * `list` prints them: NAME ID SIZE MODIFIED. */
#include <cJSON.h>
#include <stdio.h>
#include <time.h>

#include "cli/cli.h"
#include "cli/remote.h"
#include "cli/util.h"

static const char usage[] =
    "Usage: strata list [PREFIX]\n"
    "\n"
    "Lists the models of the server at $STRATA_HOST (default 127.0.0.1:11434): name, ID (the\n"
    "first 12 hex digits of the manifest digest), size and when it was last modified. With\n"
    "PREFIX, only the names that start with it.\n";

int cmd_list(int argc, char **argv) {
    const char *prefix = NULL;
    for (int i = 1; i < argc; i++) {
        if (cli_is_help(argv[i])) {
            fputs(usage, stdout);
            return 0;
        }
        if (argv[i][0] == '-') return cli_error("list: unknown option '%s' (see 'strata list --help')", argv[i]);
        if (prefix) return cli_error("list: expected at most one PREFIX");
        prefix = argv[i];
    }
    cJSON *resp;
    if (remote_get("/api/tags", &resp)) return 1;
    remote_table t;
    remote_table_init(&t, 4);
    const char *header[] = {"NAME", "ID", "SIZE", "MODIFIED"};
    remote_table_add(&t, header);
    double now = (double)time(NULL);
    const cJSON *m;
    cJSON_ArrayForEach(m, cJSON_GetObjectItemCaseSensitive(resp, "models")) {
        const char *name = remote_model_name(m, prefix);
        if (!name) continue;
        char id[13], size[32], mod[64];
        remote_short_id(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(m, "digest")), id);
        const cJSON *sz = cJSON_GetObjectItemCaseSensitive(m, "size");
        remote_human_bytes(cJSON_IsNumber(sz) ? (int64_t)sz->valuedouble : 0, size, sizeof size);
        double t_mod = 0;
        bool zero = true;
        if (!remote_parse_time(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(m, "modified_at")), &t_mod, &zero))
            zero = true;
        remote_human_time(t_mod, zero, now, "Never", mod, sizeof mod);
        const char *row[] = {name, id, size, mod};
        remote_table_add(&t, row);
    }
    remote_table_print(&t, "");
    cJSON_Delete(resp);
    return 0;
}
