//go:build freebsd || darwin || netbsd || openbsd

package main

import "golang.org/x/sys/unix"

const ioctlGetTermios = unix.TIOCGETA
