package caddymodule

import (
	"encoding/json"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/magiclink-dev/magiclink/token"
)

// storeGlobal is the global option block that keeps the magic_link app's state in the file db.
func storeGlobal(db string) string {
	return "\tmagic_link {\n\t\tstore file " + db + "\n\t}\n"
}

// adminDo sends a request to the admin endpoint of the in-process Caddy and returns the status and
// the body.
func adminDo(t *testing.T, method, path, contentType, body string) (int, string) {
	t.Helper()
	return adminDoAt(t, fmt.Sprintf("localhost:%d", adminPort()), method, path, contentType, body)
}

// adminDoAt sends a request to the admin endpoint at addr and returns the status and the body.
func adminDoAt(t *testing.T, addr, method, path, contentType, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, "http://"+addr+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	req.Header.Set("Cache-Control", "must-revalidate") // /load reloads even the same config
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return res.StatusCode, readBody(t, res)
}

// adminError returns the message of an admin API error answer, or fails.
func adminErrorMessage(t *testing.T, body string) string {
	t.Helper()
	var e struct {
		Error string `json:"error"`
	}
	if err := json.Unmarshal([]byte(body), &e); err != nil || e.Error == "" {
		t.Fatalf("not an admin API error: %q", body)
	}
	return e.Error
}

// revocationsHeld lists the revocations the admin API shows, as "kind value" strings.
func revocationsHeld(t *testing.T, addr string) []string {
	t.Helper()
	status, body := adminDoAt(t, addr, http.MethodGet, "/magic_link/revocations", "", "")
	if status != http.StatusOK {
		t.Fatalf("GET /magic_link/revocations: status %d: %s", status, body)
	}
	var out struct {
		Revocations []revocationJSON `json:"revocations"`
	}
	if err := json.Unmarshal([]byte(body), &out); err != nil {
		t.Fatalf("GET /magic_link/revocations: %v: %q", err, body)
	}
	held := make([]string, 0, len(out.Revocations))
	for _, r := range out.Revocations {
		if !r.Until.After(r.At) {
			t.Errorf("revocation %s %s: until %s is not after at %s", r.Kind, r.Value, r.Until, r.At)
		}
		held = append(held, string(r.Kind)+" "+r.Value)
	}
	return held
}

// openStates counts the stores the process holds open and their users.
func openStates() (stores, refs int) {
	states.Range(func(key, _ any) bool {
		stores++
		n, _ := states.References(key)
		refs += n
		return true
	})
	return stores, refs
}

// wantPage fails unless res is the built-in rejection page with status and message.
func wantPage(t *testing.T, step string, res *http.Response, body string, status int, message string) {
	t.Helper()
	if res.StatusCode != status || !strings.Contains(body, message) {
		t.Errorf("%s: status %d, body %q; want %d saying %q", step, res.StatusCode, body, status, message)
	}
}

// wantNoSession fails if res sets a session cookie with a value.
func wantNoSession(t *testing.T, step string, res *http.Response) {
	t.Helper()
	for _, c := range res.Cookies() {
		if c.Name == DefaultInsecureCookie && c.Value != "" {
			t.Errorf("%s: a session cookie was set", step)
		}
	}
}

// wantClearedCookie fails unless res clears the session cookie.
func wantClearedCookie(t *testing.T, step string, res *http.Response) {
	t.Helper()
	for _, c := range res.Cookies() {
		if c.Name == DefaultInsecureCookie && c.Value == "" && c.MaxAge < 0 {
			return
		}
	}
	t.Errorf("%s: Set-Cookie %d lines, want the session cookie cleared", step, len(res.Header.Values("Set-Cookie")))
}

const (
	usedPage    = "This link has already been used."
	revokedPage = "This link is no longer valid."
)

