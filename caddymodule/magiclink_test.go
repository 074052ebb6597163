package caddymodule

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/magiclink-dev/magiclink/token"
)

func TestRedeem(t *testing.T) {
	keys := newGWKeys(t)
	tests := []struct {
		name   string
		redeem string
		method string
		target string // %s is the token
		// what should happen
		status       int
		location     string
		upstream     bool
		upstreamURI  string
		newSession   bool
		confirmation bool
	}{
		{name: "GET redirect", redeem: RedeemRedirect, method: http.MethodGet, target: "/cart?a=1&token=%s&b=2",
			status: http.StatusSeeOther, location: "/cart?a=1&b=2", newSession: true},
		{name: "GET default mode redirects", method: http.MethodGet, target: "/cart?token=%s",
			status: http.StatusSeeOther, location: "/cart", newSession: true},
		{name: "GET confirm", redeem: RedeemConfirm, method: http.MethodGet, target: "/cart?a=1&token=%s",
			status: http.StatusOK, confirmation: true},
		{name: "POST confirm", redeem: RedeemConfirm, method: http.MethodPost, target: "/cart?a=1&token=%s",
			status: http.StatusSeeOther, location: "/cart?a=1", newSession: true},
		{name: "GET forward", redeem: RedeemForward, method: http.MethodGet, target: "/cart?a=1&token=%s&b=2",
			status: http.StatusOK, upstream: true, upstreamURI: "/cart?a=1&b=2", newSession: true},
		{name: "POST redirect forwards", redeem: RedeemRedirect, method: http.MethodPost, target: "/api?token=%s",
			status: http.StatusOK, upstream: true, upstreamURI: "/api", newSession: true},
		{name: "PUT redirect forwards", redeem: RedeemRedirect, method: http.MethodPut, target: "/api?token=%s&x=y",
			status: http.StatusOK, upstream: true, upstreamURI: "/api?x=y", newSession: true},
		{name: "DELETE forward", redeem: RedeemForward, method: http.MethodDelete, target: "/api/1?token=%s",
			status: http.StatusOK, upstream: true, upstreamURI: "/api/1", newSession: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, _ := newGateway(t, keys, func(m *MagicLink) { m.Redeem = tt.redeem })
			tok := keys.link(t, nil)
			r := newGWRequest(tt.method, strings.Replace(tt.target, "%s", tok, 1))
			r.Header.Set("Sec-Fetch-Site", "same-origin")
			res := serve(m, r)
			if res.err != nil {
				t.Fatal(res.err)
			}
			if res.rec.Code != tt.status {
				t.Fatalf("status = %d, want %d", res.rec.Code, tt.status)
			}
			if got := res.rec.Header().Get("Location"); got != tt.location {
				t.Errorf("Location = %q, want %q", got, tt.location)
			}
			if res.up.called != tt.upstream {
				t.Errorf("upstream called = %v, want %v", res.up.called, tt.upstream)
			}
			if tt.newSession {
				wantSession(t, m, res, "")
				if rp := res.rec.Header().Get("Referrer-Policy"); rp != "no-referrer" {
					t.Errorf("Referrer-Policy = %q, want no-referrer", rp)
				}
			} else {
				wantNoCookie(t, res)
			}
			if tt.location != "" || tt.newSession {
				if cc := res.rec.Header().Get("Cache-Control"); cc != "no-store" {
					t.Errorf("Cache-Control = %q, want no-store", cc)
				}
			}
			if tt.upstream {
				wantIdentity(t, res)
				if res.up.url != tt.upstreamURI || res.up.requestURI != tt.upstreamURI {
					t.Errorf("upstream URL = %q, RequestURI = %q, want %q", res.up.url, res.up.requestURI, tt.upstreamURI)
				}
				if res.up.method != tt.method {
					t.Errorf("upstream method = %q, want %q", res.up.method, tt.method)
				}
			}
			if tt.confirmation {
				body := res.rec.Body.String()
				wantAction := `action="/cart?a=1&amp;token=` + tok + `"`
				if !strings.Contains(body, `<form method="post"`) || !strings.Contains(body, wantAction) {
					t.Errorf("confirmation page lacks a form posting to the link (%s):\n%s", wantAction, body)
				}
				if strings.Contains(body, "<script") {
					t.Error("confirmation page uses a script")
				}
				for name, want := range map[string]string{"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"} {
					if got := res.rec.Header().Get(name); got != want {
						t.Errorf("%s = %q, want %q", name, got, want)
					}
				}
			}
		})
	}
}

func TestRedeemHeadNeverIssuesASession(t *testing.T) {
	keys := newGWKeys(t)
	tests := []struct {
		name            string
		unauthenticated string
		withCookie      bool
		status          int
		upstream        bool
		identity        bool
	}{
		{name: "deny", unauthenticated: UnauthenticatedDeny, status: http.StatusUnauthorized},
		{name: "pass", unauthenticated: UnauthenticatedPass, status: http.StatusOK, upstream: true},
		{name: "valid cookie", unauthenticated: UnauthenticatedDeny, withCookie: true, status: http.StatusOK, upstream: true, identity: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, _ := newGateway(t, keys, func(m *MagicLink) { m.Unauthenticated = tt.unauthenticated })
			r := newGWRequest(http.MethodHead, "/cart?x=1&token="+keys.link(t, nil))
			if tt.withCookie {
				r.Header.Set("Cookie", sessionCookie(t, m, aliceSession("")))
			}
			res := serve(m, r)
			if res.err != nil {
				t.Fatal(res.err)
			}
			if res.rec.Code != tt.status || res.up.called != tt.upstream {
				t.Fatalf("status %d, upstream called %v; want %d, %v", res.rec.Code, res.up.called, tt.status, tt.upstream)
			}
			wantNoCookie(t, res)
			if tt.upstream && (res.up.url != "/cart?x=1" || res.up.requestURI != "/cart?x=1") {
				t.Errorf("upstream URL = %q, RequestURI = %q, want the token removed", res.up.url, res.up.requestURI)
			}
			if tt.identity {
				wantIdentity(t, res)
			} else {
				wantNoIdentity(t, res)
			}
		})
	}
}

func TestRedeemHeadRejectsInvalidTokens(t *testing.T) {
	keys := newGWKeys(t)
	m, _ := newGateway(t, keys, func(m *MagicLink) { m.Unauthenticated = UnauthenticatedPass })
	expired := keys.link(t, func(c *token.Claims) { c.IssuedAt, c.Expiry = time.Now().Add(-2*time.Hour), time.Now().Add(-time.Hour) })
	for _, tt := range []struct{ name, target, reason string }{
		{"garbage", "/?token=junk", ReasonInvalid},
		{"expired", "/?token=" + expired, ReasonExpired},
		{"two token parameters", "/?token=" + keys.link(t, nil) + "&token=x", ReasonInvalid},
		{"outside its path", "/admin?token=" + keys.link(t, func(c *token.Claims) { c.Path = "/survey/42" }), ReasonOutsideScope},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := newGWRequest(http.MethodHead, tt.target)
			r.Header.Set("Cookie", sessionCookie(t, m, aliceSession("")))
			res := serve(m, r)
			wantRejected(t, res, tt.reason)
			wantNoIdentity(t, res)
			wantNoCookie(t, res)
		})
	}
}

