//go:build !linux

package action

// Without Linux's /proc these know nothing: no ids, no ancestors.

func StatFields(pid int) []string      { return nil }
func IDs(pid int32) (uid, gid *uint32) { return nil, nil }
func SelfAndAncestors() map[int32]bool { return map[int32]bool{} }
