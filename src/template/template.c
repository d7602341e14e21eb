/* A Go text/template subset for chat templates: lexer, parser, evaluator. See template.h
 * for the language and the data model. */
#include "template/template.h"

#include <cJSON.h>

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MAX_DEPTH 64                 /* nesting of control structures and parentheses */
#define MAX_STEPS 1000000ull         /* evaluation steps per render */
#define MAX_OUTPUT (16u << 20)       /* bytes per render */

/* ---- arena ---------------------------------------------------------------------------- */

typedef struct chunk {
    struct chunk *next;
    size_t used, cap;
    max_align_t data[];
} chunk;

typedef struct {
    chunk *head;
    bool oom;
} arena;

static void *arena_alloc(arena *a, size_t n) {
    n = (n + sizeof(max_align_t) - 1) / sizeof(max_align_t) * sizeof(max_align_t);
    if (!a->head || a->head->cap - a->head->used < n) {
        size_t cap = n > 16384 ? n : 16384;
        chunk *c = malloc(sizeof(chunk) + cap);
        if (!c) {
            a->oom = true;
            return NULL;
        }
        c->next = a->head;
        c->used = 0;
        c->cap = cap;
        a->head = c;
    }
    void *p = (char *)a->head->data + a->head->used;
    a->head->used += n;
    memset(p, 0, n);
    return p;
}

static void arena_free(arena *a) {
    while (a->head) {
        chunk *n = a->head->next;
        free(a->head);
        a->head = n;
    }
}

static char *arena_strndup(arena *a, const char *s, size_t n) {
    char *p = arena_alloc(a, n + 1);
    if (p) {
        memcpy(p, s, n);
        p[n] = 0;
    }
    return p;
}

/* Appends one pointer to a growable array kept in the arena. */
static bool arena_push(arena *a, void ***items, int *n, int *cap, void *item) {
    if (*n == *cap) {
        int nc = *cap ? *cap * 2 : 4;
        void **g = arena_alloc(a, (size_t)nc * sizeof *g);
        if (!g) return false;
        if (*n) memcpy(g, *items, (size_t)*n * sizeof *g);
        *items = g;
        *cap = nc;
    }
    (*items)[(*n)++] = item;
    return true;
}

/* ---- tree ----------------------------------------------------------------------------- */

typedef enum { OP_DOT, OP_FIELD, OP_VAR, OP_STRING, OP_INT, OP_FLOAT, OP_BOOL, OP_NIL, OP_FUNC, OP_PIPE } op_kind;

typedef enum {
    F_AND, F_OR, F_NOT, F_EQ, F_NE, F_LT, F_LE, F_GT, F_GE, F_LEN, F_INDEX, F_SLICE,
    F_PRINT, F_PRINTLN, F_PRINTF, F_JSON
} func_id;

static const char *const func_names[] = {"and", "or",  "not", "eq",    "ne",    "lt",      "le",     "gt",
                                         "ge",  "len", "index", "slice", "print", "println", "printf", "json"};
/* Go functions we do not provide, named in the parse error. */
static const char *const unsupported_funcs[] = {"html", "js", "urlquery", "call"};

typedef struct pipeline pipeline;

typedef struct {
    op_kind kind;
    int line, col;
    const char *name;    /* OP_VAR: "$" or "$x" */
    const char **fields; /* chain after the operand: .A.B */
    int n_fields, cap_fields;
    const char *str;     /* OP_STRING */
    size_t str_len;
    int64_t i;
    double f;
    bool b;
    func_id func;
    pipeline *pipe;      /* OP_PIPE */
} operand;

typedef struct {
    operand **args;
    int n_args, cap_args;
    int line, col;
} command;

struct pipeline {
    const char *decl[2];
    int n_decl;
    bool assign; /* '=' rather than ':=' */
    command **cmds;
    int n_cmds, cap_cmds;
    int line, col;
};

typedef enum { N_TEXT, N_ACTION, N_IF, N_WITH, N_RANGE, N_BREAK, N_CONTINUE } node_kind;

typedef struct node node;
typedef struct {
    node **items;
    int n, cap;
} node_list;

struct node {
    node_kind kind;
    int id; /* document order, for Ollama's cut after {{ .Response }} */
    int line, col;
    const char *text;
    size_t len;
    pipeline *pipe;
    node_list list, else_list;
};

struct strata_template {
    arena a;
    char *source;
    node_list root;
    bool uses_messages, uses_response;
    const char **names; /* every .Field name the template writes (once each) */
    int n_names, cap_names;
    int cut_id; /* id of the first action naming .Response, or -1 */
};

/* ---- lexer ---------------------------------------------------------------------------- */

typedef enum {
    T_IDENT, T_FIELD, T_DOT, T_VAR, T_STRING, T_NUMBER, T_CHAR, T_LPAREN, T_RPAREN, T_PIPE, T_DECLARE, T_ASSIGN,
    T_COMMA, T_END
} tok_kind;

typedef struct {
    tok_kind kind;
    const char *s; /* text in the source (T_FIELD without its '.', T_VAR with its '$') */
    size_t n;
    bool space_before;
    int line, col;
} token;

typedef struct {
    const char *src;
    size_t len, pos;
    arena *a;
    strata_template *t;
    bool failed;
    /* tokens of the action being parsed */
    token *toks;
    int n_toks, cap_toks;
    /* variables in scope (parse-time check, as Go does) */
    const char **vars;
    int n_vars, cap_vars;
    int depth, range_depth;
    int next_id;
    bool trim_next_text; /* the previous action ended with -}} */
    size_t lc_pos;       /* line/column cache: positions are mostly asked in order */
    int lc_line, lc_col;
} parser;

static void line_col(parser *p, size_t pos, int *line, int *col) {
    if (pos < p->lc_pos || p->lc_line == 0) {
        p->lc_pos = 0;
        p->lc_line = p->lc_col = 1;
    }
    int l = p->lc_line, c = p->lc_col;
    for (size_t i = p->lc_pos; i < pos && i < p->len; i++) {
        if (p->src[i] == '\n') {
            l++;
            c = 1;
        } else {
            c++;
        }
    }
    p->lc_pos = pos;
    p->lc_line = l;
    p->lc_col = c;
    *line = l;
    *col = c;
}

static bool perr_v(parser *p, int line, int col, const char *fmt, va_list ap) {
    if (p->failed) return false;
    p->failed = true;
    char msg[384];
    vsnprintf(msg, sizeof msg, fmt, ap);
    strata_fail(STRATA_ERR_FORMAT, "template:%d:%d: %s", line, col, msg);
    return false;
}

