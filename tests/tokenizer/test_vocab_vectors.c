/* Reference vectors: for every ggml-vocab-*.gguf in the shared testdata, each string of
 * its .inp file, tokenized without BOS/EOS and without parsing special tokens, must give
 * exactly the ids on the matching line of its .out file. Also checks that detokenizing
 * gives the string back. */
#include <glob.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testdata.h"
#include "tokenizer/tokenizer.h"

static const char k_sep[] = "\n__ggml_vocab_test__\n";

typedef struct {
    int tested, passed, roundtrip_ok;
} counts;

/* Parses a line of ids ("" = none) into out; returns the count. */
static size_t parse_ids(const char *line, size_t len, int32_t *out, size_t cap) {
    size_t n = 0;
    const char *p = line, *e = line + len;
    while (p < e) {
        while (p < e && *p == ' ') p++;
        if (p >= e) break;
        long v = strtol(p, (char **)&p, 10);
        if (n < cap) out[n] = (int32_t)v;
        n++;
    }
    return n;
}

static void print_ids(const char *label, const int32_t *ids, size_t n) {
    print_message("      %s:", label);
    for (size_t i = 0; i < n; i++) print_message(" %d", ids[i]);
    print_message("\n");
}

static counts run_vocab(const char *gguf_path) {
    counts c = {0, 0, 0};
    char path[4096];
    gguf_file *f = NULL;
    strata_status st = gguf_open(gguf_path, GGUF_OPEN_HEADER_ONLY, &f);
    if (st != STRATA_OK) fail_msg("%s: %s", gguf_path, strata_last_error());
    strata_vocab *v = NULL;
    st = strata_vocab_load(f, &v);
    if (st != STRATA_OK) fail_msg("%s: %s", gguf_path, strata_last_error());
    gguf_close(f); /* the vocab must not need the file any more */

    size_t inp_len, out_len;
    snprintf(path, sizeof path, "%s.inp", gguf_path);
    char *inp = testdata_read_file(path, &inp_len);
    snprintf(path, sizeof path, "%s.out", gguf_path);
    char *outs = testdata_read_file(path, &out_len);
    assert_non_null(inp);
    assert_non_null(outs);

    const char *p = inp, *e = inp + inp_len;
    const char *line = outs, *oe = outs + out_len;
    int32_t *got = malloc(65536 * sizeof *got), *want = malloc(65536 * sizeof *want);
    char *back = malloc(65536);
    for (;;) {
        const char *sep = NULL;
        for (const char *q = p; q + sizeof k_sep - 1 <= e; q++) {
            if (memcmp(q, k_sep, sizeof k_sep - 1) == 0) {
                sep = q;
                break;
            }
        }
        if (!sep) break; /* the piece after the last separator is not a test */
        size_t slen = (size_t)(sep - p);
        const char *nl = memchr(line, '\n', (size_t)(oe - line));
        if (!nl) nl = oe;
        size_t nw = parse_ids(line, (size_t)(nl - line), want, 65536);
        int64_t ng = strata_tokenize(v, p, slen, false, false, got, 65536);
        assert_true(ng >= 0 && ng <= 65536);
        c.tested++;
        if ((size_t)ng == nw && memcmp(got, want, nw * sizeof *got) == 0) {
            c.passed++;
        } else {
            print_message("  MISMATCH %s #%d: \"%.*s\"\n", strrchr(gguf_path, '/') + 1, c.tested - 1, (int)slen, p);
            print_ids("want", want, nw);
            print_ids("got ", got, (size_t)ng);
        }
        int64_t nb = strata_detokenize(v, got, (size_t)ng, back, 65536, false);
        if (nb == (int64_t)slen && memcmp(back, p, slen) == 0) c.roundtrip_ok++;
        else print_message("  ROUNDTRIP %s #%d: \"%.*s\" -> \"%.*s\"\n", strrchr(gguf_path, '/') + 1, c.tested - 1,
                           (int)slen, p, (int)(nb > 0 ? nb : 0), back);
        p = sep + sizeof k_sep - 1;
        line = nl < oe ? nl + 1 : oe;
    }
    free(got);
    free(want);
    free(back);
    free(inp);
    free(outs);
    strata_vocab_free(v);
    return c;
}

static void test_all_vocab_vectors(void **state) {
    (void)state;
    TESTDATA_REQUIRE();
    char *pattern = testdata_path("vocab/ggml-vocab-*.gguf");
    glob_t g;
    int r = glob(pattern, 0, NULL, &g);
    free(pattern);
    assert_int_equal(r, 0);
    assert_true(g.gl_pathc >= 9);
    int bad = 0;
    for (size_t i = 0; i < g.gl_pathc; i++) {
        counts c = run_vocab(g.gl_pathv[i]);
        print_message("[  INFO    ] %-28s %d/%d vectors, %d/%d round trips\n", strrchr(g.gl_pathv[i], '/') + 1,
                      c.passed, c.tested, c.roundtrip_ok, c.tested);
        if (c.passed != c.tested || c.roundtrip_ok != c.tested || c.tested == 0) bad++;
    }
    globfree(&g);
    assert_int_equal(bad, 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_all_vocab_vectors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
