/* needs_lib.c: a plugin linked against libgone.so, a library that is not shipped with it. */
#include <stdio.h>

#include "plugin_api.h"

int gone_answer(void);   /* from libgone.so */

static size_t transform(lab_state *state, const char *text, char *out, size_t capacity) {
    (void)state;
    return (size_t)snprintf(out, capacity, "%s %d", text, gone_answer());
}

static const lab_plugin descriptor = {
    .abi_version = LAB_PLUGIN_ABI_VERSION,
    .size = sizeof(lab_plugin),
    .name = "needs_lib",
    .description = "appends the answer libgone.so gives",
    .transform = transform,
};

const lab_plugin *lab_plugin_entry(void) {
    return &descriptor;
}
