//go:build !linux

package pack

import (
	"errors"

	"github.com/restrack/restrack/planner"
)

type freezer struct {
	method string
	pids   []int32
}

func freeze([]planner.ProcKey, planner.Host) (*freezer, error) {
	return nil, errors.New("freezing processes needs Linux's /proc and cgroup freezer here; pass --no-freeze to read the files live (changes are still detected)")
}

func (*freezer) thaw() error { return nil }
