package caddymodule

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2/caddytest"

	"github.com/magiclink-dev/magiclink/internal/freeport"
	"github.com/magiclink-dev/magiclink/token"
)

// testTemp is a temporary directory that lives as long as the test binary.
var testTemp string

// TestMain keeps the Caddy that the integration tests start in this process away from the user's
// configuration and data directories.
func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "caddymodule-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	testTemp = dir
	for _, v := range []string{"XDG_CONFIG_HOME", "XDG_DATA_HOME"} {
		if err := os.Setenv(v, filepath.Join(dir, v)); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// adminPort is the loopback port of the admin endpoint of the Caddy the integration tests run.
var adminPort = sync.OnceValue(freePort)

// freePort returns a TCP port on 127.0.0.1 that was free a moment ago and that no other test of
// this process was given.
func freePort() int {
	port, err := freeport.Take()
	if err != nil {
		panic(err)
	}
	return port
}

// echo is what the test upstream answers: the identity headers, the request URI, the Remote-User
// trailer and the Cookie header lines (joined by newlines) it received, and every other spelling
// of an identity header (in headers or trailers) as sorted "Name=value" lines.
type echo struct {
	User, Email, Name, URI, TrailerUser, Cookie, Spoofed string
}

// identityNames are the identity header names of the integration tests, lowercase with '-'.
var identityNames = []string{"remote-user", "remote-email", "remote-name", "x-user"}

// spoofed lists the fields of h whose names spell an identity header, except those in canonical.
func spoofed(h http.Header, canonical ...string) []string {
	var out []string
	for name, values := range h {
		if !slices.Contains(identityNames, strings.ReplaceAll(strings.ToLower(name), "_", "-")) ||
			slices.Contains(canonical, name) {
			continue
		}
		for _, v := range values {
			out = append(out, name+"="+v)
		}
	}
	slices.Sort(out)
	return out
}

// newUpstream starts an app on loopback that answers every request with an echo as JSON.
func newUpstream(t *testing.T) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body) // the trailers arrive at the end of the body
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(echo{
			User:        r.Header.Get("Remote-User"),
			Email:       r.Header.Get("Remote-Email"),
			Name:        r.Header.Get("Remote-Name"),
			URI:         r.RequestURI,
			TrailerUser: r.Trailer.Get("Remote-User"),
			Cookie:      strings.Join(r.Header["Cookie"], "\n"),
			Spoofed: strings.Join(append(spoofed(r.Header, "Remote-User", "Remote-Email", "Remote-Name"),
				spoofed(r.Trailer)...), "\n"),
		})
	}))
	t.Cleanup(srv.Close)
	return srv.Listener.Addr().String()
}

// site is one site block of an integration test's Caddyfile.
type site struct {
	port  int
	block string // the lines inside the site block
}

func (s site) url(target string) string {
	return fmt.Sprintf("http://127.0.0.1:%d%s", s.port, target)
}

// startCaddy loads a Caddyfile with the sites into the in-process Caddy, with its storage in
// storageDir.
func startCaddy(t *testing.T, storageDir string, sites ...site) {
	t.Helper()
	startCaddyWith(t, storageDir, "", sites...)
}

// startCaddyWith is startCaddy with more global options (whole lines), and returns the Caddyfile
// it loaded.
func startCaddyWith(t *testing.T, storageDir, global string, sites ...site) string {
	t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "{\n\tadmin localhost:%d\n\tpersist_config off\n\tauto_https off\n\tstorage file_system %s\n\tlog {\n\t\toutput discard\n\t}\n%s}\n",
		adminPort(), storageDir, global)
	for _, s := range sites {
		fmt.Fprintf(&b, "\nhttp://127.0.0.1:%d {\n%s}\n", s.port, s.block)
	}
	tester := caddytest.NewTester(t).WithDefaultOverrides(caddytest.Config{AdminPort: adminPort()})
	tester.InitServer(b.String(), "caddyfile")
	if t.Failed() {
		t.FailNow()
	}
	return b.String()
}

// gatewayBlock is a site block with magic_link (plus extra subdirectives) in front of upstream.
func gatewayBlock(keyFile, upstream, extra string) string {
	return fmt.Sprintf("\tmagic_link {\n\t\tkeys %s\n\t\taudience %s\n\t\tinsecure_cookie\n%s\t}\n\treverse_proxy %s\n",
		keyFile, gwAudience, extra, upstream)
}

