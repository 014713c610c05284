package collector

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/restrack/restrack/ring"
)

func TestProgramsListsEachExecutedOrSpawnedProgramOnceByItsFirstProcess(t *testing.T) {
	ev := func(pid int32, op ring.Op, path string) ring.Record {
		return ring.Record{Type: ring.TypeEvent, Op: op, PID: pid, Str1: []byte(path)}
	}
	var c Collector
	c.notePerRecord([]ring.Record{
		ev(10, ring.OpOpen, "/etc/passwd"),
		ev(10, ring.OpExecve, "/usr/bin/static-tool"),
		ev(11, ring.OpExecve, "/usr/bin/static-tool"),
		ev(12, ring.OpPosixSpawnp, "/usr/bin/go-tool"),
		{Type: ring.TypeProc, Op: ring.OpExecve, PID: 13, Str1: []byte("/bin/exe-of-a-process-record")},
	})
	c.notePerRecord([]ring.Record{ev(14, ring.OpExecveat, "/usr/bin/other")})
	list, more := c.Programs()
	assert.Equal(t, []Program{{10, "/usr/bin/static-tool"}, {12, "/usr/bin/go-tool"}, {14, "/usr/bin/other"}}, list)
	assert.Zero(t, more)
}

func TestProgramsPastTheLimitAreCountedNotDropped(t *testing.T) {
	var c Collector
	recs := make([]ring.Record, maxPrograms+3)
	for i := range recs {
		recs[i] = ring.Record{Type: ring.TypeEvent, Op: ring.OpExecve, PID: 1, Str1: []byte(fmt.Sprintf("/bin/p%d", i))}
	}
	c.notePerRecord(recs)
	list, more := c.Programs()
	assert.Len(t, list, maxPrograms)
	assert.Equal(t, uint64(3), more, "every exec past the limit is counted, so run can say what it did not check")
}
