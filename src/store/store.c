/* The model store: blobs, manifests, create/list/show/copy/delete and garbage collection.
 * See store.h for the layout and the atomicity rules, docs/store.md for the reasons. */
#include "core/env.h"
#include "store/store.h"

#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "gguf/gguf.h"
#include "store/fsutil.h"
#include "store/sha256.h"
#include "template/template.h"

#define MAX_MANIFEST_BYTES (1u << 20)
#define MAX_TEXT_BLOB_BYTES (64u << 20)
#define COPY_CHUNK (4u << 20)

struct strata_store {
    char root[4096];
    char blobs[4096];
    char manifests[4096];
    int lock_fd;
};

/* ---- opening and locking -------------------------------------------------------------- */

size_t strata_store_default_root(char *buf, size_t cap) {
    const char *env = strata_getenv("STRATA_MODELS");
    int r;
    if (env && *env) {
        r = snprintf(buf, cap, "%s", env);
    } else {
        const char *home = getenv("HOME");
        if (!home || !*home) return 0;
        r = snprintf(buf, cap, "%s/.strata/models", home);
    }
    return r < 0 ? 0 : (size_t)r;
}

static strata_status lock_store(strata_store *s, int op) {
    while (flock(s->lock_fd, op) != 0) {
        if (errno == EINTR) continue;
        return strata_fail(STRATA_ERR_IO, "cannot lock the model store %s: %s", s->root, strerror(errno));
    }
    return STRATA_OK;
}

static void unlock_store(strata_store *s) { flock(s->lock_fd, LOCK_UN); }

static void remove_temps_in(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (!fs_is_temp_name(e->d_name) || !fs_temp_collectable(dir, e->d_name)) continue;
        char p[4096 + 256];
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        unlink(p);
    }
    closedir(d);
}

static void remove_temps_below(const char *dir, int depth) {
    remove_temps_in(dir);
    if (depth == 0) return;
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.') continue;
        char p[4096 + 256];
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        struct stat st;
        if (lstat(p, &st) == 0 && S_ISDIR(st.st_mode)) remove_temps_below(p, depth - 1);
    }
    closedir(d);
}

strata_status strata_store_open(const char *root, strata_store **out) {
    *out = NULL;
    strata_store *s = calloc(1, sizeof *s);
    if (!s) return strata_fail(STRATA_ERR_NOMEM, "out of memory");
    s->lock_fd = -1;
    size_t n = root ? (size_t)snprintf(s->root, sizeof s->root, "%s", root)
                    : strata_store_default_root(s->root, sizeof s->root);
    if (n == 0 || n >= sizeof s->root - 64) {
        free(s);
        return strata_fail(STRATA_ERR_INVALID, "no model store folder (set STRATA_MODELS or HOME)");
    }
    while (n > 1 && s->root[n - 1] == '/') s->root[--n] = 0;
    if (snprintf(s->blobs, sizeof s->blobs, "%s/blobs", s->root) >= (int)sizeof s->blobs ||
        snprintf(s->manifests, sizeof s->manifests, "%s/manifests", s->root) >= (int)sizeof s->manifests) {
        free(s);
        return strata_fail(STRATA_ERR_INVALID, "model store path too long");
    }
    strata_status st = fs_mkdirs(s->blobs);
    if (st == STRATA_OK) st = fs_mkdirs(s->manifests);
    if (st == STRATA_OK) {
        char lock[4096 + 16];
        snprintf(lock, sizeof lock, "%s/.lock", s->root);
        s->lock_fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
        if (s->lock_fd < 0) st = strata_fail(STRATA_ERR_IO, "cannot open %s: %s", lock, strerror(errno));
    }
    if (st != STRATA_OK) {
        if (s->lock_fd >= 0) close(s->lock_fd);
        free(s);
        return st;
    }
    /* Leftovers of killed writers: only when no writer holds the lock right now. */
    if (flock(s->lock_fd, LOCK_EX | LOCK_NB) == 0) {
        remove_temps_in(s->blobs);
        remove_temps_below(s->manifests, 4);
        unlock_store(s);
    }
    *out = s;
    return STRATA_OK;
}

void strata_store_close(strata_store *s) {
    if (!s) return;
    if (s->lock_fd >= 0) close(s->lock_fd);
    free(s);
}

const char *strata_store_root(const strata_store *s) { return s->root; }

/* ---- blobs ---------------------------------------------------------------------------- */

/* A hold is an empty file "blobs/.hold-sha256-<hex>" whose mtime says when the blob was last
 * uploaded or asked about: garbage collection keeps an unreferenced blob while its hold is
 * younger than FS_STALE_SECONDS, so a blob uploaded for a create still to come survives a
 * delete in between. Expired holds are removed by gc. */
#define HOLD_PREFIX ".hold-"

static bool hold_fresh(const char *path) {
    struct stat sb;
    return stat(path, &sb) == 0 && time(NULL) - sb.st_mtime <= FS_STALE_SECONDS;
}

