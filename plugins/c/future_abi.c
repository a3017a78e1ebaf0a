/* future_abi.c: a plugin written for ABI version 2 of plugin_api.h, which this host refuses. */
#include "plugin_api.h"

static lab_state *create(const lab_options *options) {
    (void)options;
    return NULL;
}

static const lab_plugin descriptor = {
    .abi_version = 2,   /* a newer API than the host knows */
    .size = sizeof(lab_plugin),
    .name = "future_abi",
    .description = "declares ABI version 2",
    .create = create,
};

const lab_plugin *lab_plugin_entry(void) {
    return &descriptor;
}
