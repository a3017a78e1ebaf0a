/* bench.c: two functions for timing calls into WebAssembly and calls inside it (notebook 08).
 *
 * add is the cheapest call there is; add_loop(n) calls add n times from inside the module,
 * through a volatile function pointer (a call_indirect the compiler cannot inline or fold),
 * so that one call from the host, divided by n, prices a call that never leaves wasm.
 * Built like transform.c: zig cc -target wasm32-freestanding, no imports.
 */
#if defined(__wasm__)
#define EXPORT(name) __attribute__((export_name(#name)))
#else
#define EXPORT(name) __attribute__((visibility("default")))
#endif

EXPORT(add) int add(int a, int b) { return a + b; }

static int (*volatile callee)(int, int) = add;

EXPORT(add_loop) int add_loop(int n) {
    unsigned sum = 0; /* unsigned: the sum may wrap, which is defined for unsigned */
    for (int i = 0; i < n; i++)
        sum += (unsigned)callee(i, 1);
    return (int)sum;
}
