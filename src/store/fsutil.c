/* File helpers for the store; see fsutil.h. */
#include "store/fsutil.h"

#include <errno.h>
#include <signal.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

void fs_dirname(const char *path, char *out, size_t cap) {
    const char *slash = strrchr(path, '/');
    if (!slash) {
        snprintf(out, cap, ".");
    } else if (slash == path) {
        snprintf(out, cap, "/");
    } else {
        snprintf(out, cap, "%.*s", (int)(slash - path), path);
    }
}

strata_status fs_fsync_dir(const char *dir) {
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return strata_fail(STRATA_ERR_IO, "%s: %s", dir, strerror(errno));
    int r = fsync(fd);
    int err = errno;
    close(fd);
    /* Some file systems do not support fsync on folders; that is not a failure to write. */
    if (r != 0 && err != EINVAL && err != ENOTSUP) return strata_fail(STRATA_ERR_IO, "fsync %s: %s", dir, strerror(err));
    return STRATA_OK;
}

strata_status fs_mkdirs(const char *path) {
    char buf[4096];
    size_t n = strlen(path);
    if (n == 0 || n >= sizeof buf) return strata_fail(STRATA_ERR_INVALID, "path too long: %s", path);
    memcpy(buf, path, n + 1);
    for (size_t i = 1; i <= n; i++) {
        if (buf[i] != '/' && buf[i] != 0) continue;
        char c = buf[i];
        buf[i] = 0;
        if (mkdir(buf, 0755) == 0) {
            char parent[4096];
            fs_dirname(buf, parent, sizeof parent);
            fs_fsync_dir(parent);
        } else if (errno != EEXIST) {
            return strata_fail(STRATA_ERR_IO, "cannot create folder %s: %s", buf, strerror(errno));
        } else {
            struct stat st;
            if (stat(buf, &st) != 0 || !S_ISDIR(st.st_mode))
                return strata_fail(STRATA_ERR_IO, "%s exists and is not a folder", buf);
        }
        buf[i] = c;
    }
    return STRATA_OK;
}

int fs_temp_open(const char *dir, char *tmp, size_t cap) {
    static atomic_uint counter;
    for (int attempt = 0; attempt < 100; attempt++) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        unsigned n = atomic_fetch_add(&counter, 1);
        int w = snprintf(tmp, cap, "%s/" FS_TEMP_PREFIX "%ld-%u-%08lx", dir, (long)getpid(), n,
                         (unsigned long)((uint64_t)ts.tv_nsec * 2654435761u) & 0xffffffffu);
        if (w < 0 || (size_t)w >= cap) {
            strata_fail(STRATA_ERR_INVALID, "path too long in %s", dir);
            return -1;
        }
        int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
        if (fd >= 0) return fd;
        if (errno != EEXIST) {
            strata_fail(STRATA_ERR_IO, "cannot create a file in %s: %s", dir, strerror(errno));
            return -1;
        }
    }
    strata_fail(STRATA_ERR_IO, "cannot create a temporary file in %s", dir);
    return -1;
}

strata_status fs_write_all(int fd, const void *data, size_t len, const char *what) {
    const char *p = data;
    while (len > 0) {
        ssize_t w = write(fd, p, len);
        if (w < 0) {
            if (errno == EINTR) continue;
            return strata_fail(STRATA_ERR_IO, "writing %s: %s", what, strerror(errno));
        }
        p += w;
        len -= (size_t)w;
    }
    return STRATA_OK;
}

strata_status fs_commit(int fd, const char *tmp, const char *final, const char *dir) {
    if (fsync(fd) != 0) {
        int err = errno;
        close(fd);
        unlink(tmp);
        return strata_fail(STRATA_ERR_IO, "fsync %s: %s", tmp, strerror(err));
    }
    if (close(fd) != 0) {
        int err = errno;
        unlink(tmp);
        return strata_fail(STRATA_ERR_IO, "close %s: %s", tmp, strerror(err));
    }
    if (rename(tmp, final) != 0) {
        int err = errno;
        unlink(tmp);
        return strata_fail(STRATA_ERR_IO, "rename to %s: %s", final, strerror(err));
    }
    return fs_fsync_dir(dir);
}

strata_status fs_write_atomic(const char *path, const void *data, size_t len) {
    char dir[4096], tmp[4096];
    fs_dirname(path, dir, sizeof dir);
    int fd = fs_temp_open(dir, tmp, sizeof tmp);
    if (fd < 0) return STRATA_ERR_IO;
    strata_status st = fs_write_all(fd, data, len, path);
    if (st != STRATA_OK) {
        close(fd);
        unlink(tmp);
        return st;
    }
    return fs_commit(fd, tmp, path, dir);
}

strata_status fs_read_file(const char *path, size_t max, char **out, size_t *len) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT) return strata_fail(STRATA_ERR_NOT_FOUND, "%s: no such file", path);
        return strata_fail(STRATA_ERR_IO, "%s: %s", path, strerror(errno));
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return strata_fail(STRATA_ERR_IO, "%s: not a regular file", path);
    }
    if ((uint64_t)st.st_size > max) {
        close(fd);
        return strata_fail(STRATA_ERR_FORMAT, "%s: too large (%lld bytes, at most %zu)", path, (long long)st.st_size, max);
    }
    size_t n = (size_t)st.st_size;
    char *buf = malloc(n + 1);
    if (!buf) {
        close(fd);
        return strata_fail(STRATA_ERR_NOMEM, "out of memory");
    }
    size_t got = 0;
    while (got < n) {
        ssize_t r = read(fd, buf + got, n - got);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) {
            int err = r < 0 ? errno : EIO;
            free(buf);
            close(fd);
            return strata_fail(STRATA_ERR_IO, "reading %s: %s", path, strerror(err));
        }
        got += (size_t)r;
    }
    close(fd);
    buf[n] = 0;
    *out = buf;
    if (len) *len = n;
    return STRATA_OK;
}

bool fs_is_temp_name(const char *name) { return strncmp(name, FS_TEMP_PREFIX, strlen(FS_TEMP_PREFIX)) == 0; }

bool fs_temp_collectable(const char *dir, const char *name) {
    char p[4096 + 256];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    struct stat sb;
    if (lstat(p, &sb) != 0) return false;
    const char *q = name + strlen(FS_TEMP_PREFIX);
    char *end = NULL;
    long pid = strtol(q, &end, 10);
    if (end != q && *end == '-' && pid > 0) {
        bool alive = pid == (long)getpid() || kill((pid_t)pid, 0) == 0 || errno == EPERM;
        if (!alive) return true;
    }
    return time(NULL) - sb.st_mtime > FS_STALE_SECONDS;
}