strata_status strata_store_hold_blob(strata_store *s, const char *digest) {
    if (!strata_digest_valid(digest)) return strata_fail(STRATA_ERR_INVALID, "invalid digest '%s'", digest ? digest : "");
    char p[4096 + 128];
    snprintf(p, sizeof p, "%s/" HOLD_PREFIX "sha256-%s", s->blobs, digest + 7);
    int fd = open(p, O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
    if (fd < 0) return strata_fail(STRATA_ERR_IO, "cannot hold blob %s: %s", digest, strerror(errno));
    int r = futimens(fd, NULL);
    close(fd);
    if (r != 0) return strata_fail(STRATA_ERR_IO, "cannot hold blob %s: %s", digest, strerror(errno));
    return STRATA_OK;
}

int strata_store_temp_open(strata_store *s, char *path, size_t cap) { return fs_temp_open(s->blobs, path, cap); }

strata_status strata_store_check_source(const char *path, const char *what) {
    struct stat sb;
    if (stat(path, &sb) != 0) {
        if (errno == ENOENT || errno == ENOTDIR) return strata_fail(STRATA_ERR_NOT_FOUND, "%s: no such file", what);
        return strata_fail(STRATA_ERR_INVALID, "%s: cannot be read (%s)", what, strerror(errno));
    }
    const char *kind = S_ISREG(sb.st_mode)    ? NULL
                       : S_ISDIR(sb.st_mode)  ? "a directory"
                       : S_ISFIFO(sb.st_mode) ? "a FIFO"
                       : S_ISSOCK(sb.st_mode) ? "a socket"
                       : S_ISCHR(sb.st_mode) || S_ISBLK(sb.st_mode) ? "a device"
                                                                     : "not a file";
    if (kind) return strata_fail(STRATA_ERR_INVALID, "%s: not a regular file (%s)", what, kind);
    /* Non-blocking: should it have been replaced by a FIFO since, open must not wait. */
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
    if (fd < 0) return strata_fail(STRATA_ERR_INVALID, "%s: cannot be read (%s)", what, strerror(errno));
    char magic[4];
    ssize_t r = -1;
    if (fstat(fd, &sb) == 0 && S_ISREG(sb.st_mode)) r = read(fd, magic, sizeof magic);
    int err = errno;
    close(fd);
    if (r < 0 && !S_ISREG(sb.st_mode)) return strata_fail(STRATA_ERR_INVALID, "%s: not a regular file", what);
    if (r < 0) return strata_fail(STRATA_ERR_INVALID, "%s: cannot be read (%s)", what, strerror(err));
    /* Never say what the bytes were: the file may be anything the server can read. */
    if (r != (ssize_t)sizeof magic || memcmp(magic, "GGUF", 4) != 0)
        return strata_fail(STRATA_ERR_FORMAT, "%s: not a GGUF file", what);
    return STRATA_OK;
}

static strata_status hash_fd(int fd, const char *what, char digest[STRATA_DIGEST_SIZE], uint64_t *size);
static strata_status install_blob(strata_store *s, int fd, const char *tmp, const char *digest);

strata_status strata_store_adopt_blob(strata_store *s, const char *tmp, const char *expected,
                                      char digest[STRATA_DIGEST_SIZE], uint64_t *size) {
    int fd = open(tmp, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        strata_status st = strata_fail(STRATA_ERR_IO, "cannot read the upload: %s", strerror(errno));
        unlink(tmp);
        return st;
    }
    uint64_t n = 0;
    strata_status st = hash_fd(fd, "the upload", digest, &n);
    if (st == STRATA_OK && expected && strcmp(digest, expected) != 0)
        st = strata_fail(STRATA_ERR_INVALID, "digest mismatch: the body hashes to %s, not %s", digest, expected);
    if (st == STRATA_OK) st = strata_store_hold_blob(s, digest);
    if (st != STRATA_OK) {
        close(fd);
        unlink(tmp);
        return st;
    }
    if (size) *size = n;
    /* install_blob closes fd; the writer lock keeps gc out while the name changes. */
    if ((st = lock_store(s, LOCK_SH)) != STRATA_OK) {
        close(fd);
        unlink(tmp);
        return st;
    }
    st = install_blob(s, fd, tmp, digest);
    unlock_store(s);
    return st;
}

strata_status strata_store_blob_path(const strata_store *s, const char *digest, char *buf, size_t cap) {
    if (!strata_digest_valid(digest)) return strata_fail(STRATA_ERR_INVALID, "invalid digest '%s'", digest ? digest : "");
    int w = snprintf(buf, cap, "%s/sha256-%s", s->blobs, digest + 7);
    if (w < 0 || (size_t)w >= cap) return strata_fail(STRATA_ERR_INVALID, "blob path too long");
    return STRATA_OK;
}

bool strata_store_has_blob(const strata_store *s, const char *digest) {
    char p[4096 + 128];
    struct stat st;
    return strata_store_blob_path(s, digest, p, sizeof p) == STRATA_OK && stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

/* Moves a finished temporary file to its blob name; an existing identical blob wins. */
static strata_status install_blob(strata_store *s, int fd, const char *tmp, const char *digest) {
    char final[4096 + 128];
    strata_status st = strata_store_blob_path(s, digest, final, sizeof final);
    if (st == STRATA_OK && strata_store_has_blob(s, digest)) {
        close(fd);
        unlink(tmp);
        return STRATA_OK;
    }
    if (st != STRATA_OK) {
        close(fd);
        unlink(tmp);
        return st;
    }
    return fs_commit(fd, tmp, final, s->blobs);
}

/* SHA-256 of what is left to read from fd (to its end); fd stays open. */
static strata_status hash_fd(int fd, const char *what, char digest[STRATA_DIGEST_SIZE], uint64_t *size) {
    char *buf = malloc(COPY_CHUNK);
    strata_sha256 *h = NULL;
    strata_status st = !buf ? strata_fail(STRATA_ERR_NOMEM, "out of memory") : strata_sha256_new(&h);
    uint64_t done = 0;
    while (st == STRATA_OK) {
        ssize_t r = read(fd, buf, COPY_CHUNK);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) {
            st = strata_fail(STRATA_ERR_IO, "reading %s: %s", what, strerror(errno));
            break;
        }
        if (r == 0) break;
        st = strata_sha256_update(h, buf, (size_t)r);
        done += (uint64_t)r;
    }
    free(buf);
    if (st == STRATA_OK) st = strata_sha256_final(h, digest);
    strata_sha256_free(h);
    if (size) *size = done;
    return st;
}

strata_status strata_store_import_file(strata_store *s, const char *path, strata_store_progress progress, void *user,
                                       char digest[STRATA_DIGEST_SIZE], uint64_t *size) {
    /* Non-blocking, so that a FIFO cannot hold the open (and the store lock) forever. */
    int in = open(path, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
    if (in < 0) {
        if (errno == ENOENT) return strata_fail(STRATA_ERR_NOT_FOUND, "%s: no such file", path);
        return strata_fail(STRATA_ERR_IO, "%s: %s", path, strerror(errno));
    }
    struct stat sb;
    if (fstat(in, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        close(in);
        return strata_fail(STRATA_ERR_INVALID, "%s: not a regular file", path);
    }
    fcntl(in, F_SETFL, fcntl(in, F_GETFL) & ~O_NONBLOCK);
    posix_fadvise(in, 0, 0, POSIX_FADV_SEQUENTIAL);
    char tmp[4096 + 128];
    int out = fs_temp_open(s->blobs, tmp, sizeof tmp);
    char *buf = malloc(COPY_CHUNK);
    strata_sha256 *h = NULL;
    strata_status st = out < 0 ? STRATA_ERR_IO : !buf ? strata_fail(STRATA_ERR_NOMEM, "out of memory") : strata_sha256_new(&h);
    uint64_t total = (uint64_t)sb.st_size, done = 0;
    while (st == STRATA_OK) {
        ssize_t r = read(in, buf, COPY_CHUNK);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) {
            st = strata_fail(STRATA_ERR_IO, "reading %s: %s", path, strerror(errno));
            break;
        }
        if (r == 0) break;
        if ((st = strata_sha256_update(h, buf, (size_t)r)) != STRATA_OK) break;
        if ((st = fs_write_all(out, buf, (size_t)r, tmp)) != STRATA_OK) break;
        done += (uint64_t)r;
        if (progress && !progress(user, "copying model", done, total))
            st = strata_fail(STRATA_ERR_CANCELLED, "import of %s cancelled", path);
    }
    free(buf);
    close(in);
    if (st == STRATA_OK) st = strata_sha256_final(h, digest);
    strata_sha256_free(h);
    if (st != STRATA_OK) {
        if (out >= 0) {
            close(out);
            unlink(tmp);
        }
        return st;
    }
    if (size) *size = done;
    return install_blob(s, out, tmp, digest);
}

strata_status strata_store_put_blob(strata_store *s, const void *data, size_t len, char digest[STRATA_DIGEST_SIZE]) {
    strata_status st = strata_sha256_digest(data, len, digest);
    if (st != STRATA_OK || strata_store_has_blob(s, digest)) return st;
    char tmp[4096 + 128];
    int fd = fs_temp_open(s->blobs, tmp, sizeof tmp);
    if (fd < 0) return STRATA_ERR_IO;
    if ((st = fs_write_all(fd, data, len, tmp)) != STRATA_OK) {
        close(fd);
        unlink(tmp);
        return st;
    }
    return install_blob(s, fd, tmp, digest);
}

/* Reads a (small) blob and checks its bytes against its digest. */
static strata_status read_text_blob(strata_store *s, const char *digest, char **out, size_t *len) {
    char p[4096 + 128];
    strata_status st = strata_store_blob_path(s, digest, p, sizeof p);
    if (st != STRATA_OK) return st;
    if ((st = fs_read_file(p, MAX_TEXT_BLOB_BYTES, out, len)) != STRATA_OK) {
        if (st == STRATA_ERR_NOT_FOUND) return strata_fail(STRATA_ERR_FORMAT, "blob %s is missing from the store", digest);
        return st;
    }
    char check[STRATA_DIGEST_SIZE];
    if ((st = strata_sha256_digest(*out, *len, check)) != STRATA_OK || strcmp(check, digest) != 0) {
        free(*out);
        *out = NULL;
        return st != STRATA_OK ? st : strata_fail(STRATA_ERR_FORMAT, "blob %s is damaged (its bytes hash to %s)", digest, check);
    }
    return STRATA_OK;
}

/* ---- manifests ------------------------------------------------------------------------ */

static strata_status manifest_path(const strata_store *s, const strata_model_name *n, char *buf, size_t cap) {
    int w = snprintf(buf, cap, "%s/%s/%s/%s/%s", s->manifests, n->host, n->ns, n->model, n->tag);
    if (w < 0 || (size_t)w >= cap) return strata_fail(STRATA_ERR_INVALID, "model name too long");
    return STRATA_OK;
}

void strata_manifest_free(strata_manifest *m) {
    if (!m) return;
    free(m->layers);
    m->layers = NULL;
    m->n_layers = 0;
}

static bool parse_layer(const cJSON *j, strata_layer *l) {
    const cJSON *mt = cJSON_GetObjectItemCaseSensitive(j, "mediaType");
    const cJSON *dg = cJSON_GetObjectItemCaseSensitive(j, "digest");
    const cJSON *sz = cJSON_GetObjectItemCaseSensitive(j, "size");
    if (!cJSON_IsString(mt) || !cJSON_IsString(dg) || !cJSON_IsNumber(sz)) return false;
    if (strlen(mt->valuestring) >= sizeof l->media_type || !strata_digest_valid(dg->valuestring)) return false;
    if (sz->valuedouble < 0 || sz->valuedouble > 9.0e15) return false;
    snprintf(l->media_type, sizeof l->media_type, "%s", mt->valuestring);
    snprintf(l->digest, sizeof l->digest, "%s", dg->valuestring);
    l->size = (uint64_t)sz->valuedouble;
    return true;
}

/* Parses manifest bytes; `where` names the file in messages. */
static strata_status parse_manifest(const char *text, size_t len, const char *where, strata_manifest *out) {
    memset(out, 0, sizeof *out);
    cJSON *root = cJSON_ParseWithLength(text, len);
    const cJSON *cfg = root ? cJSON_GetObjectItemCaseSensitive(root, "config") : NULL;
    const cJSON *layers = root ? cJSON_GetObjectItemCaseSensitive(root, "layers") : NULL;
    strata_status st = STRATA_OK;
    if (!cJSON_IsObject(root) || !cJSON_IsObject(cfg) || !cJSON_IsArray(layers) || !parse_layer(cfg, &out->config)) {
        st = strata_fail(STRATA_ERR_FORMAT, "%s: not a valid manifest", where);
    } else {
        int n = cJSON_GetArraySize(layers);
        out->layers = calloc(n > 0 ? (size_t)n : 1, sizeof *out->layers);
        if (!out->layers) st = strata_fail(STRATA_ERR_NOMEM, "out of memory");
        for (const cJSON *l = layers->child; st == STRATA_OK && l; l = l->next) {
            if (!parse_layer(l, &out->layers[out->n_layers]))
                st = strata_fail(STRATA_ERR_FORMAT, "%s: layer %zu is not valid", where, out->n_layers);
            else
                out->n_layers++;
        }
    }
    cJSON_Delete(root);
    if (st != STRATA_OK) strata_manifest_free(out);
    return st;
}

static strata_status read_manifest_name(strata_store *s, const strata_model_name *n, strata_manifest *out,
                                        char digest[STRATA_DIGEST_SIZE]) {
    char p[4096 + 512];
    strata_status st = manifest_path(s, n, p, sizeof p);
    if (st != STRATA_OK) return st;
    char *text = NULL;
    size_t len;
    if ((st = fs_read_file(p, MAX_MANIFEST_BYTES, &text, &len)) != STRATA_OK) {
        if (st == STRATA_ERR_NOT_FOUND) {
            char shown[512];
            strata_model_name_display(n, shown, sizeof shown);
            return strata_fail(STRATA_ERR_NOT_FOUND, "model '%s' not found", shown);
        }
        return st;
    }
    st = parse_manifest(text, len, p, out);
    if (st == STRATA_OK && digest) st = strata_sha256_digest(text, len, digest);
    free(text);
    return st;
}

strata_status strata_store_read_manifest(strata_store *s, const char *name, strata_manifest *out) {
    strata_model_name n;
    strata_status st = strata_model_name_parse(name, &n);
    if (st != STRATA_OK) return st;
    return read_manifest_name(s, &n, out, NULL);
}

static cJSON *layer_json(const strata_layer *l) {
    cJSON *j = cJSON_CreateObject();
    char num[32];
    snprintf(num, sizeof num, "%" PRIu64, l->size);
    if (!j || !cJSON_AddStringToObject(j, "mediaType", l->media_type) || !cJSON_AddStringToObject(j, "digest", l->digest) ||
        !cJSON_AddRawToObject(j, "size", num)) {
        cJSON_Delete(j);
        return NULL;
    }
    return j;
}

static strata_status json_text(cJSON *root, char **out) {
    char *t = root ? cJSON_PrintUnformatted(root) : NULL;
    cJSON_Delete(root);
    if (!t) return strata_fail(STRATA_ERR_NOMEM, "out of memory");
    *out = t;
    return STRATA_OK;
}

/* Writes a manifest file atomically (its blobs must already be in place). */
static strata_status write_manifest(strata_store *s, const strata_model_name *n, const strata_manifest *m) {
    for (size_t i = 0; i < m->n_layers; i++)
        if (!strata_store_has_blob(s, m->layers[i].digest))
            return strata_fail(STRATA_ERR_FORMAT, "internal: layer %s has no blob", m->layers[i].digest);
    if (!strata_store_has_blob(s, m->config.digest)) return strata_fail(STRATA_ERR_FORMAT, "internal: config has no blob");
    cJSON *root = cJSON_CreateObject();
    cJSON *layers = cJSON_CreateArray();
    cJSON *cfg = layer_json(&m->config);
    bool ok = root && layers && cfg && cJSON_AddNumberToObject(root, "schemaVersion", 2) &&
              cJSON_AddStringToObject(root, "mediaType", STRATA_MEDIA_MANIFEST) && cJSON_AddItemToObject(root, "config", cfg);
    if (!ok) cJSON_Delete(cfg);
    ok = ok && cJSON_AddItemToObject(root, "layers", layers);
    if (!ok) cJSON_Delete(layers);
    for (size_t i = 0; ok && i < m->n_layers; i++) {
        cJSON *l = layer_json(&m->layers[i]);
        ok = l && cJSON_AddItemToArray(layers, l);
        if (!ok) cJSON_Delete(l);
    }
    if (!ok) {
        cJSON_Delete(root);
        return strata_fail(STRATA_ERR_NOMEM, "out of memory");
    }
    char *text = NULL;
    strata_status st = json_text(root, &text);
    if (st != STRATA_OK) return st;
    char p[4096 + 512], dir[4096 + 512];
    if ((st = manifest_path(s, n, p, sizeof p)) == STRATA_OK) {
        fs_dirname(p, dir, sizeof dir);
        if ((st = fs_mkdirs(dir)) == STRATA_OK) st = fs_write_atomic(p, text, strlen(text));
    }
    cJSON_free(text);
    return st;
}

/* ---- GGUF facts for the config blob --------------------------------------------------- */

static const char *file_type_name(uint32_t ft) {
    /* general.file_type values (llama.cpp's llama_ftype), named as Ollama shows them. */
    static const char *const names[] = {
        [0] = "F32",     [1] = "F16",     [2] = "Q4_0",    [3] = "Q4_1",   [7] = "Q8_0",    [8] = "Q5_0",
        [9] = "Q5_1",    [10] = "Q2_K",   [11] = "Q3_K_S", [12] = "Q3_K_M", [13] = "Q3_K_L", [14] = "Q4_K_S",
        [15] = "Q4_K_M", [16] = "Q5_K_S", [17] = "Q5_K_M", [18] = "Q6_K",  [19] = "IQ2_XXS", [20] = "IQ2_XS",
        [21] = "Q2_K_S", [22] = "IQ3_XS", [23] = "IQ3_XXS", [24] = "IQ1_S", [25] = "IQ4_NL", [26] = "IQ3_S",
        [27] = "IQ3_M",  [28] = "IQ2_S",  [29] = "IQ2_M",  [30] = "IQ4_XS", [31] = "IQ1_M", [32] = "BF16",
        [36] = "TQ1_0",  [37] = "TQ2_0",  [38] = "MXFP4",
    };
    if (ft < sizeof names / sizeof names[0] && names[ft]) return names[ft];
    return "unknown";
}

static void human_count(uint64_t n, char *buf, size_t cap) {
    static const struct {
        double unit;
        const char *suffix;
    } units[] = {{1e12, "T"}, {1e9, "B"}, {1e6, "M"}, {1e3, "K"}};
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
        if ((double)n >= units[i].unit) {
            double v = (double)n / units[i].unit;
            if (v >= 100) snprintf(buf, cap, "%.0f%s", v, units[i].suffix);
            else snprintf(buf, cap, "%.1f%s", v, units[i].suffix);
            return;
        }
    }
    snprintf(buf, cap, "%" PRIu64, n);
}

typedef struct {
    char family[64];
    char file_type[32];
    char parameter_size[32];
    strata_chat_family chat; /* from tokenizer.chat_template */
} gguf_facts;

static strata_status read_gguf_facts(const char *path, gguf_facts *f) {
    gguf_file *g;
    strata_status st = gguf_open(path, GGUF_OPEN_DEFAULT, &g);
    if (st != STRATA_OK) return st;
    gguf_str arch;
    if (gguf_get_str(g, "general.architecture", &arch) && arch.len < sizeof f->family)
        snprintf(f->family, sizeof f->family, "%.*s", (int)arch.len, arch.ptr);
    else
        snprintf(f->family, sizeof f->family, "unknown");
    uint32_t ft;
    snprintf(f->file_type, sizeof f->file_type, "%s", gguf_get_u32(g, "general.file_type", &ft) ? file_type_name(ft) : "unknown");
    uint64_t params = 0;
    for (int64_t i = 0; i < gguf_tensor_count(g); i++) params += (uint64_t)gguf_tensor_elements(gguf_tensor_at(g, i));
    human_count(params, f->parameter_size, sizeof f->parameter_size);
    gguf_str chat;
    f->chat = gguf_get_str(g, "tokenizer.chat_template", &chat) ? strata_chat_family_detect(chat.ptr, (size_t)chat.len)
                                                                  : STRATA_CHAT_UNKNOWN;
    gguf_close(g);
    return STRATA_OK;
}

/* ---- create --------------------------------------------------------------------------- */

static bool looks_like_path(const char *from) {
    size_t n = strlen(from);
    return from[0] == '/' || from[0] == '~' || strncmp(from, "./", 2) == 0 || strncmp(from, "../", 3) == 0 ||
           (n > 5 && strcasecmp(from + n - 5, ".gguf") == 0);
}

static strata_status expand_path(const char *from, const char *base_dir, char *out, size_t cap) {
    int w;
    if (from[0] == '/') {
        w = snprintf(out, cap, "%s", from);
    } else if (from[0] == '~' && (from[1] == 0 || from[1] == '/')) {
        const char *home = getenv("HOME");
        if (!home) return strata_fail(STRATA_ERR_INVALID, "FROM %s: HOME is not set", from);
        w = snprintf(out, cap, "%s%s", home, from + 1);
    } else {
        w = snprintf(out, cap, "%s/%s", base_dir && *base_dir ? base_dir : ".", from);
    }
    if (w < 0 || (size_t)w >= cap) return strata_fail(STRATA_ERR_INVALID, "FROM %s: path too long", from);
    return STRATA_OK;
}

/* The model being assembled: one model layer, other layers carried over verbatim, and the
 * text parts as a Modelfile. */
typedef struct {
    strata_layer model;
    bool have_model;
    strata_layer *extra; /* layers of media types we do not interpret (kept as they are) */
    size_t n_extra;
    strata_modelfile *mf;
} draft;

static strata_status load_layers(strata_store *s, const strata_manifest *m, draft *d) {
    strata_status st = STRATA_OK;
    for (size_t i = 0; st == STRATA_OK && i < m->n_layers; i++) {
        const strata_layer *l = &m->layers[i];
        const char *mt = l->media_type;
        char *text = NULL;
        size_t len = 0;
        if (strcmp(mt, STRATA_MEDIA_MODEL) == 0) {
            if (d->have_model) {
                st = strata_fail(STRATA_ERR_UNSUPPORTED, "model has more than one model layer");
            } else if (!strata_store_has_blob(s, l->digest)) {
                st = strata_fail(STRATA_ERR_FORMAT, "model is damaged: blob %s is missing", l->digest);
            } else {
                d->model = *l;
                d->have_model = true;
            }
            continue;
        }
        bool text_layer = strcmp(mt, STRATA_MEDIA_TEMPLATE) == 0 || strcmp(mt, STRATA_MEDIA_SYSTEM) == 0 ||
                          strcmp(mt, STRATA_MEDIA_LICENSE) == 0 || strcmp(mt, STRATA_MEDIA_PARAMS) == 0 ||
                          strcmp(mt, STRATA_MEDIA_MESSAGES) == 0;
        if (!text_layer) {
            strata_layer *g = realloc(d->extra, (d->n_extra + 1) * sizeof *g);
            if (!g) st = strata_fail(STRATA_ERR_NOMEM, "out of memory");
            else (d->extra = g)[d->n_extra++] = *l;
            continue;
        }
        if ((st = read_text_blob(s, l->digest, &text, &len)) != STRATA_OK) break;
        if (strcmp(mt, STRATA_MEDIA_TEMPLATE) == 0) st = strata_modelfile_set_string(&d->mf->template_text, text);
        else if (strcmp(mt, STRATA_MEDIA_SYSTEM) == 0) st = strata_modelfile_set_string(&d->mf->system, text);
        else if (strcmp(mt, STRATA_MEDIA_LICENSE) == 0) st = strata_modelfile_add_license(d->mf, text);
        else if (strcmp(mt, STRATA_MEDIA_PARAMS) == 0) st = strata_modelfile_params_from_json_lenient(d->mf, text, len);
        else st = strata_modelfile_messages_from_json(d->mf, text, len);
        free(text);
    }
    if (st == STRATA_OK && !d->have_model) st = strata_fail(STRATA_ERR_FORMAT, "model has no model layer");
    return st;
}

static strata_status load_base(strata_store *s, const strata_model_name *n, draft *d) {
    strata_manifest m;
    strata_status st = read_manifest_name(s, n, &m, NULL);
    if (st != STRATA_OK) return st;
    st = load_layers(s, &m, d);
    strata_manifest_free(&m);
    return st;
}

/* Applies the new Modelfile over the base: texts replace, parameters merge by name. */
static strata_status apply_overrides(draft *d, const strata_modelfile *mf) {
    strata_status st = STRATA_OK;
    if (mf->template_text) st = strata_modelfile_set_string(&d->mf->template_text, mf->template_text);
    if (st == STRATA_OK && mf->system) st = strata_modelfile_set_string(&d->mf->system, mf->system);
    if (st == STRATA_OK && mf->n_licenses) {
        for (size_t i = 0; i < d->mf->n_licenses; i++) free(d->mf->licenses[i]);
        d->mf->n_licenses = 0;
        for (size_t i = 0; st == STRATA_OK && i < mf->n_licenses; i++) st = strata_modelfile_add_license(d->mf, mf->licenses[i]);
    }
    if (st == STRATA_OK && mf->n_messages) {
        for (size_t i = 0; i < d->mf->n_messages; i++) {
            free(d->mf->messages[i].role);
            free(d->mf->messages[i].content);
        }
        d->mf->n_messages = 0;
        for (size_t i = 0; st == STRATA_OK && i < mf->n_messages; i++)
            st = strata_modelfile_add_message(d->mf, mf->messages[i].role, mf->messages[i].content);
    }
    for (size_t i = 0; st == STRATA_OK && i < mf->n_params; i++) {
        const strata_param *p = &mf->params[i];
        strata_modelfile_unset_param(d->mf, p->name);
        char num[64];
        if (p->type == STRATA_PARAM_STRINGS) {
            for (size_t j = 0; st == STRATA_OK && j < p->n_strs; j++) st = strata_modelfile_set_param(d->mf, p->name, p->strs[j]);
        } else {
            if (p->type == STRATA_PARAM_INT) snprintf(num, sizeof num, "%lld", (long long)p->i);
            else snprintf(num, sizeof num, "%.17g", p->f);
            st = strata_modelfile_set_param(d->mf, p->name, num);
        }
    }
    return st;
}

static strata_status add_layer(strata_manifest *m, const char *media, const char *digest, uint64_t size) {
    strata_layer *g = realloc(m->layers, (m->n_layers + 1) * sizeof *g);
    if (!g) return strata_fail(STRATA_ERR_NOMEM, "out of memory");
    m->layers = g;
    strata_layer *l = &g[m->n_layers++];
    snprintf(l->media_type, sizeof l->media_type, "%s", media);
    snprintf(l->digest, sizeof l->digest, "%s", digest);
    l->size = size;
    return STRATA_OK;
}

static strata_status add_text_layer(strata_store *s, strata_manifest *m, const char *media, const char *text) {
    char digest[STRATA_DIGEST_SIZE];
    size_t len = strlen(text);
    strata_status st = strata_store_put_blob(s, text, len, digest);
    return st != STRATA_OK ? st : add_layer(m, media, digest, len);
}

static strata_status write_config(strata_store *s, const strata_manifest *m, const gguf_facts *f, strata_layer *out) {
    cJSON *root = cJSON_CreateObject();
    cJSON *fams = cJSON_CreateArray();
    cJSON *rootfs = cJSON_CreateObject();
    cJSON *ids = cJSON_CreateArray();
    bool ok = root && fams && rootfs && ids;
    if (ok) {
        cJSON_AddItemToArray(fams, cJSON_CreateString(f->family));
        for (size_t i = 0; i < m->n_layers; i++) cJSON_AddItemToArray(ids, cJSON_CreateString(m->layers[i].digest));
        cJSON_AddStringToObject(rootfs, "type", "layers");
        cJSON_AddItemToObject(rootfs, "diff_ids", ids);
        ids = NULL;
        cJSON_AddStringToObject(root, "model_format", "gguf");
        cJSON_AddStringToObject(root, "model_family", f->family);
        cJSON_AddItemToObject(root, "model_families", fams);
        fams = NULL;
        cJSON_AddStringToObject(root, "model_type", f->parameter_size);
        cJSON_AddStringToObject(root, "file_type", f->file_type);
        cJSON_AddItemToObject(root, "rootfs", rootfs);
        rootfs = NULL;
    }
    cJSON_Delete(fams);
    cJSON_Delete(rootfs);
    cJSON_Delete(ids);
    if (!ok) {
        cJSON_Delete(root);
        return strata_fail(STRATA_ERR_NOMEM, "out of memory");
    }
    char *text = NULL;
    strata_status st = json_text(root, &text);
    if (st != STRATA_OK) return st;
    snprintf(out->media_type, sizeof out->media_type, "%s", STRATA_MEDIA_CONFIG);
    out->size = strlen(text);
    st = strata_store_put_blob(s, text, strlen(text), out->digest);
    cJSON_free(text);
    return st;
}

/* A create's rewrite step: src -> a temporary file in the blob folder (so the writer lock
 * held by the create protects it) -> hashed in place and renamed to its digest. */
static strata_status rewrite_model(strata_store *s, const char *src, const strata_store_create_params *p,
                                   strata_layer *out) {
    char tmp[4096 + 128];
    int fd = fs_temp_open(s->blobs, tmp, sizeof tmp);
    if (fd < 0) return STRATA_ERR_IO;
    close(fd);
    strata_status st = p->rewrite(p->rewrite_user, src, tmp);
    if (st != STRATA_OK) {
        unlink(tmp);
        return st;
    }
    fd = open(tmp, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        st = strata_fail(STRATA_ERR_IO, "%s: %s", tmp, strerror(errno));
        unlink(tmp);
        return st;
    }
    char *buf = malloc(COPY_CHUNK);
    strata_sha256 *h = NULL;
    st = !buf ? strata_fail(STRATA_ERR_NOMEM, "out of memory") : strata_sha256_new(&h);
    uint64_t done = 0;
    while (st == STRATA_OK) {
        ssize_t r = read(fd, buf, COPY_CHUNK);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) {
            st = strata_fail(STRATA_ERR_IO, "reading %s: %s", tmp, strerror(errno));
            break;
        }
        if (r == 0) break;
        st = strata_sha256_update(h, buf, (size_t)r);
        done += (uint64_t)r;
    }
    free(buf);
    char digest[STRATA_DIGEST_SIZE];
    if (st == STRATA_OK) st = strata_sha256_final(h, digest);
    strata_sha256_free(h);
    if (st == STRATA_OK && done == 0) st = strata_fail(STRATA_ERR_FORMAT, "the rewritten model file is empty");
    if (st != STRATA_OK) {
        close(fd);
        unlink(tmp);
        return st;
    }
    if ((st = install_blob(s, fd, tmp, digest)) != STRATA_OK) return st;
    snprintf(out->media_type, sizeof out->media_type, "%s", STRATA_MEDIA_MODEL);
    snprintf(out->digest, sizeof out->digest, "%s", digest);
    out->size = done;
    return STRATA_OK;
}

