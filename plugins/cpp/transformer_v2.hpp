// transformer_v2.hpp: release 2 of transformer.hpp after a careless edit: a virtual function
// inserted in the middle. Every function after it moves one slot down the vtable, so a host
// built with this header calls the wrong function of a plugin built with release 1.
#pragma once

struct Transformer {
    virtual ~Transformer() = default;
    virtual const char *name() const = 0;
    virtual const char *author() const = 0;    // new in release 2
    virtual const char *greeting() const = 0;
    virtual int transform(char *text, int size) = 0;
};

extern "C" Transformer *lab_create(void);
extern "C" void lab_destroy(Transformer *transformer);
