// shapes.hpp: a class hierarchy that a host and a plugin share. The plugin makes a Square
// and hands it over as a Shape; the host asks dynamic_cast whether it is a Square.
// Built with -DLAB_LOCAL_TYPES, Square sits in an anonymous namespace: a mistake that gives
// the host and the plugin each a different type of the same name.
#pragma once

struct Shape {
    virtual ~Shape() = default;
    virtual int sides() const = 0;
};

#ifdef LAB_LOCAL_TYPES
namespace {
#endif
struct Square : Shape {
    int sides() const override { return 4; }
};
#ifdef LAB_LOCAL_TYPES
}  // namespace
#endif