static strata_status create_locked(strata_store *s, const strata_model_name *name, const strata_modelfile *mf,
                                   const char *base_dir, const strata_store_create_params *p) {
    strata_store_progress progress = p->progress;
    void *user = p->user;
    draft d = {0};
    strata_manifest m = {0};
    d.mf = strata_modelfile_new();
    if (!d.mf) return strata_fail(STRATA_ERR_NOMEM, "out of memory");
    strata_status st = STRATA_OK;
    char path[4096];
    strata_model_name base;
    bool is_path = looks_like_path(mf->from);
    if (!is_path && strata_model_name_parse(mf->from, &base) == STRATA_OK) {
        st = load_base(s, &base, &d);
        if (st == STRATA_ERR_NOT_FOUND) {
            /* Not a model: a file of that name next to the Modelfile will do. */
            struct stat sb;
            if (expand_path(mf->from, base_dir, path, sizeof path) == STRATA_OK && stat(path, &sb) == 0) {
                is_path = true;
                st = STRATA_OK;
            } else {
                st = strata_fail(STRATA_ERR_NOT_FOUND, "FROM %s: no model of that name in the store and no such file", mf->from);
            }
        }
    } else {
        is_path = true;
    }
    gguf_facts facts = {0};
    if (st == STRATA_OK && is_path) {
        if ((st = expand_path(mf->from, base_dir, path, sizeof path)) != STRATA_OK) goto done;
        char what[600];
        snprintf(what, sizeof what, "FROM %s", mf->from);
        if ((st = strata_store_check_source(path, what)) != STRATA_OK) goto done;
        if ((st = read_gguf_facts(path, &facts)) != STRATA_OK) {
            char why[512];
            snprintf(why, sizeof why, "%s", strata_last_error());
            st = strata_fail(st, "FROM %s: not a usable GGUF file: %s", mf->from, why);
            goto done;
        }
        if (p->rewrite) {
            if ((st = rewrite_model(s, path, p, &d.model)) != STRATA_OK) goto done;
        } else {
            char digest[STRATA_DIGEST_SIZE];
            uint64_t size;
            if ((st = strata_store_import_file(s, path, progress, user, digest, &size)) != STRATA_OK) goto done;
            snprintf(d.model.media_type, sizeof d.model.media_type, "%s", STRATA_MEDIA_MODEL);
            snprintf(d.model.digest, sizeof d.model.digest, "%s", digest);
            d.model.size = size;
        }
        d.have_model = true;
    }
    if (st == STRATA_OK && !is_path && p->rewrite) {
        /* FROM a model: its model blob is the input, the rewritten file replaces it. */
        char blob[4096 + 128];
        st = strata_store_blob_path(s, d.model.digest, blob, sizeof blob);
        if (st == STRATA_OK) st = rewrite_model(s, blob, p, &d.model);
    }
    if (st != STRATA_OK) goto done;
    if ((st = apply_overrides(&d, mf)) != STRATA_OK) goto done;
    /* A GGUF imported without a TEMPLATE gets the built-in template of the chat format its
     * tokenizer.chat_template writes, and that format's stop strings unless some are set
     * (as Ollama's create does), so `show --template` and generation agree. */
    if (is_path && !d.mf->template_text && facts.chat != STRATA_CHAT_UNKNOWN) {
        st = strata_modelfile_set_string(&d.mf->template_text, strata_chat_family_template(facts.chat));
        if (st == STRATA_OK && !strata_modelfile_get_param(d.mf, "stop"))
            for (const char *const *stop = strata_chat_family_stops(facts.chat); st == STRATA_OK && *stop; stop++)
                st = strata_modelfile_set_param(d.mf, "stop", *stop);
        if (st != STRATA_OK) goto done;
    }

    if (progress && !progress(user, "writing layers", 0, 0)) {
        st = strata_fail(STRATA_ERR_CANCELLED, "create cancelled");
        goto done;
    }
    st = add_layer(&m, STRATA_MEDIA_MODEL, d.model.digest, d.model.size);
    for (size_t i = 0; st == STRATA_OK && i < d.n_extra; i++)
        st = add_layer(&m, d.extra[i].media_type, d.extra[i].digest, d.extra[i].size);
    if (st == STRATA_OK && d.mf->template_text) st = add_text_layer(s, &m, STRATA_MEDIA_TEMPLATE, d.mf->template_text);
    if (st == STRATA_OK && d.mf->system) st = add_text_layer(s, &m, STRATA_MEDIA_SYSTEM, d.mf->system);
    for (size_t i = 0; st == STRATA_OK && i < d.mf->n_licenses; i++)
        st = add_text_layer(s, &m, STRATA_MEDIA_LICENSE, d.mf->licenses[i]);
    if (st == STRATA_OK && d.mf->n_params) {
        char *json;
        if ((st = strata_modelfile_params_to_json(d.mf, &json)) == STRATA_OK) {
            st = add_text_layer(s, &m, STRATA_MEDIA_PARAMS, json);
            free(json);
        }
    }
    if (st == STRATA_OK && d.mf->n_messages) {
        char *json;
        if ((st = strata_modelfile_messages_to_json(d.mf, &json)) == STRATA_OK) {
            st = add_text_layer(s, &m, STRATA_MEDIA_MESSAGES, json);
            free(json);
        }
    }
    if (st == STRATA_OK) {
        char blob[4096 + 128];
        st = strata_store_blob_path(s, d.model.digest, blob, sizeof blob);
        if (st == STRATA_OK) st = read_gguf_facts(blob, &facts);
        if (st == STRATA_OK) st = write_config(s, &m, &facts, &m.config);
    }
    if (st == STRATA_OK && progress && !progress(user, "writing manifest", 0, 0))
        st = strata_fail(STRATA_ERR_CANCELLED, "create cancelled");
    if (st == STRATA_OK) st = write_manifest(s, name, &m);
done:
    strata_manifest_free(&m);
    free(d.extra);
    strata_modelfile_free(d.mf);
    return st;
}

