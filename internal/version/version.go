// Package version names the build of restrack's commands, for --version.
//
// make stamps Version with `git describe` through -ldflags -X; a plain
// `go build` or `go install` leaves it empty and the module's version or
// the VCS revision Go recorded in the binary is used instead, so every
// binary can say what it is.
package version

import "runtime/debug"

// Version is set at link time: -X github.com/restrack/restrack/internal/version.Version=v1.2.
var Version string

// String is the version to print: the stamped one, else the module
// version (go install …@v1.2), else the VCS revision, else "devel".
func String() string {
	if Version != "" {
		return Version
	}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "devel"
	}
	return fromBuildInfo(bi)
}

func fromBuildInfo(bi *debug.BuildInfo) string {
	if v := bi.Main.Version; v != "" && v != "(devel)" {
		return v
	}
	var rev, modified string
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			modified = s.Value
		}
	}
	if rev == "" {
		return "devel"
	}
	if len(rev) > 12 {
		rev = rev[:12]
	}
	if modified == "true" {
		rev += "-dirty"
	}
	return "devel-" + rev
}
