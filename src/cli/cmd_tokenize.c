/* `strata tokenize FILE.gguf TEXT [--no-bos] [--special] [--json]` and
 * `strata detokenize FILE.gguf ID... [--special]`: the tokenizer of a GGUF file, from the
 * command line. Owns only argument handling and printing; the work is src/tokenizer. */
#include <cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/util.h"
#include "gguf/gguf.h"
#include "tokenizer/tokenizer.h"

static const char tokenize_usage[] =
    "Usage: strata tokenize FILE.gguf TEXT [--no-bos] [--special] [--json]\n"
    "\n"
    "Prints the token ids of TEXT, separated by single spaces, on one line.\n"
    "TEXT '-' reads standard input, exactly (newlines and all); '--' ends the options,\n"
    "for a TEXT that starts with '-'.\n"
    "\n"
    "Options:\n"
    "  --no-bos   do not add the BOS (and EOS) tokens the vocabulary asks for\n"
    "  --special  recognise control tokens written in TEXT (e.g. <|eot_id|>)\n"
    "  --json     print {\"ids\": [...], \"pieces\": [...]}; a piece that is only part of a\n"
    "             UTF-8 character is shown in its stored form (<0xE2>, byte symbols)\n";

static const char detokenize_usage[] =
    "Usage: strata detokenize FILE.gguf ID... [--special]\n"
    "\n"
    "Prints the text of the token ids, exactly (no newline is added). IDs may also be given\n"
    "in one argument separated by spaces or commas, as `strata tokenize` prints them.\n"
    "\n"
    "Options:\n"
    "  --special  print control tokens (BOS, EOS, ...) as their text instead of nothing\n";

static int load_vocab(const char *path, strata_vocab **v) {
    gguf_file *f;
    if (gguf_open(path, GGUF_OPEN_HEADER_ONLY, &f) != STRATA_OK) return cli_error("%s", strata_last_error());
    strata_status st = strata_vocab_load(f, v);
    gguf_close(f);
    if (st != STRATA_OK) return cli_error("%s: %s", path, strata_last_error());
    return 0;
}

static char *read_stdin(size_t *len) {
    size_t cap = 65536, n = 0;
    char *buf = malloc(cap);
    while (buf) {
        if (n == cap) {
            char *nb = realloc(buf, cap * 2);
            if (!nb) break;
            buf = nb;
            cap *= 2;
        }
        size_t r = fread(buf + n, 1, cap - n, stdin);
        n += r;
        if (r == 0) {
            if (ferror(stdin)) break;
            *len = n;
            return buf;
        }
    }
    free(buf);
    return NULL;
}

static bool valid_utf8(const char *s, size_t n) {
    const unsigned char *p = (const unsigned char *)s;
    for (size_t i = 0; i < n;) {
        unsigned c = p[i];
        size_t l = c < 0x80 ? 1 : (c >= 0xC2 && c <= 0xDF) ? 2 : (c >= 0xE0 && c <= 0xEF) ? 3 : (c >= 0xF0 && c <= 0xF4) ? 4 : 0;
        if (l == 0 || i + l > n) return false;
        for (size_t k = 1; k < l; k++)
            if ((p[i + k] & 0xC0) != 0x80) return false;
        if (l == 3 && ((c == 0xE0 && p[i + 1] < 0xA0) || (c == 0xED && p[i + 1] > 0x9F))) return false;
        if (l == 4 && ((c == 0xF0 && p[i + 1] < 0x90) || (c == 0xF4 && p[i + 1] > 0x8F))) return false;
        i += l;
    }
    return true;
}

static int print_json(const strata_vocab *v, const int32_t *ids, size_t n) {
    cJSON *root = cJSON_CreateObject();
    cJSON *jids = cJSON_AddArrayToObject(root, "ids");
    cJSON *jpieces = cJSON_AddArrayToObject(root, "pieces");
    if (!root || !jids || !jpieces) {
        cJSON_Delete(root);
        return cli_error("out of memory");
    }
    char piece[1024];
    for (size_t i = 0; i < n; i++) {
        if (!cli_json_append_u64(jids, (uint64_t)ids[i])) {
            cJSON_Delete(root);
            return cli_error("out of memory");
        }
        int32_t l = strata_token_to_piece(v, ids[i], piece, sizeof piece - 1, true);
        const char *p = piece;
        size_t pl = l < 0 ? 0 : (size_t)l;
        if (pl > sizeof piece - 1 || !valid_utf8(piece, pl)) p = strata_vocab_token_text(v, ids[i], &pl);
        char *s = malloc(pl + 1);
        if (!s) {
            cJSON_Delete(root);
            return cli_error("out of memory");
        }
        memcpy(s, p, pl);
        s[pl] = 0;
        cJSON *js = cJSON_CreateString(s);
        free(s);
        if (!js || !cJSON_AddItemToArray(jpieces, js)) {
            cJSON_Delete(js);
            cJSON_Delete(root);
            return cli_error("out of memory");
        }
    }
    return cli_json_print(root);
}