strata_status strata_store_create(strata_store *s, const char *name, const strata_modelfile *mf, const char *base_dir,
                                  strata_store_progress progress, void *user) {
    const strata_store_create_params p = {.progress = progress, .user = user};
    return strata_store_create_ex(s, name, mf, base_dir, &p);
}

strata_status strata_store_create_ex(strata_store *s, const char *name, const strata_modelfile *mf, const char *base_dir,
                                     const strata_store_create_params *params) {
    const strata_store_create_params none = {0};
    const strata_store_create_params *p = params ? params : &none;
    strata_model_name n;
    strata_status st = strata_model_name_parse(name, &n);
    if (st != STRATA_OK) return st;
    if (!mf || !mf->from) return strata_fail(STRATA_ERR_INVALID, "create %s: the Modelfile has no FROM", name);
    if ((st = lock_store(s, LOCK_SH)) != STRATA_OK) return st;
    st = create_locked(s, &n, mf, base_dir, p);
    unlock_store(s);
    return st;
}

/* ---- listing and garbage collection --------------------------------------------------- */

typedef strata_status (*manifest_visitor)(void *ctx, const strata_model_name *n, const char *path);

/* Calls visit for every manifest file at manifests/host/ns/model/tag whose path is a valid
 * name. remove_temps deletes temporary files on the way (only under the exclusive lock). */
