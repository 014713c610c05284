// Package usock serves and asks JSON requests on a unix socket restricted to
// the server's own uid. It is neutral ground: the collector serves "status"
// with it and the planner's "plan" and "explain" handlers plug into it,
// without the planner importing the collector.
package usock

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// The socket protocol: one JSON object per line each way. A request is
// {"cmd": NAME, "args": {...}}; the answer is {"ok": true, "result": ...} or
// {"ok": false, "error": "..."}. A connection may carry several requests.
// The same socket also speaks HTTP/1.1 (serveHTTP), told apart by the
// request's first bytes, so curl reaches the same handlers.
// docs/collector.md lists the commands.

// Request is one query.
type Request struct {
	Cmd  string          `json:"cmd"`
	Args json.RawMessage `json:"args,omitempty"`
}

// Response answers a Request.
type Response struct {
	OK     bool            `json:"ok"`
	Result json.RawMessage `json:"result,omitempty"`
	Error  string          `json:"error,omitempty"`
}

// Handler answers one command. args is the request's args (may be empty).
type Handler func(ctx context.Context, args json.RawMessage) (any, error)

// Server serves queries on a unix socket to processes of the same user.
type Server struct {
	ln       net.Listener
	path     string
	mu       sync.RWMutex
	handlers map[string]Handler
	wg       sync.WaitGroup

	connMu sync.Mutex
	conns  map[*net.UnixConn]struct{}
	done   bool

	// IdleTimeout is how long a connection may wait between requests (or
	// inside one) before the collector hangs up: a client that connects
	// and goes quiet holds a goroutine and a descriptor, not the
	// collector. Set it before Serve.
	IdleTimeout time.Duration
}

// maxRequest bounds a request line: queries are small.
const maxRequest = 1 << 20

// DefaultIdleTimeout is Server.IdleTimeout unless set.
const DefaultIdleTimeout = 5 * time.Minute

// Listen creates the socket at path, owner-only. A stale socket left by a
// killed collector is replaced; a live one is an error.
func Listen(path string) (*Server, error) {
	ln, err := ListenUnix(path, 0o700, 0o600)
	if err != nil {
		return nil, err
	}
	return &Server{ln: ln, path: path, handlers: map[string]Handler{}, conns: map[*net.UnixConn]struct{}{},
		IdleTimeout: DefaultIdleTimeout}, nil
}

// ListenUnix listens on a unix socket at path with the given mode, making
// its directory (dirMode) if missing. A stale socket left by a killed
// collector is replaced; a live one, or a file that is not a socket, is an
// error. The collector's query socket is 0600; the rendezvous socket, where
// every uid may ask for its ring, 0666.
func ListenUnix(path string, dirMode, mode os.FileMode) (*net.UnixListener, error) {
	if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
		c.Close()
		return nil, fmt.Errorf("listen on %s: a collector is already serving there", path)
	}
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode()&os.ModeSocket == 0 {
			return nil, fmt.Errorf("listen on %s: exists and is not a socket: not removing it", path)
		}
		_ = os.Remove(path)
	}
	if err := os.MkdirAll(filepath.Dir(path), dirMode); err != nil {
		return nil, fmt.Errorf("listen on %s: %w", path, err)
	}
	// The socket is created with the umask's permissions before Chmod sets
	// them: peer credentials are the real check, the mode a second.
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", path, err)
	}
	if err := os.Chmod(path, mode); err != nil {
		ln.Close()
		return nil, fmt.Errorf("listen on %s: %w", path, err)
	}
	return ln, nil
}

// Handle registers (or replaces) the handler of a command: "status" is the
// collector's; planner/serve provides "plan" and "explain".
func (s *Server) Handle(cmd string, h Handler) {
	s.mu.Lock()
	s.handlers[cmd] = h
	s.mu.Unlock()
}

// Path is the socket's path.
func (s *Server) Path() string { return s.path }

