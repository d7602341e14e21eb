/* Device wrappers common to every kind, the size and device-spec parsers, and the
 * inventory. See device.h. */
#include "backend/device_impl.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

const char *backend_device_kind_name(backend_device_kind kind) {
    switch (kind) {
    case BACKEND_DEVICE_CPU: return "cpu";
    case BACKEND_DEVICE_SIM: return "sim";
    case BACKEND_DEVICE_CUDA: return "cuda";
    }
    return "?";
}

/* ---- Device wrappers ---------------------------------------------------------------- */

/* Arena bookkeeping may be touched by several threads (a server loading two models at once
 * on one inventory): one lock for all devices' arena lists, held briefly. */
static pthread_mutex_t arena_mu = PTHREAD_MUTEX_INITIALIZER;

strata_status backend_device_free_bytes(backend_device *dev, uint64_t *out) {
    uint64_t free_bytes = 0;
    pthread_mutex_lock(&arena_mu);
    strata_status st = dev->ops->query_free(dev, &free_bytes);
    size_t held = dev->arena_bytes;
    pthread_mutex_unlock(&arena_mu);
    if (st != STRATA_OK) return st;
    if (dev->cap_bytes) {
        uint64_t left = dev->cap_bytes > held ? dev->cap_bytes - held : 0;
        if (left < free_bytes) free_bytes = left;
    }
    *out = free_bytes;
    return STRATA_OK;
}

strata_status backend_device_physical_free(backend_device *dev, uint64_t *out) {
    pthread_mutex_lock(&arena_mu);
    strata_status st = dev->ops->query_free(dev, out);
    pthread_mutex_unlock(&arena_mu);
    return st;
}

uint64_t backend_device_total_bytes(const backend_device *dev) {
    if (dev->cap_bytes && dev->cap_bytes < dev->total_bytes) return dev->cap_bytes;
    return dev->total_bytes;
}

double backend_device_speed_gbps(backend_device *dev) {
    if (dev->gbps <= 0) {
        double g = dev->ops->measure_gbps ? dev->ops->measure_gbps(dev) : 0;
        dev->gbps = g > 0 ? g : BACKEND_CPU_DEFAULT_GBPS;
    }
    return dev->gbps;
}

static strata_status arena_alloc_locked(backend_device *dev, size_t bytes, void **out) {
    if (dev->n_arenas >= BACKEND_MAX_ARENAS)
        return strata_fail(STRATA_ERR_INVALID, "device %s: already holds %d arenas (%zu bytes)", dev->label,
                           dev->n_arenas, dev->arena_bytes);
    if (bytes == 0) return strata_fail(STRATA_ERR_INVALID, "device %s: arena of 0 bytes", dev->label);
    if (dev->cap_bytes && bytes > (dev->cap_bytes > dev->arena_bytes ? dev->cap_bytes - dev->arena_bytes : 0))
        return strata_fail(STRATA_ERR_NOMEM,
                           "device %s: arena of %zu bytes exceeds its configured cap of %llu bytes (%zu held)",
                           dev->label, bytes, (unsigned long long)dev->cap_bytes, dev->arena_bytes);
    void *p = NULL;
    strata_status st = dev->ops->alloc(dev, bytes, &p);
    if (st != STRATA_OK) return st;
    dev->arenas[dev->n_arenas] = p;
    dev->arena_sizes[dev->n_arenas] = bytes;
    dev->n_arenas++;
    dev->arena = p;
    dev->arena_bytes += bytes;
    *out = p;
    return STRATA_OK;
}

strata_status backend_device_arena_alloc(backend_device *dev, size_t bytes, void **out) {
    *out = NULL;
    pthread_mutex_lock(&arena_mu);
    strata_status st = arena_alloc_locked(dev, bytes, out);
    pthread_mutex_unlock(&arena_mu);
    return st;
}

