package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"regexp"
)

// The standard flag package accepts --name as well as -name, but prints
// and reports every flag with one dash. Users come from GNU tools, and
// restrack's docs write --name: gnuWriter rewrites what a FlagSet prints
// (its defaults and its parse errors) so that help and errors show the
// spelling the docs use. One-letter flags keep one dash (-v, -h).
type gnuWriter struct{ w io.Writer }

var (
	// "  -ap PID" as flag.PrintDefaults starts a flag's line.
	defaultsLine = regexp.MustCompile(`^(  )-([A-Za-z0-9][A-Za-z0-9_-]+)`)
	// The flag package's errors: "flag provided but not defined: -bogus",
	// "invalid value "x" for flag -pid: …", "flag needs an argument: -ap".
	flagInError = regexp.MustCompile(`((?:defined|argument|flag|for): )-([A-Za-z0-9][A-Za-z0-9_-]+)|(flag )-([A-Za-z0-9][A-Za-z0-9_-]+)|(for )-([A-Za-z0-9][A-Za-z0-9_-]+)`)
)

func (g gnuWriter) Write(p []byte) (int, error) {
	lines := bytes.SplitAfter(p, []byte("\n"))
	var out []byte
	for _, l := range lines {
		l = defaultsLine.ReplaceAll(l, []byte("$1--$2"))
		l = flagInError.ReplaceAllFunc(l, func(m []byte) []byte {
			i := bytes.LastIndex(m, []byte(" -"))
			return append(append(append([]byte{}, m[:i]...), " --"...), m[i+2:]...)
		})
		out = append(out, l...)
	}
	if _, err := g.w.Write(out); err != nil {
		return 0, err
	}
	return len(p), nil
}

// gnuOutput makes fs print in GNU style (once).
func gnuOutput(fs *flag.FlagSet) {
	if _, ok := fs.Output().(gnuWriter); !ok {
		fs.SetOutput(gnuWriter{fs.Output()})
	}
}

// parseFlags parses a subcommand's flags, positional arguments allowed.
// ok is false when the caller must return code: 0 after -h/--help (help
// is what was asked for), 2 after a bad flag (the message is printed).
func parseFlags(fs *flag.FlagSet, args []string) (code int, ok bool) {
	if captureFlags != nil { // restrack completion / man: only the flags are wanted
		captureFlags(fs)
		return 0, false
	}
	gnuOutput(fs)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0, false
		}
		return 2, false
	}
	return 0, true
}

// parseNoArgs is parseFlags for a subcommand that takes no positional
// argument: a stray one is a usage error (2).
func parseNoArgs(fs *flag.FlagSet, args []string) (code int, ok bool) {
	if code, ok := parseFlags(fs, args); !ok {
		return code, false
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(fs.Output(), "%s: unexpected argument %q\n", fs.Name(), fs.Arg(0))
		return 2, false
	}
	return 0, true
}

// usageError is a mistake in how a command was called (exit status 2),
// as opposed to a failure while doing it (1).
type usageError struct{ error }

func (u usageError) Unwrap() error { return u.error }

// errorStatus is the exit status for err: 2 for a usage error, else 1.
func errorStatus(err error) int {
	var u usageError
	if errors.As(err, &u) {
		return 2
	}
	return 1
}

// timeFormat is how text output shows the trace's monotonic times
// (--time); JSON always carries the raw nanoseconds.
type timeFormat int

const (
	timeWall timeFormat = iota // local wall clock, the default: what people read
	timeRel                    // seconds since the first shown time
	timeMono                   // raw CLOCK_MONOTONIC ns, as stored
)

func parseTimeFormat(s string) (timeFormat, error) {
	switch s {
	case "wall":
		return timeWall, nil
	case "rel":
		return timeRel, nil
	case "mono":
		return timeMono, nil
	}
	return 0, fmt.Errorf("--time %q: want wall, rel or mono", s)
}

// format shows ns; base is the time rel counts from.
func (f timeFormat) format(c wallClock, ns, base uint64) string {
	switch f {
	case timeWall:
		if t, ok := c.wall(ns); ok {
			return t.Format("15:04:05.000")
		}
	case timeRel:
		return fmt.Sprintf("+%.3fs", float64(int64(ns-base))/1e9)
	}
	return fmt.Sprint(ns)
}

// describe says what the times are, for a header line.
func (f timeFormat) describe(c wallClock, base uint64) string {
	switch f {
	case timeWall:
		if t, ok := c.wall(base); ok {
			return "local wall clock, from " + t.Format("2006-01-02 15:04:05 MST") + " (--time rel|mono)"
		}
		return "CLOCK_MONOTONIC ns: the trace is not from this boot"
	case timeRel:
		return "seconds since the first"
	}
	return "CLOCK_MONOTONIC ns"
}

// errWriter keeps the first write error so that rendering stays linear.
type errWriter struct {
	w   io.Writer
	err error
}

func (e *errWriter) printf(format string, args ...any) {
	if e.err == nil {
		_, e.err = fmt.Fprintf(e.w, format, args...)
	}
}
