//go:build !linux

package collector

// ioctlFIONREAD is FIONREAD, _IOR('f', 127, int), on the BSDs.
const ioctlFIONREAD = 0x4004667f
