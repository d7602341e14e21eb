/* Model names: [host/][namespace/]model[:tag], validated part by part (see store.h). */
#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "store/store.h"

static bool is_alnum(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'); }

/* Validates one part; returns NULL when fine, else why not. */
static const char *check_part(const char *s, size_t n, size_t max, const char *extra, bool first_underscore) {
    if (n == 0) return "is empty";
    if (n > max) return "is too long";
    if (!(is_alnum(s[0]) || (first_underscore && s[0] == '_'))) return "must start with a letter or digit";
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (!is_alnum((char)c) && !strchr(extra, c)) return "has a character outside [A-Za-z0-9" "._-]";
    }
    return NULL;
}

static const char *check_host(const char *s, size_t n) {
    const char *colon = memchr(s, ':', n);
    size_t hn = colon ? (size_t)(colon - s) : n;
    const char *why = check_part(s, hn, 255, ".-_", false);
    if (why) return why;
    for (size_t i = 0; i + 1 < hn; i++)
        if (s[i] == '.' && s[i + 1] == '.') return "has '..'";
    if (colon) {
        size_t pn = n - hn - 1;
        if (pn == 0 || pn > 5) return "has a bad port";
        for (size_t i = hn + 1; i < n; i++)
            if (!isdigit((unsigned char)s[i])) return "has a bad port";
    }
    if (n > 255) return "is too long";
    return NULL;
}

static void copy_lower(char *dst, const char *src, size_t n) {
    for (size_t i = 0; i < n; i++) dst[i] = (char)tolower((unsigned char)src[i]);
    dst[n] = 0;
}

strata_status strata_model_name_parse(const char *text, strata_model_name *out) {
    if (!text || !*text) return strata_fail(STRATA_ERR_INVALID, "invalid model name: empty");
    size_t len = strlen(text);
    if (len > 600) return strata_fail(STRATA_ERR_INVALID, "invalid model name: too long");
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)text[i];
        if (c < 0x21 || c >= 0x7f || c == '\\')
            return strata_fail(STRATA_ERR_INVALID, "invalid model name '%s': only letters, digits and . _ - / : are allowed",
                               text);
    }
    /* Split off the tag: the last ':' after the last '/'. */
    const char *slash = strrchr(text, '/');
    const char *base = slash ? slash + 1 : text;
    const char *colon = strrchr(base, ':');
    size_t path_len = colon ? (size_t)(colon - text) : len;
    const char *tag = colon ? colon + 1 : STRATA_NAME_DEFAULT_TAG;
    size_t tag_len = strlen(tag);

    /* The path part: up to three components separated by '/'. */
    const char *comp[4];
    size_t comp_len[4];
    int nc = 0;
    const char *p = text, *end = text + path_len;
    while (p <= end) {
        const char *q = memchr(p, '/', (size_t)(end - p));
        if (!q) q = end;
        if (nc == 3) return strata_fail(STRATA_ERR_INVALID, "invalid model name '%s': more than host/namespace/model", text);
        comp[nc] = p;
        comp_len[nc] = (size_t)(q - p);
        nc++;
        p = q + 1;
    }
    const char *host = STRATA_NAME_DEFAULT_HOST, *ns = STRATA_NAME_DEFAULT_NAMESPACE;
    size_t host_len = strlen(host), ns_len = strlen(ns);
    const char *model = comp[nc - 1];
    size_t model_len = comp_len[nc - 1];
    if (nc >= 2) {
        ns = comp[nc - 2];
        ns_len = comp_len[nc - 2];
    }
    if (nc == 3) {
        host = comp[0];
        host_len = comp_len[0];
    }
    const char *why;
    if ((why = check_host(host, host_len)))
        return strata_fail(STRATA_ERR_INVALID, "invalid model name '%s': host %s", text, why);
    if ((why = check_part(ns, ns_len, 80, "_-", false)))
        return strata_fail(STRATA_ERR_INVALID, "invalid model name '%s': namespace %s%s", text, why,
                           memchr(ns, '.', ns_len) ? " (no '.' in a namespace)" : "");
    if ((why = check_part(model, model_len, 80, "._-", false)))
        return strata_fail(STRATA_ERR_INVALID, "invalid model name '%s': model %s", text, why);
    if ((why = check_part(tag, tag_len, 80, "._-", true)))
        return strata_fail(STRATA_ERR_INVALID, "invalid model name '%s': tag %s", text, why);
    memset(out, 0, sizeof *out);
    copy_lower(out->host, host, host_len);
    copy_lower(out->ns, ns, ns_len);
    copy_lower(out->model, model, model_len);
    copy_lower(out->tag, tag, tag_len);
    return STRATA_OK;
}

size_t strata_model_name_display(const strata_model_name *n, char *buf, size_t cap) {
    int r;
    if (strcmp(n->host, STRATA_NAME_DEFAULT_HOST) != 0)
        r = snprintf(buf, cap, "%s/%s/%s:%s", n->host, n->ns, n->model, n->tag);
    else if (strcmp(n->ns, STRATA_NAME_DEFAULT_NAMESPACE) != 0)
        r = snprintf(buf, cap, "%s/%s:%s", n->ns, n->model, n->tag);
    else
        r = snprintf(buf, cap, "%s:%s", n->model, n->tag);
    return r < 0 ? 0 : (size_t)r;
}

size_t strata_model_name_full(const strata_model_name *n, char *buf, size_t cap) {
    int r = snprintf(buf, cap, "%s/%s/%s:%s", n->host, n->ns, n->model, n->tag);
    return r < 0 ? 0 : (size_t)r;
}

bool strata_digest_valid(const char *d) {
    if (!d || strncmp(d, "sha256:", 7) != 0 || strlen(d) != 71) return false;
    for (int i = 7; i < 71; i++)
        if (!((d[i] >= '0' && d[i] <= '9') || (d[i] >= 'a' && d[i] <= 'f'))) return false;
    return true;
}
