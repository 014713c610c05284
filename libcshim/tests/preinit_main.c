/*
 * preinit_main.c — prints what preinit_lib.c's constructor saw (see there).
 */
#include <stdio.h>

extern int preinit_fd, preinit_errno;

int main(void)
{
	printf("preinit fd %d errno %d\n", preinit_fd, preinit_errno);
	return 0;
}
