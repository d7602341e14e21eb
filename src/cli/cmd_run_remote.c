/* `strata run MODEL [PROMPT...]` through the server: one-shot generation (/api/generate) when a
 * prompt is given as arguments or piped in, an interactive chat (/api/chat, libedit line editing)
 * when standard input is a terminal. Text is streamed to stdout as it arrives; --verbose prints
 * Ollama's statistics on stderr. A MODEL that is a .gguf file runs through the server when one
 * answers and knows it, else in-process (cmd_run.c). */
#include <cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <editline/readline.h>

#include "cli/cli.h"
#include "cli/remote.h"
#include "cli/util.h"

static const char usage_remote[] =
    "Usage: strata run MODEL [PROMPT...] [options]\n"
    "\n"
    "Runs MODEL (a model of the server at $STRATA_HOST, default 127.0.0.1:11434) through the\n"
    "server: with a PROMPT (arguments, or standard input when it is not a terminal) prints the\n"
    "response as it is generated; without one, on a terminal, starts a chat. In a chat:\n"
    "  /set parameter NAME VALUE   set a model option (temperature, num_ctx, stop, ...)\n"
    "  /set system TEXT            set the system message\n"
    "  /set verbose | /set quiet   show or hide statistics after each answer\n"
    "  /set think [LEVEL] | /set nothink   ask a thinking model to reason (low, medium, high) or not\n"
    "  /show info | parameters | modelfile | template | system\n"
    "  /clear                      forget the conversation\n"
    "  /bye                        leave (also Ctrl-D)\n"
    "  \"\"\"                         begins and ends a multi-line message\n"
    "Options: any model option as --NAME VALUE (e.g. --temperature 0, --num-ctx 2048),\n"
    "  --verbose, --keepalive DURATION (\"5m\", \"-1\"), --format json,\n"
    "  --think (or --think=false, --think=low|medium|high: sends \"think\"; the reasoning is printed\n"
    "  between \"Thinking...\" and \"...done thinking.\" before the answer), --hidethinking.\n"
    "When MODEL is a .gguf file and no server answers, it runs in-process:\n\n";

/* Options that take no value. */
static bool is_flag(const char *a) {
    return cli_opt_is(a, "verbose") || cli_opt_is(a, "nowordwrap") || cli_opt_is(a, "insecure") ||
           cli_opt_is(a, "think") || strncmp(a, "--think=", 8) == 0 || cli_opt_is(a, "hidethinking") || cli_is_help(a);
}

typedef struct {
    strata_client *c;
    const char *model;
    cJSON *options;
    const char *keep_alive;
    const char *format;
    const char *think; /* NULL: not sent; "true", "false" or a level */
    bool hide_thinking;
    bool in_thinking;  /* "Thinking..." is open on stdout */
    bool verbose;
    /* the running answer */
    bool waiting;     /* nothing printed yet: the spinner may be on screen */
    remote_progress spin;
    bool printed;     /* some text was written to stdout */
    char *answer;     /* the assistant's text so far (chat) */
    size_t answer_len, answer_cap;
    cJSON *final;     /* the done line */
} run_state;

static bool tick(void *user) {
    run_state *s = user;
    if (s->waiting) remote_progress_tick(&s->spin);
    return remote_sigint_tick(NULL);
}

static void stop_waiting(run_state *s) {
    if (!s->waiting) return;
    s->waiting = false;
    if (s->spin.tty && s->spin.line_open) {
        fputs("\r\033[K", stderr);
        fflush(stderr);
    }
    s->spin.line_open = false;
}

static bool keep_text(run_state *s, const char *t) {
    size_t n = strlen(t);
    if (s->answer_len + n + 1 > s->answer_cap) {
        size_t cap = s->answer_cap ? s->answer_cap * 2 : 1024;
        while (cap < s->answer_len + n + 1) cap *= 2;
        char *nb = realloc(s->answer, cap);
        if (!nb) return false;
        s->answer = nb;
        s->answer_cap = cap;
    }
    memcpy(s->answer + s->answer_len, t, n + 1);
    s->answer_len += n;
    return true;
}

