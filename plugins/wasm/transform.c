/* transform.c: a plugin for WebAssembly (notebook 09), built with zig cc -target wasm32-freestanding.
 *
 * Freestanding: no libc, no imports; the host can give it nothing but calls and bytes in its
 * own linear memory. The same file also builds natively, which shows what wasm changes: peek
 * at an address outside the plugin's memory traps in wasm and crashes with SIGSEGV natively;
 * poke at address 0 crashes natively, but in wasm it writes the plugin's own memory, which
 * starts at address 0, and nothing notices.
 */
#if defined(__wasm__)
#define EXPORT(name) __attribute__((export_name(#name)))
#else
#define EXPORT(name) __attribute__((visibility("default")))
#endif

EXPORT(add) int add(int a, int b) { return a + b; }

/* The host copies text into this buffer, calls shout, and copies the result back out. */
static char text[4096];

EXPORT(buffer) char *buffer(void) { return text; }

EXPORT(capacity) int capacity(void) { return (int)sizeof text; }

/* Upper-cases the first len bytes of the buffer and appends '!'; returns the new length. */
EXPORT(shout) int shout(int len) {
    if (len < 0 || len >= (int)sizeof text) return -1;
    for (int i = 0; i < len; i++)
        if (text[i] >= 'a' && text[i] <= 'z') text[i] = (char)(text[i] - 'a' + 'A');
    text[len] = '!';
    return len + 1;
}

/* A bug on purpose: reads whatever address it is given. */
EXPORT(peek) int peek(long address) { return *(volatile int *)address; }

/* A bug on purpose: writes value at whatever address it is given. */
EXPORT(poke) int poke(long address, int value) { return *(volatile int *)address = value; }

/* A bug on purpose: never returns. */
EXPORT(spin) int spin(void) {
    volatile unsigned counter = 0;
    for (;;) counter++;
    return (int)counter;
}
