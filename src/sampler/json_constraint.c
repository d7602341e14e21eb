/* Incremental JSON prefix validator; see json_constraint.h.
 *
 * A pushdown automaton whose stack is one bit per open container. Each state says what the
 * next byte may be; numbers have no terminator of their own, so a byte that cannot continue
 * a number ends it and is then read again as whatever follows a value. */
#include "sampler/json_constraint.h"

enum {
    S_ERR = 0,
    S_VALUE,     /* a value is due (top level, after ':' or after ',' in an array) */
    S_ARR_FIRST, /* after '[': a value or ']' */
    S_OBJ_FIRST, /* after '{': a key or '}' */
    S_OBJ_KEY,   /* after ',' in an object: a key */
    S_COLON,     /* after a key: ':' */
    S_AFTER,     /* after a value: ',' or the container's closer (top level: whitespace only) */
    S_STR,       /* inside a string */
    S_ESC,       /* after '\' */
    S_HEX,       /* inside \uXXXX, aux digits read */
    S_LOW_BS,    /* after a high surrogate escape: '\' of the low one is due */
    S_LOW_U,     /* ... then 'u' */
    S_UTF8,      /* inside a multi-byte character, aux continuation bytes left */
    S_N_MINUS,   /* "-" */
    S_N_ZERO,    /* "0" or "-0" */
    S_N_INT,     /* [1-9][0-9]* */
    S_N_DOT,     /* "." */
    S_N_FRAC,    /* "." [0-9]+ */
    S_N_E,       /* "e" */
    S_N_ESIGN,   /* "e" sign */
    S_N_EXP,     /* "e" sign? [0-9]+ */
    S_LIT,       /* inside true/false/null: literal `code`, aux bytes read */
};

enum { F_KEY = 1, F_LOW = 2, F_TOPOBJ = 4 };

static const char *const literals[3] = {"true", "false", "null"};
static const uint8_t literal_len[3] = {4, 5, 4};

void strata_json_init(strata_json_state *s, strata_json_top top, uint16_t max_ws_run) {
    *s = (strata_json_state){0};
    s->state = S_VALUE;
    s->max_ws = max_ws_run;
    if (top == STRATA_JSON_TOP_OBJECT) s->flags = F_TOPOBJ;
}

static bool is_ws(uint8_t c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }
static bool is_digit(uint8_t c) { return c >= '0' && c <= '9'; }

static int hex_value(uint8_t c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

static bool top_is_object(const strata_json_state *s) { return (s->stack >> (s->depth - 1)) & 1; }

static bool refuse(strata_json_state *s) {
    s->state = S_ERR;
    return false;
}

static bool push(strata_json_state *s, bool object) {
    if (s->depth >= STRATA_JSON_MAX_DEPTH) return refuse(s);
    uint64_t bit = (uint64_t)1 << s->depth;
    s->stack = object ? (s->stack | bit) : (s->stack & ~bit);
    s->depth++;
    s->state = object ? S_OBJ_FIRST : S_ARR_FIRST;
    return true;
}

/* A value starts with c (state S_VALUE or S_ARR_FIRST, c not whitespace). */
static bool begin_value(strata_json_state *s, uint8_t c) {
    if (s->depth == 0 && (s->flags & F_TOPOBJ) && c != '{') return refuse(s);
    switch (c) {
    case '{': return push(s, true);
    case '[': return push(s, false);
    case '"':
        s->flags &= (uint8_t)~F_KEY;
        s->state = S_STR;
        return true;
    case '-': s->state = S_N_MINUS; return true;
    case '0': s->state = S_N_ZERO; return true;
    case 't': case 'f': case 'n':
        s->code = c == 't' ? 0 : c == 'f' ? 1 : 2;
        s->aux = 1;
        s->state = S_LIT;
        return true;
    default:
        if (c >= '1' && c <= '9') {
            s->state = S_N_INT;
            return true;
        }
        return refuse(s);
    }
}

/* A value has ended: a key string goes on to ':', anything else to S_AFTER. */
static void end_value(strata_json_state *s) { s->state = S_AFTER; }

static bool after_value(strata_json_state *s, uint8_t c) {
    if (s->depth == 0) return refuse(s); /* only whitespace after the top-level value */
    bool obj = top_is_object(s);
    if (c == ',') {
        s->state = obj ? S_OBJ_KEY : S_VALUE;
        return true;
    }
    if ((c == '}' && obj) || (c == ']' && !obj)) {
        s->depth--;
        s->state = S_AFTER;
        return true;
    }
    return refuse(s);
}

/* Byte c inside a string (state S_STR). */
static bool string_byte(strata_json_state *s, uint8_t c) {
    if (c == '"') {
        if (s->flags & F_KEY) s->state = S_COLON;
        else end_value(s);
        return true;
    }
    if (c == '\\') {
        s->state = S_ESC;
        return true;
    }
    if (c < 0x20) return refuse(s);
    if (c < 0x80) return true;
    /* UTF-8 lead byte: how many continuation bytes and the range of the first one. */
    s->lo = 0x80;
    s->hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF) {
        s->aux = 1;
    } else if (c >= 0xE0 && c <= 0xEF) {
        s->aux = 2;
        if (c == 0xE0) s->lo = 0xA0;      /* no overlong 3-byte forms */
        else if (c == 0xED) s->hi = 0x9F; /* no encoded surrogates */
    } else if (c >= 0xF0 && c <= 0xF4) {
        s->aux = 3;
        if (c == 0xF0) s->lo = 0x90;      /* no overlong 4-byte forms */
        else if (c == 0xF4) s->hi = 0x8F; /* nothing above U+10FFFF */
    } else {
        return refuse(s); /* continuation byte, C0/C1 or F5-FF */
    }
    s->state = S_UTF8;
    return true;
}