static void arena_release_locked(backend_device *dev, void *arena) {
    for (int i = 0; i < dev->n_arenas; i++) {
        if (dev->arenas[i] != arena) continue;
        dev->ops->release(dev, arena, dev->arena_sizes[i]);
        dev->arena_bytes -= dev->arena_sizes[i];
        memmove(&dev->arenas[i], &dev->arenas[i + 1], (size_t)(dev->n_arenas - 1 - i) * sizeof dev->arenas[0]);
        memmove(&dev->arena_sizes[i], &dev->arena_sizes[i + 1],
                (size_t)(dev->n_arenas - 1 - i) * sizeof dev->arena_sizes[0]);
        dev->n_arenas--;
        dev->arena = dev->n_arenas ? dev->arenas[dev->n_arenas - 1] : NULL;
        return;
    }
    STRATA_ASSERT(!"backend_device_arena_release: not an arena of this device");
}

void backend_device_arena_release(backend_device *dev, void *arena) {
    if (!arena) return;
    pthread_mutex_lock(&arena_mu);
    arena_release_locked(dev, arena);
    pthread_mutex_unlock(&arena_mu);
}

void backend_device_arena_free(backend_device *dev) {
    pthread_mutex_lock(&arena_mu);
    while (dev->n_arenas > 0) arena_release_locked(dev, dev->arenas[dev->n_arenas - 1]);
    pthread_mutex_unlock(&arena_mu);
}

static bool in_arena(const backend_device *dev, const void *p, size_t bytes) {
    pthread_mutex_lock(&arena_mu);
    bool in = false;
    uintptr_t q = (uintptr_t)p;
    for (int i = 0; i < dev->n_arenas; i++) {
        uintptr_t base = (uintptr_t)dev->arenas[i];
        size_t n = dev->arena_sizes[i];
        if (q >= base && q - base <= n && bytes <= n - (q - base)) in = true;
    }
    pthread_mutex_unlock(&arena_mu);
    return in;
}

strata_status backend_device_copy_in(backend_device *dev, void *dst, const void *src, size_t bytes) {
    if (!in_arena(dev, dst, bytes))
        return strata_fail(STRATA_ERR_INVALID, "device %s: copy of %zu bytes in lies outside its arena", dev->label,
                           bytes);
    return dev->ops->copy_in(dev, dst, src, bytes);
}

strata_status backend_device_copy_out(backend_device *dev, void *dst, const void *src, size_t bytes) {
    if (!in_arena(dev, src, bytes))
        return strata_fail(STRATA_ERR_INVALID, "device %s: copy of %zu bytes out lies outside its arena", dev->label,
                           bytes);
    return dev->ops->copy_out(dev, dst, src, bytes);
}

void *backend_host_arena_alloc(size_t bytes) {
    size_t rounded = (bytes + BACKEND_ARENA_ALIGN - 1) & ~(size_t)(BACKEND_ARENA_ALIGN - 1);
    void *p = NULL;
    if (rounded < bytes || posix_memalign(&p, BACKEND_ARENA_ALIGN, rounded) != 0) return NULL;
    return p;
}

void backend_host_release(backend_device *dev, void *ptr, size_t bytes) {
    (void)dev;
    (void)bytes;
    free(ptr);
}

strata_status backend_host_copy(backend_device *dev, void *dst, const void *src, size_t bytes) {
    (void)dev;
    if (bytes) memcpy(dst, src, bytes);
    return STRATA_OK;
}

void backend_host_destroy(backend_device *dev) {
    free(dev->impl);
    dev->impl = NULL;
}

void backend_device_free(backend_device *dev) {
    if (!dev) return;
    backend_device_arena_free(dev);
    if (dev->ops->destroy) dev->ops->destroy(dev);
    free(dev);
}

/* ---- Sizes ------------------------------------------------------------------------- */

typedef struct {
    const char *unit;
    double mult;
} size_unit;

