/* upper_v2.c: upper.c rebuilt against plugin_api_v2.h, which breaks ABI version 1 and does not say so. */
#define LAB_API_HEADER "plugin_api_v2.h"
#define PLUGIN_NAME "upper_v2"
#include "upper.c"
