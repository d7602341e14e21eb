/* Built-in chat templates and the detector that maps a GGUF's Jinja chat template to one.
 *
 * Each template is written from the format's documented token layout (sources named per
 * family). All are Messages templates: system messages are taken from .System or the
 * message list, a trailing assistant message is left open (so generation continues it),
 * and otherwise the assistant turn is opened at the end. The BOS token is not written:
 * the tokenizer adds it (tokenizer.ggml.add_bos_token), as Ollama's templates assume. */
#include <string.h>

#include "template/template.h"

/* Meta Llama 3 / 3.x: <|start_header_id|>ROLE<|end_header_id|>\n\nCONTENT<|eot_id|>,
 * the system turn first, and "<|start_header_id|>assistant<|end_header_id|>\n\n" to
 * prompt a reply (Meta's model card prompt format). */
static const char llama3_tmpl[] =
    "{{- if .System }}<|start_header_id|>system<|end_header_id|>\n"
    "\n"
    "{{ .System }}<|eot_id|>\n"
    "{{- end }}\n"
    "{{- range $i, $m := .Messages }}\n"
    "{{- $last := eq (len (slice $.Messages $i)) 1 }}\n"
    "{{- if ne .Role \"system\" }}<|start_header_id|>{{ .Role }}<|end_header_id|>\n"
    "\n"
    "{{ .Content }}\n"
    "{{- if or (ne .Role \"assistant\") (not $last) }}<|eot_id|>{{ end }}\n"
    "{{- end }}\n"
    "{{- if and $last (ne .Role \"assistant\") }}<|start_header_id|>assistant<|end_header_id|>\n"
    "\n"
    "{{ end }}\n"
    "{{- end }}";

/* Llama 2 chat (Meta's reference chat_completion): each exchange is
 * "<s>[INST] USER [/INST] ASSISTANT </s>", the system prompt wrapped in
 * "<<SYS>>\n...\n<</SYS>>\n\n" at the start of the first user message. The first <s> is
 * the tokenizer's BOS. */
static const char llama2_tmpl[] =
    "{{- $first := true }}\n"
    "{{- range $i, $m := .Messages }}\n"
    "{{- $last := eq (len (slice $.Messages $i)) 1 }}\n"
    "{{- if eq .Role \"user\" }}{{ if not $first }}<s>{{ end }}[INST] {{ if and $first $.System }}<<SYS>>\n"
    "{{ $.System }}\n"
    "<</SYS>>\n"
    "\n"
    "{{ end }}{{ $first = false }}{{ .Content }} [/INST]\n"
    "{{- else if eq .Role \"assistant\" }} {{ .Content }}{{ if not $last }} </s>{{ end }}\n"
    "{{- end }}\n"
    "{{- end }}";

/* ChatML (Qwen and many fine-tunes): "<|im_start|>ROLE\nCONTENT<|im_end|>\n" per
 * message, "<|im_start|>assistant\n" to prompt a reply. */
static const char chatml_tmpl[] =
    "{{- range $i, $m := .Messages }}\n"
    "{{- $last := eq (len (slice $.Messages $i)) 1 -}}\n"
    "<|im_start|>{{ .Role }}\n"
    "{{ .Content }}\n"
    "{{- if or (ne .Role \"assistant\") (not $last) }}<|im_end|>\n"
    "{{ end }}\n"
    "{{- if and $last (ne .Role \"assistant\") }}<|im_start|>assistant\n"
    "{{ end }}\n"
    "{{- end }}";

/* Mistral instruct (the v3 tokenizer's chat format): "[INST] USER[/INST] ASSISTANT</s>",
 * the system prompt placed before the last user message, separated by a blank line. */
static const char mistral_tmpl[] =
    "{{- $lastUser := -1 }}\n"
    "{{- range $i, $m := .Messages }}{{ if eq .Role \"user\" }}{{ $lastUser = $i }}{{ end }}{{ end }}\n"
    "{{- range $i, $m := .Messages }}\n"
    "{{- $last := eq (len (slice $.Messages $i)) 1 }}\n"
    "{{- if eq .Role \"user\" }}[INST] {{ if and $.System (eq $i $lastUser) }}{{ $.System }}\n"
    "\n"
    "{{ end }}{{ .Content }}[/INST]\n"
    "{{- else if eq .Role \"assistant\" }} {{ .Content }}{{ if not $last }}</s>{{ end }}\n"
    "{{- end }}\n"
    "{{- end }}";

/* Phi-3 / Phi-3.5: "<|ROLE|>\nCONTENT<|end|>\n" per message, "<|assistant|>\n" to prompt
 * a reply (Microsoft's model card chat format). */
