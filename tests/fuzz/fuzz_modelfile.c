/* Fuzz target: the Modelfile parser on arbitrary bytes. No seeds needed (make_seeds.c
 * writes a few real-looking Modelfiles as a head start).
 * Checked: parsing never crashes; whatever parses is written back by the serializer
 * (or refused as unrepresentable) and the text reads back to the same Modelfile; the
 * parameters survive their JSON form. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "store/modelfile.h"

static int same_str(const char *a, const char *b) { return (!a && !b) || (a && b && strcmp(a, b) == 0); }

static void check_same(const strata_modelfile *a, const strata_modelfile *b) {
    if (!same_str(a->from, b->from) || !same_str(a->template_text, b->template_text) || !same_str(a->system, b->system))
        abort();
    if (a->n_licenses != b->n_licenses || a->n_messages != b->n_messages || a->n_params != b->n_params) abort();
    for (size_t i = 0; i < a->n_licenses; i++)
        if (strcmp(a->licenses[i], b->licenses[i]) != 0) abort();
    for (size_t i = 0; i < a->n_messages; i++)
        if (strcmp(a->messages[i].role, b->messages[i].role) != 0 || strcmp(a->messages[i].content, b->messages[i].content) != 0)
            abort();
    for (size_t i = 0; i < a->n_params; i++) {
        const strata_param *p = &a->params[i], *q = strata_modelfile_get_param(b, p->name);
        if (!q || p->type != q->type || p->i != q->i || p->f != q->f || p->n_strs != q->n_strs) abort();
        for (size_t j = 0; j < p->n_strs; j++)
            if (strcmp(p->strs[j], q->strs[j]) != 0) abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    strata_modelfile *mf = NULL;
    if (strata_modelfile_parse((const char *)data, size, &mf) != STRATA_OK) return 0;
    char *text = NULL;
    if (strata_modelfile_format(mf, &text) == STRATA_OK) {
        strata_modelfile *back = NULL;
        if (strata_modelfile_parse(text, strlen(text), &back) != STRATA_OK) abort();
        check_same(mf, back);
        strata_modelfile_free(back);
        free(text);
    }
    char *json = NULL;
    if (strata_modelfile_params_to_json(mf, &json) != STRATA_OK) abort();
    strata_modelfile *p = strata_modelfile_new();
    if (!p || strata_modelfile_params_from_json(p, json, strlen(json)) != STRATA_OK) abort();
    if (p->n_params != mf->n_params) abort();
    strata_modelfile_free(p);
    free(json);
    strata_modelfile_free(mf);
    return 0;
}