func TestIntegrationOnceFileStore(t *testing.T) {
	keys := newGWKeys(t)
	upstream := newUpstream(t)
	dir := t.TempDir()
	db := filepath.Join(dir, "state.db")
	secret := "\t\tsession_secret " + gwSecret + "\n"
	redirect := site{port: freePort(), block: gatewayBlock(keys.keyFile, upstream, secret+"\t\tonce\n")}
	confirm := site{port: freePort(), block: gatewayBlock(keys.keyFile, upstream, secret+"\t\tonce\n\t\tredeem confirm\n")}
	claimed := site{port: freePort(), block: gatewayBlock(keys.keyFile, upstream, secret)}
	caddyfile := startCaddyWith(t, dir, storeGlobal(db), redirect, confirm, claimed)

	tok := keys.link(t, nil)
	target := "/orders?token=" + tok

	// Neither HEAD nor the confirm page uses the link up.
	res, _ := fetch(t, browser(t), http.MethodHead, redirect.url(target), nil)
	wantNoSession(t, "HEAD", res)
	res, body := fetch(t, browser(t), http.MethodGet, confirm.url(target), nil)
	if res.StatusCode != http.StatusOK || !strings.Contains(body, "<form") {
		t.Errorf("confirm page: status %d; want 200 with a form", res.StatusCode)
	}
	wantNoSession(t, "confirm page", res)

	first := browser(t)
	res, _ = fetch(t, first, http.MethodGet, redirect.url(target), nil)
	if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/orders" {
		t.Fatalf("first use: status %d, Location %q; want 303 to /orders", res.StatusCode, res.Header.Get("Location"))
	}
	responseCookie(t, res, DefaultInsecureCookie)

	// again checks that another browser is told the link was used, and that the browser it signed
	// in clicking it again gets the same redirect and no new session.
	again := func(step string) {
		t.Helper()
		res, body := fetch(t, browser(t), http.MethodGet, redirect.url(target), nil)
		wantPage(t, step+": another browser", res, body, http.StatusUnauthorized, usedPage)
		wantNoSession(t, step+": another browser", res)
		res, body = fetch(t, browser(t), http.MethodPost, confirm.url(target), http.Header{"Origin": {confirm.url("")}})
		wantPage(t, step+": another browser confirming", res, body, http.StatusUnauthorized, usedPage)
		wantNoSession(t, step+": another browser confirming", res)
		res, _ = fetch(t, first, http.MethodGet, redirect.url(target), nil)
		if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/orders" || len(res.Header.Values("Set-Cookie")) != 0 {
			t.Errorf("%s: the same browser: status %d, Location %q, %d Set-Cookie; want 303 to /orders and no cookie",
				step, res.StatusCode, res.Header.Get("Location"), len(res.Header.Values("Set-Cookie")))
		}
		if e := upstreamSaw(t, first, redirect.url("/orders"), nil); e.User != "alice" {
			t.Errorf("%s: the session of the first use: upstream saw %+v, want alice", step, e)
		}
	}
	again("second use")

	// A link with the claim once is one-time on a site without the once subdirective.
	onceTok := keys.link(t, func(c *token.Claims) { c.Once = true })
	if res, _ := fetch(t, browser(t), http.MethodGet, claimed.url("/?token="+onceTok), nil); res.StatusCode != http.StatusSeeOther {
		t.Errorf("claim once, first use: status %d, want 303", res.StatusCode)
	}
	res, body = fetch(t, browser(t), http.MethodGet, claimed.url("/?token="+onceTok), nil)
	wantPage(t, "claim once, second use", res, body, http.StatusUnauthorized, usedPage)
	plain := keys.link(t, nil)
	for i := range 2 {
		if res, _ := fetch(t, browser(t), http.MethodGet, claimed.url("/?token="+plain), nil); res.StatusCode != http.StatusSeeOther {
			t.Errorf("a link without once on a site without once, use %d: status %d, want 303", i+1, res.StatusCode)
		}
	}

	// A reload keeps the one store: reopening the file would wait for the lock the running
	// configuration holds, and fail.
	if status, body := adminDo(t, http.MethodPost, "/load", "text/caddyfile", caddyfile); status != http.StatusOK {
		t.Fatalf("reload: status %d: %s", status, body)
	}
	if stores, refs := openStates(); stores != 1 || refs != 1 {
		t.Errorf("after the reload: %d stores open with %d users, want 1 with 1", stores, refs)
	}
	again("after a reload")
	retimed := strings.Replace(caddyfile, "\t\tstore file "+db+"\n", "\t\tstore file "+db+"\n\t\ttimeout 3s\n", 1)
	if status, body := adminDo(t, http.MethodPost, "/load", "text/caddyfile", retimed); status != http.StatusOK {
		t.Fatalf("reload with another timeout: status %d: %s", status, body)
	}
	if stores, refs := openStates(); stores != 1 || refs != 1 {
		t.Errorf("after a reload with another timeout: %d stores open with %d users, want 1 with 1", stores, refs)
	}
	again("after a reload with another timeout")
	fresh := keys.link(t, nil)
	if res, _ := fetch(t, browser(t), http.MethodGet, redirect.url("/?token="+fresh), nil); res.StatusCode != http.StatusSeeOther {
		t.Errorf("a new link after the reload: status %d, want 303", res.StatusCode)
	}

	// Caddy stops (a configuration without the app closes the store) and starts again on the
	// same file.
	startCaddy(t, dir, site{port: freePort(), block: "\trespond ok\n"})
	if stores, _ := openStates(); stores != 0 {
		t.Fatalf("without the app: %d stores open, want 0", stores)
	}
	startCaddyWith(t, dir, storeGlobal(db), redirect, confirm, claimed)
	again("after a restart")
	res, body = fetch(t, browser(t), http.MethodGet, redirect.url("/?token="+fresh), nil)
	wantPage(t, "the new link after a restart", res, body, http.StatusUnauthorized, usedPage)
}

