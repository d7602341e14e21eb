/* Devices: sizes, the device-spec grammar and its errors, the inventory, the sim device's
 * hard capacity and failure injection, the cpu device, and CUDA discovery without a GPU. */
#include "testdata.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <signal.h>

#include "backend/device_impl.h"
#include "backend/ops.h"
#include "proc.h"

#define GiB (1024ull * 1024ull * 1024ull)
#define MiB (1024ull * 1024ull)

static void test_sizes(void **state) {
    (void)state;
    static const struct {
        const char *text;
        uint64_t bytes;
    } ok[] = {
        {"0", 0},
        {"12GiB", 12 * GiB},
        {"12 GiB", 12 * GiB},
        {"12gib", 12 * GiB},
        {"1.5GiB", 3 * GiB / 2},
        {"512MiB", 512 * MiB},
        {"256 MiB", 256 * MiB},
        {"1KiB", 1024},
        {"7B", 7},
        {"1KB", 1000},
        {"2MB", 2000000},
        {"12GB", 12000000000ull},
        {"1TiB", 1024 * GiB},
        {"0.5KB", 500},
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        uint64_t v = 1;
        if (backend_parse_size(ok[i].text, &v) != STRATA_OK) fail_msg("%s: %s", ok[i].text, strata_last_error());
        assert_true(v == ok[i].bytes);
    }
    static const char *const bad[] = {"", "GiB", "12", "12XB", "12 G", "-1GiB", "1.5B", "1e3MiB", "99999999999TiB"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        uint64_t v;
        if (backend_parse_size(bad[i], &v) == STRATA_OK) fail_msg("'%s' accepted", bad[i]);
        assert_non_null(strstr(strata_last_error(), "size"));
    }
}

static void test_spec_parse(void **state) {
    (void)state;
    backend_spec_entry e[8];
    int n = 0;
    assert_int_equal(backend_spec_parse("sim:12GiB:360:RTX3060,sim:12GiB:288:A2000,sim:6GiB:288:A2000", e, 8, &n),
                     STRATA_OK);
    assert_int_equal(n, 3);
    assert_int_equal(e[0].kind, BACKEND_DEVICE_SIM);
    assert_true(e[0].memory == 12 * GiB);
    assert_true(e[0].gbps == 360.0);
    assert_string_equal(e[0].name, "RTX3060");
    assert_true(e[2].memory == 6 * GiB);
    assert_string_equal(e[2].name, "A2000");

    assert_int_equal(backend_spec_parse(" cpu::40 , cuda:0:12GiB , sim:1GB ", e, 8, &n), STRATA_OK);
    assert_int_equal(n, 3);
    assert_int_equal(e[0].kind, BACKEND_DEVICE_CPU);
    assert_true(e[0].memory == 0);
    assert_true(e[0].gbps == 40.0);
    assert_int_equal(e[1].kind, BACKEND_DEVICE_CUDA);
    assert_int_equal(e[1].ordinal, 0);
    assert_true(e[1].memory == 12 * GiB);
    assert_true(e[2].memory == 1000000000ull);
    assert_true(e[2].gbps == 0);
    assert_string_equal(e[2].name, "");

    assert_int_equal(backend_spec_parse("cuda", e, 8, &n), STRATA_OK);
    assert_int_equal(e[0].ordinal, -1);
}

/* Each bad spec must fail with a message naming the field (and, for field errors, where). */
static void test_spec_errors(void **state) {
    (void)state;
    static const struct {
        const char *spec;
        const char *must_contain[3];
    } bad[] = {
        {"gpu:12GiB", {"entry 1", "field 1 (KIND)", "column 1"}},
        {"sim:12GiB,sim:12XB", {"entry 2", "field 2 (MEMORY)", "column 15"}},
        {"sim:12GiB:fast", {"entry 1", "field 3 (GBPS)", "'fast'"}},
        {"sim:12GiB:0", {"field 3 (GBPS)", NULL, NULL}},
        {"sim:12GiB:360:bad name", {"field 4 (NAME)", NULL, NULL}},
        {"sim:12GiB:360:A:B", {"field 5", "too many fields", NULL}},
        {"sim", {"field 2 (MEMORY)", "needs its memory", NULL}},
        {"sim::360", {"field 2 (MEMORY)", NULL, NULL}},
        {"sim:0GiB", {"field 2 (MEMORY)", "more than 0", NULL}},
        {"sim:12", {"field 2 (MEMORY)", "no unit", NULL}},
        {"cuda:x", {"field 2 (ORDINAL)", NULL, NULL}},
        {"sim:1GiB,,sim:1GiB", {"entry 2", "empty", NULL}},
        {"", {"entry 1", "empty", NULL}},
        {"cpu,cpu", {"second cpu", NULL, NULL}},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        backend_spec_entry e[8];
        int n;
        if (backend_spec_parse(bad[i].spec, e, 8, &n) == STRATA_OK) fail_msg("'%s' accepted", bad[i].spec);
        const char *msg = strata_last_error();
        for (int k = 0; k < 3 && bad[i].must_contain[k]; k++)
            if (!strstr(msg, bad[i].must_contain[k]))
                fail_msg("'%s': message '%s' lacks '%s'", bad[i].spec, msg, bad[i].must_contain[k]);
    }
}