static bool perr_at(parser *p, int line, int col, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static bool perr_at(parser *p, int line, int col, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    perr_v(p, line, col, fmt, ap);
    va_end(ap);
    return false;
}

static bool perr_pos(parser *p, size_t pos, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static bool perr_pos(parser *p, size_t pos, const char *fmt, ...) {
    int line, col;
    line_col(p, pos, &line, &col);
    va_list ap;
    va_start(ap, fmt);
    perr_v(p, line, col, fmt, ap);
    va_end(ap);
    return false;
}

static bool is_space(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }
static bool is_ident_start(char c) { return isalpha((unsigned char)c) || c == '_'; }
static bool is_ident_char(char c) { return isalnum((unsigned char)c) || c == '_'; }

static bool push_tok(parser *p, tok_kind k, size_t start, size_t end, bool space) {
    if (p->n_toks == p->cap_toks) {
        int nc = p->cap_toks ? p->cap_toks * 2 : 32;
        token *g = realloc(p->toks, (size_t)nc * sizeof *g);
        if (!g) return perr_pos(p, start, "out of memory");
        p->toks = g;
        p->cap_toks = nc;
    }
    token *t = &p->toks[p->n_toks++];
    t->kind = k;
    t->s = p->src + start;
    t->n = end - start;
    t->space_before = space;
    line_col(p, start, &t->line, &t->col);
    return true;
}

/* Tokenizes one action starting at p->pos (just after "{{" and an optional "- "). On
 * success p->pos is after "}}" and *trim_right tells whether it was " -}}". */
static bool lex_action(parser *p, size_t open_pos, bool *trim_right) {
    p->n_toks = 0;
    bool space = true;
    const char *s = p->src;
    size_t n = p->len;
    for (;;) {
        size_t i = p->pos;
        if (i >= n) return perr_pos(p, open_pos, "unclosed action");
        char c = s[i];
        if (is_space(c)) {
            /* " -}}" closes with right trim. */
            size_t j = i;
            while (j < n && is_space(s[j])) j++;
            if (j + 2 < n && s[j] == '-' && s[j + 1] == '}' && s[j + 2] == '}') {
                p->pos = j + 3;
                *trim_right = true;
                return push_tok(p, T_END, j, j, true);
            }
            p->pos = j;
            space = true;
            continue;
        }
        if (c == '}' && i + 1 < n && s[i + 1] == '}') {
            p->pos = i + 2;
            *trim_right = false;
            return push_tok(p, T_END, i, i, space);
        }
        size_t start = i;
        tok_kind k;
        if (c == '"' || c == '`' || c == '\'') {
            char q = c;
            i++;
            while (i < n && s[i] != q) {
                if (q != '`' && s[i] == '\\') i++;
                else if (q != '`' && s[i] == '\n') return perr_pos(p, start, "unterminated quoted string");
                i++;
            }
            if (i >= n) return perr_pos(p, start, q == '`' ? "unterminated raw quoted string" : "unterminated quoted string");
            i++;
            k = q == '\'' ? T_CHAR : T_STRING;
        } else if (c == '.' && i + 1 < n && is_ident_start(s[i + 1])) {
            i++;
            start = i;
            while (i < n && is_ident_char(s[i])) i++;
            k = T_FIELD;
        } else if (c == '.' && !(i + 1 < n && isdigit((unsigned char)s[i + 1]))) {
            i++;
            k = T_DOT;
        } else if (c == '$') {
            i++;
            while (i < n && is_ident_char(s[i])) i++;
            k = T_VAR;
        } else if (isdigit((unsigned char)c) || ((c == '-' || c == '+' || c == '.') && i + 1 < n &&
                                                 (isdigit((unsigned char)s[i + 1]) || s[i + 1] == '.'))) {
            i++;
            while (i < n && (isalnum((unsigned char)s[i]) || s[i] == '.' || s[i] == '_' ||
                             ((s[i] == '-' || s[i] == '+') && (s[i - 1] == 'e' || s[i - 1] == 'E' || s[i - 1] == 'p' || s[i - 1] == 'P'))))
                i++;
            k = T_NUMBER;
        } else if (is_ident_start(c)) {
            while (i < n && is_ident_char(s[i])) i++;
            k = T_IDENT;
        } else if (c == '(') {
            i++;
            k = T_LPAREN;
        } else if (c == ')') {
            i++;
            k = T_RPAREN;
        } else if (c == '|') {
            i++;
            k = T_PIPE;
        } else if (c == ',') {
            i++;
            k = T_COMMA;
        } else if (c == ':' && i + 1 < n && s[i + 1] == '=') {
            i += 2;
            k = T_DECLARE;
        } else if (c == '=') {
            i++;
            k = T_ASSIGN;
        } else {
            return perr_pos(p, i, "unexpected character '%c' in action", isprint((unsigned char)c) ? c : '?');
        }
        if (!push_tok(p, k, start, i, space)) return false;
        p->pos = i;
        space = false;
    }
}

/* ---- parser --------------------------------------------------------------------------- */

static bool tok_is(const token *t, const char *word) {
    return t->kind == T_IDENT && t->n == strlen(word) && memcmp(t->s, word, t->n) == 0;
}

static const char *tok_text(parser *p, const token *t) { return arena_strndup(p->a, t->s, t->n); }

static bool var_in_scope(parser *p, const token *t) {
    if (t->n == 1) return true; /* $ is always the data root */
    for (int i = p->n_vars - 1; i >= 0; i--)
        if (strlen(p->vars[i]) == t->n && memcmp(p->vars[i], t->s, t->n) == 0) return true;
    return false;
}

static bool declare_var(parser *p, const char *name) {
    return arena_push(p->a, (void ***)&p->vars, &p->n_vars, &p->cap_vars, (void *)name) ||
           perr_at(p, 0, 0, "out of memory");
}

static void note_name(parser *p, const char *name, size_t n) {
    if (n == 8 && strncasecmp(name, "messages", 8) == 0) p->t->uses_messages = true;
    if (n == 8 && strncasecmp(name, "response", 8) == 0) p->t->uses_response = true;
    strata_template *t = p->t;
    for (int i = 0; i < t->n_names; i++)
        if (strlen(t->names[i]) == n && strncmp(t->names[i], name, n) == 0) return;
    const char *copy = arena_strndup(p->a, name, n);
    if (copy) arena_push(p->a, (void ***)&t->names, &t->n_names, &t->cap_names, (void *)copy);
}

/* Decodes a Go string, raw string or character literal into the arena. */
static bool unquote(parser *p, const token *t, const char **out, size_t *out_len, int64_t *ch) {
    const char *s = t->s;
    size_t n = t->n;
    char *buf = arena_alloc(p->a, n + 1);
    if (!buf) return perr_at(p, t->line, t->col, "out of memory");
    size_t k = 0;
    if (s[0] == '`') {
        for (size_t i = 1; i + 1 < n; i++)
            if (s[i] != '\r') buf[k++] = s[i]; /* Go drops CR from raw strings */
    } else {
        for (size_t i = 1; i + 1 < n; i++) {
            if (s[i] != '\\') {
                buf[k++] = s[i];
                continue;
            }
            if (++i + 1 > n - 1) return perr_at(p, t->line, t->col, "bad escape in string");
            char e = s[i];
            uint32_t cp = 0;
            int digits = 0, base = 16;
            switch (e) {
            case 'n': buf[k++] = '\n'; continue;
            case 't': buf[k++] = '\t'; continue;
            case 'r': buf[k++] = '\r'; continue;
            case 'a': buf[k++] = '\a'; continue;
            case 'b': buf[k++] = '\b'; continue;
            case 'f': buf[k++] = '\f'; continue;
            case 'v': buf[k++] = '\v'; continue;
            case '\\': buf[k++] = '\\'; continue;
            case '"': buf[k++] = '"'; continue;
            case '\'': buf[k++] = '\''; continue;
            case 'x': digits = 2; break;
            case 'u': digits = 4; break;
            case 'U': digits = 8; break;
            default:
                if (e >= '0' && e <= '7') {
                    digits = 3;
                    base = 8;
                    i--;
                    break;
                }
                return perr_at(p, t->line, t->col, "unknown escape sequence \\%c", isprint((unsigned char)e) ? e : '?');
            }
            for (int d = 0; d < digits; d++) {
                if (++i >= n - 1) return perr_at(p, t->line, t->col, "bad escape in string");
                char h = s[i];
                int v = isdigit((unsigned char)h) ? h - '0' : (h >= 'a' && h <= 'f') ? h - 'a' + 10 : (h >= 'A' && h <= 'F') ? h - 'A' + 10 : 99;
                if (v >= base) return perr_at(p, t->line, t->col, "bad escape in string");
                cp = cp * (uint32_t)base + (uint32_t)v;
            }
            if (e == 'x' || base == 8) {
                if (cp > 255) return perr_at(p, t->line, t->col, "bad escape in string");
                buf[k++] = (char)cp;
                continue;
            }
            if (cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return perr_at(p, t->line, t->col, "bad escape in string");
            /* UTF-8 encode */
            if (cp < 0x80) buf[k++] = (char)cp;
            else if (cp < 0x800) {
                buf[k++] = (char)(0xC0 | (cp >> 6));
                buf[k++] = (char)(0x80 | (cp & 0x3F));
            } else if (cp < 0x10000) {
                buf[k++] = (char)(0xE0 | (cp >> 12));
                buf[k++] = (char)(0x80 | ((cp >> 6) & 0x3F));
                buf[k++] = (char)(0x80 | (cp & 0x3F));
            } else {
                buf[k++] = (char)(0xF0 | (cp >> 18));
                buf[k++] = (char)(0x80 | ((cp >> 12) & 0x3F));
                buf[k++] = (char)(0x80 | ((cp >> 6) & 0x3F));
                buf[k++] = (char)(0x80 | (cp & 0x3F));
            }
        }
    }
    buf[k] = 0;
    if (s[0] == '\'') {
        /* A character constant is its code point (one UTF-8 sequence). */
        const unsigned char *u = (const unsigned char *)buf;
        int64_t cp;
        size_t len;
        if (k == 0) return perr_at(p, t->line, t->col, "empty character constant");
        if (u[0] < 0x80) cp = u[0], len = 1;
        else if ((u[0] & 0xE0) == 0xC0 && k >= 2) cp = ((u[0] & 0x1F) << 6) | (u[1] & 0x3F), len = 2;
        else if ((u[0] & 0xF0) == 0xE0 && k >= 3) cp = ((u[0] & 0x0F) << 12) | ((u[1] & 0x3F) << 6) | (u[2] & 0x3F), len = 3;
        else if ((u[0] & 0xF8) == 0xF0 && k >= 4)
            cp = ((int64_t)(u[0] & 0x07) << 18) | ((u[1] & 0x3F) << 12) | ((u[2] & 0x3F) << 6) | (u[3] & 0x3F), len = 4;
        else return perr_at(p, t->line, t->col, "bad character constant");
        if (len != k) return perr_at(p, t->line, t->col, "character constant holds more than one character");
        *ch = cp;
        return true;
    }
    *out = buf;
    *out_len = k;
    return true;
}

static bool parse_number(parser *p, const token *t, operand *op) {
    char buf[64];
    if (t->n >= sizeof buf) return perr_at(p, t->line, t->col, "bad number syntax: %.*s", (int)t->n, t->s);
    size_t k = 0;
    for (size_t i = 0; i < t->n; i++)
        if (t->s[i] != '_') buf[k++] = t->s[i];
    buf[k] = 0;
    char *end;
    errno = 0;
    long long v = strtoll(buf, &end, 0);
    /* strtoll with base 0 reads "010" as octal, as Go does; "0b"/"0o" prefixes are rare. */
    if (*end == 0 && errno == 0 && k > 0) {
        op->kind = OP_INT;
        op->i = v;
        return true;
    }
    errno = 0;
    double d = strtod(buf, &end);
    if (*end == 0 && errno == 0 && k > 0 && isfinite(d)) {
        op->kind = OP_FLOAT;
        op->f = d;
        return true;
    }
    return perr_at(p, t->line, t->col, "bad number syntax: %.*s", (int)t->n, t->s);
}

static pipeline *parse_pipeline(parser *p, int *i, int end, bool in_parens, int max_decl);

/* Adds the .Field tokens that follow (with no space) to op's chain. */
static bool parse_chain(parser *p, int *i, int end, operand *op) {
    while (*i < end && p->toks[*i].kind == T_FIELD && !p->toks[*i].space_before) {
        const token *t = &p->toks[*i];
        note_name(p, t->s, t->n);
        if (!arena_push(p->a, (void ***)&op->fields, &op->n_fields, &op->cap_fields, (void *)tok_text(p, t)))
            return perr_at(p, t->line, t->col, "out of memory");
        (*i)++;
    }
    return true;
}

static operand *parse_operand(parser *p, int *i, int end) {
    const token *t = &p->toks[*i];
    operand *op = arena_alloc(p->a, sizeof *op);
    if (!op) return perr_at(p, t->line, t->col, "out of memory"), NULL;
    op->line = t->line;
    op->col = t->col;
    (*i)++;
    switch (t->kind) {
    case T_DOT: op->kind = OP_DOT; break;
    case T_FIELD:
        op->kind = OP_FIELD;
        note_name(p, t->s, t->n);
        if (!arena_push(p->a, (void ***)&op->fields, &op->n_fields, &op->cap_fields, (void *)tok_text(p, t)))
            return perr_at(p, t->line, t->col, "out of memory"), NULL;
        break;
    case T_VAR:
        if (!var_in_scope(p, t)) return perr_at(p, t->line, t->col, "undefined variable \"%.*s\"", (int)t->n, t->s), NULL;
        op->kind = OP_VAR;
        op->name = tok_text(p, t);
        break;
    case T_STRING:
        op->kind = OP_STRING;
        if (!unquote(p, t, &op->str, &op->str_len, NULL)) return NULL;
        break;
    case T_CHAR:
        op->kind = OP_INT;
        if (!unquote(p, t, NULL, NULL, &op->i)) return NULL;
        break;
    case T_NUMBER:
        if (!parse_number(p, t, op)) return NULL;
        break;
    case T_IDENT:
        if (tok_is(t, "true") || tok_is(t, "false")) {
            op->kind = OP_BOOL;
            op->b = tok_is(t, "true");
            break;
        }
        if (tok_is(t, "nil")) {
            op->kind = OP_NIL;
            break;
        }
        for (size_t f = 0; f < sizeof func_names / sizeof func_names[0]; f++) {
            if (tok_is(t, func_names[f])) {
                op->kind = OP_FUNC;
                op->func = (func_id)f;
                return op;
            }
        }
        for (size_t f = 0; f < sizeof unsupported_funcs / sizeof unsupported_funcs[0]; f++)
            if (tok_is(t, unsupported_funcs[f]))
                return perr_at(p, t->line, t->col, "function \"%.*s\" is not supported", (int)t->n, t->s), NULL;
        if (tok_is(t, "if") || tok_is(t, "else") || tok_is(t, "end") || tok_is(t, "range") || tok_is(t, "with") ||
            tok_is(t, "break") || tok_is(t, "continue") || tok_is(t, "define") || tok_is(t, "template") || tok_is(t, "block"))
            return perr_at(p, t->line, t->col, "unexpected \"%.*s\" in operand", (int)t->n, t->s), NULL;
        return perr_at(p, t->line, t->col, "function \"%.*s\" not defined", (int)t->n, t->s), NULL;
    case T_LPAREN: {
        if (++p->depth > MAX_DEPTH) return perr_at(p, t->line, t->col, "nesting too deep"), NULL;
        op->kind = OP_PIPE;
        int close = -1, level = 0;
        for (int j = *i; j < end; j++) {
            if (p->toks[j].kind == T_LPAREN) level++;
            if (p->toks[j].kind == T_RPAREN && level-- == 0) {
                close = j;
                break;
            }
        }
        if (close < 0) return perr_at(p, t->line, t->col, "unclosed left paren"), NULL;
        op->pipe = parse_pipeline(p, i, close, true, 0);
        if (!op->pipe) return NULL;
        *i = close + 1;
        p->depth--;
        break;
    }
    case T_RPAREN: return perr_at(p, t->line, t->col, "unexpected right paren"), NULL;
    default: return perr_at(p, t->line, t->col, "unexpected \"%.*s\" in operand", (int)t->n, t->s), NULL;
    }
    if (!parse_chain(p, i, end, op)) return NULL;
    if (op->kind == OP_FIELD && op->n_fields == 0) return perr_at(p, t->line, t->col, "internal: empty field"), NULL;
    if ((op->kind == OP_BOOL || op->kind == OP_NIL || op->kind == OP_STRING || op->kind == OP_INT || op->kind == OP_FLOAT) &&
        op->n_fields > 0)
        return perr_at(p, t->line, t->col, "unexpected . after term"), NULL;
    return op;
}

/* tokens [*i, end) as a pipeline; max_decl variables may be declared (range: 2). */
static pipeline *parse_pipeline(parser *p, int *i, int end, bool in_parens, int max_decl) {
    const token *first = *i < end ? &p->toks[*i] : &p->toks[end];
    pipeline *pl = arena_alloc(p->a, sizeof *pl);
    if (!pl) return perr_at(p, first->line, first->col, "out of memory"), NULL;
    pl->line = first->line;
    pl->col = first->col;
    /* Declarations: $x := / $x = / $i, $v := */
    if (!in_parens && *i < end && p->toks[*i].kind == T_VAR) {
        int j = *i;
        int nd = 0;
        const token *names[3];
        while (j < end && p->toks[j].kind == T_VAR) {
            if (nd < 3) names[nd] = &p->toks[j];
            nd++;
            j++;
            if (j < end && p->toks[j].kind == T_COMMA) j++;
            else break;
        }
        if (j < end && (p->toks[j].kind == T_DECLARE || p->toks[j].kind == T_ASSIGN)) {
            bool assign = p->toks[j].kind == T_ASSIGN;
            if (nd > (max_decl > 0 ? max_decl : 1))
                return perr_at(p, names[0]->line, names[0]->col, "too many declarations in command"), NULL;
            for (int d = 0; d < nd; d++) {
                if (names[d]->n == 1) return perr_at(p, names[d]->line, names[d]->col, "cannot assign to $"), NULL;
                if (assign && !var_in_scope(p, names[d]))
                    return perr_at(p, names[d]->line, names[d]->col, "undefined variable \"%.*s\"", (int)names[d]->n,
                                   names[d]->s), NULL;
                pl->decl[d] = tok_text(p, names[d]);
            }
            pl->n_decl = nd;
            pl->assign = assign;
            *i = j + 1;
        }
    }
    command *cmd = NULL;
    while (*i < end) {
        const token *t = &p->toks[*i];
        if (t->kind == T_PIPE) {
            if (!cmd || cmd->n_args == 0) return perr_at(p, t->line, t->col, "missing command before '|'"), NULL;
            cmd = NULL;
            (*i)++;
            continue;
        }
        if (t->kind == T_COMMA || t->kind == T_DECLARE || t->kind == T_ASSIGN)
            return perr_at(p, t->line, t->col, "unexpected \"%.*s\" in command", (int)t->n, t->s), NULL;
        if (!cmd) {
            cmd = arena_alloc(p->a, sizeof *cmd);
            if (!cmd || !arena_push(p->a, (void ***)&pl->cmds, &pl->n_cmds, &pl->cap_cmds, cmd))
                return perr_at(p, t->line, t->col, "out of memory"), NULL;
            cmd->line = t->line;
            cmd->col = t->col;
        } else if (!t->space_before && t->kind != T_LPAREN && t->kind != T_RPAREN && p->toks[*i - 1].kind != T_LPAREN) {
            return perr_at(p, t->line, t->col, "missing space before \"%.*s\"", (int)t->n, t->s), NULL;
        }
        operand *op = parse_operand(p, i, end);
        if (!op) return NULL;
        if (!arena_push(p->a, (void ***)&cmd->args, &cmd->n_args, &cmd->cap_args, op))
            return perr_at(p, t->line, t->col, "out of memory"), NULL;
    }
    if (pl->n_cmds == 0 || (cmd && cmd->n_args == 0))
        return perr_at(p, pl->line, pl->col, pl->n_cmds ? "missing command after '|'" : "missing value for command"), NULL;
    if (!cmd) return perr_at(p, pl->line, pl->col, "missing command after '|'"), NULL;
    /* Commands that are not function calls take no arguments and cannot receive a pipe. */
    for (int c = 0; c < pl->n_cmds; c++) {
        command *k = pl->cmds[c];
        operand *head = k->args[0];
        if (head->kind == OP_FUNC) continue;
        if (head->kind == OP_NIL) return perr_at(p, head->line, head->col, "nil is not a command"), NULL;
        if (k->n_args > 1)
            return perr_at(p, k->args[1]->line, k->args[1]->col, "can't give argument to non-function"), NULL;
        if (c > 0) return perr_at(p, head->line, head->col, "can't pipe into a non-function"), NULL;
    }
    /* Declared variables come into scope after their pipeline. */
    if (!pl->assign)
        for (int d = 0; d < pl->n_decl; d++)
            if (!declare_var(p, pl->decl[d])) return NULL;
    return pl;
}

/* Whether a pipeline names .Response (a field node, as Ollama's cut looks for). */
static bool pipe_has_response_field(const pipeline *pl) {
    for (int c = 0; c < pl->n_cmds; c++) {
        for (int a = 0; a < pl->cmds[c]->n_args; a++) {
            const operand *op = pl->cmds[c]->args[a];
            if (op->kind == OP_FIELD)
                for (int f = 0; f < op->n_fields; f++)
                    if (strcmp(op->fields[f], "Response") == 0) return true;
            if (op->kind == OP_PIPE && pipe_has_response_field(op->pipe)) return true;
        }
    }
    return false;
}

typedef enum { STOP_EOF, STOP_END, STOP_ELSE } stop_kind;

static node *new_node(parser *p, node_kind k, int line, int col) {
    node *n = arena_alloc(p->a, sizeof *n);
    if (!n) return perr_at(p, line, col, "out of memory"), NULL;
    n->kind = k;
    n->id = p->next_id++;
    n->line = line;
    n->col = col;
    return n;
}

static bool list_add(parser *p, node_list *l, node *n) {
    return arena_push(p->a, (void ***)&l->items, &l->n, &l->cap, n) || perr_at(p, n->line, n->col, "out of memory");
}

static bool parse_list(parser *p, node_list *l, stop_kind *stop, int *else_tok);
static node *parse_control(parser *p, node_kind kind, int start_tok, int line, int col);

/* Parses the rest of a control structure after its pipeline: body, else, end. */
static bool parse_branches(parser *p, node *n, node_kind kind) {
    stop_kind stop;
    int else_tok;
    int after_pipe = p->n_vars; /* variables of the body are not visible in the else part */
    if (kind == N_RANGE) p->range_depth++;
    bool ok = parse_list(p, &n->list, &stop, &else_tok);
    if (kind == N_RANGE) p->range_depth--;
    if (!ok) return false;
    if (stop == STOP_EOF) return perr_at(p, n->line, n->col, "unexpected EOF: {{ %s }} has no {{ end }}",
                                         kind == N_IF ? "if" : kind == N_WITH ? "with" : "range");
    if (stop == STOP_END) return true;
    /* {{ else }} or {{ else if ... }} / {{ else with ... }} */
    if (else_tok < p->n_toks && p->toks[else_tok].kind != T_END) {
        const token *t = &p->toks[else_tok];
        node_kind chained = tok_is(t, "if") ? N_IF : tok_is(t, "with") ? N_WITH : N_TEXT;
        if (chained == N_TEXT || chained != kind || kind == N_RANGE)
            return perr_at(p, t->line, t->col, "unexpected \"%.*s\" after else", (int)t->n, t->s);
        p->n_vars = after_pipe;
        node *inner = parse_control(p, chained, else_tok + 1, t->line, t->col);
        return inner && list_add(p, &n->else_list, inner);
    }
    p->n_vars = after_pipe;
    if (!parse_list(p, &n->else_list, &stop, &else_tok)) return false;
    if (stop == STOP_ELSE) return perr_at(p, n->line, n->col, "more than one {{ else }}");
    if (stop == STOP_EOF) return perr_at(p, n->line, n->col, "unexpected EOF: {{ else }} has no {{ end }}");
    return true;
}

/* A control structure whose pipeline starts at token start_tok of the current action. */
static node *parse_control(parser *p, node_kind kind, int start_tok, int line, int col) {
    if (++p->depth > MAX_DEPTH) return perr_at(p, line, col, "nesting too deep"), NULL;
    node *n = new_node(p, kind, line, col);
    if (!n) return NULL;
    int end = p->n_toks - 1; /* the T_END token */
    int i = start_tok;
    if (i >= end) return perr_at(p, line, col, "missing value for %s", kind == N_IF ? "if" : kind == N_WITH ? "with" : "range"), NULL;
    int mark = p->n_vars;
    n->pipe = parse_pipeline(p, &i, end, false, kind == N_RANGE ? 2 : 1);
    if (!n->pipe) return NULL;
    if (n->pipe->assign && kind == N_RANGE) return perr_at(p, line, col, "range can only declare variables with :="), NULL;
    if (!parse_branches(p, n, kind)) return NULL;
    p->n_vars = mark;
    p->depth--;
    return n;
}

/* Text up to the next action, then the action; repeats until {{ end }}, {{ else }} or EOF. */
static bool parse_list(parser *p, node_list *l, stop_kind *stop, int *else_tok) {
    const char *s = p->src;
    for (;;) {
        size_t start = p->pos;
        const char *open = NULL;
        for (size_t k = start; k + 1 < p->len; k++) {
            if (s[k] == '{' && s[k + 1] == '{') {
                open = s + k;
                break;
            }
        }
        size_t text_end = open ? (size_t)(open - s) : p->len;
        size_t action = text_end + 2;
        bool trim_left = open && action + 1 < p->len && s[action] == '-' && is_space(s[action + 1]);
        size_t tb = start, te = text_end;
        if (p->trim_next_text)
            while (tb < te && is_space(s[tb])) tb++;
        if (trim_left)
            while (te > tb && is_space(s[te - 1])) te--;
        p->trim_next_text = false;
        if (te > tb) {
            int line, col;
            line_col(p, tb, &line, &col);
            node *n = new_node(p, N_TEXT, line, col);
            if (!n) return false;
            n->text = s + tb;
            n->len = te - tb;
            if (!list_add(p, l, n)) return false;
        }
        if (!open) {
            p->pos = p->len;
            *stop = STOP_EOF;
            return true;
        }
        p->pos = trim_left ? action + 2 : action;
        int line, col;
        line_col(p, text_end, &line, &col);
        /* Comments: {{ slash-star ... star-slash }}, with optional trim markers. */
        if (p->pos + 1 < p->len && s[p->pos] == '/' && s[p->pos + 1] == '*') {
            const char *close = NULL;
            for (size_t k = p->pos + 2; k + 1 < p->len; k++)
                if (s[k] == '*' && s[k + 1] == '/') {
                    close = s + k;
                    break;
                }
            if (!close) return perr_at(p, line, col, "unclosed comment");
            size_t k = (size_t)(close - s) + 2;
            bool trim_right = false;
            if (k + 4 <= p->len && is_space(s[k]) && s[k + 1] == '-' && s[k + 2] == '}' && s[k + 3] == '}') {
                trim_right = true;
                k += 4;
            } else if (k + 2 <= p->len && s[k] == '}' && s[k + 1] == '}') {
                k += 2;
            } else {
                return perr_at(p, line, col, "comment ends before closing delimiter");
            }
            p->pos = k;
            p->trim_next_text = trim_right;
            continue;
        }
        bool trim_right = false;
        if (!lex_action(p, text_end, &trim_right)) return false;
        p->trim_next_text = trim_right;
        const token *t0 = &p->toks[0];
        if (t0->kind == T_END) return perr_at(p, line, col, "missing value for command");
        if (tok_is(t0, "end")) {
            if (p->n_toks != 2) return perr_at(p, t0->line, t0->col, "unexpected \"%.*s\" in end", (int)p->toks[1].n, p->toks[1].s);
            *stop = STOP_END;
            return true;
        }
        if (tok_is(t0, "else")) {
            *stop = STOP_ELSE;
            *else_tok = 1;
            return true;
        }
        node *n = NULL;
        if (tok_is(t0, "if")) n = parse_control(p, N_IF, 1, t0->line, t0->col);
        else if (tok_is(t0, "with")) n = parse_control(p, N_WITH, 1, t0->line, t0->col);
        else if (tok_is(t0, "range")) n = parse_control(p, N_RANGE, 1, t0->line, t0->col);
        else if (tok_is(t0, "break") || tok_is(t0, "continue")) {
            if (p->n_toks != 2) return perr_at(p, t0->line, t0->col, "unexpected \"%.*s\" in %.*s", (int)p->toks[1].n, p->toks[1].s, (int)t0->n, t0->s);
            if (p->range_depth == 0) return perr_at(p, t0->line, t0->col, "{{ %.*s }} outside {{ range }}", (int)t0->n, t0->s);
            n = new_node(p, tok_is(t0, "break") ? N_BREAK : N_CONTINUE, t0->line, t0->col);
        } else if (tok_is(t0, "define") || tok_is(t0, "template") || tok_is(t0, "block")) {
            return perr_at(p, t0->line, t0->col, "{{ %.*s }} is not supported", (int)t0->n, t0->s);
        } else {
            int i = 0;
            n = new_node(p, N_ACTION, t0->line, t0->col);
            if (n) {
                n->pipe = parse_pipeline(p, &i, p->n_toks - 1, false, 1);
                if (!n->pipe) return false;
                if (p->t->cut_id < 0 && pipe_has_response_field(n->pipe)) p->t->cut_id = n->id;
            }
        }
        if (!n) return false;
        if (!list_add(p, l, n)) return false;
    }
}

strata_status strata_template_parse(const char *text, size_t len, strata_template **out) {
    *out = NULL;
    strata_template *t = calloc(1, sizeof *t);
    if (!t) return strata_fail(STRATA_ERR_NOMEM, "out of memory");
    t->cut_id = -1;
    t->source = malloc(len + 1);
    if (!t->source) {
        free(t);
        return strata_fail(STRATA_ERR_NOMEM, "out of memory");
    }
    memcpy(t->source, text, len);
    t->source[len] = 0;
    parser p = {0};
    p.src = t->source;
    p.len = len;
    p.a = &t->a;
    p.t = t;
    stop_kind stop;
    int else_tok;
    bool ok = parse_list(&p, &t->root, &stop, &else_tok);
    if (ok && stop != STOP_EOF) {
        int line, col;
        line_col(&p, p.pos, &line, &col);
        ok = perr_at(&p, line, col, stop == STOP_END ? "unexpected {{ end }}" : "unexpected {{ else }}");
    }
    if (ok && !t->uses_messages && !t->uses_response) {
        /* As Ollama does: a template that never names the response gets it appended. */
        node *n = new_node(&p, N_ACTION, 0, 0);
        pipeline *pl = arena_alloc(&t->a, sizeof *pl);
        command *c = arena_alloc(&t->a, sizeof *c);
        operand *op = arena_alloc(&t->a, sizeof *op);
        ok = n && pl && c && op;
        if (ok) {
            op->kind = OP_FIELD;
            ok = arena_push(&t->a, (void ***)&op->fields, &op->n_fields, &op->cap_fields, (void *)"Response") &&
                 arena_push(&t->a, (void ***)&c->args, &c->n_args, &c->cap_args, op) &&
                 arena_push(&t->a, (void ***)&pl->cmds, &pl->n_cmds, &pl->cap_cmds, c);
            n->pipe = pl;
            ok = ok && list_add(&p, &t->root, n);
            t->cut_id = n->id;
        }
        if (!ok && !p.failed) ok = perr_at(&p, 0, 0, "out of memory");
    }
    if (ok && t->a.oom) ok = perr_at(&p, 0, 0, "out of memory");
    free(p.toks);
    if (!ok) {
        strata_template_free(t);
        return STRATA_ERR_FORMAT;
    }
    *out = t;
    return STRATA_OK;
}

void strata_template_free(strata_template *t) {
    if (!t) return;
    arena_free(&t->a);
    free(t->source);
    free(t);
}

const char *strata_template_source(const strata_template *t) { return t->source; }
bool strata_template_uses_messages(const strata_template *t) { return t->uses_messages; }

bool strata_template_names(const strata_template *t, const char *field) {
    for (int i = 0; i < t->n_names; i++)
        if (strcasecmp(t->names[i], field) == 0) return true;
    return false;
}

/* Whether a pipeline (its nested pipelines included) writes .FIELD or $var.FIELD first. */
static bool pipe_names_first(const pipeline *pl, const char *field) {
    if (!pl) return false;
    for (int c = 0; c < pl->n_cmds; c++) {
        const command *cmd = pl->cmds[c];
        for (int a = 0; a < cmd->n_args; a++) {
            const operand *op = cmd->args[a];
            if ((op->kind == OP_FIELD || op->kind == OP_VAR) && op->n_fields > 0 && strcmp(op->fields[0], field) == 0)
                return true;
            if (op->kind == OP_PIPE && pipe_names_first(op->pipe, field)) return true;
        }
    }
    return false;
}

static void trimmed_text(const node *n, char *buf, size_t cap) {
    buf[0] = 0;
    if (!n || n->kind != N_TEXT || !cap) return;
    const char *s = n->text;
    size_t len = n->len;
    while (len && is_space(*s)) s++, len--;
    while (len && is_space(s[len - 1])) len--;
    if (len >= cap) len = cap - 1;
    memcpy(buf, s, len);
    buf[len] = 0;
}

/* Ollama's heuristic (thinking.InferTags): each reference to .Thinking inside a range over
 * .Messages names, as its tags, the first and last text of the list that holds it; the last
 * such reference in document order wins. */
static void think_walk(const node_list *l, bool in_messages, char *open, size_t ocap, char *close, size_t ccap) {
    for (int i = 0; i < l->n; i++) {
        const node *n = l->items[i];
        bool inner = in_messages;
        if (n->kind == N_RANGE) inner = pipe_names_first(n->pipe, "Messages");
        if (inner && pipe_names_first(n->pipe, "Thinking")) {
            trimmed_text(l->items[0], open, ocap);
            trimmed_text(l->items[l->n - 1], close, ccap);
        }
        if (n->kind == N_IF || n->kind == N_WITH || n->kind == N_RANGE) {
            think_walk(&n->list, inner, open, ocap, close, ccap);
            think_walk(&n->else_list, inner, open, ocap, close, ccap);
        }
    }
}

bool strata_template_think_tags(const strata_template *t, char *open, size_t open_cap, char *close, size_t close_cap) {
    char o[128] = "", c[128] = "";
    think_walk(&t->root, false, o, sizeof o, c, sizeof c);
    if (!o[0] || !c[0]) return false;
    if (open && open_cap) snprintf(open, open_cap, "%s", o);
    if (close && close_cap) snprintf(close, close_cap, "%s", c);
    return true;
}

/* ---- values --------------------------------------------------------------------------- */

typedef enum { V_NIL, V_BOOL, V_INT, V_FLOAT, V_STR, V_LIST, V_MAP } vkind;

typedef struct value value;
typedef struct vmap vmap;

struct value {
    vkind k;
    union {
        bool b;
        int64_t i;
        double f;
        struct {
            const char *s;
            size_t n;
        } str;
        struct {
            const value *items;
            size_t n;
        } list;
        const vmap *map;
    };
};

struct vmap {
    size_t n;
    const char **keys; /* sorted */
    const value *vals;
    bool from_json; /* JSON keys: .Name also finds "name" */
};

static value v_nil(void) { return (value){.k = V_NIL}; }
static value v_bool(bool b) { return (value){.k = V_BOOL, .b = b}; }
static value v_int(int64_t i) { return (value){.k = V_INT, .i = i}; }
static value v_str(const char *s, size_t n) {
    value v = {.k = V_STR};
    v.str.s = s;
    v.str.n = n;
    return v;
}

static const char *kind_name(vkind k) {
    switch (k) {
    case V_NIL: return "nil";
    case V_BOOL: return "bool";
    case V_INT: return "int";
    case V_FLOAT: return "float64";
    case V_STR: return "string";
    case V_LIST: return "slice";
    case V_MAP: return "map";
    }
    return "?";
}

static bool truth(value v) {
    switch (v.k) {
    case V_NIL: return false;
    case V_BOOL: return v.b;
    case V_INT: return v.i != 0;
    case V_FLOAT: return v.f != 0;
    case V_STR: return v.str.n > 0;
    case V_LIST: return v.list.n > 0;
    case V_MAP: return v.map->n > 0;
    }
    return false;
}

/* ---- evaluation ----------------------------------------------------------------------- */

typedef struct {
    const char *name;
    value v;
} var;

typedef struct {
    const strata_template *t;
    arena a;
    char *out;
    size_t len, cap;
    var *vars;
    size_t n_vars, cap_vars;
    value root;
    bool cutting;
    uint64_t steps;
    bool failed;
    int flow; /* 0, or 1 after {{ break }}, 2 after {{ continue }} */
} exec;

static bool xerr(exec *e, int line, int col, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static bool xerr(exec *e, int line, int col, const char *fmt, ...) {
    if (e->failed) return false;
    e->failed = true;
    char msg[384];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    strata_fail(STRATA_ERR_FORMAT, "template:%d:%d: executing: %s", line, col, msg);
    return false;
}

static bool emit(exec *e, const char *s, size_t n) {
    if (e->failed) return false;
    if (e->len + n > MAX_OUTPUT) return xerr(e, 0, 0, "output larger than %u bytes", MAX_OUTPUT);
    if (e->len + n + 1 > e->cap) {
        size_t cap = e->cap ? e->cap : 1024;
        while (cap < e->len + n + 1) cap *= 2;
        char *g = realloc(e->out, cap);
        if (!g) return xerr(e, 0, 0, "out of memory");
        e->out = g;
        e->cap = cap;
    }
    memcpy(e->out + e->len, s, n);
    e->len += n;
    e->out[e->len] = 0;
    return true;
}

static bool step(exec *e, int line, int col) {
    if (++e->steps > MAX_STEPS) return xerr(e, line, col, "template too expensive (more than %llu steps)", MAX_STEPS);
    return !e->failed;
}

static bool lookup_var(exec *e, const char *name, value *out) {
    for (size_t i = e->n_vars; i-- > 0;)
        if (strcmp(e->vars[i].name, name) == 0) {
            *out = e->vars[i].v;
            return true;
        }
    return false;
}

static bool push_var(exec *e, const char *name, value v) {
    if (e->n_vars == e->cap_vars) {
        size_t nc = e->cap_vars ? e->cap_vars * 2 : 16;
        var *g = realloc(e->vars, nc * sizeof *g);
        if (!g) return xerr(e, 0, 0, "out of memory");
        e->vars = g;
        e->cap_vars = nc;
    }
    e->vars[e->n_vars++] = (var){name, v};
    return true;
}

static bool set_var(exec *e, const char *name, value v) {
    for (size_t i = e->n_vars; i-- > 0;)
        if (strcmp(e->vars[i].name, name) == 0) {
            e->vars[i].v = v;
            return true;
        }
    return xerr(e, 0, 0, "undefined variable %s", name);
}

static bool field_of(exec *e, value v, const char *name, int line, int col, value *out) {
    if (v.k == V_NIL) {
        *out = v_nil();
        return true;
    }
    if (v.k != V_MAP) return xerr(e, line, col, "can't evaluate field %s in type %s", name, kind_name(v.k));
    for (size_t i = 0; i < v.map->n; i++)
        if (strcmp(v.map->keys[i], name) == 0) {
            *out = v.map->vals[i];
            return true;
        }
    if (v.map->from_json) /* Ollama's structs: .Function is the JSON key "function" */
        for (size_t i = 0; i < v.map->n; i++) {
            const char *k = v.map->keys[i];
            if (k[0] == tolower((unsigned char)name[0]) && k[0] && strcmp(k + 1, name + 1) == 0) {
                *out = v.map->vals[i];
                return true;
            }
        }
    *out = v_nil();
    return true;
}

/* A growable string in the exec arena (for print/printf/json results). */
typedef struct {
    exec *e;
    char *buf;
    size_t len, cap;
} xbuf;

static bool xb_put(xbuf *b, const char *s, size_t n) {
    if (b->e->failed) return false;
    if (b->len + n > MAX_OUTPUT) return xerr(b->e, 0, 0, "value larger than %u bytes", MAX_OUTPUT);
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 64;
        while (cap < b->len + n + 1) cap *= 2;
        char *g = arena_alloc(&b->e->a, cap);
        if (!g) return xerr(b->e, 0, 0, "out of memory");
        if (b->len) memcpy(g, b->buf, b->len);
        b->buf = g;
        b->cap = cap;
    }
    memcpy(b->buf + b->len, s, n);
    b->len += n;
    b->buf[b->len] = 0;
    return true;
}

static bool xb_puts(xbuf *b, const char *s) { return xb_put(b, s, strlen(s)); }

/* Shortest decimal digits that read back to f: returns the digit count and the decimal
 * exponent of the first digit (f = d.ddd x 10^exp). */
static int shortest_digits(double f, int *exp) {
    char buf[64];
    int prec = 1;
    for (; prec <= 17; prec++) {
        snprintf(buf, sizeof buf, "%.*e", prec - 1, f);
        if (strtod(buf, NULL) == f) break;
    }
    if (prec > 17) prec = 17;
    const char *e = strchr(buf, 'e');
    *exp = e ? atoi(e + 1) : 0;
    return prec;
}

/* Go's strconv.FormatFloat(f, 'g', -1, 64) (what fmt's %v prints), or, for JSON, the
 * encoding/json form (exponent only below 1e-6 or from 1e21, written without padding). */
static void format_float_go(double f, char *buf, size_t cap, bool json) {
    if (isinf(f)) {
        snprintf(buf, cap, f > 0 ? "+Inf" : "-Inf");
        return;
    }
    if (isnan(f)) {
        snprintf(buf, cap, "NaN");
        return;
    }
    if (f == 0) {
        snprintf(buf, cap, signbit(f) && !json ? "-0" : "0");
        return;
    }
    int x, p = shortest_digits(f, &x);
    /* fmt: %e when the exponent is < -4 or >= 6 (strconv's rule for shortest 'g');
     * encoding/json: when |f| < 1e-6 or >= 1e21. */
    bool use_exp = json ? (fabs(f) < 1e-6 || fabs(f) >= 1e21) : (x < -4 || x >= 6);
    if (use_exp) {
        snprintf(buf, cap, "%.*e", p - 1, f);
        if (json) {
            /* "1e-07" -> "1e-7" */
            char *e = strchr(buf, 'e');
            if (e && (e[1] == '-' || e[1] == '+') && e[2] == '0' && e[3]) memmove(e + 2, e + 3, strlen(e + 3) + 1);
        }
    } else {
        int decimals = p - 1 - x;
        snprintf(buf, cap, "%.*f", decimals > 0 ? decimals : 0, f);
    }
}

static void format_float(double f, char *buf, size_t cap) { format_float_go(f, buf, cap, false); }

/* Writes v as Go's fmt %v would (nil as ""). */
static bool xb_json(xbuf *b, value v, int depth);

static bool xb_value(xbuf *b, value v) {
    char num[64];
    /* JSON data prints as JSON, as Ollama's tool structs print themselves (String()). */
    if (v.k == V_MAP && v.map->from_json) return xb_json(b, v, 0);
    switch (v.k) {
    case V_NIL: return true;
    case V_BOOL: return xb_puts(b, v.b ? "true" : "false");
    case V_INT: snprintf(num, sizeof num, "%" PRId64, v.i); return xb_puts(b, num);
    case V_FLOAT: format_float(v.f, num, sizeof num); return xb_puts(b, num);
    case V_STR: return xb_put(b, v.str.s, v.str.n);
    case V_LIST:
        if (!xb_puts(b, "[")) return false;
        for (size_t i = 0; i < v.list.n; i++) {
            if (i && !xb_puts(b, " ")) return false;
            if (v.list.items[i].k == V_NIL ? !xb_puts(b, "<nil>") : !xb_value(b, v.list.items[i])) return false;
        }
        return xb_puts(b, "]");
    case V_MAP:
        if (!xb_puts(b, "map[")) return false;
        for (size_t i = 0; i < v.map->n; i++) {
            if (i && !xb_puts(b, " ")) return false;
            if (!xb_puts(b, v.map->keys[i]) || !xb_puts(b, ":")) return false;
            if (v.map->vals[i].k == V_NIL ? !xb_puts(b, "<nil>") : !xb_value(b, v.map->vals[i])) return false;
        }
        return xb_puts(b, "]");
    }
    return false;
}

static bool xb_json_string(xbuf *b, const char *s, size_t n) {
    if (!xb_puts(b, "\"")) return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        char esc[8];
        if (c == '"' || c == '\\') {
            esc[0] = '\\';
            esc[1] = (char)c;
            if (!xb_put(b, esc, 2)) return false;
        } else if (c == '\n') {
            if (!xb_puts(b, "\\n")) return false;
        } else if (c == '\r') {
            if (!xb_puts(b, "\\r")) return false;
        } else if (c == '\t') {
            if (!xb_puts(b, "\\t")) return false;
        } else if (c < 0x20 || c == '<' || c == '>' || c == '&') {
            /* Go's encoder escapes HTML-significant characters too. */
            snprintf(esc, sizeof esc, "\\u%04x", c);
            if (!xb_puts(b, esc)) return false;
        } else if (c == 0xE2 && i + 2 < n && (unsigned char)s[i + 1] == 0x80 &&
                   ((unsigned char)s[i + 2] == 0xA8 || (unsigned char)s[i + 2] == 0xA9)) {
            if (!xb_puts(b, (unsigned char)s[i + 2] == 0xA8 ? "\\u2028" : "\\u2029")) return false;
            i += 2;
        } else {
            if (!xb_put(b, (const char *)&s[i], 1)) return false;
        }
    }
    return xb_puts(b, "\"");
}

static bool xb_json(xbuf *b, value v, int depth) {
    char num[64];
    if (depth > MAX_DEPTH) return xerr(b->e, 0, 0, "json: value nested too deep");
    switch (v.k) {
    case V_NIL: return xb_puts(b, "null");
    case V_BOOL: return xb_puts(b, v.b ? "true" : "false");
    case V_INT: snprintf(num, sizeof num, "%" PRId64, v.i); return xb_puts(b, num);
    case V_FLOAT:
        if (!isfinite(v.f)) return xerr(b->e, 0, 0, "json: unsupported value %g", v.f);
        format_float_go(v.f, num, sizeof num, true);
        return xb_puts(b, num);
    case V_STR: return xb_json_string(b, v.str.s, v.str.n);
    case V_LIST:
        if (!xb_puts(b, "[")) return false;
        for (size_t i = 0; i < v.list.n; i++)
            if ((i && !xb_puts(b, ",")) || !xb_json(b, v.list.items[i], depth + 1)) return false;
        return xb_puts(b, "]");
    case V_MAP:
        if (!xb_puts(b, "{")) return false;
        for (size_t i = 0; i < v.map->n; i++) {
            if ((i && !xb_puts(b, ",")) || !xb_json_string(b, v.map->keys[i], strlen(v.map->keys[i])) || !xb_puts(b, ":") ||
                !xb_json(b, v.map->vals[i], depth + 1))
                return false;
        }
        return xb_puts(b, "}");
    }
    return false;
}

static value xb_value_str(xbuf *b) { return v_str(b->buf ? b->buf : "", b->len); }

static bool eval_pipeline(exec *e, const pipeline *pl, value dot, value *out);

static bool eval_chain(exec *e, const operand *op, value v, value *out) {
    for (int f = 0; f < op->n_fields; f++)
        if (!field_of(e, v, op->fields[f], op->line, op->col, &v)) return false;
    *out = v;
    return true;
}

static bool call_func(exec *e, const operand *fn, operand *const *args, int n_args, const value *final, value dot,
                      value *out);

static bool eval_operand(exec *e, const operand *op, value dot, value *out) {
    if (!step(e, op->line, op->col)) return false;
    value v;
    switch (op->kind) {
    case OP_DOT: *out = dot; return true;
    case OP_FIELD: return eval_chain(e, op, dot, out);
    case OP_VAR:
        if (strcmp(op->name, "$") == 0) v = e->root;
        else if (!lookup_var(e, op->name, &v)) return xerr(e, op->line, op->col, "undefined variable %s", op->name);
        return eval_chain(e, op, v, out);
    case OP_STRING: *out = v_str(op->str, op->str_len); return true;
    case OP_INT: *out = v_int(op->i); return true;
    case OP_FLOAT: *out = (value){.k = V_FLOAT, .f = op->f}; return true;
    case OP_BOOL: *out = v_bool(op->b); return true;
    case OP_NIL: *out = v_nil(); return true;
    case OP_FUNC: return call_func(e, op, NULL, 0, NULL, dot, out); /* a function named as an argument is called */
    case OP_PIPE:
        if (!eval_pipeline(e, op->pipe, dot, &v)) return false;
        return eval_chain(e, op, v, out);
    }
    return false;
}

/* Go's basic comparison: 0 equal, <0, >0; false when not comparable. */
static bool compare(exec *e, const operand *at, value a, value b, int *res, bool ordered) {
    if ((a.k == V_INT || a.k == V_FLOAT) && (b.k == V_INT || b.k == V_FLOAT)) {
        if (a.k == V_INT && b.k == V_INT) *res = a.i < b.i ? -1 : a.i > b.i;
        else {
            double x = a.k == V_INT ? (double)a.i : a.f, y = b.k == V_INT ? (double)b.i : b.f;
            *res = x < y ? -1 : x > y;
        }
        return true;
    }
    if (a.k == V_STR && b.k == V_STR) {
        size_t n = a.str.n < b.str.n ? a.str.n : b.str.n;
        int c = n ? memcmp(a.str.s, b.str.s, n) : 0;
        *res = c ? c : (a.str.n > b.str.n) - (a.str.n < b.str.n);
        return true;
    }
    if (a.k == V_BOOL && b.k == V_BOOL && !ordered) {
        *res = a.b != b.b;
        return true;
    }
    if (!ordered && (a.k == V_NIL || b.k == V_NIL)) {
        *res = a.k != b.k; /* nil equals only nil */
        return true;
    }
    if (a.k == V_LIST || a.k == V_MAP || b.k == V_LIST || b.k == V_MAP)
        return xerr(e, at->line, at->col, "non-comparable type %s", kind_name(a.k == V_LIST || a.k == V_MAP ? a.k : b.k));
    return xerr(e, at->line, at->col, ordered && a.k == b.k ? "invalid type for comparison" : "incompatible types for comparison");
}

static bool to_index(exec *e, const operand *at, value v, int64_t *out) {
    if (v.k != V_INT) return xerr(e, at->line, at->col, "cannot index with type %s", kind_name(v.k));
    *out = v.i;
    return true;
}

static bool do_printf(exec *e, const operand *fn, const value *argv, int argc, xbuf *b) {
    if (argc < 1 || argv[0].k != V_STR) return xerr(e, fn->line, fn->col, "printf needs a format string");
    const char *f = argv[0].str.s;
    size_t n = argv[0].str.n;
    int ai = 1;
    for (size_t i = 0; i < n; i++) {
        if (f[i] != '%') {
            if (!xb_put(b, f + i, 1)) return false;
            continue;
        }
        if (++i >= n) return xb_puts(b, "%!(NOVERB)");
        char verb = f[i];
        if (verb == '%') {
            if (!xb_puts(b, "%")) return false;
            continue;
        }
        if (ai >= argc) {
            char m[32];
            snprintf(m, sizeof m, "%%!%c(MISSING)", verb);
            if (!xb_puts(b, m)) return false;
            continue;
        }
        value v = argv[ai++];
        char num[64];
        switch (verb) {
        case 'v':
        case 's':
            if (v.k == V_NIL ? !xb_puts(b, "<nil>") : !xb_value(b, v)) return false;
            break;
        case 'd':
            if (v.k != V_INT) return xerr(e, fn->line, fn->col, "printf: %%d of %s", kind_name(v.k));
            snprintf(num, sizeof num, "%" PRId64, v.i);
            if (!xb_puts(b, num)) return false;
            break;
        case 'x':
            if (v.k == V_INT) {
                snprintf(num, sizeof num, "%" PRIx64, (uint64_t)v.i);
                if (!xb_puts(b, num)) return false;
            } else if (v.k == V_STR) {
                for (size_t k = 0; k < v.str.n; k++) {
                    snprintf(num, sizeof num, "%02x", (unsigned char)v.str.s[k]);
                    if (!xb_puts(b, num)) return false;
                }
            } else {
                return xerr(e, fn->line, fn->col, "printf: %%x of %s", kind_name(v.k));
            }
            break;
        case 'c': {
            if (v.k != V_INT || v.i < 0 || v.i > 0x10FFFF) return xerr(e, fn->line, fn->col, "printf: bad %%c argument");
            uint32_t cp = (uint32_t)v.i;
            char u[4];
            size_t un;
            if (cp < 0x80) u[0] = (char)cp, un = 1;
            else if (cp < 0x800) u[0] = (char)(0xC0 | (cp >> 6)), u[1] = (char)(0x80 | (cp & 0x3F)), un = 2;
            else if (cp < 0x10000)
                u[0] = (char)(0xE0 | (cp >> 12)), u[1] = (char)(0x80 | ((cp >> 6) & 0x3F)), u[2] = (char)(0x80 | (cp & 0x3F)), un = 3;
            else
                u[0] = (char)(0xF0 | (cp >> 18)), u[1] = (char)(0x80 | ((cp >> 12) & 0x3F)), u[2] = (char)(0x80 | ((cp >> 6) & 0x3F)),
                u[3] = (char)(0x80 | (cp & 0x3F)), un = 4;
            if (!xb_put(b, u, un)) return false;
            break;
        }
        case 'q':
            if (v.k != V_STR) return xerr(e, fn->line, fn->col, "printf: %%q of %s", kind_name(v.k));
            if (!xb_json_string(b, v.str.s, v.str.n)) return false;
            break;
        case 't':
            if (v.k != V_BOOL) return xerr(e, fn->line, fn->col, "printf: %%t of %s", kind_name(v.k));
            if (!xb_puts(b, v.b ? "true" : "false")) return false;
            break;
        case 'f':
        case 'g':
            if (v.k != V_FLOAT && v.k != V_INT) return xerr(e, fn->line, fn->col, "printf: %%%c of %s", verb, kind_name(v.k));
            if (verb == 'f') snprintf(num, sizeof num, "%f", v.k == V_INT ? (double)v.i : v.f);
            else format_float(v.k == V_INT ? (double)v.i : v.f, num, sizeof num);
            if (!xb_puts(b, num)) return false;
            break;
        default: return xerr(e, fn->line, fn->col, "printf: verb %%%c is not supported", verb);
        }
    }
    if (ai < argc) return xb_puts(b, "%!(EXTRA)");
    return true;
}

static bool call_func(exec *e, const operand *fn, operand *const *args, int n_args, const value *final, value dot,
                      value *out) {
    int argc = n_args + (final ? 1 : 0);
    /* and/or evaluate lazily and return an operand. */
    if (fn->func == F_AND || fn->func == F_OR) {
        if (argc < 1) return xerr(e, fn->line, fn->col, "wrong number of args for %s: want at least 1 got 0", func_names[fn->func]);
        value v = v_nil();
        for (int i = 0; i < argc; i++) {
            if (i < n_args) {
                if (!eval_operand(e, args[i], dot, &v)) return false;
            } else {
                v = *final;
            }
            if (truth(v) == (fn->func == F_OR)) break;
        }
        *out = v;
        return true;
    }
    value stack[8], *argv = argc <= 8 ? stack : arena_alloc(&e->a, (size_t)argc * sizeof *argv);
    if (!argv) return xerr(e, fn->line, fn->col, "out of memory");
    for (int i = 0; i < n_args; i++)
        if (!eval_operand(e, args[i], dot, &argv[i])) return false;
    if (final) argv[n_args] = *final;
    const operand *at = n_args ? args[0] : fn;
#define WANT(k)                                                                                                       \
    if (argc != (k)) return xerr(e, fn->line, fn->col, "wrong number of args for %s: want %d got %d", func_names[fn->func], k, argc)
    switch (fn->func) {
    case F_NOT: WANT(1); *out = v_bool(!truth(argv[0])); return true;
    case F_EQ: {
        if (argc < 2) return xerr(e, fn->line, fn->col, "wrong number of args for eq: want at least 2 got %d", argc);
        for (int i = 1; i < argc; i++) {
            int r;
            if (!compare(e, at, argv[0], argv[i], &r, false)) return false;
            if (r == 0) {
                *out = v_bool(true);
                return true;
            }
        }
        *out = v_bool(false);
        return true;
    }
    case F_NE:
    case F_LT:
    case F_LE:
    case F_GT:
    case F_GE: {
        WANT(2);
        int r;
        if (!compare(e, at, argv[0], argv[1], &r, fn->func != F_NE)) return false;
        bool b = fn->func == F_NE ? r != 0 : fn->func == F_LT ? r < 0 : fn->func == F_LE ? r <= 0 : fn->func == F_GT ? r > 0 : r >= 0;
        *out = v_bool(b);
        return true;
    }
    case F_LEN:
        WANT(1);
        switch (argv[0].k) {
        case V_NIL: *out = v_int(0); return true;
        case V_STR: *out = v_int((int64_t)argv[0].str.n); return true;
        case V_LIST: *out = v_int((int64_t)argv[0].list.n); return true;
        case V_MAP: *out = v_int((int64_t)argv[0].map->n); return true;
        default: return xerr(e, fn->line, fn->col, "len of type %s", kind_name(argv[0].k));
        }
    case F_INDEX: {
        if (argc < 1) return xerr(e, fn->line, fn->col, "wrong number of args for index: want at least 1 got 0");
        value v = argv[0];
        for (int i = 1; i < argc; i++) {
            if (v.k == V_LIST || v.k == V_STR) {
                int64_t k = 0;
                if (!to_index(e, at, argv[i], &k)) return false;
                size_t n = v.k == V_LIST ? v.list.n : v.str.n;
                if (k < 0 || (uint64_t)k >= n) return xerr(e, fn->line, fn->col, "error calling index: index out of range: %" PRId64, k);
                v = v.k == V_LIST ? v.list.items[k] : v_int((unsigned char)v.str.s[k]);
            } else if (v.k == V_MAP) {
                if (argv[i].k != V_STR) return xerr(e, fn->line, fn->col, "error calling index: map key is not a string");
                value r = v_nil();
                for (size_t j = 0; j < v.map->n; j++)
                    if (strlen(v.map->keys[j]) == argv[i].str.n && memcmp(v.map->keys[j], argv[i].str.s, argv[i].str.n) == 0)
                        r = v.map->vals[j];
                v = r;
            } else {
                return xerr(e, fn->line, fn->col, "error calling index: can't index item of type %s", kind_name(v.k));
            }
        }
        *out = v;
        return true;
    }
    case F_SLICE: {
        if (argc < 1 || argc > 3)
            return xerr(e, fn->line, fn->col, "wrong number of args for slice: want 1 to 3 got %d", argc);
        value v = argv[0];
        if (v.k != V_LIST && v.k != V_STR) return xerr(e, fn->line, fn->col, "can't slice item of type %s", kind_name(v.k));
        int64_t n = (int64_t)(v.k == V_LIST ? v.list.n : v.str.n), lo = 0, hi = n;
        if (argc >= 2 && !to_index(e, at, argv[1], &lo)) return false;
        if (argc >= 3 && !to_index(e, at, argv[2], &hi)) return false;
        if (lo < 0 || hi < lo || hi > n)
            return xerr(e, fn->line, fn->col, "error calling slice: index out of range: %" PRId64 ":%" PRId64, lo, hi);
        if (v.k == V_LIST) {
            v.list.items += lo;
            v.list.n = (size_t)(hi - lo);
        } else {
            v.str.s += lo;
            v.str.n = (size_t)(hi - lo);
        }
        *out = v;
        return true;
    }
    case F_PRINT:
    case F_PRINTLN:
    case F_PRINTF:
    case F_JSON: {
        xbuf b = {e, NULL, 0, 0};
        if (fn->func == F_JSON) {
            WANT(1);
            if (!xb_json(&b, argv[0], 0)) return false;
        } else if (fn->func == F_PRINTF) {
            if (!do_printf(e, fn, argv, argc, &b)) return false;
        } else {
            for (int i = 0; i < argc; i++) {
                /* Sprint puts a space between operands when neither is a string; Sprintln always. */
                bool sep = i > 0 && (fn->func == F_PRINTLN || (argv[i - 1].k != V_STR && argv[i].k != V_STR));
                if (sep && !xb_puts(&b, " ")) return false;
                if (argv[i].k == V_NIL ? !xb_puts(&b, "<nil>") : !xb_value(&b, argv[i])) return false;
            }
            if (fn->func == F_PRINTLN && !xb_puts(&b, "\n")) return false;
        }
        *out = xb_value_str(&b);
        return true;
    }
    case F_AND:
    case F_OR: break;
    }
#undef WANT
    return xerr(e, fn->line, fn->col, "internal: unknown function");
}

static bool eval_pipeline(exec *e, const pipeline *pl, value dot, value *out) {
    value v = v_nil();
    for (int c = 0; c < pl->n_cmds; c++) {
        const command *cmd = pl->cmds[c];
        const operand *head = cmd->args[0];
        if (head->kind == OP_FUNC) {
            if (!call_func(e, head, cmd->args + 1, cmd->n_args - 1, c > 0 ? &v : NULL, dot, &v)) return false;
        } else {
            if (!eval_operand(e, head, dot, &v)) return false;
        }
    }
    for (int d = 0; d < pl->n_decl; d++) {
        if (pl->assign ? !set_var(e, pl->decl[d], v) : !push_var(e, pl->decl[d], v)) return false;
    }
    *out = v;
    return true;
}

static bool exec_list(exec *e, const node_list *l, value dot);

static bool exec_range(exec *e, const node *n, value dot) {
    const pipeline *pl = n->pipe;
    /* Evaluate the pipeline without its declarations: they take the key and element. */
    pipeline bare = *pl;
    bare.n_decl = 0;
    value v;
    if (!eval_pipeline(e, &bare, dot, &v)) return false;
    size_t count;
    switch (v.k) {
    case V_NIL: count = 0; break;
    case V_LIST: count = v.list.n; break;
    case V_MAP: count = v.map->n; break;
    case V_INT:
        if (v.i < 0) return xerr(e, n->line, n->col, "range can't iterate over %" PRId64, v.i);
        if (pl->n_decl > 1) return xerr(e, n->line, n->col, "can't use two variables to range over an integer");
        count = (size_t)v.i;
        break;
    default: return xerr(e, n->line, n->col, "range can't iterate over a value of type %s", kind_name(v.k));
    }
    if (count == 0) return exec_list(e, &n->else_list, dot);
    size_t mark = e->n_vars;
    for (int d = 0; d < pl->n_decl; d++)
        if (!push_var(e, pl->decl[d], v_nil())) return false;
    for (size_t i = 0; i < count; i++) {
        if (!step(e, n->line, n->col)) return false;
        value key, elem;
        if (v.k == V_LIST) key = v_int((int64_t)i), elem = v.list.items[i];
        else if (v.k == V_MAP) key = v_str(v.map->keys[i], strlen(v.map->keys[i])), elem = v.map->vals[i];
        else key = v_int((int64_t)i), elem = key;
        if (pl->n_decl == 1) e->vars[mark].v = elem;
        if (pl->n_decl == 2) e->vars[mark].v = key, e->vars[mark + 1].v = elem;
        size_t inner = e->n_vars;
        bool ok = exec_list(e, &n->list, elem);
        e->n_vars = inner;
        if (!ok) return false;
        if (e->flow == 1) {
            e->flow = 0;
            break;
        }
        e->flow = 0;
    }
    e->n_vars = mark;
    return true;
}

static bool exec_node(exec *e, const node *n, value dot) {
    if (!step(e, n->line, n->col)) return false;
    switch (n->kind) {
    case N_TEXT: return emit(e, n->text, n->len);
    case N_ACTION: {
        value v;
        if (!eval_pipeline(e, n->pipe, dot, &v)) return false;
        if (n->pipe->n_decl) return true;
        xbuf b = {e, NULL, 0, 0};
        if (!xb_value(&b, v)) return false;
        return emit(e, b.buf ? b.buf : "", b.len);
    }
    case N_IF:
    case N_WITH: {
        size_t mark = e->n_vars;
        value v;
        bool ok = eval_pipeline(e, n->pipe, dot, &v);
        if (ok) {
            if (truth(v)) ok = exec_list(e, &n->list, n->kind == N_WITH ? v : dot);
            else ok = exec_list(e, &n->else_list, dot);
        }
        e->n_vars = mark;
        return ok;
    }
    case N_RANGE: {
        size_t mark = e->n_vars;
        bool ok = exec_range(e, n, dot);
        e->n_vars = mark;
        return ok;
    }
    case N_BREAK: e->flow = 1; return true;
    case N_CONTINUE: e->flow = 2; return true;
    }
    return false;
}

static bool exec_list(exec *e, const node_list *l, value dot) {
    size_t mark = e->n_vars;
    for (int i = 0; i < l->n; i++) {
        const node *n = l->items[i];
        if (e->cutting && n->id > e->t->cut_id) continue; /* Ollama's cut after {{ .Response }} */
        if (!exec_node(e, n, dot)) return false;
        if (e->flow) break;
    }
    e->n_vars = mark;
    return true;
}

/* ---- data and rendering --------------------------------------------------------------- */

static int cmp_key(const void *a, const void *b) {
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* A map from parallel key/value arrays (keys sorted here, with their values). */
static value make_map(exec *e, size_t n, const char *const *keys, const value *vals) {
    vmap *m = arena_alloc(&e->a, sizeof *m);
    const char **k = arena_alloc(&e->a, (n ? n : 1) * sizeof *k);
    value *v = arena_alloc(&e->a, (n ? n : 1) * sizeof *v);
    if (!m || !k || !v) return v_nil();
    /* Sort key indices, then lay out values in that order. */
    for (size_t i = 0; i < n; i++) k[i] = keys[i];
    qsort(k, n, sizeof *k, cmp_key);
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < n; j++)
            if (k[i] == keys[j]) v[i] = vals[j];
    m->n = n;
    m->keys = k;
    m->vals = v;
    return (value){.k = V_MAP, .map = m};
}

/* A JSON value (cJSON) as template data: objects are maps read with their JSON keys. */
static value json_value(exec *e, const cJSON *j, int depth) {
    if (!j || depth > 64) return v_nil();
    if (cJSON_IsString(j)) return v_str(j->valuestring, strlen(j->valuestring));
    if (cJSON_IsBool(j)) return v_bool(cJSON_IsTrue(j));
    if (cJSON_IsNumber(j)) {
        double d = j->valuedouble;
        if (d == floor(d) && fabs(d) < 9.0e15) return v_int((int64_t)d);
        return (value){.k = V_FLOAT, .f = d};
    }
    int n = cJSON_GetArraySize(j);
    if (cJSON_IsArray(j)) {
        value *items = arena_alloc(&e->a, (size_t)(n ? n : 1) * sizeof *items);
        if (!items) return v_nil();
        int i = 0;
        for (const cJSON *c = j->child; c; c = c->next) items[i++] = json_value(e, c, depth + 1);
        value l = {.k = V_LIST};
        l.list.items = items;
        l.list.n = (size_t)n;
        return l;
    }
    if (cJSON_IsObject(j)) {
        const char **keys = arena_alloc(&e->a, (size_t)(n ? n : 1) * sizeof *keys);
        value *vals = arena_alloc(&e->a, (size_t)(n ? n : 1) * sizeof *vals);
        if (!keys || !vals) return v_nil();
        int i = 0;
        for (const cJSON *c = j->child; c; c = c->next, i++) {
            keys[i] = c->string ? c->string : "";
            vals[i] = json_value(e, c, depth + 1);
        }
        value m = make_map(e, (size_t)n, keys, vals);
        if (m.k == V_MAP) ((vmap *)m.map)->from_json = true;
        return m;
    }
    return v_nil();
}

typedef struct {
    const char *role;
    char *content;
    size_t len;
    const char *thinking;
    const cJSON *tool_calls;
    const char *tool_call_id, *tool_name;
} turn;

static bool render_once(exec *e, value root) {
    e->root = root;
    e->n_vars = 0;
    e->flow = 0;
    return exec_list(e, &e->t->root, root) && !e->failed;
}

static value legacy_root(exec *e, const strata_template_input *in, const char *sys, const char *prompt,
                         const char *resp) {
    static const char *const keys[] = {"System", "Prompt", "Response", "Think", "ThinkLevel", "IsThinkSet"};
    const char *level = in->think_level ? in->think_level : "";
    value vals[6] = {v_str(sys, strlen(sys)),   v_str(prompt, strlen(prompt)), v_str(resp, strlen(resp)),
                     v_bool(in->think),         v_str(level, strlen(level)),   v_bool(in->is_think_set)};
    return make_map(e, 6, keys, vals);
}

strata_status strata_template_render(const strata_template *t, const strata_template_input *in, char **out,
                                     size_t *out_len) {
    *out = NULL;
    exec e = {0};
    e.t = t;
    /* The conversation: the system prompt first when the messages carry none, then
     * consecutive messages of one role merged with a blank line (as Ollama collates). */
    size_t n_in = in->n_messages;
    bool has_system = false;
    for (size_t i = 0; i < n_in; i++)
        if (in->messages[i].role && strcmp(in->messages[i].role, "system") == 0) has_system = true;
    bool add_sys = in->system && *in->system && !has_system;
    turn *turns = arena_alloc(&e.a, (n_in + 1) * sizeof *turns);
    size_t nt = 0;
    xbuf sys = {&e, NULL, 0, 0};
    bool ok = turns != NULL;
    for (size_t i = 0; ok && i < n_in + add_sys; i++) {
        const char *role = add_sys && i == 0 ? "system" : in->messages[i - add_sys].role;
        const char *content = add_sys && i == 0 ? in->system : in->messages[i - add_sys].content;
        const strata_chat_message *src = add_sys && i == 0 ? NULL : &in->messages[i - add_sys];
        const char *thinking = src ? src->thinking : NULL;
        const bool tooly = src && (src->tool_calls || strcmp(role, "tool") == 0);
        if (!role) role = "";
        if (!content) content = "";
        size_t cl = strlen(content);
        if (strcmp(role, "system") == 0) {
            ok = (sys.len == 0 || xb_puts(&sys, "\n\n")) && xb_put(&sys, content, cl);
            if (sys.len == 0 && ok) ok = xb_puts(&sys, ""); /* an empty system message still counts */
        }
        if (nt > 0 && strcmp(turns[nt - 1].role, role) == 0 && !tooly && !turns[nt - 1].tool_calls &&
            strcmp(role, "tool") != 0) {
            char *merged = arena_alloc(&e.a, turns[nt - 1].len + 2 + cl + 1);
            if (!merged) ok = false;
            else {
                memcpy(merged, turns[nt - 1].content, turns[nt - 1].len);
                memcpy(merged + turns[nt - 1].len, "\n\n", 2);
                memcpy(merged + turns[nt - 1].len + 2, content, cl + 1);
                turns[nt - 1].content = merged;
                turns[nt - 1].len += 2 + cl;
                if (thinking && *thinking) turns[nt - 1].thinking = thinking;
            }
        } else {
            turns[nt].role = role;
            turns[nt].content = arena_strndup(&e.a, content, cl);
            turns[nt].len = cl;
            turns[nt].thinking = thinking;
            turns[nt].tool_calls = src ? src->tool_calls : NULL;
            turns[nt].tool_call_id = src ? src->tool_call_id : NULL;
            turns[nt].tool_name = src ? src->tool_name : NULL;
            ok = ok && turns[nt].content;
            nt++;
        }
    }
    if (!ok) {
        arena_free(&e.a);
        return strata_fail(STRATA_ERR_NOMEM, "out of memory");
    }
    const char *system_text = sys.buf ? sys.buf : "";
    if (in->suffix && *in->suffix) {
        /* Fill-in-the-middle: .Prompt and .Suffix, as Ollama renders a request with a suffix. */
        const char *prompt = "";
        for (size_t i = 0; i < nt; i++)
            if (strcmp(turns[i].role, "user") == 0) prompt = turns[i].content;
        static const char *const fkeys[] = {"System", "Prompt", "Suffix", "Response"};
        value fv[4] = {v_str(system_text, strlen(system_text)), v_str(prompt, strlen(prompt)),
                       v_str(in->suffix, strlen(in->suffix)), v_str("", 0)};
        value root = make_map(&e, 4, fkeys, fv);
        if (root.k == V_MAP) {
            e.cutting = in->add_generation_prompt && t->cut_id >= 0;
            ok = render_once(&e, root);
        } else if (!e.failed) {
            ok = xerr(&e, 0, 0, "out of memory");
        }
    } else if (t->uses_messages) {
        value *msgs = arena_alloc(&e.a, (nt ? nt : 1) * sizeof *msgs);
        ok = msgs != NULL;
        for (size_t i = 0; ok && i < nt; i++) {
            /* .Role and .Content always; the others only when the message has them */
            const char *mkeys[6] = {"Role", "Content"};
            value mv[6] = {v_str(turns[i].role, strlen(turns[i].role)), v_str(turns[i].content, turns[i].len)};
            size_t nk = 2;
            if (turns[i].thinking && *turns[i].thinking) {
                mkeys[nk] = "Thinking";
                mv[nk++] = v_str(turns[i].thinking, strlen(turns[i].thinking));
            }
            if (cJSON_GetArraySize(turns[i].tool_calls) > 0) {
                mkeys[nk] = "ToolCalls";
                mv[nk++] = json_value(&e, turns[i].tool_calls, 0);
            }
            if (turns[i].tool_call_id && *turns[i].tool_call_id) {
                mkeys[nk] = "ToolCallID";
                mv[nk++] = v_str(turns[i].tool_call_id, strlen(turns[i].tool_call_id));
            }
            if (turns[i].tool_name && *turns[i].tool_name) {
                mkeys[nk] = "ToolName";
                mv[nk++] = v_str(turns[i].tool_name, strlen(turns[i].tool_name));
            }
            msgs[i] = make_map(&e, nk, mkeys, mv);
            ok = msgs[i].k == V_MAP;
        }
        static const char *const rkeys[] = {"System", "Messages", "Response", "Think", "ThinkLevel", "IsThinkSet", "Tools"};
        value list = {.k = V_LIST};
        list.list.items = msgs;
        list.list.n = nt;
        const char *level = in->think_level ? in->think_level : "";
        value rv[7] = {v_str(system_text, strlen(system_text)), list, v_str("", 0), v_bool(in->think),
                       v_str(level, strlen(level)), v_bool(in->is_think_set),
                       cJSON_GetArraySize(in->tools) > 0 ? json_value(&e, in->tools, 0) : v_nil()};
        value root = ok ? make_map(&e, 7, rkeys, rv) : v_nil();
        if (ok && root.k == V_MAP) ok = render_once(&e, root);
        else if (!e.failed) ok = xerr(&e, 0, 0, "out of memory");
    } else {
        /* Ollama's legacy mode: one rendering per turn of system/prompt/response. */
        const char *system = "", *prompt = "", *response = "";
        for (size_t i = 0; ok && i < nt; i++) {
            const char *role = turns[i].role;
            bool flush = (strcmp(role, "system") == 0 && (*prompt || *response)) || (strcmp(role, "user") == 0 && *response);
            if (flush) {
                ok = render_once(&e, legacy_root(&e, in, system, prompt, response));
                system = prompt = response = "";
            }
            if (strcmp(role, "system") == 0) system = turns[i].content;
            else if (strcmp(role, "user") == 0) prompt = turns[i].content;
            else if (strcmp(role, "assistant") == 0) response = turns[i].content;
        }
        if (ok) {
            e.cutting = in->add_generation_prompt && t->cut_id >= 0;
            ok = render_once(&e, legacy_root(&e, in, system, prompt, response));
        }
    }
    free(e.vars);
    arena_free(&e.a);
    if (!ok || e.failed) {
        free(e.out);
        if (!e.failed) return strata_fail(STRATA_ERR_NOMEM, "out of memory");
        return STRATA_ERR_FORMAT;
    }
    if (!e.out) {
        e.out = malloc(1);
        if (!e.out) return strata_fail(STRATA_ERR_NOMEM, "out of memory");
        e.out[0] = 0;
    }
    *out = e.out;
    if (out_len) *out_len = e.len;
    return STRATA_OK;
}
