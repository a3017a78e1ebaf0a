// transformer.hpp: the C++ plugin interface, release 1. A plugin implements Transformer and
// exports two C functions: lab_create makes one, lab_destroy deletes it (so that memory is
// freed on the side that allocated it). extern "C" keeps their names as written, so a host
// finds them with dlsym("lab_create"); a C++ name would be mangled (_Z10lab_createv).
#pragma once

struct Transformer {
    virtual ~Transformer() = default;
    virtual const char *name() const = 0;      // the plugin's name
    virtual const char *greeting() const = 0;  // what it says when loaded
    virtual int transform(char *text, int size) = 0;  // in place; returns the size
};

extern "C" Transformer *lab_create(void);
extern "C" void lab_destroy(Transformer *transformer);
