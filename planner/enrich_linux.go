package planner

import (
	"bytes"
	"os"
	"strconv"
	"strings"
)

// Process reads /proc/PID/stat's starttime (field 22, clock ticks since
// boot) into the shim's unit, nanoseconds, and /proc/PID/cmdline.
func (LocalHost) Process(pid int32) (HostProcess, bool) {
	dir := "/proc/" + strconv.Itoa(int(pid))
	stat, err := os.ReadFile(dir + "/stat")
	if err != nil {
		return HostProcess{}, false
	}
	start, ok := statStartNs(stat)
	if !ok {
		return HostProcess{}, false
	}
	hp := HostProcess{StartNs: start}
	if cmd, err := os.ReadFile(dir + "/cmdline"); err == nil && len(cmd) > 0 {
		hp.Argv = strings.Split(strings.TrimRight(string(cmd), "\x00"), "\x00")
	}
	return hp, true
}

// userHZ is the unit of /proc/PID/stat's times: fixed at 100 for user
// space on Linux, whatever the kernel's own HZ. The shim converts the same way.
const userHZ = 100

// statStartNs parses starttime after the command name, which is in
// parentheses and may itself hold spaces and ')'.
func statStartNs(stat []byte) (uint64, bool) {
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, false
	}
	f := strings.Fields(string(stat[i+1:]))
	// f[0] is field 3 (state); starttime is field 22.
	if len(f) < 20 {
		return 0, false
	}
	ticks, err := strconv.ParseUint(f[19], 10, 64)
	if err != nil {
		return 0, false
	}
	return ticks * (1_000_000_000 / userHZ), true
}
