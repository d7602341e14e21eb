/* `strata ps [--verbose] [PREFIX]`: the models the server has loaded (GET /api/ps), as Ollama's
 * `ps` prints them: NAME ID SIZE PROCESSOR CONTEXT UNTIL. PROCESSOR is computed from the bytes
 * each device holds ("100% GPU", "100% CPU", "48%/52% CPU/GPU"); --verbose adds one row per
 * device under each model: the device, its layers, allocated and planned bytes (the
 * "devices" array /api/ps carries beside Ollama's fields). */
#include <cJSON.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "cli/cli.h"
#include "cli/remote.h"
#include "cli/util.h"

static const char usage[] =
    "Usage: strata ps [--verbose] [PREFIX]\n"
    "\n"
    "Lists the models loaded by the server at $STRATA_HOST: name, ID, size, where it runs\n"
    "(PROCESSOR: the share of its bytes on the CPU and on GPUs), context length, and until when\n"
    "it stays loaded. --verbose adds a row per device: its layers, allocated and planned bytes, and\n"
    "on a GPU what the load measurably took (free memory before minus after) and how much of that\n"
    "the arena does not explain.\n";

static const cJSON *field(const cJSON *o, const char *const *keys) {
    for (; *keys; keys++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, *keys);
        if (v && !cJSON_IsNull(v)) return v;
    }
    return NULL;
}

static double number(const cJSON *o, const char *const *keys) {
    const cJSON *v = field(o, keys);
    return cJSON_IsNumber(v) ? v->valuedouble : 0;
}

static const char *const k_dev_name[] = {"name", "device", "id", NULL};
static const char *const k_dev_kind[] = {"type", "kind", "backend", NULL};
static const char *const k_alloc[] = {"allocated_bytes", "allocated", NULL};
static const char *const k_planned[] = {"planned_bytes", "planned", NULL};
static const char *const k_measured[] = {"measured_bytes", NULL};
static const char *const k_unaccounted[] = {"unaccounted_bytes", NULL};

/* A device is the CPU when its kind (or, failing that, its name) says so; everything else
 * (CUDA, simulated GPUs) counts as GPU, as Ollama counts VRAM. */
static bool device_is_cpu(const cJSON *d) {
    const char *kind = cJSON_GetStringValue((cJSON *)field(d, k_dev_kind));
    if (!kind) kind = cJSON_GetStringValue((cJSON *)field(d, k_dev_name));
    return kind && strncmp(kind, "cpu", 3) == 0;
}

/* The layers a device holds, as an inclusive range "0-15", from the server's half-open
 * [layer_start, layer_end); "none" when it holds none. */
static void device_layers(const cJSON *d, char *buf, size_t cap) {
    static const char *const k_first[] = {"layer_start", NULL};
    static const char *const k_end[] = {"layer_end", NULL};
    buf[0] = 0;
    if (!field(d, k_first) || !field(d, k_end)) return;
    int a = (int)number(d, k_first), b = (int)number(d, k_end);
    if (b > a)
        snprintf(buf, cap, "%d-%d", a, b - 1);
    else
        snprintf(buf, cap, "none");
}

/* The bytes of the model a device holds: what was allocated on it, plus, for the CPU, the
 * weights it reads from the mapped file (a GPU's weights are inside its allocation). */
static double device_bytes(const cJSON *d) {
    static const char *const k_weights[] = {"weights_bytes", NULL};
    return number(d, k_alloc) + (device_is_cpu(d) ? number(d, k_weights) : 0);
}

/* Ollama's PROCESSOR column from total and GPU-resident bytes. */
static void processor(double size, double vram, char *buf, size_t cap) {
    if (vram == 0) {
        snprintf(buf, cap, "100%% CPU");
    } else if (vram == size) {
        snprintf(buf, cap, "100%% GPU");
    } else if (vram > size || size == 0) {
        snprintf(buf, cap, "Unknown");
    } else {
        int cpu = (int)round((size - vram) / size * 100);
        snprintf(buf, cap, "%d%%/%d%% CPU/GPU", cpu, 100 - cpu);
    }
}