func TestOutOfScopeSessionLogged(t *testing.T) {
	keys := newGWKeys(t)
	m, logs := newGateway(t, keys, func(m *MagicLink) { m.Unauthenticated = UnauthenticatedPass })
	r := newGWRequest(http.MethodGet, "/admin")
	r.Header.Set("Cookie", sessionCookie(t, m, aliceSession("/survey/42")))
	if res := serve(m, r); !res.up.called {
		t.Fatal("upstream not called in pass mode")
	}
	line := logs.String()
	for _, want := range []string{`"session rejected"`, `"reason":"outside_scope"`, `"jti":"link-1"`, `"sub":"alice"`} {
		if !strings.Contains(line, want) {
			t.Errorf("log %q lacks %s", line, want)
		}
	}
}

func TestRejectLink(t *testing.T) {
	keys := newGWKeys(t)
	other := newGWKeys(t)
	m, _ := newGateway(t, keys, func(m *MagicLink) { m.Unauthenticated = UnauthenticatedPass })
	valid := keys.link(t, nil)
	tests := []struct {
		name   string
		method string
		target string
		cookie string
		reason string
	}{
		{name: "bad signature", target: "/?token=" + other.link(t, nil), reason: ReasonInvalid},
		{name: "tampered signature", target: "/?token=" + valid[:len(valid)-4] + "AAAA", reason: ReasonInvalid},
		{name: "expired", target: "/?token=" + keys.link(t, func(c *token.Claims) {
			c.IssuedAt = time.Now().Add(-2 * time.Hour)
			c.Expiry = time.Now().Add(-time.Hour)
		}), reason: ReasonExpired},
		{name: "not yet valid", target: "/?token=" + keys.link(t, func(c *token.Claims) {
			c.NotBefore = time.Now().Add(30 * time.Minute)
		}), reason: ReasonNotYetValid},
		{name: "wrong audience", target: "/?token=" + keys.link(t, func(c *token.Claims) {
			c.Audience = []string{"https://other.example.com"}
		}), reason: ReasonInvalid},
		{name: "malformed", target: "/?token=not.a-token", reason: ReasonInvalid},
		{name: "empty", target: "/?token=", reason: ReasonInvalid},
		{name: "garbage", target: "/?token=%00%ff%22%3Cscript%3E", reason: ReasonInvalid},
		{name: "outside path", target: "/admin?token=" + keys.link(t, func(c *token.Claims) { c.Path = "/survey/42" }),
			reason: ReasonOutsideScope},
		{name: "two token params", target: "/?token=" + valid + "&token=" + valid, reason: ReasonInvalid},
		{name: "two token params, one encoded", target: "/?token=" + valid + "&%74oken=x", reason: ReasonInvalid},
		{name: "session cookie as token", target: "/?token=" + strings.TrimPrefix(sessionCookie(t, m, aliceSession("")), m.CookieName+"="),
			reason: ReasonInvalid},
		{name: "POST with a bad token", method: http.MethodPost, target: "/api?token=" + other.link(t, nil), reason: ReasonInvalid},
		{name: "bad token with a valid cookie", target: "/?token=" + other.link(t, nil),
			cookie: sessionCookie(t, m, aliceSession("")), reason: ReasonInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			method := tt.method
			if method == "" {
				method = http.MethodGet
			}
			r := newGWRequest(method, tt.target)
			if tt.cookie != "" {
				r.Header.Set("Cookie", tt.cookie)
			}
			res := serve(m, r)
			wantRejected(t, res, tt.reason)
			wantNoCookie(t, res)
			wantNoIdentity(t, res)
		})
	}
}

func TestSessionCookie(t *testing.T) {
	keys := newGWKeys(t)
	m, _ := newGateway(t, keys, nil)
	otherSecret, _ := newGateway(t, keys, func(m *MagicLink) { m.SessionSecret = strings.Repeat("z", 32) })
	otherAudience, _ := newGateway(t, keys, func(m *MagicLink) { m.Audience = "https://other.example.com" })

	valid := sessionCookie(t, m, aliceSession(""))
	value := strings.TrimPrefix(valid, m.CookieName+"=")
	expired := aliceSession("")
	expired.Expiry = time.Now().Add(-time.Second)
	tampered := []byte(value)
	tampered[len(tampered)/2] ^= 1
	if tampered[len(tampered)/2] == '-' || tampered[len(tampered)/2] == '_' {
		tampered[len(tampered)/2] = 'A'
	}

	tests := []struct {
		name     string
		path     string
		cookie   string
		identity bool
		cleared  bool
		reason   string
	}{
		{name: "valid", path: "/cart", cookie: valid, identity: true},
		{name: "valid among other cookies", path: "/cart", cookie: "a=1; " + valid + "; b=2", identity: true},
		{name: "valid in scope", path: "/survey/42/q1", cookie: sessionCookie(t, m, aliceSession("/survey/42")), identity: true},
		{name: "valid after an invalid duplicate", path: "/", cookie: m.CookieName + "=junk; " + valid, identity: true},
		{name: "out of scope is kept", path: "/admin", cookie: sessionCookie(t, m, aliceSession("/survey/42")),
			reason: ReasonUnauthenticated},
		{name: "expired is cleared", path: "/", cookie: sessionCookie(t, m, expired), cleared: true, reason: ReasonUnauthenticated},
		{name: "tampered is cleared", path: "/", cookie: m.CookieName + "=" + string(tampered), cleared: true, reason: ReasonUnauthenticated},
		{name: "foreign secret is cleared", path: "/", cookie: sessionCookie(t, otherSecret, aliceSession("")), cleared: true,
			reason: ReasonUnauthenticated},
		{name: "foreign audience is cleared", path: "/", cookie: sessionCookie(t, otherAudience, aliceSession("")), cleared: true,
			reason: ReasonUnauthenticated},
		{name: "link token as cookie is cleared", path: "/", cookie: m.CookieName + "=" + keys.link(t, nil), cleared: true,
			reason: ReasonUnauthenticated},
		{name: "empty value is cleared", path: "/", cookie: m.CookieName + "=", cleared: true, reason: ReasonUnauthenticated},
		{name: "similar name is ignored", path: "/", cookie: m.CookieName + "x=" + value, reason: ReasonUnauthenticated},
		{name: "no cookie", path: "/", reason: ReasonUnauthenticated},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newGWRequest(http.MethodGet, tt.path)
			if tt.cookie != "" {
				r.Header.Set("Cookie", tt.cookie)
			}
			res := serve(m, r)
			if tt.identity {
				if res.err != nil || res.rec.Code != http.StatusOK {
					t.Fatalf("status %d, error %v; want the upstream's 200", res.rec.Code, res.err)
				}
				wantIdentity(t, res)
				wantNoCookie(t, res)
				return
			}
			wantRejected(t, res, tt.reason)
			wantNoIdentity(t, res)
			wantClearedOrNone(t, m, res, tt.cleared)
		})
	}
}

