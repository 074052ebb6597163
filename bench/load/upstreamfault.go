package main

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"time"
)

// errorPage echoes the request's URI in the error pages of site F: a token left in it would show.
const errorPage = "\thandle_errors {\n\t\trespond \"error {err.status_code} at {http.request.uri}\"\n\t}\n"

// decisions is how many of the gateway's own decisions each phase of upstreamFault times.
const decisions = 3000

// upstreamFault runs a gateway in front of the upstream (site R, redeem redirect; site F, redeem
// forward) while the upstream is healthy, then down (its port closed), then slow (3 s per
// answer, with 200 requests waiting on it). The gateway's own decisions, a 303 with a session
// for a link on R and a 401 for garbage, keep their answers and their latency; requests that
// need the upstream get 502 while it is down and its answer when slow. No token and no session
// cookie may appear in an answer's body, in Caddy's log or in the access logs.
func upstreamFault(e *env, r *report) {
	up, ports, ok := e.prepare(r, 3)
	if !ok {
		return
	}
	pr, pf, pg := ports[0], ports[1], ports[2]
	caddyfile := e.globals("upstream", "off", "") + e.block(site{name: "upstream-r", port: pr, upstream: up.addr, logged: true}) +
		e.block(site{name: "upstream-f", port: pf, upstream: up.addr, gateway: "\t\tredeem forward\n", after: errorPage, logged: true}) +
		e.block(site{name: "upstream-g", port: pg, upstream: up.addr, gateway: "\t\tredeem forward\n", logged: true})
	if _, err := e.startCaddy("upstream", caddyfile, pr, pf, pg); err != nil {
		r.fail("%v", err)
		return
	}
	siteR, siteF, siteG := fmt.Sprintf("http://127.0.0.1:%d", pr), fmt.Sprintf("http://127.0.0.1:%d", pf), fmt.Sprintf("http://127.0.0.1:%d", pg)
	client := newClient(workers, 30*time.Second)
	var secrets secretSet

	// decide times the gateway's decisions: links (303 with a session) and garbage (401).
	decide := func(name string) time.Duration {
		var lat latencies
		var got counts
		links := make([]string, decisions/2)
		for i := range links {
			links[i], _ = e.link(userPrefix+"up", false)
			secrets.addToken(links[i])
		}
		parallel(decisions, func(i int) {
			var o outcome
			if i%2 == 0 {
				o = get(client, siteR+"/p?token="+links[i/2], "")
				secrets.addCookie(o.session)
				if o.status == http.StatusSeeOther && o.session != "" {
					got.add("303 with a session", "")
				} else {
					got.add(o.label(), o.example())
				}
			} else {
				junk := garbageToken(links[i/2], i/2)
				secrets.addToken(junk)
				o = get(client, siteR+"/p?token="+junk, "")
				if o.status == http.StatusUnauthorized && o.session == "" {
					got.add("401", "")
				} else {
					got.add(o.label(), o.example())
				}
			}
			secrets.checkBody(r, name, o.body)
			lat.add(o.took)
		})
		r.figure("%s: %d decisions: %s; latency p50 %s, p99 %s", name, decisions, &got,
			lat.quantile(0.5).Round(time.Microsecond), lat.quantile(0.99).Round(time.Microsecond))
		for _, u := range got.unexpected("303 with a session", "401") {
			r.fail("%s: a decision got %s", name, u)
		}
		return lat.quantile(0.99)
	}
	// needsApp sends n requests that reach the upstream: a session on R, a link on F (forward).
	needsApp := func(name string, n, want int) {
		var got counts
		tok, _ := e.link(userPrefix+"app", false)
		secrets.addToken(tok)
		session := get(client, siteR+"/p?token="+tok, "").session
		secrets.addCookie(session)
		parallel(n, func(i int) {
			var o outcome
			if i%3 == 0 {
				o = get(client, siteR+"/app", session)
			} else {
				link, _ := e.link(userPrefix+"app", false)
				secrets.addToken(link)
				o = get(client, []string{siteF, siteG}[i%3-1]+"/app?token="+link, "")
				secrets.addCookie(o.session)
			}
			secrets.checkBody(r, name, o.body)
			got.add(o.label(), o.example())
		})
		r.figure("%s: %d requests that need the app: %s", name, n, &got)
		for _, u := range got.unexpected(fmt.Sprint(want)) {
			r.fail("%s: a request that needs the app got %s, want %d", name, u, want)
		}
	}

	healthy := decide("healthy")
	needsApp("healthy", 200, http.StatusOK)

	up.stop()
	down := decide("upstream down")
	needsApp("upstream down", 200, http.StatusBadGateway)

	slow, err := startUpstream(up.addr) // on the port of the one stopped
	if err != nil {
		r.fail("restarting the upstream: %v", err)
		return
	}
	e.running = append(e.running, slow)
	slow.delay.Store(int64(3 * time.Second))
	var waiting sync.WaitGroup
	waiting.Go(func() { needsApp("upstream slow (3s)", 200, http.StatusOK) })
	time.Sleep(500 * time.Millisecond) // the 200 requests are waiting on the upstream
	slowP99 := decide("upstream slow (3s), 200 requests waiting on it")
	waiting.Wait()
	r.figure("p99 of the decisions: %s healthy, %s with the upstream down, %s with it slow",
		healthy.Round(time.Microsecond), down.Round(time.Microsecond), slowP99.Round(time.Microsecond))
	r.check(slowP99 < time.Second, "the decisions waited on the slow upstream (p99 %s)", slowP99)

	// Caddy's log and the access logs hold no token and no session cookie.
	for _, name := range []string{"upstream.log", "upstream-r-access.log", "upstream-f-access.log", "upstream-g-access.log"} {
		data, err := os.ReadFile(filepath.Join(e.work, name))
		if err != nil {
			r.fail("reading %s: %v", name, err)
			continue
		}
		n := secrets.count(string(data))
		r.figure("%s: %d bytes, %d tokens or cookies in it", name, len(data), n)
		r.check(n == 0, "%s holds %d tokens or session cookies", name, n)
	}
	checkUpstream(r, up)
	checkUpstream(r, slow)
}

// secretSet holds the token segments and session cookies a scenario used, to look for them in
// bodies and logs.
type secretSet struct {
	mu  sync.Mutex
	set map[string]bool
}

// minSecret is the shortest string looked for: a token's claims or signature, a cookie.
const minSecret = 40

var base64url = regexp.MustCompile(`[A-Za-z0-9_-]{40,}`)

func (s *secretSet) add(v string) {
	if len(v) < minSecret {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.set == nil {
		s.set = map[string]bool{}
	}
	s.set[v] = true
}

// addToken adds a token's claims and signature segments, or the whole of a junk token
// without dots.
func (s *secretSet) addToken(tok string) {
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		s.add(tok)
		return
	}
	s.add(parts[1])
	s.add(parts[2])
}

func (s *secretSet) addCookie(v string) { s.add(v) }

// count returns how many base64url runs of text are, or contain, a secret of the set.
func (s *secretSet) count(text string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, run := range base64url.FindAllString(text, -1) {
		if s.set[run] {
			n++
			continue
		}
		for v := range s.set {
			if len(v) <= len(run) && strings.Contains(run, v) {
				n++
				break
			}
		}
	}
	return n
}

func (s *secretSet) checkBody(r *report, phase, body string) {
	if n := s.count(body); n > 0 {
		r.fail("%s: an answer's body holds a token or a session cookie", phase)
	}
}