// browser is an HTTP client with a cookie jar that does not follow redirects, so each step can be
// checked.
func browser(t *testing.T) *http.Client {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &http.Client{
		Jar:           jar,
		Timeout:       5 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// fetch sends a request with the given headers and returns the response and its body.
func fetch(t *testing.T, c *http.Client, method, url string, header http.Header) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	res, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return res, readBody(t, res)
}

// readBody reads and closes the body of res.
func readBody(t *testing.T, res *http.Response) string {
	t.Helper()
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(body)
}

// upstreamSaw GETs url with the given headers and decodes the upstream's echo from the response,
// which must be a 200 from the upstream.
func upstreamSaw(t *testing.T, c *http.Client, url string, header http.Header) echo {
	t.Helper()
	res, body := fetch(t, c, http.MethodGet, url, header)
	if res.StatusCode != http.StatusOK {
		t.Fatalf("status %d (%s), want the upstream's 200", res.StatusCode, body)
	}
	var e echo
	if err := json.Unmarshal([]byte(body), &e); err != nil {
		t.Fatalf("not the upstream's answer: %q", body)
	}
	return e
}

// responseCookie returns the cookie called name that res sets, or fails.
func responseCookie(t *testing.T, res *http.Response, name string) *http.Cookie {
	t.Helper()
	for _, c := range res.Cookies() {
		if c.Name == name {
			return c
		}
	}
	t.Fatalf("no %s cookie in %q", name, res.Header.Values("Set-Cookie"))
	return nil
}

func TestIntegrationFlow(t *testing.T) {
	keys := newGWKeys(t)
	upstream := newUpstream(t)
	redirect := site{port: freePort(), block: gatewayBlock(keys.keyFile, upstream, "\t\tsession_secret "+gwSecret+"\n")}
	short := site{port: freePort(), block: gatewayBlock(keys.keyFile, upstream,
		"\t\tsession_secret "+gwSecret+"\n\t\tsession_ttl 1s\n")}
	confirm := site{port: freePort(), block: gatewayBlock(keys.keyFile, upstream,
		"\t\tsession_secret "+gwSecret+"\n\t\tredeem confirm\n")}
	startCaddy(t, t.TempDir(), redirect, short, confirm)

	t.Run("redirect", func(t *testing.T) {
		c := browser(t)
		tok := keys.link(t, nil)
		res, _ := fetch(t, c, http.MethodGet, redirect.url("/welcome?a=1&token="+tok+"&b=2"), nil)
		if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/welcome?a=1&b=2" {
			t.Fatalf("click: status %d, Location %q; want 303 to /welcome?a=1&b=2", res.StatusCode, res.Header.Get("Location"))
		}
		responseCookie(t, res, DefaultInsecureCookie)

		spoof := http.Header{"Remote-User": {"admin"}}
		for _, step := range []string{"follow", "reload"} {
			e := upstreamSaw(t, c, redirect.url(res.Header.Get("Location")), spoof)
			if e != (echo{User: "alice", Email: "alice@example.com", Name: "Alice", URI: "/welcome?a=1&b=2"}) {
				t.Errorf("%s: upstream saw %+v, want alice's identity and no token", step, e)
			}
		}

		res, body := fetch(t, browser(t), http.MethodGet, redirect.url("/welcome"), nil)
		if res.StatusCode != http.StatusUnauthorized || !strings.Contains(body, "Sign in with the link from your email.") {
			t.Errorf("without a session: status %d, body %q; want the built-in 401 page", res.StatusCode, body)
		}
	})

	t.Run("expired session is cleared", func(t *testing.T) {
		res, _ := fetch(t, browser(t), http.MethodGet, short.url("/?token="+keys.link(t, nil)), nil)
		stale := responseCookie(t, res, DefaultInsecureCookie)
		if stale.MaxAge != 1 {
			t.Errorf("Max-Age = %d, want 1", stale.MaxAge)
		}
		time.Sleep(2 * time.Second)
		res, _ = fetch(t, browser(t), http.MethodGet, short.url("/"), http.Header{"Cookie": {stale.Name + "=" + stale.Value}})
		if res.StatusCode != http.StatusUnauthorized {
			t.Errorf("expired session: status %d, want 401", res.StatusCode)
		}
		if cleared := responseCookie(t, res, DefaultInsecureCookie); cleared.Value != "" || cleared.MaxAge >= 0 {
			t.Errorf("expired session: Set-Cookie %q, want the cookie cleared", res.Header.Values("Set-Cookie"))
		}
	})

	t.Run("confirm", func(t *testing.T) {
		c := browser(t)
		tok := keys.link(t, nil)
		res, body := fetch(t, c, http.MethodGet, confirm.url("/cart?token="+tok), nil)
		if res.StatusCode != http.StatusOK || len(res.Cookies()) != 0 ||
			!strings.Contains(body, `<form method="post" action="/cart?token=`+tok+`"`) {
			t.Fatalf("GET: status %d, cookies %q, body %q; want the confirmation page and no cookie",
				res.StatusCode, res.Header.Values("Set-Cookie"), body)
		}
		res, _ = fetch(t, c, http.MethodPost, confirm.url("/cart?token="+tok), http.Header{"Origin": {confirm.url("")}})
		if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/cart" {
			t.Fatalf("POST: status %d, Location %q; want 303 to /cart", res.StatusCode, res.Header.Get("Location"))
		}
		responseCookie(t, res, DefaultInsecureCookie)
		if e := upstreamSaw(t, c, confirm.url("/cart"), nil); e.User != "alice" {
			t.Errorf("after confirming: upstream saw %+v, want alice", e)
		}
	})
}

