// Package redistest starts real redis-server processes for tests, so that
// the tests of caddymodule/store and the Caddy module's integration tests
// share one way of doing it (a _test.go file cannot be imported from another
// package; an internal package can). Import it from _test.go files only.
//
// Each server listens on a free loopback port and a unix socket in its own
// temporary directory, keeps nothing on disk (no RDB snapshots, no AOF) and
// is killed when the test ends. When redis-server is not on PATH the test is
// skipped, or fails when the environment variable CI is "true" (.ci/run
// installs Debian's redis-server).
package redistest

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/magiclink-dev/magiclink/internal/freeport"
)

// Server is one redis-server process.
type Server struct {
	// Addr is the server's loopback host:port.
	Addr string
	// Socket is the path of the server's unix socket.
	Socket string

	t      testing.TB
	dir    string
	args   []string
	proc   *os.Process
	exited chan struct{} // closed once proc has been waited for
}

// Require skips t, or fails it under CI=true, when redis-server (and
// redis-cli, used for clusters) are not on PATH.
func Require(t testing.TB) {
	t.Helper()
	for _, name := range []string{"redis-server", "redis-cli"} {
		if _, err := exec.LookPath(name); err != nil {
			if os.Getenv("CI") == "true" {
				t.Fatalf("%s is not on PATH (CI=true): %v", name, err)
			}
			t.Skipf("%s is not on PATH: %v", name, err)
		}
	}
}

// Start starts a standalone redis-server and waits until it answers.
func Start(t testing.TB) *Server {
	t.Helper()
	return start(t, "")
}

// StartDurable starts a standalone redis-server that writes every command to its append-only
// file before it answers (appendfsync always), so that what it acknowledged, and what it ran
// without getting to answer, survives Kill and is there again after Restart.
func StartDurable(t testing.TB) *Server {
	t.Helper()
	return start(t, "", "--appendonly", "yes", "--appendfsync", "always")
}

// StartSentinel starts a Redis Sentinel that monitors master under name
// (quorum 1) and waits until it answers.
func StartSentinel(t testing.TB, master *Server, name string) *Server {
	t.Helper()
	host, port, err := net.SplitHostPort(master.Addr)
	if err != nil {
		t.Fatal(err)
	}
	return start(t, fmt.Sprintf("sentinel monitor %s %s %s 1\n", name, host, port), "--sentinel")
}

// StartCluster starts n redis-server processes in cluster mode, joins them
// into a cluster of n masters without replicas and waits until every node
// reports the cluster ready. n must be at least 3.
func StartCluster(t testing.TB, n int) []*Server {
	t.Helper()
	nodes := make([]*Server, n)
	args := []string{"--cluster", "create"}
	for i := range nodes {
		nodes[i] = start(t, "", "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf", "--cluster-node-timeout", "5000")
		args = append(args, nodes[i].Addr)
	}
	args = append(args, "--cluster-replicas", "0", "--cluster-yes")
	if out, err := exec.Command("redis-cli", args...).CombinedOutput(); err != nil {
		t.Fatalf("redis-cli --cluster create: %v\n%s", err, out)
	}
	deadline := time.Now().Add(20 * time.Second)
	for _, node := range nodes {
		for {
			info, err := node.Do("CLUSTER", "INFO")
			if err == nil && strings.Contains(info, "cluster_state:ok") {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("cluster node %s not ready: %v %s", node.Addr, err, info)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	return nodes
}

// Kill stops the server at once with SIGKILL, as a crash would.
func (s *Server) Kill() {
	if s.proc == nil {
		return
	}
	_ = s.proc.Kill()
	<-s.exited
	s.proc = nil
}

// Restart kills the server if it runs and starts a new, empty one on the
// same port and socket.
func (s *Server) Restart() {
	s.t.Helper()
	s.Kill()
	if err := s.run(); err != nil {
		s.t.Fatal(err)
	}
}

// Do sends one command on a new connection and returns the reply as text
// (a bulk string's contents, a status, an integer or an error message as an
// error). It is for checking a server from a test, not for load.
func (s *Server) Do(args ...string) (string, error) {
	c, err := net.DialTimeout("tcp", s.Addr, time.Second)
	if err != nil {
		return "", err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	var b strings.Builder
	fmt.Fprintf(&b, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(a), a)
	}
	if _, err := c.Write([]byte(b.String())); err != nil {
		return "", err
	}
	r := bufio.NewReader(c)
	line, err := r.ReadString('\n')
	if err != nil {
		return "", err
	}
	line = strings.TrimSuffix(line, "\r\n")
	switch {
	case line == "":
		return "", fmt.Errorf("empty reply")
	case line[0] == '-':
		return "", fmt.Errorf("%s", line[1:])
	case line[0] == '$':
		n, err := strconv.Atoi(line[1:])
		if err != nil || n < 0 {
			return "", err
		}
		buf := make([]byte, n+2)
		if _, err := io.ReadFull(r, buf); err != nil {
			return "", err
		}
		return string(buf[:n]), nil
	}
	return line[1:], nil
}

// start starts a server with the given config file contents (none when
// empty) and extra arguments.
func start(t testing.TB, conf string, extra ...string) *Server {
	t.Helper()
	Require(t)
	dir, err := os.MkdirTemp("", "redis")
	if err != nil {
		t.Fatal(err)
	}
	var first []string
	if conf != "" {
		path := filepath.Join(dir, "redis.conf")
		if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
			t.Fatal(err)
		}
		first = []string{path}
	}
	s := &Server{t: t, dir: dir, Socket: filepath.Join(dir, "redis.sock")}
	t.Cleanup(func() {
		s.Kill()
		os.RemoveAll(dir)
	})
	for attempt := 0; ; attempt++ {
		port := freePort(t)
		s.Addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		s.args = append(append(first,
			"--port", strconv.Itoa(port),
			"--bind", "127.0.0.1",
			"--unixsocket", s.Socket,
			"--dir", dir,
			"--save", "",
			"--appendonly", "no",
			"--logfile", filepath.Join(dir, "redis.log"),
		), extra...)
		err := s.run()
		if err == nil {
			return s
		}
		if attempt == 4 {
			t.Fatal(err)
		}
	}
}

// run starts the process and waits until it answers PING.
func (s *Server) run() error {
	_ = os.Remove(filepath.Join(s.dir, "nodes.conf"))
	cmd := exec.Command("redis-server", s.args...)
	if err := cmd.Start(); err != nil {
		return err
	}
	exited := make(chan struct{})
	var waitErr error
	go func() {
		waitErr = cmd.Wait()
		close(exited)
	}()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if reply, err := s.Do("PING"); err == nil && reply == "PONG" {
			s.proc, s.exited = cmd.Process, exited
			return nil
		}
		select {
		case <-exited:
			log, _ := os.ReadFile(filepath.Join(s.dir, "redis.log"))
			return fmt.Errorf("redis-server on %s exited: %v\n%s", s.Addr, waitErr, log)
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			<-exited
			return fmt.Errorf("redis-server on %s did not answer within 10s", s.Addr)
		}
	}
}

// freePort returns a loopback port that is free, as is the port 10000 above
// it, which a cluster node uses for its bus.
func freePort(t testing.TB) int {
	t.Helper()
	port, err := freeport.TakeWithBus(10000)
	if err != nil {
		t.Fatal(err)
	}
	return port
}
