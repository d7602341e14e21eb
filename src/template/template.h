/* Chat templates: the subset of Go's text/template language that Ollama model templates
 * use, and built-in templates for the common chat formats.
 *
 * Language (as Go defines it): text and {{ actions }}; {{- and -}} trim the white space
 * (space, tab, CR, LF) before/after an action; comments ({{ then slash-star ... star-slash }}); pipelines of commands
 * joined by '|', each command's result passed as the last argument of the next;
 * operands: . (dot), .Field chains, $ (the data root), $var and $var.Field, "strings"
 * with Go escapes, `raw strings`, 'c' characters, integers, floats, true, false, nil,
 * (parenthesized pipelines) with optional .Field chains; $x := pipeline and $x = pipeline;
 * {{ if }} / {{ else if }} / {{ else }} / {{ end }}, {{ with }} (with else / else with),
 * {{ range }} over lists, maps (sorted keys) and integers, with $i, $v := and else,
 * {{ break }} and {{ continue }}. Functions: and, or (short-circuit, returning an
 * operand), not, eq (first operand against each other), ne, lt, le, gt, ge, len, index,
 * slice, print, println, printf (verbs %s %v %d %q %t %f %g %x %c %%), and json (Ollama's
 * addition: JSON of a value, HTML-escaped as Go's encoder does). define, template, block
 * and the remaining Go functions are refused with a parse error naming them.
 *
 * JSON data (.Tools, .ToolCalls) is read as Ollama's structs are: .Function.Name finds the
 * JSON key "function" then "name" (a field whose key is absent is also looked up with its first
 * letter in lower case), and json prints it back with its JSON keys.
 *
 * Differences from Go, on purpose: a field that does not exist (or of nil) is nil rather
 * than an error, nil prints as "" (Go prints "<no value>"), and len of nil is 0 -- data a
 * template asks for but we do not provide (Tools, Images, ToolCalls, ...) reads as empty.
 *
 * Data (what Ollama passes): .System (all system messages joined by blank lines),
 * .Think, .ThinkLevel and .IsThinkSet (see strata_template_input), .Tools,
 * .Messages (every message, system ones included, each with .Role, .Content, .Thinking, .ToolCalls, .ToolCallID and .ToolName;
 * consecutive messages of one role merged with a blank line, as current Ollama does),
 * .Prompt and .Response; .Tools and anything else is nil. A template that names
 * Messages anywhere is rendered once with the whole conversation; any other template is
 * rendered once per turn with .System/.Prompt/.Response (Ollama's legacy mode), and a
 * template naming neither Messages nor Response gets {{ .Response }} appended.
 *
 * Errors: parse and execution errors are STRATA_ERR_FORMAT with "template:LINE:COL: ..."
 * in strata_last_error(). Execution is bounded (steps and output size), so no template
 * can loop forever or exhaust memory.
 *
 * Ownership: a strata_template owns its parse tree and a copy of its source text; it is
 * immutable after parsing and may be rendered from several threads at once. */
#ifndef STRATA_TEMPLATE_TEMPLATE_H
#define STRATA_TEMPLATE_TEMPLATE_H

#include <stdbool.h>
#include <stddef.h>

#include "core/status.h"

struct cJSON;

typedef struct strata_template strata_template;

strata_status strata_template_parse(const char *text, size_t len, strata_template **out);
void strata_template_free(strata_template *t);
/* The source text (NUL-terminated). */
const char *strata_template_source(const strata_template *t);
/* True if the template names Messages (rendered once with the whole conversation). */
bool strata_template_uses_messages(const strata_template *t);
/* True if the template writes the field (.Name or $var.Name anywhere, compared without case,
 * as Ollama's Template.Vars() lists them): "Tools" and "Suffix" say what the template can
 * render, and so the model's capabilities (tools, insert). */