static const size_unit size_units[] = {
    {"b", 1.0},
    {"kb", 1e3},
    {"mb", 1e6},
    {"gb", 1e9},
    {"tb", 1e12},
    {"kib", 1024.0},
    {"mib", 1024.0 * 1024.0},
    {"gib", 1024.0 * 1024.0 * 1024.0},
    {"tib", 1024.0 * 1024.0 * 1024.0 * 1024.0},
};

/* Parses text[0..len) (no NUL needed); on failure writes a reason into why. */
static bool parse_size_n(const char *text, size_t len, uint64_t *out, char *why, size_t why_cap) {
    char buf[64];
    while (len && isspace((unsigned char)*text)) text++, len--;
    while (len && isspace((unsigned char)text[len - 1])) len--;
    if (len == 0) {
        snprintf(why, why_cap, "empty size");
        return false;
    }
    if (len >= sizeof buf) {
        snprintf(why, why_cap, "size too long");
        return false;
    }
    memcpy(buf, text, len);
    buf[len] = 0;
    size_t i = 0;
    bool digits = false, dot = false;
    while (buf[i] && (isdigit((unsigned char)buf[i]) || (buf[i] == '.' && !dot))) {
        if (buf[i] == '.') dot = true;
        else digits = true;
        i++;
    }
    if (!digits) {
        snprintf(why, why_cap, "'%s' is not a size (a number and a unit, e.g. 12GiB)", buf);
        return false;
    }
    char num[64];
    memcpy(num, buf, i);
    num[i] = 0;
    double v = strtod(num, NULL);
    size_t j = i;
    while (buf[j] == ' ') j++;
    const char *unit = buf + j;
    if (!*unit) {
        if (v == 0) {
            *out = 0;
            return true;
        }
        snprintf(why, why_cap, "'%s' has no unit (B, KB, MB, GB, TB, KiB, MiB, GiB, TiB)", buf);
        return false;
    }
    for (size_t k = 0; k < sizeof size_units / sizeof size_units[0]; k++) {
        if (strcasecmp(unit, size_units[k].unit) == 0) {
            double b = v * size_units[k].mult + 0.5; /* round to the nearest byte */
            if (!(b < 18446744073709551616.0)) {
                snprintf(why, why_cap, "'%s' is too large", buf);
                return false;
            }
            if (size_units[k].mult == 1.0 && dot && floor(v) != v) {
                snprintf(why, why_cap, "'%s' is not a whole number of bytes", buf);
                return false;
            }
            *out = (uint64_t)b;
            return true;
        }
    }
    snprintf(why, why_cap, "unknown unit '%s' in '%s' (B, KB, MB, GB, TB, KiB, MiB, GiB, TiB)", unit, buf);
    return false;
}

strata_status backend_parse_size(const char *text, uint64_t *out) {
    char why[160];
    if (!text) return strata_fail(STRATA_ERR_INVALID, "size: missing");
    if (!parse_size_n(text, strlen(text), out, why, sizeof why))
        return strata_fail(STRATA_ERR_INVALID, "size: %s", why);
    return STRATA_OK;
}

/* ---- Device spec ------------------------------------------------------------------- */

static const char *const cpu_fields[] = {"KIND", "MEMORY", "GBPS", "NAME"};
static const char *const cuda_fields[] = {"KIND", "ORDINAL", "MEMORY", "GBPS", "NAME"};

static strata_status spec_error(int entry, const char *etext, size_t elen, int field, const char *fname,
                                size_t column, const char *why) {
    return strata_fail(STRATA_ERR_INVALID, "device spec entry %d '%.*s', field %d (%s) at column %zu: %s", entry,
                       (int)elen, etext, field, fname, column, why);
}

static bool name_ok(const char *s, size_t n) {
    if (n == 0 || n >= BACKEND_NAME_MAX) return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (!isalnum(c) && c != '_' && c != '-' && c != '.' && c != '+') return false;
    }
    return true;
}

