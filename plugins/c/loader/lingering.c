/* lingering.c: a plugin that leaves things behind in the process that loaded it, for
 * notebook 10's unloading section. Each function is called by the host before dlclose:
 *
 *   start_ticker   starts a thread that runs this file's code every second, forever
 *   remember       gives the calling thread a pthread_key value whose destructor is here
 *   note_at_exit   registers an atexit handler that is here
 *
 * After dlclose has unmapped the file, anything that still jumps into it (the ticker's next
 * tick, the key's destructor when that thread exits) executes an address with nothing mapped
 * behind it: SIGSEGV. The atexit handler is the exception: glibc runs it at dlclose. */
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static atomic_long ticks;

static void *tick(void *unused) {
    (void)unused;
    const struct timespec pause = {1, 0};
    for (;;) {
        ticks++;
        nanosleep(&pause, NULL);
    }
    return NULL;
}

int start_ticker(void) {
    pthread_t thread;
    if (pthread_create(&thread, NULL, tick, NULL) != 0) return -1;
    pthread_detach(thread);
    /* Return only once the thread runs and sleeps: a thread not yet scheduled when dlclose
     * unmaps the file would crash at its first instruction, before the host could look. */
    while (atomic_load(&ticks) == 0) sched_yield();
    return 0;
}

static pthread_key_t key;

static void forget(void *value) {
    printf("lingering: the key's destructor runs for %s\n", (const char *)value);
    fflush(stdout);
}

int remember(void) {
    if (pthread_key_create(&key, forget) != 0) return -1;
    return pthread_setspecific(key, "this thread");
}

static void at_exit(void) {
    printf("lingering: the atexit handler runs\n");
    fflush(stdout);
}

int note_at_exit(void) { return atexit(at_exit); }