static strata_status walk_manifests(strata_store *s, manifest_visitor visit, void *ctx, bool remove_temps) {
    char path[4][4096 + 1024 + 256];
    DIR *d[4] = {0};
    snprintf(path[0], sizeof path[0], "%s", s->manifests);
    strata_status st = STRATA_OK;
    int depth = 0;
    d[0] = opendir(path[0]);
    if (!d[0]) return STRATA_OK;
    while (depth >= 0 && st == STRATA_OK) {
        struct dirent *e = readdir(d[depth]);
        if (!e) {
            closedir(d[depth]);
            d[depth] = NULL;
            depth--;
            continue;
        }
        if (fs_is_temp_name(e->d_name)) {
            if (remove_temps && fs_temp_collectable(path[depth], e->d_name)) {
                char p[sizeof path[0] + 256];
                snprintf(p, sizeof p, "%s/%s", path[depth], e->d_name);
                unlink(p);
            }
            continue;
        }
        if (e->d_name[0] == '.') continue;
        char child[sizeof path[0]];
        if (snprintf(child, sizeof child, "%s/%s", path[depth], e->d_name) >= (int)sizeof child) continue;
        struct stat sb;
        if (lstat(child, &sb) != 0) continue;
        if (depth < 3) {
            if (!S_ISDIR(sb.st_mode)) continue;
            DIR *sub = opendir(child);
            if (!sub) continue;
            if (snprintf(path[depth + 1], sizeof path[depth + 1], "%s", child) >= (int)sizeof path[0]) {
                closedir(sub);
                continue;
            }
            depth++;
            d[depth] = sub;
            continue;
        }
        if (!S_ISREG(sb.st_mode)) continue;
        /* path[1..3] end in host, ns, model. */
        const char *host = strrchr(path[1], '/') + 1, *ns = strrchr(path[2], '/') + 1, *model = strrchr(path[3], '/') + 1;
        char text[1024];
        snprintf(text, sizeof text, "%s/%s/%s:%s", host, ns, model, e->d_name);
        strata_model_name n;
        if (strata_model_name_parse(text, &n) != STRATA_OK || strcmp(n.host, host) != 0 || strcmp(n.ns, ns) != 0 ||
            strcmp(n.model, model) != 0 || strcmp(n.tag, e->d_name) != 0)
            continue; /* not a name we could have written: leave it alone */
        st = visit(ctx, &n, child);
    }
    for (int i = 0; i < 4; i++)
        if (d[i]) closedir(d[i]);
    return st;
}