// revoke posts body to the revoke endpoint at addr and fails unless it answers 200.
func revoke(t *testing.T, addr, body string) {
	t.Helper()
	if status, res := adminDoAt(t, addr, http.MethodPost, "/magic_link/revoke", "application/json", body); status != http.StatusOK {
		t.Fatalf("revoke %s: status %d: %s", body, status, res)
	}
}

func TestIntegrationRevoke(t *testing.T) {
	keys := newGWKeys(t)
	upstream := newUpstream(t)
	dir := t.TempDir()
	gw := site{port: freePort(), block: gatewayBlock(keys.keyFile, upstream, "\t\tsession_secret "+gwSecret+"\n")}
	startCaddyWith(t, dir, storeGlobal(filepath.Join(dir, "state.db")), gw)
	admin := fmt.Sprintf("localhost:%d", adminPort())

	signIn := func(tok string) *http.Client {
		t.Helper()
		c := browser(t)
		if res, _ := fetch(t, c, http.MethodGet, gw.url("/?token="+tok), nil); res.StatusCode != http.StatusSeeOther {
			t.Fatalf("sign-in: status %d, want 303", res.StatusCode)
		}
		return c
	}
	wantRevoked := func(step string, c *http.Client, target string) {
		t.Helper()
		res, body := fetch(t, c, http.MethodGet, gw.url(target), nil)
		wantPage(t, step, res, body, http.StatusUnauthorized, revokedPage)
		wantNoSession(t, step, res)
	}

	t.Run("jti", func(t *testing.T) {
		tok := keys.link(t, func(c *token.Claims) { c.ID = "link-revoked" })
		c := signIn(tok)
		other := signIn(keys.link(t, nil))
		revoke(t, admin, `{"jti":"link-revoked"}`)

		res, body := fetch(t, c, http.MethodGet, gw.url("/"), nil)
		wantPage(t, "the session the link opened", res, body, http.StatusUnauthorized, revokedPage)
		wantClearedCookie(t, "the session the link opened", res)
		wantRevoked("the link", browser(t), "/?token="+tok)
		if e := upstreamSaw(t, other, gw.url("/"), nil); e.User != "alice" {
			t.Errorf("a session of another link of the same user: upstream saw %+v, want alice", e)
		}
	})

	t.Run("sub", func(t *testing.T) {
		bob := func(c *token.Claims) { c.Subject, c.Email, c.Name = "bob", "", "" }
		unused := keys.link(t, bob)
		c := signIn(keys.link(t, bob))
		carol := signIn(keys.link(t, func(c *token.Claims) { c.Subject = "carol" }))
		revoke(t, admin, `{"sub":"bob"}`)

		wantRevoked("bob's session", c, "/")
		wantRevoked("bob's link issued before", browser(t), "/?token="+unused)
		if e := upstreamSaw(t, carol, gw.url("/"), nil); e.User != "carol" {
			t.Errorf("another user's session: upstream saw %+v, want carol", e)
		}
		// A link's iat is in whole seconds: one issued in the second of the revocation is revoked.
		time.Sleep(time.Until(time.Now().Truncate(time.Second).Add(time.Second)))
		after := signIn(keys.link(t, bob))
		if e := upstreamSaw(t, after, gw.url("/"), nil); e.User != "bob" {
			t.Errorf("bob's link issued after: upstream saw %+v, want bob", e)
		}
	})

	held := revocationsHeld(t, admin)
	if strings.Join(held, ",") != "jti link-revoked,sub bob" {
		t.Errorf("revocations = %q, want the jti and the sub", held)
	}

	t.Run("bad requests", func(t *testing.T) {
		for _, tc := range []struct {
			name, method, path, body string
			status                   int
		}{
			{"not JSON", http.MethodPost, "/magic_link/revoke", `jti=x`, http.StatusBadRequest},
			{"empty body", http.MethodPost, "/magic_link/revoke", ``, http.StatusBadRequest},
			{"not an object", http.MethodPost, "/magic_link/revoke", `["x"]`, http.StatusBadRequest},
			{"empty jti", http.MethodPost, "/magic_link/revoke", `{"jti":""}`, http.StatusBadRequest},
			{"empty sub", http.MethodPost, "/magic_link/revoke", `{"sub":""}`, http.StatusBadRequest},
			{"null jti", http.MethodPost, "/magic_link/revoke", `{"jti":null}`, http.StatusBadRequest},
			{"no id", http.MethodPost, "/magic_link/revoke", `{}`, http.StatusBadRequest},
			{"both", http.MethodPost, "/magic_link/revoke", `{"jti":"x","sub":"y"}`, http.StatusBadRequest},
			{"unknown field", http.MethodPost, "/magic_link/revoke", `{"jti":"x","reason":"y"}`, http.StatusBadRequest},
			{"two values", http.MethodPost, "/magic_link/revoke", `{"jti":"x"}{"sub":"y"}`, http.StatusBadRequest},
			{"control character", http.MethodPost, "/magic_link/revoke", `{"sub":"a\nb"}`, http.StatusBadRequest},
			{"too long", http.MethodPost, "/magic_link/revoke", `{"sub":"` + strings.Repeat("x", 256) + `"}`, http.StatusBadRequest},
			{"over 64 KiB", http.MethodPost, "/magic_link/revoke", `{"jti":"` + strings.Repeat("x", 64<<10) + `"}`, http.StatusRequestEntityTooLarge},
			{"GET revoke", http.MethodGet, "/magic_link/revoke", ``, http.StatusMethodNotAllowed},
			{"POST revocations", http.MethodPost, "/magic_link/revocations", `{"jti":"x"}`, http.StatusMethodNotAllowed},
		} {
			status, body := adminDoAt(t, admin, tc.method, tc.path, "application/json", tc.body)
			msg := adminErrorMessage(t, body)
			if status != tc.status || strings.ContainsAny(msg, "\r\n") || strings.Contains(msg, strings.Repeat("x", 100)) {
				t.Errorf("%s: status %d, message %q; want %d and one short line", tc.name, status, msg, tc.status)
			}
		}
		if after := revocationsHeld(t, admin); strings.Join(after, ",") != strings.Join(held, ",") {
			t.Errorf("after the bad requests: revocations = %q, want %q", after, held)
		}
	})
}

