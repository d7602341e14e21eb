/* Loaded models, keep-alive, eviction and FIFO turns; see scheduler.h. */
#include "core/env.h"
#include "server/scheduler.h"

#include <cJSON.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "core/json_util.h"
#include "planner/plan.h"

#define DEFAULT_KEEP_ALIVE_NS (5LL * 60 * 1000000000LL)

typedef enum { RUNNER_LOADING = 0, RUNNER_READY, RUNNER_FAILED } runner_state;

struct sched_runner {
    struct sched_runner *next;
    char *name, *model_path, *digest, *family, *parameter_size, *quantization;
    sched_load_opts opts;
    runner_state state;
    char error[512];          /* load failure, for the waiters */
    strata_engine *engine;
    /* The plan made for it under the lock, which the load allocates exactly */
    strata_load_plan load_plan;
    /* The plan it was loaded from, and the device labels in plan order. */
    plan_result plan;
    char labels[PLAN_MAX_DEVICES][BACKEND_NAME_MAX + 16];
    backend_device_kind kinds[PLAN_MAX_DEVICES];
    int32_t n_ctx;
    /* FIFO turns: a holder has ticket == serving; idle when serving == next_ticket. */
    uint64_t next_ticket, serving;
    bool unload_when_idle;
    atomic_bool cancel;       /* set by an unload or shutdown: the holder stops generating */
    int64_t expires_unix_ns;  /* INT64_MAX = never */
    int64_t last_used_ns;     /* monotonic, for LRU */
};

struct sched {
    pthread_mutex_t mu;
    pthread_cond_t cond;   /* any change: a release, an unload, a load finished */
    pthread_cond_t reaper_cond;
    pthread_t reaper;
    bool stopping;
    backend_inventory *inv;
    uint64_t reserve[BACKEND_MAX_DEVICES];
    int max_loaded;
    sched_runner *runners;
    /* Server-wide load settings from the environment (every load of this server uses them). */
    strata_type kv_type; /* $STRATA_KV_CACHE_TYPE / OLLAMA_KV_CACHE_TYPE */
    int32_t num_parallel; /* $STRATA_NUM_PARALLEL / OLLAMA_NUM_PARALLEL: the KV holds num_ctx x N */
    bool spread;          /* $STRATA_SCHED_SPREAD / OLLAMA_SCHED_SPREAD: every GPU in proportion */
};

sched_load_opts sched_default_load_opts(void) {
    sched_load_opts o = {.num_ctx = 0, .num_batch = 0, .num_gpu = -1, .main_gpu = -1, .num_thread = 0};
    /* The server's default context ($STRATA_CONTEXT_LENGTH, or Ollama's OLLAMA_CONTEXT_LENGTH). */
    const char *ctx = strata_getenv("STRATA_CONTEXT_LENGTH");
    if (ctx && atoi(ctx) > 0) o.num_ctx = atoi(ctx);
    return o;
}

int64_t sched_unix_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

void sched_format_time(int64_t unix_ns, char *buf, size_t cap) {
    time_t secs = (time_t)(unix_ns / 1000000000);
    long nsec = (long)(unix_ns % 1000000000);
    if (nsec < 0) {
        nsec += 1000000000;
        secs -= 1;
    }
    struct tm tm;
    localtime_r(&secs, &tm);
    char date[64];
    strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%S", &tm);
    long off = tm.tm_gmtoff;
    if (off == 0) {
        snprintf(buf, cap, "%s.%09ldZ", date, nsec);
    } else {
        char sign = off < 0 ? '-' : '+';
        if (off < 0) off = -off;
        snprintf(buf, cap, "%s.%09ld%c%02ld:%02ld", date, nsec, sign, off / 3600, (off % 3600) / 60);
    }
}

