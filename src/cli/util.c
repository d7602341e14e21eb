/* Shared CLI helpers; see util.h. */
#include "cli/util.h"

#include <cJSON.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "core/json_util.h"

size_t cli_format_bytes(uint64_t bytes, char *buf, size_t cap) {
    static const char *const units[] = {"KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
    int n;
    if (bytes < 1024) {
        n = snprintf(buf, cap, "%" PRIu64 " B", bytes);
    } else {
        double v = (double)bytes / 1024.0;
        size_t u = 0;
        /* 1023.995 KiB would round to "1024.00 KiB"; move to the next unit before that. */
        while (v >= 1023.995 && u + 1 < sizeof units / sizeof units[0]) {
            v /= 1024.0;
            u++;
        }
        n = snprintf(buf, cap, "%.2f %s", v, units[u]);
    }
    return n < 0 ? 0 : (size_t)n;
}

size_t cli_format_count(uint64_t count, char *buf, size_t cap) {
    static const char *const suffix[] = {"K", "M", "B", "T"};
    int n;
    if (count < 1000) {
        n = snprintf(buf, cap, "%" PRIu64, count);
    } else {
        double v = (double)count / 1000.0;
        size_t s = 0;
        while (v >= 999.95 && s + 1 < sizeof suffix / sizeof suffix[0]) {
            v /= 1000.0;
            s++;
        }
        /* At least three significant digits, as model sizes are usually quoted (7.24B, 292.9K). */
        n = snprintf(buf, cap, v < 10 ? "%.2f%s" : "%.1f%s", v, suffix[s]);
    }
    return n < 0 ? 0 : (size_t)n;
}

bool cli_is_help(const char *arg) { return strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0; }

bool cli_opt_is(const char *arg, const char *name) {
    if (strncmp(arg, "--", 2) != 0) return false;
    arg += 2;
    for (; *arg && *name; arg++, name++) {
        char a = *arg == '-' ? '_' : *arg;
        char b = *name == '-' ? '_' : *name;
        if (a != b) return false;
    }
    return *arg == '\0' && *name == '\0';
}

bool cli_json_add_u64(cJSON *obj, const char *key, uint64_t v) { return strata_json_add_u64(obj, key, v); }

bool cli_json_append_u64(cJSON *arr, uint64_t v) { return strata_json_append_u64(arr, v); }

int cli_json_print(cJSON *obj) {
    char *text = obj ? cJSON_Print(obj) : NULL;
    cJSON_Delete(obj);
    if (!text) return cli_error("out of memory while formatting JSON");
    int ok = fputs(text, stdout) >= 0 && fputc('\n', stdout) != EOF;
    free(text);
    if (!ok) return cli_error("cannot write to standard output");
    return 0;
}