func TestIntegrationSharedSecret(t *testing.T) {
	keys := newGWKeys(t)
	upstream := newUpstream(t)
	same := "\t\tsession_secret " + gwSecret + "\n"
	a := site{port: freePort(), block: gatewayBlock(keys.keyFile, upstream, same)}
	b := site{port: freePort(), block: gatewayBlock(keys.keyFile, upstream, same)}
	other := site{port: freePort(), block: gatewayBlock(keys.keyFile, upstream, "\t\tsession_secret "+strings.Repeat("q", 40)+"\n")}
	startCaddy(t, t.TempDir(), a, b, other)

	res, _ := fetch(t, browser(t), http.MethodGet, a.url("/?token="+keys.link(t, nil)), nil)
	cookie := responseCookie(t, res, DefaultInsecureCookie)
	header := http.Header{"Cookie": {cookie.Name + "=" + cookie.Value}}

	header.Add("Cookie", "theme=dark")
	if e := upstreamSaw(t, browser(t), b.url("/"), header); e.User != "alice" || e.Cookie != "theme=dark" {
		t.Errorf("same secret: upstream saw %+v, want alice and only the app's cookie", e)
	}
	res, _ = fetch(t, browser(t), http.MethodGet, other.url("/"), header)
	if res.StatusCode != http.StatusUnauthorized {
		t.Errorf("different secret: status %d, want 401", res.StatusCode)
	}
	if cleared := responseCookie(t, res, DefaultInsecureCookie); cleared.MaxAge >= 0 {
		t.Errorf("different secret: Set-Cookie %q, want the foreign cookie cleared", res.Header.Values("Set-Cookie"))
	}
}

func TestIntegrationStoredSecret(t *testing.T) {
	keys := newGWKeys(t)
	upstream := newUpstream(t)
	storage := t.TempDir()
	port := freePort()
	withTTL := func(ttl string) site {
		return site{port: port, block: gatewayBlock(keys.keyFile, upstream, "\t\tsession_ttl "+ttl+"\n")}
	}

	startCaddy(t, storage, withTTL("24h"))
	res, _ := fetch(t, browser(t), http.MethodGet, withTTL("").url("/?token="+keys.link(t, nil)), nil)
	cookie := responseCookie(t, res, DefaultInsecureCookie)
	header := http.Header{"Cookie": {cookie.Name + "=" + cookie.Value}}
	stored, err := os.ReadFile(filepath.Join(storage, "magic_link", "session_secret"))
	if err != nil || len(stored) < minSessionSecret {
		t.Fatalf("no session secret of at least %d bytes in storage: %v", minSessionSecret, err)
	}

	// A new configuration provisions a new handler: it must find the same secret in storage.
	startCaddy(t, storage, withTTL("23h"))
	if e := upstreamSaw(t, browser(t), withTTL("").url("/"), header); e.User != "alice" {
		t.Errorf("after a reload: upstream saw %+v, want alice", e)
	}
	again, err := os.ReadFile(filepath.Join(storage, "magic_link", "session_secret"))
	if err != nil || string(again) != string(stored) {
		t.Errorf("the stored secret changed on reload")
	}

	// Other storage, other secret: the cookie is foreign there.
	startCaddy(t, t.TempDir(), withTTL("22h"))
	res, _ = fetch(t, browser(t), http.MethodGet, withTTL("").url("/"), header)
	if res.StatusCode != http.StatusUnauthorized {
		t.Errorf("with other storage: status %d, want 401", res.StatusCode)
	}
}

