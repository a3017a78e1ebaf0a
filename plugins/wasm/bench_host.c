/* bench_host.c: a C host that embeds wasmtime through its C API and times, with its own
 * clock, calls into a wasm module and calls that stay inside it (notebook 08).
 *
 *   bench_host LIBWASMTIME MODULE.wasm CALLS REPEATS LOOP STARTS
 *
 * LIBWASMTIME is wasmtime's C library, the very file wasmtime-py ships and loads, opened
 * here with dlopen. This file declares the few functions and structures of wasmtime's C
 * API (wasmtime.h) that it uses; it prints the sizes of those structures so that labkit can
 * compare them with wasmtime-py's declarations of the same release before it trusts a
 * figure. MODULE.wasm is plugins/wasm/bench.c built for wasm32: add and add_loop.
 *
 * Prints one line per figure, nanoseconds measured with clock_gettime(CLOCK_MONOTONIC):
 *   layout E V I F  sizes in bytes of wasmtime_extern_t, wasmtime_val_t,
 *                   wasmtime_instance_t and wasmtime_func_t as declared here
 *   start NS        a new engine and store, MODULE compiled and instantiated (STARTS lines)
 *   call NS         per call of add(i, 1) through wasmtime_func_call, one line per batch:
 *                   the checked call, which converts and type-checks every argument
 *   raw NS          the same through wasmtime_func_call_unchecked, raw values in and out
 *                   (what wasmtime's typed calls do; the caller vouches for the types)
 *   inside NS       one call of add_loop(LOOP) divided by LOOP: a call that stays in wasm
 * labkit/lab/benchhosts.py reads these lines.
 */
#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* wasmtime.h, release 50: opaque handles, and the structures a caller allocates. */
typedef struct wasm_engine_t wasm_engine_t;
typedef struct wasmtime_store wasmtime_store_t;
typedef struct wasmtime_context wasmtime_context_t;
typedef struct wasmtime_module wasmtime_module_t;
typedef struct wasmtime_error wasmtime_error_t;
typedef struct wasm_trap_t wasm_trap_t;
typedef struct { size_t size; char *data; } wasm_byte_vec_t;
typedef struct { uint64_t store_id; void *private_; } wasmtime_func_t;
typedef struct { uint64_t store_id; size_t private_; } wasmtime_instance_t;
typedef struct {
    uint8_t kind; /* WASMTIME_EXTERN_FUNC is 0 */
    union { wasmtime_func_t func; uint8_t any[24]; } of;
} wasmtime_extern_t;
typedef struct {
    uint8_t kind; /* WASMTIME_I32 is 0 */
    union { int32_t i32; int64_t i64; uint8_t any[24]; } of;
} wasmtime_val_t;
typedef union { int32_t i32; int64_t i64; uint8_t v128[16]; void *funcref; } wasmtime_val_raw_t;

static wasm_engine_t *(*wasm_engine_new)(void);
static void (*wasm_engine_delete)(wasm_engine_t *);
static wasmtime_store_t *(*wasmtime_store_new)(wasm_engine_t *, void *, void (*)(void *));
static wasmtime_context_t *(*wasmtime_store_context)(wasmtime_store_t *);
static void (*wasmtime_store_delete)(wasmtime_store_t *);
static wasmtime_error_t *(*wasmtime_module_new)(wasm_engine_t *, const uint8_t *, size_t,
                                                wasmtime_module_t **);
static void (*wasmtime_module_delete)(wasmtime_module_t *);
static wasmtime_error_t *(*wasmtime_instance_new)(wasmtime_context_t *,
                                                  const wasmtime_module_t *,
                                                  const wasmtime_extern_t *, size_t,
                                                  wasmtime_instance_t *, wasm_trap_t **);
static int (*wasmtime_instance_export_get)(wasmtime_context_t *, const wasmtime_instance_t *,
                                           const char *, size_t, wasmtime_extern_t *);
static wasmtime_error_t *(*wasmtime_func_call)(wasmtime_context_t *, const wasmtime_func_t *,
                                               const wasmtime_val_t *, size_t,
                                               wasmtime_val_t *, size_t, wasm_trap_t **);
