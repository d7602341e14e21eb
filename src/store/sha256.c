/* SHA-256 over OpenSSL's EVP digest API (libcrypto, Debian's libssl-dev). */
#include "store/sha256.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>

struct strata_sha256 {
    EVP_MD_CTX *ctx;
};

strata_status strata_sha256_new(strata_sha256 **out) {
    strata_sha256 *h = malloc(sizeof *h);
    if (!h) return strata_fail(STRATA_ERR_NOMEM, "out of memory");
    h->ctx = EVP_MD_CTX_new();
    if (!h->ctx || EVP_DigestInit_ex(h->ctx, EVP_sha256(), NULL) != 1) {
        EVP_MD_CTX_free(h->ctx);
        free(h);
        return strata_fail(STRATA_ERR_UNSUPPORTED, "sha256: libcrypto could not start a digest");
    }
    *out = h;
    return STRATA_OK;
}

strata_status strata_sha256_update(strata_sha256 *h, const void *data, size_t len) {
    if (len && EVP_DigestUpdate(h->ctx, data, len) != 1) return strata_fail(STRATA_ERR_IO, "sha256: update failed");
    return STRATA_OK;
}

strata_status strata_sha256_final(strata_sha256 *h, char digest[72]) {
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    if (EVP_DigestFinal_ex(h->ctx, md, &n) != 1 || n != 32) return strata_fail(STRATA_ERR_IO, "sha256: final failed");
    static const char hex[] = "0123456789abcdef";
    snprintf(digest, 72, "sha256:");
    for (unsigned int i = 0; i < 32; i++) {
        digest[7 + 2 * i] = hex[md[i] >> 4];
        digest[7 + 2 * i + 1] = hex[md[i] & 15];
    }
    digest[71] = 0;
    return STRATA_OK;
}

void strata_sha256_free(strata_sha256 *h) {
    if (!h) return;
    EVP_MD_CTX_free(h->ctx);
    free(h);
}

strata_status strata_sha256_digest(const void *data, size_t len, char digest[72]) {
    strata_sha256 *h;
    strata_status st = strata_sha256_new(&h);
    if (st != STRATA_OK) return st;
    if ((st = strata_sha256_update(h, data, len)) == STRATA_OK) st = strata_sha256_final(h, digest);
    strata_sha256_free(h);
    return st;
}