func TestIntegrationErrorPages(t *testing.T) {
	keys := newGWKeys(t)
	upstream := newUpstream(t)
	builtIn := site{port: freePort(), block: gatewayBlock(keys.keyFile, upstream, "\t\tsession_secret "+gwSecret+"\n")}
	custom := site{port: freePort(), block: gatewayBlock(keys.keyFile, upstream, "\t\tsession_secret "+gwSecret+"\n") +
		"\thandle_errors {\n\t\trespond \"custom page: {http.auth.magic_link.error}\" {err.status_code}\n\t}\n"}
	startCaddy(t, t.TempDir(), builtIn, custom)

	expired := keys.link(t, func(c *token.Claims) {
		c.IssuedAt = time.Now().Add(-2 * time.Hour)
		c.Expiry = time.Now().Add(-time.Hour)
	})
	scoped := keys.link(t, func(c *token.Claims) { c.Path = "/survey/42" })
	tests := []struct {
		name, target, builtIn, custom string
	}{
		{"expired", "/?token=" + expired, "This link has expired. Ask for a new one.", "custom page: expired"},
		{"invalid", "/?token=" + expired + "x", "This link is invalid.", "custom page: invalid"},
		{"outside scope", "/survey/42/../../admin?token=" + scoped, "This link is invalid.", "custom page: outside_scope"},
		{"no session", "/", "Sign in with the link from your email.", "custom page: unauthenticated"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, s := range []struct {
				site site
				want string
			}{{builtIn, tt.builtIn}, {custom, tt.custom}} {
				res, body := fetch(t, browser(t), http.MethodGet, s.site.url(tt.target), nil)
				if res.StatusCode != http.StatusUnauthorized || !strings.Contains(body, s.want) {
					t.Errorf("status %d, body %q; want 401 with %q", res.StatusCode, body, s.want)
				}
				if len(res.Cookies()) != 0 {
					t.Errorf("a rejection set cookies: %q", res.Header.Values("Set-Cookie"))
				}
			}
		})
	}
}

// rawRequest sends a request written out by hand to the site and returns the upstream's echo.
func rawRequest(t *testing.T, s site, request string) echo {
	t.Helper()
	res, body := rawResponse(t, s, request)
	var e echo
	if res.StatusCode != http.StatusOK || json.Unmarshal([]byte(body), &e) != nil {
		t.Fatalf("status %d (%s), want the upstream's 200", res.StatusCode, body)
	}
	return e
}

// rawResponse sends a request written out by hand to the site and returns the response and its
// body.
func rawResponse(t *testing.T, s site, request string) (*http.Response, string) {
	t.Helper()
	conn, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", s.port), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if err := conn.SetDeadline(time.Now().Add(5 * time.Second)); err != nil {
		t.Fatal(err)
	}
	if _, err := io.WriteString(conn, request); err != nil {
		t.Fatal(err)
	}
	res, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	return res, readBody(t, res)
}

func TestIntegrationIdentityTrailersRemoved(t *testing.T) {
	keys := newGWKeys(t)
	upstream := newUpstream(t)
	pass := site{port: freePort(), block: gatewayBlock(keys.keyFile, upstream, "\t\tsession_secret "+gwSecret+"\n\t\tunauthenticated pass\n")}
	startCaddy(t, t.TempDir(), pass)

	for _, tt := range []struct{ name, announce string }{
		{"announced", "Trailer: Remote-User\r\n"},
		{"announced with underscore", "Trailer: Remote_User\r\n"},
		{"not announced", ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := rawRequest(t, pass, "POST /form HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n"+
				tt.announce+"Connection: close\r\n\r\n5\r\nhello\r\n0\r\nRemote-User: admin\r\nRemote_User: admin\r\n\r\n")
			if e.User != "" || e.TrailerUser != "" {
				t.Errorf("upstream saw Remote-User %q and trailer %q; want neither", e.User, e.TrailerUser)
			}
		})
	}
}

