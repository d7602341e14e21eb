/* Fuzz target: chat templates. No seeds needed (make_seeds.c writes the built-in
 * templates and a few feature samples as a head start).
 * Input: byte 0 picks the conversation and flags, the rest is the template text.
 *   bits 0-2: conversation (see convs below); bit 3: add_generation_prompt;
 *   bit 4: pass a system prompt argument.
 * Checked: parsing and rendering never crash, hang or run away (both are bounded);
 * a failure always leaves a message; the Jinja family detector accepts any text. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "template/template.h"

static const strata_chat_message conv_a[] = {{.role = "system", .content = "S"}, {.role = "user", .content = "U1"}, {.role = "assistant", .content = "A1"}, {.role = "user", .content = "U2"}};
static const strata_chat_message conv_b[] = {{.role = "user", .content = "hi"}};
static const strata_chat_message conv_c[] = {{.role = "user", .content = "q"}, {.role = "assistant", .content = "partial"}};
static const strata_chat_message conv_d[] = {{.role = "system", .content = "a"}, {.role = "system", .content = "b"}, {.role = "user", .content = ""}, {.role = "tool", .content = "t"}, {.role = "user", .content = "x"}};
static const strata_chat_message conv_e[] = {{.role = "assistant", .content = "only"}, {.role = "user", .content = "{{ .Prompt }}"}};
static const struct {
    const strata_chat_message *m;
    size_t n;
} convs[8] = {{conv_a, 4}, {conv_b, 1}, {conv_c, 2}, {conv_d, 5}, {conv_e, 2}, {NULL, 0}, {conv_a, 2}, {conv_d, 3}};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    uint8_t mode = data[0];
    const char *text = (const char *)data + 1;
    size_t len = size - 1;
    (void)strata_chat_family_detect(text, len);
    strata_template *t = NULL;
    if (strata_template_parse(text, len, &t) != STRATA_OK) {
        if (t || !*strata_last_error()) abort();
        return 0;
    }
    strata_template_input in = {.system = (mode & 16) ? "sys" : NULL, .messages = convs[mode & 7].m, .n_messages = convs[mode & 7].n, .add_generation_prompt = (mode & 8) != 0};
    char *out = NULL;
    size_t out_len = 0;
    strata_status st = strata_template_render(t, &in, &out, &out_len);
    if (st == STRATA_OK) {
        if (!out || strlen(out) > out_len) abort(); /* NUL-terminated; content may hold NULs */
        free(out);
    } else if (out || !*strata_last_error()) {
        abort();
    }
    strata_template_free(t);
    return 0;
}