static const char phi3_tmpl[] =
    "{{- range $i, $m := .Messages }}\n"
    "{{- $last := eq (len (slice $.Messages $i)) 1 -}}\n"
    "<|{{ .Role }}|>\n"
    "{{ .Content }}\n"
    "{{- if or (ne .Role \"assistant\") (not $last) }}<|end|>\n"
    "{{ end }}\n"
    "{{- if and $last (ne .Role \"assistant\") }}<|assistant|>\n"
    "{{ end }}\n"
    "{{- end }}";

/* Gemma (Google's formatting guide): "<start_of_turn>user\nCONTENT<end_of_turn>\n" and
 * "<start_of_turn>model\nCONTENT<end_of_turn>\n"; there is no system role: the system
 * prompt opens the first user turn, followed by a blank line (as Gemma 3's template does). */
static const char gemma_tmpl[] =
    "{{- $first := true }}\n"
    "{{- range $i, $m := .Messages }}\n"
    "{{- $last := eq (len (slice $.Messages $i)) 1 }}\n"
    "{{- if eq .Role \"user\" }}<start_of_turn>user\n"
    "{{ if $first }}{{ if $.System }}{{ $.System }}\n"
    "\n"
    "{{ end }}{{ $first = false }}{{ end }}{{ .Content }}<end_of_turn>\n"
    "{{ else if eq .Role \"assistant\" }}<start_of_turn>model\n"
    "{{ .Content }}{{ if not $last }}<end_of_turn>\n"
    "{{ end }}\n"
    "{{- end }}\n"
    "{{- if and $last (ne .Role \"assistant\") }}<start_of_turn>model\n"
    "{{ end }}\n"
    "{{- end }}";

static const char *const llama3_stops[] = {"<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>", NULL};
static const char *const inst_stops[] = {"[INST]", "[/INST]", NULL};
static const char *const chatml_stops[] = {"<|im_start|>", "<|im_end|>", NULL};
static const char *const phi3_stops[] = {"<|end|>", "<|user|>", "<|assistant|>", NULL};
static const char *const gemma_stops[] = {"<start_of_turn>", "<end_of_turn>", NULL};
static const char *const no_stops[] = {NULL};

static const struct {
    const char *name;
    const char *tmpl;
    const char *const *stops;
} families[STRATA_CHAT_COUNT] = {
    [STRATA_CHAT_UNKNOWN] = {"unknown", "{{ .Prompt }}", no_stops},
    [STRATA_CHAT_LLAMA3] = {"llama3", llama3_tmpl, llama3_stops},
    [STRATA_CHAT_LLAMA2] = {"llama2", llama2_tmpl, inst_stops},
    [STRATA_CHAT_CHATML] = {"chatml", chatml_tmpl, chatml_stops},
    [STRATA_CHAT_MISTRAL] = {"mistral", mistral_tmpl, inst_stops},
    [STRATA_CHAT_PHI3] = {"phi3", phi3_tmpl, phi3_stops},
    [STRATA_CHAT_GEMMA] = {"gemma", gemma_tmpl, gemma_stops},
};

static bool contains(const char *hay, size_t n, const char *needle) {
    size_t m = strlen(needle);
    if (m > n) return false;
    for (size_t i = 0; i + m <= n; i++)
        if (hay[i] == needle[0] && memcmp(hay + i, needle, m) == 0) return true;
    return false;
}

strata_chat_family strata_chat_family_detect(const char *jinja, size_t len) {
    if (!jinja) return STRATA_CHAT_UNKNOWN;
    /* Most specific markers first: several formats mention [INST] or <|user|> in passing. */
    if (contains(jinja, len, "<|start_header_id|>")) return STRATA_CHAT_LLAMA3;
    if (contains(jinja, len, "<|im_start|>")) return STRATA_CHAT_CHATML;
    if (contains(jinja, len, "<start_of_turn>")) return STRATA_CHAT_GEMMA;
    if (contains(jinja, len, "<|user|>") && contains(jinja, len, "<|end|>")) return STRATA_CHAT_PHI3;
    if (contains(jinja, len, "[INST]")) return contains(jinja, len, "<<SYS>>") ? STRATA_CHAT_LLAMA2 : STRATA_CHAT_MISTRAL;
    return STRATA_CHAT_UNKNOWN;
}

const char *strata_chat_family_name(strata_chat_family f) {
    return (unsigned)f < STRATA_CHAT_COUNT ? families[f].name : "unknown";
}

bool strata_chat_family_from_name(const char *name, strata_chat_family *out) {
    for (int f = 0; f < STRATA_CHAT_COUNT; f++)
        if (name && strcmp(families[f].name, name) == 0) {
            *out = (strata_chat_family)f;
            return true;
        }
    return false;
}

const char *strata_chat_family_template(strata_chat_family f) {
    return families[(unsigned)f < STRATA_CHAT_COUNT ? f : STRATA_CHAT_UNKNOWN].tmpl;
}

const char *const *strata_chat_family_stops(strata_chat_family f) {
    return families[(unsigned)f < STRATA_CHAT_COUNT ? f : STRATA_CHAT_UNKNOWN].stops;
}
