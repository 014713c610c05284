package collector

import "golang.org/x/sys/unix"

// ioctlFIONREAD asks how many bytes wait in a pipe (FIONREAD is TIOCINQ).
const ioctlFIONREAD = unix.TIOCINQ
