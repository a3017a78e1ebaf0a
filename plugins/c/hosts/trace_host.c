/* trace_host: dlopen one plugin with the flags given, and call one of its functions, so that
 * LD_DEBUG can show what the loader does (labkit.trace_load runs it).
 *
 * Usage: trace_host FLAGS PLUGIN [SYMBOL]
 *   FLAGS   a comma-separated list: now, lazy, global, local, deepbind, nodelete
 *   PLUGIN  the shared object, passed to dlopen as written
 *   SYMBOL  a function `int SYMBOL(void)` to look up with dlsym and call
 *
 * Before dlopen it writes the line "trace_host: dlopen" to stderr, where LD_DEBUG writes too,
 * so that a reader can tell the host's own start from the plugin's load. It exits 1 with
 * dlerror's message when dlopen or dlsym fails. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static int flag_of(const char *word) {
    if (strcmp(word, "now") == 0) return RTLD_NOW;
    if (strcmp(word, "lazy") == 0) return RTLD_LAZY;
    if (strcmp(word, "global") == 0) return RTLD_GLOBAL;
    if (strcmp(word, "local") == 0) return RTLD_LOCAL;
    if (strcmp(word, "deepbind") == 0) return RTLD_DEEPBIND;
    if (strcmp(word, "nodelete") == 0) return RTLD_NODELETE;
    return -1;
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: %s FLAGS PLUGIN [SYMBOL]\n", argv[0]);
        return 2;
    }
    char words[256];
    snprintf(words, sizeof words, "%s", argv[1]);
    int flags = 0;
    for (char *word = strtok(words, ","); word != NULL; word = strtok(NULL, ",")) {
        int flag = flag_of(word);
        if (flag < 0) {
            fprintf(stderr, "trace_host: unknown flag %s\n", word);
            return 2;
        }
        flags |= flag;
    }
    if ((flags & (RTLD_NOW | RTLD_LAZY)) == 0) flags |= RTLD_NOW;
    static const char mark[] = "trace_host: dlopen\n";
    if (write(2, mark, sizeof mark - 1) < 0) return 2;
    void *plugin = dlopen(argv[2], flags);
    if (plugin == NULL) {
        fprintf(stderr, "trace_host: %s\n", dlerror());
        return 1;
    }
    if (argc > 3) {
        int (*function)(void) = (int (*)(void))dlsym(plugin, argv[3]);
        if (function == NULL) {
            fprintf(stderr, "trace_host: %s\n", dlerror());
            return 1;
        }
        printf("%s() returned %d\n", argv[3], function());
    }
    return 0;
}
