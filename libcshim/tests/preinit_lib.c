/*
 * preinit_lib.c — a library whose constructor opens a file. Linked into
 * preinit_main.c, its constructor runs before the shim's (the loader
 * initialises the program's own dependencies first), so the open reaches
 * the shim before its constructor: the shim must initialise lazily, record
 * it (flagged RT_RF_PRE_INIT) and not disturb the call.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>

int preinit_fd = -100;
int preinit_errno = -100;

__attribute__((constructor)) static void preinit_ctor(void)
{
	errno = 0;
	preinit_fd = open("preinit.txt", O_CREAT | O_WRONLY, 0600);
	preinit_errno = errno;
	if (preinit_fd >= 0)
		close(preinit_fd);
	FILE *f = fopen("preinit-stdio.txt", "w");
	if (f)
		fclose(f);
}