// TestIntegrationErrorRoutesStripToken checks the configuration the README gives for error pages
// rendered by the app: Caddy runs handle_errors on the URL the request arrived with, from which
// the gateway removed the token, so the app sees the request without it.
func TestIntegrationErrorRoutesStripToken(t *testing.T) {
	keys := newGWKeys(t)
	upstream := newUpstream(t)
	block := gatewayBlock(keys.keyFile, upstream, "\t\tsession_secret "+gwSecret+"\n") +
		"\thandle_errors {\n\t\treverse_proxy " + upstream + "\n\t}\n"
	gw := site{port: freePort(), block: block}
	startCaddy(t, t.TempDir(), gw)

	scoped := keys.link(t, func(c *token.Claims) { c.Path = "/survey/42" })
	expired := keys.link(t, func(c *token.Claims) {
		c.IssuedAt, c.Expiry = time.Now().Add(-2*time.Hour), time.Now().Add(-time.Hour)
	})
	for _, tt := range []struct{ name, target, wantURI string }{
		{"outside its path", "/admin?a=1&token=" + scoped, "/admin?a=1"},
		{"expired", "/?token=" + expired + "&b=2", "/?b=2"},
		{"two token parameters", "/x?token=" + scoped + "&token=junk", "/x"},
		{"garbage", "/?token=not-a-token", "/"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			res, body := fetch(t, browser(t), http.MethodGet, gw.url(tt.target), nil)
			var e echo
			if err := json.Unmarshal([]byte(body), &e); err != nil {
				t.Fatalf("status %d (%s), want the error route's upstream answer", res.StatusCode, body)
			}
			if e.URI != tt.wantURI || e.User != "" {
				t.Errorf("error route upstream saw URI %q and user %q; want %q and none", e.URI, e.User, tt.wantURI)
			}
		})
	}
}

func TestIntegrationRawFragment(t *testing.T) {
	keys := newGWKeys(t)
	upstream := newUpstream(t)
	gw := site{port: freePort(), block: gatewayBlock(keys.keyFile, upstream, "\t\tunauthenticated pass\n")}
	startCaddy(t, t.TempDir(), gw)

	tok := keys.link(t, nil)
	host := fmt.Sprintf("127.0.0.1:%d", gw.port)
	for _, target := range []string{"http://" + host + "/#?token=" + tok, "/#?token=" + tok, "/welcome?a=1#&token=" + tok} {
		t.Run(strings.SplitN(target, "token=", 2)[0], func(t *testing.T) {
			res, body := rawResponse(t, gw, "GET "+target+" HTTP/1.1\r\nHost: "+host+"\r\nConnection: close\r\n\r\n")
			if res.StatusCode != http.StatusBadRequest || len(res.Cookies()) != 0 || strings.Contains(body, "URI") {
				t.Errorf("status %d, cookies %q, body %q; want 400 from the gateway and no cookie", res.StatusCode,
					res.Header.Values("Set-Cookie"), body)
			}
		})
	}
	if e := rawRequest(t, gw, "GET /welcome?a=1 HTTP/1.1\r\nHost: "+host+"\r\nConnection: close\r\n\r\n"); e.URI != "/welcome?a=1" {
		t.Errorf("a request without # reached the upstream as %q", e.URI)
	}
}

func TestIntegrationForwardedSessionHeaders(t *testing.T) {
	keys := newGWKeys(t)
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Referrer-Policy", "unsafe-url")
		w.Header().Set("Cache-Control", "public, max-age=600")
		_, _ = io.WriteString(w, "app")
	}))
	t.Cleanup(app.Close)
	up := app.Listener.Addr().String()
	forward := site{port: freePort(), block: gatewayBlock(keys.keyFile, up, "\t\tredeem forward\n")}
	redirect := site{port: freePort(), block: gatewayBlock(keys.keyFile, up, "")}
	startCaddy(t, t.TempDir(), forward, redirect)

	for _, tt := range []struct {
		name, method string
		site         site
	}{
		{"forward GET", http.MethodGet, forward},
		{"forward POST", http.MethodPost, forward},
		{"redirect POST", http.MethodPost, redirect},
	} {
		t.Run(tt.name, func(t *testing.T) {
			res, body := fetch(t, browser(t), tt.method, tt.site.url("/?token="+keys.link(t, nil)), nil)
			if res.StatusCode != http.StatusOK || body != "app" {
				t.Fatalf("status %d, body %q; want the app's 200", res.StatusCode, body)
			}
			responseCookie(t, res, DefaultInsecureCookie)
			if cc := res.Header.Values("Cache-Control"); !slices.Equal(cc, []string{"no-store"}) {
				t.Errorf("Cache-Control = %q, want no-store alone", cc)
			}
			if rp := res.Header.Values("Referrer-Policy"); !slices.Equal(rp, []string{"no-referrer"}) {
				t.Errorf("Referrer-Policy = %q, want no-referrer alone", rp)
			}
		})
	}
	t.Run("session without a new cookie", func(t *testing.T) {
		res, _ := fetch(t, browser(t), http.MethodGet, redirect.url("/?token="+keys.link(t, nil)), nil)
		cookie := responseCookie(t, res, DefaultInsecureCookie)
		res, _ = fetch(t, browser(t), http.MethodGet, redirect.url("/"), http.Header{"Cookie": {cookie.Name + "=" + cookie.Value}})
		if cc := res.Header.Get("Cache-Control"); cc != "public, max-age=600" {
			t.Errorf("Cache-Control = %q, want the app's own when no session is issued", cc)
		}
	})
}

