/* Who may talk to the server: Host and Origin checks (as Ollama makes them) and the optional
 * bearer token.
 *
 *   - Host: when the server listens on a loopback address, a request's Host must name the
 *     machine locally: absent, "localhost" or "*.localhost", a loopback or unspecified IP
 *     literal, the address the server was bound with, or this machine's host name. Anything
 *     else (a DNS-rebinding page: Host: attacker.example) is 403. Bound to another address,
 *     the server is meant to be reached by other names; Host is not checked (a warning is
 *     logged at start; set STRATA_API_KEY).
 *   - Origin (sent by browsers): allowed are http(s)://localhost, 127.0.0.1 and 0.0.0.0 with
 *     or without a port, app://, file://, tauri://, vscode-webview:// and vscode-file://
 *     origins, plus the comma-separated patterns of STRATA_ORIGINS and OLLAMA_ORIGINS ("*"
 *     matches any run of characters; "*" alone allows every origin). An allowed origin gets
 *     Access-Control-Allow-Origin on every reply and CORS preflights (OPTIONS) are answered
 *     204; any other origin is 403, preflight or not.
 *   - STRATA_API_KEY (optional): every request but a preflight must carry
 *     "Authorization: Bearer KEY", else 401. */
#include <arpa/inet.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "server/internal.h"

static const char *const default_origins[] = {
    "http://localhost",     "https://localhost",     "http://localhost:*",     "https://localhost:*",
    "http://127.0.0.1",     "https://127.0.0.1",     "http://127.0.0.1:*",     "https://127.0.0.1:*",
    "http://0.0.0.0",       "https://0.0.0.0",       "http://0.0.0.0:*",       "https://0.0.0.0:*",
    "http://[::1]",         "https://[::1]",         "http://[::1]:*",         "https://[::1]:*",
    "app://*",              "file://*",              "tauri://*",              "vscode-webview://*",
    "vscode-file://*",
};

/* Case-insensitive match with '*' for any run of characters; a '*' right after ':' at the
 * end of the pattern (a port) matches digits only. */
static bool glob_match(const char *pat, const char *s, const char *start) {
    if (!*pat) return !*s;
    if (*pat == '*') {
        bool port = pat[1] == 0 && pat > start && pat[-1] == ':';
        if (port) {
            if (!*s) return false;
            for (const char *p = s; *p; p++)
                if (!isdigit((unsigned char)*p)) return false;
            return true;
        }
        for (const char *p = s;; p++) {
            if (glob_match(pat + 1, p, start)) return true;
            if (!*p) return false;
        }
    }
    if (tolower((unsigned char)*pat) != tolower((unsigned char)*s)) return false;
    return glob_match(pat + 1, s + 1, start);
}

static void add_origins(strata_server *srv, const char *list) {
    if (!list || !*list) return;
    char *copy = strdup(list);
    if (!copy) return;
    char *save = NULL;
    for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        while (*tok == ' ' || *tok == '\t') tok++;
        size_t n = strlen(tok);
        while (n && (tok[n - 1] == ' ' || tok[n - 1] == '\t' || tok[n - 1] == '/')) tok[--n] = 0;
        if (!n || srv->n_origins >= SRV_MAX_ORIGINS) continue;
        srv->origins[srv->n_origins++] = strdup(tok);
    }
    free(copy);
}

static bool ip_is_local(const char *host) {
    struct in_addr a4;
    struct in6_addr a6;
    if (inet_pton(AF_INET, host, &a4) == 1) {
        uint32_t ip = ntohl(a4.s_addr);
        return (ip >> 24) == 127 || ip == 0;
    }
    if (inet_pton(AF_INET6, host, &a6) == 1) {
        if (IN6_IS_ADDR_LOOPBACK(&a6) || IN6_IS_ADDR_UNSPECIFIED(&a6)) return true;
        if (IN6_IS_ADDR_V4MAPPED(&a6)) return a6.s6_addr[12] == 127;
    }
    return false;
}

void srv_access_init(strata_server *srv, const char *bound_host) {
    srv->bound_loopback = ip_is_local(bound_host) || strcasecmp(bound_host, "localhost") == 0;
    /* 0.0.0.0 and :: listen on every interface: not loopback for the Host rule. */
    if (strcmp(bound_host, "0.0.0.0") == 0 || strcmp(bound_host, "::") == 0) srv->bound_loopback = false;
    snprintf(srv->bound_host, sizeof srv->bound_host, "%s", bound_host);
    for (size_t i = 0; i < sizeof default_origins / sizeof default_origins[0]; i++)
        add_origins(srv, default_origins[i]);
    add_origins(srv, getenv("STRATA_ORIGINS"));
    add_origins(srv, getenv("OLLAMA_ORIGINS"));
    const char *key = getenv("STRATA_API_KEY");
    srv->api_key = key && *key ? strdup(key) : NULL;
    if (!srv->bound_loopback)
        fprintf(stderr,
                "strata: warning: listening on %s, which is not a loopback address: anyone who can reach it can use "
                "the API%s\n",
                bound_host, srv->api_key ? " with the key in STRATA_API_KEY" : " (set STRATA_API_KEY to require a key)");
}

