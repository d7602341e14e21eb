/* An incremental JSON prefix validator: the grammar behind `format: "json"`.
 *
 * Bytes are fed one piece at a time; the state answers, after every piece, whether the bytes
 * so far are a prefix of some JSON text (RFC 8259), whether they already form a complete JSON
 * text, and whether that text is closed (nothing but whitespace may follow). The verdict is
 * exact: a byte is refused as soon as no continuation could make the text valid, never later.
 * The generation loop uses it to mask tokens whose bytes would break the JSON.
 *
 * The grammar is RFC 8259's, checked to the letter:
 *   - values: objects, arrays, strings, numbers, true, false, null; whitespace is only
 *     space, tab, LF and CR, between tokens and around the top-level value;
 *   - numbers: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)? (no leading zeros, no "1.", no
 *     ".5", no "+1", no hex, no NaN/Infinity);
 *   - strings: no raw control bytes (< 0x20); escapes \" \\ \/ \b \f \n \r \t and \uXXXX
 *     (hex digits of either case); raw text must be well-formed UTF-8 (no overlong forms, no
 *     encoded surrogates, nothing above U+10FFFF). A piece may end in the middle of a UTF-8
 *     character or of an escape: such a prefix is valid and the rest is checked when it comes.
 *   - \u escapes must name Unicode scalar values: a high surrogate \uD800-\uDBFF must be
 *     followed at once by a low one \uDC00-\uDFFF, and a lone low surrogate is refused. RFC
 *     8259 tolerates lone surrogates in its grammar but calls their behaviour unpredictable;
 *     refusing them guarantees that the text decodes to valid UTF-8 everywhere.
 * Two deliberate limits, both decided here:
 *   - nesting depth is at most STRATA_JSON_MAX_DEPTH (64) containers; opening one more is
 *     refused. This keeps the state a small fixed-size value (the open containers are one
 *     bit each in a uint64_t), so copying it to try a token and throwing the copy away
 *     (rolling back) costs a struct assignment;
 *   - optionally, a cap on each run of consecutive whitespace bytes (max_ws_run, 0 = no
 *     cap). Generation sets one so that a model cannot loop on newlines forever, which an
 *     unconstrained whitespace rule would allow (llama.cpp's JSON grammar bounds it too).
 *
 * Top level: STRATA_JSON_TOP_OBJECT accepts only an object (what Ollama's `format: "json"`
 * grammar does: its root rule is `object`); STRATA_JSON_TOP_ANY accepts any JSON value.
 *
 * Once a byte is refused the state stays refused (strata_json_ok() false) and ignores further
 * bytes, so the verdict of a longer text never contradicts a shorter one. Not thread-safe per
 * state; states are plain values, so any number can be used at once. */
#ifndef STRATA_SAMPLER_JSON_CONSTRAINT_H
#define STRATA_SAMPLER_JSON_CONSTRAINT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/status.h"

#define STRATA_JSON_MAX_DEPTH 64

typedef enum {
    STRATA_JSON_OFF = 0,    /* (for generation parameters: no constraint) */
    STRATA_JSON_TOP_OBJECT, /* the text must be one JSON object */
    STRATA_JSON_TOP_ANY,    /* the text may be any JSON value */
} strata_json_top;

/* Plain value: copy it to branch, assign it back to roll back. Fields are private. */
typedef struct {
    uint64_t stack;   /* bit i set: open container i (0 = outermost) is an object, else an array */
    uint32_t code;    /* \uXXXX value being read */
    uint16_t ws_run;  /* consecutive whitespace bytes just accepted */
    uint16_t max_ws;  /* cap on ws_run (0 = none) */
    uint8_t state;    /* where the parser is (json_constraint.c) */
    uint8_t depth;    /* open containers */
    uint8_t aux;      /* per state: hex digits read, UTF-8 bytes left, literal position */
    uint8_t flags;    /* string is a key, low surrogate due, top level must be an object */
    uint8_t lo, hi;   /* allowed range of the next UTF-8 continuation byte */
} strata_json_state;

/* top must be STRATA_JSON_TOP_OBJECT or STRATA_JSON_TOP_ANY. */
void strata_json_init(strata_json_state *s, strata_json_top top, uint16_t max_ws_run);

/* Feeds n bytes. Returns false (and stays refused) as soon as one of them cannot continue
 * a valid JSON text; true when all of them were accepted. */
bool strata_json_feed(strata_json_state *s, const char *bytes, size_t n);
bool strata_json_feed_byte(strata_json_state *s, uint8_t c);

/* Whether every byte so far was accepted (the text is a valid prefix). */
bool strata_json_ok(const strata_json_state *s);
/* Whether the bytes so far are a complete JSON text: parsing them as they are would succeed
 * (a top-level number such as "12" is complete though another digit could follow). */
bool strata_json_complete(const strata_json_state *s);
/* Complete, and no byte other than whitespace can follow (the value is closed). */
bool strata_json_closed(const strata_json_state *s);
/* Containers open now. */
int strata_json_depth(const strata_json_state *s);

/* Checks a whole text: STRATA_OK when it is one complete JSON text under `top` (no
 * whitespace cap), else STRATA_ERR_FORMAT with a message naming the offset and what was
 * expected there ("json: ... at offset N"). */
strata_status strata_json_check(strata_json_top top, const char *text, size_t len);

#endif
