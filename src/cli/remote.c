/* Shared pieces of the client commands; see remote.h. */
#include "cli/remote.h"

#include <cJSON.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/run_options.h"
#include "runtime/generate.h"
#include "store/modelfile.h"

int remote_open(strata_client **out) {
    if (strata_client_open(NULL, out) != STRATA_OK) return cli_error("%s", strata_last_error());
    return 0;
}

int remote_get(const char *path, cJSON **out) {
    strata_client *c;
    if (remote_open(&c)) return 1;
    *out = NULL;
    strata_status st = strata_client_call(c, "GET", path, NULL, out);
    strata_client_free(c);
    if (st != STRATA_OK) return cli_error("%s", strata_last_error());
    return 0;
}

const char *remote_model_name(const cJSON *model, const char *prefix) {
    const char *name = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(model, "name"));
    if (!name || (prefix && strncmp(name, prefix, strlen(prefix)) != 0)) return NULL;
    return name;
}

void remote_short_id(const char *digest, char out[13]) {
    if (!digest) digest = "";
    if (strncmp(digest, "sha256:", 7) == 0) digest += 7;
    snprintf(out, 13, "%s", digest);
}

bool remote_arg_is_path(const char *arg) {
    struct stat sb;
    if (stat(arg, &sb) == 0) return true;
    size_t n = strlen(arg);
    return arg[0] == '/' || arg[0] == '.' || arg[0] == '~' || (n > 5 && strcasecmp(arg + n - 5, ".gguf") == 0);
}

void remote_human_bytes(int64_t b, char *buf, size_t cap) {
    static const struct {
        double scale;
        const char *unit;
    } units[] = {{1e12, "TB"}, {1e9, "GB"}, {1e6, "MB"}, {1e3, "KB"}};
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
        if ((double)b < units[i].scale) continue;
        double v = (double)b / units[i].scale;
        if (v >= 10 || v == trunc(v))
            snprintf(buf, cap, "%d %s", (int)v, units[i].unit);
        else
            snprintf(buf, cap, "%.1f %s", v, units[i].unit);
        return;
    }
    snprintf(buf, cap, "%lld B", (long long)b);
}

/* Go's humanDuration as Ollama's format package words it. */
static void human_duration(double d, char *buf, size_t cap) {
    long seconds = (long)d;
    if (seconds < 1) {
        snprintf(buf, cap, "Less than a second");
        return;
    }
    if (seconds == 1) {
        snprintf(buf, cap, "1 second");
        return;
    }
    if (seconds < 60) {
        snprintf(buf, cap, "%ld seconds", seconds);
        return;
    }
    long minutes = (long)(d / 60);
    if (minutes == 1) {
        snprintf(buf, cap, "About a minute");
        return;
    }
    if (minutes < 60) {
        snprintf(buf, cap, "%ld minutes", minutes);
        return;
    }
    long hours = lround(d / 3600);
    if (hours == 1)
        snprintf(buf, cap, "About an hour");
    else if (hours < 48)
        snprintf(buf, cap, "%ld hours", hours);
    else if (hours < 24 * 7 * 2)
        snprintf(buf, cap, "%ld days", hours / 24);
    else if (hours < 24 * 30 * 2)
        snprintf(buf, cap, "%ld weeks", hours / 24 / 7);
    else if (hours < 24 * 365 * 2)
        snprintf(buf, cap, "%ld months", hours / 24 / 30);
    else
        snprintf(buf, cap, "%ld years", hours / 24 / 365);
}

void remote_human_time(double t, bool is_zero, double now, const char *zero, char *buf, size_t cap) {
    if (is_zero) {
        snprintf(buf, cap, "%s", zero);
        return;
    }
    double delta = now - t;
    char d[64];
    if (delta / 3600 / 24 / 365 < -20) {
        snprintf(buf, cap, "Forever");
    } else if (delta < 0) {
        human_duration(-delta, d, sizeof d);
        snprintf(buf, cap, "%s from now", d);
    } else {
        human_duration(delta, d, sizeof d);
        snprintf(buf, cap, "%s ago", d);
    }
}

/* Days from 1970-01-01 to y-m-d in the proleptic Gregorian calendar (any year, no time_t
 * range limits: Go's zero time is year 1 and "forever" is year 2318 or later). */
static double days_from_civil(long y, long m, long d) {
    y -= m <= 2;
    long era = (y >= 0 ? y : y - 399) / 400;
    long yoe = y - era * 400;
    long doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    long doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return (double)era * 146097 + (double)doe - 719468;
}

