package action

import (
	"os"
	"strconv"
	"strings"
)

// StatFields returns /proc/PID/stat's fields from the third (state) on:
// the command name before them is in parentheses and may hold anything.
func StatFields(pid int) []string {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return nil
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return nil
	}
	return strings.Fields(s[i+1:])
}

// IDs reads a live process's real uid and gid from /proc/PID/status; nil
// when it cannot (the process is gone).
func IDs(pid int32) (uid, gid *uint32) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(int(pid)) + "/status")
	if err != nil {
		return nil, nil
	}
	for _, line := range strings.Split(string(b), "\n") {
		k, v, _ := strings.Cut(line, ":")
		f := strings.Fields(v)
		if k != "Uid" && k != "Gid" || len(f) == 0 {
			continue
		}
		n, err := strconv.ParseUint(f[0], 10, 32)
		if err != nil {
			continue
		}
		id := uint32(n)
		if k == "Uid" {
			uid = &id
		} else {
			gid = &id
		}
	}
	return uid, gid
}

// SelfAndAncestors: this process and every ancestor up to init. An action
// must never stop one of them: it would stop itself, or the shell waiting
// for it.
func SelfAndAncestors() map[int32]bool {
	out := map[int32]bool{}
	for pid := os.Getpid(); pid > 1 && !out[int32(pid)]; {
		out[int32(pid)] = true
		f := StatFields(pid)
		if len(f) < 2 {
			break
		}
		ppid, err := strconv.Atoi(f[1])
		if err != nil {
			break
		}
		pid = ppid
	}
	return out
}
