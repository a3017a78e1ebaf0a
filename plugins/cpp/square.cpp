// square.cpp: a plugin that makes a Square of shapes.hpp and returns it as a Shape.
#include "shapes.hpp"

extern "C" Shape *lab_make_shape(void) { return new Square; }
extern "C" void lab_free_shape(Shape *shape) { delete shape; }