/* One NDJSON line of /api/generate ("response") or /api/chat ("message": {"content"}). */
static bool on_line(void *user, const cJSON *line) {
    run_state *s = user;
    const char *text = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(line, "response"));
    if (!text)
        text = cJSON_GetStringValue(
            cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(line, "message"), "content"));
    const char *thinking = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(line, "thinking"));
    if (!thinking)
        thinking = cJSON_GetStringValue(
            cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(line, "message"), "thinking"));
    /* The reasoning, as Ollama's CLI prints it: between "Thinking..." and "...done thinking." */
    if (thinking && *thinking && !s->hide_thinking) {
        stop_waiting(s);
        if (!s->in_thinking) fputs("Thinking...\n", stdout);
        s->in_thinking = true;
        fputs(thinking, stdout);
        fflush(stdout);
        s->printed = true;
    }
    if (s->in_thinking && ((text && *text) || cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(line, "done")))) {
        fputs("\n...done thinking.\n\n", stdout);
        s->in_thinking = false;
    }
    if (text && *text) {
        stop_waiting(s);
        fputs(text, stdout);
        fflush(stdout);
        s->printed = true;
        if (!keep_text(s, text)) return false;
    }
    if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(line, "done"))) {
        cJSON_Delete(s->final);
        s->final = cJSON_Duplicate(line, true);
    }
    return true;
}

static void add_common(run_state *s, cJSON *req) {
    cJSON_AddStringToObject(req, "model", s->model);
    if (cJSON_GetArraySize(s->options) > 0) cJSON_AddItemToObject(req, "options", cJSON_Duplicate(s->options, true));
    if (s->keep_alive) {
        /* A bare number is seconds; anything else ("5m", "1h") is a Go duration string. */
        char *end = NULL;
        double v = strtod(s->keep_alive, &end);
        if (end != s->keep_alive && !*end)
            cJSON_AddNumberToObject(req, "keep_alive", v);
        else
            cJSON_AddStringToObject(req, "keep_alive", s->keep_alive);
    }
    if (s->format) cJSON_AddStringToObject(req, "format", s->format);
    if (s->think && (strcmp(s->think, "true") == 0 || strcmp(s->think, "false") == 0))
        cJSON_AddBoolToObject(req, "think", strcmp(s->think, "true") == 0);
    else if (s->think)
        cJSON_AddStringToObject(req, "think", s->think);
    cJSON_AddBoolToObject(req, "stream", true);
}

/* Sends one streamed request, showing a spinner until the first text. */
static strata_status stream(run_state *s, const char *path, const cJSON *req) {
    remote_progress_init(&s->spin);
    s->waiting = true;
    s->printed = false;
    s->answer_len = 0;
    if (s->answer) s->answer[0] = 0;
    cJSON_Delete(s->final);
    s->final = NULL;
    if (s->spin.tty && isatty(STDIN_FILENO)) remote_progress_update(&s->spin, "", 0, 0);
    strata_client_set_tick(s->c, tick, s);
    remote_sigint_arm();
    strata_status st = strata_client_stream(s->c, "POST", path, req, on_line, s);
    remote_sigint_disarm();
    stop_waiting(s);
    return st;
}

static char *read_all_stdin(void) {
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    while (buf) {
        if (n + 1 >= cap) {
            char *nb = realloc(buf, cap *= 2);
            if (!nb) break;
            buf = nb;
        }
        size_t r = fread(buf + n, 1, cap - n - 1, stdin);
        n += r;
        if (r == 0) {
            buf[n] = 0;
            return buf;
        }
    }
    free(buf);
    return NULL;
}

static int one_shot(run_state *s, const char *prompt) {
    cJSON *req = cJSON_CreateObject();
    add_common(s, req);
    cJSON_AddStringToObject(req, "prompt", prompt);
    strata_status st = stream(s, "/api/generate", req);
    cJSON_Delete(req);
    if (s->printed && isatty(STDOUT_FILENO)) fputc('\n', stdout);
    fflush(stdout);
    if (st != STRATA_OK) return cli_error("%s", strata_last_error());
    if (s->verbose && s->final) remote_print_stats(s->final);
    return 0;
}

