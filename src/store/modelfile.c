/* Modelfile parser and serializer; see modelfile.h for the grammar. */
#include "store/modelfile.h"

#include <cjson/cJSON.h>
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---- parameter table ------------------------------------------------------------------ */

static const struct {
    const char *name;
    strata_param_type type;
} param_table[] = {
    {"num_ctx", STRATA_PARAM_INT},          {"num_batch", STRATA_PARAM_INT},
    {"num_gpu", STRATA_PARAM_INT},          {"main_gpu", STRATA_PARAM_INT},
    {"num_thread", STRATA_PARAM_INT},       {"num_predict", STRATA_PARAM_INT},
    {"seed", STRATA_PARAM_INT},             {"top_k", STRATA_PARAM_INT},
    {"repeat_last_n", STRATA_PARAM_INT},    {"temperature", STRATA_PARAM_FLOAT},
    {"top_p", STRATA_PARAM_FLOAT},          {"min_p", STRATA_PARAM_FLOAT},
    {"typical_p", STRATA_PARAM_FLOAT},      {"repeat_penalty", STRATA_PARAM_FLOAT},
    {"presence_penalty", STRATA_PARAM_FLOAT}, {"frequency_penalty", STRATA_PARAM_FLOAT},
    {"stop", STRATA_PARAM_STRINGS},
};
#define N_PARAMS (sizeof param_table / sizeof param_table[0])

static int param_index(const char *name) {
    for (size_t i = 0; i < N_PARAMS; i++)
        if (strcmp(param_table[i].name, name) == 0) return (int)i;
    return -1;
}

strata_status strata_param_type_of(const char *name, strata_param_type *out) {
    int i = name ? param_index(name) : -1;
    if (i < 0) return strata_fail(STRATA_ERR_INVALID, "unknown parameter '%s'", name ? name : "");
    *out = param_table[i].type;
    return STRATA_OK;
}

size_t strata_param_count(void) { return N_PARAMS; }
const char *strata_param_name(size_t i) { return i < N_PARAMS ? param_table[i].name : NULL; }

/* ---- construction --------------------------------------------------------------------- */

strata_modelfile *strata_modelfile_new(void) { return calloc(1, sizeof(strata_modelfile)); }

static void param_clear(strata_param *p) {
    for (size_t j = 0; j < p->n_strs; j++) free(p->strs[j]);
    free(p->strs);
    p->strs = NULL;
    p->n_strs = 0;
}

void strata_modelfile_free(strata_modelfile *mf) {
    if (!mf) return;
    free(mf->from);
    free(mf->template_text);
    free(mf->system);
    for (size_t i = 0; i < mf->n_licenses; i++) free(mf->licenses[i]);
    free(mf->licenses);
    for (size_t i = 0; i < mf->n_params; i++) param_clear(&mf->params[i]);
    free(mf->params);
    for (size_t i = 0; i < mf->n_messages; i++) {
        free(mf->messages[i].role);
        free(mf->messages[i].content);
    }
    free(mf->messages);
    free(mf);
}

strata_status strata_modelfile_set_string(char **field, const char *value) {
    char *copy = NULL;
    if (value && !(copy = strdup(value))) return strata_fail(STRATA_ERR_NOMEM, "out of memory");
    free(*field);
    *field = copy;
    return STRATA_OK;
}

strata_status strata_modelfile_add_license(strata_modelfile *mf, const char *text) {
    char **grown = realloc(mf->licenses, (mf->n_licenses + 1) * sizeof *grown);
    if (!grown) return strata_fail(STRATA_ERR_NOMEM, "out of memory");
    mf->licenses = grown;
    if (!(grown[mf->n_licenses] = strdup(text))) return strata_fail(STRATA_ERR_NOMEM, "out of memory");
    mf->n_licenses++;
    return STRATA_OK;
}

static bool valid_role(const char *role) {
    return strcmp(role, "system") == 0 || strcmp(role, "user") == 0 || strcmp(role, "assistant") == 0;
}

