/* The JSON prefix validator (sampler/json_constraint.h).
 *
 *   - a table of prefixes: valid or not, complete or not, closed or not, for both top-level
 *     modes; numbers, escapes (surrogate pairs), UTF-8 (cut mid-character, overlong forms,
 *     encoded surrogates, beyond U+10FFFF), literals, whitespace;
 *   - the depth limit (64 open, the 65th refused, with a message naming it) and the
 *     whitespace cap;
 *   - copying the state is branching and rolling back;
 *   - brute force: every string of up to 4 bytes over a 24-byte alphabet, compared with an
 *     independent recursive-descent reference (json_ref.h), in both modes;
 *   - random documents written by a generator here: complete, every proper prefix valid and
 *     not closed, cJSON parses them; random mutations of them: the verdict agrees with the
 *     reference, the first refused byte is exactly where the reference finds the error, and
 *     whatever the validator calls complete cJSON parses too (cJSON is laxer -- leading zeros,
 *     raw control bytes, invalid UTF-8 -- so only that direction is asserted). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <cjson/cJSON.h>

#include "json_ref.h"
#include "sampler/json_constraint.h"

/* Verdict of the validator on text: JREF_* codes. *fail_at: index of the first refused byte. */
static int verdict(const void *text, size_t n, strata_json_top top, size_t *fail_at) {
    strata_json_state s;
    strata_json_init(&s, top, 0);
    const uint8_t *p = text;
    for (size_t i = 0; i < n; i++) {
        if (!strata_json_feed_byte(&s, p[i])) {
            if (fail_at) *fail_at = i;
            return JREF_ERROR;
        }
    }
    return strata_json_complete(&s) ? JREF_COMPLETE : JREF_PREFIX;
}

typedef struct {
    const char *text;
    int any;    /* verdict with STRATA_JSON_TOP_ANY */
    int object; /* verdict with STRATA_JSON_TOP_OBJECT */
} row;

#define C JREF_COMPLETE
#define P JREF_PREFIX
#define E JREF_ERROR

