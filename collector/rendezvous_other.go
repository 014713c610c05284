//go:build !linux

package collector

import (
	"errors"
	"net"
)

type peer struct {
	uid uint32
	pid int32
}

// peerCred: the rendezvous is Linux's for now (the FreeBSD shim takes
// RESTRACK_RING); a peer here is refused rather than trusted.
func peerCred(*net.UnixConn) (peer, error) {
	return peer{}, errors.New("the rendezvous needs Linux peer credentials")
}

func procIdentity(int32) (uint64, string) { return 0, "" }