static void test_inventory(void **state) {
    (void)state;
    backend_inventory *inv = NULL;
    assert_int_equal(
        backend_inventory_from_spec("sim:12GiB:360:RTX3060,sim:12GiB:288:A2000,sim:6GiB:288:A2000", &inv),
        STRATA_OK);
    assert_int_equal(inv->count, 4); /* the cpu is added as the fallback */
    assert_string_equal(inv->devices[0]->label, "RTX3060");
    assert_string_equal(inv->devices[1]->label, "A2000 #1");
    assert_string_equal(inv->devices[2]->label, "A2000 #2");
    assert_int_equal(inv->devices[3]->kind, BACKEND_DEVICE_CPU);
    assert_ptr_equal(backend_inventory_cpu(inv), inv->devices[3]);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(inv->devices[i]->kind, BACKEND_DEVICE_SIM);
        assert_true(inv->devices[i]->plannable);
    }
    uint64_t free_bytes = 0;
    assert_int_equal(backend_device_free_bytes(inv->devices[2], &free_bytes), STRATA_OK);
    assert_true(free_bytes == 6 * GiB);
    assert_true(backend_device_speed_gbps(inv->devices[0]) == 360.0);
    backend_inventory_free(inv);

    /* cpu given in the middle moves last; default sim names */
    assert_int_equal(backend_inventory_from_spec("cpu:8GiB:25,sim:1GiB,sim:2GiB", &inv), STRATA_OK);
    assert_int_equal(inv->count, 3);
    assert_string_equal(inv->devices[0]->label, "sim0");
    assert_string_equal(inv->devices[1]->label, "sim1");
    assert_int_equal(inv->devices[2]->kind, BACKEND_DEVICE_CPU);
    assert_true(backend_device_speed_gbps(inv->devices[2]) == 25.0);
    assert_int_equal(backend_device_free_bytes(inv->devices[2], &free_bytes), STRATA_OK);
    assert_true(free_bytes == 8 * GiB); /* the host memory to plan with, as given */
    assert_true(backend_device_total_bytes(inv->devices[2]) == 8 * GiB);
    backend_inventory_free(inv);

    assert_int_not_equal(backend_inventory_from_spec("sim:1GiB,bogus", &inv), STRATA_OK);
    assert_null(inv);
}