// Serve answers connections until ctx is done, then closes the socket.
func (s *Server) Serve(ctx context.Context) error {
	go func() {
		<-ctx.Done()
		s.ln.Close()
		// Idle clients are waiting in a read: end it now, so shutdown
		// does not wait for them. A request being answered finishes.
		s.connMu.Lock()
		s.done = true
		for c := range s.conns {
			_ = c.SetReadDeadline(time.Now())
		}
		s.connMu.Unlock()
	}()
	for {
		conn, err := s.ln.Accept()
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				s.wg.Wait()
				_ = os.Remove(s.path)
				return nil
			}
			return fmt.Errorf("accept on %s: %w", s.path, err)
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.serveConn(ctx, conn.(*net.UnixConn))
		}()
	}
}

// Close stops listening.
func (s *Server) Close() error { return s.ln.Close() }

// track adds (or removes) a live connection; false when shutting down.
func (s *Server) track(conn *net.UnixConn, add bool) bool {
	s.connMu.Lock()
	defer s.connMu.Unlock()
	if !add {
		delete(s.conns, conn)
		return true
	}
	if s.done {
		return false
	}
	s.conns[conn] = struct{}{}
	return true
}

// idleDeadline arms the read deadline for the next request, unless the
// server is shutting down (then the shutdown's deadline must stand).
func (s *Server) idleDeadline(conn *net.UnixConn) bool {
	s.connMu.Lock()
	defer s.connMu.Unlock()
	if s.done {
		return false
	}
	now := time.Now()
	_ = conn.SetReadDeadline(now.Add(s.IdleTimeout))
	// A client that does not read its answers must not hold us either.
	_ = conn.SetWriteDeadline(now.Add(s.IdleTimeout))
	return true
}

func (s *Server) serveConn(ctx context.Context, conn *net.UnixConn) {
	defer conn.Close()
	if !s.track(conn, true) {
		return
	}
	defer s.track(conn, false)
	enc := json.NewEncoder(conn)
	uid, err := PeerUID(conn)
	if err != nil || uid != os.Getuid() {
		msg := fmt.Sprintf("permission denied: this collector serves only uid %d", os.Getuid())
		if err != nil {
			msg = fmt.Sprintf("permission denied: cannot check peer credentials: %v", err)
		}
		_ = enc.Encode(Response{Error: msg})
		return
	}
	br := bufio.NewReaderSize(conn, 4096)
	if !s.idleDeadline(conn) {
		return
	}
	if first, err := br.Peek(1); err == nil && looksLikeHTTP(first) {
		s.serveHTTP(ctx, conn, br)
		return
	}
	sc := bufio.NewScanner(br)
	sc.Buffer(make([]byte, 0, 4096), maxRequest)
	for {
		if !s.idleDeadline(conn) || !sc.Scan() {
			return
		}
		var req Request
		var resp Response
		if err := json.Unmarshal(sc.Bytes(), &req); err != nil {
			resp.Error = fmt.Sprintf("bad request: %v", err)
		} else {
			resp, _ = s.dispatch(ctx, req.Cmd, req.Args)
		}
		if err := enc.Encode(resp); err != nil {
			return
		}
	}
}

// dispatch runs cmd's handler; the status is what an HTTP client is told.
func (s *Server) dispatch(ctx context.Context, cmd string, args json.RawMessage) (Response, int) {
	var resp Response
	s.mu.RLock()
	h := s.handlers[cmd]
	s.mu.RUnlock()
	if h == nil {
		resp.Error = fmt.Sprintf("unknown command %q", cmd)
		return resp, http.StatusNotFound
	}
	res, err := h(ctx, args)
	if err != nil {
		resp.Error = err.Error()
		return resp, http.StatusUnprocessableEntity
	}
	if resp.Result, err = json.Marshal(res); err != nil {
		resp.Error = fmt.Sprintf("encode answer: %v", err)
		return resp, http.StatusInternalServerError
	}
	resp.OK = true
	return resp, http.StatusOK
}