strata_status backend_spec_parse(const char *spec, backend_spec_entry *entries, int cap, int *count) {
    *count = 0;
    if (!spec) return strata_fail(STRATA_ERR_INVALID, "device spec: missing");
    const char *p = spec;
    int entry = 0;
    bool have_cpu = false;
    for (;;) {
        const char *e = p, *end = strchr(p, ',');
        size_t elen = end ? (size_t)(end - p) : strlen(p);
        entry++;
        /* trim the entry */
        while (elen && isspace((unsigned char)*e)) e++, elen--;
        while (elen && isspace((unsigned char)e[elen - 1])) elen--;
        size_t ecol = (size_t)(e - spec) + 1;
        if (elen == 0)
            return strata_fail(STRATA_ERR_INVALID, "device spec entry %d (column %zu) is empty", entry, ecol);
        if (*count >= cap)
            return strata_fail(STRATA_ERR_INVALID, "device spec entry %d: more than %d devices", entry, cap);
        backend_spec_entry *out = &entries[*count];
        memset(out, 0, sizeof *out);
        out->ordinal = -1;

        const char *f = e;
        int field = 0;
        const char *const *fnames = cpu_fields;
        int nfields = 4;
        for (;;) {
            const char *fe = memchr(f, ':', elen - (size_t)(f - e));
            size_t flen = fe ? (size_t)(fe - f) : elen - (size_t)(f - e);
            const char *ft = f;
            size_t ftl = flen;
            while (ftl && isspace((unsigned char)*ft)) ft++, ftl--;
            while (ftl && isspace((unsigned char)ft[ftl - 1])) ftl--;
            size_t col = (size_t)(f - spec) + 1;
            field++;
            char why[200];
            if (field > nfields) {
                snprintf(why, sizeof why, "too many fields (a %s entry has at most %d: %s)",
                         backend_device_kind_name(out->kind), nfields,
                         nfields == 5 ? "cuda[:ORDINAL[:MEMORY[:GBPS[:NAME]]]]" : "KIND[:MEMORY[:GBPS[:NAME]]]");
                return spec_error(entry, e, elen, field, "extra", col, why);
            }
            const char *fname = fnames[field - 1];
            if (field == 1) {
                if (ftl == 3 && strncasecmp(ft, "cpu", 3) == 0) out->kind = BACKEND_DEVICE_CPU;
                else if (ftl == 3 && strncasecmp(ft, "sim", 3) == 0) out->kind = BACKEND_DEVICE_SIM;
                else if (ftl == 4 && strncasecmp(ft, "cuda", 4) == 0) {
                    out->kind = BACKEND_DEVICE_CUDA;
                    fnames = cuda_fields;
                    nfields = 5;
                } else {
                    snprintf(why, sizeof why, "unknown device kind '%.*s' (cpu, sim or cuda)", (int)ftl, ft);
                    return spec_error(entry, e, elen, field, fname, col, why);
                }
            } else if (ftl == 0) {
                /* an empty field means "not given" */
            } else if (strcmp(fname, "ORDINAL") == 0) {
                long v = 0;
                for (size_t i = 0; i < ftl; i++) {
                    if (!isdigit((unsigned char)ft[i]) || v > 1000) {
                        snprintf(why, sizeof why, "'%.*s' is not a device ordinal (0, 1, ...)", (int)ftl, ft);
                        return spec_error(entry, e, elen, field, fname, col, why);
                    }
                    v = v * 10 + (ft[i] - '0');
                }
                out->ordinal = (int)v;
            } else if (strcmp(fname, "MEMORY") == 0) {
                char reason[160];
                if (!parse_size_n(ft, ftl, &out->memory, reason, sizeof reason))
                    return spec_error(entry, e, elen, field, fname, col, reason);
                if (out->memory == 0)
                    return spec_error(entry, e, elen, field, fname, col, "memory must be more than 0");
            } else if (strcmp(fname, "GBPS") == 0) {
                char num[64];
                if (ftl >= sizeof num) ftl = sizeof num - 1;
                memcpy(num, ft, ftl);
                num[ftl] = 0;
                char *endp = NULL;
                errno = 0;
                double g = strtod(num, &endp);
                if (errno || endp == num || *endp || !(g > 0) || !(g <= 1e6) || !isdigit((unsigned char)num[0])) {
                    snprintf(why, sizeof why, "'%s' is not a speed in GB/s (a number > 0, e.g. 360)", num);
                    return spec_error(entry, e, elen, field, fname, col, why);
                }
                out->gbps = g;
            } else { /* NAME */
                if (!name_ok(ft, ftl)) {
                    snprintf(why, sizeof why,
                             "'%.*s' is not a name (1-%d letters, digits, '_', '-', '.', '+')", (int)ftl, ft,
                             BACKEND_NAME_MAX - 1);
                    return spec_error(entry, e, elen, field, fname, col, why);
                }
                memcpy(out->name, ft, ftl);
                out->name[ftl] = 0;
            }
            if (!fe) break;
            f = fe + 1;
        }
        if (out->kind == BACKEND_DEVICE_SIM && out->memory == 0)
            return spec_error(entry, e, elen, 2, "MEMORY", ecol + 4,
                              "a sim device needs its memory (sim:MEMORY[:GBPS[:NAME]], e.g. sim:12GiB:360)");
        if (out->kind == BACKEND_DEVICE_CPU) {
            if (have_cpu)
                return strata_fail(STRATA_ERR_INVALID, "device spec entry %d '%.*s': a second cpu entry", entry,
                                   (int)elen, e);
            have_cpu = true;
        }
        (*count)++;
        if (!end) break;
        p = end + 1;
    }
    return STRATA_OK;
}

