package main

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/magiclink-dev/magiclink/internal/freeport"
	"github.com/redis/go-redis/v9"
)

// freePorts returns n free loopback ports, none returned before in this process.
func freePorts(n int) ([]int, error) {
	ports := make([]int, n)
	for i := range ports {
		port, err := freeport.Take()
		if err != nil {
			return nil, err
		}
		ports[i] = port
	}
	return ports, nil
}

// waitListening waits until something accepts TCP connections on 127.0.0.1:port.
func waitListening(port int, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), time.Second)
		if err == nil {
			c.Close()
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("nothing listens on port %d after %s", port, timeout)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// process is a child process whose output goes to a log file.
type process struct {
	name string
	cmd  *exec.Cmd
	log  string
	done chan struct{}
}

// start runs the command with its output in log.
func start(name, log string, env []string, argv ...string) (*process, error) {
	out, err := os.Create(log)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = out, out
	cmd.Env = append(os.Environ(), env...)
	if err := cmd.Start(); err != nil {
		out.Close()
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	p := &process{name: name, cmd: cmd, log: log, done: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		out.Close()
		close(p.done)
	}()
	return p, nil
}

func (p *process) pid() int { return p.cmd.Process.Pid }

func (p *process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// stop sends SIGTERM and, after 10 s, SIGKILL; it returns when the process has exited.
func (p *process) stop() {
	if p.exited() {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// kill sends SIGKILL and returns when the process has exited.
func (p *process) kill() {
	_ = p.cmd.Process.Kill()
	<-p.done
}

// memory returns the process's resident set size and its peak so far (VmRSS and VmHWM), in KiB.
func (p *process) memory() (rss, peak int64, err error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", p.pid()))
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		name, value, ok := strings.Cut(sc.Text(), ":")
		if !ok || name != "VmRSS" && name != "VmHWM" {
			continue
		}
		kib, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(value), " kB"), 10, 64)
		if err != nil {
			return 0, 0, fmt.Errorf("%s of %s: %w", name, p.name, err)
		}
		if name == "VmRSS" {
			rss = kib
		} else {
			peak = kib
		}
	}
	if rss == 0 || peak == 0 {
		return 0, 0, fmt.Errorf("no VmRSS or VmHWM for %s in /proc", p.name)
	}
	return rss, peak, sc.Err()
}

// caddyProcess is a Caddy started from a Caddyfile.
type caddyProcess struct {
	*process
	config string // the Caddyfile
}

// startCaddy writes the Caddyfile (global options and site blocks) as WORK/NAME.Caddyfile, runs
// Caddy with it (its log in WORK/NAME.log) and waits until every port listens.
func (e *env) startCaddy(name, caddyfile string, ports ...int) (*caddyProcess, error) {
	config := filepath.Join(e.work, name+".Caddyfile")
	if err := os.WriteFile(config, []byte(caddyfile), 0o600); err != nil {
		return nil, err
	}
	home := filepath.Join(e.work, name+"-home")
	p, err := start("caddy "+name, filepath.Join(e.work, name+".log"),
		[]string{"XDG_DATA_HOME=" + home + "/data", "XDG_CONFIG_HOME=" + home + "/config", "HOME=" + home},
		e.caddy, "run", "--config", config, "--adapter", "caddyfile")
	if err != nil {
		return nil, err
	}
	e.running = append(e.running, p)
	for _, port := range ports {
		if err := waitListening(port, 60*time.Second); err != nil {
			return nil, fmt.Errorf("caddy %s did not start (log: %s): %w", name, p.log, err)
		}
	}
	return &caddyProcess{process: p, config: config}, nil
}

// redisProcess is a redis-server that writes every command to its append-only file before it
// answers (appendfsync always), so that a kill -9 loses no write it acknowledged.
type redisProcess struct {
	*process
	e          *env
	port       int
	dir, label string
}

func (e *env) startRedis(label string, port int) (*redisProcess, error) {
	r := &redisProcess{e: e, port: port, dir: filepath.Join(e.work, label), label: label}
	if err := os.MkdirAll(r.dir, 0o700); err != nil {
		return nil, err
	}
	return r, r.restart()
}

// restart starts the server again in the same directory, so it reloads its append-only file.
func (r *redisProcess) restart() error {
	p, err := start("redis-server "+r.label, filepath.Join(r.dir, "redis.log"), nil,
		r.e.redisServer, "--port", strconv.Itoa(r.port), "--bind", "127.0.0.1", "--dir", r.dir,
		"--save", "", "--appendonly", "yes", "--appendfsync", "always", "--daemonize", "no")
	if err != nil {
		return err
	}
	r.process = p
	r.e.running = append(r.e.running, p)
	if err := waitPong(r.port, 10*time.Second); err != nil {
		return fmt.Errorf("redis-server %s (log %s): %w", r.label, p.log, err)
	}
	return nil
}

// waitPong waits until the Redis on port answers PING; loading the append-only file can take a
// moment after it listens.
func waitPong(port int, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		if err := ping(port); err == nil {
			return nil
		} else if time.Now().After(deadline) {
			return fmt.Errorf("no PONG on port %d after %s: %w", port, timeout, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// ping sends PING to the Redis on port with the client redisFault checks Redis with.
func ping(port int) error {
	c := redis.NewClient(&redis.Options{Addr: fmt.Sprintf("127.0.0.1:%d", port), MaxRetries: -1})
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	return c.Ping(ctx).Err()
}
