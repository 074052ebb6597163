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

// replyProxy is a TCP proxy in front of Redis that passes commands at once and interferes with
// the reply to a command containing its marker: it passes it on after delay, or, for the first
// such reply when dropFirst is set, closes the client's connection instead (as a network failure
// after the server did the work would). Redis has done what it was told long before its client
// hears of it.
type replyProxy struct {
	addr    string
	dropped atomic.Int32 // replies dropped
}

func newReplyProxy(t *testing.T, upstream, marker string, delay time.Duration, dropFirst bool) *replyProxy {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &replyProxy{addr: l.Addr().String()}
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
			var marked atomic.Bool // the reply read next follows a marked command
			wg.Go(func() {
				defer u.Close()
				pipe(u, c, func(b []byte) bool {
					if bytes.Contains(b, []byte(marker)) {
						marked.Store(true)
					}
					return true
				})
			})
			wg.Go(func() {
				defer c.Close()
				pipe(c, u, func([]byte) bool {
					if !marked.Swap(false) {
						return true
					}
					if dropFirst && p.dropped.CompareAndSwap(0, 1) {
						return false
					}
					time.Sleep(delay)
					return true
				})
			})
		}
	})
	return p
}

// pipe copies from src to dst, each chunk once pass agrees; it stops at the first error, or when
// pass refuses a chunk.
func pipe(dst, src net.Conn, pass func([]byte) bool) {
	buf := make([]byte, 64<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if !pass(buf[:n]) {
				return
			}
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}