static const row table[] = {
    {"", P, P},
    {"   \n\t\r", P, P},
    {"{", P, P},
    {"{}", C, C},
    {" { } \n", C, C},
    {"{}}", E, E},
    {"{} x", E, E},
    {"[]", C, E},
    {"[1,2]", C, E},
    {"[1,]", E, E},
    {"[,", E, E},
    {"{\"a\":1}", C, C},
    {"{\"a\" : [true, false, null, {}, []] }", C, C},
    {"{\"a\"", P, P},
    {"{\"a\" ", P, P},
    {"{\"a\"}", E, E},
    {"{\"a\":}", E, E},
    {"{\"a\":1,}", E, E},
    {"{\"a\":1,\"b\"", P, P},
    {"{1:2}", E, E},
    {"{'a':1}", E, E},
    {"[}", E, E},
    {"{]", E, E},
    {"[1}", E, E},
    {"\"abc\"", C, E},
    {"\"abc", P, E},
    {"true", C, E},
    {"tru", P, E},
    {"trUe", E, E},
    {"nul", P, E},
    {"null ", C, E},
    {"nulll", E, E},
    {"fals", P, E},
    {"false1", E, E},
    /* numbers */
    {"0", C, E},
    {"-0", C, E},
    {"-", P, E},
    {"--1", E, E},
    {"+1", E, E},
    {"01", E, E},
    {"-01", E, E},
    {"00", E, E},
    {"10", C, E},
    {"1.", P, E},
    {"1.5", C, E},
    {".5", E, E},
    {"1.e5", E, E},
    {"1e", P, E},
    {"1e+", P, E},
    {"1e+5", C, E},
    {"1E-05", C, E},
    {"1e5.5", E, E},
    {"1ee", E, E},
    {"0x10", E, E},
    {"1 2", E, E},
    {"[1 2]", E, E},
    {"[-]", E, E},
    {"[0.1e10,-3]", C, E},
    {"NaN", E, E},
    {"Infinity", E, E},
    {"-Infinity", E, E},
    {"{\"n\":-0.0e-0}", C, C},
    /* escapes */
    {"\"\\n\\t\\r\\b\\f\\/\\\\\\\"\"", C, E},
    {"\"\\a\"", E, E},
    {"\"\\'\"", E, E},
    {"\"\\x41\"", E, E},
    {"\"\\u00e9\"", C, E},
    {"\"\\u00E9\"", C, E},
    {"\"\\u00g9\"", E, E},
    {"\"\\u00", P, E},
    {"\"\\u0000\"", C, E},
    {"\"\\uD83D\\uDE00\"", C, E},
    {"\"\\ud83d\\ude00\"", C, E},
    {"\"\\uD83D", P, E},
    {"\"\\uD83D\\", P, E},
    {"\"\\uD83D\\u", P, E},
    {"\"\\uD83D\\uD", P, E},
    {"\"\\uD83D\\uDB", E, E}, /* a second high surrogate */
    {"\"\\uD83D\\u0041\"", E, E},
    {"\"\\uD83D\\n", E, E},
    {"\"\\uD83Dx\"", E, E},
    {"\"\\uD83D\"", E, E},
    {"\"\\uDE00\"", E, E}, /* lone low surrogate */
    {"\"\\uDC", E, E},
    {"\"\\uDB", P, E},
    {"\"\\uE000\"", C, E},
    /* raw bytes in strings */
    {"\"a\tb\"", E, E},
    {"\"a\nb\"", E, E},
    {"\"\x1f\"", E, E},
    {"\"\x7f\"", C, E},
    {"\"\xc3\xa9\"", C, E},
    {"\"\xc3", P, E},
    {"\"\xc3\"", E, E},
    {"\"\xc0\xaf\"", E, E}, /* overlong '/' */
    {"\"\xc1", E, E},
    {"\"\xe2\x82\xac\"", C, E},
    {"\"\xe2\x82", P, E},
    {"\"\xe0\x80", E, E}, /* overlong 3-byte */
    {"\"\xe0\xa0\x80\"", C, E},
    {"\"\xed\xa0\x80\"", E, E}, /* encoded surrogate U+D800 */
    {"\"\xed\x9f\xbf\"", C, E},
    {"\"\xf0\x9f\x98\x80\"", C, E},
    {"\"\xf0\x9f\x98", P, E},
    {"\"\xf0\x8f", E, E}, /* overlong 4-byte */
    {"\"\xf4\x8f\xbf\xbf\"", C, E},
    {"\"\xf4\x90", E, E}, /* above U+10FFFF */
    {"\"\xf5", E, E},
    {"\"\xff", E, E},
    {"\"\x80", E, E},
    {"\xef\xbb\xbf{}", E, E}, /* no byte-order mark */
    {"{\"\xc3\xa9\":\"\xe2\x82\xac\"}", C, C},
    /* whitespace is only these four */
    {"\f{}", E, E},
    {"{\v}", E, E},
    {"{}\x00", E, E},
};

static void test_table(void **state) {
    (void)state;
    for (size_t k = 0; k < sizeof table / sizeof *table; k++) {
        const row *r = &table[k];
        size_t n = strlen(r->text);
        if (k == sizeof table / sizeof *table - 1) n = 3; /* the one with a NUL */
        int a = verdict(r->text, n, STRATA_JSON_TOP_ANY, NULL), o = verdict(r->text, n, STRATA_JSON_TOP_OBJECT, NULL);
        if (a != r->any || o != r->object)
            fail_msg("row %zu %s: any %d (want %d), object %d (want %d)", k, r->text, a, r->any, o, r->object);
        /* the reference agrees with every row */
        assert_int_equal(jref_check(r->text, n, false), r->any);
        assert_int_equal(jref_check(r->text, n, true), r->object);
        assert_int_equal(strata_json_check(STRATA_JSON_TOP_ANY, r->text, n) == STRATA_OK, r->any == C);
    }
}

static void test_closed(void **state) {
    (void)state;
    strata_json_state s;
    strata_json_init(&s, STRATA_JSON_TOP_ANY, 0);
    assert_true(strata_json_feed(&s, "12", 2));
    assert_true(strata_json_complete(&s));
    assert_false(strata_json_closed(&s)); /* another digit could follow */
    assert_true(strata_json_feed(&s, " ", 1));
    assert_true(strata_json_closed(&s));
    assert_false(strata_json_feed(&s, "3", 1));
    assert_false(strata_json_ok(&s));
    assert_false(strata_json_feed(&s, " ", 1)); /* refused stays refused */

    strata_json_init(&s, STRATA_JSON_TOP_OBJECT, 0);
    const char *t1 = "{\"a\":[1,{\"b\":2}";
    assert_true(strata_json_feed(&s, t1, strlen(t1)));
    assert_int_equal(strata_json_depth(&s), 2);
    assert_false(strata_json_complete(&s));
    strata_json_state branch = s;
    assert_false(strata_json_feed(&branch, "}", 1)); /* the array is open */
    assert_true(strata_json_feed(&s, "]", 1));
    assert_int_equal(strata_json_depth(&s), 1);
    assert_false(strata_json_closed(&s));
    assert_true(strata_json_feed(&s, "}", 1));
    assert_true(strata_json_closed(&s));
    assert_true(strata_json_complete(&s));
    assert_int_equal(strata_json_depth(&s), 0);

    strata_json_init(&s, STRATA_JSON_TOP_ANY, 0);
    assert_true(strata_json_feed(&s, "true", 4));
    assert_true(strata_json_closed(&s));
    strata_json_init(&s, STRATA_JSON_TOP_ANY, 0);
    assert_true(strata_json_feed(&s, "\"x\"", 3));
    assert_true(strata_json_closed(&s));
}