/* Loads the model before the first prompt, with a spinner, as Ollama's interactive mode does. */
static strata_status load_model(run_state *s) {
    cJSON *req = cJSON_CreateObject();
    add_common(s, req);
    remote_progress_init(&s->spin);
    remote_progress_update(&s->spin, "loading model", 0, 0);
    strata_client_set_tick(s->c, remote_progress_tick, &s->spin);
    strata_status st = strata_client_call(s->c, "POST", "/api/generate", req, NULL);
    strata_client_set_tick(s->c, NULL, NULL);
    if (s->spin.tty && s->spin.line_open) fputs("\r\033[K", stderr);
    cJSON_Delete(req);
    return st;
}

static void chat_help(void) {
    printf("Available Commands:\n"
           "  /set parameter NAME VALUE   Set a parameter (e.g. /set parameter temperature 0)\n"
           "  /set system TEXT            Set the system message\n"
           "  /set verbose                Show statistics after each answer\n"
           "  /set quiet                  Hide them\n"
           "  /set think [LEVEL]          Ask a thinking model to reason (low, medium, high)\n"
           "  /set nothink                Ask it not to\n"
           "  /show info                  Show details for this model\n"
           "  /show parameters            Show the parameters of this model and this session\n"
           "  /show modelfile | template | system\n"
           "  /clear                      Clear session context\n"
           "  /bye                        Exit\n"
           "  /?, /help                   Help for a command\n"
           "\nUse \"\"\" to begin a multi-line message.\n\n");
}

static void show_command(run_state *s, const char *what) {
    cJSON *req = cJSON_CreateObject();
    cJSON_AddStringToObject(req, "model", s->model);
    cJSON *resp = NULL;
    strata_status st = strata_client_call(s->c, "POST", "/api/show", req, &resp);
    cJSON_Delete(req);
    if (st != STRATA_OK) {
        cli_error("%s", strata_last_error());
        return;
    }
    if (strcmp(what, "info") == 0) {
        remote_show_info(resp);
    } else if (strcmp(what, "parameters") == 0) {
        const char *p = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(resp, "parameters"));
        printf("Model defined parameters:\n%s\n", p && *p ? p : "No parameters were specified for this model.");
        if (cJSON_GetArraySize(s->options) > 0) {
            printf("\nUser defined parameters:\n");
            const cJSON *o;
            cJSON_ArrayForEach(o, s->options) {
                char *v = cJSON_PrintUnformatted(o);
                printf("%-30s %s\n", o->string, v ? v : "");
                free(v);
            }
        }
        printf("\n");
    } else if (strcmp(what, "modelfile") == 0 || strcmp(what, "template") == 0 || strcmp(what, "system") == 0) {
        const char *t = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(resp, what));
        printf("%s\n", t && *t ? t : "No value was specified for this model.");
    } else {
        printf("Unknown command '/show %s'. Type /? for help\n", what);
    }
    cJSON_Delete(resp);
}