strata_status strata_modelfile_add_message(strata_modelfile *mf, const char *role, const char *content) {
    if (!valid_role(role))
        return strata_fail(STRATA_ERR_INVALID, "message role must be one of system, user or assistant, not '%s'", role);
    strata_mf_message *grown = realloc(mf->messages, (mf->n_messages + 1) * sizeof *grown);
    if (!grown) return strata_fail(STRATA_ERR_NOMEM, "out of memory");
    mf->messages = grown;
    strata_mf_message *m = &grown[mf->n_messages];
    m->role = strdup(role);
    m->content = strdup(content);
    if (!m->role || !m->content) {
        free(m->role);
        free(m->content);
        return strata_fail(STRATA_ERR_NOMEM, "out of memory");
    }
    mf->n_messages++;
    return STRATA_OK;
}

const strata_param *strata_modelfile_get_param(const strata_modelfile *mf, const char *name) {
    for (size_t i = 0; i < mf->n_params; i++)
        if (strcmp(mf->params[i].name, name) == 0) return &mf->params[i];
    return NULL;
}

void strata_modelfile_unset_param(strata_modelfile *mf, const char *name) {
    for (size_t i = 0; i < mf->n_params; i++) {
        if (strcmp(mf->params[i].name, name) != 0) continue;
        param_clear(&mf->params[i]);
        memmove(&mf->params[i], &mf->params[i + 1], (mf->n_params - i - 1) * sizeof mf->params[0]);
        mf->n_params--;
        return;
    }
}

/* The entry for table index ti, created (empty) if absent. */
static strata_param *param_slot(strata_modelfile *mf, int ti) {
    for (size_t i = 0; i < mf->n_params; i++)
        if (mf->params[i].name == param_table[ti].name) return &mf->params[i];
    strata_param *grown = realloc(mf->params, (mf->n_params + 1) * sizeof *grown);
    if (!grown) return NULL;
    mf->params = grown;
    strata_param *p = &grown[mf->n_params++];
    memset(p, 0, sizeof *p);
    p->name = param_table[ti].name;
    p->type = param_table[ti].type;
    return p;
}

static strata_status param_add_string(strata_param *p, const char *s) {
    char **grown = realloc(p->strs, (p->n_strs + 1) * sizeof *grown);
    if (!grown) return strata_fail(STRATA_ERR_NOMEM, "out of memory");
    p->strs = grown;
    if (!(grown[p->n_strs] = strdup(s))) return strata_fail(STRATA_ERR_NOMEM, "out of memory");
    p->n_strs++;
    return STRATA_OK;
}

/* Integers are limited to +-2^53: parameters travel as JSON numbers, which most clients
 * (and cJSON) hold as doubles, so a larger value would not come back the same. */
#define MAX_PARAM_INT 9007199254740992LL

static bool parse_int(const char *s, int64_t *out) {
    if (!*s || isspace((unsigned char)*s)) return false;
    errno = 0;
    char *end;
    long long v = strtoll(s, &end, 10);
    if (errno || *end || v > MAX_PARAM_INT || v < -MAX_PARAM_INT) return false;
    *out = v;
    return true;
}

static bool parse_float(const char *s, double *out) {
    if (!*s || isspace((unsigned char)*s)) return false;
    /* strtod also takes hex floats, "inf" and "nan": accept only decimal notation. */
    for (const char *c = s; *c; c++)
        if (!(isdigit((unsigned char)*c) || *c == '.' || *c == '-' || *c == '+' || *c == 'e' || *c == 'E'))
            return false;
    errno = 0;
    char *end;
    double v = strtod(s, &end);
    if (errno || *end || !isfinite(v)) return false;
    *out = v;
    return true;
}

strata_status strata_modelfile_set_param(strata_modelfile *mf, const char *name, const char *value) {
    int ti = param_index(name);
    if (ti < 0) return strata_fail(STRATA_ERR_INVALID, "unknown parameter '%s'", name);
    int64_t iv = 0;
    double fv = 0;
    switch (param_table[ti].type) {
    case STRATA_PARAM_INT:
        if (!parse_int(value, &iv))
            return strata_fail(STRATA_ERR_INVALID, "parameter %s needs an integer (at most 2^53 in size), not '%s'", name,
                               value);
        break;
    case STRATA_PARAM_FLOAT:
        if (!parse_float(value, &fv))
            return strata_fail(STRATA_ERR_INVALID, "parameter %s needs a number, not '%s'", name, value);
        break;
    case STRATA_PARAM_STRINGS:
        if (!*value) return strata_fail(STRATA_ERR_INVALID, "parameter %s needs a non-empty string", name);
        break;
    }
    strata_param *p = param_slot(mf, ti);
    if (!p) return strata_fail(STRATA_ERR_NOMEM, "out of memory");
    if (p->type == STRATA_PARAM_STRINGS) return param_add_string(p, value);
    p->i = iv;
    p->f = fv;
    return STRATA_OK;
}