static void test_sim_capacity(void **state) {
    (void)state;
    backend_device *d = backend_sim_device_new("s", 1 * MiB, 100);
    assert_non_null(d);
    void *p = NULL;
    /* past the capacity: fails like cudaMalloc, allocates nothing */
    assert_int_equal(backend_device_arena_alloc(d, MiB + 1, &p), STRATA_ERR_NOMEM);
    assert_null(p);
    assert_non_null(strstr(strata_last_error(), "out of memory"));
    assert_null(d->arena);
    /* exactly the capacity fits */
    assert_int_equal(backend_device_arena_alloc(d, MiB, &p), STRATA_OK);
    assert_non_null(p);
    assert_true(((uintptr_t)p % BACKEND_ARENA_ALIGN) == 0);
    uint64_t free_bytes = 1;
    assert_int_equal(backend_device_free_bytes(d, &free_bytes), STRATA_OK);
    assert_true(free_bytes == 0);
    /* full: a second arena (a second model) is refused like cudaMalloc */
    void *q = NULL;
    assert_int_equal(backend_device_arena_alloc(d, 64, &q), STRATA_ERR_NOMEM);
    /* copies in and out, bounds-checked */
    char in[32] = "hello arena", out[32] = {0};
    assert_int_equal(backend_device_copy_in(d, (char *)p + 100, in, sizeof in), STRATA_OK);
    assert_int_equal(backend_device_copy_out(d, out, (char *)p + 100, sizeof out), STRATA_OK);
    assert_string_equal(out, "hello arena");
    assert_int_equal(backend_device_copy_in(d, (char *)p + MiB - 8, in, sizeof in), STRATA_ERR_INVALID);
    assert_int_equal(backend_device_copy_out(d, out, in, sizeof out), STRATA_ERR_INVALID);
    backend_device_arena_free(d);
    assert_int_equal(backend_device_free_bytes(d, &free_bytes), STRATA_OK);
    assert_true(free_bytes == MiB);

    /* one arena per loaded model: two models share the capacity, each releases its own */
    void *a = NULL, *b = NULL;
    assert_int_equal(backend_device_arena_alloc(d, MiB / 2, &a), STRATA_OK);
    assert_int_equal(backend_device_arena_alloc(d, MiB / 2 + 64, &b), STRATA_ERR_NOMEM);
    assert_int_equal(backend_device_arena_alloc(d, MiB / 4, &b), STRATA_OK);
    assert_true(d->arena_bytes == MiB / 2 + MiB / 4 && d->n_arenas == 2);
    assert_int_equal(backend_device_copy_in(d, b, in, sizeof in), STRATA_OK);
    backend_device_arena_release(d, a);
    assert_true(d->arena_bytes == MiB / 4 && d->arena == b);
    assert_int_equal(backend_device_copy_in(d, a, in, sizeof in), STRATA_ERR_INVALID);
    backend_device_arena_release(d, b);
    assert_true(d->arena_bytes == 0 && d->arena == NULL && d->n_arenas == 0);

    /* injected failure: the 2nd allocation from now fails, cleanly */
    backend_sim_fail_alloc(d, 2);
    assert_int_equal(backend_device_arena_alloc(d, 4096, &p), STRATA_OK);
    backend_device_arena_free(d);
    assert_int_equal(backend_device_arena_alloc(d, 4096, &p), STRATA_ERR_NOMEM);
    assert_non_null(strstr(strata_last_error(), "injected"));
    assert_null(d->arena);
    assert_int_equal(backend_device_arena_alloc(d, 4096, &p), STRATA_OK);
    backend_device_free(d); /* frees the arena too (ASan checks for leaks) */
}

static void test_sim_env_injection(void **state) {
    (void)state;
    backend_device *d = backend_sim_device_new("s", MiB, 0);
    assert_true(backend_device_speed_gbps(d) == BACKEND_SIM_DEFAULT_GBPS);
    char num[32];
    snprintf(num, sizeof num, "%llu", (unsigned long long)backend_sim_alloc_attempts() + 1);
    setenv("STRATA_SIM_FAIL_ALLOC", num, 1);
    void *p;
    assert_int_equal(backend_device_arena_alloc(d, 64, &p), STRATA_ERR_NOMEM);
    assert_int_equal(backend_device_arena_alloc(d, 64, &p), STRATA_OK);
    unsetenv("STRATA_SIM_FAIL_ALLOC");
    backend_device_free(d);
}

static void test_cpu_device(void **state) {
    (void)state;
    backend_device *c = backend_cpu_device_new(NULL, 0, 0);
    assert_non_null(c);
    assert_string_equal(c->name, "cpu");
    uint64_t free_bytes = 0;
    assert_int_equal(backend_device_free_bytes(c, &free_bytes), STRATA_OK);
    assert_true(free_bytes > 0);
    assert_true(free_bytes <= backend_device_total_bytes(c));
    /* measured lazily, once, and then remembered */
    double g = backend_device_speed_gbps(c);
    assert_true(g > 0.1 && g < 10000);
    assert_true(backend_device_speed_gbps(c) == g);
    void *p;
    assert_int_equal(backend_device_arena_alloc(c, 1000, &p), STRATA_OK);
    assert_true(((uintptr_t)p % BACKEND_ARENA_ALIGN) == 0);
    backend_device_free(c);

    /* a cpu with configured memory: an arena over it is refused */
    c = backend_cpu_device_new("host", 1 * MiB, 30);
    assert_int_equal(backend_device_arena_alloc(c, 2 * MiB, &p), STRATA_ERR_NOMEM);
    assert_int_equal(backend_device_free_bytes(c, &free_bytes), STRATA_OK);
    assert_true(free_bytes <= MiB);
    backend_device_free(c);
}

/* This machine may have the toolkit but no GPU: discovery must find none, without error, say
 * why, and a spec naming a GPU must fail cleanly with that reason. Where a GPU exists, it is
 * listed and plannable (it has an op table). */
