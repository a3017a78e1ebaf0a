/* bundler.c: a plugin that carries its own copy of tally, release 2, compiled into itself.
 * It asks "which release am I using?" and counts on "its" tally. Which tally_release answers
 * depends on how it was built and loaded: notebook 10, section 3. */
#define TALLY_RELEASE 2
#include "tally.c"

int plugin_release(void) { return tally_release(); }

int plugin_count(void) { return tally_add(1); }
