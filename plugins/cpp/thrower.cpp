// thrower.cpp: a C++ plugin whose C entry point lets an exception out. A C++ host can catch
// it (catcher.cpp); a C host, or a C++ host built with -fno-exceptions, cannot, and the C++
// runtime ends the process with std::terminate.
#include <stdexcept>

extern "C" int lab_work(int x) {
    if (x < 0) throw std::runtime_error("negative input");
    return x;
}
