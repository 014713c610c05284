package main

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/restrack/restrack/collector/store"
	"github.com/restrack/restrack/planner"
	"github.com/restrack/restrack/ring"
)

func TestPlanQueriesAnswerFromTheStore(t *testing.T) {
	dir := t.TempDir()
	s, err := store.Open(dir, store.Options{})
	require.NoError(t, err)
	require.NoError(t, s.Commit(context.Background(), []ring.Record{
		{Type: ring.TypeProc, Op: ring.OpProcStart, PID: 10, PPID: 1, StartNs: 100, TimeNs: 100, Str1: []byte("/bin/svc")},
		{Type: ring.TypeEvent, Op: ring.OpOpenat, Access: ring.AccessWrite, PID: 10, TID: 10, StartNs: 100, TimeNs: 101, Result: 3, Str1: []byte("/srv/data")},
	}, store.Checkpoint{SourceInfo: store.SourceInfo{ID: 1, Kind: "ring", Path: "r"}, Position: 2}))
	// The writer stays open, as in the daemon: the handler reads beside it.
	defer s.Close()

	h := planHandler(dir)(nil)
	tests := []struct {
		name    string
		args    string
		wantErr string
	}{
		{"a traced pid gets its plan", `{"ap":"10"}`, ""},
		{"an unknown pid is a clear error", `{"ap":"77"}`, "no process with pid 77"},
		{"a missing ap says how to ask", `{}`, "args.ap is required"},
		{"arguments that are not JSON are refused", `[1,`, "bad args"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := h(context.Background(), json.RawMessage(tt.args))
			if tt.wantErr != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tt.wantErr)
				return
			}
			require.NoError(t, err)
			pl := res.(*planner.Plan)
			require.Len(t, pl.MoveProcesses, 1)
			assert.Equal(t, int32(10), pl.MoveProcesses[0].PID)
			require.Len(t, pl.MoveFiles, 1)
			assert.Equal(t, "/srv/data", pl.MoveFiles[0].Path)
		})
	}
}