func TestSessionSecretRotation(t *testing.T) {
	keys := newGWKeys(t)
	oldSecret, newSecret := strings.Repeat("o", 32), strings.Repeat("n", 32)
	before, _ := newGateway(t, keys, func(m *MagicLink) { m.SessionSecret = oldSecret })
	rotated, _ := newGateway(t, keys, func(m *MagicLink) {
		m.SessionSecret, m.PreviousSessionSecrets = newSecret, []string{oldSecret}
	})
	after, _ := newGateway(t, keys, func(m *MagicLink) { m.SessionSecret = newSecret })

	oldCookie := sessionCookie(t, before, aliceSession(""))
	r := newGWRequest(http.MethodGet, "/")
	r.Header.Set("Cookie", oldCookie)
	res := serve(rotated, r)
	if res.err != nil || !res.up.called {
		t.Fatalf("a cookie sealed with the previous secret: status %d, error %v; want it accepted", res.rec.Code, res.err)
	}
	wantIdentity(t, res)

	res = serve(rotated, newGWRequest(http.MethodGet, "/?token="+keys.link(t, nil)))
	newCookie := wantSession(t, rotated, res, "")
	for _, tt := range []struct {
		name   string
		m      *MagicLink
		cookie string
		ok     bool
	}{
		{"new cookie, new secret only", after, newCookie.Name + "=" + newCookie.Value, true},
		{"new cookie, old secret only", before, newCookie.Name + "=" + newCookie.Value, false},
		{"old cookie, previous secret dropped", after, oldCookie, false},
	} {
		r := newGWRequest(http.MethodGet, "/")
		r.Header.Set("Cookie", tt.cookie)
		if res := serve(tt.m, r); res.up.called != tt.ok {
			t.Errorf("%s: upstream called = %v, want %v", tt.name, res.up.called, tt.ok)
		}
	}
}

func TestUnauthenticated(t *testing.T) {
	keys := newGWKeys(t)
	tests := []struct {
		name     string
		mode     string
		redirect string
		status   int
		location string
		upstream bool
	}{
		{name: "deny", mode: UnauthenticatedDeny, status: http.StatusUnauthorized},
		{name: "default denies", status: http.StatusUnauthorized},
		{name: "pass", mode: UnauthenticatedPass, status: http.StatusOK, upstream: true},
		{name: "redirect", mode: UnauthenticatedRedirect, redirect: "https://login.example.com/?next={http.request.uri}",
			status: http.StatusFound, location: "https://login.example.com/?next=/orders?id=7"},
		{name: "redirect to a fixed page", mode: UnauthenticatedRedirect, redirect: "/login",
			status: http.StatusFound, location: "/login"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, _ := newGateway(t, keys, func(m *MagicLink) {
				m.Unauthenticated = tt.mode
				m.RedirectURL = tt.redirect
			})
			r := newGWRequest(http.MethodGet, "/orders?id=7")
			repl := caddy.NewReplacer()
			r = r.WithContext(context.WithValue(r.Context(), caddy.ReplacerCtxKey, repl))
			// {http.request.uri} comes from Caddy's HTTP placeholders, which the server adds.
			repl.Set("http.request.uri", r.RequestURI)
			res := result{rec: httptest.NewRecorder(), up: new(upstream), repl: repl}
			res.err = m.ServeHTTP(res.rec, r, res.up)
			if res.err != nil {
				t.Fatal(res.err)
			}
			if tt.status == http.StatusUnauthorized {
				wantRejected(t, res, ReasonUnauthenticated)
				return
			}
			if res.rec.Code != tt.status || res.up.called != tt.upstream {
				t.Fatalf("status %d, upstream called %v; want %d, %v", res.rec.Code, res.up.called, tt.status, tt.upstream)
			}
			if got := res.rec.Header().Get("Location"); got != tt.location {
				t.Errorf("Location = %q, want %q", got, tt.location)
			}
			wantNoIdentity(t, res)
			wantNoCookie(t, res)
		})
	}
}

func TestIdentityHeadersCannotBeSpoofed(t *testing.T) {
	keys := newGWKeys(t)
	spoof := http.Header{
		"Remote-User":  {"admin"},
		"Remote_user":  {"admin"},
		"Remote-Email": {"admin@example.com"},
		"Remote_email": {"admin@example.com"},
		"Remote-Name":  {"Admin"},
		"X-User":       {"admin"},
		"X_user":       {"admin"},
	}
	tests := []struct {
		name    string
		edit    func(*MagicLink)
		cookie  bool
		token   bool
		headers map[string]string // what the upstream must see; every other spoofed header must be gone
	}{
		{name: "pass without session", edit: func(m *MagicLink) { m.Unauthenticated = UnauthenticatedPass },
			headers: map[string]string{"X-User": "admin", "X_user": "admin"}},
		{name: "session", cookie: true,
			headers: map[string]string{"Remote-User": "alice", "Remote-Email": "alice@example.com", "Remote-Name": "Alice",
				"X-User": "admin", "X_user": "admin"}},
		{name: "forwarded link", edit: func(m *MagicLink) { m.Redeem = RedeemForward }, token: true,
			headers: map[string]string{"Remote-User": "alice", "Remote-Email": "alice@example.com", "Remote-Name": "Alice",
				"X-User": "admin", "X_user": "admin"}},
		{name: "custom header names", cookie: true, edit: func(m *MagicLink) { m.HeaderUser = "X-User" },
			headers: map[string]string{"X-User": "alice", "Remote-Email": "alice@example.com", "Remote-Name": "Alice",
				"Remote-User": "admin", "Remote_user": "admin"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, _ := newGateway(t, keys, tt.edit)
			target := "/"
			if tt.token {
				target = "/?token=" + keys.link(t, nil)
			}
			r := newGWRequest(http.MethodGet, target)
			for k, v := range spoof {
				r.Header[k] = v
			}
			if tt.cookie {
				r.Header.Set("Cookie", sessionCookie(t, m, aliceSession("")))
			}
			res := serve(m, r)
			if res.err != nil || !res.up.called {
				t.Fatalf("status %d, error %v; want the upstream called", res.rec.Code, res.err)
			}
			for k := range spoof {
				got := res.up.header[k]
				want, kept := tt.headers[k]
				if kept && (len(got) != 1 || got[0] != want) || !kept && len(got) != 0 {
					t.Errorf("upstream saw %s: %q, want %q", k, got, want)
				}
			}
		})
	}
}

