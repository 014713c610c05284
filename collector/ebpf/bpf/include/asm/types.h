/* The BPF target has no multiarch asm/ directory: use the generic one. */
#include <asm-generic/int-ll64.h>
