package usock

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestShutdownCompletesWithIdleClientsConnected(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "s.sock")
	srv, err := Listen(sock)
	require.NoError(t, err)
	srv.Handle("status", func(context.Context, json.RawMessage) (any, error) { return "ok", nil })
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ctx) }()

	// One client that connected and never spoke, one that asked once and
	// then went quiet: both sit in the server's read.
	idle, err := net.Dial("unix", sock)
	require.NoError(t, err)
	defer idle.Close()
	var out string
	require.NoError(t, Query(context.Background(), sock, "status", nil, &out))
	quiet, err := net.Dial("unix", sock)
	require.NoError(t, err)
	defer quiet.Close()
	_, err = quiet.Write([]byte(`{"cmd":"status"}` + "\n"))
	require.NoError(t, err)
	buf := make([]byte, 256)
	_, err = quiet.Read(buf)
	require.NoError(t, err)

	cancel()
	select {
	case err := <-served:
		assert.NoError(t, err)
	case <-time.After(5 * time.Second):
		t.Fatal("Serve did not return: an idle client holds up shutdown")
	}
}

func TestAnIdleClientIsHungUpOnAfterTheIdleTimeout(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "s.sock")
	srv, err := Listen(sock)
	require.NoError(t, err)
	srv.IdleTimeout = 100 * time.Millisecond
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = srv.Serve(ctx) }()
	c, err := net.Dial("unix", sock)
	require.NoError(t, err)
	defer c.Close()
	require.NoError(t, c.SetReadDeadline(time.Now().Add(5*time.Second)))
	_, err = c.Read(make([]byte, 1))
	require.Error(t, err, "the server closed the connection")
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("the client's own deadline fired first: the server never hung up (%v)", err)
	}
}
