/* CPUs this process may use (see cpu_count.h). */
#include "backend/cpu/cpu_count.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int read_long(const char *path, long *out) {
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    const int ok = fscanf(f, "%ld", out) == 1;
    fclose(f);
    return ok;
}

int cpu_count_cores_in(const char *sysfs_cpu, const cpu_set_t *allowed) {
    /* (package, core) pairs seen so far: at most one per CPU of the set (8 KiB) */
    int seen[CPU_SETSIZE][2];
    int n = 0;
    for (int cpu = 0; cpu < CPU_SETSIZE; cpu++) {
        if (!CPU_ISSET(cpu, allowed)) continue;
        char path[512];
        long pkg = 0, core = 0; /* small ids (sysfs prints ints) */
        snprintf(path, sizeof path, "%s/cpu%d/topology/physical_package_id", sysfs_cpu, cpu);
        if (!read_long(path, &pkg)) return 0; /* no topology here: let the caller fall back */
        snprintf(path, sizeof path, "%s/cpu%d/topology/core_id", sysfs_cpu, cpu);
        if (!read_long(path, &core)) return 0;
        int dup = 0;
        for (int i = 0; i < n && !dup; i++) dup = seen[i][0] == pkg && seen[i][1] == core;
        if (!dup) {
            seen[n][0] = (int)pkg;
            seen[n][1] = (int)core;
            n++;
        }
    }
    return n;
}

/* floor(quota / period), at least 1; 0 for no limit. */
static int whole_cpus(long quota, long period) {
    if (quota <= 0 || period <= 0) return 0;
    const long n = quota / period;
    return n < 1 ? 1 : n > INT_MAX ? INT_MAX : (int)n;
}

/* cgroup v2: "max 100000" or "150000 100000" in DIR/cpu.max. */
static int v2_limit(const char *dir) {
    char path[1024 + 32], quota[32];
    long period = 0;
    snprintf(path, sizeof path, "%s/cpu.max", dir);
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    const int got = fscanf(f, "%31s %ld", quota, &period);
    fclose(f);
    if (got != 2 || strcmp(quota, "max") == 0) return 0;
    return whole_cpus(strtol(quota, NULL, 10), period);
}

static int v1_limit(const char *dir) {
    char path[1024 + 32];
    long quota = -1, period = 0;
    snprintf(path, sizeof path, "%s/cpu.cfs_quota_us", dir);
    if (!read_long(path, &quota)) return 0;
    snprintf(path, sizeof path, "%s/cpu.cfs_period_us", dir);
    if (!read_long(path, &period)) return 0;
    return whole_cpus(quota, period);
}

static int min_limit(int a, int b) { return a == 0 ? b : b == 0 ? a : a < b ? a : b; }

int cpu_count_quota_in(const char *cgroup_root, const char *self_cgroup) {
    int limit = 0;
    const char *line = self_cgroup;
    while (line && *line) {
        const char *end = strchr(line, '\n');
        const size_t len = end ? (size_t)(end - line) : strlen(line);
        /* "ID:CONTROLLERS:PATH" */
        const char *c1 = memchr(line, ':', len), *c2 = c1 ? memchr(c1 + 1, ':', len - (size_t)(c1 + 1 - line)) : NULL;
        if (c2) {
            const size_t clen = (size_t)(c2 - c1 - 1), plen = len - (size_t)(c2 + 1 - line);
            char cg[512];
            snprintf(cg, sizeof cg, "%.*s", (int)plen, c2 + 1);
            char dir[1024];
            if (clen == 0 && strncmp(line, "0:", 2) == 0) {
                /* v2: the process's cgroup and every ancestor up to the root */
                for (;;) {
                    snprintf(dir, sizeof dir, "%s%s", cgroup_root, strcmp(cg, "/") == 0 ? "" : cg);
                    limit = min_limit(limit, v2_limit(dir));
                    char *slash = strrchr(cg, '/');
                    if (!slash || slash == cg) {
                        if (strcmp(cg, "/") == 0 || cg[0] == 0) break;
                        strcpy(cg, "/");
                    } else {
                        *slash = 0;
                    }
                }
            } else {
                /* v1: the hierarchy whose controllers include cpu ("cpu", "cpu,cpuacct") */
                char ctl[128];
                snprintf(ctl, sizeof ctl, ",%.*s,", (int)clen, c1 + 1);
                if (strstr(ctl, ",cpu,")) {
                    const char *mounts[] = {"cpu", "cpu,cpuacct", "cpuacct,cpu"};
                    for (size_t m = 0; m < sizeof mounts / sizeof mounts[0]; m++) {
                        /* inside a container the cgroup is usually mounted as the root */
                        snprintf(dir, sizeof dir, "%s/%s%s", cgroup_root, mounts[m], strcmp(cg, "/") == 0 ? "" : cg);
                        limit = min_limit(limit, v1_limit(dir));
                        snprintf(dir, sizeof dir, "%s/%s", cgroup_root, mounts[m]);
                        limit = min_limit(limit, v1_limit(dir));
                    }
                }
            }
        }
        line = end ? end + 1 : NULL;
    }
    return limit;
}

static int quota_cpus(void) {
    char text[4096];
    FILE *f = fopen("/proc/self/cgroup", "r");
    if (!f) return 0;
    const size_t n = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    text[n] = 0;
    return cpu_count_quota_in("/sys/fs/cgroup", text);
}

static int affinity(cpu_set_t *set) {
    CPU_ZERO(set);
    if (sched_getaffinity(0, sizeof *set, set) == 0 && CPU_COUNT(set) > 0) return CPU_COUNT(set);
    /* no affinity to read: every online CPU */
    const long online = sysconf(_SC_NPROCESSORS_ONLN);
    CPU_ZERO(set);
    for (long i = 0; i < (online > 0 ? online : 1) && i < CPU_SETSIZE; i++) CPU_SET((int)i, set);
    return CPU_COUNT(set);
}

static int capped(int n) {
    const int q = quota_cpus();
    if (q > 0 && q < n) n = q;
    return n > 0 ? n : 1;
}

int cpu_count_usable(void) {
    cpu_set_t set;
    return capped(affinity(&set));
}

int cpu_count_physical_cores(void) {
    cpu_set_t set;
    const int logical = affinity(&set);
    const int cores = cpu_count_cores_in("/sys/devices/system/cpu", &set);
    return capped(cores > 0 ? cores : logical);
}
