/* libFuzzer target for the device-spec and size parsers (outside input: --devices,
 * STRATA_DEVICES, --reserve). Any text must be parsed or refused with a message; accepted
 * entries must be within the documented ranges. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "backend/device.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char *text = malloc(size + 1);
    if (!text) return 0;
    memcpy(text, data, size);
    text[size] = 0;

    uint64_t bytes;
    (void)backend_parse_size(text, &bytes);

    backend_spec_entry entries[BACKEND_MAX_DEVICES];
    int count = -1;
    if (backend_spec_parse(text, entries, BACKEND_MAX_DEVICES, &count) == STRATA_OK) {
        if (count < 0 || count > BACKEND_MAX_DEVICES) abort();
        for (int i = 0; i < count; i++) {
            if (entries[i].kind > BACKEND_DEVICE_CUDA) abort();
            if (!(entries[i].gbps >= 0)) abort(); /* also rejects NaN */
            if (memchr(entries[i].name, 0, sizeof entries[i].name) == NULL) abort();
        }
    } else if (strata_last_error()[0] == 0) {
        abort(); /* a refusal must say why */
    }
    free(text);
    return 0;
}