/* Go's time.ParseDuration: [-+]?([0-9]*(\.[0-9]*)?[a-z]+)+, units ns us µs ms s m h; "0" alone. */
static bool parse_go_duration(const char *s, int64_t *out) {
    bool neg = false;
    if (*s == '-' || *s == '+') neg = *s++ == '-';
    if (strcmp(s, "0") == 0) {
        *out = 0;
        return true;
    }
    if (!*s) return false;
    double total = 0;
    while (*s) {
        char *end = NULL;
        if (!((*s >= '0' && *s <= '9') || *s == '.')) return false;
        errno = 0;
        double v = strtod(s, &end);
        if (end == s || errno) return false;
        s = end;
        double unit;
        if (strncmp(s, "ns", 2) == 0) unit = 1, s += 2;
        else if (strncmp(s, "us", 2) == 0) unit = 1e3, s += 2;
        else if (strncmp(s, "\xc2\xb5s", 3) == 0) unit = 1e3, s += 3;
        else if (strncmp(s, "ms", 2) == 0) unit = 1e6, s += 2;
        else if (*s == 's') unit = 1e9, s += 1;
        else if (*s == 'm') unit = 60e9, s += 1;
        else if (*s == 'h') unit = 3600e9, s += 1;
        else return false;
        total += v * unit;
    }
    if (!isfinite(total)) return false;
    if (total > 9.2e18) total = 9.2e18; /* the caller takes this as "forever" */
    *out = neg ? -(int64_t)total : (int64_t)total;
    return true;
}

int64_t sched_default_keep_alive_ns(void) {
    const char *env = strata_getenv("STRATA_KEEP_ALIVE");
    if (env && *env) {
        cJSON *item = cJSON_CreateString(env);
        int64_t v;
        bool ok = item && sched_parse_keep_alive(item, &v);
        cJSON_Delete(item);
        if (ok) return v;
    }
    return DEFAULT_KEEP_ALIVE_NS;
}

/* Seconds -> ns; negative or beyond KEEP_ALIVE_MAX_S ("forever" for any practical purpose,
 * and where an expiry time would overflow) is -1 (forever), as Ollama clamps large values. */
#define KEEP_ALIVE_MAX_S (100.0 * 365 * 86400)
static int64_t keep_alive_from_seconds(double secs) {
    if (secs < 0 || secs > KEEP_ALIVE_MAX_S) return -1;
    return (int64_t)(secs * 1e9);
}

bool sched_parse_keep_alive(const cJSON *item, int64_t *out_ns) {
    if (!item || cJSON_IsNull(item)) {
        *out_ns = sched_default_keep_alive_ns();
        return true;
    }
    if (cJSON_IsNumber(item)) {
        double v = item->valuedouble;
        if (!isfinite(v)) return false;
        *out_ns = keep_alive_from_seconds(v);
        return true;
    }
    if (!cJSON_IsString(item)) return false;
    const char *s = item->valuestring;
    char *end = NULL;
    errno = 0;
    double secs = strtod(s, &end);
    if (end != s && *end == 0 && !errno && isfinite(secs)) { /* a bare number: seconds */
        *out_ns = keep_alive_from_seconds(secs);
        return true;
    }
    int64_t d;
    if (!parse_go_duration(s, &d)) return false;
    *out_ns = d < 0 || (double)d > KEEP_ALIVE_MAX_S * 1e9 ? -1 : d;
    return true;
}

/* ---- The one load function -------------------------------------------------------------- */

/* The loader's parameters for a model loaded with options o. */
static strata_load_params load_params(const sched *s, const sched_load_opts *o) {
    strata_load_params lp = strata_load_default_params();
    if (o->num_ctx > 0) lp.model.n_ctx = o->num_ctx;
    if (o->num_batch > 0) lp.model.n_batch = o->num_batch;
    if (o->num_thread > 0) lp.model.n_threads = o->num_thread;
    lp.model.embeddings = o->embeddings;
    lp.plan.num_gpu = o->num_gpu;
    lp.plan.main_gpu = o->main_gpu;
    lp.reserve = s->reserve;
    lp.model.kv_type = s->kv_type;
    if (s->num_parallel > 0) lp.num_parallel = s->num_parallel;
    if (s->spread) lp.plan.mode = PLAN_SPREAD;
    return lp;
}

