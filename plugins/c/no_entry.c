/* no_entry.c: a plugin that misspells the entry point (lab_plugin_main), so the host finds no lab_plugin_entry. */
#include "plugin_api.h"

static const lab_plugin descriptor = {
    .abi_version = LAB_PLUGIN_ABI_VERSION,
    .size = sizeof(lab_plugin),
    .name = "no_entry",
    .description = "exports the wrong entry point",
};

const lab_plugin *lab_plugin_main(void) {
    return &descriptor;
}
