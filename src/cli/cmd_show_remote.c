/* `strata show MODEL` for a model in the server's store (POST /api/show): Ollama's summary
 * (Model, Parameters, System, License), or one part with --modelfile, --parameters,
 * --template, --system or --license. `strata show FILE.gguf` (an existing
 * file) stays cmd_show.c's: cmd_show_dispatch decides. */
#include <cJSON.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/remote.h"
#include "cli/util.h"

static const char usage[] =
    "Usage: strata show MODEL [--modelfile | --parameters | --template | --system | --license]\n"
    "\n"
    "For a model of the server at $STRATA_HOST: its architecture, size, context and embedding\n"
    "length, quantization, parameters, system prompt and license; or only its Modelfile,\n"
    "parameters, template, system prompt or license. For a .gguf file:\n\n";

static const char *str(const cJSON *o, const char *key) {
    return cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, key));
}

/* A number as Go's strconv.FormatFloat(v, 'f', -1, 64) prints an integral value. */
static void num_text(const cJSON *v, char *buf, size_t cap) {
    if (cJSON_IsNumber(v))
        snprintf(buf, cap, "%.0f", v->valuedouble);
    else
        snprintf(buf, cap, "%s", cJSON_IsString(v) ? v->valuestring : "");
}

/* A section header and a two-column block indented under it, as Ollama's showInfo. */
static void section_begin(const char *title) { printf("  %s\n", title); }

static void print_text_block(const char *title, const char *text) {
    if (!text || !*text) return;
    section_begin(title);
    /* Each line of the text indented, at most the first few lines as Ollama trims them. */
    const char *p = text;
    int lines = 0;
    while (*p && lines < 10) {
        size_t n = strcspn(p, "\n");
        printf("    %.*s\n", (int)n, p);
        p += n;
        if (*p == '\n') p++;
        lines++;
    }
    if (*p) printf("    ...\n");
    printf("\n");
}

void remote_show_info(const cJSON *r) {
    const cJSON *info = cJSON_GetObjectItemCaseSensitive(r, "model_info");
    const cJSON *details = cJSON_GetObjectItemCaseSensitive(r, "details");
    const char *arch = str(info, "general.architecture");
    if (!arch) arch = str(details, "family");
    remote_table t;
    remote_table_init(&t, 3);
    char buf[64], key[160];
    if (arch) {
        const char *row[] = {"", "architecture", arch};
        remote_table_add(&t, row);
    }
    const char *params = str(details, "parameter_size");
    const cJSON *pc = cJSON_GetObjectItemCaseSensitive(info, "general.parameter_count");
    if (!params && cJSON_IsNumber(pc)) {
        cli_format_count((uint64_t)pc->valuedouble, buf, sizeof buf);
        params = buf;
    }
    if (params) {
        const char *row[] = {"", "parameters", params};
        remote_table_add(&t, row);
    }
    static const char *const lengths[][2] = {{"context_length", "context length"},
                                             {"embedding_length", "embedding length"}};
    for (size_t i = 0; arch && i < 2; i++) {
        snprintf(key, sizeof key, "%s.%s", arch, lengths[i][0]);
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(info, key);
        if (!v) continue;
        char val[64];
        num_text(v, val, sizeof val);
        const char *row[] = {"", lengths[i][1], val};
        remote_table_add(&t, row);
    }
    const char *q = str(details, "quantization_level");
    if (q) {
        const char *row[] = {"", "quantization", q};
        remote_table_add(&t, row);
    }
    section_begin("Model");
    remote_table_print(&t, "");
    printf("\n");

    const cJSON *caps = cJSON_GetObjectItemCaseSensitive(r, "capabilities");
    if (cJSON_GetArraySize(caps) > 0) {
        section_begin("Capabilities");
        const cJSON *cap;
        cJSON_ArrayForEach(cap, caps) if (cJSON_IsString(cap)) printf("    %s\n", cap->valuestring);
        printf("\n");
    }

    const char *p = str(r, "parameters");
    if (p && *p) {
        section_begin("Parameters");
        remote_table_init(&t, 3);
        /* "name value" lines, the value separated by blanks. */
        while (*p) {
            size_t n = strcspn(p, "\n");
            char line[1024];
            snprintf(line, sizeof line, "%.*s", (int)(n < sizeof line ? n : sizeof line - 1), p);
            char *sp = line + strcspn(line, " \t");
            const char *value = "";
            if (*sp) {
                *sp++ = 0;
                value = sp + strspn(sp, " \t");
            }
            if (line[0]) {
                const char *row[] = {"", line, value};
                remote_table_add(&t, row);
            }
            p += n;
            if (*p == '\n') p++;
        }
        remote_table_print(&t, "");
        printf("\n");
    }
    print_text_block("System", str(r, "system"));
    const cJSON *lic = cJSON_GetObjectItemCaseSensitive(r, "license");
    print_text_block("License", cJSON_IsString(lic) ? lic->valuestring
                                : cJSON_IsArray(lic) ? cJSON_GetStringValue(cJSON_GetArrayItem(lic, 0))
                                                     : NULL);
}

int cmd_show_dispatch(int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        if (cli_is_help(argv[i])) {
            fputs(usage, stdout);
            return -1; /* the .gguf usage follows */
        }
    }
    /* The first argument that is not an option: a file (or what can only be a file path) is
     * shown from its header by cmd_show, which also reports a missing argument. */
    int first = 0;
    for (int i = 1; i < argc && !first; i++)
        if (!(argv[i][0] == '-' && argv[i][1])) first = i;
    if (!first || remote_arg_is_path(argv[first])) return -1;
    const char *model = NULL, *part = NULL;
    static const char *const parts[] = {"modelfile", "parameters", "template", "system", "license"};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        bool matched = false;
        for (size_t k = 0; k < sizeof parts / sizeof parts[0]; k++) {
            if (!cli_opt_is(a, parts[k])) continue;
            if (part && strcmp(part, parts[k]) != 0)
                return cli_error("only one of '--license', '--modelfile', '--parameters', '--system', or "
                                 "'--template' can be specified");
            part = parts[k];
            matched = true;
        }
        if (matched) continue;
        if (cli_opt_is(a, "tensors") || cli_opt_is(a, "json"))
            return cli_error("show: %s is for .gguf files; '%s' is not a file (for a model of the server, "
                             "see 'strata show --help')", a, model ? model : "MODEL");
        if (a[0] == '-') return cli_error("show: unknown option '%s' (see 'strata show --help')", a);
        if (model) return cli_error("show: expected one MODEL, got '%s' and '%s'", model, a);
        model = a;
    }
    if (!model) return cli_error("show: missing MODEL (usage: strata show MODEL)");
    strata_client *c;
    if (remote_open(&c)) return 1;
    cJSON *req = cJSON_CreateObject();
    cJSON_AddStringToObject(req, "model", model);
    cJSON *resp = NULL;
    strata_status st = strata_client_call(c, "POST", "/api/show", req, &resp);
    cJSON_Delete(req);
    strata_client_free(c);
    if (st != STRATA_OK) return cli_error("%s", strata_last_error());
    if (!part) {
        remote_show_info(resp);
    } else {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(resp, part);
        const char *text = cJSON_GetStringValue(v);
        if (!text && cJSON_IsArray(v)) text = cJSON_GetStringValue(cJSON_GetArrayItem(v, 0));
        if (!text) text = "";
        /* As Ollama: --system and --template print the text as it is, the others add a newline. */
        if (strcmp(part, "system") == 0 || strcmp(part, "template") == 0)
            fputs(text, stdout);
        else
            puts(text);
    }
    cJSON_Delete(resp);
    return 0;
}