/* ---- lexical scanning ----------------------------------------------------------------- */

typedef struct {
    const char *s;
    size_t len, pos;
    int line;
} scanner;

static bool at_eol(const scanner *sc) {
    return sc->pos >= sc->len || sc->s[sc->pos] == '\n' || sc->s[sc->pos] == '\r';
}

/* Consumes one line terminator (\n, \r\n or \r) if present. */
static void eat_eol(scanner *sc) {
    if (sc->pos < sc->len && sc->s[sc->pos] == '\r') {
        sc->pos++;
        if (sc->pos < sc->len && sc->s[sc->pos] == '\n') sc->pos++;
        sc->line++;
    } else if (sc->pos < sc->len && sc->s[sc->pos] == '\n') {
        sc->pos++;
        sc->line++;
    }
}

static bool is_blank(char c) { return c == ' ' || c == '\t'; }
/* What Go's strings.TrimSpace removes (ASCII part). */
static bool is_trim(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'; }

static void skip_blanks(scanner *sc) {
    while (sc->pos < sc->len && is_blank(sc->s[sc->pos])) sc->pos++;
}

/* Is raw[0..n) (trimmed) a complete value: bare, or quoted with its closing quotes? On
 * success returns true and sets [*b, *e) to the content. */
static bool value_complete(const char *raw, size_t n, size_t *b, size_t *e) {
    size_t lo = 0, hi = n;
    while (lo < hi && is_trim(raw[lo])) lo++;
    while (hi > lo && is_trim(raw[hi - 1])) hi--;
    size_t m = hi - lo;
    if (m >= 3 && memcmp(raw + lo, "\"\"\"", 3) == 0) {
        if (m >= 6 && memcmp(raw + hi - 3, "\"\"\"", 3) == 0) {
            *b = lo + 3;
            *e = hi - 3;
            return true;
        }
        return false;
    }
    if (m >= 1 && raw[lo] == '"') {
        if (m >= 2 && raw[hi - 1] == '"') {
            *b = lo + 1;
            *e = hi - 1;
            return true;
        }
        return false;
    }
    *b = lo;
    *e = hi;
    return true;
}

/* Reads a value starting at sc->pos (possibly spanning lines) and returns a malloc'd
 * copy of its content; the scanner ends at the end of the value's last line. */
static strata_status scan_value(scanner *sc, int start_line, char **out) {
    size_t start = sc->pos, b, e;
    for (;;) {
        while (!at_eol(sc)) sc->pos++;
        if (value_complete(sc->s + start, sc->pos - start, &b, &e)) break;
        if (sc->pos >= sc->len)
            return strata_fail(STRATA_ERR_FORMAT, "Modelfile line %d: unterminated quoted string (end of file reached)",
                               start_line);
        eat_eol(sc);
    }
    b += start;
    e += start;
    char *v = malloc(e - b + 1);
    if (!v) return strata_fail(STRATA_ERR_NOMEM, "out of memory");
    memcpy(v, sc->s + b, e - b);
    v[e - b] = 0;
    *out = v;
    return STRATA_OK;
}

/* Reads a word of characters accepted by ok(); returns its length. */
static size_t scan_word(scanner *sc, bool (*ok)(char), char *buf, size_t cap) {
    size_t n = 0;
    while (sc->pos < sc->len && ok(sc->s[sc->pos])) {
        if (n + 1 < cap) buf[n] = sc->s[sc->pos];
        n++;
        sc->pos++;
    }
    buf[n < cap ? n : cap - 1] = 0;
    return n;
}

static bool is_alpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
static bool is_param_char(char c) { return is_alpha(c) || (c >= '0' && c <= '9') || c == '_'; }

#define INSTRUCTIONS "FROM, PARAMETER, TEMPLATE, SYSTEM, MESSAGE or LICENSE"

static bool known_instruction(const char *w) {
    static const char *const known[] = {"from",    "parameter", "template", "system", "message", "license",
                                        "adapter", "draft",     "renderer", "parser", "requires"};
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
        if (strcmp(w, known[i]) == 0) return true;
    return false;
}

strata_status strata_modelfile_parse(const char *text, size_t len, strata_modelfile **out) {
    *out = NULL;
    if (memchr(text, 0, len)) {
        int line = 1;
        for (const char *c = text; *c; c++) line += *c == '\n';
        return strata_fail(STRATA_ERR_FORMAT, "Modelfile line %d: NUL byte in text", line);
    }
    scanner sc = {text, len, 0, 1};
    if (len >= 3 && memcmp(text, "\xEF\xBB\xBF", 3) == 0) sc.pos = 3; /* UTF-8 byte order mark */
    strata_modelfile *mf = strata_modelfile_new();
    if (!mf) return strata_fail(STRATA_ERR_NOMEM, "out of memory");
    strata_status st = STRATA_OK;
    int from_line = 0;
    char *value = NULL;

    while (st == STRATA_OK) {
        while (sc.pos < sc.len && (is_blank(sc.s[sc.pos]) || sc.s[sc.pos] == '\n' || sc.s[sc.pos] == '\r')) {
            if (is_blank(sc.s[sc.pos])) sc.pos++;
            else eat_eol(&sc);
        }
        if (sc.pos >= sc.len) break;
        int line = sc.line;
        if (sc.s[sc.pos] == '#') {
            while (!at_eol(&sc)) sc.pos++;
            continue;
        }
        char word[16];
        size_t wn = scan_word(&sc, is_alpha, word, sizeof word);
        for (char *c = word; *c; c++) *c = (char)tolower((unsigned char)*c);
        bool glued = sc.pos < sc.len && !is_blank(sc.s[sc.pos]) && !at_eol(&sc);
        if (wn == 0 || wn >= sizeof word || glued || !known_instruction(word)) {
            size_t b = sc.pos - wn, e = sc.pos;
            while (e < sc.len && !is_blank(sc.s[e]) && sc.s[e] != '\n' && sc.s[e] != '\r' && e - b < 40) e++;
            st = strata_fail(STRATA_ERR_FORMAT, "Modelfile line %d: unknown instruction '%.*s' (expected " INSTRUCTIONS ")",
                             line, (int)(e - b), sc.s + b);
            break;
        }
        if (sc.pos >= sc.len || !is_blank(sc.s[sc.pos])) {
            for (char *c = word; *c; c++) *c = (char)toupper((unsigned char)*c);
            st = strata_fail(STRATA_ERR_FORMAT, "Modelfile line %d: %s needs a value after a space", line, word);
            break;
        }
        skip_blanks(&sc);

        if (strcmp(word, "parameter") == 0) {
            char name[64];
            size_t nn = scan_word(&sc, is_param_char, name, sizeof name);
            if (nn == 0 || nn >= sizeof name || sc.pos >= sc.len || !is_blank(sc.s[sc.pos])) {
                st = strata_fail(STRATA_ERR_FORMAT, "Modelfile line %d: PARAMETER needs a name and a value", line);
                break;
            }
            skip_blanks(&sc);
            if ((st = scan_value(&sc, line, &value)) != STRATA_OK) break;
            for (char *c = name; *c; c++) *c = (char)tolower((unsigned char)*c);
            if (strata_modelfile_set_param(mf, name, value) != STRATA_OK) {
                char msg[512];
                snprintf(msg, sizeof msg, "%s", strata_last_error());
                st = strata_fail(STRATA_ERR_FORMAT, "Modelfile line %d: %s", line, msg);
            }
        } else if (strcmp(word, "message") == 0) {
            char role[16];
            size_t rn = scan_word(&sc, is_alpha, role, sizeof role);
            if (rn == 0 || rn >= sizeof role || sc.pos >= sc.len || !is_blank(sc.s[sc.pos])) {
                st = strata_fail(STRATA_ERR_FORMAT, "Modelfile line %d: MESSAGE needs a role (system, user or assistant) and content",
                                 line);
                break;
            }
            if (!valid_role(role)) {
                st = strata_fail(STRATA_ERR_FORMAT,
                                 "Modelfile line %d: message role must be one of system, user or assistant, not '%s'", line, role);
                break;
            }
            skip_blanks(&sc);
            if ((st = scan_value(&sc, line, &value)) != STRATA_OK) break;
            st = strata_modelfile_add_message(mf, role, value);
        } else if (strcmp(word, "from") == 0 || strcmp(word, "template") == 0 || strcmp(word, "system") == 0 ||
                   strcmp(word, "license") == 0) {
            if ((st = scan_value(&sc, line, &value)) != STRATA_OK) break;
            if (word[0] == 'f') {
                if (from_line) {
                    st = strata_fail(STRATA_ERR_FORMAT, "Modelfile line %d: a second FROM (the first is on line %d); only one is supported",
                                     line, from_line);
                    break;
                }
                if (!*value) {
                    st = strata_fail(STRATA_ERR_FORMAT, "Modelfile line %d: FROM needs a model name or a .gguf path", line);
                    break;
                }
                from_line = line;
                mf->from = value;
                value = NULL;
            } else if (word[0] == 't') {
                free(mf->template_text);
                mf->template_text = value;
                value = NULL;
            } else if (word[0] == 's') {
                free(mf->system);
                mf->system = value;
                value = NULL;
            } else {
                st = strata_modelfile_add_license(mf, value);
            }
        } else { /* adapter, draft, renderer, parser, requires */
            for (char *c = word; *c; c++) *c = (char)toupper((unsigned char)*c);
            st = strata_fail(STRATA_ERR_UNSUPPORTED, "Modelfile line %d: %s is not supported by strata", line, word);
        }
        free(value);
        value = NULL;
    }
    free(value);
    if (st == STRATA_OK && !mf->from) st = strata_fail(STRATA_ERR_FORMAT, "Modelfile: no FROM line");
    if (st != STRATA_OK) {
        strata_modelfile_free(mf);
        return st;
    }
    *out = mf;
    return STRATA_OK;
}

/* ---- serializer ----------------------------------------------------------------------- */

typedef struct {
    char *buf;
    size_t len, cap;
    bool oom;
} sbuf;

static void sb_putn(sbuf *b, const char *s, size_t n) {
    if (b->oom) return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n + 1) cap *= 2;
        char *g = realloc(b->buf, cap);
        if (!g) {
            b->oom = true;
            return;
        }
        b->buf = g;
        b->cap = cap;
    }
    memcpy(b->buf + b->len, s, n);
    b->len += n;
    b->buf[b->len] = 0;
}
static void sb_puts(sbuf *b, const char *s) { sb_putn(b, s, strlen(s)); }

