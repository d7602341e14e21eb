/* Generation endpoints: /api/generate, /api/chat, /v1/chat/completions, /v1/completions.
 *
 * One job type serves all four: the request is checked and the prompt rendered on the
 * connection's thread (so that every mistake gets its 4xx before anything is loaded), then
 * the job takes its turn on the model (scheduler), generates, and gives the model back.
 * Streamed jobs run on their own thread and write NDJSON lines (Ollama) or server-sent
 * events (OpenAI); non-streamed jobs run on the connection's thread and answer once.
 *
 * Prompt: raw prompts are used as given. Otherwise the template is the request's
 * ("template", /api/generate only), else the Modelfile's TEMPLATE, else the built-in one for
 * the chat family detected from the GGUF's tokenizer.chat_template (template/template.h),
 * whose turn markers then become default stop sequences; a model with none renders
 * "{{ .Prompt }}" (the text as it is). The system prompt is the request's ("system", or
 * the chat's system messages), else the Modelfile's SYSTEM; a chat gets the Modelfile's
 * MESSAGEs before its own.
 *
 * "format": "json" and OpenAI's response_format {"type": "json_object"} constrain generation
 * to JSON (runtime/generate.h: every token keeps the output a valid JSON prefix, and
 * generation stops once the value is closed), with a JSON object at the top level, as
 * Ollama's JSON grammar has it. A JSON schema ("format": {...}, or response_format
 * {"type": "json_schema", "json_schema": {"schema": {...}}}) is not enforced: the output is
 * constrained to valid JSON only, an object when the schema says "type": "object" or has
 * "properties" (or names no schema), else any JSON value. */
#include <ctype.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/internal.h"
#include "template/template.h"

typedef enum { K_GENERATE, K_CHAT, K_OAI_CHAT, K_OAI_COMPLETION } gen_kind;

typedef struct {
    strata_server *srv;
    gen_kind kind;
    bool stream;
    bool include_usage;
    char *model_name; /* as the request wrote it */
    char *path, *digest, *family, *psize, *quant, *display;
    sched_request req;
    srv_options opt;
    int64_t keep_alive_ns;
    char *prompt;
    size_t prompt_len;
    int32_t *ctx_ids;
    int32_t n_ctx_ids;
    char id[48];
    int64_t created; /* Unix seconds */
    int64_t t_start;
    /* Results. */
    char *text;
    size_t text_len, text_cap;
    strata_status st;
    char err[1024];
    strata_gen_stats stats;
    int64_t load_ns, total_ns;
    int32_t *context_out;
    int32_t n_context_out;
    srv_stream *out; /* NULL when not streaming */
    /* Not streamed: the connection, polled while generating (a client that leaves cancels). */
    struct MHD_Connection *conn;
    int64_t next_poll_ns;
    sched_runner *runner;     /* while held */
    const char *cancel_why;   /* why emit refused to go on */
    /* Generated text may end inside a UTF-8 character: its first bytes wait here. */
    char carry[4];
    size_t n_carry;
    /* Thinking: what the request asked ("think", OpenAI's reasoning_effort), and, when the
     * model thinks, the splitter of its output into reasoning and answer. */
    bool think_set, think_on;
    char think_level[8];
    bool split_thinking;
    srv_think think;
    char *thinking;
    size_t thinking_len, thinking_cap;
    /* Tools: the request's (a copy: a stream outlives the body), the template's call prefix,
     * the answer held back while it may be a call, and the calls parsed from it. */
    cJSON *tools;
    char tool_prefix[64];
    bool tool_buffering;
    char *held;
    size_t held_len, held_cap;
    cJSON *tool_calls;
} gen_job;

static void job_free(void *p) {
    gen_job *j = p;
    if (!j) return;
    free(j->model_name);
    free(j->path);
    free(j->digest);
    free(j->family);
    free(j->psize);
    free(j->quant);
    free(j->display);
    srv_options_free(&j->opt);
    free(j->prompt);
    free(j->ctx_ids);
    free(j->text);
    free(j->context_out);
    free(j->thinking);
    cJSON_Delete(j->tools);
    free(j->held);
    cJSON_Delete(j->tool_calls);
    free(j);
}

static void now_text(char *buf, size_t cap) { sched_format_time(sched_unix_ns(), buf, cap); }

/* ---- Chunks --------------------------------------------------------------------------- */

static cJSON *ollama_object(const gen_job *j) {
    cJSON *o = cJSON_CreateObject();
    char t[64];
    now_text(t, sizeof t);
    cJSON_AddStringToObject(o, "model", j->model_name);
    cJSON_AddStringToObject(o, "created_at", t);
    return o;
}

/* The text of a chunk: the answer, and the reasoning when there is some (Ollama's
 * "thinking": beside "response", or in "message"). */
static void add_ollama_piece(cJSON *o, const gen_job *j, const char *text, size_t len, const char *thinking,
                             size_t tlen) {
    char *s = strndup(text, len);
    char *t = tlen ? strndup(thinking, tlen) : NULL;
    if (j->kind == K_GENERATE) {
        cJSON_AddStringToObject(o, "response", s ? s : "");
        if (t) cJSON_AddStringToObject(o, "thinking", t);
    } else {
        cJSON *m = cJSON_AddObjectToObject(o, "message");
        cJSON_AddStringToObject(m, "role", "assistant");
        cJSON_AddStringToObject(m, "content", s ? s : "");
        if (t) cJSON_AddStringToObject(m, "thinking", t);
    }
    free(s);
    free(t);
}

static void add_ollama_text(cJSON *o, const gen_job *j, const char *text, size_t len) {
    add_ollama_piece(o, j, text, len, NULL, 0);
}

/* Ollama's tool_calls: [{"id", "function": {"index", "name", "arguments": {...}}}]. */
static cJSON *ollama_tool_calls(const gen_job *j) {
    cJSON *a = cJSON_Duplicate(j->tool_calls, true);
    int i = 0;
    cJSON *c;
    cJSON_ArrayForEach(c, a) {
        char id[48];
        snprintf(id, sizeof id, "call_%s_%d", j->id + strcspn(j->id, "-") + 1, i++);
        cJSON_AddItemToObject(c, "id", cJSON_CreateString(id));
    }
    return a;
}

/* OpenAI's tool_calls: [{"id", "index", "type": "function", "function": {"name", "arguments": "<JSON text>"}}]. */
static cJSON *openai_tool_calls(const gen_job *j) {
    cJSON *a = cJSON_CreateArray();
    int i = 0;
    const cJSON *c;
    cJSON_ArrayForEach(c, j->tool_calls) {
        const cJSON *f = cJSON_GetObjectItemCaseSensitive(c, "function");
        cJSON *o = cJSON_CreateObject();
        char id[48];
        snprintf(id, sizeof id, "call_%s_%d", j->id + strcspn(j->id, "-") + 1, i);
        cJSON_AddStringToObject(o, "id", id);
        cJSON_AddNumberToObject(o, "index", i++);
        cJSON_AddStringToObject(o, "type", "function");
        cJSON *fo = cJSON_AddObjectToObject(o, "function");
        cJSON_AddStringToObject(fo, "name", cJSON_GetObjectItemCaseSensitive(f, "name")->valuestring);
        char *args = cJSON_PrintUnformatted(cJSON_GetObjectItemCaseSensitive(f, "arguments"));
        cJSON_AddStringToObject(fo, "arguments", args ? args : "{}");
        free(args);
        cJSON_AddItemToArray(a, o);
    }
    return a;
}

