/* Tokenizer benchmark: tokenizes 1 MiB of English text with a GGUF vocabulary (by default
 * the shared llama-bpe one) and prints the time.
 *
 *   tokenize_bench [VOCAB.gguf] [TEXT_FILE]
 *
 * Without TEXT_FILE the text is generated deterministically: sentences of common English
 * words with capitals, punctuation, contractions, numbers and paragraph breaks. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gguf/gguf.h"
#include "tokenizer/tokenizer.h"

#define TEXT_BYTES (1u << 20)

static const char *const k_words[] = {
    "the", "of", "and", "to", "a", "in", "is", "it", "you", "that", "he", "was", "for", "on", "are",
    "with", "as", "I", "his", "they", "be", "at", "one", "have", "this", "from", "or", "had", "by",
    "word", "but", "what", "some", "we", "can", "out", "other", "were", "all", "there", "when", "up",
    "use", "your", "how", "said", "an", "each", "she", "which", "do", "their", "time", "if", "will",
    "way", "about", "many", "then", "them", "write", "would", "like", "so", "these", "her", "long",
    "make", "thing", "see", "him", "two", "has", "look", "more", "day", "could", "go", "come", "did",
    "number", "sound", "no", "most", "people", "my", "over", "know", "water", "than", "call", "first",
    "who", "may", "down", "side", "been", "now", "find", "government", "information", "development",
    "understanding", "responsibility", "international", "it's", "don't", "we're", "they've", "I'll",
    "tokenizer", "benchmark", "London", "September", "researchers", "quickly", "beautiful",
};

static char *make_text(size_t n) {
    char *t = malloc(n + 64);
    if (!t) return NULL;
    unsigned long long s = 0x9E3779B97F4A7C15ull;
    size_t len = 0;
    int in_sentence = 0;
    while (len < n) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        unsigned r = (unsigned)(s >> 33);
        const char *w = k_words[r % (sizeof k_words / sizeof k_words[0])];
        char word[64];
        if (r % 97 == 0) snprintf(word, sizeof word, "%u", (r >> 8) % 100000);
        else snprintf(word, sizeof word, "%s", w);
        if (!in_sentence && word[0] >= 'a' && word[0] <= 'z') word[0] = (char)(word[0] - 32);
        size_t wl = strlen(word);
        if (len + wl + 4 > n) break;
        if (in_sentence) t[len++] = ' ';
        memcpy(t + len, word, wl);
        len += wl;
        in_sentence++;
        if (r % 41 == 0) t[len++] = ',';
        if (in_sentence > 6 && r % 9 == 0) {
            t[len++] = ".?!"[(r >> 4) % 3 == 0 ? 0 : (r >> 4) % 7 == 0 ? 1 : 0];
            in_sentence = 0;
            t[len++] = (r >> 12) % 5 == 0 ? '\n' : ' ';
        }
    }
    while (len < n) t[len++] = ' ';
    t[len] = 0;
    return t;
}

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

int main(int argc, char **argv) {
    const char *vocab_path = argc > 1 ? argv[1] : NULL;
    char def[4096];
    if (!vocab_path) {
        const char *td = getenv("STRATA_TESTDATA");
        snprintf(def, sizeof def, "%s/vocab/ggml-vocab-llama-bpe.gguf", td ? td : "../shared/testdata");
        vocab_path = def;
    }
    gguf_file *f;
    if (gguf_open(vocab_path, GGUF_OPEN_HEADER_ONLY, &f) != STRATA_OK) {
        fprintf(stderr, "tokenize_bench: %s\n", strata_last_error());
        return 1;
    }
    strata_vocab *v;
    double t0 = now();
    if (strata_vocab_load(f, &v) != STRATA_OK) {
        fprintf(stderr, "tokenize_bench: %s\n", strata_last_error());
        return 1;
    }
    double t_load = now() - t0;
    gguf_close(f);

    char *text;
    size_t len;
    if (argc > 2) {
        FILE *fp = fopen(argv[2], "rb");
        if (!fp) {
            perror(argv[2]);
            return 1;
        }
        text = malloc(TEXT_BYTES);
        len = text ? fread(text, 1, TEXT_BYTES, fp) : 0;
        fclose(fp);
    } else {
        text = make_text(TEXT_BYTES);
        len = TEXT_BYTES;
    }
    if (!text) return 1;
    int32_t *ids = malloc(len * sizeof *ids + 16);
    if (!ids) return 1;

    double best = 1e9;
    int64_t n = 0;
    for (int rep = 0; rep < 5; rep++) {
        t0 = now();
        n = strata_tokenize(v, text, len, true, false, ids, len + 4);
        double dt = now() - t0;
        if (n < 0) {
            fprintf(stderr, "tokenize_bench: %s\n", strata_last_error());
            return 1;
        }
        if (dt < best) best = dt;
    }
    char *back = malloc(len + 16);
    int64_t nb = back ? strata_detokenize(v, ids + 1, (size_t)n - 1, back, len + 16, false) : -1;
    int roundtrip = nb == (int64_t)len && memcmp(back, text, len) == 0;
    printf("vocab: %s (%s, pre '%s', %d tokens, loaded in %.3f s)\n", vocab_path,
           strata_vocab_kind(v) == STRATA_VOCAB_BPE ? "BPE" : "SPM", strata_vocab_pre_name(v),
           strata_vocab_n_tokens(v), t_load);
    printf("text: %zu bytes -> %lld tokens (%.2f bytes/token), round trip %s\n", len, (long long)n,
           (double)len / (double)n, roundtrip ? "ok" : "FAILED");
    printf("tokenize: %.3f s (best of 5), %.1f MB/s, %.0f tokens/s\n", best, (double)len / best / 1e6,
           (double)n / best);
    free(back);
    free(ids);
    free(text);
    strata_vocab_free(v);
    return roundtrip ? 0 : 1;
}