/* Loads r->model_path for r->opts exactly as r->load_plan says (made under the lock by
 * plan_for, the loader's own planning function: runtime/generate.h, "One plan for a
 * load"): one arena per device of exactly the planned bytes, weights copied to GPU-like
 * devices. Called without the scheduler lock. */
static strata_status sched_load_engine(sched *s, sched_runner *r) {
    strata_load_params lp = load_params(s, &r->opts);
    strata_status st = strata_engine_load_with_plan(r->model_path, &lp, s->inv, &r->load_plan, &r->engine);
    if (st != STRATA_OK) return st;
    strata_engine_info info;
    strata_engine_get_info(r->engine, &info);
    r->n_ctx = info.n_ctx;
    return STRATA_OK;
}

/* Bytes really allocated on plan device i by the loaded engine: its arena there. */
static uint64_t runner_allocated(const sched_runner *r, int32_t i) {
    return r->engine ? strata_engine_device_arena(r->engine, i) : 0;
}

/* ---- Table helpers (lock held) ----------------------------------------------------------- */

static bool opts_equal(const sched_load_opts *a, const sched_load_opts *b) {
    return a->num_ctx == b->num_ctx && a->num_batch == b->num_batch && a->num_gpu == b->num_gpu &&
           a->main_gpu == b->main_gpu && a->embeddings == b->embeddings;
}

static bool runner_idle(const sched_runner *r) { return r->state == RUNNER_READY && r->serving == r->next_ticket; }

static void runner_free(sched_runner *r) {
    if (!r) return;
    strata_engine_free(r->engine);
    free(r->name);
    free(r->model_path);
    free(r->digest);
    free(r->family);
    free(r->parameter_size);
    free(r->quantization);
    free(r);
}

static void unlink_runner(sched *s, sched_runner *r) {
    for (sched_runner **p = &s->runners; *p; p = &(*p)->next) {
        if (*p == r) {
            *p = r->next;
            return;
        }
    }
}

static void unload_locked(sched *s, sched_runner *r, const char *why) {
    unlink_runner(s, r);
    fprintf(stderr, "strata: unloaded %s (%s)\n", r->name, why);
    runner_free(r);
    pthread_cond_broadcast(&s->cond);
}

static int count_locked(sched *s) {
    int n = 0;
    for (sched_runner *r = s->runners; r; r = r->next) n++;
    return n;
}

static sched_runner *lru_idle(sched *s, bool needs_gpu_bytes) {
    sched_runner *best = NULL;
    for (sched_runner *r = s->runners; r; r = r->next) {
        if (!runner_idle(r)) continue;
        if (needs_gpu_bytes) {
            bool holds = false;
            for (int32_t i = 0; i < r->plan.n_devices; i++)
                if (r->kinds[i] != BACKEND_DEVICE_CPU && r->plan.dev[i].total_bytes > 0) holds = true;
            if (!holds) continue;
        }
        if (!best || r->last_used_ns < best->last_used_ns) best = r;
    }
    return best;
}

static char *dup_or_empty(const char *s) { return strdup(s ? s : ""); }

/* Plans req against the devices with the loader's planning function; with `others`, GPU-like
 * devices lose what the plans of models still loading put there. */
