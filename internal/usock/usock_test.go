package usock

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
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

// httpClient talks HTTP over the unix socket, as `curl --unix-socket` does.
func httpClient(sock string) *http.Client {
	return &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", sock)
	}}}
}

func TestTheSocketAnswersHTTPWithTheSameHandlers(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "s")
	srv := serve(t, sock)
	srv.Handle("echo", func(_ context.Context, args json.RawMessage) (any, error) { return args, nil })
	srv.Handle("fail", func(context.Context, json.RawMessage) (any, error) { return nil, errors.New("it failed") })
	c := httpClient(sock)

	tests := []struct {
		name, method, url, body string
		status                  int
		ok                      bool
		result, errPart         string
	}{
		{"a POST carries the args as its body", "POST", "http://restrack/v1/echo", `{"a":1}`, 200, true, `{"a":1}`, ""},
		{"a GET carries them in ?args=", "GET", "http://restrack/v1/echo?args=%7B%22b%22%3A2%7D", "", 200, true, `{"b":2}`, ""},
		{"a handler's refusal is 422 with its words", "POST", "http://restrack/v1/fail", "", 422, false, "", "it failed"},
		{"an unknown command is 404", "GET", "http://restrack/v1/nonsense", "", 404, false, "", `unknown command "nonsense"`},
		{"a path outside /v1/ is 404 and says where to ask", "GET", "http://restrack/status", "", 404, false, "", "/v1/COMMAND"},
		{"args that are not JSON are 400", "POST", "http://restrack/v1/echo", `{nope`, 400, false, "", "not JSON"},
		{"another method is 405", "DELETE", "http://restrack/v1/echo", "", 405, false, "", "GET or POST"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := http.NewRequest(tt.method, tt.url, strings.NewReader(tt.body))
			require.NoError(t, err)
			res, err := c.Do(req)
			require.NoError(t, err)
			defer res.Body.Close()
			assert.Equal(t, tt.status, res.StatusCode)
			var resp Response
			require.NoError(t, json.NewDecoder(res.Body).Decode(&resp))
			assert.Equal(t, tt.ok, resp.OK)
			if tt.result != "" {
				assert.JSONEq(t, tt.result, string(resp.Result))
			}
			assert.Contains(t, resp.Error, tt.errPart)
		})
	}

	// The line protocol still works beside it, on a fresh connection.
	var got map[string]int
	require.NoError(t, Query(context.Background(), sock, "echo", map[string]int{"c": 3}, &got))
	assert.Equal(t, map[string]int{"c": 3}, got)
}

func TestCurlReachesTheSocket(t *testing.T) {
	curl, err := exec.LookPath("curl")
	if err != nil {
		t.Skip("curl is not installed (scripts/setup-debian.sh installs it)")
	}
	sock := filepath.Join(t.TempDir(), "s")
	srv := serve(t, sock)
	srv.Handle("echo", func(_ context.Context, args json.RawMessage) (any, error) { return args, nil })
	out, err := exec.Command(curl, "-sS", "--fail-with-body", "--unix-socket", sock,
		"-d", `{"hello":"world"}`, "http://restrack/v1/echo").Output()
	require.NoError(t, err, "%s", out)
	assert.JSONEq(t, `{"ok":true,"result":{"hello":"world"}}`, string(out))
}