/* True when `quoted` scans back (as a value) to exactly v. */
static bool roundtrips(const char *quoted, const char *v) {
    scanner sc = {quoted, strlen(quoted), 0, 1};
    char *back = NULL;
    if (scan_value(&sc, 1, &back) != STRATA_OK) return false;
    bool ok = sc.pos == sc.len && strcmp(back, v) == 0;
    free(back);
    return ok;
}

/* Appends v in the first form that reads back unchanged: bare, "v", """v""". */
static strata_status put_value(sbuf *b, const char *v) {
    size_t n = strlen(v);
    char *cand = malloc(n + 7);
    if (!cand) return strata_fail(STRATA_ERR_NOMEM, "out of memory");
    const char *forms[3][2] = {{"", ""}, {"\"", "\""}, {"\"\"\"", "\"\"\""}};
    for (int f = 0; f < 3; f++) {
        snprintf(cand, n + 7, "%s%s%s", forms[f][0], v, forms[f][1]);
        if (roundtrips(cand, v)) {
            sb_puts(b, cand);
            free(cand);
            return STRATA_OK;
        }
    }
    free(cand);
    return strata_fail(STRATA_ERR_UNSUPPORTED, "a value cannot be written as a Modelfile string (a line inside it ends with quotes)");
}

static void format_number(const strata_param *p, char *buf, size_t cap) {
    if (p->type == STRATA_PARAM_INT) {
        snprintf(buf, cap, "%lld", (long long)p->i);
        return;
    }
    /* Shortest decimal that reads back to the same double. */
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(buf, cap, "%.*g", prec, p->f);
        if (strtod(buf, NULL) == p->f) return;
    }
}