static void test_depth(void **state) {
    (void)state;
    char buf[2 * STRATA_JSON_MAX_DEPTH + 4];
    size_t n = 0;
    strata_json_state s;
    strata_json_init(&s, STRATA_JSON_TOP_ANY, 0);
    /* one object holding 63 nested arrays */
    buf[n++] = '{';
    memcpy(buf + n, "\"k\":", 4);
    n += 4;
    for (int i = 1; i < STRATA_JSON_MAX_DEPTH; i++) buf[n++] = '[';
    assert_true(strata_json_feed(&s, buf, n));
    assert_int_equal(strata_json_depth(&s), STRATA_JSON_MAX_DEPTH);
    strata_json_state t = s;
    assert_false(strata_json_feed(&t, "[", 1));
    assert_false(strata_json_feed(&s, "{", 1));
    /* closing all of them completes the value */
    strata_json_init(&s, STRATA_JSON_TOP_ANY, 0);
    strata_json_feed(&s, buf, n);
    for (int i = 1; i < STRATA_JSON_MAX_DEPTH; i++) assert_true(strata_json_feed(&s, "]", 1));
    assert_true(strata_json_feed(&s, "}", 1));
    assert_true(strata_json_closed(&s));
    /* strata_json_check names the limit */
    buf[n++] = '[';
    assert_int_equal(strata_json_check(STRATA_JSON_TOP_ANY, buf, n), STRATA_ERR_FORMAT);
    assert_non_null(strstr(strata_last_error(), "nesting deeper than 64"));
    assert_int_equal(jref_check(buf, n, false), JREF_ERROR);
    assert_int_equal(jref_check(buf, n - 1, false), JREF_PREFIX);
    /* and other messages name the offset */
    assert_int_equal(strata_json_check(STRATA_JSON_TOP_OBJECT, "{\"a\" 1}", 7), STRATA_ERR_FORMAT);
    assert_non_null(strstr(strata_last_error(), "':' was expected at offset 5"));
    assert_int_equal(strata_json_check(STRATA_JSON_TOP_OBJECT, "[]", 2), STRATA_ERR_FORMAT);
    assert_non_null(strstr(strata_last_error(), "'{' was expected at offset 0"));
    assert_int_equal(strata_json_check(STRATA_JSON_TOP_OBJECT, "{", 1), STRATA_ERR_FORMAT);
    assert_non_null(strstr(strata_last_error(), "text ends"));
}

static void test_ws_cap(void **state) {
    (void)state;
    strata_json_state s;
    strata_json_init(&s, STRATA_JSON_TOP_OBJECT, 3);
    assert_true(strata_json_feed(&s, "   {", 4));
    assert_true(strata_json_feed(&s, "\n  \"a  b\"  :   1 ", 17)); /* spaces inside a string do not count */
    strata_json_state t = s;
    assert_true(strata_json_feed(&t, "  ", 2));
    assert_false(strata_json_feed(&t, " ", 1)); /* a fourth in a row */
    assert_true(strata_json_feed(&s, "}", 1));
    strata_json_init(&s, STRATA_JSON_TOP_OBJECT, 3);
    assert_false(strata_json_feed(&s, "    {", 5));
}