static void test_cuda_discovery(void **state) {
    (void)state;
    int n = backend_cuda_count();
    assert_true(n >= 0);
    backend_inventory *inv = NULL;
    assert_int_equal(backend_inventory_from_spec(NULL, &inv), STRATA_OK);
    assert_int_equal(inv->count, n + 1);
    for (int i = 0; i < n; i++) {
        assert_int_equal(inv->devices[i]->kind, BACKEND_DEVICE_CUDA);
        assert_true(inv->devices[i]->plannable);
        assert_non_null(backend_device_compute(inv->devices[i]));
        uint64_t f = 0;
        assert_int_equal(backend_device_free_bytes(inv->devices[i], &f), STRATA_OK);
        assert_true(f <= inv->devices[i]->total_bytes);
        assert_true(backend_device_speed_gbps(inv->devices[i]) > 0);
        print_message("cuda %d: %s, %llu of %llu bytes free, %.0f GB/s\n", i, inv->devices[i]->name,
                      (unsigned long long)f, (unsigned long long)inv->devices[i]->total_bytes,
                      backend_device_speed_gbps(inv->devices[i]));
    }
    backend_inventory_free(inv);
    char spec[64];
    snprintf(spec, sizeof spec, "cuda:%d:12GiB", n);
    assert_int_equal(backend_inventory_from_spec(spec, &inv), STRATA_ERR_NOT_FOUND);
    assert_non_null(strstr(strata_last_error(), "no CUDA device"));
    if (n == 0) {
        const char *why = backend_cuda_unavailable_reason();
        assert_non_null(why);
        print_message("no CUDA device: %s\n", why);
        assert_non_null(strstr(strata_last_error(), why));
        /* "every CUDA device" with none: refused, with the reason, not the cpu alone */
        assert_int_equal(backend_inventory_from_spec("cuda", &inv), STRATA_ERR_NOT_FOUND);
        assert_non_null(strstr(strata_last_error(), why));
    } else {
        assert_null(backend_cuda_unavailable_reason());
    }
    if (n > 0) {
        assert_int_equal(backend_inventory_from_spec("cuda:0:1GiB", &inv), STRATA_OK);
        uint64_t f = 0;
        assert_int_equal(backend_device_free_bytes(inv->devices[0], &f), STRATA_OK);
        assert_true(f <= GiB);
        void *p;
        assert_int_equal(backend_device_arena_alloc(inv->devices[0], 2 * GiB, &p), STRATA_ERR_NOMEM);
        assert_int_equal(backend_device_arena_alloc(inv->devices[0], MiB, &p), STRATA_OK);
        char in[16] = "gpu", out[16] = {0};
        assert_int_equal(backend_device_copy_in(inv->devices[0], p, in, sizeof in), STRATA_OK);
        assert_int_equal(backend_device_copy_out(inv->devices[0], out, p, sizeof out), STRATA_OK);
        assert_string_equal(out, "gpu");
        backend_inventory_free(inv);
    }
}

/* Strict mode: a host read of a sim arena outside the sim's ops faults; the sim's own copies
 * work; without strict mode the same read works (so the fault is the mode's doing). */
static void test_sim_strict(void **state) {
    (void)state;
    backend_device *d = backend_sim_device_new("g", 1 << 20, 100);
    assert_non_null(d);
    backend_sim_set_strict(d, true);
    assert_true(backend_sim_strict(d));
    void *a = NULL;
    assert_int_equal(backend_device_arena_alloc(d, 100000, &a), STRATA_OK);
    const uint8_t in[4] = {1, 2, 3, 4};
    uint8_t out[4] = {0};
    assert_int_equal(backend_device_copy_in(d, (uint8_t *)a + 4096, in, 4), STRATA_OK);
    assert_int_equal(backend_device_copy_out(d, out, (uint8_t *)a + 4096, 4), STRATA_OK);
    assert_memory_equal(in, out, 4);
    assert_int_equal(proc_child_read((const uint8_t *)a + 4096), SIGSEGV);
    assert_int_equal(proc_child_read((const uint8_t *)a + 99999), SIGSEGV);
    /* an arena made later is closed too */
    void *b = NULL;
    assert_int_equal(backend_device_arena_alloc(d, 5000, &b), STRATA_OK);
    assert_int_equal(proc_child_read((const uint8_t *)b), SIGSEGV);
    backend_sim_set_strict(d, false);
    assert_int_equal(proc_child_read((const uint8_t *)a + 4096), 0);
    backend_device_free(d);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sizes),          cmocka_unit_test(test_spec_parse),
        cmocka_unit_test(test_spec_errors),    cmocka_unit_test(test_inventory),
        cmocka_unit_test(test_sim_capacity),   cmocka_unit_test(test_sim_env_injection),
        cmocka_unit_test(test_cpu_device),     cmocka_unit_test(test_cuda_discovery),
        cmocka_unit_test(test_sim_strict),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