func TestRedeemLocationIsSafe(t *testing.T) {
	keys := newGWKeys(t)
	m, _ := newGateway(t, keys, nil)
	tok := keys.link(t, nil)
	tests := []struct {
		target, location string
	}{
		{"//evil.example/x?token=" + tok, "/evil.example/x"},
		{"/\\evil.example?token=" + tok, "/%5Cevil.example"},
		{"/\\/evil.example/?a=1&token=" + tok, "/%5C/evil.example/?a=1"},
		{"/a/b?z=1&token=" + tok + "&a=2&z=3", "/a/b?z=1&a=2&z=3"},
		{"/?token=" + tok, "/"},
	}
	for _, tt := range tests {
		t.Run(tt.location, func(t *testing.T) {
			res := serve(m, newGWRequest(http.MethodGet, tt.target))
			if res.rec.Code != http.StatusSeeOther {
				t.Fatalf("status = %d, want 303", res.rec.Code)
			}
			loc := res.rec.Header().Get("Location")
			if loc != tt.location {
				t.Errorf("Location = %q, want %q", loc, tt.location)
			}
			u, err := url.Parse(loc)
			if err != nil || u.Host != "" || u.Scheme != "" || strings.Contains(loc, tok) {
				t.Errorf("Location %q leaves the site or keeps the token", loc)
			}
		})
	}
}

func TestPathScope(t *testing.T) {
	keys := newGWKeys(t)
	m, _ := newGateway(t, keys, nil)
	tok := keys.link(t, func(c *token.Claims) { c.Path = "/survey/42" })
	cookie := sessionCookie(t, m, aliceSession("/survey/42"))
	tests := []struct {
		path   string
		inside bool
	}{
		{"/survey/42", true},
		{"/survey/42/", true},
		{"/survey/42/q?x=1", true},
		{"/survey/42/../../admin", false},
		{"/survey/42/%2e%2e/%2e%2e/admin", false},
		{"/survey/42%2F..%2F..%2Fadmin", false},
		{"/survey/420", false},
		{"/SURVEY/42", false},
		{"/survey", false},
		{"/", false},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			sep := "?"
			if strings.Contains(tt.path, "?") {
				sep = "&"
			}
			linkRes := serve(m, newGWRequest(http.MethodGet, tt.path+sep+"token="+tok))
			r := newGWRequest(http.MethodGet, tt.path)
			r.Header.Set("Cookie", cookie)
			sessionRes := serve(m, r)
			if tt.inside {
				if linkRes.rec.Code != http.StatusSeeOther {
					t.Errorf("link: status %d, want 303", linkRes.rec.Code)
				}
				wantSession(t, m, linkRes, "/survey/42")
				wantIdentity(t, sessionRes)
				return
			}
			wantRejected(t, linkRes, ReasonOutsideScope)
			wantNoCookie(t, linkRes)
			wantRejected(t, sessionRes, ReasonUnauthenticated)
			wantNoCookie(t, sessionRes) // out of scope: the cookie is kept
		})
	}
}

func TestRejectThroughErrorRoutes(t *testing.T) {
	keys := newGWKeys(t)
	m, _ := newGateway(t, keys, nil)
	srv := &caddyhttp.Server{Errors: &caddyhttp.HTTPErrorConfig{Routes: caddyhttp.RouteList{{}}}}
	tests := []struct {
		name, target, cookie, reason string
		cleared                      bool
	}{
		{name: "expired link", target: "/?token=" + keys.link(t, func(c *token.Claims) {
			c.IssuedAt = time.Now().Add(-2 * time.Hour)
			c.Expiry = time.Now().Add(-time.Hour)
		}), reason: ReasonExpired},
		{name: "invalid link", target: "/?token=x.y.z", reason: ReasonInvalid},
		{name: "no session", target: "/", reason: ReasonUnauthenticated},
		{name: "bad cookie", target: "/", cookie: m.CookieName + "=junk", reason: ReasonUnauthenticated, cleared: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newGWRequest(http.MethodGet, tt.target)
			r = r.WithContext(context.WithValue(r.Context(), caddyhttp.ServerCtxKey, srv))
			if tt.cookie != "" {
				r.Header.Set("Cookie", tt.cookie)
			}
			res := serve(m, r)
			var he caddyhttp.HandlerError
			if !errors.As(res.err, &he) || he.StatusCode != http.StatusUnauthorized {
				t.Fatalf("error = %v, want a 401 handler error", res.err)
			}
			if res.rec.Body.Len() != 0 || res.up.called {
				t.Errorf("wrote %q or called the upstream; want both left to the error routes", res.rec.Body.String())
			}
			if got := res.placeholder(errorPlaceholder); got != tt.reason {
				t.Errorf("{%s} = %q, want %q", errorPlaceholder, got, tt.reason)
			}
			wantClearedOrNone(t, m, res, tt.cleared)
		})
	}
}

func TestConfirmPageEscapesTheLink(t *testing.T) {
	keys := newGWKeys(t)
	m, _ := newGateway(t, keys, func(m *MagicLink) { m.Redeem = RedeemConfirm })
	res := serve(m, newGWRequest(http.MethodGet, `//evil.example/"><script>alert(1)</script>?q="><b>&token=`+keys.link(t, nil)))
	if res.rec.Code != http.StatusOK {
		t.Fatalf("status = %d, want 200", res.rec.Code)
	}
	body := res.rec.Body.String()
	if strings.Contains(body, "<script") || strings.Contains(body, "<b>") || strings.Contains(body, `action="//`) {
		t.Errorf("confirmation page does not escape the link or leaves the site:\n%s", body)
	}
	if !strings.Contains(body, `action="/evil.example/`) {
		t.Errorf("confirmation page does not post to the link on this site:\n%s", body)
	}
}

func TestCookieAttributes(t *testing.T) {
	keys := newGWKeys(t)
	tests := []struct {
		name string
		edit func(*MagicLink)
		want string // the Set-Cookie attributes after the value, in any order
	}{
		{name: "default", want: "Max-Age=86400; Path=/; HttpOnly; Secure; SameSite=Lax", edit: nil},
		{name: "domain", edit: func(m *MagicLink) { m.CookieDomain = "example.com" },
			want: "Max-Age=86400; Path=/; Domain=example.com; HttpOnly; Secure; SameSite=Lax"},
		{name: "insecure strict", edit: func(m *MagicLink) {
			m.InsecureCookie = true
			m.CookieSameSite = "strict"
			m.SessionTTL = caddy.Duration(time.Hour)
		}, want: "Max-Age=3600; Path=/; HttpOnly; SameSite=Strict"},
		{name: "none", edit: func(m *MagicLink) { m.CookieSameSite = "none"; m.CookieName = "sid" },
			want: "Max-Age=86400; Path=/; HttpOnly; Secure; SameSite=None"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, _ := newGateway(t, keys, tt.edit)
			res := serve(m, newGWRequest(http.MethodGet, "/?token="+keys.link(t, nil)))
			set := res.rec.Header().Get("Set-Cookie")
			name, rest, _ := strings.Cut(set, "=")
			_, attrs, _ := strings.Cut(rest, ";")
			if got := canonicalAttrs(strings.TrimSpace(attrs)); got != canonicalAttrs(tt.want) {
				t.Errorf("Set-Cookie attributes = %q, want %q", got, tt.want)
			}
			if name != m.CookieName {
				t.Errorf("cookie name = %q, want %q", name, m.CookieName)
			}
		})
	}
}