static strata_status plan_for(sched *s, const sched_request *req, bool others, strata_load_plan *out) {
    /* A GPU-like device's free bytes already lack the arenas of the models loaded on it.
     * Without `others`: as if they were gone (add their arenas back). With: also lacking
     * what models still loading (not yet allocated) were planned to put there. The cpu's
     * MemAvailable already counts what is held. */
    int64_t delta[BACKEND_MAX_DEVICES] = {0};
    for (int32_t i = 0; i < s->inv->count; i++) {
        const backend_device *d = s->inv->devices[i];
        if (backend_device_kind_of(d) == BACKEND_DEVICE_CPU) continue;
        if (!others) {
            delta[i] = (int64_t)backend_device_held_bytes(d);
            continue;
        }
        uint64_t used = 0;
        for (sched_runner *r = s->runners; r; r = r->next) {
            if (r->state != RUNNER_LOADING) continue;
            for (int32_t j = 0; j < r->plan.n_devices; j++)
                if (strcmp(r->labels[j], backend_device_label(d)) == 0) used += r->plan.dev[j].arena_bytes;
        }
        delta[i] = -(int64_t)used;
    }
    strata_load_params lp = load_params(s, &req->opts);
    return strata_load_plan_make(req->model_path, &lp, s->inv, delta, out);
}

/* ---- Acquire / release ------------------------------------------------------------------ */

/* Waits for the turn of `ticket` on r (lock held). Returns false when the server is shutting
 * down first (the ticket is abandoned: nothing is served any more). */
static bool wait_turn(sched *s, sched_runner *r, uint64_t ticket) {
    while (r->serving != ticket && !s->stopping) pthread_cond_wait(&s->cond, &s->mu);
    return r->serving == ticket;
}

/* Gives a turn back (lock held); frees a failed runner once its last waiter has left. */
static void pass_turn(sched *s, sched_runner *r) {
    r->serving++;
    r->last_used_ns = strata_now_ns();
    if (r->state == RUNNER_FAILED && r->serving == r->next_ticket) {
        unlink_runner(s, r);
        runner_free(r);
    }
    pthread_cond_broadcast(&s->cond);
}

