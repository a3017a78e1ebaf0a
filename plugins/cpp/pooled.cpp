// pooled.cpp: a plugin with an allocator of its own, as a plugin linked with its own
// (static, hidden) allocator has: its strings come from a pool the C library knows nothing
// about. Only the plugin can take them back: lab_release.
#include <cstddef>
#include <cstring>

namespace {

alignas(16) char pool[4096];
std::size_t used;

char *pool_copy(const char *text) {
    std::size_t size = std::strlen(text) + 1;
    if (used + size > sizeof pool) return nullptr;
    char *copy = pool + used;
    std::memcpy(copy, text, size);
    used += size;
    return copy;
}

}  // namespace

extern "C" char *lab_describe(void) { return pool_copy("upper, from the pool"); }
extern "C" void lab_release(char *text) {
    if (text != nullptr && text + std::strlen(text) + 1 == pool + used) used = text - pool;
}