// canonicalAttrs sorts the cookie attributes of s, so that tests do not depend on their order.
func canonicalAttrs(s string) string {
	parts := strings.Split(s, "; ")
	slices.Sort(parts)
	return strings.Join(parts, "; ")
}

// TestSpecDefaults pins every default the README documents to its literal value.
func TestSpecDefaults(t *testing.T) {
	m, _ := newGateway(t, newGWKeys(t), nil)
	for _, tt := range []struct {
		field     string
		got, want any
	}{
		{"param", m.Param, "token"},
		{"leeway", time.Duration(*m.Leeway), 30 * time.Second},
		{"max_link_age", time.Duration(m.MaxLinkAge), 720 * time.Hour},
		{"session_ttl", time.Duration(m.SessionTTL), 24 * time.Hour},
		{"cookie_samesite", m.CookieSameSite, "lax"},
		{"redeem", m.Redeem, "redirect"},
		{"unauthenticated", m.Unauthenticated, "deny"},
		{"header_user", m.HeaderUser, "Remote-User"},
		{"header_email", m.HeaderEmail, "Remote-Email"},
		{"header_name", m.HeaderName, "Remote-Name"},
	} {
		if tt.got != tt.want {
			t.Errorf("default %s = %v, want %v", tt.field, tt.got, tt.want)
		}
	}
}

func TestDefaultCookieNames(t *testing.T) {
	keys := newGWKeys(t)
	tests := []struct {
		edit func(*MagicLink)
		want string
	}{
		{nil, "__Host-magic_link"},
		{func(m *MagicLink) { m.CookieDomain = "example.com" }, "__Secure-magic_link"},
		{func(m *MagicLink) { m.InsecureCookie = true }, "magic_link"},
		{func(m *MagicLink) { m.InsecureCookie = true; m.CookieDomain = "example.com" }, "magic_link"},
	}
	for _, tt := range tests {
		m, _ := newGateway(t, keys, tt.edit)
		if m.CookieName != tt.want {
			t.Errorf("cookie name = %q, want %q", m.CookieName, tt.want)
		}
	}
}

func TestLogsNeverHoldSecrets(t *testing.T) {
	keys := newGWKeys(t)
	m, logs := newGateway(t, keys, nil)
	var tokens []string
	mint := func(edit func(*token.Claims)) string {
		tok := keys.link(t, edit)
		tokens = append(tokens, tok)
		return tok
	}

	// A whole flow: redeem, use the session, and every kind of rejection.
	good := mint(func(c *token.Claims) { c.ID = "jti-accepted-1"; c.Path = "/app" })
	res := serve(m, newGWRequest(http.MethodGet, "/app?token="+good))
	cookie := wantSession(t, m, res, "/app")
	r := newGWRequest(http.MethodGet, "/app/page")
	r.AddCookie(cookie)
	wantIdentity(t, serve(m, r))
	serve(m, newGWRequest(http.MethodGet, "/admin?token="+mint(func(c *token.Claims) { c.ID = "jti-scoped"; c.Path = "/app" })))
	serve(m, newGWRequest(http.MethodGet, "/?token="+mint(func(c *token.Claims) {
		c.IssuedAt = time.Now().Add(-2 * time.Hour)
		c.Expiry = time.Now().Add(-time.Hour)
	})))
	serve(m, newGWRequest(http.MethodGet, "/?token="+good+"&token="+good))
	bad := sessionCookie(t, m, aliceSession(""))
	tampered := bad[:len(bad)-3] + "AAA"
	r = newGWRequest(http.MethodGet, "/")
	r.Header.Set("Cookie", tampered)
	serve(m, r)

	out := logs.String()
	secrets := append([]string{cookie.Value, tampered, bad, gwSecret}, tokens...)
	for _, s := range secrets {
		if strings.Contains(out, s) {
			t.Errorf("the log holds a token, cookie value or secret:\n%s", out)
		}
		// A token's signature alone, or a long slice of a cookie, must not appear either.
		if tail := s[len(s)-20:]; strings.Contains(out, tail) {
			t.Errorf("the log holds part of a token, cookie value or secret %q:\n%s", tail, out)
		}
	}
	for _, want := range []string{
		`"msg":"link accepted"`, `"jti":"jti-accepted-1"`, `"sub":"alice"`, `"kid":"` + keys.signer.KeyID() + `"`,
		`"reason":"outside_scope"`, `"jti":"jti-scoped"`, `"reason":"expired"`, `"reason":"duplicate_param"`,
		`"msg":"session rejected"`, `"reason":"invalid"`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("the log lacks %s:\n%s", want, out)
		}
	}
	if n := strings.Count(out, "\n"); n != 5 {
		t.Errorf("the flow logged %d lines, want 5 (one per decision; an accepted session logs none):\n%s", n, out)
	}
}

