/* peeking.c: a shared object whose code runs before anyone calls it. The loader calls the
 * resolver of its IFUNC symbol `innocent` while relocating the file, then its constructor;
 * the constructor says so on stderr. Notebook 10 asks who runs it: dlopen, ldd, or labkit's
 * explain. */
#include <unistd.h>

static volatile int resolver_ran;

static int real(void) { return 1; }

static void *resolve(void) { /* runs mid-relocation: it may call nothing, only note */
    resolver_ran = 1;
    return (void *)real;
}

int innocent(void) __attribute__((ifunc("resolve")));
int (*volatile pointer)(void) = innocent; /* a relocation the loader resolves at load */

__attribute__((constructor)) static void on_load(void) {
    static const char both[] = "peeking: my IFUNC resolver ran, then my constructor\n";
    static const char one[] = "peeking: my constructor ran\n";
    if (resolver_ran ? write(2, both, sizeof both - 1) : write(2, one, sizeof one - 1)) {}
}
