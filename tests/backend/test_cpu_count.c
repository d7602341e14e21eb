/* The default thread counts: physical cores among the CPUs the process may use, capped by
 * its cgroup's CPU quota. Read from a made-up sysfs and cgroup tree (SMT siblings, two
 * packages, nested and v1 cgroups), and live, by pinning this process to one CPU. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "backend/cpu/cpu_count.h"

static char root[256];

static void write_file(const char *rel, const char *text) {
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", root, rel);
    /* make every parent folder */
    for (char *p = path + strlen(root) + 1; (p = strchr(p, '/')); p++) {
        *p = 0;
        mkdir(path, 0755);
        *p = '/';
    }
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static int setup(void **state) {
    (void)state;
    snprintf(root, sizeof root, "/tmp/strata_cpu_count_XXXXXX");
    return mkdtemp(root) ? 0 : -1;
}

static int teardown(void **state) {
    (void)state;
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
    return system(cmd) == 0 ? 0 : -1;
}

static cpu_set_t cpus(const int *list, int n) {
    cpu_set_t s;
    CPU_ZERO(&s);
    for (int i = 0; i < n; i++) CPU_SET(list[i], &s);
    return s;
}

/* Eight CPUs numbered as Linux numbers a two-socket SMT machine: cpu0-3 the first threads of
 * (package, core) (0,0) (0,1) (1,0) (1,1), cpu4-7 their second threads. Core ids repeat
 * across packages. */
static void test_cores(void **state) {
    (void)state;
    static const int pkg[8] = {0, 0, 1, 1, 0, 0, 1, 1}, core[8] = {0, 1, 0, 1, 0, 1, 0, 1};
    for (int c = 0; c < 8; c++) {
        char rel[128], v[16];
        snprintf(rel, sizeof rel, "sys/cpu%d/topology/physical_package_id", c);
        snprintf(v, sizeof v, "%d\n", pkg[c]);
        write_file(rel, v);
        snprintf(rel, sizeof rel, "sys/cpu%d/topology/core_id", c);
        snprintf(v, sizeof v, "%d\n", core[c]);
        write_file(rel, v);
    }
    char sys[300];
    snprintf(sys, sizeof sys, "%s/sys", root);
    cpu_set_t s = cpus((const int[]){0, 1, 2, 3, 4, 5, 6, 7}, 8);
    assert_int_equal(cpu_count_cores_in(sys, &s), 4);
    s = cpus((const int[]){0, 4}, 2); /* two threads of one core */
    assert_int_equal(cpu_count_cores_in(sys, &s), 1);
    s = cpus((const int[]){0, 2}, 2); /* core 0 of each package */
    assert_int_equal(cpu_count_cores_in(sys, &s), 2);
    s = cpus((const int[]){2, 3, 6}, 3);
    assert_int_equal(cpu_count_cores_in(sys, &s), 2);
    s = cpus((const int[]){5}, 1);
    assert_int_equal(cpu_count_cores_in(sys, &s), 1);
    s = cpus((const int[]){3, 9}, 2); /* cpu9 has no topology: unknown, the caller falls back */
    assert_int_equal(cpu_count_cores_in(sys, &s), 0);
}

static void test_quota_v2(void **state) {
    (void)state;
    char cg[300];
    snprintf(cg, sizeof cg, "%s/v2", root);
    write_file("v2/cpu.max", "max 100000\n");
    assert_int_equal(cpu_count_quota_in(cg, "0::/\n"), 0); /* no limit */
    write_file("v2/cpu.max", "250000 100000\n");
    assert_int_equal(cpu_count_quota_in(cg, "0::/\n"), 2); /* 2.5 CPUs: 2 threads */
    write_file("v2/cpu.max", "50000 100000\n");
    assert_int_equal(cpu_count_quota_in(cg, "0::/\n"), 1); /* half a CPU: still one */
    /* nested: a limit on an ancestor applies, the smallest wins */
    write_file("v2/cpu.max", "max 100000\n");
    write_file("v2/a/cpu.max", "300000 100000\n");
    write_file("v2/a/b/cpu.max", "max 100000\n");
    assert_int_equal(cpu_count_quota_in(cg, "0::/a/b\n"), 3);
    write_file("v2/a/b/cpu.max", "100000 100000\n");
    assert_int_equal(cpu_count_quota_in(cg, "0::/a/b\n"), 1);
    /* a cgroup whose folder is not mounted here (no cgroup namespace): its ancestors, then
     * the root, which is the container's own cgroup */
    write_file("v2/cpu.max", "400000 100000\n");
    assert_int_equal(cpu_count_quota_in(cg, "0::/docker/abc\n"), 4);
    assert_int_equal(cpu_count_quota_in(cg, ""), 0);
    assert_int_equal(cpu_count_quota_in(cg, "garbage without colons"), 0);
}

static void test_quota_v1(void **state) {
    (void)state;
    char cg[300];
    snprintf(cg, sizeof cg, "%s/v1", root);
    const char *self = "12:memory:/docker/x\n4:cpu,cpuacct:/docker/x\n1:name=systemd:/docker/x\n";
    write_file("v1/cpu,cpuacct/docker/x/cpu.cfs_quota_us", "200000\n");
    write_file("v1/cpu,cpuacct/docker/x/cpu.cfs_period_us", "100000\n");
    assert_int_equal(cpu_count_quota_in(cg, self), 2);
    write_file("v1/cpu,cpuacct/docker/x/cpu.cfs_quota_us", "-1\n");
    assert_int_equal(cpu_count_quota_in(cg, self), 0);
    /* inside the container the hierarchy is mounted at its own cgroup */
    write_file("v1/cpu,cpuacct/cpu.cfs_quota_us", "350000\n");
    write_file("v1/cpu,cpuacct/cpu.cfs_period_us", "100000\n");
    assert_int_equal(cpu_count_quota_in(cg, self), 3);
    /* cpuacct alone is not the cpu controller */
    assert_int_equal(cpu_count_quota_in(cg, "3:cpuacct:/docker/x\n"), 0);
}

/* This process pinned to one CPU counts one core and one usable CPU, whatever the machine. */
static void test_live_affinity(void **state) {
    (void)state;
    cpu_set_t all;
    assert_int_equal(sched_getaffinity(0, sizeof all, &all), 0);
    const int usable = cpu_count_usable(), cores = cpu_count_physical_cores();
    assert_true(cores >= 1 && cores <= usable && usable <= CPU_COUNT(&all));
    int first = 0;
    while (!CPU_ISSET(first, &all)) first++;
    cpu_set_t one;
    CPU_ZERO(&one);
    CPU_SET(first, &one);
    assert_int_equal(sched_setaffinity(0, sizeof one, &one), 0);
    const int usable1 = cpu_count_usable(), cores1 = cpu_count_physical_cores();
    assert_int_equal(sched_setaffinity(0, sizeof all, &all), 0);
    assert_int_equal(usable1, 1);
    assert_int_equal(cores1, 1);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cores),
        cmocka_unit_test(test_quota_v2),
        cmocka_unit_test(test_quota_v1),
        cmocka_unit_test(test_live_affinity),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
