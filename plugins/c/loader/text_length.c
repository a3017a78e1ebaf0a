/* text_length.c: libtext, a library that has changed its mind about what a length is.
 *
 * Release 1 (-DTEXT_RELEASE=1, linked with text_v1.map) counts bytes. Release 2 counts
 * characters of UTF-8 text, yet keeps release 1's function for the programs built against
 * it: the file holds two functions under one name, text_length@LAB_1.0 (bytes) and
 * text_length@@LAB_2.0 (characters, the default a new program links against). */
#ifndef TEXT_RELEASE
#define TEXT_RELEASE 2
#endif

static int bytes(const char *text) {
    int n = 0;
    while (text[n] != '\0') n++;
    return n;
}

#if TEXT_RELEASE == 1
int text_length(const char *text) { return bytes(text); }
#else
int text_length_bytes(const char *text) { return bytes(text); }

int text_length_chars(const char *text) {
    int n = 0;
    for (; *text != '\0'; text++)
        if ((*text & 0xC0) != 0x80) n++; /* count every byte but UTF-8 continuation bytes */
    return n;
}

__asm__(".symver text_length_bytes, text_length@LAB_1.0");
__asm__(".symver text_length_chars, text_length@@LAB_2.0");
#endif
