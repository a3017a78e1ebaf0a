/* plugin_api.h: the contract between Plugin Lab's host and its C plugins, ABI version 1.
 *
 * A plugin exports one symbol, lab_plugin_entry, which returns a descriptor: the ABI version
 * it was built for, the size of the descriptor as it was compiled, its name, and a table of
 * functions. The host checks the version and the size before it calls anything. State lives
 * behind an opaque handle, so the plugin can change what is inside without breaking hosts.
 * transform is required; create, scale and destroy may be NULL (no state, no scaling).
 */
#ifndef LAB_PLUGIN_API_H
#define LAB_PLUGIN_API_H

#include <stddef.h>
#include <stdint.h>

#define LAB_PLUGIN_ABI_VERSION 1

typedef enum lab_case {
    LAB_CASE_KEEP = 0,
    LAB_CASE_UPPER = 1,
    LAB_CASE_LOWER = 2
} lab_case;

typedef double lab_real;   /* the numbers scale() takes and returns */

typedef struct lab_options {
    lab_case letter_case;   /* what to do with letters */
    int repeat;             /* how many times to write the text */
    int width;              /* a hint for plugins that lay text out; 0 for none */
} lab_options;

typedef struct lab_state lab_state;   /* opaque: only the plugin knows what is inside */

typedef struct lab_plugin {
    uint32_t abi_version;   /* LAB_PLUGIN_ABI_VERSION the plugin was built with */
    uint32_t size;          /* sizeof(lab_plugin) as the plugin was compiled */
    const char *name;
    const char *description;
    lab_state *(*create)(const lab_options *options);
    /* writes the result into out (at most capacity bytes, with the final NUL); returns
       the length of the full result */
    size_t (*transform)(lab_state *state, const char *text, char *out, size_t capacity);
    lab_real (*scale)(lab_state *state, lab_real value);
    void (*destroy)(lab_state *state);
} lab_plugin;

const lab_plugin *lab_plugin_entry(void);

#endif