/* ---- Inventory --------------------------------------------------------------------- */

static strata_status inventory_add(backend_inventory *inv, backend_device *dev) {
    if (!dev) return strata_fail(STRATA_ERR_NOMEM, "devices: out of host memory");
    if (inv->count >= BACKEND_MAX_DEVICES) {
        backend_device_free(dev);
        return strata_fail(STRATA_ERR_INVALID, "devices: more than %d devices", BACKEND_MAX_DEVICES);
    }
    inv->devices[inv->count++] = dev;
    return STRATA_OK;
}

static void make_labels(backend_inventory *inv) {
    for (int i = 0; i < inv->count; i++) {
        backend_device *d = inv->devices[i];
        int same = 0, k = 0;
        for (int j = 0; j < inv->count; j++) {
            if (strcmp(inv->devices[j]->name, d->name) == 0) {
                same++;
                if (j <= i) k++;
            }
        }
        if (same > 1) snprintf(d->label, sizeof d->label, "%s #%d", d->name, k);
        else snprintf(d->label, sizeof d->label, "%s", d->name);
    }
}

/* Moves the cpu device to the end (the fallback comes last in listings and plans). */
static void cpu_last(backend_inventory *inv) {
    for (int i = 0; i < inv->count - 1; i++) {
        if (inv->devices[i]->kind == BACKEND_DEVICE_CPU) {
            backend_device *c = inv->devices[i];
            memmove(&inv->devices[i], &inv->devices[i + 1], (size_t)(inv->count - 1 - i) * sizeof c);
            inv->devices[inv->count - 1] = c;
            return;
        }
    }
}

