/* needs_version.c: a plugin built against release 2 of libhelper.so (LABHELPER_2.0) but shipped beside release 1. */
#include <string.h>

#include "plugin_api.h"

size_t helper_length(const char *text);   /* LABHELPER_1.0 */
void helper_shout(char *text);            /* LABHELPER_2.0: only in release 2 */

static size_t transform(lab_state *state, const char *text, char *out, size_t capacity) {
    (void)state;
    size_t len = helper_length(text);
    if (capacity == 0)
        return len;
    strncpy(out, text, capacity - 1);
    out[capacity - 1] = '\0';
    helper_shout(out);
    return len;
}

static const lab_plugin descriptor = {
    .abi_version = LAB_PLUGIN_ABI_VERSION,
    .size = sizeof(lab_plugin),
    .name = "needs_version",
    .description = "needs helper_shout@LABHELPER_2.0",
    .transform = transform,
};

const lab_plugin *lab_plugin_entry(void) {
    return &descriptor;
}