static cJSON *openai_object(const gen_job *j, bool chunk) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "id", j->id);
    const char *object = j->kind == K_OAI_CHAT ? (chunk ? "chat.completion.chunk" : "chat.completion") : "text_completion";
    cJSON_AddStringToObject(o, "object", object);
    cJSON_AddNumberToObject(o, "created", (double)j->created);
    cJSON_AddStringToObject(o, "model", j->model_name);
    cJSON_AddStringToObject(o, "system_fingerprint", "fp_strata");
    return o;
}

/* choices[0] with text (NULL for an empty delta) and finish_reason (NULL = null). */
static void add_openai_choice_r(cJSON *o, const gen_job *j, bool chunk, const char *text, size_t len,
                                const char *reasoning, size_t rlen, const char *finish) {
    cJSON *choices = cJSON_AddArrayToObject(o, "choices");
    cJSON *c = cJSON_CreateObject();
    cJSON_AddItemToArray(choices, c);
    cJSON_AddNumberToObject(c, "index", 0);
    char *s = text ? strndup(text, len) : NULL;
    if (j->kind == K_OAI_CHAT) {
        cJSON *m = cJSON_AddObjectToObject(c, chunk ? "delta" : "message");
        if (text || !chunk) {
            cJSON_AddStringToObject(m, "role", "assistant");
            cJSON_AddStringToObject(m, "content", s ? s : "");
        }
        if (rlen) { /* Ollama's OpenAI layer names the reasoning "reasoning" */
            char *r = strndup(reasoning, rlen);
            cJSON_AddStringToObject(m, "reasoning", r ? r : "");
            free(r);
        }
    } else {
        cJSON_AddStringToObject(c, "text", s ? s : "");
    }
    free(s);
    if (finish) cJSON_AddStringToObject(c, "finish_reason", finish);
    else cJSON_AddNullToObject(c, "finish_reason");
}

static void add_openai_choice(cJSON *o, const gen_job *j, bool chunk, const char *text, size_t len,
                              const char *finish) {
    add_openai_choice_r(o, j, chunk, text, len, NULL, 0, finish);
}

static void add_usage(cJSON *o, const gen_job *j) {
    cJSON *u = cJSON_AddObjectToObject(o, "usage");
    cJSON_AddNumberToObject(u, "prompt_tokens", j->stats.prompt_tokens);
    cJSON_AddNumberToObject(u, "completion_tokens", j->stats.gen_tokens);
    cJSON_AddNumberToObject(u, "total_tokens", j->stats.prompt_tokens + j->stats.gen_tokens);
}

static void add_stats(cJSON *o, const gen_job *j) {
    strata_json_add_i64(o, "total_duration", j->total_ns);
    strata_json_add_i64(o, "load_duration", j->load_ns);
    cJSON_AddNumberToObject(o, "prompt_eval_count", j->stats.prompt_tokens);
    strata_json_add_i64(o, "prompt_eval_duration", j->stats.prompt_ns);
    cJSON_AddNumberToObject(o, "eval_count", j->stats.gen_tokens);
    strata_json_add_i64(o, "eval_duration", j->stats.gen_ns);
}

static const char *finish_reason(const gen_job *j) {
    if (j->tool_calls) return "tool_calls";
    return j->stats.done_reason && strcmp(j->stats.done_reason, "length") == 0 ? "length" : "stop";
}

/* The final Ollama object (streamed: empty text; not streamed: the whole text). */
static cJSON *ollama_final(const gen_job *j, bool whole) {
    cJSON *o = ollama_object(j);
    add_ollama_piece(o, j, whole ? (j->text ? j->text : "") : "", whole ? j->text_len : 0, j->thinking,
                     whole ? j->thinking_len : 0);
    if (whole && j->tool_calls)
        cJSON_AddItemToObject(cJSON_GetObjectItemCaseSensitive(o, "message"), "tool_calls", ollama_tool_calls(j));
    cJSON_AddBoolToObject(o, "done", true);
    cJSON_AddStringToObject(o, "done_reason", j->stats.done_reason ? j->stats.done_reason : "stop");
    if (j->kind == K_GENERATE) {
        cJSON *ctx = cJSON_AddArrayToObject(o, "context");
        for (int32_t i = 0; i < j->n_context_out; i++) cJSON_AddItemToArray(ctx, cJSON_CreateNumber(j->context_out[i]));
    }
    add_stats(o, j);
    return o;
}

/* ---- Generation ---------------------------------------------------------------------- */

static bool text_append(gen_job *j, const char *s, size_t n) {
    if (j->text_len + n + 1 > j->text_cap) {
        size_t cap = j->text_cap ? j->text_cap : 1024;
        while (cap < j->text_len + n + 1) cap *= 2;
        char *nb = realloc(j->text, cap);
        if (!nb) return false;
        j->text = nb;
        j->text_cap = cap;
    }
    memcpy(j->text + j->text_len, s, n);
    j->text_len += n;
    j->text[j->text_len] = 0;
    return true;
}

static bool thinking_append(gen_job *j, const char *s, size_t n) {
    if (j->thinking_len + n + 1 > j->thinking_cap) {
        size_t cap = j->thinking_cap ? j->thinking_cap : 1024;
        while (cap < j->thinking_len + n + 1) cap *= 2;
        char *nb = realloc(j->thinking, cap);
        if (!nb) return false;
        j->thinking = nb;
        j->thinking_cap = cap;
    }
    memcpy(j->thinking + j->thinking_len, s, n);
    j->thinking_len += n;
    j->thinking[j->thinking_len] = 0;
    return true;
}

static bool job_piece(void *user, bool thinking, const char *text, size_t len);

/* The answer while it may still be a tool call: held back (not streamed) until it cannot be
 * one any more, then let go as text. */
static bool job_hold(gen_job *j, const char *text, size_t len) {
    if (j->held_len + len + 1 > j->held_cap) {
        size_t cap = j->held_cap ? j->held_cap : 256;
        while (cap < j->held_len + len + 1) cap *= 2;
        char *nb = realloc(j->held, cap);
        if (!nb) return false;
        j->held = nb;
        j->held_cap = cap;
    }
    memcpy(j->held + j->held_len, text, len);
    j->held_len += len;
    j->held[j->held_len] = 0;
    if (srv_tools_maybe(j->held, j->held_len, j->tool_prefix)) return true;
    j->tool_buffering = false;
    return job_piece(j, false, j->held, j->held_len);
}

/* At the end: the held answer is tool calls, or text after all. */
static bool job_tools_end(gen_job *j) {
    if (!j->tool_buffering) return true;
    j->tool_buffering = false;
    if (!j->held_len) return true;
    j->tool_calls = srv_tools_parse(j->held, j->held_len, j->tool_prefix, j->tools);
    if (!j->tool_calls) return job_piece(j, false, j->held, j->held_len);
    if (!j->out) return true;
    cJSON *o;
    if (j->kind == K_CHAT) {
        o = ollama_object(j);
        add_ollama_text(o, j, "", 0);
        cJSON_AddItemToObject(cJSON_GetObjectItemCaseSensitive(o, "message"), "tool_calls", ollama_tool_calls(j));
        cJSON_AddBoolToObject(o, "done", false);
        return srv_stream_json_line(j->out, o);
    }
    o = openai_object(j, true);
    add_openai_choice(o, j, true, "", 0, NULL);
    cJSON *d = cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(o, "choices"), 0), "delta");
    cJSON_AddItemToObject(d, "tool_calls", openai_tool_calls(j));
    return srv_stream_sse(j->out, o);
}

