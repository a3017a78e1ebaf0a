// upper_v2.cpp: upper.cpp rebuilt for transformer_v2.hpp, which inserted author() in the
// middle of the interface. abi-diff compares it with upper.cpp's build.
#include <cctype>

#include "transformer_v2.hpp"

namespace {

struct Upper final : Transformer {
    const char *name() const override { return "upper"; }
    const char *author() const override { return "the lab"; }
    const char *greeting() const override { return "hello from upper, release 2"; }
    int transform(char *text, int size) override {
        for (int i = 0; i < size; i++) text[i] = static_cast<char>(std::toupper(text[i]));
        return size;
    }
};

}  // namespace

extern "C" Transformer *lab_create(void) { return new Upper; }
extern "C" void lab_destroy(Transformer *transformer) { delete transformer; }
