package store

import (
	"bytes"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/magiclink-dev/magiclink/internal/redistest"
)

func startRedis(t testing.TB) *redistest.Server {
	t.Helper()
	return redistest.Start(t)
}

func openTestRedis(t testing.TB, addr string) *RedisStore {
	t.Helper()
	s, err := OpenRedis(RedisOptions{Addresses: []string{addr}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// replyDropper is a TCP proxy in front of Redis that loses the reply to the
// first command containing marker: it forwards the command, waits for
// Redis's reply, then closes the client's connection instead of passing the
// reply on, as a network failure after the server did the work would.
type replyDropper struct {
	addr    string
	marker  []byte
	dropped atomic.Int32
	l       net.Listener
	wg      sync.WaitGroup
}

func newReplyDropper(t *testing.T, upstream string, marker string) *replyDropper {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &replyDropper{addr: l.Addr().String(), marker: []byte(marker), l: l}
	t.Cleanup(func() {
		l.Close()
		p.wg.Wait()
	})
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			u, err := net.Dial("tcp", upstream)
			if err != nil {
				c.Close()
				continue
			}
			p.wg.Add(2)
			var drop atomic.Bool
			go func() {
				defer p.wg.Done()
				defer u.Close()
				buf := make([]byte, 64<<10)
				for {
					n, err := c.Read(buf)
					if n > 0 {
						if bytes.Contains(buf[:n], p.marker) && p.dropped.CompareAndSwap(0, 1) {
							drop.Store(true)
						}
						if _, werr := u.Write(buf[:n]); werr != nil {
							return
						}
					}
					if err != nil {
						return
					}
				}
			}()
			go func() {
				defer p.wg.Done()
				defer c.Close()
				buf := make([]byte, 64<<10)
				for {
					n, err := u.Read(buf)
					if n > 0 {
						if drop.Load() {
							u.Close()
							return
						}
						if _, werr := c.Write(buf[:n]); werr != nil {
							return
						}
					}
					if err != nil {
						return
					}
				}
			}()
		}
	}()
	return p
}

// newReplyDelayer starts a TCP proxy in front of Redis that passes commands at once, and the
// replies that follow a command containing marker after delay (Redis has done what it was told
// long before its client hears of it); it returns the proxy's address.
func newReplyDelayer(t *testing.T, upstream, marker string, delay time.Duration) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() {
		l.Close()
		wg.Wait()
	})
	wg.Go(func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			u, err := net.Dial("tcp", upstream)
			if err != nil {
				c.Close()
				continue
			}
			var slow atomic.Bool
			wg.Go(func() {
				defer u.Close()
				buf := make([]byte, 64<<10)
				for {
					n, err := c.Read(buf)
					if n > 0 {
						if bytes.Contains(buf[:n], []byte(marker)) {
							slow.Store(true)
						}
						if _, werr := u.Write(buf[:n]); werr != nil {
							return
						}
					}
					if err != nil {
						return
					}
				}
			})
			wg.Go(func() {
				defer c.Close()
				buf := make([]byte, 64<<10)
				for {
					n, err := u.Read(buf)
					if n > 0 {
						if slow.Load() {
							time.Sleep(delay)
						}
						if _, werr := c.Write(buf[:n]); werr != nil {
							return
						}
					}
					if err != nil {
						return
					}
				}
			})
		}
	})
	return l.Addr().String()
}