/* Writes a piece of the answer or of the reasoning to the client or the whole-text buffers. */
static bool job_piece(void *user, bool thinking, const char *text, size_t len) {
    gen_job *j = user;
    if (!thinking && j->tool_buffering) return job_hold(j, text, len);
    if (!j->out) {
        if (!(thinking ? thinking_append(j, text, len) : text_append(j, text, len))) return false;
    } else if (len) {
        const char *c = thinking ? "" : text, *t = thinking ? text : NULL;
        size_t cl = thinking ? 0 : len, tl = thinking ? len : 0;
        cJSON *o;
        if (j->kind == K_GENERATE || j->kind == K_CHAT) {
            o = ollama_object(j);
            add_ollama_piece(o, j, c, cl, t, tl);
            cJSON_AddBoolToObject(o, "done", false);
            if (!srv_stream_json_line(j->out, o)) return false;
        } else {
            o = openai_object(j, true);
            add_openai_choice_r(o, j, true, c, cl, t, tl, NULL);
            if (!srv_stream_sse(j->out, o)) return false;
        }
    }
    return true;
}

/* Writes text (well-formed UTF-8): through the reasoning splitter when the model thinks. */
static bool job_output(gen_job *j, const char *text, size_t len) {
    if (j->split_thinking) return srv_think_feed(&j->think, text, len, false, job_piece, j);
    return job_piece(j, false, text, len);
}

/* Why a generation must stop now (NULL: it may go on). A non-streamed request polls its
 * connection at most every 50 ms. */
static const char *job_cancelled(gen_job *j) {
    if (atomic_load(&j->srv->stopping)) return "server shutting down";
    if (j->runner && atomic_load(sched_runner_cancel_flag(j->runner))) return "model unloaded";
    if (j->out && atomic_load(srv_stream_cancel_flag(j->out))) return "client disconnected";
    if (j->conn) {
        int64_t now = strata_now_ns();
        if (now >= j->next_poll_ns) {
            j->next_poll_ns = now + 50000000;
            if (srv_conn_gone(j->conn)) return "client disconnected";
        }
    }
    return NULL;
}

/* The engine's emit: text in pieces that may split a character. Complete characters go out,
 * malformed bytes as U+FFFD, an incomplete tail waits in j->carry for the next piece. */
static bool job_emit(void *user, const char *text, size_t len) {
    gen_job *j = user;
    if ((j->cancel_why = job_cancelled(j)) != NULL) return false;
    if (!len) return true;
    char stackbuf[512];
    size_t n = j->n_carry + len;
    char *buf = n <= sizeof stackbuf ? stackbuf : malloc(n);
    if (!buf) return false;
    memcpy(buf, j->carry, j->n_carry);
    memcpy(buf + j->n_carry, text, len);
    size_t tail = srv_utf8_incomplete_tail(buf, n);
    size_t body = n - tail;
    memcpy(j->carry, buf + body, tail);
    j->n_carry = tail;
    bool ok = true;
    if (body) {
        if (srv_utf8_valid(buf, body)) {
            ok = job_output(j, buf, body);
        } else {
            size_t m = 0;
            char *clean = srv_utf8_sanitize(buf, body, &m);
            ok = clean && job_output(j, clean, m);
            free(clean);
        }
    }
    if (buf != stackbuf) free(buf);
    return ok;
}

/* At the end of a generation: a character left incomplete is U+FFFD. */
static void job_flush_carry(gen_job *j) {
    if (!j->n_carry) return;
    j->n_carry = 0;
    job_output(j, "\xEF\xBF\xBD", 3);
}

/* num_predict as Ollama bounds it, so that a model that never ends its text cannot run
 * forever: -2 fills the context (what is left after the prompt, as the engine keeps it),
 * any other negative value is 10 x num_ctx; the engine stops there with "length". */
static int32_t bounded_num_predict(int32_t num_predict, int32_t n_ctx, int32_t n_prompt, int32_t num_keep) {
    if (num_predict >= 0) return num_predict;
    if (num_predict == -2) {
        int32_t kept = n_prompt;
        if (n_prompt >= n_ctx) { /* truncated as strata_generate_ids does */
            int32_t keep = num_keep < 0 ? 0 : num_keep;
            if (keep > n_ctx / 2) keep = n_ctx / 2;
            kept = n_ctx - n_ctx / 4;
            if (kept <= keep) kept = keep + 1;
        }
        return n_ctx - kept > 1 ? n_ctx - kept : 1;
    }
    return n_ctx > INT32_MAX / 10 ? INT32_MAX : 10 * n_ctx;
}

/* Takes the model's turn, generates, gives the model back. Fills j's results. */
static void job_run(gen_job *j) {
    sched_runner *r = NULL;
    atomic_bool *cancel = j->out ? srv_stream_cancel_flag(j->out) : NULL;
    j->st = sched_acquire(j->srv->sched, &j->req, cancel, &r, &j->load_ns);
    j->runner = r;
    if (j->st != STRATA_OK) {
        snprintf(j->err, sizeof j->err, "%s", strata_last_error());
        j->total_ns = strata_now_ns() - j->t_start;
        return;
    }
    strata_engine *e = sched_runner_engine(r);
    int32_t n_ctx = sched_runner_n_ctx(r);
    bool add_special = j->n_ctx_ids == 0;
    int64_t n = strata_tokenize(strata_engine_vocab(e), j->prompt, j->prompt_len, add_special, true, NULL, 0);
    int32_t *ids = NULL;
    if (n >= 0 && n + j->n_ctx_ids < INT32_MAX) ids = malloc((size_t)(n + j->n_ctx_ids + 1) * sizeof *ids);
    int32_t cap = n_ctx > 0 ? n_ctx : 4096;
    int32_t *gen_ids = malloc((size_t)cap * sizeof *gen_ids);
    if (!ids || !gen_ids) {
        j->st = strata_fail(STRATA_ERR_NOMEM, "out of memory");
    } else {
        if (j->n_ctx_ids) memcpy(ids, j->ctx_ids, (size_t)j->n_ctx_ids * sizeof *ids);
        strata_tokenize(strata_engine_vocab(e), j->prompt, j->prompt_len, add_special, true, ids + j->n_ctx_ids, (size_t)n);
        int32_t n_prompt = (int32_t)n + j->n_ctx_ids;
        for (int32_t i = 0; i < j->n_ctx_ids; i++) {
            if (ids[i] < 0 || ids[i] >= strata_engine_n_vocab(e)) {
                j->st = strata_fail(STRATA_ERR_INVALID, "context holds token id %d, outside the vocabulary", ids[i]);
                break;
            }
        }
        if (j->st == STRATA_OK && n_prompt == 0) j->st = strata_fail(STRATA_ERR_INVALID, "the prompt has no tokens");
        j->opt.gen.num_predict = bounded_num_predict(j->opt.gen.num_predict, n_ctx, n_prompt, j->opt.gen.num_keep);
        if (j->st == STRATA_OK && (j->cancel_why = job_cancelled(j)) != NULL)
            j->st = strata_fail(STRATA_ERR_CANCELLED, "generation cancelled");
        if (j->st == STRATA_OK)
            j->st = strata_generate_ids(e, ids, n_prompt, &j->opt.gen, job_emit, j, &j->stats, gen_ids, cap);
        if (j->st == STRATA_OK) job_flush_carry(j);
        if (j->st == STRATA_OK && j->split_thinking) srv_think_feed(&j->think, "", 0, true, job_piece, j);
        if (j->st == STRATA_OK) job_tools_end(j);
        if (j->st == STRATA_OK && j->kind == K_GENERATE) {
            int32_t ng = j->stats.gen_tokens < cap ? j->stats.gen_tokens : cap;
            /* An end-of-generation token is not part of the conversation. */
            if (ng > 0 && strata_vocab_is_eog(strata_engine_vocab(e), gen_ids[ng - 1])) ng--;
            int32_t np = n_prompt <= cap ? n_prompt : cap;
            j->context_out = malloc((size_t)(np + ng + 1) * sizeof *j->context_out);
            if (j->context_out) {
                memcpy(j->context_out, ids + (n_prompt - np), (size_t)np * sizeof *ids);
                memcpy(j->context_out + np, gen_ids, (size_t)ng * sizeof *ids);
                j->n_context_out = np + ng;
            }
        }
        if (j->st != STRATA_OK) snprintf(j->err, sizeof j->err, "%s", strata_last_error());
    }
    free(ids);
    free(gen_ids);
    if (j->st == STRATA_ERR_CANCELLED) {
        const char *why = j->cancel_why ? j->cancel_why : "client disconnected";
        fprintf(stderr, "strata: generation cancelled for %s after %d tokens (%s)\n", j->display, j->stats.gen_tokens,
                why);
        snprintf(j->err, sizeof j->err, "generation cancelled: %s", why);
    }
    j->runner = NULL;
    sched_release(j->srv->sched, r, j->keep_alive_ns);
    j->total_ns = strata_now_ns() - j->t_start;
}