strata_status strata_modelfile_format(const strata_modelfile *mf, char **out) {
    sbuf b = {0};
    strata_status st = STRATA_OK;
    if (mf->from) {
        sb_puts(&b, "FROM ");
        st = put_value(&b, mf->from);
        sb_puts(&b, "\n");
    }
    if (st == STRATA_OK && mf->template_text) {
        sb_puts(&b, "TEMPLATE ");
        st = put_value(&b, mf->template_text);
        sb_puts(&b, "\n");
    }
    if (st == STRATA_OK && mf->system) {
        sb_puts(&b, "SYSTEM ");
        st = put_value(&b, mf->system);
        sb_puts(&b, "\n");
    }
    for (size_t i = 0; st == STRATA_OK && i < mf->n_params; i++) {
        const strata_param *p = &mf->params[i];
        if (p->type == STRATA_PARAM_STRINGS) {
            for (size_t j = 0; st == STRATA_OK && j < p->n_strs; j++) {
                sb_puts(&b, "PARAMETER ");
                sb_puts(&b, p->name);
                sb_puts(&b, " ");
                st = put_value(&b, p->strs[j]);
                sb_puts(&b, "\n");
            }
        } else {
            char num[64];
            format_number(p, num, sizeof num);
            sb_puts(&b, "PARAMETER ");
            sb_puts(&b, p->name);
            sb_puts(&b, " ");
            sb_puts(&b, num);
            sb_puts(&b, "\n");
        }
    }
    for (size_t i = 0; st == STRATA_OK && i < mf->n_messages; i++) {
        sb_puts(&b, "MESSAGE ");
        sb_puts(&b, mf->messages[i].role);
        sb_puts(&b, " ");
        st = put_value(&b, mf->messages[i].content);
        sb_puts(&b, "\n");
    }
    for (size_t i = 0; st == STRATA_OK && i < mf->n_licenses; i++) {
        sb_puts(&b, "LICENSE ");
        st = put_value(&b, mf->licenses[i]);
        sb_puts(&b, "\n");
    }
    sb_puts(&b, "");
    if (st == STRATA_OK && b.oom) st = strata_fail(STRATA_ERR_NOMEM, "out of memory");
    if (st != STRATA_OK) {
        free(b.buf);
        return st;
    }
    *out = b.buf;
    return STRATA_OK;
}

