/*
 * dlopen_runpath.c — dlopens the library named by argv[1] by bare name and
 * says whether it loaded. Built with a DT_RUNPATH pointing at the library's
 * directory: glibc searches a bare name with the *calling* object's
 * RUNPATH, so this only works under the shim if the shim's dlopen hook
 * keeps the caller's identity (its trampoline; see shim_hooks_ipc.c).
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>

int main(int argc, char **argv)
{
	if (argc != 2)
		return 2;
	void *h = dlopen(argv[1], RTLD_NOW);
	if (h == NULL) {
		printf("dlopen failed: %s\n", dlerror());
		return 1;
	}
	printf("loaded\n");
	return 0;
}