static wasmtime_error_t *(*wasmtime_func_call_unchecked)(wasmtime_context_t *,
                                                         const wasmtime_func_t *,
                                                         wasmtime_val_raw_t *, size_t,
                                                         wasm_trap_t **);
static void (*wasmtime_error_message)(const wasmtime_error_t *, wasm_byte_vec_t *);
static void (*wasm_trap_message)(const wasm_trap_t *, wasm_byte_vec_t *);

static int bind(void *lib) {
    struct { void **slot; const char *name; } api[] = {
#define API(name) {(void **)&name, #name}
        API(wasm_engine_new), API(wasm_engine_delete), API(wasmtime_store_new),
        API(wasmtime_store_context), API(wasmtime_store_delete), API(wasmtime_module_new),
        API(wasmtime_module_delete), API(wasmtime_instance_new),
        API(wasmtime_instance_export_get), API(wasmtime_func_call),
        API(wasmtime_func_call_unchecked),
        API(wasmtime_error_message), API(wasm_trap_message),
#undef API
    };
    for (size_t i = 0; i < sizeof api / sizeof api[0]; i++) {
        *api[i].slot = dlsym(lib, api[i].name);
        if (*api[i].slot == NULL) {
            fprintf(stderr, "bench_host: %s\n", dlerror());
            return 0;
        }
    }
    return 1;
}

/* Says what failed, with wasmtime's own message, and exits. */
static void fail(const char *what, wasmtime_error_t *error, wasm_trap_t *trap) {
    wasm_byte_vec_t message = {0, NULL};
    if (error != NULL)
        wasmtime_error_message(error, &message);
    else if (trap != NULL)
        wasm_trap_message(trap, &message);
    fprintf(stderr, "bench_host: %s: %.*s\n", what, (int)message.size,
            message.data ? message.data : "");
    exit(1);
}

static double now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e9 + (double)t.tv_nsec;
}

typedef struct {
    wasm_engine_t *engine;
    wasmtime_store_t *store;
    wasmtime_context_t *context;
    wasmtime_module_t *module;
    wasmtime_instance_t instance;
} plugin;

static plugin start(const uint8_t *bytes, size_t size) {
    plugin p;
    wasm_trap_t *trap = NULL;
    wasmtime_error_t *error;
    p.engine = wasm_engine_new();
    p.store = wasmtime_store_new(p.engine, NULL, NULL);
    p.context = wasmtime_store_context(p.store);
    if ((error = wasmtime_module_new(p.engine, bytes, size, &p.module)) != NULL)
        fail("compiling the module", error, NULL);
    error = wasmtime_instance_new(p.context, p.module, NULL, 0, &p.instance, &trap);
    if (error != NULL || trap != NULL)
        fail("instantiating the module", error, trap);
    return p;
}

static void stop(plugin *p) {
    wasmtime_module_delete(p->module);
    wasmtime_store_delete(p->store);
    wasm_engine_delete(p->engine);
}

static wasmtime_func_t function(plugin *p, const char *name) {
    wasmtime_extern_t item;
    if (!wasmtime_instance_export_get(p->context, &p->instance, name, strlen(name), &item)
        || item.kind != 0) {
        fprintf(stderr, "bench_host: the module exports no function %s\n", name);
        exit(1);
    }
    return item.of.func;
}

static int32_t call(plugin *p, const wasmtime_func_t *f, const wasmtime_val_t *args,
                    size_t nargs) {
    wasmtime_val_t result;
    wasm_trap_t *trap = NULL;
    wasmtime_error_t *error = wasmtime_func_call(p->context, f, args, nargs, &result, 1, &trap);
    if (error != NULL || trap != NULL)
        fail("calling into the module", error, trap);
    return result.of.i32;
}