strata_status sched_acquire(sched *s, const sched_request *req, atomic_bool *cancel, sched_runner **out,
                            int64_t *load_ns) {
    *out = NULL;
    *load_ns = 0;
    pthread_mutex_lock(&s->mu);
    for (;;) {
        if (s->stopping) {
            pthread_mutex_unlock(&s->mu);
            return strata_fail(STRATA_ERR_CANCELLED, "server is shutting down");
        }
        sched_runner *hit = NULL, *other = NULL;
        for (sched_runner *r = s->runners; r; r = r->next) {
            if (r->state == RUNNER_FAILED || strcmp(r->name, req->name) != 0) continue;
            if (opts_equal(&r->opts, &req->opts) && !r->unload_when_idle) hit = r;
            else other = r;
        }
        if (hit) {
            uint64_t ticket = hit->next_ticket++;
            if (hit->serving != ticket)
                fprintf(stderr, "strata: request for %s waits its turn (%llu ahead)\n", hit->name,
                        (unsigned long long)(ticket - hit->serving));
            if (!wait_turn(s, hit, ticket)) {
                pthread_mutex_unlock(&s->mu);
                return strata_fail(STRATA_ERR_CANCELLED, "server is shutting down");
            }
            if (hit->state == RUNNER_FAILED) {
                strata_status st = strata_fail(STRATA_ERR_INVALID, "%s", hit->error);
                pass_turn(s, hit);
                pthread_mutex_unlock(&s->mu);
                return st;
            }
            if (cancel && atomic_load(cancel)) {
                pass_turn(s, hit);
                pthread_mutex_unlock(&s->mu);
                return strata_fail(STRATA_ERR_CANCELLED, "request cancelled while queued");
            }
            hit->last_used_ns = strata_now_ns();
            hit->expires_unix_ns = INT64_MAX; /* while in use */
            pthread_mutex_unlock(&s->mu);
            *out = hit;
            return STRATA_OK;
        }
        if (other) { /* the same model with other load options: reload */
            if (runner_idle(other)) unload_locked(s, other, "reloading with other options");
            else {
                other->unload_when_idle = true;
                pthread_cond_wait(&s->cond, &s->mu);
            }
            continue;
        }
        if (count_locked(s) >= s->max_loaded) {
            sched_runner *v = lru_idle(s, false);
            if (v) unload_locked(s, v, "too many models loaded");
            else pthread_cond_wait(&s->cond, &s->mu);
            continue;
        }
        /* the plan on devices as if no other model were loaded, and as they are now */
        strata_load_plan *ideal = malloc(sizeof *ideal), *now = malloc(sizeof *now);
        if (!ideal || !now) {
            free(ideal);
            free(now);
            pthread_mutex_unlock(&s->mu);
            return strata_fail(STRATA_ERR_NOMEM, "out of memory");
        }
        strata_status st_ideal = plan_for(s, req, false, ideal);
        if (st_ideal != STRATA_OK) { /* cannot fit even on empty devices: refuse */
            free(ideal);
            free(now);
            pthread_mutex_unlock(&s->mu);
            return st_ideal;
        }
        strata_status st_now = plan_for(s, req, true, now);
        const bool fewer = st_now == STRATA_OK && now->plan.layers_offloaded < ideal->plan.layers_offloaded;
        free(ideal);
        if (st_now != STRATA_OK || fewer) {
            sched_runner *v = lru_idle(s, true);
            if (!v && st_now != STRATA_OK) v = lru_idle(s, false);
            if (v) {
                free(now);
                unload_locked(s, v, "its memory is needed for another model");
                continue;
            }
            if (st_now != STRATA_OK) {
                free(now);
                if (count_locked(s) == 0) {
                    pthread_mutex_unlock(&s->mu);
                    return st_now;
                }
                pthread_cond_wait(&s->cond, &s->mu); /* busy models hold the memory: wait */
                continue;
            }
        }
        /* Reserve the place in the table (and the planned memory), then load unlocked. */
        sched_runner *r = calloc(1, sizeof *r);
        if (!r || !(r->name = dup_or_empty(req->name)) || !(r->model_path = dup_or_empty(req->model_path)) ||
            !(r->digest = dup_or_empty(req->digest)) || !(r->family = dup_or_empty(req->family)) ||
            !(r->parameter_size = dup_or_empty(req->parameter_size)) ||
            !(r->quantization = dup_or_empty(req->quantization))) {
            runner_free(r);
            free(now);
            pthread_mutex_unlock(&s->mu);
            return strata_fail(STRATA_ERR_NOMEM, "out of memory");
        }
        r->opts = req->opts;
        r->load_plan = *now;
        free(now);
        r->plan = r->load_plan.plan;
        memcpy(r->labels, r->load_plan.labels, sizeof r->labels);
        memcpy(r->kinds, r->load_plan.kinds, sizeof r->kinds);
        r->state = RUNNER_LOADING;
        r->next_ticket = 1;
        r->serving = 0;
        r->expires_unix_ns = INT64_MAX;
        r->last_used_ns = strata_now_ns();
        r->next = s->runners;
        s->runners = r;
        pthread_mutex_unlock(&s->mu);

        int64_t t0 = strata_now_ns();
        strata_status st = sched_load_engine(s, r);
        int64_t dt = strata_now_ns() - t0;

        pthread_mutex_lock(&s->mu);
        if (st != STRATA_OK) {
            char err[512];
            snprintf(err, sizeof err, "%s", strata_last_error());
            snprintf(r->error, sizeof r->error, "%s", err);
            fprintf(stderr, "strata: loading %s failed: %s\n", req->name, err);
            r->state = RUNNER_FAILED;
            pass_turn(s, r); /* frees it when nobody waits */
            pthread_mutex_unlock(&s->mu);
            return strata_fail(st, "%s", err);
        }
        r->state = RUNNER_READY;
        /* What was planned is what was allocated (the loader checked it, device by device). */
        r->plan = *strata_engine_plan(r->engine);
        *load_ns = dt;
        fprintf(stderr, "strata: loaded %s: num_ctx %d, %d/%d layers on GPUs, %.1f ms\n", r->name, r->n_ctx,
                r->plan.layers_offloaded, r->plan.layers_total, dt / 1e6);
        for (int32_t i = 0; i < r->plan.n_devices; i++) {
            const plan_device_use *u = &r->plan.dev[i];
            fprintf(stderr, "strata:   %s: layers [%d, %d), planned arena %" PRIu64 " bytes, allocated %" PRIu64 " bytes\n",
                    r->labels[i], u->layer_start, u->layer_end, u->arena_bytes, runner_allocated(r, i));
        }
        if (cancel && atomic_load(cancel)) {
            pass_turn(s, r);
            pthread_cond_broadcast(&s->cond);
            pthread_mutex_unlock(&s->mu);
            return strata_fail(STRATA_ERR_CANCELLED, "request cancelled while loading");
        }
        pthread_cond_broadcast(&s->cond);
        pthread_mutex_unlock(&s->mu);
        *out = r;
        return STRATA_OK;
    }
}

