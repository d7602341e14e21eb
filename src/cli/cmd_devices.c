/* `strata devices [--devices SPEC] [--reserve R] [--json]`: the device inventory, as the
 * planner would see it (free memory now, reserve, speed) plus CUDA devices that are listed
 * but not yet offered to the planner. */
#include <cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/env.h"
#include "backend/device.h"
#include "cli/cli.h"
#include "cli/util.h"
#include "planner/plan.h"

static void usage(void) {
    printf("Usage: strata devices [--devices SPEC] [--reserve SIZE|NAME=SIZE,...] [--json]\n\n"
           "Lists the devices Strata can place layers on: kind, total and free memory, the reserve\n"
           "kept free, and the speed (memory bandwidth, GB/s) the planner's cost model uses.\n\n"
           "  --devices SPEC  comma-separated KIND[:MEMORY[:GBPS[:NAME]]] (env STRATA_DEVICES),\n"
           "                  e.g. sim:12GiB:360:RTX3060,sim:6GiB:288:A2000; cuda:0:12GiB caps a GPU.\n"
           "                  The cpu is always present. Without a spec: CUDA GPUs found + cpu.\n"
           "  --reserve R     bytes kept free per GPU (default 256MiB; env STRATA_GPU_RESERVE)\n"
           "  --json          print JSON\n");
}

int cmd_devices(int argc, char **argv) {
    const char *spec = getenv("STRATA_DEVICES"), *reserve_text = NULL;
    bool json = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (cli_is_help(a)) {
            usage();
            return 0;
        } else if (cli_opt_is(a, "json")) {
            json = true;
        } else if (cli_opt_is(a, "devices") || cli_opt_is(a, "reserve")) {
            if (i + 1 >= argc) return cli_error("option %s needs a value", a);
            if (cli_opt_is(a, "devices")) spec = argv[++i];
            else reserve_text = argv[++i];
        } else {
            return cli_error("devices: unknown argument '%s' (see 'strata devices --help')", a);
        }
    }
    backend_inventory *inv;
    if (backend_inventory_from_spec(spec, &inv) != STRATA_OK) return cli_error("%s", strata_last_error());
    uint64_t reserve[BACKEND_MAX_DEVICES];
    if (plan_reserve_parse(inv, strata_getenv("STRATA_GPU_RESERVE"), reserve_text, reserve) != STRATA_OK) {
        backend_inventory_free(inv);
        return cli_error("%s", strata_last_error());
    }
    cJSON *root = json ? cJSON_CreateObject() : NULL;
    cJSON *arr = json ? cJSON_AddArrayToObject(root, "devices") : NULL;
    if (!json)
        printf("%-3s %-24s %-5s %11s %11s %10s %9s  %s\n", "#", "NAME", "KIND", "TOTAL", "FREE", "RESERVE", "GB/S",
               "PLANNED");
    int rc = 0;
    for (int i = 0; i < inv->count; i++) {
        backend_device *d = inv->devices[i];
        uint64_t free_bytes = 0;
        if (backend_device_free_bytes(d, &free_bytes) != STRATA_OK) {
            rc = cli_error("%s", strata_last_error());
            break;
        }
        uint64_t res = reserve[i] != UINT64_MAX ? reserve[i] : plan_default_reserve(backend_device_kind_of(d));
        double gbps = backend_device_speed_gbps(d);
        if (json) {
            cJSON *o = cJSON_CreateObject();
            cJSON_AddItemToArray(arr, o);
            cJSON_AddStringToObject(o, "name", backend_device_label(d));
            cJSON_AddStringToObject(o, "kind", backend_device_kind_name(backend_device_kind_of(d)));
            if (backend_device_kind_of(d) == BACKEND_DEVICE_CUDA) cJSON_AddNumberToObject(o, "ordinal", backend_device_ordinal(d));
            cli_json_add_u64(o, "total_bytes", backend_device_total_bytes(d));
            cli_json_add_u64(o, "free_bytes", free_bytes);
            cli_json_add_u64(o, "reserve_bytes", res);
            cJSON_AddNumberToObject(o, "gbps", gbps);
            cJSON_AddBoolToObject(o, "gbps_configured", backend_device_speed_configured(d));
            cJSON_AddBoolToObject(o, "plannable", backend_device_plannable(d));
            if (backend_device_host_link_gbps(d) > 0)
                cJSON_AddNumberToObject(o, "host_link_gbps", backend_device_host_link_gbps(d));
        } else {
            char t[32], f[32], r[32];
            cli_format_bytes(backend_device_total_bytes(d), t, sizeof t);
            cli_format_bytes(free_bytes, f, sizeof f);
            cli_format_bytes(res, r, sizeof r);
            printf("%-3d %-24s %-5s %11s %11s %10s %9.1f  %s\n", i, backend_device_label(d), backend_device_kind_name(backend_device_kind_of(d)), t, f,
                   r, gbps,
                   backend_device_plannable(d) ? (backend_device_speed_configured(d) || backend_device_kind_of(d) != BACKEND_DEVICE_CPU ? "yes" : "yes (speed measured)")
                                : "no");
            /* a GPU: GB/S above is its device-to-device copy; this is the host link */
            if (backend_device_host_link_gbps(d) > 0)
                printf("    %s: host -> device %.1f GB/s (pinned), device -> device %.1f GB/s\n", backend_device_label(d),
                       backend_device_host_link_gbps(d), gbps);
        }
    }
    backend_inventory_free(inv);
    /* Discovery found no GPU: say why rather than list the cpu alone as if that were all. */
    const char *why = spec || rc ? NULL : backend_cuda_unavailable_reason();
    if (why) fprintf(stderr, "strata: no CUDA device: %s\n", why);
    if (json) {
        if (why) cJSON_AddStringToObject(root, "cuda_unavailable", why);
        if (rc) {
            cJSON_Delete(root);
            return rc;
        }
        return cli_json_print(root);
    }
    return rc;
}