/* add(a, b) with raw values: the array holds the arguments, then the result. */
static int32_t call_raw(plugin *p, const wasmtime_func_t *f, int32_t a, int32_t b) {
    wasmtime_val_raw_t values[2];
    wasm_trap_t *trap = NULL;
    values[0].i32 = a;
    values[1].i32 = b;
    wasmtime_error_t *error = wasmtime_func_call_unchecked(p->context, f, values, 2, &trap);
    if (error != NULL || trap != NULL)
        fail("calling into the module", error, trap);
    return values[0].i32;
}

static uint8_t *read_file(const char *path, size_t *size) {
    FILE *file = fopen(path, "rb");
    if (file == NULL || fseek(file, 0, SEEK_END) != 0) {
        perror(path);
        exit(1);
    }
    long length = ftell(file);
    uint8_t *bytes = malloc((size_t)length);
    rewind(file);
    if (bytes == NULL || fread(bytes, 1, (size_t)length, file) != (size_t)length) {
        perror(path);
        exit(1);
    }
    fclose(file);
    *size = (size_t)length;
    return bytes;
}

int main(int argc, char **argv) {
    if (argc != 7) {
        fprintf(stderr, "usage: bench_host LIBWASMTIME MODULE.wasm CALLS REPEATS LOOP STARTS\n");
        return 2;
    }
    long calls = atol(argv[3]), repeats = atol(argv[4]), loop = atol(argv[5]);
    long starts = atol(argv[6]);
    if (calls <= 0 || loop <= 0 || loop > INT32_MAX || repeats < 0 || starts < 0) {
        fprintf(stderr, "bench_host: CALLS and LOOP must be positive, REPEATS and STARTS "
                        "not negative\n");
        return 2;
    }
    setvbuf(stdout, NULL, _IONBF, 0); /* every line out before a crash, if one comes */
    printf("layout %zu %zu %zu %zu\n", sizeof(wasmtime_extern_t), sizeof(wasmtime_val_t),
           sizeof(wasmtime_instance_t), sizeof(wasmtime_func_t));
    void *lib = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
    if (lib == NULL) {
        fprintf(stderr, "bench_host: %s\n", dlerror());
        return 1;
    }
    if (!bind(lib))
        return 1;
    size_t size;
    uint8_t *bytes = read_file(argv[2], &size);
    for (long s = 0; s < starts; s++) {
        double begin = now_ns();
        plugin p = start(bytes, size);
        double took = now_ns() - begin;
        stop(&p);
        printf("start %.0f\n", took);
    }
    plugin p = start(bytes, size);
    wasmtime_func_t add = function(&p, "add"), add_loop = function(&p, "add_loop");
    wasmtime_val_t args[2] = {{.kind = 0, .of.i32 = 0}, {.kind = 0, .of.i32 = 1}};
    wasmtime_val_t n = {.kind = 0, .of.i32 = (int32_t)loop};
    volatile uint32_t sink = 0;
    uint32_t sum = 0;
    for (long i = 0; i < calls / 10 + 1; i++) { /* warm-up */
        args[0].of.i32 = (int32_t)i;
        sum += (uint32_t)call(&p, &add, args, 2);
        sum += (uint32_t)call_raw(&p, &add, (int32_t)i, 1);
    }
    sum += (uint32_t)call(&p, &add_loop, &n, 1);
    for (long r = 0; r < repeats; r++) {
        double begin = now_ns();
        for (long i = 0; i < calls; i++) {
            args[0].of.i32 = (int32_t)i;
            sum += (uint32_t)call(&p, &add, args, 2);
        }
        printf("call %.4f\n", (now_ns() - begin) / (double)calls);
    }
    for (long r = 0; r < repeats; r++) {
        double begin = now_ns();
        for (long i = 0; i < calls; i++)
            sum += (uint32_t)call_raw(&p, &add, (int32_t)i, 1);
        printf("raw %.4f\n", (now_ns() - begin) / (double)calls);
    }
    for (long r = 0; r < repeats; r++) {
        double begin = now_ns();
        sum += (uint32_t)call(&p, &add_loop, &n, 1);
        printf("inside %.4f\n", (now_ns() - begin) / (double)loop);
    }
    sink = sum;
    (void)sink;
    stop(&p);
    free(bytes);
    return 0;
}