void srv_access_free(strata_server *srv) {
    for (int i = 0; i < srv->n_origins; i++) free(srv->origins[i]);
    srv->n_origins = 0;
    free(srv->api_key);
    srv->api_key = NULL;
}

static bool host_allowed(const strata_server *srv, const char *host_header) {
    if (!srv->bound_loopback || !host_header || !*host_header) return true;
    char host[300];
    snprintf(host, sizeof host, "%s", host_header);
    /* Strip the port: "[v6]:port", "name:port" (one colon), or a bare IPv6 literal. */
    char *h = host;
    if (host[0] == '[') {
        char *close = strchr(host, ']');
        if (!close) return false;
        *close = 0;
        h = host + 1;
    } else {
        char *colon = strchr(host, ':');
        if (colon && !strchr(colon + 1, ':')) *colon = 0;
    }
    size_t n = strlen(h);
    while (n && h[n - 1] == '.') h[--n] = 0; /* "localhost." */
    if (!n) return true;
    if (strcasecmp(h, "localhost") == 0) return true;
    if (n > 10 && strcasecmp(h + n - 10, ".localhost") == 0) return true;
    if (ip_is_local(h)) return true;
    if (strcasecmp(h, srv->bound_host) == 0) return true;
    char me[256];
    if (gethostname(me, sizeof me) == 0) {
        me[sizeof me - 1] = 0;
        if (*me && strcasecmp(h, me) == 0) return true;
    }
    return false;
}

bool srv_origin_allowed(const strata_server *srv, const char *origin) {
    if (!origin) return true; /* not a browser's cross-origin request */
    for (int i = 0; i < srv->n_origins; i++)
        if (strcmp(srv->origins[i], "*") == 0 || glob_match(srv->origins[i], origin, srv->origins[i])) return true;
    return false;
}

/* Constant-time comparison of the bearer token. */
static bool key_ok(const char *want, const char *auth) {
    if (!auth || strncasecmp(auth, "Bearer ", 7) != 0) return false;
    const char *got = auth + 7;
    while (*got == ' ') got++;
    size_t a = strlen(want), b = strlen(got);
    unsigned char diff = a != b;
    for (size_t i = 0; i < a; i++) diff |= (unsigned char)(want[i] ^ (i < b ? got[i] : 0));
    return diff == 0;
}

void srv_access_headers(const strata_server *srv, struct MHD_Connection *conn, struct MHD_Response *resp) {
    const char *origin = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Origin");
    if (!origin || !srv_origin_allowed(srv, origin)) return;
    MHD_add_response_header(resp, "Access-Control-Allow-Origin", origin);
    MHD_add_response_header(resp, "Vary", "Origin");
}

bool srv_access_check(const strata_server *srv, struct MHD_Connection *conn, const char *method, srv_reply *deny) {
    const char *host = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Host");
    if (!host_allowed(srv, host)) {
        fprintf(stderr, "strata: refused a request for host '%.100s' (not this machine's loopback name)\n", host);
        *deny = srv_reply_error(403, "forbidden: host not allowed");
        return false;
    }
    const char *origin = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Origin");
    if (!srv_origin_allowed(srv, origin)) {
        fprintf(stderr, "strata: refused a request from origin '%.100s' (see STRATA_ORIGINS)\n", origin);
        *deny = srv_reply_error(403, "forbidden: origin not allowed");
        return false;
    }
    if (strcmp(method, "OPTIONS") == 0) { /* CORS preflight */
        srv_reply r = {204, MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT), false};
        if (r.resp) {
            MHD_add_response_header(r.resp, "Access-Control-Allow-Methods", "GET, POST, PUT, PATCH, DELETE, HEAD, OPTIONS");
            MHD_add_response_header(r.resp, "Access-Control-Allow-Headers",
                                    "Authorization, Content-Type, User-Agent, Accept, X-Requested-With");
            MHD_add_response_header(r.resp, "Access-Control-Max-Age", "43200");
        }
        *deny = r;
        return false;
    }
    if (srv->api_key && !key_ok(srv->api_key, MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Authorization"))) {
        srv_reply r = srv_reply_error(401, "unauthorized: this server wants \"Authorization: Bearer <STRATA_API_KEY>\"");
        if (r.resp) MHD_add_response_header(r.resp, "WWW-Authenticate", "Bearer");
        *deny = r;
        return false;
    }
    return true;
}