static void stream_job(void *p, srv_stream *st) {
    gen_job *j = p;
    j->out = st;
    job_run(j);
    if (j->st == STRATA_ERR_CANCELLED) return;
    if (j->kind == K_GENERATE || j->kind == K_CHAT) {
        if (j->st != STRATA_OK) {
            cJSON *o = cJSON_CreateObject();
            cJSON_AddStringToObject(o, "error", j->err);
            srv_stream_json_line(st, o);
            return;
        }
        srv_stream_json_line(st, ollama_final(j, false));
        return;
    }
    if (j->st != STRATA_OK) {
        cJSON *o = cJSON_CreateObject();
        cJSON *e = cJSON_AddObjectToObject(o, "error");
        cJSON_AddStringToObject(e, "message", j->err);
        cJSON_AddStringToObject(e, "type", "api_error");
        cJSON_AddNullToObject(e, "param");
        cJSON_AddNullToObject(e, "code");
        srv_stream_sse(st, o);
    } else {
        cJSON *o = openai_object(j, true);
        add_openai_choice(o, j, true, NULL, 0, finish_reason(j));
        srv_stream_sse(st, o);
        if (j->include_usage) {
            o = openai_object(j, true);
            cJSON_AddArrayToObject(o, "choices");
            add_usage(o, j);
            srv_stream_sse(st, o);
        }
    }
    srv_stream_write(st, "data: [DONE]\n\n", 14);
}

/* ---- Request parsing ------------------------------------------------------------------ */

static bool is_openai(gen_kind k) { return k == K_OAI_CHAT || k == K_OAI_COMPLETION; }

static srv_reply bad(gen_kind k, unsigned status, const char *msg) {
    return is_openai(k) ? srv_reply_openai_error(status, "%s", msg) : srv_reply_error(status, "%s", msg);
}

/* The text of a message's content: a string, or (OpenAI) an array of {type:"text",text}. */
static const char *content_text(const cJSON *content, char **owned) {
    *owned = NULL;
    if (cJSON_IsString(content)) return content->valuestring;
    if (!content || cJSON_IsNull(content)) return "";
    if (!cJSON_IsArray(content)) return NULL;
    size_t total = 1;
    for (const cJSON *p = content->child; p; p = p->next) {
        const cJSON *t = cJSON_GetObjectItemCaseSensitive(p, "text");
        if (cJSON_IsString(t)) total += strlen(t->valuestring);
    }
    char *buf = malloc(total);
    if (!buf) return NULL;
    buf[0] = 0;
    for (const cJSON *p = content->child; p; p = p->next) {
        const cJSON *t = cJSON_GetObjectItemCaseSensitive(p, "text");
        if (cJSON_IsString(t)) strcat(buf, t->valuestring);
    }
    *owned = buf;
    return buf;
}

/* Renders the prompt (not raw). messages/system as the template input wants them. */
static strata_status render_prompt(gen_job *j, const strata_model_info *info, const char *req_template,
                                   const char *system, const strata_chat_message *msgs, size_t n_msgs,
                                   const char *suffix, bool *used_builtin, strata_chat_family *fam) {
    const char *src = req_template && *req_template ? req_template : NULL;
    *used_builtin = false;
    *fam = STRATA_CHAT_UNKNOWN;
    if (!src) {
        src = srv_model_template(info, fam);
        *used_builtin = *fam != STRATA_CHAT_UNKNOWN;
    }
    strata_template *t = NULL;
    strata_status st = strata_template_parse(src, strlen(src), &t);
    if (st != STRATA_OK) return st;
    strata_template_input in = {.system = system,
                                .messages = msgs,
                                .n_messages = n_msgs,
                                .add_generation_prompt = true,
                                .think = j->think_on,
                                .is_think_set = j->think_set || j->think_on,
                                .think_level = j->think_on ? j->think_level : "",
                                .tools = j->tools,
                                .suffix = suffix};
    st = strata_template_render(t, &in, &j->prompt, &j->prompt_len);
    strata_template_free(t);
    return st;
}

static char *dupz(const char *s) { return strdup(s ? s : ""); }

/* Fills the job's model fields from the store. Returns 0 or an HTTP status (with *reply). */
static unsigned resolve_model(gen_job *j, const char *name, strata_model_info **out_info, srv_reply *reply) {
    strata_store *store = NULL;
    strata_status st = srv_store_open(j->srv, &store);
    if (st == STRATA_OK) st = strata_store_show(store, name, out_info);
    strata_store_close(store);
    if (st != STRATA_OK) {
        char msg[1200];
        if (st == STRATA_ERR_NOT_FOUND) snprintf(msg, sizeof msg, "model '%s' not found", name);
        else snprintf(msg, sizeof msg, "%s", strata_last_error());
        unsigned code = st == STRATA_ERR_NOT_FOUND ? 404 : (st == STRATA_ERR_INVALID ? 400 : 500);
        *reply = bad(j->kind, code, msg);
        return code;
    }
    strata_model_info *info = *out_info;
    j->path = dupz(info->model_path);
    j->digest = dupz(info->digest);
    j->family = dupz(info->family);
    j->psize = dupz(info->parameter_size);
    j->quant = dupz(info->quantization);
    j->display = dupz(info->name);
    if (!j->path || !j->digest || !j->family || !j->psize || !j->quant || !j->display) {
        *reply = bad(j->kind, 500, "out of memory");
        return 500;
    }
    j->req.name = j->display;
    j->req.model_path = j->path;
    j->req.digest = j->digest;
    j->req.family = j->family;
    j->req.parameter_size = j->psize;
    j->req.quantization = j->quant;
    return 0;
}

static srv_reply load_only_reply(gen_job *j, const char *done_reason) {
    cJSON *o = ollama_object(j);
    add_ollama_text(o, j, "", 0);
    cJSON_AddBoolToObject(o, "done", true);
    cJSON_AddStringToObject(o, "done_reason", done_reason);
    return srv_reply_json(200, o);
}