func TestIntegrationOriginalRequest(t *testing.T) {
	keys := newGWKeys(t)
	upstream := newUpstream(t)
	gw := gatewayBlock(keys.keyFile, upstream, "\t\tsession_secret "+gwSecret+"\n")
	handlePath := site{port: freePort(), block: "\thandle_path /survey/* {\n" + gw + "\t}\n\thandle_path /admin/* {\n" + gw + "\t}\n"}
	stripPrefix := site{port: freePort(), block: "\turi strip_prefix /survey\n" + gw}
	rewrite := site{port: freePort(), block: "\trewrite /s/* /survey/42\n" + gw}
	confirm := site{port: freePort(), block: "\thandle_path /survey/* {\n" +
		gatewayBlock(keys.keyFile, upstream, "\t\tsession_secret "+gwSecret+"\n\t\tredeem confirm\n") + "\t}\n"}
	startCaddy(t, t.TempDir(), handlePath, stripPrefix, rewrite, confirm)

	sealer, _ := newGateway(t, keys, func(m *MagicLink) { m.InsecureCookie = true })
	session := func(path string) http.Header {
		return http.Header{"Cookie": {sessionCookie(t, sealer, aliceSession(path))}}
	}
	scoped := func(path string) string { return keys.link(t, func(c *token.Claims) { c.Path = path }) }

	for _, tt := range []struct {
		name     string
		site     site
		target   string // %s is a link scoped to scope
		scope    string
		location string // "" means the link is rejected as outside its path
	}{
		{"handle_path", handlePath, "/survey/42?a=1&token=%s", "/survey/42", "/survey/42?a=1"},
		{"handle_path, scope of the rewritten path", handlePath, "/survey/42?token=%s", "/42", ""},
		{"uri strip_prefix", stripPrefix, "/survey/42/q?token=%s&b=2", "/survey/42", "/survey/42/q?b=2"},
		{"uri strip_prefix, scope of the rewritten path", stripPrefix, "/survey/42?token=%s", "/42", ""},
		{"rewrite", rewrite, "/s/42?a=1&token=%s", "/s/42", "/s/42?a=1"},
		{"rewrite, scope of the rewritten path", rewrite, "/s/42?token=%s", "/survey/42", ""},
	} {
		t.Run("link, "+tt.name, func(t *testing.T) {
			res, body := fetch(t, browser(t), http.MethodGet, tt.site.url(strings.Replace(tt.target, "%s", scoped(tt.scope), 1)), nil)
			if tt.location == "" {
				if res.StatusCode != http.StatusUnauthorized || len(res.Cookies()) != 0 {
					t.Errorf("status %d, cookies %q; want 401 outside its path", res.StatusCode, res.Header.Values("Set-Cookie"))
				}
				return
			}
			if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != tt.location {
				t.Fatalf("status %d, Location %q (%s); want 303 to %s", res.StatusCode, res.Header.Get("Location"), body, tt.location)
			}
			responseCookie(t, res, DefaultInsecureCookie)
		})
	}

	for _, tt := range []struct {
		name    string
		site    site
		target  string
		scope   string
		seenURI string // "" means the session does not open
	}{
		{"handle_path", handlePath, "/survey/42/q", "/survey/42", "/42/q"},
		{"handle_path, scope of the rewritten path", handlePath, "/admin/42", "/42", ""},
		{"uri strip_prefix", stripPrefix, "/survey/42", "/survey/42", "/42"},
		{"uri strip_prefix, scope of the rewritten path", stripPrefix, "/survey/42", "/42", ""},
		{"rewrite", rewrite, "/s/42", "/s/42", "/survey/42"},
		{"rewrite, scope of the rewritten path", rewrite, "/s/42", "/survey/42", ""},
	} {
		t.Run("session, "+tt.name, func(t *testing.T) {
			if tt.seenURI == "" {
				res, _ := fetch(t, browser(t), http.MethodGet, tt.site.url(tt.target), session(tt.scope))
				if res.StatusCode != http.StatusUnauthorized {
					t.Errorf("status %d, want 401: the session's scope does not hold %s", res.StatusCode, tt.target)
				}
				return
			}
			if e := upstreamSaw(t, browser(t), tt.site.url(tt.target), session(tt.scope)); e.User != "alice" || e.URI != tt.seenURI {
				t.Errorf("upstream saw %+v, want alice at %s", e, tt.seenURI)
			}
		})
	}
	t.Run("confirm page posts to the URL as it arrived", func(t *testing.T) {
		tok := scoped("/survey/42")
		res, body := fetch(t, browser(t), http.MethodGet, confirm.url("/survey/42?a=1&token="+tok), nil)
		if action := `action="/survey/42?a=1&amp;token=` + tok + `"`; res.StatusCode != http.StatusOK || !strings.Contains(body, action) {
			t.Errorf("status %d, body %q; want the confirmation page with %s", res.StatusCode, body, action)
		}
	})

	t.Run("raw # before a rewrite", func(t *testing.T) {
		host := fmt.Sprintf("127.0.0.1:%d", rewrite.port)
		res, _ := rawResponse(t, rewrite, "GET /s/4#?token="+scoped("")+" HTTP/1.1\r\nHost: "+host+"\r\nConnection: close\r\n\r\n")
		if res.StatusCode != http.StatusBadRequest || len(res.Cookies()) != 0 {
			t.Errorf("status %d, cookies %q; want 400 and no cookie", res.StatusCode, res.Header.Values("Set-Cookie"))
		}
	})
}

