package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func registeredCommands() []string {
	var names []string
	for n := range subcommands {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

func TestEveryCommandsHelpExitsZeroAndSpellsFlagsTheGNUWay(t *testing.T) {
	dir := realTempDir(t)
	for _, name := range registeredCommands() {
		for _, h := range []string{"-h", "--help"} {
			t.Run(name+" "+h, func(t *testing.T) {
				r := mustRun(t, dir, name, h)
				assert.Equal(t, 0, r.code, "help is what was asked for: %s", r.stderr)
				if name != "unpack" { // the one command that reads an archive, not a store
					assert.Contains(t, r.stderr, "restrack "+name, "the usage names the command")
				}
				assert.NotRegexp(t, regexp.MustCompile(`(?m)^  -[a-z][a-z-]+`), r.stderr, "no flag is shown with one dash")
			})
		}
	}
}

func TestEveryCommandReportsAnUnknownFlagAsTypedWithStatusTwo(t *testing.T) {
	dir := realTempDir(t)
	for _, name := range registeredCommands() {
		t.Run(name, func(t *testing.T) {
			r := mustRun(t, dir, name, "--bogus")
			assert.Equal(t, 2, r.code, r.stderr)
			assert.Contains(t, r.stderr, "flag provided but not defined: --bogus")
		})
	}
}

func TestStrayArgumentsAreUsageErrors(t *testing.T) {
	dir := realTempDir(t)
	for _, name := range []string{"plan", "explain", "events", "status", "ps", "coverage"} {
		t.Run(name, func(t *testing.T) {
			r := mustRun(t, dir, name, "stray")
			assert.Equal(t, 2, r.code, r.stderr)
			assert.Contains(t, r.stderr, `unexpected argument "stray"`)
		})
	}
}

func TestVersionIsPrintedAndExitsZero(t *testing.T) {
	dir := realTempDir(t)
	for _, arg := range []string{"--version", "version"} {
		t.Run(arg, func(t *testing.T) {
			r := mustRun(t, dir, arg)
			assert.Equal(t, 0, r.code, r.stderr)
			assert.Regexp(t, `^restrack \S+\n$`, r.stdout)
		})
	}
}

func TestGNUWriterRewritesOnlyFlagNames(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"a defaults line gets two dashes", "  -ap PID\n    \tthe AP\n", "  --ap PID\n    \tthe AP\n"},
		{"a one-letter flag keeps one", "  -v\tverbose\n", "  -v\tverbose\n"},
		{"an undefined flag is named as typed", "flag provided but not defined: -bogus\n", "flag provided but not defined: --bogus\n"},
		{"a bad value names the flag", `invalid value "x" for flag -pid: parse error` + "\n", `invalid value "x" for flag --pid: parse error` + "\n"},
		{"a missing argument names the flag", "flag needs an argument: -store\n", "flag needs an argument: --store\n"},
		{"other text with dashes is left alone", "usage: restrack run [flags] -- CMD, see rm -rf\n", "usage: restrack run [flags] -- CMD, see rm -rf\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b bytes.Buffer
			n, err := gnuWriter{&b}.Write([]byte(tt.in))
			require.NoError(t, err)
			assert.Equal(t, len(tt.in), n)
			assert.Equal(t, tt.want, b.String())
		})
	}
}

func TestParseFlagsHelpIsZeroAndABadFlagTwo(t *testing.T) {
	for _, tt := range []struct {
		name string
		args []string
		code int
		ok   bool
	}{
		{"help", []string{"-h"}, 0, false},
		{"bad flag", []string{"--nope"}, 2, false},
		{"fine", []string{"--x", "1"}, 0, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			fs := flag.NewFlagSet("t", flag.ContinueOnError)
			fs.SetOutput(&bytes.Buffer{})
			fs.String("x", "", "")
			code, ok := parseFlags(fs, tt.args)
			assert.Equal(t, tt.code, code)
			assert.Equal(t, tt.ok, ok)
		})
	}
}

func psCmd(args []string, o, e *bytes.Buffer) int { return runPS(args, o, e) }

func TestPSListsTheProcessTreeWithTheAPToPlan(t *testing.T) {
	dir := mustPlanStore(t)
	code, out, errOut := runCmd(psCmd, "--store", dir, "--time", "mono")
	require.Equal(t, 0, code, errOut)
	lines := strings.Split(out, "\n")
	require.GreaterOrEqual(t, len(lines), 9, out)
	assert.Contains(t, lines[0], "6 traced processes in "+dir)
	assert.Equal(t, "times: CLOCK_MONOTONIC ns", lines[1])
	assert.Regexp(t, `^\*\s+100\s+1000\s+-\s+0\s+sh$`, lines[3], "the tree root is marked as an AP root")
	assert.Regexp(t, `^\s+200\s+2000\s+-\s+4\s+  service$`, lines[4], "children are indented under their parent, with their calls")
	assert.Regexp(t, `^\s+500@5000\s+5000 `, lines[7], "a reused pid is shown as the --ap that names it")
	assert.Contains(t, out, "restrack plan --store "+dir+" --ap PID")
}

