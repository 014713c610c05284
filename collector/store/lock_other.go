//go:build !unix

package store

// lockDir is a no-op where flock does not exist: one writer per store is
// then the user's responsibility.
func lockDir(string) (func(), error) { return func() {}, nil }

// dirWritable cannot be asked here: assume the directory is writable, so
// readers open the store as usual.
func dirWritable(string) bool { return true }
