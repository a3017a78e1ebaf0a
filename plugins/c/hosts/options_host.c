/* options_host.c: a minimal C host for plugin_api.h (version 1): it fills lab_options on the
   heap and hands it to a plugin's create(), as notebook 03's host does. Notebook 04 builds it
   and the plugins with -fsanitize=address to catch a plugin that reads past the host's struct.
   Usage: options_host PLUGIN.so */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include "plugin_api.h"

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s PLUGIN.so\n", argv[0]);
        return 2;
    }
    void *handle = dlopen(argv[1], RTLD_NOW);
    if (handle == NULL) {
        fprintf(stderr, "%s\n", dlerror());
        return 2;
    }
    const lab_plugin *(*entry)(void) =
        (const lab_plugin *(*)(void))dlsym(handle, "lab_plugin_entry");
    if (entry == NULL) {
        fprintf(stderr, "%s\n", dlerror());
        return 2;
    }
    const lab_plugin *plugin = entry();
    lab_options *options = malloc(sizeof *options);   /* sizeof as this host knows it */
    if (options == NULL)
        return 2;
    options->letter_case = LAB_CASE_UPPER;
    options->repeat = 2;
    options->width = 3;
    lab_state *state = plugin->create(options);
    char out[64];
    plugin->transform(state, "hello", out, sizeof out);
    printf("%s: %s\n", plugin->name, out);
    plugin->destroy(state);
    free(options);
    dlclose(handle);
    return 0;
}
