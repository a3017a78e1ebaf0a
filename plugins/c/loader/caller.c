/* caller.c: a plugin that uses libtext. Which text_length it gets was fixed when it was
 * linked: against release 1 it asks for text_length@LAB_1.0, against release 2 for
 * text_length@LAB_2.0, and the loader gives each the version it asked for. */
int text_length(const char *text);

int length_of_word(void) { return text_length("h\xc3\xa9llo"); } /* "héllo": 6 bytes, 5 letters */