func TestIntegrationLogout(t *testing.T) {
	keys := newGWKeys(t)
	upstream := newUpstream(t)
	data := t.TempDir()
	t.Setenv("XDG_DATA_HOME", data)
	// The handler under /strict/ is provisioned first, before the one that loads the app: it
	// checks revocations all the same.
	gw := site{port: freePort(), block: "\thandle /strict/* {\n" +
		gatewayBlock(keys.keyFile, upstream, "\t\tsession_secret "+gwSecret+"\n") + "\t}\n\thandle {\n" +
		gatewayBlock(keys.keyFile, upstream, "\t\tsession_secret "+gwSecret+"\n\t\tlogout /logout /bye\n\t\tunauthenticated pass\n") +
		"\t}\n"}
	startCaddy(t, t.TempDir(), gw)
	if _, err := os.Stat(filepath.Join(data, "caddy", "magic_link", "state.db")); err != nil {
		t.Errorf("logout without a global option: the default store file: %v", err)
	}

	tok := keys.link(t, nil)
	c := browser(t)
	res, _ := fetch(t, c, http.MethodGet, gw.url("/?token="+tok), nil)
	if res.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign-in: status %d, want 303", res.StatusCode)
	}
	cookie := responseCookie(t, res, DefaultInsecureCookie)
	old := http.Header{"Cookie": {cookie.Name + "=" + cookie.Value}}
	if e := upstreamSaw(t, c, gw.url("/"), nil); e.User != "alice" {
		t.Fatalf("signed in: upstream saw %+v, want alice", e)
	}

	res, _ = fetch(t, c, http.MethodGet, gw.url("/logout"), nil)
	if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/bye" {
		t.Errorf("logout: status %d, Location %q; want 303 to /bye", res.StatusCode, res.Header.Get("Location"))
	}
	wantClearedCookie(t, "logout", res)
	if e := upstreamSaw(t, c, gw.url("/"), nil); e.User != "" {
		t.Errorf("after logout: upstream saw %+v, want no identity", e)
	}

	// The old cookie, replayed, is no session: here or on a site that denies.
	if e := upstreamSaw(t, browser(t), gw.url("/"), old); e.User != "" {
		t.Errorf("the old cookie replayed: upstream saw %+v, want no identity", e)
	}
	res, body := fetch(t, browser(t), http.MethodGet, gw.url("/strict/"), old)
	wantPage(t, "the old cookie replayed where sessions are required", res, body, http.StatusUnauthorized, revokedPage)
	wantClearedCookie(t, "the old cookie replayed where sessions are required", res)

	// The link is not revoked: it opens a new session.
	again := browser(t)
	if res, _ := fetch(t, again, http.MethodGet, gw.url("/?token="+tok), nil); res.StatusCode != http.StatusSeeOther {
		t.Fatalf("the link after logout: status %d, want 303", res.StatusCode)
	}
	if e := upstreamSaw(t, again, gw.url("/"), nil); e.User != "alice" {
		t.Errorf("the new session: upstream saw %+v, want alice", e)
	}
}