static void set_command(run_state *s, char *args, char **system) {
    char *what = strtok(args, " \t");
    if (!what) {
        printf("Usage: /set parameter NAME VALUE | /set system TEXT | /set verbose | /set quiet | /set think | /set nothink\n");
    } else if (strcmp(what, "verbose") == 0) {
        s->verbose = true;
        printf("Set 'verbose' mode.\n");
    } else if (strcmp(what, "quiet") == 0) {
        s->verbose = false;
        printf("Set 'quiet' mode.\n");
    } else if (strcmp(what, "think") == 0) {
        char *level = strtok(NULL, " \t");
        static char kept[16];
        snprintf(kept, sizeof kept, "%s", level ? level : "true");
        s->think = kept;
        printf("Set 'think' mode.\n");
    } else if (strcmp(what, "nothink") == 0) {
        s->think = "false";
        printf("Set 'nothink' mode.\n");
    } else if (strcmp(what, "system") == 0) {
        char *text = strtok(NULL, "");
        free(*system);
        *system = text ? strdup(text + strspn(text, " \t")) : NULL;
        printf("Set system message.\n");
    } else if (strcmp(what, "parameter") == 0) {
        char *name = strtok(NULL, " \t");
        char *value = strtok(NULL, "");
        if (!name || !value) {
            printf("Usage: /set parameter NAME VALUE\n");
            return;
        }
        value += strspn(value, " \t");
        if (strcmp(name, "stop") == 0) {
            /* "/set parameter stop A B": every word is a stop sequence, replacing earlier ones. */
            cJSON_DeleteItemFromObjectCaseSensitive(s->options, "stop");
            for (char *w = strtok(value, " \t"); w; w = strtok(NULL, " \t")) remote_set_option(s->options, "stop", w);
        } else if (!remote_set_option(s->options, name, value)) {
            printf("Couldn't set parameter: %s\n", strata_last_error());
            return;
        }
        printf("Set parameter '%s' to '%s'\n", name, value);
    } else {
        printf("Unknown command '/set %s'. Type /? for help\n", what);
    }
}

static bool ends_with_quotes(const char *line) {
    size_t n = strlen(line);
    while (n && (line[n - 1] == ' ' || line[n - 1] == '\t')) n--;
    return n >= 3 && strncmp(line + n - 3, "\"\"\"", 3) == 0;
}

/* Reads one user message: a line, or the lines between """ and """. NULL at end of input. */
static char *read_message(void) {
    char *line = readline(">>> ");
    if (!line) return NULL;
    const char *t = line + strspn(line, " \t");
    if (strncmp(t, "\"\"\"", 3) != 0) {
        if (*t) add_history(line);
        return line;
    }
    /* Multi-line: the text after the opening quotes, then lines up to the closing ones. */
    size_t cap = strlen(line) + 256, len = 0;
    char *msg = malloc(cap);
    if (!msg) {
        free(line);
        return NULL;
    }
    msg[0] = 0;
    const char *first = t + 3;
    char *cur = strdup(first), *prev = line;
    free(prev);
    bool closed = false;
    while (cur) {
        bool last = ends_with_quotes(cur);
        if (last) {
            size_t n = strlen(cur);
            while (n && (cur[n - 1] == ' ' || cur[n - 1] == '\t')) n--;
            cur[n - 3] = 0;
        }
        size_t n = strlen(cur);
        if (len + n + 2 > cap) {
            cap = (len + n + 2) * 2;
            char *nb = realloc(msg, cap);
            if (!nb) {
                free(cur);
                free(msg);
                return NULL;
            }
            msg = nb;
        }
        if (len) msg[len++] = '\n';
        memcpy(msg + len, cur, n + 1);
        len += n;
        free(cur);
        if (last) {
            closed = true;
            break;
        }
        cur = readline("... ");
    }
    if (!closed && len == 0) {
        free(msg);
        return NULL;
    }
    add_history(msg);
    return msg;
}