bool remote_parse_time(const char *text, double *out, bool *is_zero) {
    int y, mo, d, h, mi, n = 0;
    double s;
    *is_zero = false;
    if (!text || sscanf(text, "%d-%d-%dT%d:%d:%lf%n", &y, &mo, &d, &h, &mi, &s, &n) != 6) return false;
    const char *z = text + n;
    double offset = 0;
    if (*z == '+' || *z == '-') {
        int oh, om;
        if (sscanf(z + 1, "%d:%d", &oh, &om) != 2) return false;
        offset = (oh * 3600.0 + om * 60.0) * (*z == '-' ? -1 : 1);
    } else if (*z != 'Z' && *z != 'z') {
        return false;
    }
    if (y <= 1) *is_zero = true;
    *out = days_from_civil(y, mo, d) * 86400.0 + h * 3600.0 + mi * 60.0 + s - offset;
    return true;
}

void remote_table_init(remote_table *t, size_t n_cols) {
    t->n_cols = n_cols;
    t->cells = NULL;
    t->n_rows = 0;
}

bool remote_table_add(remote_table *t, const char *const *row) {
    char **nc = realloc(t->cells, (t->n_rows + 1) * t->n_cols * sizeof *nc);
    if (!nc) return false;
    t->cells = nc;
    for (size_t i = 0; i < t->n_cols; i++) {
        char *c = strdup(row[i] ? row[i] : "");
        if (!c) {
            for (size_t j = 0; j < i; j++) free(nc[t->n_rows * t->n_cols + j]);
            return false;
        }
        nc[t->n_rows * t->n_cols + i] = c;
    }
    t->n_rows++;
    return true;
}

void remote_table_print(remote_table *t, const char *prefix) {
    size_t *w = calloc(t->n_cols ? t->n_cols : 1, sizeof *w);
    for (size_t r = 0; r < t->n_rows; r++)
        for (size_t c = 0; c < t->n_cols; c++) {
            size_t len = strlen(t->cells[r * t->n_cols + c]);
            if (w && len > w[c]) w[c] = len;
        }
    for (size_t r = 0; r < t->n_rows; r++) {
        fputs(prefix, stdout);
        /* The last non-empty cell ends the line (no trailing blanks). */
        size_t last = t->n_cols;
        while (last > 0 && !*t->cells[r * t->n_cols + last - 1]) last--;
        for (size_t c = 0; c < last; c++) {
            const char *cell = t->cells[r * t->n_cols + c];
            if (c + 1 == last)
                fputs(cell, stdout);
            else
                printf("%-*s    ", (int)(w ? w[c] : 0), cell);
        }
        fputc('\n', stdout);
    }
    for (size_t i = 0; i < t->n_rows * t->n_cols; i++) free(t->cells[i]);
    free(t->cells);
    free(w);
    t->cells = NULL;
    t->n_rows = 0;
}

void remote_progress_init(remote_progress *p) {
    memset(p, 0, sizeof *p);
    p->tty = isatty(STDERR_FILENO);
}

static const char *const spinner[] = {"⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"};

void remote_progress_update(remote_progress *p, const char *status, uint64_t done, uint64_t total) {
    bool changed = strcmp(status, p->status) != 0;
    if (!p->tty) {
        if (changed) {
            snprintf(p->status, sizeof p->status, "%s", status);
            fprintf(stderr, "%s\n", status);
        }
        return;
    }
    if (changed && p->line_open) {
        /* The finished status stays on screen without its spinner. */
        if (!p->bar) fprintf(stderr, "\r\033[K%s", p->status);
        fputc('\n', stderr);
    }
    snprintf(p->status, sizeof p->status, "%s", status);
    p->bar = total > 0;
    if (total > 0) {
        if (done > total) done = total;
        int pct = (int)(100.0 * (double)done / (double)total);
        char a[32], b[32], bar[3 * 25 + 1] = "";
        remote_human_bytes((int64_t)done, a, sizeof a);
        remote_human_bytes((int64_t)total, b, sizeof b);
        int fill = (int)(25.0 * (double)done / (double)total);
        for (int i = 0; i < 25; i++) strcat(bar, i < fill ? "█" : " ");
        fprintf(stderr, "\r\033[K%s %3d%% ▕%s▏ %s/%s", status, pct, bar, a, b);
    } else {
        fprintf(stderr, "\r\033[K%s %s", status, spinner[p->spin % 10]);
    }
    p->line_open = true;
    fflush(stderr);
}

bool remote_progress_tick(void *user) {
    remote_progress *p = user;
    if (!p->tty || !p->status[0] || p->bar) return true;
    int64_t now = strata_now_ns();
    if (now - p->last_draw_ns < 100000000) return true;
    p->last_draw_ns = now;
    p->spin++;
    fprintf(stderr, "\r\033[K%s %s", p->status, spinner[p->spin % 10]);
    p->line_open = true;
    fflush(stderr);
    return true;
}