typedef struct {
    strata_store *s;
    strata_model_entry *items;
    size_t n;
} list_ctx;

static strata_status list_visit(void *vctx, const strata_model_name *n, const char *path) {
    list_ctx *c = vctx;
    char *text = NULL;
    size_t len;
    if (fs_read_file(path, MAX_MANIFEST_BYTES, &text, &len) != STRATA_OK) return STRATA_OK;
    strata_manifest m;
    if (parse_manifest(text, len, path, &m) != STRATA_OK) {
        free(text);
        return STRATA_OK;
    }
    strata_model_entry e;
    memset(&e, 0, sizeof e);
    strata_model_name_display(n, e.name, sizeof e.name);
    strata_status st = strata_sha256_digest(text, len, e.digest);
    free(text);
    e.size = m.config.size;
    for (size_t i = 0; i < m.n_layers; i++) e.size += m.layers[i].size;
    strata_manifest_free(&m);
    struct stat sb;
    if (stat(path, &sb) == 0) e.modified = (int64_t)sb.st_mtime;
    if (st != STRATA_OK) return st;
    strata_model_entry *g = realloc(c->items, (c->n + 1) * sizeof *g);
    if (!g) return strata_fail(STRATA_ERR_NOMEM, "out of memory");
    c->items = g;
    g[c->n++] = e;
    return STRATA_OK;
}