strata_status backend_inventory_from_spec(const char *spec, backend_inventory **out) {
    *out = NULL;
    backend_inventory *inv = calloc(1, sizeof *inv);
    if (!inv) return strata_fail(STRATA_ERR_NOMEM, "devices: out of host memory");
    strata_status st = STRATA_OK;
    bool have_cpu = false;
    if (spec && *spec) {
        backend_spec_entry entries[BACKEND_MAX_DEVICES];
        int n = 0;
        st = backend_spec_parse(spec, entries, BACKEND_MAX_DEVICES - 1, &n);
        int sims = 0;
        for (int i = 0; st == STRATA_OK && i < n; i++) {
            backend_spec_entry *e = &entries[i];
            const char *name = e->name[0] ? e->name : NULL;
            if (e->kind == BACKEND_DEVICE_CPU) {
                st = inventory_add(inv, backend_cpu_device_new(name, e->memory, e->gbps));
                have_cpu = true;
            } else if (e->kind == BACKEND_DEVICE_SIM) {
                char def[32];
                snprintf(def, sizeof def, "sim%d", sims);
                backend_device *d = backend_sim_device_new(name ? name : def, e->memory, e->gbps);
                if (d) d->ordinal = sims;
                sims++;
                st = inventory_add(inv, d);
            } else {
                int found = backend_cuda_count();
                if (found == 0) {
                    st = strata_fail(STRATA_ERR_NOT_FOUND, "device spec entry %d: no CUDA device is usable: %s", i + 1,
                                     backend_cuda_unavailable_reason());
                    break;
                }
                if (e->ordinal >= 0 && e->ordinal >= found) {
                    st = strata_fail(STRATA_ERR_NOT_FOUND, "device spec entry %d: no CUDA device %d (%d found)", i + 1,
                                     e->ordinal, found);
                    break;
                }
                int lo = e->ordinal >= 0 ? e->ordinal : 0, hi = e->ordinal >= 0 ? e->ordinal + 1 : found;
                for (int o = lo; st == STRATA_OK && o < hi; o++) {
                    backend_device *d = NULL;
                    st = backend_cuda_device_new(o, name, e->memory, e->gbps, &d);
                    if (st == STRATA_OK) st = inventory_add(inv, d);
                }
            }
        }
    } else {
        int found = backend_cuda_count();
        for (int o = 0; st == STRATA_OK && o < found; o++) {
            backend_device *d = NULL;
            st = backend_cuda_device_new(o, NULL, 0, 0, &d);
            if (st == STRATA_OK) st = inventory_add(inv, d);
        }
    }
    if (st == STRATA_OK && !have_cpu) st = inventory_add(inv, backend_cpu_device_new(NULL, 0, 0));
    if (st != STRATA_OK) {
        backend_inventory_free(inv);
        return st;
    }
    cpu_last(inv);
    make_labels(inv);
    *out = inv;
    return STRATA_OK;
}

strata_status backend_inventory_default(backend_inventory **out) {
    return backend_inventory_from_spec(getenv("STRATA_DEVICES"), out);
}

void backend_inventory_free(backend_inventory *inv) {
    if (!inv) return;
    for (int i = 0; i < inv->count; i++) backend_device_free(inv->devices[i]);
    free(inv);
}

backend_device *backend_inventory_cpu(const backend_inventory *inv) {
    for (int i = 0; i < inv->count; i++)
        if (inv->devices[i]->kind == BACKEND_DEVICE_CPU) return inv->devices[i];
    return NULL;
}

/* ---- Read-only facts (device.h) ----------------------------------------------------------- */

const char *backend_device_label(const backend_device *dev) { return dev->label; }
const char *backend_device_name(const backend_device *dev) { return dev->name; }
backend_device_kind backend_device_kind_of(const backend_device *dev) { return dev->kind; }
int backend_device_ordinal(const backend_device *dev) { return dev->ordinal; }
bool backend_device_plannable(const backend_device *dev) { return dev->plannable; }
bool backend_device_speed_configured(const backend_device *dev) { return dev->gbps_configured; }
int backend_device_arena_count(const backend_device *dev) { return dev->n_arenas; }
double backend_device_host_link_gbps(const backend_device *dev) { return dev->host_link_gbps; }

size_t backend_device_held_bytes(const backend_device *dev) {
    pthread_mutex_lock(&arena_mu);
    size_t n = dev->arena_bytes;
    pthread_mutex_unlock(&arena_mu);
    return n;
}