/* ---- JSON forms (the store's params and messages layers) ------------------------------ */

static int cmp_param_name(const void *a, const void *b) {
    return strcmp((*(const strata_param *const *)a)->name, (*(const strata_param *const *)b)->name);
}

static strata_status json_print(cJSON *root, char **out) {
    char *text = root ? cJSON_PrintUnformatted(root) : NULL;
    cJSON_Delete(root);
    if (!text) return strata_fail(STRATA_ERR_NOMEM, "out of memory");
    /* cJSON allocates with malloc by default; hand back a plain malloc'd copy regardless. */
    char *copy = strdup(text);
    cJSON_free(text);
    if (!copy) return strata_fail(STRATA_ERR_NOMEM, "out of memory");
    *out = copy;
    return STRATA_OK;
}

strata_status strata_modelfile_params_to_json(const strata_modelfile *mf, char **out) {
    cJSON *root = cJSON_CreateObject();
    const strata_param **sorted = malloc((mf->n_params + 1) * sizeof *sorted);
    if (!root || !sorted) {
        cJSON_Delete(root);
        free(sorted);
        return strata_fail(STRATA_ERR_NOMEM, "out of memory");
    }
    for (size_t i = 0; i < mf->n_params; i++) sorted[i] = &mf->params[i];
    qsort(sorted, mf->n_params, sizeof *sorted, cmp_param_name);
    bool ok = true;
    for (size_t i = 0; ok && i < mf->n_params; i++) {
        const strata_param *p = sorted[i];
        cJSON *v = NULL;
        if (p->type == STRATA_PARAM_INT) {
            /* cJSON keeps numbers as doubles: write integers exactly through a raw literal. */
            char num[32];
            snprintf(num, sizeof num, "%lld", (long long)p->i);
            v = cJSON_CreateRaw(num);
        } else if (p->type == STRATA_PARAM_FLOAT) {
            char num[64];
            format_number(p, num, sizeof num);
            v = cJSON_CreateRaw(num);
        } else {
            v = cJSON_CreateArray();
            for (size_t j = 0; v && j < p->n_strs; j++) {
                cJSON *s = cJSON_CreateString(p->strs[j]);
                if (!s || !cJSON_AddItemToArray(v, s)) ok = false;
            }
        }
        if (!v || !cJSON_AddItemToObject(root, p->name, v)) ok = false;
    }
    free(sorted);
    if (!ok) {
        cJSON_Delete(root);
        return strata_fail(STRATA_ERR_NOMEM, "out of memory");
    }
    return json_print(root, out);
}