static int cmp_entry(const void *a, const void *b) {
    return strcmp(((const strata_model_entry *)a)->name, ((const strata_model_entry *)b)->name);
}

strata_status strata_store_list(strata_store *s, strata_model_entry **out, size_t *n) {
    list_ctx c = {s, NULL, 0};
    strata_status st = walk_manifests(s, list_visit, &c, false);
    if (st != STRATA_OK) {
        free(c.items);
        return st;
    }
    if (c.n) qsort(c.items, c.n, sizeof *c.items, cmp_entry);
    *out = c.items;
    *n = c.n;
    return STRATA_OK;
}

typedef struct {
    char (*digests)[STRATA_DIGEST_SIZE];
    size_t n, cap;
} digest_set;

static strata_status set_add(digest_set *set, const char *d) {
    if (set->n == set->cap) {
        size_t cap = set->cap ? set->cap * 2 : 64;
        void *g = realloc(set->digests, cap * sizeof *set->digests);
        if (!g) return strata_fail(STRATA_ERR_NOMEM, "out of memory");
        set->digests = g;
        set->cap = cap;
    }
    snprintf(set->digests[set->n++], STRATA_DIGEST_SIZE, "%s", d);
    return STRATA_OK;
}

static int cmp_digest(const void *a, const void *b) { return strcmp(a, b); }

static strata_status gc_visit(void *vctx, const strata_model_name *n, const char *path) {
    (void)n;
    digest_set *set = vctx;
    char *text = NULL;
    size_t len;
    strata_status st = fs_read_file(path, MAX_MANIFEST_BYTES, &text, &len);
    if (st != STRATA_OK) return st;
    strata_manifest m;
    st = parse_manifest(text, len, path, &m);
    free(text);
    if (st != STRATA_OK) return st; /* a manifest we cannot read: collect nothing */
    st = set_add(set, m.config.digest);
    for (size_t i = 0; st == STRATA_OK && i < m.n_layers; i++) st = set_add(set, m.layers[i].digest);
    strata_manifest_free(&m);
    return st;
}

static strata_status gc_locked(strata_store *s, size_t *removed) {
    digest_set set = {0};
    size_t count = 0;
    strata_status st = walk_manifests(s, gc_visit, &set, true);
    if (st != STRATA_OK) {
        char why[512];
        snprintf(why, sizeof why, "%s", strata_last_error());
        free(set.digests);
        return strata_fail(st, "garbage collection skipped: %s", why);
    }
    if (set.n) qsort(set.digests, set.n, sizeof *set.digests, cmp_digest);
    DIR *d = opendir(s->blobs);
    if (!d) {
        free(set.digests);
        return strata_fail(STRATA_ERR_IO, "%s: %s", s->blobs, strerror(errno));
    }
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        char p[4096 + 256];
        snprintf(p, sizeof p, "%s/%s", s->blobs, e->d_name);
        if (fs_is_temp_name(e->d_name)) {
            if (fs_temp_collectable(s->blobs, e->d_name) && unlink(p) == 0) count++;
            continue;
        }
        if (strncmp(e->d_name, HOLD_PREFIX, strlen(HOLD_PREFIX)) == 0) {
            if (!hold_fresh(p)) unlink(p); /* an expired hold */
            continue;
        }
        if (strncmp(e->d_name, "sha256-", 7) != 0) continue;
        char digest[STRATA_DIGEST_SIZE + 8];
        snprintf(digest, sizeof digest, "sha256:%s", e->d_name + 7);
        if (!strata_digest_valid(digest)) continue; /* e.g. Ollama's "-partial" downloads */
        if (set.n && bsearch(digest, set.digests, set.n, sizeof *set.digests, cmp_digest)) continue;
        char hold[4096 + 512];
        snprintf(hold, sizeof hold, "%s/" HOLD_PREFIX "%s", s->blobs, e->d_name);
        if (hold_fresh(hold)) continue; /* uploaded for a create still to come */
        if (unlink(p) == 0) count++;
    }
    closedir(d);
    free(set.digests);
    fs_fsync_dir(s->blobs);
    if (removed) *removed = count;
    return STRATA_OK;
}