// spoofHeaders are a client's claims to an identity, in every spelling an upstream may read.
var spoofHeaders = http.Header{
	"Remote-User": {"admin"}, "Remote_user": {"admin"}, "REMOTE_USER": {"admin"}, "remote-user": {"admin"},
	"Remote-Email": {"admin@example.com"}, "Remote_email": {"admin@example.com"},
	"Remote-Name": {"Admin"}, "Remote_name": {"Admin"},
	"X-User": {"admin"}, "X_user": {"admin"},
}

// spoofTrailers is the end of a chunked body whose trailers claim an identity in every spelling.
const spoofTrailers = "5\r\nhello\r\n0\r\nRemote-User: admin\r\nRemote_User: admin\r\nRemote-Email: admin@example.com\r\n" +
	"Remote_Email: admin@example.com\r\nRemote-Name: Admin\r\nRemote_Name: Admin\r\nX-User: admin\r\nX_User: admin\r\n\r\n"

// TestIntegrationMatcherIdentityHeaders checks that a client's identity headers are removed from
// requests that the matcher of magic_link skips, in every spelling, as headers and as trailers;
// with two magic_link directives, the second's removal must not undo the first's identity.
func TestIntegrationMatcherIdentityHeaders(t *testing.T) {
	keys := newGWKeys(t)
	upstream := newUpstream(t)
	secret := "\t\tsession_secret " + gwSecret + "\n"
	matched := fmt.Sprintf("\tmagic_link /account/* {\n\t\tkeys %s\n\t\taudience %s\n\t\tinsecure_cookie\n%s\t}\n",
		keys.keyFile, gwAudience, secret)
	other := fmt.Sprintf("\tmagic_link /other/* {\n\t\tkeys %s\n\t\taudience %s\n\t\tinsecure_cookie\n%s\t\theader_user X-User\n\t}\n",
		keys.keyFile, gwAudience, secret)
	one := site{port: freePort(), block: matched + "\treverse_proxy " + upstream + "\n"}
	two := site{port: freePort(), block: matched + other + "\treverse_proxy " + upstream + "\n"}
	startCaddy(t, t.TempDir(), one, two)

	// X-User is an identity header of the second site only. Caddy itself drops request headers
	// with an underscore (unless the server's expected_underscore_headers lists them), but not
	// trailers.
	for _, tt := range []struct {
		name                    string
		site                    site
		keptHeader, keptTrailer string // the spoofed fields no directive of the site names
	}{
		{"one directive", one, "X-User=admin", "X-User=admin\nX_user=admin"},
		{"two directives", two, "", ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := tt.site
			res, _ := fetch(t, browser(t), http.MethodGet, s.url("/account/home?token="+keys.link(t, nil)), nil)
			cookie := responseCookie(t, res, DefaultInsecureCookie)
			withCookie := spoofHeaders.Clone()
			withCookie.Set("Cookie", cookie.Name+"="+cookie.Value)

			e := upstreamSaw(t, browser(t), s.url("/account/home"), withCookie)
			if want := (echo{User: "alice", Email: "alice@example.com", Name: "Alice", URI: "/account/home", Spoofed: tt.keptHeader}); e != want {
				t.Errorf("matched request: upstream saw %+v, want %+v", e, want)
			}
			for _, path := range []string{"/public", "/account", "/accounts", "/other"} {
				for _, h := range []http.Header{spoofHeaders, withCookie} {
					if e := upstreamSaw(t, browser(t), s.url(path), h); e.User != "" || e.Email != "" || e.Name != "" || e.Spoofed != tt.keptHeader {
						t.Errorf("%s, skipped by the matcher: upstream saw %+v, want no identity header", path, e)
					}
				}
				e := rawRequest(t, s, "POST "+path+" HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n"+
					"Trailer: Remote-User, Remote_User\r\nConnection: close\r\n\r\n"+spoofTrailers)
				if e.TrailerUser != "" || e.Spoofed != tt.keptTrailer {
					t.Errorf("%s, skipped by the matcher: upstream saw trailers %q %q, want none", path, e.TrailerUser, e.Spoofed)
				}
			}
		})
	}
}