static bool escape_byte(strata_json_state *s, uint8_t c) {
    switch (c) {
    case '"': case '\\': case '/': case 'b': case 'f': case 'n': case 'r': case 't':
        s->state = S_STR;
        return true;
    case 'u':
        s->state = S_HEX;
        s->aux = 0;
        s->code = 0;
        return true;
    default: return refuse(s);
    }
}

static bool hex_byte(strata_json_state *s, uint8_t c) {
    int h = hex_value(c);
    if (h < 0) return refuse(s);
    s->code = (s->code << 4) | (uint32_t)h;
    s->aux++;
    bool low_due = (s->flags & F_LOW) != 0;
    if (s->aux == 1 && low_due && h != 0xD) return refuse(s);
    if (s->aux == 2) {
        bool low = s->code >= 0xDC && s->code <= 0xDF;
        if (low_due ? !low : low) return refuse(s); /* a low surrogate only right after a high one */
    }
    if (s->aux < 4) return true;
    if (low_due) {
        s->flags &= (uint8_t)~F_LOW;
        s->state = S_STR;
    } else if (s->code >= 0xD800 && s->code <= 0xDBFF) {
        s->flags |= F_LOW;
        s->state = S_LOW_BS;
    } else {
        s->state = S_STR;
    }
    return true;
}

/* Number states that may end the number here. */
static bool number_can_end(uint8_t st) { return st == S_N_ZERO || st == S_N_INT || st == S_N_FRAC || st == S_N_EXP; }

static bool number_byte(strata_json_state *s, uint8_t c) {
    switch (s->state) {
    case S_N_MINUS:
        if (c == '0') s->state = S_N_ZERO;
        else if (c >= '1' && c <= '9') s->state = S_N_INT;
        else return refuse(s);
        return true;
    case S_N_ZERO:
    case S_N_INT:
        if (is_digit(c) && s->state == S_N_INT) return true;
        if (c == '.') { s->state = S_N_DOT; return true; }
        if (c == 'e' || c == 'E') { s->state = S_N_E; return true; }
        break;
    case S_N_DOT:
        if (!is_digit(c)) return refuse(s);
        s->state = S_N_FRAC;
        return true;
    case S_N_FRAC:
        if (is_digit(c)) return true;
        if (c == 'e' || c == 'E') { s->state = S_N_E; return true; }
        break;
    case S_N_E:
        if (c == '+' || c == '-') { s->state = S_N_ESIGN; return true; }
        if (!is_digit(c)) return refuse(s);
        s->state = S_N_EXP;
        return true;
    case S_N_ESIGN:
        if (!is_digit(c)) return refuse(s);
        s->state = S_N_EXP;
        return true;
    case S_N_EXP:
        if (is_digit(c)) return true;
        break;
    default: return refuse(s);
    }
    /* The number ended before c: read c as what follows a value. */
    end_value(s);
    return after_value(s, c); /* (whitespace never gets here: the caller ends the number at it) */
}

