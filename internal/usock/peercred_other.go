//go:build !linux && !freebsd

package usock

import (
	"errors"
	"net"
)

// PeerUID is unsupported here: every peer is refused rather than trusted.
func PeerUID(*net.UnixConn) (int, error) {
	return -1, errors.New("peer credentials are not supported on this system")
}
