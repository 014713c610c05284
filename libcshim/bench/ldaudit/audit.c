/* audit.c — LD_AUDIT prototype (issue 13 item 7, docs/bench.md "LD_AUDIT"):
 * prints every object the loader maps and every file
 * name it tries while searching, to the fd in RT_AUDIT_FD (default 2). */
#define _GNU_SOURCE
#include <link.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
static int out = 2;
static void say(const char *kind, const char *s)
{
	char buf[4200];
	size_t n = strlen(kind), m = strlen(s);
	if (n + m + 2 > sizeof(buf)) return;
	memcpy(buf, kind, n); memcpy(buf + n, s, m); buf[n + m] = '\n';
	write(out, buf, n + m + 1);
}
unsigned int la_version(unsigned int v)
{
	const char *e = getenv("RT_AUDIT_FD");
	if (e) out = atoi(e);
	return v < LAV_CURRENT ? v : LAV_CURRENT;
}
unsigned int la_objopen(struct link_map *map, Lmid_t lmid, uintptr_t *cookie)
{
	(void)lmid; (void)cookie;
	if (map->l_name && map->l_name[0]) say("OBJ ", map->l_name);
	return 0;
}
char *la_objsearch(const char *name, uintptr_t *cookie, unsigned int flag)
{
	(void)cookie;
	if (flag != LA_SER_ORIG) say("TRY ", name);
	return (char *)name;
}
