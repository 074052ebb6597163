package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// reload runs a gateway with one-time links on the file store and its admin endpoint, under
// load from workers sending sessions (200), fresh one-time links (303 with a session) and garbage
// (401), for e.reloadFor. Every second it loads the same configuration again (POST /load with
// Cache-Control: must-revalidate, so Caddy does reload it) and, half a second later, revokes the
// session of one more victim through the admin API, by jti or by sub in turn. No request may
// fail, every reload and revocation must succeed, every revoked session must answer 401 within
// 1 s of its revocation and from then on, and the admin API must list every revocation at the end.
func reload(e *env, r *report) {
	up, ports, ok := e.prepare(r, 2)
	if !ok {
		return
	}
	port, adminPort := ports[0], ports[1]
	admin := fmt.Sprintf("http://127.0.0.1:%d", adminPort)
	global := fmt.Sprintf("\tmagic_link {\n\t\tstore file %s\n\t}\n", filepath.Join(e.work, "reload-state.db"))
	caddy, err := e.startCaddy("reload", e.globals("reload", fmt.Sprintf("127.0.0.1:%d", adminPort), global)+
		e.block(site{name: "reload", port: port, upstream: up.addr, gateway: "\t\tonce\n", logged: true}), port, adminPort)
	if err != nil {
		r.fail("%v", err)
		return
	}
	config, err := os.ReadFile(caddy.config)
	if err != nil {
		r.fail("%v", err)
		return
	}
	site := fmt.Sprintf("http://127.0.0.1:%d", port)
	client := newClient(workers, 10*time.Second)

	// The victims: one session each, revoked one a second, by jti or by sub in turn.
	type victim struct {
		user, id, session string
		revokedAt         time.Time
	}
	victims := make([]*victim, int(e.reloadFor/time.Second)+1)
	for i := range victims {
		v := &victim{user: fmt.Sprintf("%svictim-%d", userPrefix, i)}
		var tok string
		tok, v.id = e.link(v.user, true)
		o := get(client, site+"/?token="+tok, "")
		if o.status != http.StatusSeeOther || o.session == "" {
			r.fail("redeeming a victim's link: %s, want 303 with a session", o.example())
			return
		}
		v.session = o.session
		victims[i] = v
	}
	var revoked atomic.Int64 // victims[:revoked] are revoked

	stop := make(chan struct{})
	var wg sync.WaitGroup
	var answers counts
	var requests atomic.Int64
	for w := range 8 {
		wg.Go(func() {
			for i := w; ; i += 8 {
				select {
				case <-stop:
					return
				default:
				}
				requests.Add(1)
				switch i % 3 {
				case 0: // a victim not yet revoked, or a fresh session
					v := victims[len(victims)-1]
					o := get(client, site+"/s", v.session)
					if o.status == http.StatusOK && o.body == v.user {
						answers.add("session 200", "")
					} else {
						answers.add("session "+o.label(), o.example())
					}
				case 1:
					tok, _ := e.link(userPrefix+"reload", true)
					o := get(client, site+"/l?token="+tok, "")
					if o.status == http.StatusSeeOther && o.session != "" {
						answers.add("link 303 with a session", "")
					} else {
						answers.add("link "+o.label(), o.example())
					}
				default:
					tok, _ := e.link(userPrefix+"reload", true)
					o := get(client, site+"/g?token="+garbageToken(tok, i), "")
					if o.status == http.StatusUnauthorized && o.session == "" {
						answers.add("garbage 401", "")
					} else {
						answers.add("garbage "+o.label(), o.example())
					}
				}
			}
		})
	}
	// Revoked sessions stay revoked: checked over and over while the reloads go on.
	var lost counts
	wg.Go(func() {
		for {
			select {
			case <-stop:
				return
			case <-time.After(50 * time.Millisecond):
			}
			for _, v := range victims[:revoked.Load()] {
				if o := get(client, site+"/s", v.session); o.status != http.StatusUnauthorized {
					lost.add("a revoked session answered "+o.label(), fmt.Sprintf("%s, %s after its revocation", o.example(), time.Since(v.revokedAt)))
				}
			}
		}
	})

	var reloads, revocations counts
	var delays latencies
	start := time.Now()
	for tick := 0; time.Since(start) < e.reloadFor && tick < len(victims)-1; tick++ {
		time.Sleep(time.Until(start.Add(time.Duration(tick) * time.Second)))
		status, msg := adminPost(client, admin+"/load", "text/caddyfile", config)
		reloads.add(fmt.Sprint(status), msg)
		v := victims[tick]
		time.Sleep(500 * time.Millisecond)
		body := fmt.Sprintf(`{"jti":%q}`, v.id)
		if tick%2 == 1 {
			body = fmt.Sprintf(`{"sub":%q}`, v.user)
		}
		status, msg = adminPost(client, admin+"/magic_link/revoke", "application/json", []byte(body))
		revocations.add(fmt.Sprint(status), msg)
		if status != http.StatusOK {
			continue
		}
		v.revokedAt = time.Now()
		d, ok := until(time.Second, func() bool { return get(client, site+"/s", v.session).status == http.StatusUnauthorized })
		if !ok {
			r.fail("victim %d: its session still opens 1s after its revocation", tick)
			continue
		}
		delays.add(d)
		revoked.Store(int64(tick + 1))
	}
	// One more reload after the last revocation, then the workers stop.
	status, msg := adminPost(client, admin+"/load", "text/caddyfile", config)
	reloads.add(fmt.Sprint(status), msg)
	time.Sleep(500 * time.Millisecond)
	close(stop)
	wg.Wait()
	elapsed := time.Since(start)

	n := int(revoked.Load())
	r.figure("%d requests in %.1fs (%.0f req/s) during %s reloads: %s", requests.Load(), elapsed.Seconds(),
		float64(requests.Load())/elapsed.Seconds(), &reloads, &answers)
	r.figure("revocations: %s; in force after p50 %s, max %s", &revocations, delays.quantile(0.5).Round(time.Millisecond),
		delays.quantile(1).Round(time.Millisecond))
	for _, u := range reloads.unexpected("200") {
		r.fail("a reload answered %s", u)
	}
	for _, u := range revocations.unexpected("200") {
		r.fail("a revocation answered %s", u)
	}
	for _, u := range answers.unexpected("session 200", "link 303 with a session", "garbage 401") {
		r.fail("a request under reloads got %s", u)
	}
	for _, u := range lost.unexpected() {
		r.fail("lost revocation: %s", u)
	}

	// At the end: every revoked session refused, the last victim's still open, every revocation
	// listed.
	for i, v := range victims[:n] {
		if o := get(client, site+"/s", v.session); o.status != http.StatusUnauthorized {
			r.fail("victim %d: its revoked session answered %s at the end", i, o.example())
		}
	}
	last := victims[len(victims)-1]
	if n < len(victims) {
		if o := get(client, site+"/s", last.session); o.status != http.StatusOK {
			r.fail("the victim never revoked: its session answered %s at the end, want 200", o.example())
		}
	}
	listed, err := revocationList(client, admin)
	if err != nil {
		r.fail("listing the revocations: %v", err)
		return
	}
	missing := 0
	for i, v := range victims[:n] {
		want := "jti " + v.id
		if i%2 == 1 {
			want = "sub " + v.user
		}
		if !slices.Contains(listed, want) {
			missing++
		}
	}
	r.figure("the admin API lists %d revocations; %d of the %d made are missing", len(listed), missing, n)
	r.check(missing == 0, "%d revocations are missing from GET /magic_link/revocations", missing)
	r.check(n >= len(victims)-2, "only %d of %d victims were revoked", n, len(victims)-1)
	checkUpstream(r, up)
}

