package trace

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestResolveParents(t *testing.T) {
	key := func(pid int32, start uint64) ProcKey { return ProcKey{PID: pid, StartNs: start} }
	tests := []struct {
		name  string
		procs []Process
		want  []ProcKey // Parent of each process, in order
	}{
		{"a child's parent is the traced process of its ppid",
			[]Process{{Key: key(1, 10)}, {Key: key(2, 20), PPID: 1}},
			[]ProcKey{{}, key(1, 10)}},
		{"a reused parent pid resolves to the incarnation that started last before the child",
			[]Process{{Key: key(1, 10)}, {Key: key(1, 30)}, {Key: key(2, 20), PPID: 1}, {Key: key(3, 40), PPID: 1}},
			[]ProcKey{{}, {}, key(1, 10), key(1, 30)}},
		{"a parent that started after the child is not its parent",
			[]Process{{Key: key(1, 50)}, {Key: key(2, 20), PPID: 1}},
			[]ProcKey{{}, {}}},
		{"an untraced parent leaves the parent zero",
			[]Process{{Key: key(2, 20), PPID: 7}},
			[]ProcKey{{}}},
		{"a parent the store already resolved is kept",
			[]Process{{Key: key(1, 10)}, {Key: key(1, 15)}, {Key: key(2, 20), PPID: 1, Parent: key(1, 10)}},
			[]ProcKey{{}, {}, key(1, 10)}},
		{"a process is never its own parent",
			[]Process{{Key: key(1, 10)}, {Key: key(1, 20), PPID: 1}, {Key: key(5, 70), PPID: 5}},
			[]ProcKey{{}, key(1, 10), {}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ResolveParents(tt.procs)
			for i, p := range tt.procs {
				assert.Equal(t, tt.want[i], p.Parent, "parent of %v", p.Key)
			}
		})
	}
}
