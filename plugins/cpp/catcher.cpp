// catcher.cpp: a C++ host that calls thrower's lab_work(-1) inside try/catch. Built with
// -fno-exceptions -DLAB_NO_TRY it has no handler, as a host compiled without exceptions.
// Usage: catcher PLUGIN
#include <dlfcn.h>

#include <cstdio>
#include <exception>

int main(int argc, char **argv) {
    if (argc != 2) {
        std::fprintf(stderr, "usage: %s PLUGIN\n", argv[0]);
        return 2;
    }
    void *plugin = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
    if (plugin == nullptr) {
        std::fprintf(stderr, "catcher: %s\n", dlerror());
        return 1;
    }
    auto work = reinterpret_cast<int (*)(int)>(dlsym(plugin, "lab_work"));
    if (work == nullptr) {
        std::fprintf(stderr, "catcher: %s\n", dlerror());
        return 1;
    }
#ifdef LAB_NO_TRY
    std::printf("%d\n", work(-1));
#else
    try {
        std::printf("%d\n", work(-1));
    } catch (const std::exception &e) {
        std::printf("caught: %s\n", e.what());
    }
#endif
    return 0;
}