func TestProvision(t *testing.T) {
	keys := newGWKeys(t)
	dir := t.TempDir()
	secretFile := filepath.Join(dir, "secret")
	if err := os.WriteFile(secretFile, []byte(gwSecret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	shortFile := filepath.Join(dir, "short")
	if err := os.WriteFile(shortFile, []byte("short\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("MAGIC_LINK_TEST_SECRET", gwSecret)
	tests := []struct {
		name    string
		edit    func(*MagicLink)
		wantErr string // "" means it provisions and its cookie opens with gwSecret
	}{
		{name: "env secret", edit: func(m *MagicLink) { m.SessionSecret = "{env.MAGIC_LINK_TEST_SECRET}" }},
		{name: "file secret", edit: func(m *MagicLink) { m.SessionSecret = "{file." + secretFile + "}" }},
		{name: "missing env", edit: func(m *MagicLink) { m.SessionSecret = "{env.MAGIC_LINK_TEST_UNSET}" },
			wantErr: "session_secret"},
		{name: "short file", edit: func(m *MagicLink) { m.SessionSecret = "{file." + shortFile + "}" },
			wantErr: "session_secret: 5 bytes is too short"},
		{name: "short literal", edit: func(m *MagicLink) { m.SessionSecret = "too-short" },
			wantErr: "session_secret: 9 bytes is too short"},
		{name: "missing key file", edit: func(m *MagicLink) { m.Keys = []string{filepath.Join(dir, "nope.jwks")} },
			wantErr: "nope.jwks"},
		{name: "no keys", edit: func(m *MagicLink) { m.Keys = nil }, wantErr: "keys"},
		{name: "no audience", edit: func(m *MagicLink) { m.Audience = "" }, wantErr: "audience"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := &MagicLink{Keys: []string{keys.keyFile}, Audience: gwAudience}
			tt.edit(m)
			ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
			defer cancel()
			err := m.Provision(ctx)
			if err == nil {
				err = m.Validate()
			}
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error = %v, want one mentioning %q", err, tt.wantErr)
				}
				if strings.Contains(err.Error(), gwSecret) {
					t.Errorf("error %q holds the secret", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			reference, _ := newGateway(t, keys, nil)
			if _, err := m.sessions.codec.open(strings.TrimPrefix(sessionCookie(t, reference, aliceSession("")), reference.CookieName+"="), time.Now()); err != nil {
				t.Errorf("a cookie sealed with the literal secret does not open: %v", err)
			}
		})
	}
}

func TestValidate(t *testing.T) {
	keys := newGWKeys(t)
	tests := []struct {
		name    string
		edit    func(*MagicLink)
		wantErr string
	}{
		{"samesite none insecure", func(m *MagicLink) { m.CookieSameSite = "none"; m.InsecureCookie = true }, "cookie_samesite none"},
		{"bad samesite", func(m *MagicLink) { m.CookieSameSite = "loose" }, "cookie_samesite"},
		{"bad redeem", func(m *MagicLink) { m.Redeem = "auto" }, "redeem"},
		{"bad unauthenticated", func(m *MagicLink) { m.Unauthenticated = "allow" }, "unauthenticated"},
		{"redirect without url", func(m *MagicLink) { m.Unauthenticated = UnauthenticatedRedirect }, "unauthenticated redirect"},
		{"url without redirect", func(m *MagicLink) { m.RedirectURL = "/login" }, "redirect_url"},
		{"__Host- with domain", func(m *MagicLink) { m.CookieName = "__Host-x"; m.CookieDomain = "example.com" }, "cookie_name"},
		{"__Secure- insecure", func(m *MagicLink) { m.CookieName = "__Secure-x"; m.InsecureCookie = true }, "cookie_name"},
		{"__host- with domain", func(m *MagicLink) { m.CookieName = "__host-x"; m.CookieDomain = "example.com" }, "cookie_name"},
		{"__HOST- insecure", func(m *MagicLink) { m.CookieName = "__HOST-x"; m.InsecureCookie = true }, "cookie_name"},
		{"__secure- insecure", func(m *MagicLink) { m.CookieName = "__secure-x"; m.InsecureCookie = true }, "cookie_name"},
		{"bad cookie name", func(m *MagicLink) { m.CookieName = "a;b" }, "cookie_name"},
		{"bad cookie domain", func(m *MagicLink) { m.CookieDomain = "a.com; Secure" }, "cookie_domain"},
		{"bad header", func(m *MagicLink) { m.HeaderUser = "Remote User" }, "header_user"},
		{"header with many separators", func(m *MagicLink) { m.HeaderName = "X-A-B-C-D-Name" }, "header_name"},
		{"same headers", func(m *MagicLink) { m.HeaderEmail = "remote-user" }, "header_user, header_email"},
		{"bad param", func(m *MagicLink) { m.Param = "to&ken" }, "param"},
		{"negative leeway", func(m *MagicLink) { d := caddy.Duration(-time.Second); m.Leeway = &d }, "leeway"},
		{"short ttl", func(m *MagicLink) { m.SessionTTL = caddy.Duration(time.Millisecond) }, "session_ttl"},
		{"previous secret without secret", func(m *MagicLink) { m.SessionSecret, m.PreviousSessionSecrets = "", []string{gwSecret} },
			"previous_session_secrets"},
		{"previous secret the same", func(m *MagicLink) { m.PreviousSessionSecrets = []string{gwSecret} }, "are the same"},
		{"short previous secret", func(m *MagicLink) { m.PreviousSessionSecrets = []string{"short"} }, "too short"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := &MagicLink{Keys: []string{keys.keyFile}, Audience: gwAudience, SessionSecret: gwSecret}
			tt.edit(m)
			ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
			defer cancel()
			err := m.Provision(ctx)
			if err == nil {
				err = m.Validate()
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("error = %v, want one mentioning %q", err, tt.wantErr)
			}
		})
	}
}

func TestRawFragmentRejected(t *testing.T) {
	keys := newGWKeys(t)
	m, _ := newGateway(t, keys, func(m *MagicLink) { m.Unauthenticated = UnauthenticatedPass })
	tok := keys.link(t, nil)
	for _, tt := range []struct{ name, target, cookie string }{
		{"absolute form, token after #", "http://" + gwHost + "/#?token=" + tok, ""},
		{"origin form, token after #", "/welcome#?token=" + tok, ""},
		{"# inside the query", "/welcome?a=1#&token=" + tok, ""},
		{"# with a valid session", "/page#x", sessionCookie(t, m, aliceSession(""))},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := newGWRequest(http.MethodGet, tt.target)
			if tt.cookie != "" {
				r.Header.Set("Cookie", tt.cookie)
			}
			res := serve(m, r)
			var he caddyhttp.HandlerError
			if !errors.As(res.err, &he) || he.StatusCode != http.StatusBadRequest {
				t.Fatalf("status %d, error %v; want a 400 handler error", res.rec.Code, res.err)
			}
			if res.up.called {
				t.Error("upstream called")
			}
			wantNoCookie(t, res)
			wantNoIdentity(t, res)
		})
	}
}

func TestPlantedCookies(t *testing.T) {
	keys := newGWKeys(t)
	m, _ := newGateway(t, keys, nil)
	valid := sessionCookie(t, m, aliceSession(""))
	junk := func(n int) string {
		var parts []string
		for i := range n {
			parts = append(parts, m.CookieName+"=junk"+strconv.Itoa(i))
		}
		return strings.Join(parts, "; ")
	}
	foreign, _ := newGateway(t, keys, func(m *MagicLink) { m.SessionSecret = strings.Repeat("f", 32) })
	planted := sessionCookie(t, foreign, aliceSession(""))
	tests := []struct {
		name     string
		cookie   []string // Cookie header lines
		identity bool
		cleared  bool
	}{
		{name: "three junk cookies before the valid one", cookie: []string{junk(3) + "; " + valid}, identity: true},
		{name: "fifteen junk and foreign cookies before the valid one",
			cookie: []string{junk(10) + "; " + strings.Repeat(planted+"; ", 5) + valid}, identity: true},
		{name: "junk across Cookie lines", cookie: []string{junk(4), "a=1; " + valid}, identity: true},
		{name: "valid first", cookie: []string{valid + "; " + junk(20)}, identity: true},
		{name: "only junk", cookie: []string{junk(maxCookieTries)}, cleared: true},
		{name: "more junk than are tried: the cookie is kept", cookie: []string{junk(maxCookieTries) + "; " + valid}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newGWRequest(http.MethodGet, "/")
			r.Header["Cookie"] = tt.cookie
			res := serve(m, r)
			if tt.identity {
				wantIdentity(t, res)
				wantNoCookie(t, res)
				return
			}
			wantRejected(t, res, ReasonUnauthenticated)
			wantClearedOrNone(t, m, res, tt.cleared)
		})
	}
}

