/* quiet.c — LD_AUDIT prototype that only answers la_objopen: the bare cost
 * of the audit interface (issue 13 item 7; docs/bench.md "LD_AUDIT"). */
#define _GNU_SOURCE
#include <link.h>
unsigned int la_version(unsigned int v) { return v < LAV_CURRENT ? v : LAV_CURRENT; }
unsigned int la_objopen(struct link_map *map, Lmid_t lmid, uintptr_t *cookie) { (void)map; (void)lmid; (void)cookie; return 0; }