strata_engine *sched_runner_engine(sched_runner *r) { return r->engine; }
atomic_bool *sched_runner_cancel_flag(sched_runner *r) { return &r->cancel; }
int32_t sched_runner_n_ctx(sched_runner *r) { return r->n_ctx; }

void sched_release(sched *s, sched_runner *r, int64_t keep_alive_ns) {
    pthread_mutex_lock(&s->mu);
    const int64_t now = sched_unix_ns();
    if (keep_alive_ns < 0 || keep_alive_ns > INT64_MAX - now) r->expires_unix_ns = INT64_MAX; /* forever */
    else r->expires_unix_ns = now + keep_alive_ns;
    pass_turn(s, r);
    if (runner_idle(r) && (keep_alive_ns == 0 || r->unload_when_idle))
        unload_locked(s, r, keep_alive_ns == 0 ? "keep_alive 0" : "requested");
    pthread_cond_signal(&s->reaper_cond);
    pthread_mutex_unlock(&s->mu);
}

int sched_unload(sched *s, const char *name) {
    int n = 0;
    pthread_mutex_lock(&s->mu);
    for (sched_runner *r = s->runners, *next; r; r = next) {
        next = r->next;
        if (r->state == RUNNER_FAILED || strcmp(r->name, name) != 0) continue;
        n++;
        if (runner_idle(r)) {
            unload_locked(s, r, "requested");
        } else {
            r->unload_when_idle = true;
            atomic_store(&r->cancel, true); /* the generation in progress stops at its next token */
        }
    }
    pthread_mutex_unlock(&s->mu);
    return n;
}

bool sched_wait_unloaded(sched *s, const char *name, int64_t timeout_ns) {
    int64_t deadline = sched_unix_ns() + timeout_ns;
    pthread_mutex_lock(&s->mu);
    for (;;) {
        bool present = false;
        for (sched_runner *r = s->runners; r; r = r->next)
            if (r->state != RUNNER_FAILED && strcmp(r->name, name) == 0) present = true;
        int64_t now = sched_unix_ns();
        if (!present || now >= deadline || s->stopping) {
            pthread_mutex_unlock(&s->mu);
            return !present;
        }
        struct timespec ts = {(time_t)(deadline / 1000000000), (long)(deadline % 1000000000)};
        pthread_cond_timedwait(&s->cond, &s->mu, &ts);
    }
}

void sched_shutdown(sched *s) {
    pthread_mutex_lock(&s->mu);
    s->stopping = true;
    for (sched_runner *r = s->runners; r; r = r->next) atomic_store(&r->cancel, true);
    pthread_cond_broadcast(&s->cond);
    pthread_cond_broadcast(&s->reaper_cond);
    pthread_mutex_unlock(&s->mu);
}

int sched_count(sched *s) {
    pthread_mutex_lock(&s->mu);
    int n = count_locked(s);
    pthread_mutex_unlock(&s->mu);
    return n;
}

