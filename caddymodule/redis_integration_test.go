package caddymodule

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/magiclink-dev/magiclink/internal/redistest"
	"github.com/magiclink-dev/magiclink/token"
)

// caddyBinary builds cmd/caddy once per test run (Go's build cache makes it quick after the first
// time), for the tests that need several Caddy processes.
var caddyBinary = sync.OnceValues(func() (string, error) {
	bin := filepath.Join(testTemp, "caddy")
	cmd := exec.Command("go", "build", "-ldflags=-s -w", "-o", bin, "./cmd/caddy")
	cmd.Dir = ".."
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./cmd/caddy: %v: %s", err, out)
	}
	return bin, nil
})

// instance is a Caddy process serving one site.
type instance struct {
	site
	admin string // host:port of its admin endpoint
	log   string // the file its standard output and error go to
	stop  func() // stops it (as Ctrl-C would) and waits until it has exited
}

// startInstance runs a Caddy process with the global options (whole lines) and the site block,
// and waits until it serves. It is stopped when the test ends, if not before.
func startInstance(t *testing.T, global, block string) *instance {
	t.Helper()
	bin, err := caddyBinary()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	in := &instance{site: site{port: freePort(), block: block}, admin: fmt.Sprintf("127.0.0.1:%d", freePort()),
		log: filepath.Join(dir, "caddy.log")}
	caddyfile := fmt.Sprintf("{\n\tadmin %s\n\tpersist_config off\n\tauto_https off\n\tstorage file_system %s\n%s}\n\nhttp://127.0.0.1:%d {\n%s}\n",
		in.admin, filepath.Join(dir, "storage"), global, in.port, block)
	config := filepath.Join(dir, "Caddyfile")
	if err := os.WriteFile(config, []byte(caddyfile), 0o600); err != nil {
		t.Fatal(err)
	}
	logFile, err := os.Create(in.log)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "run", "--config", config, "--adapter", "caddyfile")
	cmd.Env = append(os.Environ(), "XDG_DATA_HOME="+filepath.Join(dir, "data"), "XDG_CONFIG_HOME="+filepath.Join(dir, "config"))
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		logFile.Close()
		close(exited)
	}()
	in.stop = sync.OnceFunc(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		select {
		case <-exited:
		case <-time.After(5 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
	})
	t.Cleanup(func() {
		in.stop()
		if t.Failed() {
			out, _ := os.ReadFile(in.log)
			t.Logf("log of the Caddy on port %d:\n%s", in.port, out)
		}
	})
	client := &http.Client{Timeout: time.Second}
	for deadline := time.Now().Add(15 * time.Second); ; {
		select {
		case <-exited:
			out, _ := os.ReadFile(in.log)
			t.Fatalf("Caddy exited:\n%s", out)
		default:
		}
		if res, err := client.Get("http://" + in.admin + "/config/"); err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return in
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("Caddy did not start within 15s")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// outcome is the answer to one request, for requests sent from several goroutines.
type outcome struct {
	status  int
	session bool // a session cookie was set
	body    string
	err     error
}

// get sends GET url with the Cookie header value cookie (none when empty) from a client without
// a jar.
func get(url, cookie string) outcome {
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		return outcome{err: err}
	}
	if cookie != "" {
		req.Header.Set("Cookie", cookie)
	}
	client := &http.Client{Timeout: 5 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	res, err := client.Do(req)
	if err != nil {
		return outcome{err: err}
	}
	defer res.Body.Close()
	var body strings.Builder
	_, err = bufio.NewReader(res.Body).WriteTo(&body)
	o := outcome{status: res.StatusCode, body: body.String(), err: err}
	for _, c := range res.Cookies() {
		if c.Name == DefaultInsecureCookie && c.Value != "" {
			o.session = true
		}
	}
	return o
}

// signIn redeems tok on s and returns the Cookie header value of the new session.
func signIn(t *testing.T, s site, tok string) string {
	t.Helper()
	res, _ := fetch(t, browser(t), http.MethodGet, s.url("/?token="+tok), nil)
	if res.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign-in on port %d: status %d, want 303", s.port, res.StatusCode)
	}
	c := responseCookie(t, res, DefaultInsecureCookie)
	return c.Name + "=" + c.Value
}

// pollUntil calls try every interval until it returns true or within passes; it returns how long
// that took and whether it happened.
func pollUntil(within, interval time.Duration, try func() bool) (time.Duration, bool) {
	start := time.Now()
	for {
		if try() {
			return time.Since(start), true
		}
		if time.Since(start) > within {
			return time.Since(start), false
		}
		time.Sleep(interval)
	}
}

func TestIntegrationRedisInstances(t *testing.T) {
	redistest.Require(t)
	srv := redistest.Start(t)
	keys := newGWKeys(t)
	upstream := newUpstream(t)
	global := "\tmagic_link {\n\t\tstore redis redis://" + srv.Addr + "\n\t\ttimeout 1s\n\t}\n"
	block := gatewayBlock(keys.keyFile, upstream, "\t\tsession_secret "+gwSecret+"\n")
	a, b := startInstance(t, global, block), startInstance(t, global, block)
	once := func(c *token.Claims) { c.Once = true }

	t.Run("used on A is used on B", func(t *testing.T) {
		tok := keys.link(t, once)
		signIn(t, a.site, tok)
		res, body := fetch(t, browser(t), http.MethodGet, b.url("/?token="+tok), nil)
		wantPage(t, "on B", res, body, http.StatusUnauthorized, usedPage)
		wantNoSession(t, "on B", res)
	})

	t.Run("concurrent redemptions", func(t *testing.T) {
		tok := keys.link(t, once)
		outcomes := make([]outcome, 20)
		start := make(chan struct{})
		var wg sync.WaitGroup
		for i := range outcomes {
			s := a
			if i%2 == 1 {
				s = b
			}
			wg.Go(func() {
				<-start
				outcomes[i] = get(s.url("/?token="+tok), "")
			})
		}
		close(start)
		wg.Wait()
		sessions := 0
		for i, o := range outcomes {
			switch {
			case o.err != nil:
				t.Errorf("request %d: %v", i, o.err)
			case o.status == http.StatusSeeOther && o.session:
				sessions++
			case o.status == http.StatusUnauthorized && !o.session && strings.Contains(o.body, usedPage):
			default:
				t.Errorf("request %d: status %d, session %t; want 303 with a session or 401 used", i, o.status, o.session)
			}
		}
		if sessions != 1 {
			t.Errorf("%d sessions opened by 20 concurrent redemptions over two instances, want 1", sessions)
		}
	})

	// A revocation made through one instance's admin API is enforced by the other's session check:
	// links by jti through A, watched on B; subjects through B, watched on A.
	var revokedCookie string
	t.Run("propagation", func(t *testing.T) {
		var delays []time.Duration
		for i := range 10 {
			from, to, edit, body := a, b, func(c *token.Claims) { c.ID = fmt.Sprintf("prop-%d", i) }, fmt.Sprintf(`{"jti":"prop-%d"}`, i)
			if i%2 == 1 {
				from, to, edit, body = b, a, func(c *token.Claims) { c.Subject = fmt.Sprintf("user-%d", i) }, fmt.Sprintf(`{"sub":"user-%d"}`, i)
			}
			cookie := signIn(t, from.site, keys.link(t, edit))
			if o := get(to.url("/"), cookie); o.status != http.StatusOK {
				t.Fatalf("revocation %d: before it, the session on the other instance: status %d, want 200", i, o.status)
			}
			revoke(t, from.admin, body)
			delay, ok := pollUntil(2*time.Second, 10*time.Millisecond, func() bool {
				o := get(to.url("/"), cookie)
				return o.status == http.StatusUnauthorized && strings.Contains(o.body, revokedPage)
			})
			if !ok || delay > time.Second {
				t.Errorf("revocation %s: enforced by the other instance after %s (seen: %t), want within 1s", body, delay, ok)
			}
			delays = append(delays, delay)
			revokedCookie = cookie
		}
		slices.Sort(delays)
		t.Logf("propagation delay over %d revocations: p50 %s, max %s", len(delays), delays[len(delays)/2], delays[len(delays)-1])
	})

	t.Run("redis down", func(t *testing.T) {
		session := signIn(t, b.site, keys.link(t, nil))
		tok := keys.link(t, once)
		srv.Kill()

		for _, s := range []*instance{a, b} {
			res, body := fetch(t, browser(t), http.MethodGet, s.url("/?token="+tok), nil)
			wantPage(t, "a one-time link while Redis is down", res, body, http.StatusServiceUnavailable, "Try again in a moment.")
			wantNoSession(t, "a one-time link while Redis is down", res)

			fresh := signIn(t, s.site, keys.link(t, nil))
			for _, other := range []*instance{a, b} {
				for _, cookie := range []string{fresh, session} {
					if o := get(other.url("/"), cookie); o.status != http.StatusOK {
						t.Errorf("a session while Redis is down: status %d, want 200", o.status)
					}
				}
				if o := get(other.url("/"), revokedCookie); o.status != http.StatusUnauthorized || !strings.Contains(o.body, revokedPage) {
					t.Errorf("a revoked session while Redis is down: status %d, want 401 revoked: the list is kept", o.status)
				}
			}
		}

		status, body := adminDoAt(t, a.admin, http.MethodPost, "/magic_link/revoke", "application/json", `{"sub":"alice"}`)
		if msg := adminErrorMessage(t, body); status != http.StatusServiceUnavailable || !strings.Contains(msg, "nothing was revoked") {
			t.Errorf("a revocation while Redis is down: status %d, %q; want 503 saying nothing was revoked", status, msg)
		}
		if o := get(b.url("/"), session); o.status != http.StatusOK {
			t.Errorf("after a revocation that failed: the session: status %d, want 200", o.status)
		}

		srv.Restart()
		recovery, ok := pollUntil(10*time.Second, 50*time.Millisecond, func() bool {
			o := get(a.url("/?token="+tok), "")
			if o.status != http.StatusSeeOther && o.status != http.StatusServiceUnavailable {
				t.Errorf("the one-time link while Redis restarts: status %d, want 503 until it redeems", o.status)
			}
			return o.status == http.StatusSeeOther && o.session
		})
		if !ok {
			t.Fatalf("the one-time link did not redeem within %s of Redis restarting", recovery)
		}
		t.Logf("the one-time link redeemed %s after Redis restarted", recovery)
		res, body := fetch(t, browser(t), http.MethodGet, b.url("/?token="+tok), nil)
		wantPage(t, "the one-time link on B after it redeemed on A", res, body, http.StatusUnauthorized, usedPage)
	})

	// Everything the processes wrote went through Caddy's logger (JSON lines), the Redis
	// client's complaints during the outage included.
	for _, in := range []*instance{a, b} {
		out, err := os.ReadFile(in.log)
		if err != nil {
			t.Fatal(err)
		}
		for line := range strings.Lines(string(out)) {
			if !json.Valid([]byte(line)) {
				t.Errorf("Caddy on port %d wrote a line that is not Caddy's log: %q", in.port, strings.TrimSpace(line))
			}
		}
	}
}

func TestIntegrationFileStoreRestart(t *testing.T) {
	keys := newGWKeys(t)
	upstream := newUpstream(t)
	global := storeGlobal(filepath.Join(t.TempDir(), "state.db"))
	block := gatewayBlock(keys.keyFile, upstream, "\t\tsession_secret "+gwSecret+"\n\t\tonce\n")
	first := startInstance(t, global, block)
	tok := keys.link(t, nil)
	session := signIn(t, first.site, tok)
	first.stop()

	second := startInstance(t, global, block)
	res, body := fetch(t, browser(t), http.MethodGet, second.url("/?token="+tok), nil)
	wantPage(t, "the link after a restart", res, body, http.StatusUnauthorized, usedPage)
	wantNoSession(t, "the link after a restart", res)
	if o := get(second.url("/?token="+tok), session); o.status != http.StatusSeeOther || o.session {
		t.Errorf("the link after a restart, in the browser it signed in: status %d, new session %t; want 303 and none", o.status, o.session)
	}
}
