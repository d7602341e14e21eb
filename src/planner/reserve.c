/* Per-device reserves from STRATA_GPU_RESERVE and --reserve. See plan.h. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "planner/plan.h"

static void trim(const char **s, size_t *n) {
    while (*n && (**s == ' ' || **s == '\t')) (*s)++, (*n)--;
    while (*n && ((*s)[*n - 1] == ' ' || (*s)[*n - 1] == '\t')) (*n)--;
}

static bool same(const char *a, size_t n, const char *b) { return strlen(b) == n && strncasecmp(a, b, n) == 0; }

strata_status plan_reserve_parse(const backend_inventory *inv, const char *env_gpu, const char *text,
                                 uint64_t *reserve) {
    for (int i = 0; i < inv->count; i++) reserve[i] = UINT64_MAX;
    if (env_gpu && *env_gpu) {
        uint64_t v;
        if (backend_parse_size(env_gpu, &v) != STRATA_OK)
            return strata_fail(STRATA_ERR_INVALID, "STRATA_GPU_RESERVE: %s", strata_last_error());
        for (int i = 0; i < inv->count; i++)
            if (backend_device_kind_of(inv->devices[i]) != BACKEND_DEVICE_CPU) reserve[i] = v;
    }
    if (!text) return STRATA_OK;
    const char *p = text;
    for (int entry = 1;; entry++) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        const char *e = p;
        trim(&e, &len);
        const char *eq = memchr(e, '=', len);
        char sz[64];
        const char *st = eq ? eq + 1 : e;
        size_t sl = eq ? len - (size_t)(eq + 1 - e) : len;
        trim(&st, &sl);
        if (sl == 0 || sl >= sizeof sz)
            return strata_fail(STRATA_ERR_INVALID, "--reserve entry %d '%.*s': no size", entry, (int)len, e);
        memcpy(sz, st, sl);
        sz[sl] = 0;
        uint64_t v;
        if (backend_parse_size(sz, &v) != STRATA_OK)
            return strata_fail(STRATA_ERR_INVALID, "--reserve entry %d '%.*s': %s", entry, (int)len, e,
                               strata_last_error());
        if (!eq) {
            for (int i = 0; i < inv->count; i++)
                if (backend_device_kind_of(inv->devices[i]) != BACKEND_DEVICE_CPU) reserve[i] = v;
        } else {
            const char *t = e;
            size_t tl = (size_t)(eq - e);
            trim(&t, &tl);
            int hits = 0;
            for (int i = 0; i < inv->count; i++) {
                const backend_device *d = inv->devices[i];
                if (same(t, tl, backend_device_label(d)) || same(t, tl, backend_device_name(d)) || same(t, tl, backend_device_kind_name(backend_device_kind_of(d)))) {
                    reserve[i] = v;
                    hits++;
                }
            }
            if (!hits)
                return strata_fail(STRATA_ERR_INVALID, "--reserve entry %d: no device named '%.*s'", entry, (int)tl, t);
        }
        if (!end) break;
        p = end + 1;
    }
    return STRATA_OK;
}
