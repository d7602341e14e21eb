/* Fuzz target: the JSON prefix validator (sampler/json_constraint.h).
 * Input: byte 0 bit 0 picks the top level (1: object only, 0: any value); the rest is the text.
 * Checked, for any bytes:
 *   - the verdict (complete / valid prefix / refused) equals the independent recursive-descent
 *     reference's (tests/sampler/json_ref.h), and a refused text is refused at exactly the
 *     first byte after which no continuation exists;
 *   - feeding the text at once, byte by byte, or in chunks through copied states gives the
 *     same state (copying a state is branching; nothing depends on how bytes are grouped);
 *   - strata_json_check agrees; closed implies complete; the depth stays within the limit;
 *   - whatever the validator calls complete, cJSON parses strictly (nothing after the value),
 *     and cJSON's re-serialisation of it is complete too. cJSON is laxer than RFC 8259
 *     (leading zeros, raw control bytes, invalid UTF-8, lone surrogates), so the other
 *     direction is left to the reference. */
#include <cjson/cJSON.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../sampler/json_ref.h"
#include "sampler/json_constraint.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1 || size > (1 << 16)) return 0;
    const bool obj = data[0] & 1;
    const strata_json_top top = obj ? STRATA_JSON_TOP_OBJECT : STRATA_JSON_TOP_ANY;
    const char *text = (const char *)data + 1;
    const size_t n = size - 1;

    strata_json_state s;
    strata_json_init(&s, top, 0);
    size_t fail_at = n;
    for (size_t i = 0; i < n; i++) {
        if (!strata_json_feed_byte(&s, (uint8_t)text[i])) {
            fail_at = i;
            break;
        }
        if (strata_json_depth(&s) > STRATA_JSON_MAX_DEPTH) abort();
        if (strata_json_closed(&s) && !strata_json_complete(&s)) abort();
    }
    int want = jref_check(text, n, obj);
    int got = !strata_json_ok(&s) ? JREF_ERROR : strata_json_complete(&s) ? JREF_COMPLETE : JREF_PREFIX;
    if (got != want) abort();
    if (got == JREF_ERROR) {
        if (jref_check(text, fail_at, obj) == JREF_ERROR) abort();
        if (jref_check(text, fail_at + 1, obj) != JREF_ERROR) abort();
    }

    /* the same bytes in chunks (sizes taken from the text itself), through copies */
    strata_json_state c;
    strata_json_init(&c, top, 0);
    for (size_t i = 0; i < n;) {
        size_t len = 1 + ((uint8_t)text[i] % 7);
        if (len > n - i) len = n - i;
        strata_json_state copy = c;
        strata_json_feed(&copy, text + i, len);
        c = copy;
        i += len;
    }
    if (strata_json_ok(&c) != strata_json_ok(&s) || strata_json_complete(&c) != strata_json_complete(&s) ||
        strata_json_closed(&c) != strata_json_closed(&s) || strata_json_depth(&c) != strata_json_depth(&s))
        abort();
    strata_json_state whole;
    strata_json_init(&whole, top, 0);
    if (strata_json_feed(&whole, text, n) != strata_json_ok(&s)) abort();

    if ((strata_json_check(top, text, n) == STRATA_OK) != (got == JREF_COMPLETE)) abort();

    if (got == JREF_COMPLETE) {
        char *z = malloc(n + 1);
        if (!z) return 0;
        memcpy(z, text, n); /* complete texts hold no NUL byte */
        z[n] = 0;
        cJSON *j = cJSON_ParseWithOpts(z, NULL, true);
        if (!j) abort();
        if (obj && !cJSON_IsObject(j)) abort();
        char *again = cJSON_PrintUnformatted(j);
        if (again && strata_json_check(STRATA_JSON_TOP_ANY, again, strlen(again)) != STRATA_OK) abort();
        free(again);
        cJSON_Delete(j);
        free(z);
    }
    return 0;
}