func TestSessionCookieNotForwarded(t *testing.T) {
	keys := newGWKeys(t)
	valid := func(m *MagicLink) string { return sessionCookie(t, m, aliceSession("")) }
	tests := []struct {
		name   string
		edit   func(*MagicLink)
		target string
		cookie func(m *MagicLink) []string
		want   []string // the Cookie header lines the upstream sees
	}{
		{name: "middle", cookie: func(m *MagicLink) []string { return []string{"a=1; " + valid(m) + "; b=2"} },
			want: []string{"a=1; b=2"}},
		{name: "first", cookie: func(m *MagicLink) []string { return []string{valid(m) + "; b=2; c=3"} },
			want: []string{"b=2; c=3"}},
		{name: "last", cookie: func(m *MagicLink) []string { return []string{"a=1;b=2; " + valid(m)} },
			want: []string{"a=1;b=2"}},
		{name: "alone", cookie: func(m *MagicLink) []string { return []string{valid(m)} }},
		{name: "several lines and duplicates", cookie: func(m *MagicLink) []string {
			return []string{m.CookieName + "=junk; a=1", valid(m), "b=2; " + m.CookieName + "=x; c=3"}
		}, want: []string{"a=1", "b=2; c=3"}},
		{name: "similar names are kept", cookie: func(m *MagicLink) []string {
			return []string{m.CookieName + "x=1; " + valid(m) + "; x" + m.CookieName + "=2"}
		}, want: []string{DefaultCookieName + "x=1; x" + DefaultCookieName + "=2"}},
		{name: "pass without a session", edit: func(m *MagicLink) { m.Unauthenticated = UnauthenticatedPass },
			cookie: func(m *MagicLink) []string { return []string{"a=1; " + m.CookieName + "=junk"} }, want: []string{"a=1"}},
		{name: "forwarded link", edit: func(m *MagicLink) { m.Redeem = RedeemForward }, target: "/?token=",
			cookie: func(m *MagicLink) []string { return []string{valid(m) + "; a=1"} }, want: []string{"a=1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, _ := newGateway(t, keys, tt.edit)
			target := "/"
			if tt.target != "" {
				target = tt.target + keys.link(t, nil)
			}
			r := newGWRequest(http.MethodGet, target)
			r.Header["Cookie"] = tt.cookie(m)
			res := serve(m, r)
			if !res.up.called {
				t.Fatalf("status %d, error %v; want the upstream called", res.rec.Code, res.err)
			}
			if got := res.up.header["Cookie"]; !slices.Equal(got, tt.want) {
				t.Errorf("upstream Cookie = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestForwardedSessionHeadersWin(t *testing.T) {
	keys := newGWKeys(t)
	upstreams := map[string]caddyhttp.HandlerFunc{
		"WriteHeader": func(w http.ResponseWriter, r *http.Request) error {
			w.Header().Set("Referrer-Policy", "unsafe-url")
			w.Header().Set("Cache-Control", "public, max-age=600")
			w.Header().Add("Set-Cookie", "app=1")
			w.WriteHeader(http.StatusCreated)
			_, err := w.Write([]byte("app"))
			return err
		},
		"Write only": func(w http.ResponseWriter, r *http.Request) error {
			w.Header().Set("Referrer-Policy", "unsafe-url")
			w.Header()["Cache-Control"] = []string{"public", "max-age=600"}
			w.Header().Add("Set-Cookie", "app=1")
			_, err := w.Write([]byte("app"))
			return err
		},
		"ReadFrom": func(w http.ResponseWriter, r *http.Request) error {
			w.Header().Set("Referrer-Policy", "unsafe-url")
			w.Header().Set("Cache-Control", "public, max-age=600")
			w.Header().Add("Set-Cookie", "app=1")
			_, err := w.(io.ReaderFrom).ReadFrom(strings.NewReader("app"))
			return err
		},
		"Flush first": func(w http.ResponseWriter, r *http.Request) error {
			w.Header().Set("Referrer-Policy", "unsafe-url")
			w.Header().Set("Cache-Control", "public, max-age=600")
			w.Header().Add("Set-Cookie", "app=1")
			if err := http.NewResponseController(w).Flush(); err != nil {
				return err
			}
			_, err := w.Write([]byte("app"))
			return err
		},
	}
	for name, up := range upstreams {
		for _, tt := range []struct{ mode, method string }{
			{RedeemForward, http.MethodGet}, {RedeemRedirect, http.MethodPost}, {RedeemForward, http.MethodPut},
		} {
			t.Run(name+" "+tt.mode+" "+tt.method, func(t *testing.T) {
				m, _ := newGateway(t, keys, func(m *MagicLink) { m.Redeem = tt.mode })
				r := newGWRequest(tt.method, "/?token="+keys.link(t, nil))
				r = r.WithContext(context.WithValue(r.Context(), caddy.ReplacerCtxKey, caddy.NewReplacer()))
				rec := httptest.NewRecorder()
				if err := m.ServeHTTP(rec, r, up); err != nil {
					t.Fatal(err)
				}
				h := rec.Result().Header
				if got := h.Values("Cache-Control"); !slices.Equal(got, []string{"no-store"}) {
					t.Errorf("Cache-Control = %q, want no-store alone", got)
				}
				if got := h.Values("Referrer-Policy"); !slices.Equal(got, []string{"no-referrer"}) {
					t.Errorf("Referrer-Policy = %q, want no-referrer alone", got)
				}
				sc := h.Values("Set-Cookie")
				if len(sc) != 2 || !slices.Contains(sc, "app=1") ||
					!slices.ContainsFunc(sc, func(s string) bool { return strings.HasPrefix(s, m.CookieName+"=") }) {
					t.Errorf("Set-Cookie = %q, want the app's cookie and the session", sc)
				}
				if rec.Body.String() != "app" {
					t.Errorf("body = %q, want the app's", rec.Body.String())
				}
			})
		}
	}
}

func TestConfirmSameOrigin(t *testing.T) {
	keys := newGWKeys(t)
	m, _ := newGateway(t, keys, func(m *MagicLink) { m.Redeem = RedeemConfirm })
	const origin = "http://" + gwHost
	tests := []struct {
		name   string
		header http.Header
		redeem bool
	}{
		{"Sec-Fetch-Site same-origin", http.Header{"Sec-Fetch-Site": {"same-origin"}}, true},
		{"Sec-Fetch-Site none", http.Header{"Sec-Fetch-Site": {"none"}}, true},
		{"Sec-Fetch-Site same-site", http.Header{"Sec-Fetch-Site": {"same-site"}}, false},
		{"Sec-Fetch-Site cross-site", http.Header{"Sec-Fetch-Site": {"cross-site"}}, false},
		{"cross-site with a same Origin", http.Header{"Sec-Fetch-Site": {"cross-site"}, "Origin": {origin}}, false},
		{"Origin of the site", http.Header{"Origin": {origin}}, true},
		{"Origin of the site, other case", http.Header{"Origin": {"http://SHOP.example.com"}}, true},
		{"Origin of another site", http.Header{"Origin": {"http://evil.example"}}, false},
		{"Origin with another scheme", http.Header{"Origin": {"https://" + gwHost}}, false},
		{"Origin with another port", http.Header{"Origin": {origin + ":8443"}}, false},
		{"Origin null", http.Header{"Origin": {"null"}}, false},
		{"neither header", nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newGWRequest(http.MethodPost, "/cart?a=1&token="+keys.link(t, nil))
			for k, v := range tt.header {
				r.Header[k] = v
			}
			res := serve(m, r)
			if res.err != nil {
				t.Fatal(res.err)
			}
			if res.up.called {
				t.Error("upstream called")
			}
			if tt.redeem {
				if res.rec.Code != http.StatusSeeOther || res.rec.Header().Get("Location") != "/cart?a=1" {
					t.Errorf("status %d, Location %q; want 303 to /cart?a=1", res.rec.Code, res.rec.Header().Get("Location"))
				}
				wantSession(t, m, res, "")
				return
			}
			if res.rec.Code != http.StatusOK || !strings.Contains(res.rec.Body.String(), `<form method="post"`) {
				t.Errorf("status %d; want the confirmation page again", res.rec.Code)
			}
			wantNoCookie(t, res)
		})
	}
	for _, method := range []string{http.MethodPut, http.MethodDelete, http.MethodPatch, http.MethodOptions} {
		for _, tok := range []string{keys.link(t, nil), "junk"} {
			t.Run(method, func(t *testing.T) {
				r := newGWRequest(method, "/api?token="+tok)
				r.Header.Set("Sec-Fetch-Site", "same-origin")
				res := serve(m, r)
				var he caddyhttp.HandlerError
				if !errors.As(res.err, &he) || he.StatusCode != http.StatusMethodNotAllowed {
					t.Fatalf("status %d, error %v; want a 405 handler error", res.rec.Code, res.err)
				}
				if allow := res.rec.Header().Get("Allow"); allow != "GET, HEAD, POST" {
					t.Errorf("Allow = %q, want GET, HEAD, POST", allow)
				}
				if res.up.called {
					t.Error("upstream called")
				}
				wantNoCookie(t, res)
			})
		}
	}
}

// forgedToken is a compact JWS with the given header and alice's claims (jti "forged-jti") and a
// signature that no key made.
func forgedToken(t *testing.T, header string) string {
	t.Helper()
	now := time.Now().Unix()
	claims := fmt.Sprintf(`{"sub":"alice","aud":%q,"iat":%d,"exp":%d,"jti":"forged-jti"}`, gwAudience, now, now+3600)
	enc := base64.RawURLEncoding.EncodeToString
	return enc([]byte(header)) + "." + enc([]byte(claims)) + "." + enc(make([]byte, 64))
}

func TestRejectedLinkLogs(t *testing.T) {
	keys := newGWKeys(t)
	other := newGWKeys(t)
	kid := keys.signer.KeyID()
	valid := keys.link(t, func(c *token.Claims) { c.ID = "signed-jti" })
	for _, tt := range []struct {
		name, target, reason string
		claims               bool // the line names the link's jti and sub
	}{
		{"malformed", "/?token=not.a-token", "malformed", false},
		{"bad signature", "/?token=" + forgedToken(t, `{"alg":"EdDSA","kid":"`+kid+`","typ":"magic-link+jwt"}`), "bad_signature", false},
		{"tampered signature", "/?token=" + valid[:len(valid)-4] + "AAAA", "bad_signature", false},
		{"unknown key", "/?token=" + other.link(t, func(c *token.Claims) { c.ID = "forged-jti" }), "unknown_key", false},
		{"wrong algorithm", "/?token=" + forgedToken(t, `{"alg":"ES256","kid":"`+kid+`","typ":"magic-link+jwt"}`), "wrong_algorithm", false},
		{"wrong type", "/?token=" + forgedToken(t, `{"alg":"EdDSA","kid":"`+kid+`","typ":"JWT"}`), "wrong_type", false},
		{"outside its path", "/admin?token=" + keys.link(t, func(c *token.Claims) { c.ID = "signed-jti"; c.Path = "/app" }),
			ReasonOutsideScope, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			m, logs := newGateway(t, keys, nil)
			wantRejected(t, serve(m, newGWRequest(http.MethodGet, tt.target)), rejectionFor(tt.reason))
			var line map[string]any
			if err := json.Unmarshal(logs.Bytes(), &line); err != nil {
				t.Fatalf("want one JSON log line, got %q: %v", logs.String(), err)
			}
			if line["msg"] != "link rejected" || line["reason"] != tt.reason {
				t.Errorf("log %q, want link rejected with reason %s", logs.String(), tt.reason)
			}
			_, hasJTI := line["jti"]
			_, hasSub := line["sub"]
			if tt.claims && (line["jti"] != "signed-jti" || line["sub"] != "alice") {
				t.Errorf("log %q, want the link's jti and sub", logs.String())
			}
			if !tt.claims && (hasJTI || hasSub || strings.Contains(logs.String(), "forged-jti")) {
				t.Errorf("log %q names a claim of a token whose signature did not verify", logs.String())
			}
		})
	}
}

// rejectionFor is the reason in {http.auth.magic_link.error} of a link rejected in the log for reason.
func rejectionFor(reason string) string {
	if reason == ReasonOutsideScope {
		return ReasonOutsideScope
	}
	return ReasonInvalid
}

// TestSpecDefaultsOfState pins the documented defaults of logout and of the magic_link app.
func TestSpecDefaultsOfState(t *testing.T) {
	m := &MagicLink{Logout: "/logout"}
	m.setDefaults()
	if m.LogoutRedirect != "/" {
		t.Errorf("default logout URL = %q, want /", m.LogoutRedirect)
	}
	t.Setenv("XDG_DATA_HOME", "/data")
	var a App
	a.setDefaults()
	for _, tt := range []struct {
		field     string
		got, want any
	}{
		{"store", a.Store.Type, "file"},
		{"store file path", a.Store.Path, "/data/caddy/magic_link/state.db"},
		{"key_prefix", a.KeyPrefix, "magic_link:"},
		{"timeout", time.Duration(a.Timeout), 2 * time.Second},
	} {
		if tt.got != tt.want {
			t.Errorf("default %s = %v, want %v", tt.field, tt.got, tt.want)
		}
	}
}