static void *reaper_main(void *arg) {
    sched *s = arg;
    pthread_mutex_lock(&s->mu);
    while (!s->stopping) {
        int64_t now = sched_unix_ns(), next = INT64_MAX;
        for (sched_runner *r = s->runners, *nx; r; r = nx) {
            nx = r->next;
            if (!runner_idle(r) || r->expires_unix_ns == INT64_MAX) continue;
            if (r->expires_unix_ns <= now) unload_locked(s, r, "keep_alive expired");
            else if (r->expires_unix_ns < next) next = r->expires_unix_ns;
        }
        /* Wake at the next expiry, at most a second from now (the wall clock may jump). */
        int64_t wait = next == INT64_MAX ? 1000000000LL : next - now;
        if (wait > 1000000000LL) wait = 1000000000LL;
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        int64_t at = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec + wait;
        ts.tv_sec = (time_t)(at / 1000000000);
        ts.tv_nsec = (long)(at % 1000000000);
        pthread_cond_timedwait(&s->reaper_cond, &s->mu, &ts);
    }
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

strata_status sched_new(backend_inventory *inv, int max_loaded, sched **out) {
    *out = NULL;
    sched *s = calloc(1, sizeof *s);
    if (!s) {
        backend_inventory_free(inv);
        return strata_fail(STRATA_ERR_NOMEM, "out of memory");
    }
    s->inv = inv;
    s->max_loaded = max_loaded < 1 ? 1 : max_loaded;
    s->kv_type = strata_load_default_params().model.kv_type;
    const char *kv = strata_getenv("STRATA_KV_CACHE_TYPE");
    if (kv) {
        strata_type t;
        char low[16];
        size_t n = 0;
        for (; kv[n] && n + 1 < sizeof low; n++) low[n] = (char)((kv[n] >= 'A' && kv[n] <= 'Z') ? kv[n] + 32 : kv[n]);
        low[n] = 0;
        if (!strata_type_from_name(low, &t) || (t != STRATA_TYPE_F16 && t != STRATA_TYPE_F32 && t != STRATA_TYPE_Q8_0)) {
            backend_inventory_free(inv);
            free(s);
            return strata_fail(STRATA_ERR_INVALID, "STRATA_KV_CACHE_TYPE/OLLAMA_KV_CACHE_TYPE: '%s' is not one of f16, f32, q8_0", kv);
        }
        s->kv_type = t;
    }
    const char *np = strata_getenv("STRATA_NUM_PARALLEL");
    if (np) {
        char *end = NULL;
        long v = strtol(np, &end, 10);
        if (end == np || *end || v < 1 || v > 64) {
            backend_inventory_free(inv);
            free(s);
            return strata_fail(STRATA_ERR_INVALID, "STRATA_NUM_PARALLEL/OLLAMA_NUM_PARALLEL: '%s' is not a number from 1 to 64", np);
        }
        s->num_parallel = (int32_t)v;
    }
    const char *sp = strata_getenv("STRATA_SCHED_SPREAD");
    s->spread = sp && strcmp(sp, "0") != 0 && strcasecmp(sp, "false") != 0;
    strata_status st = plan_reserve_parse(inv, strata_getenv("STRATA_GPU_RESERVE"), NULL, s->reserve);
    if (st != STRATA_OK) {
        backend_inventory_free(inv);
        free(s);
        return st;
    }
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cond, NULL);
    pthread_cond_init(&s->reaper_cond, NULL);
    if (pthread_create(&s->reaper, NULL, reaper_main, s) != 0) {
        backend_inventory_free(inv);
        free(s);
        return strata_fail(STRATA_ERR_NOMEM, "cannot start the keep-alive thread");
    }
    *out = s;
    return STRATA_OK;
}

void sched_free(sched *s) {
    if (!s) return;
    pthread_mutex_lock(&s->mu);
    s->stopping = true;
    pthread_cond_broadcast(&s->reaper_cond);
    pthread_cond_broadcast(&s->cond);
    pthread_mutex_unlock(&s->mu);
    pthread_join(s->reaper, NULL);
    while (s->runners) {
        sched_runner *r = s->runners;
        s->runners = r->next;
        runner_free(r);
    }
    backend_inventory_free(s->inv);
    pthread_cond_destroy(&s->cond);
    pthread_cond_destroy(&s->reaper_cond);
    pthread_mutex_destroy(&s->mu);
    free(s);
}

