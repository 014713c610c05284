//go:build linux

package shimtest

import (
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/restrack/restrack/internal/ctest"
)

var resolveRE = regexp.MustCompile(`resolve: fast (\d+) of (\d+), wrong (\d+)`)

// The constructor finds the real functions in the loaded objects' GNU hash
// tables instead of ~100 dlsym calls (process start cost, issue 12 §3):
// every pointer it finds must be the one dlsym(RTLD_NEXT) gives, also with
// another preloaded library after the shim (RTLD_NEXT's next object).
func TestTheConstructorFindsEveryRealFunctionWhereDlsymDoes(t *testing.T) {
	root := ctest.RepoRoot(t)
	srcs, err := filepath.Glob(filepath.Join(root, "libcshim", "*.c"))
	require.NoError(t, err)
	sort.Strings(srcs)
	var rel []string
	for _, s := range srcs {
		r, err := filepath.Rel(root, s)
		require.NoError(t, err)
		rel = append(rel, r)
	}
	lib := ctest.Build(t, "librestrack-resolve.so", rel, "-shared", "-fPIC", "-fvisibility=hidden", "-D_GNU_SOURCE",
		"-DRT_TEST_RESOLVE", "-Wl,-z,now", "-ldl")
	other := ctest.Build(t, "libpreinit.so", []string{"libcshim/tests/preinit_lib.c"}, "-shared", "-fPIC")
	for _, preload := range []string{lib, lib + ":" + other, other + ":" + lib} {
		t.Run(filepath.Base(preload), func(t *testing.T) {
			cmd := exec.Command("/bin/sh", "-c", "exit 0")
			cmd.Env = []string{"LD_PRELOAD=" + preload, "RESTRACK_SOCKET=" + filepath.Join(t.TempDir(), "none.sock")}
			out, err := cmd.CombinedOutput()
			require.NoError(t, err, string(out))
			m := resolveRE.FindStringSubmatch(string(out))
			require.NotNil(t, m, string(out))
			found, _ := strconv.Atoi(m[1])
			total, _ := strconv.Atoi(m[2])
			assert.Equal(t, "0", m[3], "a pointer the fast pass found is not dlsym's:\n%s", out)
			// glibc 2.34+ defines every one of them in libc.so.6, none an IFUNC.
			assert.Equal(t, total, found, "the fast pass left names to dlsym:\n%s", out)
		})
	}
}