// looksLikeHTTP tells an HTTP request line (GET, POST, HEAD) from the line
// protocol's JSON, which starts with '{' or a blank: one byte is enough, so
// a short JSON request is never kept waiting for more.
func looksLikeHTTP(b []byte) bool {
	return len(b) > 0 && (b[0] == 'G' || b[0] == 'P' || b[0] == 'H')
}

// serveHTTP answers HTTP/1.1 on the same socket, so `curl --unix-socket`
// reaches every handler: POST /v1/CMD with the args as the JSON body, or
// GET /v1/CMD?args=JSON. The body of every answer is the line protocol's
// Response object; the status says ok (200), unknown command (404), bad
// request (400) or the handler's refusal (422).
func (s *Server) serveHTTP(ctx context.Context, conn *net.UnixConn, br *bufio.Reader) {
	for {
		req, err := http.ReadRequest(br)
		if err != nil {
			return
		}
		resp, status := s.httpRequest(ctx, req)
		body, _ := json.Marshal(resp)
		body = append(body, '\n')
		out := &http.Response{StatusCode: status, ProtoMajor: 1, ProtoMinor: 1, Request: req,
			Header: http.Header{"Content-Type": {"application/json"}}, ContentLength: int64(len(body)),
			Close: req.Close}
		if req.Method != http.MethodHead {
			out.Body = io.NopCloser(bytes.NewReader(body))
		}
		if err := out.Write(conn); err != nil || req.Close || !s.idleDeadline(conn) {
			return
		}
	}
}

func (s *Server) httpRequest(ctx context.Context, req *http.Request) (Response, int) {
	defer req.Body.Close()
	cmd, ok := strings.CutPrefix(req.URL.Path, "/v1/")
	if !ok || cmd == "" || strings.Contains(cmd, "/") {
		return Response{Error: fmt.Sprintf("no such path %q: ask /v1/COMMAND (docs/collector.md)", req.URL.Path)}, http.StatusNotFound
	}
	var args json.RawMessage
	switch req.Method {
	case http.MethodPost:
		b, err := io.ReadAll(io.LimitReader(req.Body, maxRequest+1))
		if err != nil || len(b) > maxRequest {
			return Response{Error: "bad request: body unreadable or larger than 1 MiB"}, http.StatusBadRequest
		}
		args = bytes.TrimSpace(b)
	case http.MethodGet, http.MethodHead:
		args = json.RawMessage(req.URL.Query().Get("args"))
	default:
		return Response{Error: fmt.Sprintf("method %s not allowed: use GET or POST", req.Method)}, http.StatusMethodNotAllowed
	}
	if len(args) > 0 && !json.Valid(args) {
		return Response{Error: "bad request: args are not JSON"}, http.StatusBadRequest
	}
	return s.dispatch(ctx, cmd, args)
}

// Query sends one request to the collector at socket path and decodes the
// result into out (which may be nil).
func Query(ctx context.Context, path, cmd string, args, out any) error {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "unix", path)
	if err != nil {
		return fmt.Errorf("connect to collector at %s: %w (is it running?)", path, err)
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	req := Request{Cmd: cmd}
	if args != nil {
		if req.Args, err = json.Marshal(args); err != nil {
			return fmt.Errorf("encode %s request: %w", cmd, err)
		}
	}
	sendErr := json.NewEncoder(conn).Encode(req)
	// A collector that refuses us (another uid) answers and hangs up before
	// reading: our write may then fail with EPIPE while its answer waits in
	// our receive buffer. Read it either way; it says why.
	var resp Response
	dec := json.NewDecoder(bufio.NewReader(conn))
	if err := dec.Decode(&resp); err != nil {
		if sendErr != nil {
			return fmt.Errorf("send %s request to %s: %w", cmd, path, sendErr)
		}
		return fmt.Errorf("read %s answer from %s: %w", cmd, path, err)
	}
	if !resp.OK {
		return fmt.Errorf("collector at %s: %s", path, resp.Error)
	}
	if out != nil {
		if err := json.Unmarshal(resp.Result, out); err != nil {
			return fmt.Errorf("decode %s answer: %w", cmd, err)
		}
	}
	return nil
}
