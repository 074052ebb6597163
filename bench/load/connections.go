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
// a forged cookie and a forged Remote-User (401, and nothing reaches the upstream). Then it does
// the same to a Caddy with reverse_proxy alone, which passes every request on: the gateway's
// peak RSS must stay within 1.25 × that one's (+32 MiB). It reports req/s, latencies and Caddy's
// RSS for both.
func connections(e *env, r *report) {
	up, ports, ok := e.prepare(r, 2)
	if !ok {
		return
	}
	gwPort, barePort := ports[0], ports[1]
	gw, err := e.startCaddy("connections", e.globals("connections", "off", "")+e.block(site{name: "connections", port: gwPort, upstream: up.addr}), gwPort)
	if err != nil {
		r.fail("%v", err)
		return
	}
	const users = 100
	client := newClient(4, 10*time.Second)
	cookies := make([]string, users)
	for i := range cookies {
		tok, _ := e.link(fmt.Sprintf("%sconn-%d", userPrefix, i), false)
		o := get(client, fmt.Sprintf("http://127.0.0.1:%d/?token=%s", gwPort, tok), "")
		if o.status != http.StatusSeeOther || o.session == "" {
			r.fail("redeeming a link for the sessions: %s, want 303 with a session", o.example())
			return
		}
		cookies[i] = o.session
	}
	forged := randomSegment(len(cookies[0]))
	request := func(port, i int) []byte {
		if i%10 == 9 {
			return fmt.Appendf(nil, "GET /conn HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nCookie: %s=%s\r\nRemote-User: admin\r\n\r\n", port, cookieName, forged)
		}
		return fmt.Appendf(nil, "GET /conn HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nCookie: %s=%s\r\n\r\n", port, cookieName, cookies[i%users])
	}

	upConns := up.conns.Load()
	g := e.holdConns(r, gw, gwPort, func(i int) *rawConn {
		if i%10 == 9 {
			return &rawConn{req: request(gwPort, i), want: http.StatusUnauthorized}
		}
		return &rawConn{req: request(gwPort, i), want: http.StatusOK, wantBody: fmt.Sprintf("%sconn-%d", userPrefix, i%users)}
	})
	gw.stop()
	gwUpConns := up.conns.Load() - upConns
	r.figure("gateway: %s; upstream connections opened %d", g, gwUpConns)
	for _, u := range g.answers.unexpected("200", "401") {
		r.fail("unexpected answers: %s", u)
	}
	r.check(g.dialErrors == 0, "%d connections could not be opened: raise the open-file limit (ulimit -n)", g.dialErrors)
	r.check(g.broken == 0, "%d connections broke (closed or reset) while held", g.broken)
	checkUpstream(r, up)

	bareCaddyfile := e.globals("connections-bare", "off", "") + fmt.Sprintf(
		"http://127.0.0.1:%d {\n\tbind 127.0.0.1\n\trequest_header -Cookie\n\treverse_proxy %s {\n\t\theader_up Remote-User %sbare\n%s\t}\n}\n",
		barePort, up.addr, userPrefix, keepAlive)
	bare, err := e.startCaddy("connections-bare", bareCaddyfile, barePort)
	if err != nil {
		r.fail("%v", err)
		return
	}
	b := e.holdConns(r, bare, barePort, func(i int) *rawConn {
		return &rawConn{req: request(barePort, i), want: http.StatusOK, wantBody: userPrefix + "bare"}
	})
	r.figure("reverse_proxy alone: %s; upstream connections opened %d", b, up.conns.Load()-upConns-gwUpConns)
	for _, u := range b.answers.unexpected("200") {
		r.fail("reverse_proxy alone: unexpected answers: %s", u)
	}
	r.figure("gateway ÷ reverse_proxy alone: req/s %.2f, peak RSS %.2f", g.rate()/b.rate(), float64(g.peak)/float64(b.peak))
	// Memory is bounded by what Caddy itself holds per connection and per request in flight.
	r.check(g.peak <= b.peak*5/4+32<<10, "the gateway's peak RSS (%d MiB) is over 1.25 × that of reverse_proxy alone (%d MiB) + 32 MiB",
		g.peak>>10, b.peak>>10)
}