static int interactive(run_state *s) {
    strata_status st = load_model(s);
    if (st != STRATA_OK) return cli_error("%s", strata_last_error());
    cJSON *messages = cJSON_CreateArray();
    char *system = NULL;
    int rc = 0;
    for (;;) {
        char *msg = read_message();
        if (!msg) {
            printf("\n");
            break;
        }
        const char *t = msg + strspn(msg, " \t");
        if (!*t) {
            free(msg);
            continue;
        }
        if (t[0] == '/') {
            char cmd[4096];
            snprintf(cmd, sizeof cmd, "%s", t);
            char *args = cmd + strcspn(cmd, " \t");
            if (*args) *args++ = 0;
            args += strspn(args, " \t");
            free(msg);
            if (strcmp(cmd, "/bye") == 0 || strcmp(cmd, "/exit") == 0) break;
            if (strcmp(cmd, "/?") == 0 || strcmp(cmd, "/help") == 0) {
                chat_help();
            } else if (strcmp(cmd, "/clear") == 0) {
                cJSON_Delete(messages);
                messages = cJSON_CreateArray();
                printf("Cleared session context\n");
            } else if (strcmp(cmd, "/set") == 0) {
                set_command(s, args, &system);
            } else if (strcmp(cmd, "/show") == 0) {
                show_command(s, *args ? args : "info");
            } else {
                printf("Unknown command '%s'. Type /? for help\n", cmd);
            }
            continue;
        }
        cJSON *user = cJSON_CreateObject();
        cJSON_AddStringToObject(user, "role", "user");
        cJSON_AddStringToObject(user, "content", msg);
        free(msg);
        cJSON_AddItemToArray(messages, user);
        cJSON *req = cJSON_CreateObject();
        add_common(s, req);
        cJSON *sent = cJSON_AddArrayToObject(req, "messages");
        if (system) {
            cJSON *sys = cJSON_CreateObject();
            cJSON_AddStringToObject(sys, "role", "system");
            cJSON_AddStringToObject(sys, "content", system);
            cJSON_AddItemToArray(sent, sys);
        }
        const cJSON *m;
        cJSON_ArrayForEach(m, messages) cJSON_AddItemToArray(sent, cJSON_Duplicate(m, true));
        st = stream(s, "/api/chat", req);
        cJSON_Delete(req);
        if (st == STRATA_ERR_CANCELLED) {
            /* Ctrl-C: the unanswered message is dropped, the chat goes on. */
            cJSON_DeleteItemFromArray(messages, cJSON_GetArraySize(messages) - 1);
            printf("\n\n");
            continue;
        }
        if (st != STRATA_OK) {
            if (s->printed) printf("\n");
            cJSON_DeleteItemFromArray(messages, cJSON_GetArraySize(messages) - 1);
            cli_error("%s", strata_last_error());
            continue;
        }
        cJSON *asst = cJSON_CreateObject();
        cJSON_AddStringToObject(asst, "role", "assistant");
        cJSON_AddStringToObject(asst, "content", s->answer ? s->answer : "");
        cJSON_AddItemToArray(messages, asst);
        printf("\n\n");
        fflush(stdout);
        if (s->verbose && s->final) remote_print_stats(s->final);
    }
    free(system);
    cJSON_Delete(messages);
    return rc;
}

/* True when path names an existing regular file. */
static bool is_file(const char *path) {
    struct stat sb;
    return stat(path, &sb) == 0 && S_ISREG(sb.st_mode);
}

