/* tally.c: a tiny library that counts, released twice. Build it with -DTALLY_RELEASE=1 or 2.
 * Notebook 10 gives the host release 1 and lets a plugin bundle release 2 inside itself,
 * the way plugins bundle their own zlib or protobuf. */
#ifndef TALLY_RELEASE
#define TALLY_RELEASE 1
#endif

static int total;

int tally_release(void) { return TALLY_RELEASE; }

int tally_add(int amount) {
    total += amount;
    return total;
}

int tally_total(void) { return total; }
