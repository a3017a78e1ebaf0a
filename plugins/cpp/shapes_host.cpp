// shapes_host.cpp: loads a shapes plugin RTLD_LOCAL and compares the type of what it made
// with its own Square: the typeinfo objects, the == of std::type_info, and dynamic_cast.
// Usage: shapes_host PLUGIN
#include <dlfcn.h>

#include <cstdio>
#include <typeinfo>

#include "shapes.hpp"

int main(int argc, char **argv) {
    if (argc != 2) {
        std::fprintf(stderr, "usage: %s PLUGIN\n", argv[0]);
        return 2;
    }
    void *plugin = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
    if (plugin == nullptr) {
        std::fprintf(stderr, "shapes_host: %s\n", dlerror());
        return 1;
    }
    auto make = reinterpret_cast<Shape *(*)(void)>(dlsym(plugin, "lab_make_shape"));
    auto destroy = reinterpret_cast<void (*)(Shape *)>(dlsym(plugin, "lab_free_shape"));
    if (make == nullptr || destroy == nullptr) {
        std::fprintf(stderr, "shapes_host: %s\n", dlerror());
        return 1;
    }
    Shape *shape = make();
    const std::type_info &theirs = typeid(*shape);
    std::printf("the plugin's type: %s\n", theirs.name());
    std::printf("the same typeinfo object as the host's Square: %s\n",
                &theirs == &typeid(Square) ? "yes" : "no");
    std::printf("typeid(*shape) == typeid(Square): %s\n", theirs == typeid(Square) ? "yes" : "no");
    std::printf("dynamic_cast<Square *>: %s\n",
                dynamic_cast<Square *>(shape) != nullptr ? "a Square" : "nullptr");
    destroy(shape);
    return 0;
}
