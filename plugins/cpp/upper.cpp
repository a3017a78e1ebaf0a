// upper.cpp: a C++ plugin of transformer.hpp (release 1) that upper-cases text.
#include <cctype>

#include "transformer.hpp"

namespace {

struct Upper final : Transformer {
    const char *name() const override { return "upper"; }
    const char *greeting() const override { return "hello from upper, release 1"; }
    int transform(char *text, int size) override {
        for (int i = 0; i < size; i++) text[i] = static_cast<char>(std::toupper(text[i]));
        return size;
    }
};

}  // namespace

extern "C" Transformer *lab_create(void) { return new Upper; }
extern "C" void lab_destroy(Transformer *transformer) { delete transformer; }
