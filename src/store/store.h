/* The model store: content-addressed blobs and one manifest per model name.
 *
 * Layout (the same as Ollama's, so a store can be shared or inspected with its tools;
 * see docs/store.md):
 *   ROOT/blobs/sha256-<64 hex>                  every file, named by the SHA-256 of its bytes
 *   ROOT/manifests/<host>/<namespace>/<model>/<tag>
 *                                               JSON: config + layers, each {mediaType, digest, size}
 * ROOT is $STRATA_MODELS, else ~/.strata/models.
 *
 * Writes are atomic: every file is written to a temporary name (".tmp-...") in its final
 * folder, fsync'd, renamed into place, and the folder fsync'd. Blobs are complete before a
 * manifest names them, so a manifest never points at a missing or partial blob, and a
 * killed create leaves at worst a temporary file (ignored by every reader, removed by the
 * next garbage collection or store open) and unreferenced blobs (removed by gc).
 * Writers hold a shared flock on ROOT/.lock and garbage collection an exclusive one, so
 * gc never removes the blobs of a create in progress, in this or another process.
 *
 * Names follow Ollama's rules: [host/][namespace/]model[:tag], defaults
 * registry.ollama.ai / library / latest. Parts: host 1-255 of [A-Za-z0-9._-] starting
 * with a letter or digit, with an optional :port; namespace 1-80 of [A-Za-z0-9_-]; model
 * 1-80 of [A-Za-z0-9._-]; tag 1-80 of [A-Za-z0-9._-]; namespace and model start with a
 * letter or digit, a tag with a letter, digit or '_'. So no part can be "." or "..", hold
 * a '/' or reach outside the store. Names are case-insensitive: they are lowercased.
 *
 * Thread-safety: a strata_store handle may be used from one thread at a time; separate
 * handles (threads or processes) on the same ROOT are safe together. */
#ifndef STRATA_STORE_STORE_H
#define STRATA_STORE_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/status.h"
#include "store/modelfile.h"

#define STRATA_NAME_DEFAULT_HOST "registry.ollama.ai"
#define STRATA_NAME_DEFAULT_NAMESPACE "library"
#define STRATA_NAME_DEFAULT_TAG "latest"

typedef struct {
    char host[256];
    char ns[81];
    char model[81];
    char tag[81];
} strata_model_name;

/* Parses and validates a model name, filling defaults and lowercasing. The error message
 * says which part is wrong and why. */
strata_status strata_model_name_parse(const char *text, strata_model_name *out);
/* The shortest display form ("llama3:latest", "me/llama3:8b", "host.io/me/llama3:8b").
 * Returns the length of the full string (as snprintf does). */
size_t strata_model_name_display(const strata_model_name *n, char *buf, size_t cap);
/* "host/namespace/model:tag". Returns the length (as snprintf does). */
size_t strata_model_name_full(const strata_model_name *n, char *buf, size_t cap);

/* Digests are written "sha256:<64 lowercase hex>" (71 characters). */
#define STRATA_DIGEST_SIZE 72
bool strata_digest_valid(const char *digest);

/* Media types of layers (Ollama's). */
#define STRATA_MEDIA_MODEL "application/vnd.ollama.image.model"
#define STRATA_MEDIA_TEMPLATE "application/vnd.ollama.image.template"
#define STRATA_MEDIA_SYSTEM "application/vnd.ollama.image.system"
#define STRATA_MEDIA_PARAMS "application/vnd.ollama.image.params"
#define STRATA_MEDIA_MESSAGES "application/vnd.ollama.image.messages"
#define STRATA_MEDIA_LICENSE "application/vnd.ollama.image.license"
#define STRATA_MEDIA_CONFIG "application/vnd.docker.container.image.v1+json"
#define STRATA_MEDIA_MANIFEST "application/vnd.docker.distribution.manifest.v2+json"

typedef struct strata_store strata_store;

/* Called as work proceeds (status is a short phrase; done/total in bytes, total 0 when
 * unknown). Returning false cancels (STRATA_ERR_CANCELLED). */
typedef bool (*strata_store_progress)(void *user, const char *status, uint64_t done, uint64_t total);

/* The default root: $STRATA_MODELS if set and non-empty, else $HOME/.strata/models.
 * Returns the length needed (as snprintf); 0 when neither variable is usable. */
size_t strata_store_default_root(char *buf, size_t cap);

/* Opens (creating folders as needed) the store at root, or the default root when NULL.
 * Removes temporary files left by killed writers when no writer is active. */
strata_status strata_store_open(const char *root, strata_store **out);
void strata_store_close(strata_store *s);
const char *strata_store_root(const strata_store *s);

/* Path of the blob for a digest (whether or not it exists). */
strata_status strata_store_blob_path(const strata_store *s, const char *digest, char *buf, size_t cap);
bool strata_store_has_blob(const strata_store *s, const char *digest);

/* Copies a file into the store once, hashing while it copies (to a temporary file in the
 * blob folder, then renamed to its digest; an identical blob already present is kept and
 * the copy dropped). Fills digest and size. progress may be NULL. */
strata_status strata_store_import_file(strata_store *s, const char *path, strata_store_progress progress, void *user,
                                       char digest[STRATA_DIGEST_SIZE], uint64_t *size);
/* Holds a blob (present or about to be) for FS_STALE_SECONDS (an hour): garbage collection
 * does not remove it even when no manifest names it, so that a blob uploaded for a create
 * still to come survives deletes in between. Holding again renews the hold. */
