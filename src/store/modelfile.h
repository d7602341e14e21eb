/* Modelfile: parser, serializer and the table of model parameters.
 *
 * The parser reads a Modelfile as Ollama reads it:
 *   - instructions are case-insensitive words at the start of a line, followed by a space
 *     or tab: FROM, PARAMETER, TEMPLATE, SYSTEM, MESSAGE, LICENSE (ADAPTER and Ollama's
 *     newer DRAFT/RENDERER/PARSER/REQUIRES are recognised and refused as unsupported);
 *   - `#` at the start of a line (after blanks) starts a comment;
 *   - a value runs to the end of its line and is trimmed; a value that starts with `"""`
 *     runs until a line whose trimmed text ends with `"""`, a value that starts with `"`
 *     until a line that ends with `"`; the quotes are removed and the text between them is
 *     kept byte for byte (newlines included, no escape sequences);
 *   - PARAMETER NAME VALUE: NAME must be in the table below and VALUE must parse as its
 *     type; `stop` may repeat and accumulates, any other parameter repeated keeps the last;
 *   - MESSAGE ROLE CONTENT with ROLE one of system, user, assistant;
 *   - TEMPLATE and SYSTEM repeated keep the last; LICENSE repeated accumulates;
 *   - exactly one FROM is required.
 * Every error message names the line ("Modelfile line 7: ...").
 *
 * Ownership: a strata_modelfile owns every string it points to; free it with
 * strata_modelfile_free(). */
#ifndef STRATA_STORE_MODELFILE_H
#define STRATA_STORE_MODELFILE_H

#include <stddef.h>
#include <stdint.h>

#include "core/status.h"

typedef enum {
    STRATA_PARAM_INT = 0,
    STRATA_PARAM_FLOAT,
    STRATA_PARAM_STRINGS, /* a list of strings; each PARAMETER line adds one (stop) */
} strata_param_type;

typedef struct {
    const char *name; /* the table's own (static) spelling */
    strata_param_type type;
    int64_t i;        /* STRATA_PARAM_INT */
    double f;         /* STRATA_PARAM_FLOAT */
    char **strs;      /* STRATA_PARAM_STRINGS */
    size_t n_strs;
} strata_param;

typedef struct {
    char *role;    /* "system", "user" or "assistant" */
    char *content;
} strata_mf_message;

typedef struct {
    char *from;          /* as written (a path or a model name); NULL until set */
    char *template_text; /* NULL when absent */
    char *system;        /* NULL when absent */
    char **licenses;
    size_t n_licenses;
    strata_param *params; /* one entry per parameter name, in order of first appearance */
    size_t n_params;
    strata_mf_message *messages;
    size_t n_messages;
} strata_modelfile;

/* Parses text[0..len). On success *out is a new Modelfile the caller frees. */
strata_status strata_modelfile_parse(const char *text, size_t len, strata_modelfile **out);

/* A new, empty Modelfile (NULL on allocation failure), for building one in code. */
strata_modelfile *strata_modelfile_new(void);
void strata_modelfile_free(strata_modelfile *mf);

/* Sets a string field (from, template_text, system) to a copy of value (NULL clears). */
strata_status strata_modelfile_set_string(char **field, const char *value);
strata_status strata_modelfile_add_license(strata_modelfile *mf, const char *text);
strata_status strata_modelfile_add_message(strata_modelfile *mf, const char *role, const char *content);

/* Sets parameter `name` from its text form, validated by type (stop appends). */
strata_status strata_modelfile_set_param(strata_modelfile *mf, const char *name, const char *value);
/* The parameter called name, or NULL. */
const strata_param *strata_modelfile_get_param(const strata_modelfile *mf, const char *name);
/* Removes parameter `name` (all stop strings for "stop"); no-op if absent. */
void strata_modelfile_unset_param(strata_modelfile *mf, const char *name);

/* The parameter table: the type of a known parameter name (exact, lowercase). */
strata_status strata_param_type_of(const char *name, strata_param_type *out);
/* Number of known parameters and the i-th name (for help text). */
size_t strata_param_count(void);
const char *strata_param_name(size_t i);

/* Modelfile text for mf (FROM, TEMPLATE, SYSTEM, PARAMETER..., MESSAGE..., LICENSE...),
 * quoting each value so that strata_modelfile_parse() reads it back unchanged. *out is
 * malloc'd (caller frees). Fails with STRATA_ERR_UNSUPPORTED for a value no Modelfile
 * quoting can carry (a line inside it ending in both `"` and `"""` forms). */
strata_status strata_modelfile_format(const strata_modelfile *mf, char **out);

/* Parameters as one JSON object, keys sorted (so equal parameters give equal bytes):
 * ints and floats as numbers, stop as an array of strings. *out malloc'd. */
strata_status strata_modelfile_params_to_json(const strata_modelfile *mf, char **out);
/* Merges a JSON object of parameters into mf (keys validated as for PARAMETER; a JSON
 * number for a numeric parameter, a string or array of strings for stop). */
strata_status strata_modelfile_params_from_json(strata_modelfile *mf, const char *json, size_t len);
/* The same, skipping keys that are not in the parameter table (for params written by
 * other tools, such as an Ollama store's mirostat or num_keep). */
strata_status strata_modelfile_params_from_json_lenient(strata_modelfile *mf, const char *json, size_t len);

/* Messages as a JSON array of {"role","content"} objects. *out malloc'd. */
strata_status strata_modelfile_messages_to_json(const strata_modelfile *mf, char **out);
strata_status strata_modelfile_messages_from_json(strata_modelfile *mf, const char *json, size_t len);

#endif