static void test_copy_is_rollback(void **state) {
    (void)state;
    strata_json_state s;
    strata_json_init(&s, STRATA_JSON_TOP_OBJECT, 0);
    const char *head = "{\"k\":\"\xe2\x82", *tail = "\xac\",\"j\":[]}";
    assert_true(strata_json_feed(&s, head, strlen(head)));
    strata_json_state bad = s, good = s;
    assert_false(strata_json_feed(&bad, "x", 1)); /* a character cut short */
    assert_true(strata_json_ok(&s));              /* the original is untouched */
    assert_true(strata_json_feed(&good, "\xac\"}", 3));
    assert_true(strata_json_closed(&good));
    assert_true(strata_json_feed(&s, tail, strlen(tail)));
    assert_true(strata_json_closed(&s));
    assert_true(sizeof(strata_json_state) <= 32);
}

/* Every string of length <= 4 over an alphabet that reaches every state. */
static void test_brute_force(void **state) {
    (void)state;
    static const char alpha[] = "{}[]\",:0-1.eE\\u tfnlD8\xc3\xa9";
    const size_t A = sizeof alpha - 1;
    uint8_t buf[4];
    size_t checked = 0;
    for (size_t len = 0; len <= 4; len++) {
        size_t total = 1;
        for (size_t k = 0; k < len; k++) total *= A;
        for (size_t x = 0; x < total; x++) {
            size_t y = x;
            for (size_t k = 0; k < len; k++) {
                buf[k] = (uint8_t)alpha[y % A];
                y /= A;
            }
            for (int m = 0; m < 2; m++) {
                strata_json_top top = m ? STRATA_JSON_TOP_OBJECT : STRATA_JSON_TOP_ANY;
                int v = verdict(buf, len, top, NULL), r = jref_check(buf, len, m == 1);
                if (v != r) fail_msg("\"%.*s\" (%s): validator %d, reference %d", (int)len, buf, m ? "object" : "any", v, r);
            }
            checked++;
        }
    }
    assert_true(checked > 300000);
}

/* ---- random documents -------------------------------------------------------------------- */

typedef struct {
    char *buf;
    size_t len, cap;
    uint64_t rng;
} gen;

static uint32_t rnd(gen *g, uint32_t n) {
    g->rng ^= g->rng << 13;
    g->rng ^= g->rng >> 7;
    g->rng ^= g->rng << 17;
    return (uint32_t)(g->rng % n);
}

static void put(gen *g, const char *s, size_t n) {
    if (g->len + n > g->cap) fail_msg("generator overflow"); /* depth <= 6 keeps documents far smaller */
    memcpy(g->buf + g->len, s, n);
    g->len += n;
}
static void puts_(gen *g, const char *s) { put(g, s, strlen(s)); }

static void ws(gen *g) {
    static const char *const w[] = {"", "", "", " ", "\n", "\t", "\r\n  "};
    puts_(g, w[rnd(g, 7)]);
}

static void gen_string(gen *g) {
    static const char *const parts[] = {"a", "Z", " ", "\\n", "\\\"", "\\\\", "\\/", "\\u00e9", "\\uD83D\\uDE00",
                                        "\xc3\xa9", "\xe2\x82\xac", "\xf0\x9f\x98\x80", "\x7f", "{", "]", ":", ","};
    puts_(g, "\"");
    int n = (int)rnd(g, 6);
    for (int i = 0; i < n; i++) puts_(g, parts[rnd(g, sizeof parts / sizeof *parts)]);
    puts_(g, "\"");
}

static void gen_number(gen *g) {
    char b[64];
    static const char *const ints[] = {"0", "7", "42", "1234567890123"};
    static const char *const fracs[] = {"", "", ".5", ".0001"};
    static const char *const exps[] = {"", "", "e5", "E-3", "e+10"};
    snprintf(b, sizeof b, "%s%s%s%s", rnd(g, 3) ? "" : "-", ints[rnd(g, 4)], fracs[rnd(g, 4)], exps[rnd(g, 5)]);
    puts_(g, b);
}

static void gen_value(gen *g, int depth) {
    uint32_t k = rnd(g, depth > 5 ? 4 : 7);
    switch (k) {
    case 0: gen_string(g); break;
    case 1: gen_number(g); break;
    case 2: puts_(g, rnd(g, 2) ? "true" : "false"); break;
    case 3: puts_(g, "null"); break;
    case 4:
    case 5: {
        puts_(g, "{");
        int n = (int)rnd(g, 4);
        ws(g);
        for (int i = 0; i < n; i++) {
            if (i) puts_(g, ","), ws(g);
            gen_string(g);
            ws(g);
            puts_(g, ":");
            ws(g);
            gen_value(g, depth + 1);
            ws(g);
        }
        puts_(g, "}");
        break;
    }
    default: {
        puts_(g, "[");
        int n = (int)rnd(g, 4);
        ws(g);
        for (int i = 0; i < n; i++) {
            if (i) puts_(g, ","), ws(g);
            gen_value(g, depth + 1);
            ws(g);
        }
        puts_(g, "]");
    }
    }
}

