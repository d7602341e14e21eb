/* File helpers for the store (internal): folders, atomic writes, whole-file reads.
 * Temporary files are named ".tmp-<pid>-<n>-<random>" in the folder of their final path,
 * so a rename is atomic and a reader can tell them apart from real entries. */
#ifndef STRATA_STORE_FSUTIL_H
#define STRATA_STORE_FSUTIL_H

#include <stdbool.h>
#include <stddef.h>

#include "core/status.h"

#define FS_TEMP_PREFIX ".tmp-"

/* mkdir -p; each folder created is made durable (its parent fsync'd). */
strata_status fs_mkdirs(const char *path);
/* fsync a folder so a rename or unlink inside it survives a crash. */
strata_status fs_fsync_dir(const char *dir);
/* Creates a new temporary file in dir; writes its path into tmp. Returns the fd or -1
 * (with the error recorded). */
int fs_temp_open(const char *dir, char *tmp, size_t cap);
/* fsync + close fd, rename tmp over final, fsync dir. On failure tmp is removed. */
strata_status fs_commit(int fd, const char *tmp, const char *final, const char *dir);
/* Writes all of data to fd (retrying short writes and EINTR). */
strata_status fs_write_all(int fd, const void *data, size_t len, const char *what);
/* Atomically replaces path with data (temporary file in the same folder + rename). */
strata_status fs_write_atomic(const char *path, const void *data, size_t len);
/* Reads a whole file of at most max bytes into a NUL-terminated malloc'd buffer. */
strata_status fs_read_file(const char *path, size_t max, char **out, size_t *len);
bool fs_is_temp_name(const char *name);
/* Seconds after which a temporary file nobody touched, or a hold on a blob, is stale. */
#define FS_STALE_SECONDS 3600
/* Whether the temporary file `name` in dir may be removed: its owner (the pid in its name)
 * is gone, or it has not been modified for FS_STALE_SECONDS (a name without a pid: age only).
 * A live writer's file, in this process or another, is never collected. */
bool fs_temp_collectable(const char *dir, const char *name);
/* The folder part of path (everything before the last '/'), or "." */
void fs_dirname(const char *path, char *out, size_t cap);

#endif