strata_status strata_store_gc(strata_store *s, size_t *removed) {
    strata_status st = lock_store(s, LOCK_EX);
    if (st != STRATA_OK) return st;
    st = gc_locked(s, removed);
    unlock_store(s);
    return st;
}

/* ---- copy, delete, show --------------------------------------------------------------- */

strata_status strata_store_copy(strata_store *s, const char *src, const char *dst) {
    strata_model_name a, b;
    strata_status st = strata_model_name_parse(src, &a);
    if (st != STRATA_OK) return st;
    if ((st = strata_model_name_parse(dst, &b)) != STRATA_OK) return st;
    if ((st = lock_store(s, LOCK_SH)) != STRATA_OK) return st;
    char from[4096 + 512], to[4096 + 512], dir[4096 + 512];
    char *text = NULL;
    size_t len;
    strata_manifest m = {0};
    if ((st = manifest_path(s, &a, from, sizeof from)) == STRATA_OK && (st = manifest_path(s, &b, to, sizeof to)) == STRATA_OK)
        st = fs_read_file(from, MAX_MANIFEST_BYTES, &text, &len);
    if (st == STRATA_ERR_NOT_FOUND) st = strata_fail(STRATA_ERR_NOT_FOUND, "model '%s' not found", src);
    if (st == STRATA_OK) st = parse_manifest(text, len, from, &m);
    for (size_t i = 0; st == STRATA_OK && i < m.n_layers; i++)
        if (!strata_store_has_blob(s, m.layers[i].digest))
            st = strata_fail(STRATA_ERR_FORMAT, "model '%s' is damaged: blob %s is missing", src, m.layers[i].digest);
    if (st == STRATA_OK && strcmp(from, to) != 0) {
        fs_dirname(to, dir, sizeof dir);
        if ((st = fs_mkdirs(dir)) == STRATA_OK) st = fs_write_atomic(to, text, len);
    }
    strata_manifest_free(&m);
    free(text);
    unlock_store(s);
    return st;
}

strata_status strata_store_delete(strata_store *s, const char *name) {
    strata_model_name n;
    strata_status st = strata_model_name_parse(name, &n);
    if (st != STRATA_OK) return st;
    char p[4096 + 512];
    if ((st = manifest_path(s, &n, p, sizeof p)) != STRATA_OK) return st;
    if ((st = lock_store(s, LOCK_EX)) != STRATA_OK) return st;
    if (unlink(p) != 0) {
        st = errno == ENOENT ? strata_fail(STRATA_ERR_NOT_FOUND, "model '%s' not found", name)
                             : strata_fail(STRATA_ERR_IO, "cannot remove %s: %s", p, strerror(errno));
        unlock_store(s);
        return st;
    }
    /* Empty model, namespace and host folders go too (rmdir refuses non-empty ones). */
    char dir[4096 + 512];
    fs_dirname(p, dir, sizeof dir);
    fs_fsync_dir(dir);
    for (int i = 0; i < 3; i++) {
        if (rmdir(dir) != 0) break;
        char parent[4096 + 512];
        fs_dirname(dir, parent, sizeof parent);
        fs_fsync_dir(parent);
        snprintf(dir, sizeof dir, "%s", parent);
    }
    st = gc_locked(s, NULL);
    if (st != STRATA_OK) {
        char why[512];
        snprintf(why, sizeof why, "%s", strata_last_error());
        st = strata_fail(st, "deleted '%s', but %s", name, why);
    }
    unlock_store(s);
    return st;
}

void strata_model_info_free(strata_model_info *info) {
    if (!info) return;
    strata_modelfile_free(info->modelfile);
    free(info);
}

static void config_string(const cJSON *root, const char *key, char *out, size_t cap) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, key);
    snprintf(out, cap, "%s", cJSON_IsString(v) ? v->valuestring : "");
}

strata_status strata_store_show(strata_store *s, const char *name, strata_model_info **out) {
    *out = NULL;
    strata_model_name n;
    strata_status st = strata_model_name_parse(name, &n);
    if (st != STRATA_OK) return st;
    strata_model_info *info = calloc(1, sizeof *info);
    draft d = {0};
    if (!info || !(d.mf = strata_modelfile_new())) {
        free(info);
        return strata_fail(STRATA_ERR_NOMEM, "out of memory");
    }
    strata_model_name_display(&n, info->name, sizeof info->name);
    strata_manifest m = {0};
    if ((st = read_manifest_name(s, &n, &m, info->digest)) == STRATA_OK) st = load_layers(s, &m, &d);
    if (st == STRATA_OK) st = strata_store_blob_path(s, d.model.digest, info->model_path, sizeof info->model_path);
    if (st == STRATA_OK) {
        struct stat sb;
        if (stat(info->model_path, &sb) != 0 || (uint64_t)sb.st_size != d.model.size)
            st = strata_fail(STRATA_ERR_FORMAT, "model '%s' is damaged: its model blob is missing or has the wrong size", name);
        snprintf(info->model_digest, sizeof info->model_digest, "%s", d.model.digest);
        info->model_size = d.model.size;
    }
    if (st == STRATA_OK) {
        char *text = NULL;
        size_t len;
        if ((st = read_text_blob(s, m.config.digest, &text, &len)) == STRATA_OK) {
            cJSON *cfg = cJSON_ParseWithLength(text, len);
            config_string(cfg, "model_format", info->format, sizeof info->format);
            config_string(cfg, "model_family", info->family, sizeof info->family);
            config_string(cfg, "model_type", info->parameter_size, sizeof info->parameter_size);
            config_string(cfg, "file_type", info->quantization, sizeof info->quantization);
            cJSON_Delete(cfg);
            free(text);
        }
    }
    if (st == STRATA_OK) st = strata_modelfile_set_string(&d.mf->from, info->model_path);
    strata_manifest_free(&m);
    free(d.extra);
    if (st != STRATA_OK) {
        strata_modelfile_free(d.mf);
        free(info);
        return st;
    }
    info->modelfile = d.mf;
    *out = info;
    return STRATA_OK;
}

strata_status strata_model_info_modelfile(const strata_model_info *info, char **out) {
    char *body;
    strata_status st = strata_modelfile_format(info->modelfile, &body);
    if (st != STRATA_OK) return st;
    const char *fmt = "# Modelfile generated by \"strata show\"\n"
                      "# To build a new Modelfile based on this, replace FROM with:\n"
                      "# FROM %s\n\n%s";
    size_t n = strlen(fmt) + strlen(info->name) + strlen(body) + 1;
    char *text = malloc(n);
    if (!text) {
        free(body);
        return strata_fail(STRATA_ERR_NOMEM, "out of memory");
    }
    snprintf(text, n, fmt, info->name, body);
    free(body);
    *out = text;
    return STRATA_OK;
}
