/* SHA-256 through OpenSSL's libcrypto (EVP interface), in the store's digest form. */
#ifndef STRATA_STORE_SHA256_H
#define STRATA_STORE_SHA256_H

#include <stddef.h>

#include "core/status.h"

typedef struct strata_sha256 strata_sha256;

strata_status strata_sha256_new(strata_sha256 **out);
strata_status strata_sha256_update(strata_sha256 *h, const void *data, size_t len);
/* Writes "sha256:<64 hex>" (72 bytes with the NUL). The context cannot be updated after. */
strata_status strata_sha256_final(strata_sha256 *h, char digest[72]);
void strata_sha256_free(strata_sha256 *h);

/* One-shot digest of a buffer. */
strata_status strata_sha256_digest(const void *data, size_t len, char digest[72]);

#endif
