/* gone.c: libgone.so, a library that needs_lib.c is linked against and that is never shipped with it. */
int gone_answer(void) {
    return 42;
}
