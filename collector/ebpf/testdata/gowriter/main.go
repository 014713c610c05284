// Command gowriter is a pure-Go workload for the eBPF tests: built with
// CGO_ENABLED=0 it is statically linked and makes raw system calls, so the
// LD_PRELOAD shim cannot see it and only the kernel can.
//
// Usage: gowriter DIR — in DIR it writes out.txt through a relative path,
// renames it, makes and removes a directory, reads the result back, then
// opens mapped-target through a path string in a page it never touched.
package main

import (
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"unsafe"
)

// openUntouched opens target through a copy of its name that lives in a
// freshly mapped file page this process has not touched: the page is not
// in its page table until the kernel faults it in while copying the path,
// so a tracer reading the path at syscall entry gets EFAULT.
func openUntouched(target string) error {
	if err := os.WriteFile(target, nil, 0o644); err != nil {
		return err
	}
	name := target + ".path"
	if err := os.WriteFile(name, append([]byte(target), 0), 0o644); err != nil {
		return err
	}
	f, err := os.Open(name)
	if err != nil {
		return err
	}
	defer f.Close()
	page, err := syscall.Mmap(int(f.Fd()), 0, len(target)+1, syscall.PROT_READ, syscall.MAP_PRIVATE)
	if err != nil {
		return err
	}
	defer syscall.Munmap(page)
	fd, _, errno := syscall.Syscall6(syscall.SYS_OPENAT, uintptr(0xffffff9c) /* AT_FDCWD */, uintptr(unsafe.Pointer(&page[0])),
		syscall.O_RDONLY|syscall.O_CLOEXEC, 0, 0, 0)
	if errno != 0 {
		return errno
	}
	return syscall.Close(int(fd))
}

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: gowriter DIR")
		os.Exit(2)
	}
	steps := []func() error{
		func() error { return os.Chdir(os.Args[1]) },
		func() error { return os.WriteFile("out.txt", []byte("hello\n"), 0o644) },
		func() error { return os.Rename("out.txt", "renamed.txt") },
		func() error { return os.Mkdir("sub", 0o755) },
		func() error { return os.Remove("sub") },
		func() error { _, err := os.ReadFile(os.Args[1] + "/renamed.txt"); return err },
		func() error { return openUntouched(filepath.Join(os.Args[1], "mapped-target")) },
	}
	for _, step := range steps {
		if err := step(); err != nil {
			fmt.Fprintln(os.Stderr, "gowriter:", err)
			os.Exit(1)
		}
	}
}
