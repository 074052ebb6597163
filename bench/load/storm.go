package main

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// workers is how many requests the request-driven scenarios keep in flight.
const workers = 64

// parallel calls fn(i) for i in [0, n) from workers goroutines and returns how long it took.
func parallel(n int, fn func(i int)) time.Duration {
	start := time.Now()
	var next atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for i := int(next.Add(1)) - 1; i < n; i = int(next.Add(1)) - 1 {
				fn(i)
			}
		})
	}
	wg.Wait()
	return time.Since(start)
}

// storm sends e.links distinct valid links and e.garbage garbage tokens, interleaved, to a
// stateless gateway: every link must get a 303 with a session that then opens as its user, every
// garbage token a 401 without one. Then it sends e.cookies distinct garbage session cookies and
// checks that Caddy's memory stays within e.rssGrowth of what it was after the first tenth.
func storm(e *env, r *report) {
	up, ports, ok := e.prepare(r, 1)
	if !ok {
		return
	}
	port := ports[0]
	caddy, err := e.startCaddy("storm", e.globals("storm", "off", "")+e.block(site{name: "storm", port: port, upstream: up.addr}), port)
	if err != nil {
		r.fail("%v", err)
		return
	}
	site := fmt.Sprintf("http://127.0.0.1:%d", port)

	signStart := time.Now()
	links := make([]string, e.links)
	parallel(len(links), func(i int) { links[i], _ = e.link(fmt.Sprintf("%sstorm-%d", userPrefix, i), false) })
	junk := make([]string, e.garbage)
	for i := range junk {
		junk[i] = garbageToken(links[i%len(links)], i)
	}
	r.figure("signed %d links and made %d garbage tokens (%d kinds) in %.1fs", len(links), len(junk), garbageKinds, time.Since(signStart).Seconds())

	client := newClient(workers, 30*time.Second)
	sessions := make([]string, len(links))
	var linkAnswers, junkAnswers counts
	var lat latencies
	// Interleaved: link 0, garbage 0, link 1, garbage 1, … while both last.
	type request struct {
		valid bool
		i     int
	}
	var order []request
	for i := range max(len(links), len(junk)) {
		if i < len(links) {
			order = append(order, request{true, i})
		}
		if i < len(junk) {
			order = append(order, request{false, i})
		}
	}
	total := len(order)
	took := parallel(total, func(k int) {
		rq := order[k]
		if rq.valid {
			o := get(client, site+"/storm?token="+links[rq.i], "")
			lat.add(o.took)
			if o.status == http.StatusSeeOther && o.session != "" {
				sessions[rq.i] = o.session
				linkAnswers.add("303 with a session", "")
				return
			}
			linkAnswers.add(o.label(), o.example())
			return
		}
		o := get(client, site+"/storm?token="+junk[rq.i], "")
		lat.add(o.took)
		if o.status == http.StatusUnauthorized && o.session == "" {
			junkAnswers.add("401", "")
			return
		}
		junkAnswers.add(o.label(), fmt.Sprintf("%s (garbage kind %d)", o.example(), rq.i%garbageKinds))
	})
	r.figure("%d requests in %.1fs: %.0f req/s, latency p50 %s, p99 %s", total, took.Seconds(), float64(total)/took.Seconds(),
		lat.quantile(0.5).Round(time.Microsecond), lat.quantile(0.99).Round(time.Microsecond))
	r.figure("links: %s", &linkAnswers)
	r.figure("garbage: %s", &junkAnswers)
	for _, u := range linkAnswers.unexpected("303 with a session") {
		r.fail("a valid link got %s", u)
	}
	for _, u := range junkAnswers.unexpected("401") {
		r.fail("a garbage token got %s", u)
	}

	// Every session opens as the user of its link, once.
	var opened counts
	parallel(len(sessions), func(i int) {
		if sessions[i] == "" {
			return
		}
		o := get(client, site+"/check", sessions[i])
		if want := fmt.Sprintf("%sstorm-%d", userPrefix, i); o.status != http.StatusOK || o.body != want {
			opened.add("wrong", fmt.Sprintf("%s, want 200 %s", o.example(), want))
			return
		}
		opened.add("ok", "")
	})
	r.figure("sessions opened as their link's user: %d of %d", opened.get("ok"), len(links))
	for _, u := range opened.unexpected("ok") {
		r.fail("a session of the storm: %s", u)
	}

	// Distinct garbage cookies, as long as real ones: the session cache and the rest must not
	// keep them.
	cookieLen := len(sessions[0])
	if cookieLen == 0 {
		cookieLen = 120
	}
	var cookieAnswers counts
	var afterTenth int64
	tenth := e.cookies / 10
	took = parallel(e.cookies, func(i int) {
		if i == tenth {
			afterTenth, _, _ = caddy.memory()
		}
		o := get(client, site+"/cookie", randomSegment(cookieLen))
		if o.status == http.StatusUnauthorized && o.cleared {
			cookieAnswers.add("401, cookie cleared", "")
			return
		}
		cookieAnswers.add(o.label(), o.example())
	})
	rss, peak, err := caddy.memory()
	if err != nil {
		r.fail("Caddy's memory: %v", err)
		return
	}
	r.figure("%d distinct garbage cookies in %.1fs: %.0f req/s; %s", e.cookies, took.Seconds(), float64(e.cookies)/took.Seconds(), &cookieAnswers)
	r.figure("Caddy RSS: %d MiB after %d cookies, %d MiB after all (peak %d MiB)", afterTenth>>10, tenth, rss>>10, peak>>10)
	for _, u := range cookieAnswers.unexpected("401, cookie cleared") {
		r.fail("a garbage cookie got %s", u)
	}
	r.check(afterTenth > 0 && (rss-afterTenth)>>10 <= e.rssGrowth,
		"Caddy's RSS grew by %d MiB over the last %d garbage cookies, over the bound of %d MiB (-rss-growth)",
		(rss-afterTenth)>>10, e.cookies-tenth, e.rssGrowth)
	checkUpstream(r, up)
}

const garbageKinds = 5

// garbageToken derives a junk token of kind i%garbageKinds from a valid link token: random
// segments as long as the real ones, the real token with a forged signature, a blob without
// dots, an oversized token, and the real claims under a header naming another algorithm.
func garbageToken(valid string, i int) string {
	header, rest, _ := strings.Cut(valid, ".")
	payload, sig, _ := strings.Cut(rest, ".")
	switch i % garbageKinds {
	case 0:
		return randomSegment(len(header)) + "." + randomSegment(len(payload)) + "." + randomSegment(len(sig))
	case 1:
		return header + "." + payload + "." + randomSegment(len(sig))
	case 2:
		return randomSegment(len(valid))
	case 3:
		return randomSegment(5000)
	default:
		return base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"HS256","typ":"magic-link+jwt"}`)) + "." + payload + "." + sig
	}
}

// randomSegment returns n random base64url characters.
func randomSegment(n int) string {
	b := make([]byte, n*3/4+3)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)[:n]
}
