//go:build !linux

package ebpf

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestOffLinuxStartSaysTheModeIsLinuxOnly(t *testing.T) {
	_, err := Start(Options{PID: 1})
	require.ErrorIs(t, err, ErrUnavailable)
	assert.Contains(t, err.Error(), "Linux-only")
}
