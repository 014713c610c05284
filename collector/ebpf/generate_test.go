package ebpf

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The committed object must come from the committed C: `make generate`
// records the sources' hashes in bpf/source.sha256 when it rebuilds it.
func TestTheCommittedBPFObjectWasGeneratedFromTheCurrentSources(t *testing.T) {
	f, err := os.Open("bpf/source.sha256")
	require.NoError(t, err)
	defer f.Close()
	listed := map[string]bool{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		sum, name, ok := strings.Cut(sc.Text(), "  ")
		require.True(t, ok, "line %q", sc.Text())
		b, err := os.ReadFile(name)
		require.NoError(t, err)
		h := sha256.Sum256(b)
		assert.Equal(t, sum, hex.EncodeToString(h[:]),
			"%s changed since restrack_bpfel.o was generated: run `make generate` (needs clang)", name)
		listed[name] = true
	}
	require.NoError(t, sc.Err())
	err = filepath.WalkDir("bpf", func(p string, d os.DirEntry, err error) error {
		if err == nil && (strings.HasSuffix(p, ".c") || strings.HasSuffix(p, ".h")) {
			assert.True(t, listed[p], "%s is a BPF source but not in bpf/source.sha256: add it to gen.go", p)
		}
		return err
	})
	require.NoError(t, err)
}

// Where clang exists, the sources must still compile and define exactly
// the programs and maps of the committed object (a hand-edited hash list
// cannot hide a stale object). Compared by name, since object bytes differ
// between clang versions.
func TestTheBPFSourcesCompileToTheProgramsAndMapsOfTheCommittedObject(t *testing.T) {
	clang, err := exec.LookPath("clang")
	if err != nil {
		t.Skip("skipping: clang not installed; the committed object is used as is")
	}
	if _, err := os.Stat("/usr/include/bpf/bpf_helpers.h"); err != nil {
		t.Skip("skipping: libbpf headers (libbpf-dev) not installed; the committed object is used as is")
	}
	out := filepath.Join(t.TempDir(), "fresh.o")
	b, err := exec.Command(clang, "-O2", "-g", "-Wall", "-Werror", "-target", "bpfel", "-Ibpf/include",
		"-c", "bpf/restrack.bpf.c", "-o", out).CombinedOutput()
	require.NoError(t, err, "%s", b)
	fresh, err := ebpf.LoadCollectionSpec(out)
	require.NoError(t, err)
	committed, err := ebpf.LoadCollectionSpec("restrack_bpfel.o")
	require.NoError(t, err)
	assert.Equal(t, names(committed.Programs), names(fresh.Programs), "programs: run `make generate`")
	assert.Equal(t, names(committed.Maps), names(fresh.Maps), "maps: run `make generate`")
}

func names[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
