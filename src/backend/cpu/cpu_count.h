/* How many CPUs this process may really use: the default thread counts.
 *
 * /proc/cpuinfo and sysconf(_SC_NPROCESSORS_ONLN) describe the whole machine. A process
 * pinned with taskset or numactl, or a container given --cpuset-cpus or --cpus (Docker,
 * Kubernetes CPU limits), runs on fewer: threads beyond those only queue behind each other,
 * and a decode step waits for its slowest thread. So both counts here start from the
 * process's CPU affinity and are capped by its cgroup's CPU quota (cgroup v2 cpu.max, or
 * v1 cpu.cfs_quota_us / cpu.cfs_period_us), rounded down (at least 1): a thread that gets
 * only part of a CPU holds up every job it is in.
 *
 * The *_in functions take the files' roots, for tests. */
#ifndef STRATA_BACKEND_CPU_CPU_COUNT_H
#define STRATA_BACKEND_CPU_CPU_COUNT_H

#include <sched.h> /* cpu_set_t (the build defines _GNU_SOURCE) */

/* Physical cores among the CPUs this process may run on (SMT siblings count once), capped
 * by the CPU quota: the default num_thread. At least 1. */
int cpu_count_physical_cores(void);

/* Logical CPUs this process may run on, capped by the CPU quota. At least 1. */
int cpu_count_usable(void);

/* Distinct (package, core) pairs among the CPUs of `allowed`, read from
 * SYSFS_CPU/cpuN/topology/{physical_package_id,core_id}; 0 when none could be read. */
int cpu_count_cores_in(const char *sysfs_cpu, const cpu_set_t *allowed);

/* Whole CPUs the CPU quota allows (floor of quota / period, at least 1), or 0 when there is
 * no quota. cgroup_root is where the cgroup file systems are mounted (/sys/fs/cgroup) and
 * self_cgroup the text of /proc/self/cgroup. A v2 limit set on any ancestor of the
 * process's cgroup applies; the smallest counts. */
int cpu_count_quota_in(const char *cgroup_root, const char *self_cgroup);

#endif