bool strata_template_names(const strata_template *t, const char *field);
/* The tags around a reasoning trace, inferred as Ollama does (thinking.InferTags): the last
 * .Thinking written inside a range over .Messages; its list's first and last text, trimmed
 * of white space, are the opening and closing tags ("<think>", "</think>"). False when the
 * template has no such pair (the model has no "thinking" capability). */
bool strata_template_think_tags(const strata_template *t, char *open, size_t open_cap, char *close, size_t close_cap);

typedef struct {
    const char *role; /* "system", "user", "assistant" (others are passed through) */
    const char *content;
    const char *thinking; /* the reasoning of an assistant message (.Thinking); NULL for none */
    /* Ollama's tool fields: .ToolCalls (a JSON array of {"id", "function": {"index", "name",
     * "arguments": {...}}}), .ToolCallID and .ToolName (a tool result). NULL for none. A
     * message with tool calls, or of role "tool", is never merged with its neighbour. */
    const struct cJSON *tool_calls;
    const char *tool_call_id, *tool_name;
} strata_chat_message;

typedef struct {
    /* The model's or request's system prompt; prepended as a system message when the
     * messages hold none (as Ollama's chat does). NULL or "" for none. */
    const char *system;
    const strata_chat_message *messages;
    size_t n_messages;
    /* true (what generation wants): the text ends where the model's reply begins. For a
     * legacy template the last turn is cut right after {{ .Response }} (so a trailing
     * assistant message is continued, not closed). Messages templates end as written
     * (they open the assistant turn themselves). false: the last legacy turn is rendered
     * whole, closing the conversation; Messages templates are unaffected. */
    bool add_generation_prompt;
    /* Ollama's thinking data: .Think (thinking asked for), .ThinkLevel ("low", "medium",
     * "high"; "medium" for a plain true; "" when off) and .IsThinkSet (the request said). */
    bool think, is_think_set;
    const char *think_level; /* NULL = "" */
    /* .Tools: the request's tools (a JSON array of {"type", "function": {"name",
     * "description", "parameters"}}); NULL for none. */
    const struct cJSON *tools;
    /* Fill-in-the-middle (/api/generate "suffix"): when not empty, the template is rendered
     * once, as Ollama does, with .Prompt (the last user message), .Suffix and .System only
     * (no .Messages). */
    const char *suffix;
} strata_template_input;

/* Renders the template. *out is malloc'd, NUL-terminated (caller frees); *out_len (if
 * not NULL) gets its length. */
strata_status strata_template_render(const strata_template *t, const strata_template_input *in, char **out,
                                     size_t *out_len);

/* ---- Built-in chat formats ------------------------------------------------------------- */

/* Enum values are stable (append only). */
typedef enum {
    STRATA_CHAT_UNKNOWN = 0, /* renders "{{ .Prompt }}": the prompts and replies as they are */
    STRATA_CHAT_LLAMA3,
    STRATA_CHAT_LLAMA2,
    STRATA_CHAT_CHATML, /* Qwen, many fine-tunes */
    STRATA_CHAT_MISTRAL,
    STRATA_CHAT_PHI3,
    STRATA_CHAT_GEMMA,
    STRATA_CHAT_COUNT
} strata_chat_family;

/* The family of a Jinja chat template (a GGUF's tokenizer.chat_template), recognised by
 * the special tokens it writes; STRATA_CHAT_UNKNOWN when none matches. */
strata_chat_family strata_chat_family_detect(const char *jinja, size_t len);
/* "llama3", "llama2", "chatml", "mistral", "phi3", "gemma", "unknown". */
const char *strata_chat_family_name(strata_chat_family f);
/* Looks a family up by its name; false if there is none. */
bool strata_chat_family_from_name(const char *name, strata_chat_family *out);
/* The built-in template text for a family (static). BOS is left to the tokenizer. */
const char *strata_chat_family_template(strata_chat_family f);
/* The family's turn markers, to use as stop strings (static, NULL-terminated list). */
const char *const *strata_chat_family_stops(strata_chat_family f);

#endif
