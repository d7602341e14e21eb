/* The splitter of a model's reasoning from its answer (server/think.c) on real output shapes,
 * fed whole and one byte at a time (a tag split across tokens must still be found). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "server/internal.h"

typedef struct {
    char thinking[512], content[512];
} split;

static bool collect(void *user, bool thinking, const char *text, size_t len) {
    split *s = user;
    char *dst = thinking ? s->thinking : s->content;
    strncat(dst, text, len);
    return true;
}

static void check(const char *open, const char *close, bool started, const char *out, const char *want_thinking,
                  const char *want_content) {
    for (int bytewise = 0; bytewise < 2; bytewise++) {
        srv_think t;
        split s = {{0}, {0}};
        srv_think_init(&t, open, close, started);
        size_t n = strlen(out);
        if (bytewise) {
            for (size_t i = 0; i < n; i++) assert_true(srv_think_feed(&t, out + i, 1, false, collect, &s));
        } else {
            assert_true(srv_think_feed(&t, out, n, false, collect, &s));
        }
        assert_true(srv_think_feed(&t, "", 0, true, collect, &s));
        if (strcmp(s.thinking, want_thinking) != 0 || strcmp(s.content, want_content) != 0)
            fail_msg("%s (bytewise %d): thinking '%s' content '%s'", out, bytewise, s.thinking, s.content);
    }
}

static void test_split(void **state) {
    (void)state;
    /* qwen3 / deepseek-r1 */
    check("<think>", "</think>", false, "<think>\nThe user greets me.\n</think>\n\nHello! How can I help?",
          "The user greets me.\n", "Hello! How can I help?");
    check("<think>", "</think>", false, "  <think>a < b, so </thi is not the end</think>ok", "a < b, so </thi is not the end", "ok");
    /* no reasoning at all: all answer */
    check("<think>", "</think>", false, "Hello there", "", "Hello there");
    check("<think>", "</think>", false, "<thin", "", "<thin");
    /* the prompt opened the reasoning */
    check("<think>", "</think>", true, "step one, step two</think>\n\nanswer", "step one, step two", "answer");
    /* cut off inside the reasoning (num_predict): everything is reasoning */
    check("<think>", "</think>", true, "still thinking </th", "still thinking </th", "");
    /* other tags */
    check("<|begin_of_thought|>", "<|end_of_thought|>", false, "<|begin_of_thought|>x<|end_of_thought|>y", "x", "y");
}

int main(void) {
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_split)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