// holdStats is what e.holdConns measured.
type holdStats struct {
	opened, dialErrors  int
	requests, broken    int64
	elapsed             time.Duration
	p50, p99, slowest   time.Duration
	answers             counts
	before, peak, after int64 // Caddy's RSS before the connections, at its peak, after; KiB
	connsTook           time.Duration
}

// rate is the requests per second.
func (s *holdStats) rate() float64 { return float64(s.requests) / s.elapsed.Seconds() }

func (s *holdStats) String() string {
	return fmt.Sprintf("%d connections opened in %.1fs; %d requests in %.1fs: %.0f req/s, latency p50 %s, p99 %s, max %s; answers %s; "+
		"Caddy RSS %d MiB before, %d MiB peak, %d MiB after",
		s.opened, s.connsTook.Seconds(), s.requests, s.elapsed.Seconds(), s.rate(), s.p50.Round(time.Microsecond),
		s.p99.Round(time.Microsecond), s.slowest.Round(time.Microsecond), &s.answers, s.before>>10, s.peak>>10, s.after>>10)
}

// holdConns opens e.conns connections to port, connection i sending the request conn(i) gives, then
// sends requests on all of them for e.hold, each connection pausing 0.5–1.5 × e.think between
// two (after a first pause of 0–1 ×, to spread them).
func (e *env) holdConns(r *report, caddy *caddyProcess, port int, conn func(i int) *rawConn) *holdStats {
	s := &holdStats{}
	s.before, _, _ = caddy.memory()
	conns := make([]*rawConn, e.conns)
	var dialErrs, next atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for range 64 {
		wg.Go(func() {
			for i := int(next.Add(1)) - 1; i < len(conns); i = int(next.Add(1)) - 1 {
				c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), 10*time.Second)
				if err != nil {
					dialErrs.Add(1)
					continue
				}
				k := conn(i)
				k.c, k.br = c, bufio.NewReaderSize(c, 1024)
				conns[i] = k
			}
		})
	}
	wg.Wait()
	s.connsTook = time.Since(start)
	s.dialErrors = int(dialErrs.Load())
	s.opened = len(conns) - s.dialErrors

	var lat latencies
	var requests, broken atomic.Int64
	deadline := time.Now().Add(e.hold)
	start = time.Now()
	for _, k := range conns {
		if k == nil {
			continue
		}
		wg.Go(func() {
			defer k.c.Close()
			time.Sleep(time.Duration(rand.Int64N(int64(e.think) + 1)))
			var mine []time.Duration
			defer func() { lat.add(mine...) }()
			for time.Now().Before(deadline) {
				status, body, took, err := k.roundTrip()
				requests.Add(1)
				switch {
				case err != nil:
					broken.Add(1)
					s.answers.add("error", err.Error())
					return
				case status != k.want || k.want == http.StatusOK && body != k.wantBody:
					s.answers.add(fmt.Sprintf("%d (want %d)", status, k.want), fmt.Sprintf("body %.60q", body))
				default:
					s.answers.add(fmt.Sprint(status), "")
				}
				mine = append(mine, took)
				pause := e.think/2 + time.Duration(rand.Int64N(int64(e.think)+1))
				if time.Until(deadline) < pause {
					return
				}
				time.Sleep(pause)
			}
		})
	}
	wg.Wait()
	s.elapsed = time.Since(start)
	s.requests, s.broken = requests.Load(), broken.Load()
	s.p50, s.p99, s.slowest = lat.quantile(0.5), lat.quantile(0.99), lat.quantile(1)
	var err error
	if s.after, s.peak, err = caddy.memory(); err != nil {
		r.fail("Caddy's memory: %v", err)
	}
	return s
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