// adminPost posts body to the admin endpoint and returns the status and, for an error, the
// first line of the answer.
func adminPost(c *http.Client, url, contentType string, body []byte) (int, string) {
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return 0, err.Error()
	}
	req.Header.Set("Content-Type", contentType)
	req.Header.Set("Cache-Control", "must-revalidate")
	res, err := c.Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer res.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(res.Body, 512))
	line, _, _ := strings.Cut(strings.TrimSpace(string(msg)), "\n")
	return res.StatusCode, line
}

// revocationList returns the revocations the admin API lists, as "kind value".
func revocationList(c *http.Client, admin string) ([]string, error) {
	res, err := c.Get(admin + "/magic_link/revocations")
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("status %d", res.StatusCode)
	}
	var out struct {
		Revocations []struct{ Kind, Value string }
	}
	if err := json.NewDecoder(res.Body).Decode(&out); err != nil {
		return nil, err
	}
	list := make([]string, len(out.Revocations))
	for i, rev := range out.Revocations {
		list[i] = rev.Kind + " " + rev.Value
	}
	return list, nil
}

// until calls ok every 10 ms until it returns true or timeout passes, and returns how long
// that took.
func until(timeout time.Duration, ok func() bool) (time.Duration, bool) {
	start := time.Now()
	for {
		if ok() {
			return time.Since(start), true
		}
		if time.Since(start) >= timeout {
			return time.Since(start), false
		}
		time.Sleep(10 * time.Millisecond)
	}
}