bool strata_json_feed_byte(strata_json_state *s, uint8_t c) {
    uint8_t st = s->state;
    /* Whitespace between tokens (a number ends at it too). */
    if (is_ws(c) && (st == S_VALUE || st == S_ARR_FIRST || st == S_OBJ_FIRST || st == S_OBJ_KEY || st == S_COLON ||
                     st == S_AFTER || number_can_end(st))) {
        if (s->max_ws && s->ws_run >= s->max_ws) return refuse(s);
        s->ws_run++;
        if (number_can_end(st)) end_value(s);
        return true;
    }
    if (st != S_ERR) s->ws_run = 0;
    switch (st) {
    case S_ERR: return false;
    case S_VALUE: return begin_value(s, c);
    case S_ARR_FIRST:
        if (c == ']') {
            s->depth--;
            s->state = S_AFTER;
            return true;
        }
        return begin_value(s, c);
    case S_OBJ_FIRST:
        if (c == '}') {
            s->depth--;
            s->state = S_AFTER;
            return true;
        }
        /* fall through */
    case S_OBJ_KEY:
        if (c != '"') return refuse(s);
        s->flags |= F_KEY;
        s->state = S_STR;
        return true;
    case S_COLON:
        if (c != ':') return refuse(s);
        s->state = S_VALUE;
        return true;
    case S_AFTER: return after_value(s, c);
    case S_STR: return string_byte(s, c);
    case S_ESC: return escape_byte(s, c);
    case S_HEX: return hex_byte(s, c);
    case S_LOW_BS:
        if (c != '\\') return refuse(s);
        s->state = S_LOW_U;
        return true;
    case S_LOW_U:
        if (c != 'u') return refuse(s);
        s->state = S_HEX;
        s->aux = 0;
        s->code = 0;
        return true;
    case S_UTF8:
        if (c < s->lo || c > s->hi) return refuse(s);
        s->lo = 0x80;
        s->hi = 0xBF;
        if (--s->aux == 0) s->state = S_STR;
        return true;
    case S_LIT:
        if (c != (uint8_t)literals[s->code][s->aux]) return refuse(s);
        if (++s->aux == literal_len[s->code]) end_value(s);
        return true;
    default: return number_byte(s, c);
    }
}

bool strata_json_feed(strata_json_state *s, const char *bytes, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (!strata_json_feed_byte(s, (uint8_t)bytes[i])) return false;
    return s->state != S_ERR;
}

bool strata_json_ok(const strata_json_state *s) { return s->state != S_ERR; }

bool strata_json_complete(const strata_json_state *s) {
    return s->depth == 0 && (s->state == S_AFTER || number_can_end(s->state));
}

bool strata_json_closed(const strata_json_state *s) { return s->depth == 0 && s->state == S_AFTER; }

int strata_json_depth(const strata_json_state *s) { return s->depth; }

static const char *expected(const strata_json_state *s) {
    switch (s->state) {
    case S_VALUE: return s->depth == 0 && (s->flags & F_TOPOBJ) ? "'{'" : "a value";
    case S_ARR_FIRST: return "a value or ']'";
    case S_OBJ_FIRST: return "a key or '}'";
    case S_OBJ_KEY: return "a key";
    case S_COLON: return "':'";
    case S_AFTER: return s->depth == 0 ? "the end of the text" : top_is_object(s) ? "',' or '}'" : "',' or ']'";
    case S_STR: return "a string character";
    case S_ESC: return "an escape character";
    case S_HEX: return (s->flags & F_LOW) ? "the hex digits of a low surrogate" : "a hex digit";
    case S_LOW_BS:
    case S_LOW_U: return "a low surrogate escape";
    case S_UTF8: return "a UTF-8 continuation byte";
    case S_LIT: return "a literal (true, false, null)";
    default: return "a number";
    }
}

strata_status strata_json_check(strata_json_top top, const char *text, size_t len) {
    strata_json_state s;
    strata_json_init(&s, top, 0);
    for (size_t i = 0; i < len; i++) {
        strata_json_state before = s;
        if (!strata_json_feed_byte(&s, (uint8_t)text[i])) {
            if (before.depth >= STRATA_JSON_MAX_DEPTH && (text[i] == '{' || text[i] == '['))
                return strata_fail(STRATA_ERR_FORMAT, "json: nesting deeper than %d at offset %zu",
                                   STRATA_JSON_MAX_DEPTH, i);
            return strata_fail(STRATA_ERR_FORMAT, "json: byte 0x%02x where %s was expected at offset %zu",
                               (unsigned)(uint8_t)text[i], expected(&before), i);
        }
    }
    if (!strata_json_complete(&s))
        return strata_fail(STRATA_ERR_FORMAT, "json: text ends where %s was expected at offset %zu", expected(&s), len);
    return STRATA_OK;
}