/* A JSON number as an int32 (clamped: a cast of an out-of-range double is undefined). */
static int32_t clamp_i32(double v) {
    if (!(v >= -2147483648.0)) return INT32_MIN;
    if (v > 2147483647.0) return INT32_MAX;
    return (int32_t)v;
}

/* OpenAI request fields -> options. */
/* The top level a JSON schema allows, as far as the constraint goes (the schema itself is
 * not enforced): an object when it says "type": "object" or lists "properties" (or there
 * is no schema object), else any value. */
static strata_json_top schema_top(const cJSON *schema) {
    if (!cJSON_IsObject(schema)) return STRATA_JSON_TOP_OBJECT;
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(schema, "type");
    if (cJSON_IsString(t) && strcmp(t->valuestring, "object") == 0) return STRATA_JSON_TOP_OBJECT;
    if (cJSON_IsObject(cJSON_GetObjectItemCaseSensitive(schema, "properties")) && !t) return STRATA_JSON_TOP_OBJECT;
    return STRATA_JSON_TOP_ANY;
}

/* A message's tool calls in the form the template reads ({"id", "function": {"index", "name",
 * "arguments": {...}}}), from Ollama's (arguments an object) or OpenAI's (arguments a JSON
 * string) form; NULL with msg set when one is malformed. The array is added to keep. */
static const cJSON *normalize_tool_calls(const cJSON *calls, cJSON *keep, char *msg, size_t cap, int k) {
    cJSON *out = cJSON_CreateArray();
    cJSON_AddItemToArray(keep, out);
    int i = 0;
    const cJSON *c;
    cJSON_ArrayForEach(c, calls) {
        const cJSON *f = cJSON_GetObjectItemCaseSensitive(c, "function");
        const cJSON *name = cJSON_GetObjectItemCaseSensitive(f, "name");
        const cJSON *args = cJSON_GetObjectItemCaseSensitive(f, "arguments");
        cJSON *a = cJSON_IsObject(args) ? cJSON_Duplicate(args, true)
                   : cJSON_IsString(args) ? cJSON_Parse(args->valuestring)
                   : !args || cJSON_IsNull(args) ? cJSON_CreateObject() : NULL;
        if (!cJSON_IsString(name) || !cJSON_IsObject(a)) {
            cJSON_Delete(a);
            snprintf(msg, cap, "messages[%d].tool_calls[%d]: needs function.name and function.arguments (an object)", k, i);
            return NULL;
        }
        cJSON *o = cJSON_CreateObject();
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(c, "id");
        if (cJSON_IsString(id)) cJSON_AddStringToObject(o, "id", id->valuestring);
        cJSON *fo = cJSON_AddObjectToObject(o, "function");
        cJSON_AddNumberToObject(fo, "index", i++);
        cJSON_AddStringToObject(fo, "name", name->valuestring);
        cJSON_AddItemToObject(fo, "arguments", a);
        cJSON_AddItemToArray(out, o);
    }
    return out;
}

/* Whether the request carries images: /api/generate "images", /api/chat messages[].images
 * (non-empty arrays), OpenAI content parts of type "image_url". */
static bool has_images(gen_kind kind, const cJSON *body) {
    if (kind == K_GENERATE) return cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(body, "images")) > 0;
    const cJSON *msgs = cJSON_GetObjectItemCaseSensitive(body, "messages");
    for (const cJSON *m = cJSON_IsArray(msgs) ? msgs->child : NULL; m; m = m->next) {
        if (kind == K_CHAT && cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(m, "images")) > 0) return true;
        const cJSON *content = cJSON_GetObjectItemCaseSensitive(m, "content");
        for (const cJSON *p = cJSON_IsArray(content) ? content->child : NULL; p; p = p->next) {
            const cJSON *t = cJSON_GetObjectItemCaseSensitive(p, "type");
            if (cJSON_IsString(t) && (strcmp(t->valuestring, "image_url") == 0 || strcmp(t->valuestring, "image") == 0))
                return true;
        }
    }
    return false;
}

/* "think": true, false, or a level ("low", "medium", "high"; Ollama also takes "max"). Writes
 * whether thinking is asked for into *on; false with a 400 reply for any other value. */
static bool parse_think(gen_job *j, const cJSON *think, bool *on, srv_reply *reply) {
    const gen_kind kind = j->kind;
    *on = false;
    if (!think || cJSON_IsNull(think)) return true;
    j->think_set = true;
    if (cJSON_IsBool(think)) {
        *on = cJSON_IsTrue(think);
        snprintf(j->think_level, sizeof j->think_level, "%s", *on ? "medium" : "");
        return true;
    }
    static const char *const levels[] = {"low", "medium", "high", "max"};
    if (cJSON_IsString(think))
        for (size_t i = 0; i < sizeof levels / sizeof levels[0]; i++)
            if (strcmp(think->valuestring, levels[i]) == 0) {
                snprintf(j->think_level, sizeof j->think_level, "%s", levels[i]);
                return *on = true;
            }
    char msg[256];
    if (cJSON_IsString(think))
        snprintf(msg, sizeof msg, "invalid think value: \"%.64s\" (must be \"high\", \"medium\", \"low\", true, or false)",
                 think->valuestring);
    else
        snprintf(msg, sizeof msg, "think must be a boolean or string (\"high\", \"medium\", \"low\", true, or false)");
    *reply = bad(kind, 400, msg);
    return false;
}

/* Refuses, as Ollama does, a request that needs what the model cannot do: returns true with
 * a 400 in *reply. Ollama's order and wording: thinking ('"NAME" does not support
 * thinking'), completion ('"NAME" does not support generate' / 'chat'), then the rest
 * ('FULLNAME does not support tools' / 'insert'); images on a model without vision, which
 * Ollama would pass to a runner that drops them, are refused here ('"NAME" does not support
 * images'). */
/* OpenAI's reasoning_effort (or reasoning.effort) as Ollama maps it to think. */
static bool parse_reasoning_effort(gen_job *j, const cJSON *body, bool *on, srv_reply *reply) {
    const cJSON *e = cJSON_GetObjectItemCaseSensitive(body, "reasoning_effort");
    const cJSON *r = cJSON_GetObjectItemCaseSensitive(body, "reasoning");
    if (!cJSON_IsString(e) && cJSON_IsObject(r)) e = cJSON_GetObjectItemCaseSensitive(r, "effort");
    *on = false;
    if (!cJSON_IsString(e) || !*e->valuestring) return true;
    static const struct {
        const char *effort, *level;
    } map[] = {{"none", ""},         {"minimal", "low"}, {"low", "low"},   {"medium", "medium"},
               {"high", "high"},     {"max", "max"},     {"xhigh", "max"}, {"ultra", "max"}};
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
        if (strcmp(e->valuestring, map[i].effort) == 0) {
            j->think_set = true;
            *on = *map[i].level != 0;
            snprintf(j->think_level, sizeof j->think_level, "%s", map[i].level);
            return true;
        }
    char msg[256];
    snprintf(msg, sizeof msg,
             "invalid reasoning value: \"%.64s\" (must be \"minimal\", \"low\", \"medium\", \"high\", \"xhigh\", "
             "\"ultra\", \"max\", or \"none\")",
             e->valuestring);
    *reply = bad(j->kind, 400, msg);
    return false;
}

