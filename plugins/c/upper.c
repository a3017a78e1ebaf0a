/* upper.c: a well-behaved plugin for ABI version 1: changes the case of text, repeats it. */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#ifdef LAB_API_HEADER
#include LAB_API_HEADER   /* upper_v2.c builds this file against another header */
#else
#include "plugin_api.h"
#endif

#ifndef PLUGIN_NAME
#define PLUGIN_NAME "upper"
#endif

struct lab_state {
    lab_options options;
    unsigned long calls;
};

static lab_state *create(const lab_options *options) {
    lab_state *state = calloc(1, sizeof *state);
    if (state != NULL && options != NULL)
        state->options = *options;
    return state;
}

static size_t transform(lab_state *state, const char *text, char *out, size_t capacity) {
    size_t len = strlen(text);
    int repeat = state->options.repeat > 0 ? state->options.repeat : 1;
    size_t total = len * (size_t)repeat;
    state->calls++;
    for (size_t i = 0; i < total && i + 1 < capacity; i++) {
        unsigned char c = (unsigned char)text[i % len];
        if (state->options.letter_case == LAB_CASE_UPPER)
            c = (unsigned char)toupper(c);
        else if (state->options.letter_case == LAB_CASE_LOWER)
            c = (unsigned char)tolower(c);
        out[i] = (char)c;
    }
    if (capacity > 0)
        out[total < capacity ? total : capacity - 1] = '\0';
    return total;
}

static lab_real scale(lab_state *state, lab_real value) {
    state->calls++;
    return value * 2.5;
}

static void destroy(lab_state *state) {
    free(state);
}

static const lab_plugin descriptor = {
    .abi_version = LAB_PLUGIN_ABI_VERSION,
    .size = sizeof(lab_plugin),
    .name = PLUGIN_NAME,
    .description = "changes the case of text and repeats it",
    .create = create,
    .transform = transform,
    .scale = scale,
    .destroy = destroy,
};

const lab_plugin *lab_plugin_entry(void) {
    return &descriptor;
}