// TestIntegrationCaddyfileExample runs Caddyfile.example in a real Caddy, with a fresh key, a free
// port and the test upstream in place of the demo's: a link signs in, and a rejected link gets the
// example's own error page, with the headers against framing and sniffing that the built-in pages
// carry.
func TestIntegrationCaddyfileExample(t *testing.T) {
	example, err := os.ReadFile(filepath.Join("..", "Caddyfile.example"))
	if err != nil {
		t.Fatal(err)
	}
	keys := newGWKeys(t)
	upstream := newUpstream(t)
	s := site{port: freePort()}
	origin := s.url("")
	config := string(example)
	for _, r := range [][2]string{{"./demo.public.jwks", keys.keyFile}, {"http://localhost:8080", origin}, {"127.0.0.1:9000", upstream}} {
		if !strings.Contains(config, r[0]) {
			t.Fatalf("Caddyfile.example no longer holds %q", r[0])
		}
		config = strings.ReplaceAll(config, r[0], r[1])
	}
	// Caddy may still write to its storage after the test; TestMain removes this directory.
	storage := filepath.Join(os.Getenv("XDG_DATA_HOME"), "caddyfile-example")
	global := fmt.Sprintf("{\n\tadmin localhost:%d\n\tpersist_config off\n\tauto_https off\n\tstorage file_system %s\n\tlog {\n\t\toutput discard\n\t}\n}\n",
		adminPort(), storage)
	caddytest.NewTester(t).WithDefaultOverrides(caddytest.Config{AdminPort: adminPort()}).InitServer(global+config, "caddyfile")
	if t.Failed() {
		t.FailNow()
	}

	c := browser(t)
	res, _ := fetch(t, c, http.MethodGet, s.url("/welcome?token="+keys.link(t, func(c *token.Claims) { c.Audience = []string{origin} })), nil)
	if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/welcome" {
		t.Fatalf("link: status %d, Location %q; want 303 to /welcome", res.StatusCode, res.Header.Get("Location"))
	}
	if e := upstreamSaw(t, c, s.url("/welcome"), nil); e.User != "alice" {
		t.Errorf("after the link: upstream saw %+v, want alice", e)
	}

	expired := keys.link(t, func(c *token.Claims) {
		c.Audience = []string{origin}
		c.IssuedAt, c.Expiry = time.Now().Add(-2*time.Hour), time.Now().Add(-time.Hour)
	})
	res, body := fetch(t, browser(t), http.MethodGet, s.url("/?token="+expired), nil)
	if res.StatusCode != http.StatusUnauthorized || !strings.Contains(body, "This link has expired. Ask for a new one by email.") {
		t.Errorf("expired link: status %d, body %q; want the example's 401 page", res.StatusCode, body)
	}
	for name, want := range map[string]string{"X-Frame-Options": "DENY", "X-Content-Type-Options": "nosniff", "Cache-Control": "no-store"} {
		if got := res.Header.Get(name); got != want {
			t.Errorf("expired link: %s = %q, want %q", name, got, want)
		}
	}
}
