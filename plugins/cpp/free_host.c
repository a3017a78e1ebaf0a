/* free_host.c: a host that takes a string a plugin allocated and gives it back, either to
 * the C library's free (wrong unless the plugin allocated it with malloc) or to the plugin's
 * own lab_release (right whatever the plugin allocated it with).
 * Usage: free_host PLUGIN free|release */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: %s PLUGIN free|release\n", argv[0]);
        return 2;
    }
    setvbuf(stdout, NULL, _IONBF, 0);
    void *plugin = dlopen(argv[1], RTLD_NOW);
    if (plugin == NULL) {
        fprintf(stderr, "free_host: %s\n", dlerror());
        return 1;
    }
    char *(*describe)(void) = (char *(*)(void))dlsym(plugin, "lab_describe");
    void (*release)(char *) = (void (*)(char *))dlsym(plugin, "lab_release");
    if (describe == NULL || release == NULL) {
        fprintf(stderr, "free_host: %s\n", dlerror());
        return 1;
    }
    char *text = describe();
    printf("the plugin says: %s\n", text);
    if (strcmp(argv[2], "free") == 0)
        free(text);
    else
        release(text);
    printf("given back with %s\n", argv[2]);
    return 0;
}
