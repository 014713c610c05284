package ring

import "strconv"

// Op is the libc function a record comes from (RT_OP_* in ring_abi.h).
type Op uint16

type opInfo struct {
	num    Op
	cname  string
	name   string
	access uint8
}

var opByNum = func() map[Op]*opInfo {
	m := make(map[Op]*opInfo, len(opTable))
	for i := range opTable {
		m[opTable[i].num] = &opTable[i]
	}
	return m
}()

// String is the function's name as users see it ("openat", "__open_2").
// An op from a newer ABI minor prints as "op#N" rather than failing.
func (o Op) String() string {
	if info, ok := opByNum[o]; ok {
		return info.name
	}
	return "op#" + strconv.Itoa(int(o))
}

// Known reports whether this build knows the op.
func (o Op) Known() bool { _, ok := opByNum[o]; return ok }

// DefaultAccess is the access class the op has regardless of flags.
func (o Op) DefaultAccess() uint8 {
	if info, ok := opByNum[o]; ok {
		return info.access
	}
	return AccessNone
}

// OpByName finds an op by its user-visible name.
func OpByName(name string) (Op, bool) {
	for i := range opTable {
		if opTable[i].name == name {
			return opTable[i].num, true
		}
	}
	return 0, false
}
