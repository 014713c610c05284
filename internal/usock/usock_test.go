package usock

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The test binary doubles as a client run as another user
// (TestSocketRefusesAnotherUser).
func TestMain(m *testing.M) {
	if os.Getenv("RESTRACK_TEST_HELPER") == "query" {
		err := Query(context.Background(), os.Args[len(os.Args)-1], "status", nil, nil)
		fmt.Println(err)
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func serve(t *testing.T, sock string) *Server {
	srv, err := Listen(sock)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = srv.Serve(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return srv
}

func TestQueryGetsTheHandlersAnswerOrItsError(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "s")
	srv := serve(t, sock)
	srv.Handle("echo", func(_ context.Context, args json.RawMessage) (any, error) { return args, nil })
	srv.Handle("fail", func(context.Context, json.RawMessage) (any, error) { return nil, errors.New("it failed") })
	ctx := context.Background()

	var got map[string]int
	require.NoError(t, Query(ctx, sock, "echo", map[string]int{"a": 1}, &got))
	assert.Equal(t, map[string]int{"a": 1}, got)

	err := Query(ctx, sock, "fail", nil, nil)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "it failed")

	err = Query(ctx, sock, "nonsense", nil, nil)
	require.Error(t, err)
	assert.Contains(t, err.Error(), `unknown command "nonsense"`)

	fi, err := os.Stat(sock)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), fi.Mode().Perm(), "owner-only socket")
}

func TestASecondServerOnTheSameSocketIsRefused(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "s")
	serve(t, sock)
	_, err := Listen(sock)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "already serving")
}

func TestAStaleSocketIsReplacedAndAnyOtherFileKept(t *testing.T) {
	dir := t.TempDir()
	stale := filepath.Join(dir, "stale")
	srv, err := Listen(stale)
	require.NoError(t, err)
	// As a killed server would, leave the socket file behind.
	srv.ln.(*net.UnixListener).SetUnlinkOnClose(false)
	require.NoError(t, srv.Close())
	srv, err = Listen(stale)
	require.NoError(t, err, "a socket nobody serves is replaced")
	require.NoError(t, srv.Close())

	plain := filepath.Join(dir, "plain")
	require.NoError(t, os.WriteFile(plain, []byte("keep"), 0o600))
	_, err = Listen(plain)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "not a socket")
	b, err := os.ReadFile(plain)
	require.NoError(t, err)
	assert.Equal(t, "keep", string(b))
}
