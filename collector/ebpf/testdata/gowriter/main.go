// Command gowriter is a pure-Go workload for the eBPF tests: built with
// CGO_ENABLED=0 it is statically linked and makes raw system calls, so the
// LD_PRELOAD shim cannot see it and only the kernel can.
//
// Usage: gowriter DIR — in DIR it writes out.txt through a relative path,
// renames it, makes and removes a directory, then reads the result back.
package main

import (
	"fmt"
	"os"
)

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
	}
	for _, step := range steps {
		if err := step(); err != nil {
			fmt.Fprintln(os.Stderr, "gowriter:", err)
			os.Exit(1)
		}
	}
}
