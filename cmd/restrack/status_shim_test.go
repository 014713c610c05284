package main

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/restrack/restrack/collector"
)

func TestStatusShowsTheShimsErrorsAndItsUnresolvedPathsByCause(t *testing.T) {
	s := collector.Status{ProducerErrors: 7, UnresolvedTooLong: 2, UnresolvedSandboxed: 3, UnresolvedBaseUnknown: 1}
	var out, errb bytes.Buffer
	require.Equal(t, 0, printStatus(&out, &errb, false, s, statusLines(s)))
	for _, line := range []string{"shim errors:     7", "  path too long: 2", "  sandboxed:     3", "  base unknown:  1"} {
		assert.Contains(t, out.String(), line)
	}
}
