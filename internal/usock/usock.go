// Package usock serves and asks JSON requests on a unix socket restricted to
// the server's own uid. It is neutral ground: the collector serves "status"
// with it and the planner's "plan" and "explain" handlers plug into it,
// without the planner importing the collector.
package usock

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// The socket protocol: one JSON object per line each way. A request is
// {"cmd": NAME, "args": {...}}; the answer is {"ok": true, "result": ...} or
// {"ok": false, "error": "..."}. A connection may carry several requests.
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
	sc := bufio.NewScanner(conn)
	sc.Buffer(make([]byte, 0, 4096), maxRequest)
	for {
		if !s.idleDeadline(conn) || !sc.Scan() {
			return
		}
		var req Request
		resp := Response{}
		if err := json.Unmarshal(sc.Bytes(), &req); err != nil {
			resp.Error = fmt.Sprintf("bad request: %v", err)
		} else {
			s.mu.RLock()
			h := s.handlers[req.Cmd]
			s.mu.RUnlock()
			if h == nil {
				resp.Error = fmt.Sprintf("unknown command %q", req.Cmd)
			} else if res, err := h(ctx, req.Args); err != nil {
				resp.Error = err.Error()
			} else if resp.Result, err = json.Marshal(res); err != nil {
				resp.Error = fmt.Sprintf("encode answer: %v", err)
			} else {
				resp.OK = true
			}
		}
		if err := enc.Encode(resp); err != nil {
			return
		}
	}
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