func TestPSDepthShowsTheTopOfEachTreeAndCountsWhatItHides(t *testing.T) {
	dir := mustPlanStore(t)
	code, out, errOut := runCmd(psCmd, "--store", dir, "--depth", "0", "--time", "mono")
	require.Equal(t, 0, code, errOut)
	assert.Contains(t, out, "6 traced processes (1 shown)")
	assert.Regexp(t, `(?m)^\*\s+100\s.*sh  \[\+5\]$`, out)
	assert.NotContains(t, out, "service")
}

func TestPSJSONHasTheTreeAndTheRawTimes(t *testing.T) {
	code, out, errOut := runCmd(psCmd, "--store", mustPlanStore(t), "--json")
	require.Equal(t, 0, code, errOut)
	var doc psOutput
	require.NoError(t, json.Unmarshal([]byte(out), &doc))
	require.Len(t, doc.Processes, 6)
	root := doc.Processes[0]
	assert.Equal(t, int32(100), root.PID)
	assert.True(t, root.APRoot)
	assert.Equal(t, 5, root.Descendants)
	svc := doc.Processes[1]
	assert.Equal(t, int32(200), svc.PID)
	assert.False(t, svc.APRoot)
	assert.Equal(t, int32(100), svc.TreeRoot)
	assert.Equal(t, uint64(2000), svc.StartNs)
	assert.Equal(t, uint64(4), svc.Events)
	assert.Equal(t, uint64(1), svc.Writes)
	assert.Equal(t, uint64(1), svc.Failures)
	assert.Equal(t, "500@6000", doc.Processes[5].AP)
}

func TestPSOfAStoreWithoutProcessesSaysWhy(t *testing.T) {
	code, _, errOut := runCmd(psCmd, "--store", t.TempDir())
	assert.Equal(t, 1, code)
	assert.Contains(t, errOut, "trace something first")
}

func completionCmd(args []string, o, e *bytes.Buffer) int { return runCompletion(args, o, e) }
func manCmd(args []string, o, e *bytes.Buffer) int        { return runMan(args, o, e) }

func TestCompletionIsGeneratedFromEachCommandsFlags(t *testing.T) {
	code, out, errOut := runCmd(completionCmd, "bash")
	require.Equal(t, 0, code, errOut)
	assert.Regexp(t, `(?m)^\t\tplan\) COMPREPLY=\(\$\(compgen -W "[^"]*--ap [^"]*--socket [^"]*"`, out)
	assert.Regexp(t, `(?m)^\t\tevents\) COMPREPLY=\(\$\(compgen -W "[^"]*--follow `, out)
	script := filepath.Join(t.TempDir(), "restrack.bash")
	require.NoError(t, os.WriteFile(script, []byte(out), 0o600))
	if _, err := exec.LookPath("bash"); err == nil {
		b, err := exec.Command("bash", "-n", script).CombinedOutput()
		assert.NoError(t, err, "the script parses: %s", b)
	}
	code, _, _ = runCmd(completionCmd, "tcsh")
	assert.Equal(t, 2, code)
}

func TestManPagesAreGeneratedFromEachCommandsFlags(t *testing.T) {
	dir := t.TempDir()
	code, _, errOut := runCmd(manCmd, dir)
	require.Equal(t, 0, code, errOut)
	top, err := os.ReadFile(filepath.Join(dir, "restrack.1"))
	require.NoError(t, err)
	assert.Contains(t, string(top), ".B ps\n")
	plan, err := os.ReadFile(filepath.Join(dir, "restrack-plan.1"))
	require.NoError(t, err)
	assert.Contains(t, string(plan), ".B \\-\\-ap \\fIPID\\fR\n")
	assert.Contains(t, string(plan), ".B \\-\\-json\n")
}

func TestCommandsThatReadTheStoreRefuseSocket(t *testing.T) {
	t.Setenv("XDG_CONFIG_HOME", t.TempDir())
	if _, ok := subcommands["pack"]; !ok {
		t.Skip("no pack command in this build")
	}
	r := mustRun(t, realTempDir(t), "pack", "--socket", "/nonexistent.sock", "--ap", "1", "-o", "x")
	assert.Equal(t, 2, r.code, r.stderr)
	assert.Contains(t, r.stderr, "--socket: this command reads the store itself")
}