void remote_progress_done(remote_progress *p) {
    if (p->tty && p->line_open) {
        /* The finished line keeps its text, without the spinner. */
        fprintf(stderr, "\r\033[K%s\n", p->status);
        fflush(stderr);
    }
    p->line_open = false;
}

bool remote_progress_line(void *user, const cJSON *line) {
    remote_progress *p = user;
    const cJSON *st = cJSON_GetObjectItemCaseSensitive(line, "status");
    const cJSON *total = cJSON_GetObjectItemCaseSensitive(line, "total");
    const cJSON *completed = cJSON_GetObjectItemCaseSensitive(line, "completed");
    if (!cJSON_IsString(st)) return true;
    uint64_t t = cJSON_IsNumber(total) && total->valuedouble > 0 ? (uint64_t)total->valuedouble : 0;
    uint64_t c = cJSON_IsNumber(completed) && completed->valuedouble > 0 ? (uint64_t)completed->valuedouble : 0;
    remote_progress_update(p, st->valuestring, c, t);
    return true;
}

/* The Modelfile's parameter table, plus the request options Ollama takes that a Modelfile
 * does not store. */
static bool option_type(const char *name, strata_param_type *type) {
    if (strcmp(name, "num_keep") == 0) {
        *type = STRATA_PARAM_INT;
        return true;
    }
    return strata_param_type_of(name, type) == STRATA_OK;
}

bool remote_set_option(cJSON *options, const char *name, const char *value) {
    strata_param_type type;
    if (!option_type(name, &type)) return false;
    char *end = NULL;
    switch (type) {
    case STRATA_PARAM_INT: {
        long long v = strtoll(value, &end, 10);
        if (end == value || *end) {
            strata_fail(STRATA_ERR_INVALID, "%s: '%s' is not an integer", name, value);
            return false;
        }
        cJSON_DeleteItemFromObjectCaseSensitive(options, name);
        return cJSON_AddNumberToObject(options, name, (double)v) != NULL;
    }
    case STRATA_PARAM_FLOAT: {
        double v = strtod(value, &end);
        if (end == value || *end || !isfinite(v)) {
            strata_fail(STRATA_ERR_INVALID, "%s: '%s' is not a number", name, value);
            return false;
        }
        cJSON_DeleteItemFromObjectCaseSensitive(options, name);
        return cJSON_AddNumberToObject(options, name, v) != NULL;
    }
    case STRATA_PARAM_STRINGS: {
        cJSON *arr = cJSON_GetObjectItemCaseSensitive(options, name);
        if (!cJSON_IsArray(arr)) {
            cJSON_DeleteItemFromObjectCaseSensitive(options, name);
            arr = cJSON_AddArrayToObject(options, name);
        }
        cJSON *s = arr ? cJSON_CreateString(value) : NULL;
        return s && cJSON_AddItemToArray(arr, s);
    }
    }
    return false;
}

int remote_parse_model_option(cJSON *options, int argc, char **argv, bool quiet) {
    const char *a = argv[0];
    if (strncmp(a, "--", 2) != 0) return 0;
    char name[64];
    size_t n = strlen(a + 2);
    if (n == 0 || n >= sizeof name) return 0;
    for (size_t i = 0; i <= n; i++) name[i] = a[2 + i] == '-' ? '_' : a[2 + i];
    strata_param_type type;
    if (!option_type(name, &type)) return 0;
    if (argc < 2) {
        if (!quiet) cli_error("option --%s needs a value", name);
        return -1;
    }
    if (!remote_set_option(options, name, argv[1])) {
        if (!quiet) cli_error("option --%s: %s", name, strata_last_error());
        return -1;
    }
    return 2;
}

static int64_t num_field(const cJSON *obj, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    return cJSON_IsNumber(v) ? (int64_t)v->valuedouble : 0;
}

void remote_print_stats(const cJSON *final) {
    strata_gen_stats s = {0};
    s.prompt_tokens = (int32_t)num_field(final, "prompt_eval_count");
    s.prompt_ns = num_field(final, "prompt_eval_duration");
    s.gen_tokens = (int32_t)num_field(final, "eval_count");
    s.gen_ns = num_field(final, "eval_duration");
    run_print_stats(&s, num_field(final, "load_duration"), num_field(final, "total_duration"));
}

static volatile sig_atomic_t sigint_fired;

static void on_sigint(int sig) {
    (void)sig;
    sigint_fired = 1;
}

void remote_sigint_arm(void) {
    sigint_fired = 0;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigint;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
}

void remote_sigint_disarm(void) { signal(SIGINT, SIG_DFL); }
bool remote_sigint_fired(void) { return sigint_fired != 0; }

bool remote_sigint_tick(void *user) {
    (void)user;
    return !sigint_fired;
}
