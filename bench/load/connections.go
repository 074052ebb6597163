package main

import (
	"bufio"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// connections holds e.conns keep-alive connections open to a gateway in front of the upstream
// and sends requests on each for e.hold, pausing about e.think between two: nine in ten
// connections carry a valid session cookie (200 from the upstream, with their user), one in ten
// a forged cookie and a forged Remote-User (401, and nothing reaches the upstream). It reports
// req/s, latencies and Caddy's peak RSS.
func connections(e *env, r *report) {
	up, ports, ok := e.prepare(r, 1)
	if !ok {
		return
	}
	port := ports[0]
	caddy, err := e.startCaddy("connections", e.globals("connections", "off", "")+e.siteBlock("connections", port, up.addr, "", ""), port)
	if err != nil {
		r.fail("%v", err)
		return
	}
	site := fmt.Sprintf("http://127.0.0.1:%d", port)

	const users = 100
	client := newClient(4, 10*time.Second)
	cookies := make([]string, users)
	for i := range cookies {
		tok, _ := e.link(fmt.Sprintf("%sconn-%d", userPrefix, i), false)
		o := get(client, site+"/?token="+tok, "")
		if o.status != http.StatusSeeOther || o.session == "" {
			r.fail("redeeming a link for the sessions: %s, want 303 with a session", o.example())
			return
		}
		cookies[i] = o.session
	}
	_, base, _ := caddy.memory()

	// Open every connection first, 64 dials at a time, then start the requests together.
	conns := make([]*rawConn, e.conns)
	var dialErrs atomic.Int64
	var next atomic.Int64
	var wg sync.WaitGroup
	dialStart := time.Now()
	for range 64 {
		wg.Go(func() {
			for i := int(next.Add(1)) - 1; i < len(conns); i = int(next.Add(1)) - 1 {
				c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), 10*time.Second)
				if err != nil {
					dialErrs.Add(1)
					continue
				}
				k := &rawConn{c: c, br: bufio.NewReaderSize(c, 1024), want: http.StatusOK}
				if i%10 == 9 {
					k.want = http.StatusUnauthorized
					k.req = fmt.Appendf(nil, "GET /conn HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nCookie: %s=%s\r\nRemote-User: admin\r\n\r\n",
						port, cookieName, randomHex(len(cookies[0])/2))
				} else {
					k.wantBody = fmt.Sprintf("%sconn-%d", userPrefix, i%users)
					k.req = fmt.Appendf(nil, "GET /conn HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nCookie: %s=%s\r\n\r\n", port, cookieName, cookies[i%users])
				}
				conns[i] = k
			}
		})
	}
	wg.Wait()
	opened := len(conns) - int(dialErrs.Load())
	r.figure("opened %d of %d connections in %.1fs", opened, len(conns), time.Since(dialStart).Seconds())
	r.check(dialErrs.Load() == 0, "%d connections could not be opened: raise the open-file limit (ulimit -n)", dialErrs.Load())

	var lat latencies
	var got counts
	var requests, broken atomic.Int64
	deadline := time.Now().Add(e.hold)
	start := time.Now()
	stopSampling := make(chan struct{})
	var peakRSS int64
	sampled := make(chan struct{})
	go func() { // Caddy's RSS while the connections are held
		defer close(sampled)
		for {
			select {
			case <-stopSampling:
				return
			case <-time.After(250 * time.Millisecond):
				if rss, _, err := caddy.memory(); err == nil {
					peakRSS = max(peakRSS, rss)
				}
			}
		}
	}()
	for _, k := range conns {
		if k == nil {
			continue
		}
		wg.Go(func() {
			defer k.c.Close()
			// Spread the first requests over one pause, then pause 0.5–1.5 times e.think.
			time.Sleep(time.Duration(rand.Int64N(int64(e.think) + 1)))
			var mine []time.Duration
			for time.Now().Before(deadline) {
				status, body, took, err := k.roundTrip()
				requests.Add(1)
				switch {
				case err != nil:
					broken.Add(1)
					got.add("error", err.Error())
					lat.add(mine...)
					return
				case status != k.want || k.want == http.StatusOK && body != k.wantBody:
					got.add(fmt.Sprintf("%d (want %d)", status, k.want), fmt.Sprintf("body %.60q", body))
				default:
					got.add(fmt.Sprint(status), "")
				}
				mine = append(mine, took)
				time.Sleep(e.think/2 + time.Duration(rand.Int64N(int64(e.think)+1)))
			}
			lat.add(mine...)
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	close(stopSampling)
	<-sampled
	rss, peak, err := caddy.memory()
	if err != nil {
		r.fail("Caddy's memory: %v", err)
	}
	n := requests.Load()
	r.figure("%d requests in %.1fs over %d connections: %.0f req/s; latency p50 %s, p99 %s, max %s",
		n, elapsed.Seconds(), opened, float64(n)/elapsed.Seconds(), lat.quantile(0.5).Round(time.Microsecond),
		lat.quantile(0.99).Round(time.Microsecond), lat.quantile(1).Round(time.Microsecond))
	r.figure("answers: %s", &got)
	r.figure("Caddy RSS: %d MiB before the connections, %d MiB peak while held (VmHWM %d MiB), %d MiB after",
		base>>10, peakRSS>>10, peak>>10, rss>>10)
	r.figure("the upstream saw %d requests", up.requests.Load())
	for _, u := range got.unexpected("200", "401") {
		r.fail("unexpected answers: %s", u)
	}
	r.check(broken.Load() == 0, "%d connections broke (closed or reset) while held", broken.Load())
	r.check(peak>>10 <= e.maxRSS, "Caddy's peak RSS %d MiB is over the bound of %d MiB (-max-rss)", peak>>10, e.maxRSS)
	checkUpstream(r, up)
}

// rawConn is one keep-alive connection sending the same request again and again.
type rawConn struct {
	c        net.Conn
	br       *bufio.Reader
	req      []byte
	want     int
	wantBody string
}

func (k *rawConn) roundTrip() (status int, body string, took time.Duration, err error) {
	start := time.Now()
	_ = k.c.SetDeadline(start.Add(30 * time.Second))
	if _, err := k.c.Write(k.req); err != nil {
		return 0, "", 0, err
	}
	res, err := http.ReadResponse(k.br, nil)
	if err != nil {
		return 0, "", 0, err
	}
	b, err := io.ReadAll(io.LimitReader(res.Body, 4096))
	res.Body.Close()
	return res.StatusCode, string(b), time.Since(start), err
}
