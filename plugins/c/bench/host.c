/* host.c: a C host that times, with its own clock, a call to a function it found with dlsym.
 *
 *   host LIBRARY SYMBOL CALLS REPEATS [COPY...]
 *
 * dlopens LIBRARY, looks up SYMBOL, an int(int, int) such as add, and calls it CALLS times
 * per batch, REPEATS batches, through a volatile function pointer (the compiler can neither
 * inline the call nor hoist it out of the loop). Then it dlopens each COPY, a fresh file
 * each time because the loader returns the same handle for a path it has loaded.
 *
 * Prints one line per figure, nanoseconds measured with clock_gettime(CLOCK_MONOTONIC):
 *   call NS   nanoseconds per call, one line per batch
 *   open NS   one dlopen (RTLD_NOW | RTLD_LOCAL) of a COPY
 * labkit/lab/benchhosts.py reads these lines.
 */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

typedef int (*binary_fn)(int, int);

static double now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e9 + (double)t.tv_nsec;
}

int main(int argc, char **argv) {
    if (argc < 5) {
        fprintf(stderr, "usage: host LIBRARY SYMBOL CALLS REPEATS [COPY...]\n");
        return 2;
    }
    long calls = atol(argv[3]), repeats = atol(argv[4]);
    if (calls <= 0 || repeats < 0) {
        fprintf(stderr, "host: CALLS must be positive and REPEATS not negative\n");
        return 2;
    }
    void *lib = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
    if (lib == NULL) {
        fprintf(stderr, "host: %s\n", dlerror());
        return 1;
    }
    binary_fn volatile fn = (binary_fn)dlsym(lib, argv[2]);
    if (fn == NULL) {
        fprintf(stderr, "host: %s\n", dlerror());
        return 1;
    }
    volatile unsigned sink = 0;
    unsigned sum = 0; /* unsigned: the sum may wrap, which is defined for unsigned */
    for (long i = 0; i < calls / 10 + 1; i++) /* warm-up: caches, branch predictors */
        sum += (unsigned)fn((int)i, 1);
    for (long r = 0; r < repeats; r++) {
        double start = now_ns();
        for (long i = 0; i < calls; i++)
            sum += (unsigned)fn((int)i, 1);
        printf("call %.4f\n", (now_ns() - start) / (double)calls);
    }
    sink = sum;
    (void)sink;
    for (int c = 5; c < argc; c++) {
        double start = now_ns();
        void *copy = dlopen(argv[c], RTLD_NOW | RTLD_LOCAL);
        double took = now_ns() - start;
        if (copy == NULL) {
            fprintf(stderr, "host: %s\n", dlerror());
            return 1;
        }
        dlclose(copy);
        printf("open %.0f\n", took);
    }
    dlclose(lib);
    return 0;
}
