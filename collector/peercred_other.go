//go:build !linux && !freebsd

package collector

import (
	"errors"
	"net"
)

// peerUID is unsupported here: every peer is refused rather than trusted.
func peerUID(*net.UnixConn) (int, error) {
	return -1, errors.New("peer credentials are not supported on this system")
}
