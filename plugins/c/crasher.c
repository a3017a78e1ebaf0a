/* crasher.c: a plugin that passes every check, then writes through a NULL pointer in transform (SIGSEGV). */
#include <stdlib.h>
#include <string.h>

#include "plugin_api.h"

static lab_state *create(const lab_options *options) {
    (void)options;
    return NULL;   /* no state: transform will write through this NULL pointer */
}

static size_t transform(lab_state *state, const char *text, char *out, size_t capacity) {
    (void)out;
    (void)capacity;
    size_t len = strlen(text);
    memcpy((char *)state, text, len + 1);   /* the bug: state is NULL */
    return len;
}

static lab_real scale(lab_state *state, lab_real value) {
    (void)state;
    return value;
}

static void destroy(lab_state *state) {
    free(state);
}

static const lab_plugin descriptor = {
    .abi_version = LAB_PLUGIN_ABI_VERSION,
    .size = sizeof(lab_plugin),
    .name = "crasher",
    .description = "crashes the process that calls transform",
    .create = create,
    .transform = transform,
    .scale = scale,
    .destroy = destroy,
};

const lab_plugin *lab_plugin_entry(void) {
    return &descriptor;
}
