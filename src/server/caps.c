/* What a model can do (Ollama's capabilities), from its GGUF header and the template in effect.
 *
 * As Ollama decides them: "embedding" when the GGUF has {arch}.pooling_type (an embedding
 * model), else "completion"; "tools" when the template writes .Tools; "insert" when it writes
 * .Suffix; "thinking" when a .Thinking inside a range over .Messages sits between an opening
 * and a closing tag (template/template.h, strata_template_think_tags). The template in effect
 * is the Modelfile's TEMPLATE, else the built-in one of the chat family recognised in the
 * GGUF's tokenizer.chat_template, else "{{ .Prompt }}". Strata has no vision encoder, so no
 * model has "vision": images are refused (srv_caps_refuse). */
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "gguf/gguf.h"
#include "server/internal.h"

/* Model paths are store blobs, named by the digest of their bytes, so what a path's header
 * says never changes: it is read once and remembered (a header with a large vocabulary takes
 * tens of milliseconds to parse, on every request otherwise). A small table, replaced
 * round-robin when full. */
enum { TRAITS_CACHE_SLOTS = 32 };
static struct {
    char path[512];
    srv_gguf_traits traits;
} traits_cache[TRAITS_CACHE_SLOTS];
static int traits_cache_next;
static pthread_mutex_t traits_cache_mu = PTHREAD_MUTEX_INITIALIZER;

srv_gguf_traits srv_model_traits(const char *path) {
    srv_gguf_traits tr = {.family = STRATA_CHAT_UNKNOWN};
    const bool cacheable = strlen(path) < sizeof traits_cache[0].path;
    if (cacheable) {
        pthread_mutex_lock(&traits_cache_mu);
        for (int i = 0; i < TRAITS_CACHE_SLOTS; i++)
            if (strcmp(traits_cache[i].path, path) == 0) {
                tr = traits_cache[i].traits;
                pthread_mutex_unlock(&traits_cache_mu);
                return tr;
            }
        pthread_mutex_unlock(&traits_cache_mu);
    }
    gguf_file *f = NULL;
    if (gguf_open(path, GGUF_OPEN_HEADER_ONLY, &f) != STRATA_OK) return tr; /* not remembered */
    gguf_str s;
    if (gguf_get_str(f, "tokenizer.chat_template", &s)) tr.family = strata_chat_family_detect(s.ptr, (size_t)s.len);
    if (gguf_get_str(f, "general.architecture", &s) && s.len < 200) {
        char key[256];
        snprintf(key, sizeof key, "%.*s.pooling_type", (int)s.len, s.ptr);
        tr.embedding_only = gguf_find_key(f, key) >= 0;
    }
    gguf_close(f);
    if (cacheable) {
        pthread_mutex_lock(&traits_cache_mu);
        const int i = traits_cache_next;
        traits_cache_next = (traits_cache_next + 1) % TRAITS_CACHE_SLOTS;
        snprintf(traits_cache[i].path, sizeof traits_cache[i].path, "%s", path);
        traits_cache[i].traits = tr;
        pthread_mutex_unlock(&traits_cache_mu);
    }
    return tr;
}

const char *srv_model_template(const strata_model_info *info, strata_chat_family *fam) {
    if (fam) *fam = STRATA_CHAT_UNKNOWN;
    if (info->modelfile && info->modelfile->template_text) return info->modelfile->template_text;
    const strata_chat_family f = srv_model_traits(info->model_path).family;
    if (fam) *fam = f;
    return strata_chat_family_template(f);
}

void srv_model_caps(const strata_model_info *info, const char *template_src, srv_caps *caps) {
    memset(caps, 0, sizeof *caps);
    const srv_gguf_traits tr = srv_model_traits(info->model_path);
    caps->embedding = tr.embedding_only;
    caps->completion = !tr.embedding_only;
    const char *src = template_src ? template_src : srv_model_template(info, NULL);
    strata_template *t = NULL;
    if (!src || strata_template_parse(src, strlen(src), &t) != STRATA_OK) return;
    caps->tools = strata_template_names(t, "Tools");
    caps->insert = strata_template_names(t, "Suffix");
    caps->thinking = strata_template_think_tags(t, caps->think_open, sizeof caps->think_open, caps->think_close,
                                                sizeof caps->think_close);
    strata_template_free(t);
}

void srv_caps_json(const srv_caps *caps, cJSON *arr) {
    if (caps->completion) cJSON_AddItemToArray(arr, cJSON_CreateString("completion"));
    if (caps->embedding) cJSON_AddItemToArray(arr, cJSON_CreateString("embedding"));
    if (caps->tools) cJSON_AddItemToArray(arr, cJSON_CreateString("tools"));
    if (caps->insert) cJSON_AddItemToArray(arr, cJSON_CreateString("insert"));
    if (caps->thinking) cJSON_AddItemToArray(arr, cJSON_CreateString("thinking"));
}