static strata_status params_from_json(strata_modelfile *mf, const char *json, size_t len, bool skip_unknown) {
    cJSON *root = cJSON_ParseWithLength(json, len);
    if (!root || !cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return strata_fail(STRATA_ERR_FORMAT, "parameters: not a JSON object");
    }
    strata_status st = STRATA_OK;
    for (cJSON *it = root->child; st == STRATA_OK && it; it = it->next) {
        strata_param_type type = STRATA_PARAM_INT;
        if (skip_unknown && param_index(it->string) < 0) continue;
        if ((st = strata_param_type_of(it->string, &type)) != STRATA_OK) break;
        if (type == STRATA_PARAM_STRINGS) {
            if (cJSON_IsString(it)) {
                st = strata_modelfile_set_param(mf, it->string, it->valuestring);
            } else if (cJSON_IsArray(it)) {
                for (cJSON *s = it->child; st == STRATA_OK && s; s = s->next) {
                    if (!cJSON_IsString(s)) st = strata_fail(STRATA_ERR_FORMAT, "parameter %s: expected strings", it->string);
                    else st = strata_modelfile_set_param(mf, it->string, s->valuestring);
                }
            } else {
                st = strata_fail(STRATA_ERR_FORMAT, "parameter %s: expected a string or an array of strings", it->string);
            }
            continue;
        }
        if (!cJSON_IsNumber(it)) {
            st = strata_fail(STRATA_ERR_FORMAT, "parameter %s: expected a number", it->string);
            break;
        }
        char num[64];
        double d = it->valuedouble;
        if (type == STRATA_PARAM_INT) {
            if (d != floor(d) || fabs(d) > (double)MAX_PARAM_INT) {
                st = strata_fail(STRATA_ERR_FORMAT, "parameter %s: expected an integer", it->string);
                break;
            }
            snprintf(num, sizeof num, "%.0f", d);
        } else {
            snprintf(num, sizeof num, "%.17g", d);
        }
        st = strata_modelfile_set_param(mf, it->string, num);
    }
    cJSON_Delete(root);
    return st;
}

strata_status strata_modelfile_params_from_json(strata_modelfile *mf, const char *json, size_t len) {
    return params_from_json(mf, json, len, false);
}

strata_status strata_modelfile_params_from_json_lenient(strata_modelfile *mf, const char *json, size_t len) {
    return params_from_json(mf, json, len, true);
}

strata_status strata_modelfile_messages_to_json(const strata_modelfile *mf, char **out) {
    cJSON *root = cJSON_CreateArray();
    bool ok = root != NULL;
    for (size_t i = 0; ok && i < mf->n_messages; i++) {
        cJSON *m = cJSON_CreateObject();
        ok = m && cJSON_AddItemToArray(root, m) && cJSON_AddStringToObject(m, "role", mf->messages[i].role) &&
             cJSON_AddStringToObject(m, "content", mf->messages[i].content);
    }
    if (!ok) {
        cJSON_Delete(root);
        return strata_fail(STRATA_ERR_NOMEM, "out of memory");
    }
    return json_print(root, out);
}

strata_status strata_modelfile_messages_from_json(strata_modelfile *mf, const char *json, size_t len) {
    cJSON *root = cJSON_ParseWithLength(json, len);
    if (!root || !cJSON_IsArray(root)) {
        cJSON_Delete(root);
        return strata_fail(STRATA_ERR_FORMAT, "messages: not a JSON array");
    }
    strata_status st = STRATA_OK;
    for (cJSON *m = root->child; st == STRATA_OK && m; m = m->next) {
        cJSON *role = cJSON_GetObjectItemCaseSensitive(m, "role");
        cJSON *content = cJSON_GetObjectItemCaseSensitive(m, "content");
        if (!cJSON_IsString(role) || !cJSON_IsString(content))
            st = strata_fail(STRATA_ERR_FORMAT, "messages: each needs string \"role\" and \"content\"");
        else
            st = strata_modelfile_add_message(mf, role->valuestring, content->valuestring);
    }
    cJSON_Delete(root);
    return st;
}
