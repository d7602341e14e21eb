/* Separates a model's reasoning from its answer, as Ollama's thinking parser does: output
 * that opens with the template's opening tag (after white space) is reasoning until the
 * closing tag; white space after either tag is dropped; everything after the closing tag is
 * the answer. A prompt that already ends with the opening tag (a template that opens the
 * reasoning itself) starts inside it. Output that does not open with the tag is all answer.
 *
 * Text arrives in pieces that may split a tag: a tail that could still become a tag is held
 * back until the next piece (or the end) decides it. Tags are ASCII in every template we
 * know, so the cuts fall between UTF-8 characters. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/internal.h"

enum { LOOKING, THINKING, AFTER, CONTENT };

void srv_think_init(srv_think *t, const char *open, const char *close, bool started) {
    memset(t, 0, sizeof *t);
    snprintf(t->open, sizeof t->open, "%s", open);
    snprintf(t->close, sizeof t->close, "%s", close);
    t->state = started ? THINKING : LOOKING;
    t->eat_space = started;
}

static bool is_ws(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

/* The length of the longest suffix of s[0..n) that is a proper prefix of tag. */
static size_t partial_tag(const char *s, size_t n, const char *tag) {
    size_t tl = strlen(tag);
    for (size_t k = tl - 1 < n ? tl - 1 : n; k > 0; k--)
        if (memcmp(s + n - k, tag, k) == 0) return k;
    return 0;
}

bool srv_think_feed(srv_think *t, const char *s, size_t n, bool end, srv_think_out out, void *user) {
    /* held bytes first, then the new piece, in one buffer */
    size_t total = t->n_held + n;
    char stackbuf[1024];
    char *buf = total <= sizeof stackbuf ? stackbuf : malloc(total);
    if (!buf) return false;
    memcpy(buf, t->held, t->n_held);
    memcpy(buf + t->n_held, s, n);
    t->n_held = 0;
    size_t i = 0;
    bool ok = true;
    while (ok && i < total) {
        if (t->state == LOOKING) {
            while (i < total && is_ws(buf[i])) i++;
            if (i == total) break; /* only white space so far: nothing to say yet */
            size_t rest = total - i, ol = strlen(t->open);
            if (rest >= ol && memcmp(buf + i, t->open, ol) == 0) {
                i += ol;
                t->state = THINKING;
                t->eat_space = true;
            } else if (rest < ol && memcmp(buf + i, t->open, rest) == 0 && !end) {
                break; /* may still become the opening tag */
            } else {
                t->state = CONTENT;
            }
        } else if (t->state == THINKING) {
            if (t->eat_space) {
                while (i < total && is_ws(buf[i])) i++;
                if (i == total) break;
                t->eat_space = false;
            }
            const char *c = memmem(buf + i, total - i, t->close, strlen(t->close));
            if (c) {
                size_t k = (size_t)(c - (buf + i));
                if (k) ok = out(user, true, buf + i, k);
                i += k + strlen(t->close);
                t->state = AFTER;
            } else {
                size_t hold = end ? 0 : partial_tag(buf + i, total - i, t->close);
                size_t k = total - i - hold;
                if (k) ok = out(user, true, buf + i, k);
                i += k;
                break;
            }
        } else if (t->state == AFTER) {
            while (i < total && is_ws(buf[i])) i++;
            if (i < total) t->state = CONTENT;
        } else {
            ok = out(user, false, buf + i, total - i);
            i = total;
        }
    }
    /* keep what is undecided (a possible tag, never more than the tag's length) */
    size_t left = total - i;
    if (ok && left && !end) {
        if (left > sizeof t->held) left = sizeof t->held; /* cannot happen: held < tag length */
        memcpy(t->held, buf + total - left, left);
        t->n_held = left;
    } else if (ok && left && end) {
        ok = out(user, t->state == THINKING, buf + i, left);
    }
    if (buf != stackbuf) free(buf);
    return ok;
}
