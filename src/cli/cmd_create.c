/* `strata create NAME [-f Modelfile] [--quantize TYPE]`: creates a model in the server's store
 * (POST /api/create). The Modelfile is read and checked here; a FROM that names a file (relative
 * to the Modelfile's folder, ~ for the home folder) is sent as an absolute path, since the server
 * runs on this machine and imports the file itself. The request carries the Modelfile text (with
 * that path) and the same content as Ollama's structured fields (from, template, system,
 * parameters, messages, license). Progress goes to stderr. */
#include <cJSON.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli/cli.h"
#include "cli/remote.h"
#include "cli/util.h"
#include "store/modelfile.h"

static const char usage[] =
    "Usage: strata create NAME [-f Modelfile] [--quantize TYPE]\n"
    "\n"
    "Creates (or replaces) the model NAME in the store of the server at $STRATA_HOST from a\n"
    "Modelfile (default ./Modelfile): FROM a .gguf file or an existing model, PARAMETER,\n"
    "TEMPLATE, SYSTEM, MESSAGE, LICENSE. --quantize (-q) TYPE writes the weights as TYPE\n"
    "(e.g. Q4_K_M, Q8_0).\n";

static char *read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    while (buf) {
        if (n + 1 >= cap) {
            char *nb = realloc(buf, cap *= 2);
            if (!nb) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = nb;
        }
        size_t r = fread(buf + n, 1, cap - n - 1, f);
        n += r;
        if (r == 0) break;
    }
    if (buf && ferror(f)) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    if (buf) {
        buf[n] = 0;
        *len = n;
    }
    return buf;
}

/* FROM as a file path when it names an existing file, made absolute; NULL otherwise (a model
 * name). Malloc'd. */
static char *resolve_from(const char *from, const char *modelfile_path) {
    char path[PATH_MAX];
    const char *home = getenv("HOME");
    if ((strcmp(from, "~") == 0 || strncmp(from, "~/", 2) == 0) && home) {
        snprintf(path, sizeof path, "%s%s", home, from + 1);
    } else if (from[0] == '/') {
        snprintf(path, sizeof path, "%s", from);
    } else {
        const char *slash = strrchr(modelfile_path, '/');
        if (slash)
            snprintf(path, sizeof path, "%.*s/%s", (int)(slash - modelfile_path), modelfile_path, from);
        else
            snprintf(path, sizeof path, "%s", from);
    }
    struct stat sb;
    if (stat(path, &sb) != 0 || !S_ISREG(sb.st_mode)) return NULL;
    char abs[PATH_MAX];
    if (!realpath(path, abs)) return NULL;
    return strdup(abs);
}

static bool add_json_text(cJSON *obj, const char *key, const char *json) {
    cJSON *v = json ? cJSON_Parse(json) : NULL;
    if (!v) return false;
    cJSON_AddItemToObject(obj, key, v);
    return true;
}

int cmd_create(int argc, char **argv) {
    const char *name = NULL, *file = "Modelfile", *quantize = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (cli_is_help(a)) {
            fputs(usage, stdout);
            return 0;
        }
        if (strcmp(a, "-f") == 0 || cli_opt_is(a, "file")) {
            if (++i == argc) return cli_error("create: %s needs a file", a);
            file = argv[i];
        } else if (strcmp(a, "-q") == 0 || cli_opt_is(a, "quantize")) {
            if (++i == argc) return cli_error("create: %s needs a type", a);
            quantize = argv[i];
        } else if (a[0] == '-') {
            return cli_error("create: unknown option '%s' (see 'strata create --help')", a);
        } else if (name) {
            return cli_error("create: expected one NAME, got '%s' and '%s'", name, a);
        } else {
            name = a;
        }
    }
    if (!name) return cli_error("create: missing NAME (usage: strata create NAME -f Modelfile)");
    size_t len = 0;
    char *text = read_file(file, &len);
    if (!text) return cli_error("create: cannot read %s: %m", file);
    strata_modelfile *mf = NULL;
    strata_status st = strata_modelfile_parse(text, len, &mf);
    free(text);
    if (st != STRATA_OK) return cli_error("%s: %s", file, strata_last_error());
    char *abs = resolve_from(mf->from, file);
    if (abs && strata_modelfile_set_string(&mf->from, abs) != STRATA_OK) {
        free(abs);
        strata_modelfile_free(mf);
        return cli_error("out of memory");
    }
    free(abs);
    char *mf_text = NULL, *params = NULL, *messages = NULL;
    if (strata_modelfile_format(mf, &mf_text) != STRATA_OK || strata_modelfile_params_to_json(mf, &params) != STRATA_OK ||
        strata_modelfile_messages_to_json(mf, &messages) != STRATA_OK) {
        free(mf_text);
        free(params);
        strata_modelfile_free(mf);
        return cli_error("%s: %s", file, strata_last_error());
    }
    cJSON *req = cJSON_CreateObject();
    cJSON_AddStringToObject(req, "model", name);
    cJSON_AddStringToObject(req, "modelfile", mf_text);
    cJSON_AddStringToObject(req, "from", mf->from);
    if (mf->template_text) cJSON_AddStringToObject(req, "template", mf->template_text);
    if (mf->system) cJSON_AddStringToObject(req, "system", mf->system);
    if (mf->n_params) add_json_text(req, "parameters", params);
    if (mf->n_messages) add_json_text(req, "messages", messages);
    if (mf->n_licenses) {
        cJSON *lic = cJSON_AddArrayToObject(req, "license");
        for (size_t i = 0; i < mf->n_licenses; i++) cJSON_AddItemToArray(lic, cJSON_CreateString(mf->licenses[i]));
    }
    if (quantize) cJSON_AddStringToObject(req, "quantize", quantize);
    cJSON_AddBoolToObject(req, "stream", true);
    free(mf_text);
    free(params);
    free(messages);
    strata_modelfile_free(mf);

    strata_client *c;
    if (remote_open(&c)) {
        cJSON_Delete(req);
        return 1;
    }
    remote_progress p;
    remote_progress_init(&p);
    remote_progress_update(&p, "transferring model data", 0, 0);
    strata_client_set_tick(c, remote_progress_tick, &p);
    st = strata_client_stream(c, "POST", "/api/create", req, remote_progress_line, &p);
    remote_progress_done(&p);
    cJSON_Delete(req);
    strata_client_free(c);
    if (st != STRATA_OK) return cli_error("%s", strata_last_error());
    return 0;
}