strata_status strata_store_hold_blob(strata_store *s, const char *digest);
/* Creates a temporary file in the blob folder, owned by this process (its pid is in the
 * name): no cleanup or gc removes it while this process lives (unless it is left untouched
 * for an hour). Returns the fd, or -1 with the error recorded. */
int strata_store_temp_open(strata_store *s, char *path, size_t cap);
/* Makes the temporary file tmp (from strata_store_temp_open) a blob: hashes it in place and
 * renames it to its digest, holding it (see strata_store_hold_blob). When expected is not
 * NULL and the bytes hash to something else, tmp is removed and nothing enters the store
 * (STRATA_ERR_INVALID, "digest mismatch ..."). tmp is gone afterwards either way. */
strata_status strata_store_adopt_blob(strata_store *s, const char *tmp, const char *expected,
                                      char digest[STRATA_DIGEST_SIZE], uint64_t *size);
/* Checks that path is a regular file (not a directory, FIFO, socket or device: refused
 * without opening it) that starts like a GGUF file; opens it non-blocking. Messages start
 * with `what` and never quote the file's bytes. NOT_FOUND, INVALID or FORMAT. */
strata_status strata_store_check_source(const char *path, const char *what);
/* Stores bytes as a blob. */
strata_status strata_store_put_blob(strata_store *s, const void *data, size_t len, char digest[STRATA_DIGEST_SIZE]);

typedef struct {
    char media_type[96];
    char digest[STRATA_DIGEST_SIZE];
    uint64_t size;
} strata_layer;

typedef struct {
    strata_layer config;
    strata_layer *layers;
    size_t n_layers;
} strata_manifest;

/* Reads and validates the manifest of `name` (STRATA_ERR_NOT_FOUND if there is none). */
strata_status strata_store_read_manifest(strata_store *s, const char *name, strata_manifest *out);
void strata_manifest_free(strata_manifest *m);

typedef struct {
    char name[512];                /* display form, e.g. "llama3:latest" */
    char digest[STRATA_DIGEST_SIZE]; /* of the manifest's bytes (Ollama's ID) */
    uint64_t size;                 /* config + layers */
    int64_t modified;              /* manifest mtime, Unix seconds */
} strata_model_entry;

/* Every model, sorted by name. *out is malloc'd (caller frees); unreadable manifests and
 * paths that are not valid names are skipped. */
strata_status strata_store_list(strata_store *s, strata_model_entry **out, size_t *n);

typedef struct {
    char name[512];                      /* display form */
    char digest[STRATA_DIGEST_SIZE];     /* of the manifest */
    char model_path[4096];               /* the GGUF blob */
    char model_digest[STRATA_DIGEST_SIZE];
    uint64_t model_size;
    char format[16];                     /* "gguf" */
    char family[64];                     /* general.architecture */
    char parameter_size[32];             /* e.g. "8.0B" */
    char quantization[32];               /* general.file_type name, e.g. "Q4_K_M" */
    /* from = model_path; template, system, parameters, messages, licenses of the model. */
    strata_modelfile *modelfile;
} strata_model_info;

/* Everything about a model. Fails with STRATA_ERR_NOT_FOUND for an unknown name and
 * STRATA_ERR_FORMAT when a blob it names is missing or damaged. */
strata_status strata_store_show(strata_store *s, const char *name, strata_model_info **out);
void strata_model_info_free(strata_model_info *info);
/* The Modelfile text `show --modelfile` prints: a header comment, then FROM <blob path>
 * and the rest. *out malloc'd. */
strata_status strata_model_info_modelfile(const strata_model_info *info, char **out);

/* Creates (or replaces) `name` from a parsed Modelfile. FROM is a GGUF path (relative
 * paths are taken from base_dir, ~ is the home folder) or the name of a model in the
 * store, whose layers are inherited: TEMPLATE, SYSTEM, MESSAGE and LICENSE given here
 * replace the base's, PARAMETERs are merged over the base's. */
strata_status strata_store_create(strata_store *s, const char *name, const strata_modelfile *mf, const char *base_dir,
                                  strata_store_progress progress, void *user);

/* Rewrites the model file during a create (quantization): reads the GGUF at src and writes
 * a complete new one at dst (with a temporary file and a rename of its own, or directly).
 * Runs with the store's writer lock held. */
typedef strata_status (*strata_store_model_rewrite)(void *user, const char *src, const char *dst);

typedef struct {
    strata_store_progress progress; /* may be NULL */
    void *user;                     /* passed to progress */
    /* May be NULL. When set, the new model's model layer is not FROM's GGUF itself (a path,
     * or the model blob of the model FROM names) but what rewrite writes from it. dst is a
     * temporary name in the blob folder, protected from garbage collection and from the
     * leftover cleanup of other writers while the create runs; once rewrite returns STRATA_OK
     * the store hashes that file and renames it to its digest (no copy). A failure, a cancel
     * or a kill leaves no manifest naming it: the temporary file is removed at once or by the
     * next cleanup. */
    strata_store_model_rewrite rewrite;
    void *rewrite_user;
} strata_store_create_params;

/* strata_store_create with a rewrite step (p may be NULL: same as strata_store_create). */
strata_status strata_store_create_ex(strata_store *s, const char *name, const strata_modelfile *mf, const char *base_dir,
                                     const strata_store_create_params *p);
/* Copies a model under another name (blobs are shared). */
strata_status strata_store_copy(strata_store *s, const char *src, const char *dst);
/* Removes a model's manifest, then collects its blobs if nothing else names them. */
strata_status strata_store_delete(strata_store *s, const char *name);
/* Removes every blob no manifest names and every temporary file. removed may be NULL. */
strata_status strata_store_gc(strata_store *s, size_t *removed);

#endif