func TestIntegrationStatelessNoStore(t *testing.T) {
	keys := newGWKeys(t)
	upstream := newUpstream(t)
	data, storage := t.TempDir(), t.TempDir()
	t.Setenv("XDG_DATA_HOME", data)
	gw := site{port: freePort(), block: gatewayBlock(keys.keyFile, upstream, "\t\tsession_secret "+gwSecret+"\n")}
	startCaddy(t, storage, gw)

	c := browser(t)
	if res, _ := fetch(t, c, http.MethodGet, gw.url("/?token="+keys.link(t, nil)), nil); res.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign-in: status %d, want 303", res.StatusCode)
	}
	if e := upstreamSaw(t, c, gw.url("/"), nil); e.User != "alice" {
		t.Errorf("session: upstream saw %+v, want alice", e)
	}
	for _, path := range []string{"/magic_link/revoke", "/magic_link/revocations"} {
		method := http.MethodGet
		if path == "/magic_link/revoke" {
			method = http.MethodPost
		}
		status, body := adminDo(t, method, path, "application/json", `{"jti":"x"}`)
		if msg := adminErrorMessage(t, body); status != http.StatusNotFound || !strings.Contains(msg, "not running") {
			t.Errorf("%s %s without the app: status %d, %q; want 404 saying the app is not running", method, path, status, msg)
		}
	}
	if stores, _ := openStates(); stores != 0 {
		t.Errorf("%d stores open, want none", stores)
	}
	for _, root := range []string{data, storage} {
		err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if strings.Contains(d.Name(), "magic_link") || strings.HasSuffix(d.Name(), ".db") {
				t.Errorf("a stateless site created %s", path)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
}
