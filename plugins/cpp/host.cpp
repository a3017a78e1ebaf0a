// host.cpp: a C++ host of transformer.hpp. It dlopens the plugin, makes a Transformer with
// lab_create, calls it through the interface and hands it back to lab_destroy.
// Built with -DLAB_RELEASE=2 it uses transformer_v2.hpp and also asks for author().
// Usage: host PLUGIN TEXT
#include <dlfcn.h>

#include <cstdio>
#include <cstring>

#if LAB_RELEASE == 2
#include "transformer_v2.hpp"
#else
#include "transformer.hpp"
#endif

int main(int argc, char **argv) {
    std::setvbuf(stdout, nullptr, _IONBF, 0);  // each line out before a crash can stop it
    if (argc != 3) {
        std::fprintf(stderr, "usage: %s PLUGIN TEXT\n", argv[0]);
        return 2;
    }
    void *plugin = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
    if (plugin == nullptr) {
        std::fprintf(stderr, "host: %s\n", dlerror());
        return 1;
    }
    auto create = reinterpret_cast<Transformer *(*)(void)>(dlsym(plugin, "lab_create"));
    if (create == nullptr) {
        std::fprintf(stderr, "host: %s\n", dlerror());
        return 1;
    }
    auto destroy = reinterpret_cast<void (*)(Transformer *)>(dlsym(plugin, "lab_destroy"));
    if (destroy == nullptr) {
        std::fprintf(stderr, "host: %s\n", dlerror());
        return 1;
    }
    Transformer *transformer = create();
    std::printf("name: %s\n", transformer->name());
#if LAB_RELEASE == 2
    std::printf("author: %s\n", transformer->author());
#endif
    std::printf("greeting: %s\n", transformer->greeting());
    char text[256];
    std::snprintf(text, sizeof text, "%s", argv[2]);
    int size = transformer->transform(text, static_cast<int>(std::strlen(text)));
    std::printf("transform: %.*s\n", size, text);
    destroy(transformer);
    return 0;
}