/* Parses with cJSON, strictly: the whole text, nothing after it (needs a NUL terminator). */
static bool cjson_accepts(const char *text, size_t n) {
    char *z = malloc(n + 1);
    memcpy(z, text, n);
    z[n] = 0;
    cJSON *j = cJSON_ParseWithOpts(z, NULL, true);
    bool ok = j != NULL;
    cJSON_Delete(j);
    free(z);
    return ok;
}

static void test_random_documents(void **state) {
    (void)state;
    static char buf[1 << 16], mut[(1 << 16) + 8];
    gen g = {buf, 0, sizeof buf, 0x9E3779B97F4A7C15ull};
    int completes = 0, errors = 0, prefixes = 0;
    for (int doc = 0; doc < 3000; doc++) {
        g.len = 0;
        bool obj = doc % 2 == 0;
        ws(&g);
        if (obj) { /* an object at the top level */
            puts_(&g, "{\"k\":");
            gen_value(&g, 1);
            puts_(&g, "}");
        } else {
            gen_value(&g, 0);
        }
        ws(&g);
        strata_json_top top = obj ? STRATA_JSON_TOP_OBJECT : STRATA_JSON_TOP_ANY;
        /* whole: complete, and every proper prefix is valid */
        strata_json_state s;
        strata_json_init(&s, top, 0);
        for (size_t i = 0; i < g.len; i++) {
            if (!strata_json_feed_byte(&s, (uint8_t)buf[i])) fail_msg("doc %d refused at %zu: %.*s", doc, i, (int)g.len, buf);
            if (obj && i + 1 < g.len && strata_json_closed(&s)) {
                /* closed before the end: only trailing whitespace may remain */
                for (size_t k = i + 1; k < g.len; k++) assert_true(strchr(" \t\r\n", buf[k]) != NULL);
            }
        }
        assert_true(strata_json_complete(&s));
        assert_int_equal(jref_check(buf, g.len, obj), JREF_COMPLETE);
        if (!cjson_accepts(buf, g.len)) fail_msg("cJSON refuses doc %d: %.*s", doc, (int)g.len, buf);

        /* mutations: replace, insert or delete a few bytes */
        for (int m = 0; m < 20; m++) {
            size_t n = g.len;
            memcpy(mut, buf, n);
            int edits = 1 + (int)rnd(&g, 3);
            static const char pool[] = "{}[]\",:0123456789-+.eE\\u tfnrl\x01\x80\xc3\xe2\xed\xf0\xf4\xff";
            for (int e = 0; e < edits && n > 0; e++) {
                size_t at = rnd(&g, (uint32_t)n);
                char c = pool[rnd(&g, sizeof pool - 1)];
                switch (rnd(&g, 3)) {
                case 0: mut[at] = c; break;
                case 1:
                    memmove(mut + at + 1, mut + at, n - at);
                    mut[at] = c;
                    n++;
                    break;
                default:
                    memmove(mut + at, mut + at + 1, n - at - 1);
                    n--;
                }
            }
            size_t fail_at = 0;
            int v = verdict(mut, n, top, &fail_at), r = jref_check(mut, n, obj);
            if (v != r) fail_msg("mutation of doc %d: validator %d, reference %d: %.*s", doc, v, r, (int)n, mut);
            if (v == JREF_ERROR) {
                /* refused exactly where the text stops being a prefix */
                assert_int_not_equal(jref_check(mut, fail_at, obj), JREF_ERROR);
                assert_int_equal(jref_check(mut, fail_at + 1, obj), JREF_ERROR);
                errors++;
            } else if (v == JREF_COMPLETE) {
                if (!cjson_accepts(mut, n)) fail_msg("cJSON refuses a complete text: %.*s", (int)n, mut);
                completes++;
            } else {
                prefixes++;
            }
        }
    }
    /* the mutations reached all three verdicts */
    assert_true(completes > 100 && errors > 100 && prefixes > 100);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table),          cmocka_unit_test(test_closed),
        cmocka_unit_test(test_depth),          cmocka_unit_test(test_ws_cap),
        cmocka_unit_test(test_copy_is_rollback), cmocka_unit_test(test_brute_force),
        cmocka_unit_test(test_random_documents),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