int cmd_run_dispatch(int argc, char **argv) {
    /* The model is the first argument that is neither an option nor an option's value. */
    int model_at = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (cli_is_help(a)) {
            fputs(usage_remote, stdout);
            return -1; /* the in-process usage follows */
        }
        if (a[0] == '-' && a[1] == '-') {
            if (!is_flag(a)) i++;
            continue;
        }
        model_at = i;
        break;
    }
    if (!model_at) return -1; /* cmd_run reports the missing model */
    const char *model = argv[model_at];
    bool file = is_file(model);
    /* A path to no file: cmd_run reports it. */
    if (!file && remote_arg_is_path(model)) return -1;

    run_state s = {0};
    s.model = model;
    s.options = cJSON_CreateObject();
    char abs[4096];
    if (file) {
        if (!realpath(model, abs)) snprintf(abs, sizeof abs, "%s", model);
        s.model = abs;
    }
    /* Options and prompt words. */
    size_t prompt_cap = 1;
    for (int i = 1; i < argc; i++) prompt_cap += strlen(argv[i]) + 1;
    char *prompt = calloc(prompt_cap, 1);
    size_t prompt_len = 0;
    int n_words = 0, rc = 0;
    for (int i = 1; i < argc && rc == 0; i++) {
        const char *a = argv[i];
        if (i == model_at) continue;
        if (a[0] == '-' && a[1] == '-') {
            if (cli_opt_is(a, "verbose")) {
                s.verbose = true;
            } else if (cli_opt_is(a, "think") || strncmp(a, "--think=", 8) == 0) {
                /* as Ollama's flag: --think alone is true; a value only with '=' */
                s.think = a[7] == '=' ? a + 8 : "true";
                if (strcmp(s.think, "true") != 0 && strcmp(s.think, "false") != 0 && strcmp(s.think, "low") != 0 &&
                    strcmp(s.think, "medium") != 0 && strcmp(s.think, "high") != 0) {
                    rc = cli_error("invalid value for --think: '%s' (true, false, low, medium or high)", s.think);
                    break;
                }
            } else if (cli_opt_is(a, "hidethinking")) {
                s.hide_thinking = true;
            } else if (cli_opt_is(a, "nowordwrap") || cli_opt_is(a, "insecure")) {
                /* accepted for Ollama compatibility: we never wrap */
            } else if (cli_opt_is(a, "keepalive") || cli_opt_is(a, "keep_alive") || cli_opt_is(a, "format")) {
                if (i + 1 == argc) {
                    rc = file ? -1 : cli_error("option %s needs a value", a);
                    break;
                }
                if (cli_opt_is(a, "format"))
                    s.format = argv[++i];
                else
                    s.keep_alive = argv[++i];
            } else {
                /* A file path may carry options only the in-process engine knows (--kv_type):
                 * then it runs in-process rather than failing here. */
                int used = remote_parse_model_option(s.options, argc - i, argv + i, file);
                if (used <= 0) {
                    rc = file ? -1 : used == 0 ? cli_error("unknown option '%s' (see 'strata run --help')", a) : 1;
                    break;
                }
                i += used - 1;
            }
            continue;
        }
        if (n_words++) prompt[prompt_len++] = ' ';
        memcpy(prompt + prompt_len, a, strlen(a));
        prompt_len += strlen(a);
    }
    if (rc != 0) {
        free(prompt);
        cJSON_Delete(s.options);
        return rc;
    }
    if (remote_open(&s.c)) {
        free(prompt);
        cJSON_Delete(s.options);
        return 1;
    }
    if (file && !strata_client_ping(s.c)) {
        /* No server: the file runs in-process. */
        strata_client_free(s.c);
        free(prompt);
        cJSON_Delete(s.options);
        return -1;
    }
    if (file) {
        /* The server may not serve files by path: ask before reading stdin. */
        cJSON *req = cJSON_CreateObject();
        cJSON_AddStringToObject(req, "model", s.model);
        cJSON *resp = NULL;
        strata_status st = strata_client_call(s.c, "POST", "/api/show", req, &resp);
        cJSON_Delete(req);
        cJSON_Delete(resp);
        if (st != STRATA_OK) {
            strata_client_free(s.c);
            free(prompt);
            cJSON_Delete(s.options);
            return -1;
        }
    }
    bool interactive_mode = isatty(STDIN_FILENO) && n_words == 0;
    if (!isatty(STDIN_FILENO)) {
        /* Piped input comes first, then the arguments, as Ollama joins them. */
        char *in = read_all_stdin();
        if (!in) {
            rc = cli_error("cannot read the prompt from standard input");
        } else {
            size_t in_len = strlen(in);
            char *joined = malloc(in_len + prompt_len + 2);
            if (joined) {
                memcpy(joined, in, in_len);
                size_t n = in_len;
                if (n_words) {
                    if (in_len) joined[n++] = ' ';
                    memcpy(joined + n, prompt, prompt_len);
                    n += prompt_len;
                }
                joined[n] = 0;
                free(prompt);
                prompt = joined;
            } else {
                rc = cli_error("out of memory");
            }
            free(in);
        }
    }
    if (rc == 0) rc = interactive_mode ? interactive(&s) : one_shot(&s, prompt);
    free(prompt);
    free(s.answer);
    cJSON_Delete(s.final);
    cJSON_Delete(s.options);
    strata_client_free(s.c);
    return rc;
}
