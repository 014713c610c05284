//go:build unix

package main

import (
	"io"
	"os"
	"strconv"
	"time"

	"golang.org/x/sys/unix"
)

// isTerminal reports whether w is a terminal: progress and summaries go
// there, never into a pipe or a file a script reads.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	_, err := unix.IoctlGetTermios(int(f.Fd()), ioctlGetTermios)
	return err == nil
}

// inForegroundOfTerminal reports whether restrack runs in the foreground
// process group of its controlling terminal: then a Ctrl-C reaches the
// command directly.
func inForegroundOfTerminal() bool {
	pgrp, err := unix.IoctlGetInt(0, unix.TIOCGPGRP)
	return err == nil && pgrp == unix.Getpgrp()
}

// termWidth is the width text output should fit: the terminal's when w is
// one, else $COLUMNS, else 80 (a pipe into less or a mail still reads well).
func termWidth(w io.Writer) int {
	if f, ok := w.(*os.File); ok {
		if ws, err := unix.IoctlGetWinsize(int(f.Fd()), unix.TIOCGWINSZ); err == nil && ws.Col >= 40 {
			return int(ws.Col)
		}
	}
	if n, err := strconv.Atoi(os.Getenv("COLUMNS")); err == nil && n >= 40 {
		return n
	}
	return 80
}

// wallClock turns the trace's times — CLOCK_MONOTONIC, and process start
// times in ns since boot — into wall-clock times, with the offset between
// the two clocks now. That holds for a trace taken since the last boot
// (suspend aside); a time beyond the monotonic clock's present cannot be
// from this boot and is not converted.
type wallClock struct {
	offset  int64
	nowMono uint64
	ok      bool
}

func newWallClock() wallClock {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		return wallClock{}
	}
	now := time.Now()
	mono := ts.Nano()
	return wallClock{offset: now.UnixNano() - mono, nowMono: uint64(mono), ok: true}
}

func (c wallClock) wall(ns uint64) (time.Time, bool) {
	if !c.ok || ns == 0 || ns > c.nowMono {
		return time.Time{}, false
	}
	return time.Unix(0, int64(ns)+c.offset), true
}
