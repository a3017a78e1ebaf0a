/* helper.c: libhelper.so, a small library with versioned symbols; -DHELPER_V2 builds release 2, which adds helper_shout@@LABHELPER_2.0. */
#include <ctype.h>
#include <stddef.h>

/* LABHELPER_1.0: in every release */
size_t helper_length(const char *text) {
    size_t n = 0;
    while (text[n] != '\0')
        n++;
    return n;
}

#ifdef HELPER_V2
/* LABHELPER_2.0: new in release 2 */
void helper_shout(char *text) {
    for (; *text != '\0'; text++)
        *text = (char)toupper((unsigned char)*text);
}
#endif