static bool check_capabilities(gen_job *j, const cJSON *body, const strata_model_info *info, const char *name,
                               srv_caps *caps_out, srv_reply *reply) {
    srv_caps caps;
    srv_model_caps(info, NULL, &caps);
    *caps_out = caps;
    char msg[1200];
    bool think = false;
    if (is_openai(j->kind) ? !parse_reasoning_effort(j, body, &think, reply)
                           : !parse_think(j, cJSON_GetObjectItemCaseSensitive(body, "think"), &think, reply))
        return true;
    /* As Ollama: a model that thinks thinks unless told not to. */
    j->think_on = caps.thinking && (think || !j->think_set);
    if (caps.thinking && !j->think_set) snprintf(j->think_level, sizeof j->think_level, "medium");
    if (think && !caps.thinking) {
        snprintf(msg, sizeof msg, "\"%s\" does not support thinking", name);
    } else if (!caps.completion) {
        const bool chat = j->kind == K_CHAT || j->kind == K_OAI_CHAT;
        snprintf(msg, sizeof msg, "\"%s\" does not support %s", name, chat ? "chat" : "generate");
    } else if ((j->kind == K_CHAT || j->kind == K_OAI_CHAT) &&
               cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(body, "tools")) > 0 && !caps.tools) {
        snprintf(msg, sizeof msg, "%s does not support tools", info->name);
    } else if (j->kind == K_GENERATE && !caps.insert && cJSON_IsString(cJSON_GetObjectItemCaseSensitive(body, "suffix")) &&
               *cJSON_GetObjectItemCaseSensitive(body, "suffix")->valuestring) {
        snprintf(msg, sizeof msg, "%s does not support insert", info->name);
    } else if (has_images(j->kind, body)) {
        snprintf(msg, sizeof msg, "\"%s\" does not support images", name);
    } else {
        return false;
    }
    *reply = bad(j->kind, 400, msg);
    return true;
}

static strata_status apply_openai(gen_job *j, const cJSON *body) {
    const cJSON *v;
    if ((v = cJSON_GetObjectItemCaseSensitive(body, "max_tokens")) && cJSON_IsNumber(v))
        j->opt.gen.num_predict = clamp_i32(v->valuedouble);
    if ((v = cJSON_GetObjectItemCaseSensitive(body, "max_completion_tokens")) && cJSON_IsNumber(v))
        j->opt.gen.num_predict = clamp_i32(v->valuedouble);
    if ((v = cJSON_GetObjectItemCaseSensitive(body, "temperature")) && cJSON_IsNumber(v))
        j->opt.gen.sampler.temperature = (float)v->valuedouble;
    if ((v = cJSON_GetObjectItemCaseSensitive(body, "top_p")) && cJSON_IsNumber(v))
        j->opt.gen.sampler.top_p = (float)v->valuedouble;
    if ((v = cJSON_GetObjectItemCaseSensitive(body, "seed")) && cJSON_IsNumber(v))
        j->opt.gen.sampler.seed = fabs(v->valuedouble) < 9.2e18 ? (int64_t)v->valuedouble : -1;
    if ((v = cJSON_GetObjectItemCaseSensitive(body, "frequency_penalty")) && cJSON_IsNumber(v))
        j->opt.gen.sampler.frequency_penalty = (float)v->valuedouble;
    if ((v = cJSON_GetObjectItemCaseSensitive(body, "presence_penalty")) && cJSON_IsNumber(v))
        j->opt.gen.sampler.presence_penalty = (float)v->valuedouble;
    if ((v = cJSON_GetObjectItemCaseSensitive(body, "stop")) && !cJSON_IsNull(v)) {
        cJSON *wrap = cJSON_CreateObject();
        cJSON_AddItemReferenceToObject(wrap, "stop", (cJSON *)v);
        strata_status st = srv_options_apply_json(&j->opt, wrap);
        cJSON_Delete(wrap);
        if (st != STRATA_OK) return st;
    }
    if ((v = cJSON_GetObjectItemCaseSensitive(body, "response_format")) && cJSON_IsObject(v)) {
        const cJSON *t = cJSON_GetObjectItemCaseSensitive(v, "type");
        if (cJSON_IsString(t) && strcmp(t->valuestring, "json_object") == 0) {
            j->opt.gen.json = STRATA_JSON_TOP_OBJECT;
        } else if (cJSON_IsString(t) && strcmp(t->valuestring, "json_schema") == 0) {
            const cJSON *js = cJSON_GetObjectItemCaseSensitive(v, "json_schema");
            j->opt.gen.json = schema_top(cJSON_GetObjectItemCaseSensitive(js, "schema"));
        }
    }
    const cJSON *so = cJSON_GetObjectItemCaseSensitive(body, "stream_options");
    if (cJSON_IsObject(so) && cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(so, "include_usage")))
        j->include_usage = true;
    return STRATA_OK;
}