int cmd_tokenize(int argc, char **argv) {
    const char *pos[2] = {NULL, NULL};
    int npos = 0;
    bool add_special = true, parse_special = false, json = false, opts_done = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!opts_done && a[0] == '-' && a[1] != 0) {
            if (strcmp(a, "--") == 0) opts_done = true;
            else if (cli_is_help(a)) {
                fputs(tokenize_usage, stdout);
                return 0;
            } else if (cli_opt_is(a, "no_bos")) add_special = false;
            else if (cli_opt_is(a, "special")) parse_special = true;
            else if (cli_opt_is(a, "json")) json = true;
            else return cli_error("tokenize: unknown option '%s' (see 'strata tokenize --help')", a);
            continue;
        }
        if (npos == 2) return cli_error("tokenize: too many arguments (quote the TEXT, or use '-' for stdin)");
        pos[npos++] = a;
    }
    if (npos < 2) return cli_error("tokenize: expected FILE.gguf and TEXT (see 'strata tokenize --help')");

    char *owned = NULL;
    const char *text = pos[1];
    size_t len = strlen(text);
    if (strcmp(text, "-") == 0) {
        owned = read_stdin(&len);
        if (!owned) return cli_error("tokenize: cannot read standard input: %s", strerror(errno));
        text = owned;
    }
    strata_vocab *v = NULL;
    int rc = load_vocab(pos[0], &v);
    if (rc) {
        free(owned);
        return rc;
    }
    int64_t n = strata_tokenize(v, text, len, add_special, parse_special, NULL, 0);
    int32_t *ids = n >= 0 ? malloc(((size_t)n + 1) * sizeof *ids) : NULL;
    if (!ids) {
        rc = cli_error("tokenize: out of memory");
    } else {
        strata_tokenize(v, text, len, add_special, parse_special, ids, (size_t)n);
        if (json) {
            rc = print_json(v, ids, (size_t)n);
        } else {
            for (int64_t i = 0; i < n; i++) printf(i ? " %d" : "%d", ids[i]);
            putchar('\n');
            if (fflush(stdout) != 0) rc = cli_error("cannot write to standard output");
        }
    }
    free(ids);
    free(owned);
    strata_vocab_free(v);
    return rc;
}

/* Appends the ids in `arg` (separated by spaces or commas) to *ids. */
static int parse_ids(const char *arg, int32_t n_vocab, int32_t **ids, size_t *n, size_t *cap) {
    const char *p = arg;
    for (;;) {
        while (*p == ' ' || *p == ',' || *p == '\t' || *p == '\n') p++;
        if (!*p) return 0;
        char *end;
        errno = 0;
        long long x = strtoll(p, &end, 10);
        if (end == p || errno || (*end && *end != ' ' && *end != ',' && *end != '\t' && *end != '\n'))
            return cli_error("detokenize: '%s' is not a token id", arg);
        if (x < 0 || x >= n_vocab)
            return cli_error("detokenize: token id %lld out of range (the vocabulary has %d tokens)", x, n_vocab);
        if (*n == *cap) {
            size_t nc = *cap ? *cap * 2 : 64;
            int32_t *q = realloc(*ids, nc * sizeof *q);
            if (!q) return cli_error("detokenize: out of memory");
            *ids = q;
            *cap = nc;
        }
        (*ids)[(*n)++] = (int32_t)x;
        p = end;
    }
}

int cmd_detokenize(int argc, char **argv) {
    const char *path = NULL;
    bool special = false;
    for (int i = 1; i < argc; i++) {
        if (cli_is_help(argv[i])) {
            fputs(detokenize_usage, stdout);
            return 0;
        }
    }
    /* options first, so that ids are checked against the vocabulary once it is loaded */
    const char **rest = malloc((size_t)argc * sizeof *rest);
    if (!rest) return cli_error("detokenize: out of memory");
    int nrest = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (a[0] == '-' && a[1] == '-') {
            if (cli_opt_is(a, "special")) special = true;
            else {
                free(rest);
                return cli_error("detokenize: unknown option '%s' (see 'strata detokenize --help')", a);
            }
            continue;
        }
        if (!path) path = a;
        else rest[nrest++] = a;
    }
    if (!path || nrest == 0) {
        free(rest);
        return cli_error("detokenize: expected FILE.gguf and at least one ID (see 'strata detokenize --help')");
    }
    strata_vocab *v = NULL;
    int rc = load_vocab(path, &v);
    int32_t *ids = NULL;
    size_t n = 0, cap = 0;
    for (int i = 0; rc == 0 && i < nrest; i++) rc = parse_ids(rest[i], strata_vocab_n_tokens(v), &ids, &n, &cap);
    free(rest);
    if (rc == 0) {
        int64_t len = strata_detokenize(v, ids, n, NULL, 0, special);
        char *buf = len >= 0 ? malloc((size_t)len + 1) : NULL;
        if (len < 0) rc = cli_error("detokenize: %s", strata_last_error());
        else if (!buf) rc = cli_error("detokenize: out of memory");
        else {
            strata_detokenize(v, ids, n, buf, (size_t)len, special);
            if (fwrite(buf, 1, (size_t)len, stdout) != (size_t)len || fflush(stdout) != 0)
                rc = cli_error("cannot write to standard output");
        }
        free(buf);
    }
    free(ids);
    strata_vocab_free(v);
    return rc;
}