int cmd_ps(int argc, char **argv) {
    const char *prefix = NULL;
    bool verbose = false;
    for (int i = 1; i < argc; i++) {
        if (cli_is_help(argv[i])) {
            fputs(usage, stdout);
            return 0;
        }
        if (cli_opt_is(argv[i], "verbose") || strcmp(argv[i], "-v") == 0) {
            verbose = true;
            continue;
        }
        if (argv[i][0] == '-') return cli_error("ps: unknown option '%s' (see 'strata ps --help')", argv[i]);
        if (prefix) return cli_error("ps: expected at most one PREFIX");
        prefix = argv[i];
    }
    cJSON *resp;
    if (remote_get("/api/ps", &resp)) return 1;
    remote_table t;
    remote_table_init(&t, 6);
    const char *header[] = {"NAME", "ID", "SIZE", "PROCESSOR", "CONTEXT", "UNTIL"};
    remote_table_add(&t, header);
    double now = (double)time(NULL);
    const cJSON *m;
    cJSON_ArrayForEach(m, cJSON_GetObjectItemCaseSensitive(resp, "models")) {
        const char *name = remote_model_name(m, prefix);
        if (!name) continue;
        static const char *const k_size[] = {"size", NULL}, *const k_vram[] = {"size_vram", NULL},
                                 *const k_ctx[] = {"context_length", NULL};
        double size = number(m, k_size), vram = number(m, k_vram);
        /* With a per-device breakdown, the split comes from what each device really holds. */
        const cJSON *devices = cJSON_GetObjectItemCaseSensitive(m, "devices");
        if (cJSON_IsArray(devices) && cJSON_GetArraySize(devices) > 0) {
            double total = 0, gpu = 0;
            const cJSON *d;
            cJSON_ArrayForEach(d, devices) {
                double a = device_bytes(d);
                total += a;
                if (!device_is_cpu(d)) gpu += a;
            }
            if (total > 0) {
                size = total;
                vram = gpu;
            }
        }
        char id[13], sz[32], proc[48], ctx[24], until[64];
        remote_short_id(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(m, "digest")), id);
        remote_human_bytes((int64_t)number(m, k_size), sz, sizeof sz);
        processor(size, vram, proc, sizeof proc);
        snprintf(ctx, sizeof ctx, "%d", (int)number(m, k_ctx));
        double exp = 0;
        bool zero = true;
        if (!remote_parse_time(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(m, "expires_at")), &exp, &zero))
            zero = true;
        if (!zero && exp < now)
            snprintf(until, sizeof until, "Stopping...");
        else
            remote_human_time(exp, zero, now, "Never", until, sizeof until);
        const char *row[] = {name, id, sz, proc, ctx, until};
        remote_table_add(&t, row);
        if (!verbose || !cJSON_IsArray(devices)) continue;
        const cJSON *d;
        cJSON_ArrayForEach(d, devices) {
            char dname[128], layers[48], alloc[32], planned[128];
            const char *n = cJSON_GetStringValue((cJSON *)field(d, k_dev_name));
            device_layers(d, layers, sizeof layers);
            if (layers[0])
                snprintf(dname, sizeof dname, "  %s (layers %s)", n ? n : "?", layers);
            else
                snprintf(dname, sizeof dname, "  %s", n ? n : "?");
            remote_human_bytes((int64_t)number(d, k_alloc), alloc, sizeof alloc);
            char pb[32];
            remote_human_bytes((int64_t)number(d, k_planned), pb, sizeof pb);
            snprintf(planned, sizeof planned, "planned %s", pb);
            /* a GPU's own measurement of what the load took (free before - after) */
            if (field(d, k_measured) && number(d, k_measured) > 0) {
                char mb[32], ub[32];
                remote_human_bytes((int64_t)number(d, k_measured), mb, sizeof mb);
                remote_human_bytes((int64_t)number(d, k_unaccounted), ub, sizeof ub);
                size_t o = strlen(planned);
                snprintf(planned + o, sizeof planned - o, ", measured %s, unaccounted %s", mb, ub);
            }
            const char *drow[] = {dname, "", alloc, device_is_cpu(d) ? "CPU" : "GPU", "", planned};
            remote_table_add(&t, drow);
        }
    }
    remote_table_print(&t, "");
    cJSON_Delete(resp);
    return 0;
}