static srv_reply handle(const srv_request *rq, gen_kind kind) {
    srv_reply reply;
    cJSON *body = srv_parse_body(rq, &reply, is_openai(kind));
    if (!body) return reply;
    gen_job *j = calloc(1, sizeof *j);
    strata_model_info *info = NULL;
    strata_chat_message *msgs = NULL;
    char **owned = NULL;
    int n_owned = 0;
    cJSON *keep = cJSON_CreateArray(); /* normalized tool calls the messages point into */
    size_t n_msgs = 0;
    if (!j) {
        cJSON_Delete(body);
        return bad(kind, 500, "out of memory");
    }
    j->srv = rq->srv;
    j->kind = kind;
    j->t_start = strata_now_ns();
    j->created = sched_unix_ns() / 1000000000;
    srv_options_init(&j->opt);
    snprintf(j->id, sizeof j->id, "%s-%" PRIx64, kind == K_OAI_CHAT ? "chatcmpl" : "cmpl",
             (uint64_t)sched_unix_ns() ^ (uint64_t)(uintptr_t)j);

    /* Typed fields: a wrong type is a 400 (Ollama's typed decoding), never silently ignored. */
    static const srv_field_type common[] = {
        {"model", SRV_T_STRING}, {"name", SRV_T_STRING}, {"options", SRV_T_OBJECT}, {"stream", SRV_T_BOOL},
        {"keep_alive", SRV_T_STRING | SRV_T_NUMBER}, {"format", SRV_T_STRING | SRV_T_OBJECT},
        {"think", SRV_T_BOOL | SRV_T_STRING}};
    static const srv_field_type generate[] = {{"prompt", SRV_T_STRING}, {"suffix", SRV_T_STRING},
                                              {"system", SRV_T_STRING}, {"template", SRV_T_STRING},
                                              {"raw", SRV_T_BOOL},      {"images", SRV_T_ARRAY},
                                              {"context", SRV_T_ARRAY}};
    static const srv_field_type chat[] = {{"messages", SRV_T_ARRAY}, {"tools", SRV_T_ARRAY}};
    static const srv_field_type openai[] = {
        {"max_tokens", SRV_T_NUMBER},        {"max_completion_tokens", SRV_T_NUMBER},
        {"temperature", SRV_T_NUMBER},       {"top_p", SRV_T_NUMBER},
        {"seed", SRV_T_NUMBER},              {"frequency_penalty", SRV_T_NUMBER},
        {"presence_penalty", SRV_T_NUMBER},  {"stop", SRV_T_STRING | SRV_T_ARRAY},
        {"response_format", SRV_T_OBJECT},   {"stream_options", SRV_T_OBJECT},
        {"prompt", SRV_T_STRING},            {"messages", SRV_T_ARRAY},
        {"n", SRV_T_NUMBER},                 {"user", SRV_T_STRING},
        {"tools", SRV_T_ARRAY},              {"reasoning_effort", SRV_T_STRING},
        {"tool_choice", SRV_T_STRING | SRV_T_OBJECT},
        {"reasoning", SRV_T_OBJECT}};
    char type_msg[160];
    bool types_ok = is_openai(kind) ? srv_check_types(body, openai, sizeof openai / sizeof openai[0], type_msg, sizeof type_msg)
                                    : srv_check_types(body, common, sizeof common / sizeof common[0], type_msg, sizeof type_msg) &&
                                          (kind == K_GENERATE
                                               ? srv_check_types(body, generate, sizeof generate / sizeof generate[0],
                                                                 type_msg, sizeof type_msg)
                                               : srv_check_types(body, chat, sizeof chat / sizeof chat[0], type_msg,
                                                                 sizeof type_msg));
    if (types_ok && is_openai(kind))
        types_ok = srv_check_types(body, common, 2, type_msg, sizeof type_msg); /* model, name */
    if (!types_ok) {
        reply = bad(kind, 400, type_msg);
        goto out;
    }
    if (kind == K_CHAT) {
        const cJSON *msgs_in = cJSON_GetObjectItemCaseSensitive(body, "messages");
        int k = 0;
        for (const cJSON *m = cJSON_IsArray(msgs_in) ? msgs_in->child : NULL; m; m = m->next, k++) {
            const cJSON *images = cJSON_GetObjectItemCaseSensitive(m, "images");
            if (images && !cJSON_IsNull(images) && !cJSON_IsArray(images)) {
                snprintf(type_msg, sizeof type_msg, "messages[%d].images must be an array", k);
                reply = bad(kind, 400, type_msg);
                goto out;
            }
        }
    }

    const cJSON *model = cJSON_GetObjectItemCaseSensitive(body, "model");
    if (!cJSON_IsString(model) || !*model->valuestring) model = cJSON_GetObjectItemCaseSensitive(body, "name");
    if (!cJSON_IsString(model) || !*model->valuestring) {
        reply = bad(kind, 400, "model is required");
        goto out;
    }
    j->model_name = strdup(model->valuestring);
    if (!j->model_name || resolve_model(j, model->valuestring, &info, &reply)) {
        if (!j->model_name) reply = bad(kind, 500, "out of memory");
        goto out;
    }

    /* What the request needs of the model (Ollama's capability checks and wording). */
    srv_caps caps;
    if (check_capabilities(j, body, info, model->valuestring, &caps, &reply)) goto out;
    /* Tools reach the template; the answer is held back while it may be a call in the format
     * the template writes. */
    const cJSON *tools = kind == K_CHAT || kind == K_OAI_CHAT ? cJSON_GetObjectItemCaseSensitive(body, "tools") : NULL;
    if (cJSON_GetArraySize(tools) > 0) {
        int k = 0;
        for (const cJSON *t = tools->child; t; t = t->next, k++) {
            if (!cJSON_IsObject(t) || !cJSON_IsString(cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(t, "function"), "name"))) {
                char msg[96];
                snprintf(msg, sizeof msg, "tools[%d]: needs a function with a name", k);
                reply = bad(kind, 400, msg);
                goto out;
            }
        }
        j->tools = cJSON_Duplicate(tools, true);
        j->tool_buffering = srv_tools_prefix(srv_model_template(info, NULL), j->tool_prefix, sizeof j->tool_prefix);
    }

    /* Options: engine defaults < Modelfile PARAMETERs < request. */
    strata_status st = srv_options_apply_modelfile(&j->opt, info->modelfile);
    if (st == STRATA_OK) st = srv_options_apply_json(&j->opt, cJSON_GetObjectItemCaseSensitive(body, "options"));
    if (st == STRATA_OK && is_openai(kind)) st = apply_openai(j, body);
    if (st != STRATA_OK) {
        reply = bad(kind, 400, strata_last_error());
        goto out;
    }
    j->req.opts = j->opt.load;
    const cJSON *stream = cJSON_GetObjectItemCaseSensitive(body, "stream");
    if (stream && !cJSON_IsBool(stream) && !cJSON_IsNull(stream)) {
        reply = bad(kind, 400, "\"stream\" must be true or false");
        goto out;
    }
    j->stream = is_openai(kind) ? cJSON_IsTrue(stream) : !cJSON_IsFalse(stream);
    if (!sched_parse_keep_alive(cJSON_GetObjectItemCaseSensitive(body, "keep_alive"), &j->keep_alive_ns)) {
        reply = bad(kind, 400, "keep_alive: not a duration (e.g. \"5m\", 300, 0, -1)");
        goto out;
    }
    const cJSON *format = cJSON_GetObjectItemCaseSensitive(body, "format");
    if (format && !cJSON_IsNull(format)) {
        if (cJSON_IsString(format) && strcmp(format->valuestring, "json") == 0) j->opt.gen.json = STRATA_JSON_TOP_OBJECT;
        else if (cJSON_IsObject(format)) j->opt.gen.json = schema_top(format);
        else if (!(cJSON_IsString(format) && !*format->valuestring)) {
            reply = bad(kind, 400, "format: must be \"json\" or a JSON schema object");
            goto out;
        }
    }

    /* The prompt. */
    bool empty = false, builtin = false;
    strata_chat_family fam = STRATA_CHAT_UNKNOWN;
    const char *mf_system = info->modelfile ? info->modelfile->system : NULL;
    if (kind == K_GENERATE || kind == K_OAI_COMPLETION) {
        const cJSON *prompt = cJSON_GetObjectItemCaseSensitive(body, "prompt");
        if (prompt && !cJSON_IsString(prompt) && !cJSON_IsNull(prompt)) {
            reply = bad(kind, 400, "prompt must be a string");
            goto out;
        }
        const char *p = cJSON_IsString(prompt) ? prompt->valuestring : "";
        empty = !*p;
        const cJSON *ctx = cJSON_GetObjectItemCaseSensitive(body, "context");
        if (ctx && cJSON_IsArray(ctx) && cJSON_GetArraySize(ctx) > 0) {
            int n = cJSON_GetArraySize(ctx);
            j->ctx_ids = malloc((size_t)n * sizeof *j->ctx_ids);
            if (!j->ctx_ids) {
                reply = bad(kind, 500, "out of memory");
                goto out;
            }
            for (const cJSON *c = ctx->child; c; c = c->next) {
                if (!cJSON_IsNumber(c)) {
                    reply = bad(kind, 400, "context must be an array of token ids");
                    goto out;
                }
                j->ctx_ids[j->n_ctx_ids++] = clamp_i32(c->valuedouble);
            }
        } else if (ctx && !cJSON_IsArray(ctx) && !cJSON_IsNull(ctx)) {
            reply = bad(kind, 400, "context must be an array of token ids");
            goto out;
        }
        const cJSON *raw = cJSON_GetObjectItemCaseSensitive(body, "raw");
        if (!empty && cJSON_IsTrue(raw)) {
            j->prompt = strdup(p);
            j->prompt_len = strlen(p);
            if (!j->prompt) st = strata_fail(STRATA_ERR_NOMEM, "out of memory");
        } else if (!empty) {
            const cJSON *sys = cJSON_GetObjectItemCaseSensitive(body, "system");
            const cJSON *tmpl = cJSON_GetObjectItemCaseSensitive(body, "template");
            const char *system = cJSON_IsString(sys) && *sys->valuestring ? sys->valuestring : mf_system;
            strata_chat_message m = {.role = "user", .content = p};
            const cJSON *suffix = cJSON_GetObjectItemCaseSensitive(body, "suffix");
            st = render_prompt(j, info, cJSON_IsString(tmpl) ? tmpl->valuestring : NULL, system, &m, 1,
                               cJSON_IsString(suffix) ? suffix->valuestring : NULL, &builtin, &fam);
        }
    } else {
        const cJSON *messages = cJSON_GetObjectItemCaseSensitive(body, "messages");
        if (messages && !cJSON_IsArray(messages) && !cJSON_IsNull(messages)) {
            reply = bad(kind, 400, "messages must be an array");
            goto out;
        }
        int n_req = cJSON_GetArraySize(messages);
        size_t n_mf = info->modelfile ? info->modelfile->n_messages : 0;
        empty = n_req == 0;
        if (!empty) {
            msgs = calloc(n_mf + (size_t)n_req, sizeof *msgs);
            owned = calloc((size_t)n_req + 1, sizeof *owned);
            n_owned = n_req;
            if (!msgs || !owned) {
                reply = bad(kind, 500, "out of memory");
                goto out;
            }
            for (size_t i = 0; i < n_mf; i++) {
                msgs[n_msgs].role = info->modelfile->messages[i].role;
                msgs[n_msgs++].content = info->modelfile->messages[i].content;
            }
            int k = 0;
            for (const cJSON *m = messages->child; m; m = m->next, k++) {
                const cJSON *role = cJSON_GetObjectItemCaseSensitive(m, "role");
                const char *content = cJSON_IsObject(m)
                                          ? content_text(cJSON_GetObjectItemCaseSensitive(m, "content"), &owned[k])
                                          : NULL;
                if (!cJSON_IsString(role) || !content) {
                    char msg[128];
                    snprintf(msg, sizeof msg, "messages[%d]: needs a \"role\" and a text \"content\"", k);
                    reply = bad(kind, 400, msg);
                    goto out;
                }
                const cJSON *th = cJSON_GetObjectItemCaseSensitive(m, is_openai(kind) ? "reasoning" : "thinking");
                if (th && !cJSON_IsString(th) && !cJSON_IsNull(th)) {
                    char msg[128];
                    snprintf(msg, sizeof msg, "messages[%d].%s must be a string", k, is_openai(kind) ? "reasoning" : "thinking");
                    reply = bad(kind, 400, msg);
                    goto out;
                }
                const cJSON *tc = cJSON_GetObjectItemCaseSensitive(m, "tool_calls");
                if (tc && !cJSON_IsArray(tc) && !cJSON_IsNull(tc)) {
                    char msg[128];
                    snprintf(msg, sizeof msg, "messages[%d].tool_calls must be an array", k);
                    reply = bad(kind, 400, msg);
                    goto out;
                }
                if (cJSON_GetArraySize(tc) > 0) {
                    char msg[160];
                    msgs[n_msgs].tool_calls = normalize_tool_calls(tc, keep, msg, sizeof msg, k);
                    if (!msgs[n_msgs].tool_calls) {
                        reply = bad(kind, 400, msg);
                        goto out;
                    }
                }
                const cJSON *tcid = cJSON_GetObjectItemCaseSensitive(m, "tool_call_id");
                const cJSON *tname = cJSON_GetObjectItemCaseSensitive(m, is_openai(kind) ? "name" : "tool_name");
                msgs[n_msgs].tool_call_id = cJSON_IsString(tcid) ? tcid->valuestring : NULL;
                msgs[n_msgs].tool_name = cJSON_IsString(tname) ? tname->valuestring : NULL;
                msgs[n_msgs].role = role->valuestring;
                msgs[n_msgs].thinking = cJSON_IsString(th) ? th->valuestring : NULL;
                msgs[n_msgs++].content = content;
            }
            st = render_prompt(j, info, NULL, mf_system, msgs, n_msgs, NULL, &builtin, &fam);
        }
    }
    if (st != STRATA_OK) {
        reply = bad(kind, srv_status_http(st), strata_last_error());
        goto out;
    }
    /* The reasoning is split from the answer with the template's tags; a prompt that ends with
     * the opening tag has opened the reasoning already. */
    if (j->think_on && caps.thinking) {
        size_t pl = j->prompt_len, ol = strlen(caps.think_open);
        while (pl && isspace((unsigned char)j->prompt[pl - 1])) pl--;
        const bool started = j->prompt && pl >= ol && memcmp(j->prompt + pl - ol, caps.think_open, ol) == 0;
        srv_think_init(&j->think, caps.think_open, caps.think_close, started);
        j->split_thinking = true;
    }
    if (builtin && j->opt.gen.n_stop == 0) {
        for (const char *const *s = strata_chat_family_stops(fam); s && *s; s++) srv_options_add_stop(&j->opt, *s);
    }

    if (empty) {
        if (is_openai(kind)) {
            reply = bad(kind, 400, kind == K_OAI_CHAT ? "messages must not be empty" : "prompt must not be empty");
            goto out;
        }
        /* Ollama: an empty prompt loads the model (or, with keep_alive 0, unloads it). */
        if (j->keep_alive_ns == 0) {
            /* `strata stop`: a generation in progress on the model is cancelled, and the answer
             * comes once the model is really gone (bounded: 30 s). */
            if (sched_unload(rq->srv->sched, j->display) > 0 &&
                !sched_wait_unloaded(rq->srv->sched, j->display, 30LL * 1000000000LL))
                fprintf(stderr, "strata: %s is still busy; it unloads when its request ends\n", j->display);
            reply = load_only_reply(j, "unload");
            goto out;
        }
        sched_runner *r = NULL;
        int64_t load_ns = 0;
        st = sched_acquire(rq->srv->sched, &j->req, NULL, &r, &load_ns);
        if (st != STRATA_OK) {
            reply = bad(kind, srv_status_http(st), strata_last_error());
            goto out;
        }
        sched_release(rq->srv->sched, r, j->keep_alive_ns);
        reply = load_only_reply(j, "load");
        goto out;
    }

    if (j->stream) {
        const char *ct = is_openai(kind) ? "text/event-stream" : "application/x-ndjson";
        reply = srv_reply_stream(rq->srv, rq->conn, ct, stream_job, j, job_free);
        j = NULL; /* owned by the stream now */
        goto out;
    }
    j->conn = rq->conn; /* polled while generating: a client that leaves cancels */
    job_run(j);
    if (j->st != STRATA_OK) {
        reply = bad(kind, srv_status_http(j->st), j->err);
        goto out;
    }
    if (!is_openai(kind)) {
        reply = srv_reply_json(200, ollama_final(j, true));
    } else {
        cJSON *o = openai_object(j, false);
        add_openai_choice_r(o, j, false, j->text ? j->text : "", j->text_len, j->thinking, j->thinking_len,
                            finish_reason(j));
        if (j->tool_calls)
            cJSON_AddItemToObject(
                cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(o, "choices"), 0), "message"),
                "tool_calls", openai_tool_calls(j));
        add_usage(o, j);
        reply = srv_reply_json(200, o);
    }
out:
    if (owned) {
        for (int i = 0; i < n_owned; i++) free(owned[i]);
        free(owned);
    }
    free(msgs);
    cJSON_Delete(keep);
    strata_model_info_free(info);
    cJSON_Delete(body);
    job_free(j);
    return reply;
}

srv_reply api_generate(const srv_request *rq) { return handle(rq, K_GENERATE); }
srv_reply api_chat(const srv_request *rq) { return handle(rq, K_CHAT); }
srv_reply api_openai_chat(const srv_request *rq) { return handle(rq, K_OAI_CHAT); }
srv_reply api_openai_completions(const srv_request *rq) { return handle(rq, K_OAI_COMPLETION); }