/* ---- /api/ps ---------------------------------------------------------------------------- */

cJSON *sched_ps_json(sched *s) {
    cJSON *arr = cJSON_CreateArray();
    if (!arr) return NULL;
    pthread_mutex_lock(&s->mu);
    for (sched_runner *r = s->runners; r; r = r->next) {
        if (r->state != RUNNER_READY) continue;
        cJSON *o = cJSON_CreateObject();
        cJSON_AddItemToArray(arr, o);
        cJSON_AddStringToObject(o, "name", r->name);
        cJSON_AddStringToObject(o, "model", r->name);
        uint64_t weights = r->engine ? strata_engine_file_bytes(r->engine) : 0, alloc = 0, vram = 0;
        for (int32_t i = 0; i < r->plan.n_devices; i++) {
            uint64_t a = runner_allocated(r, i);
            alloc += a;
            if (r->kinds[i] != BACKEND_DEVICE_CPU) vram += a;
        }
        strata_json_add_u64(o, "size", weights + alloc);
        const char *hex = strncmp(r->digest, "sha256:", 7) == 0 ? r->digest + 7 : r->digest;
        cJSON_AddStringToObject(o, "digest", hex);
        cJSON *d = cJSON_AddObjectToObject(o, "details");
        cJSON_AddStringToObject(d, "parent_model", "");
        cJSON_AddStringToObject(d, "format", "gguf");
        cJSON_AddStringToObject(d, "family", r->family);
        cJSON *fams = cJSON_AddArrayToObject(d, "families");
        cJSON_AddItemToArray(fams, cJSON_CreateString(r->family));
        cJSON_AddStringToObject(d, "parameter_size", r->parameter_size);
        cJSON_AddStringToObject(d, "quantization_level", r->quantization);
        char t[64];
        /* Ollama prints a far-future time for "forever"; so do we (a century ahead). */
        int64_t exp = r->expires_unix_ns == INT64_MAX ? sched_unix_ns() + 100LL * 365 * 86400 * 1000000000LL
                                                      : r->expires_unix_ns;
        if (r->expires_unix_ns == INT64_MAX && !runner_idle(r)) exp = sched_unix_ns() + sched_default_keep_alive_ns();
        sched_format_time(exp, t, sizeof t);
        cJSON_AddStringToObject(o, "expires_at", t);
        strata_json_add_u64(o, "size_vram", vram);
        cJSON_AddNumberToObject(o, "context_length", r->n_ctx);
        /* Strata's addition: the plan per device beside what was really allocated. */
        cJSON *devs = cJSON_AddArrayToObject(o, "devices");
        for (int32_t i = 0; i < r->plan.n_devices; i++) {
            const plan_device_use *u = &r->plan.dev[i];
            cJSON *dv = plan_device_use_json(devs, r->labels[i], r->kinds[i], u);
            strata_json_add_u64(dv, "planned_bytes", u->arena_bytes);
            strata_json_add_u64(dv, "planned_total_bytes", u->total_bytes);
            strata_json_add_u64(dv, "allocated_bytes", runner_allocated(r, i));
            if (r->engine && r->kinds[i] != BACKEND_DEVICE_CPU && runner_allocated(r, i)) {
                /* measured by the device: free before the load minus after */
                const uint64_t m = strata_engine_device_measured(r->engine, i), a = runner_allocated(r, i);
                strata_json_add_u64(dv, "measured_bytes", m);
                strata_json_add_u64(dv, "unaccounted_bytes", m > a ? m - a : 0);
            }
        }
        cJSON_AddNumberToObject(o, "layers_offloaded", r->plan.layers_offloaded);
        cJSON_AddNumberToObject(o, "layers_total", r->plan.layers_total);
    }
    pthread_mutex_unlock(&s->mu);
    return arr;
}
