/* The BPF target has no multiarch asm/ directory: use the generic one. */
#include <asm-generic/posix_types.h>
