/* c_host.c: a C host that calls a C++ plugin's lab_work(-1). C has no exceptions: nothing on
 * its stack can catch one. Usage: c_host PLUGIN */
#include <dlfcn.h>
#include <stdio.h>

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s PLUGIN\n", argv[0]);
        return 2;
    }
    void *plugin = dlopen(argv[1], RTLD_NOW);
    if (plugin == NULL) {
        fprintf(stderr, "c_host: %s\n", dlerror());
        return 1;
    }
    int (*work)(int) = (int (*)(int))dlsym(plugin, "lab_work");
    if (work == NULL) {
        fprintf(stderr, "c_host: %s\n", dlerror());
        return 1;
    }
    printf("%d\n", work(-1));
    return 0;
}
