// Package ebpf is restrack's eBPF comparison mode: it traces the same file
// operations as the LD_PRELOAD shim, from the kernel's syscall tracepoints,
// for one process tree, and hands them over as ring.Record values so they
// feed the same store as the shim's records.
//
// The kernel side (bpf/restrack.bpf.c) follows the tree with the
// sched_process_fork/exec/exit tracepoints, reads each traced syscall's
// path arguments at syscall exit and publishes one variable-length record
// per call into a BPF ring buffer without waking the reader. The Go side
// (Tracer) drains that buffer in bulk every poll interval, turns relative
// paths into absolute ones with the process's tracked working directory or
// its open directory fds, and counts what was lost.
//
// Because it sees system calls rather than libc calls, it also sees what the
// shim cannot: statically linked and pure-Go programs, setuid programs. It
// reports kernel names (openat, not fopen) and misses nothing the kernel
// does on the program's behalf through those syscalls; docs/ebpf.md
// compares the two. Linux only: elsewhere Start returns ErrUnsupported.
package ebpf
