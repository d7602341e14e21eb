/* Streaming-read memory bandwidth: the bound on token generation, which reads every weight
 * once per token.
 *
 *   bandwidth [-s MIB] [-t THREADS] [-r REPS]
 *
 * Runs the probe the cpu device and `strata bench` use (backend/cpu/bandwidth.h) over a
 * buffer of MIB MiB (default 1024, far beyond the last-level cache) with THREADS threads
 * (default: the online CPUs) and prints the best of REPS passes (default 10) in GB/s
 * (10^9 bytes/s). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backend/cpu/bandwidth.h"

int main(int argc, char **argv) {
    long mib = 1024, cpus = sysconf(_SC_NPROCESSORS_ONLN);
    int threads = cpus > 0 ? (int)cpus : 1, reps = 10;
    for (int i = 1; i < argc; i++) {
        if (i + 1 < argc && strcmp(argv[i], "-s") == 0) mib = atol(argv[++i]);
        else if (i + 1 < argc && strcmp(argv[i], "-t") == 0) threads = atoi(argv[++i]);
        else if (i + 1 < argc && strcmp(argv[i], "-r") == 0) reps = atoi(argv[++i]);
        else {
            fprintf(stderr, "usage: bandwidth [-s MIB] [-t THREADS] [-r REPS]\n");
            return 2;
        }
    }
    if (mib < 1 || threads < 1 || reps < 1) {
        fprintf(stderr, "bandwidth: -s, -t and -r must be positive\n");
        return 2;
    }
    double gbps = cpu_read_bandwidth_gbps((size_t)mib << 20, threads, reps);
    if (gbps <= 0) {
        fprintf(stderr, "bandwidth: cannot allocate %ld MiB\n", mib);
        return 1;
    }
    printf("read bandwidth: %.1f GB/s (best of %d passes over %ld MiB, %d threads)\n", gbps, reps, mib, threads);
    return 0;
}
