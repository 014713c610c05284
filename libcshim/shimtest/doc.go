// Package shimtest holds the end-to-end tests of librestrack.so, the
// LD_PRELOAD shim in libcshim/. The tests build the shim and small C probe
// programs (libcshim/tests), run them — and real, unmodified programs such
// as cp, tar, python3 and gcc — with the shim preloaded and a fresh ring,
// then drain the ring with the Go consumer and assert the exact records:
// operation, absolute path(s), access class, result or -errno, and process
// identity. Transparency tests run the same program with and without the
// shim and require identical behaviour.
//
// The tests are Linux's (build tag linux): they build the Linux shim and
// expect its entry points. The FreeBSD hooks are tested on FreeBSD by
// libcshim/freebsd/check.sh (docs/freebsd.md).
//
// The package has no non-test code; this file exists for its documentation.
package shimtest
