/* `strata pull URL-or-NAME`: asks the server to download a model into its store (POST
 * /api/pull), showing its progress on stderr: a bar per file on a terminal, plain lines
 * otherwise. */
#include <cJSON.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/remote.h"
#include "cli/util.h"

static const char usage[] =
    "Usage: strata pull URL|MODEL\n"
    "\n"
    "Has the server at $STRATA_HOST download a model into its store: an http(s) URL of a GGUF\n"
    "file, or a model name the server knows how to fetch.\n";

/* Pull progress lines name the file they are about by digest: the bar is labelled with it. */
static bool on_line(void *user, const cJSON *line) {
    remote_progress *p = user;
    const char *status = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(line, "status"));
    const char *digest = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(line, "digest"));
    const cJSON *total = cJSON_GetObjectItemCaseSensitive(line, "total");
    const cJSON *done = cJSON_GetObjectItemCaseSensitive(line, "completed");
    if (!status) return true;
    char label[300];
    if (digest && strncmp(digest, "sha256:", 7) == 0 && strlen(digest) >= 19 && cJSON_IsNumber(total))
        snprintf(label, sizeof label, "pulling %.12s", digest + 7);
    else
        snprintf(label, sizeof label, "%s", status);
    remote_progress_update(p, label, cJSON_IsNumber(done) ? (uint64_t)done->valuedouble : 0,
                           cJSON_IsNumber(total) ? (uint64_t)total->valuedouble : 0);
    return true;
}

int cmd_pull(int argc, char **argv) {
    const char *what = NULL;
    bool insecure = false;
    for (int i = 1; i < argc; i++) {
        if (cli_is_help(argv[i])) {
            fputs(usage, stdout);
            return 0;
        }
        if (cli_opt_is(argv[i], "insecure")) {
            insecure = true;
            continue;
        }
        if (argv[i][0] == '-') return cli_error("pull: unknown option '%s' (see 'strata pull --help')", argv[i]);
        if (what) return cli_error("pull: expected one URL or MODEL");
        what = argv[i];
    }
    if (!what) return cli_error("pull: missing URL or MODEL (usage: strata pull URL|MODEL)");
    strata_client *c;
    if (remote_open(&c)) return 1;
    cJSON *req = cJSON_CreateObject();
    cJSON_AddStringToObject(req, "model", what);
    if (insecure) cJSON_AddBoolToObject(req, "insecure", true);
    cJSON_AddBoolToObject(req, "stream", true);
    remote_progress p;
    remote_progress_init(&p);
    remote_progress_update(&p, "pulling manifest", 0, 0);
    strata_client_set_tick(c, remote_progress_tick, &p);
    strata_status st = strata_client_stream(c, "POST", "/api/pull", req, on_line, &p);
    remote_progress_done(&p);
    cJSON_Delete(req);
    strata_client_free(c);
    if (st != STRATA_OK) return cli_error("%s", strata_last_error());
    return 0;
}
