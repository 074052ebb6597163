package caddymodule

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/magiclink-dev/magiclink/token"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

const (
	gwAudience = "https://shop.example.com"
	gwSecret   = "gateway-test-secret-0123456789abcdef"
	gwHost     = "shop.example.com"
)

// gwKeys is a signing key, the file holding it and the file holding its public half.
type gwKeys struct {
	signer      *token.Signer
	private     ed25519.PrivateKey // the signer's key, for tokens no Signer would make
	keyFile     string             // the public JWKS, for the gateway
	privateFile string             // the private JWK, for the issuing API
}

// newGWKeys makes a fresh EdDSA key pair and writes its public JWKS into a temporary directory.
func newGWKeys(t testing.TB) gwKeys {
	t.Helper()
	private, public, err := token.GenerateKey("", "")
	if err != nil {
		t.Fatal(err)
	}
	signer, err := token.ParseSigner(private)
	if err != nil {
		t.Fatal(err)
	}
	var jwk struct{ D string }
	if err := json.Unmarshal(private, &jwk); err != nil {
		t.Fatal(err)
	}
	seed, err := base64.RawURLEncoding.DecodeString(jwk.D)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	k := gwKeys{signer: signer, private: ed25519.NewKeyFromSeed(seed),
		keyFile: filepath.Join(dir, "gateway.public.jwks"), privateFile: filepath.Join(dir, "gateway.private.jwk")}
	for file, data := range map[string][]byte{k.keyFile: public, k.privateFile: private} {
		if err := os.WriteFile(file, data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return k
}

// rawLink signs claimsJSON as it is, bypassing the Signer's checks: the link a careless or
// hostile signer would make.
func (k gwKeys) rawLink(claimsJSON string) string {
	header := `{"alg":"EdDSA","kid":"` + k.signer.KeyID() + `","typ":"` + token.Type + `"}`
	input := base64.RawURLEncoding.EncodeToString([]byte(header)) + "." + base64.RawURLEncoding.EncodeToString([]byte(claimsJSON))
	return input + "." + base64.RawURLEncoding.EncodeToString(ed25519.Sign(k.private, []byte(input)))
}

// link mints a link token for alice, valid for an hour, after edit changes its claims.
func (k gwKeys) link(t testing.TB, edit func(*token.Claims)) string {
	t.Helper()
	now := time.Now()
	c := token.Claims{
		Subject:  "alice",
		Audience: []string{gwAudience},
		Expiry:   now.Add(time.Hour),
		IssuedAt: now,
		Email:    "alice@example.com",
		Name:     "Alice",
	}
	if edit != nil {
		edit(&c)
	}
	tok, err := k.signer.Sign(c)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// newGateway provisions and validates a handler verifying with keys, after edit changes its
// configuration. Its log lines go to the returned buffer, as JSON.
func newGateway(t testing.TB, keys gwKeys, edit func(*MagicLink)) (*MagicLink, *bytes.Buffer) {
	t.Helper()
	m := &MagicLink{Keys: []string{keys.keyFile}, Audience: gwAudience, SessionSecret: gwSecret}
	if edit != nil {
		edit(m)
	}
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	t.Cleanup(cancel)
	if err := m.Provision(ctx); err != nil {
		t.Fatalf("provision: %v", err)
	}
	if err := m.Validate(); err != nil {
		t.Fatalf("validate: %v", err)
	}
	logs := new(bytes.Buffer)
	m.logger = zap.New(zapcore.NewCore(zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig()),
		zapcore.AddSync(logs), zapcore.DebugLevel))
	return m, logs
}

// upstream records what the next handler saw.
type upstream struct {
	called     bool
	method     string
	url        string
	requestURI string
	header     http.Header
}

func (u *upstream) ServeHTTP(w http.ResponseWriter, r *http.Request) error {
	u.called = true
	u.method = r.Method
	u.url = r.URL.String()
	u.requestURI = r.RequestURI
	u.header = r.Header.Clone()
	w.WriteHeader(http.StatusOK)
	_, err := w.Write([]byte("upstream"))
	return err
}

// result is what one request through the handler produced.
type result struct {
	rec  *httptest.ResponseRecorder
	up   *upstream
	repl *caddy.Replacer
	err  error
}

// placeholder returns the value of a placeholder the handler set, or "" when it set none.
func (res result) placeholder(name string) string {
	v, _ := res.repl.GetString(name)
	return v
}

// cookies returns the Set-Cookie headers of the response, parsed.
func (res result) cookies(t testing.TB) []*http.Cookie {
	t.Helper()
	var out []*http.Cookie
	for _, line := range res.rec.Header().Values("Set-Cookie") {
		c, err := http.ParseSetCookie(line)
		if err != nil {
			t.Fatalf("bad Set-Cookie %q: %v", line, err)
		}
		out = append(out, c)
	}
	return out
}

// newGWRequest makes a request for target (a request-target, as on the request line) to gwHost.
func newGWRequest(method, target string) *http.Request {
	r := httptest.NewRequest(method, target, nil)
	r.Host = gwHost
	return r
}

// serve runs r through m in front of a recording upstream.
func serve(m *MagicLink, r *http.Request) result {
	repl := caddy.NewReplacer()
	r = r.WithContext(context.WithValue(r.Context(), caddy.ReplacerCtxKey, repl))
	res := result{rec: httptest.NewRecorder(), up: new(upstream), repl: repl}
	res.err = m.ServeHTTP(res.rec, r, res.up)
	return res
}

// sessionCookie seals s with m's codec and returns the Cookie header value carrying it.
func sessionCookie(t testing.TB, m *MagicLink, s session) string {
	t.Helper()
	v, err := m.sessions.codec.appendSeal([]byte(m.CookieName+"="), s)
	if err != nil {
		t.Fatal(err)
	}
	return string(v)
}

// aliceSession is the session redeeming a link for alice opens, with the given path scope.
func aliceSession(path string) session {
	return session{Subject: "alice", Email: "alice@example.com", Name: "Alice", Path: path, LinkID: "link-1",
		Expiry: time.Now().Add(time.Hour)}
}

// wantNoCookie fails unless the response sets no cookie at all.
func wantNoCookie(t *testing.T, res result) {
	t.Helper()
	if sc := res.rec.Header().Values("Set-Cookie"); len(sc) != 0 {
		t.Errorf("Set-Cookie = %q, want none", sc)
	}
}

// wantCleared fails unless the response deletes m's session cookie and sets no other.
func wantCleared(t *testing.T, m *MagicLink, res result) {
	t.Helper()
	cs := res.cookies(t)
	if len(cs) != 1 || cs[0].Name != m.CookieName || cs[0].Value != "" || cs[0].MaxAge >= 0 {
		t.Errorf("Set-Cookie = %q, want the session cookie cleared", res.rec.Header().Values("Set-Cookie"))
	}
}

// wantClearedOrNone fails unless the response clears m's session cookie, when cleared, or sets no
// cookie at all.
func wantClearedOrNone(t *testing.T, m *MagicLink, res result, cleared bool) {
	t.Helper()
	if cleared {
		wantCleared(t, m, res)
	} else {
		wantNoCookie(t, res)
	}
}

// wantSession fails unless the response sets exactly one session cookie, which opens as alice's
// session with the path scope given, and returns it.
func wantSession(t *testing.T, m *MagicLink, res result, path string) *http.Cookie {
	t.Helper()
	cs := res.cookies(t)
	if len(cs) != 1 || cs[0].Name != m.CookieName || cs[0].Value == "" {
		t.Fatalf("Set-Cookie = %q, want one new session cookie", res.rec.Header().Values("Set-Cookie"))
	}
	c := cs[0]
	s, err := m.sessions.codec.open(c.Value, time.Now())
	if err != nil {
		t.Fatalf("the new session cookie does not open: %v", err)
	}
	if s.Subject != "alice" || s.Email != "alice@example.com" || s.Name != "Alice" || s.Path != path || s.LinkID == "" {
		t.Errorf("session = %+v, want alice's with path %q and a link id", s, path)
	}
	if d := time.Until(s.Expiry); d < time.Duration(m.SessionTTL)-time.Minute || d > time.Duration(m.SessionTTL) {
		t.Errorf("session expires in %s, want about %s", d, time.Duration(m.SessionTTL))
	}
	if !c.HttpOnly || !c.Secure || c.Path != "/" || c.Domain != "" || c.SameSite != http.SameSiteLaxMode ||
		c.MaxAge != int(time.Duration(m.SessionTTL)/time.Second) {
		t.Errorf("cookie attributes = %q, want HttpOnly, Secure, Path=/, host-only, SameSite=Lax, Max-Age=session_ttl",
			res.rec.Header().Get("Set-Cookie"))
	}
	return c
}

// wantIdentity fails unless the upstream was called with alice's identity and the placeholders set.
func wantIdentity(t *testing.T, res result) {
	t.Helper()
	if !res.up.called {
		t.Fatalf("upstream not called; status %d", res.rec.Code)
	}
	h := res.up.header
	if h.Get("Remote-User") != "alice" || h.Get("Remote-Email") != "alice@example.com" || h.Get("Remote-Name") != "Alice" {
		t.Errorf("upstream identity headers = %q %q %q, want alice's", h.Values("Remote-User"), h.Values("Remote-Email"), h.Values("Remote-Name"))
	}
	if res.placeholder(userIDPlaceholder) != "alice" || res.placeholder(emailPlaceholder) != "alice@example.com" ||
		res.placeholder(namePlaceholder) != "Alice" {
		t.Errorf("placeholders = %q %q %q, want alice's", res.placeholder(userIDPlaceholder),
			res.placeholder(emailPlaceholder), res.placeholder(namePlaceholder))
	}
}

// wantNoIdentity fails if the upstream saw an identity header or an identity placeholder is set.
func wantNoIdentity(t *testing.T, res result) {
	t.Helper()
	if res.up.called {
		for _, name := range []string{"Remote-User", "Remote_user", "Remote-Email", "Remote-Name"} {
			if v := res.up.header.Values(name); len(v) != 0 {
				t.Errorf("upstream saw %s: %q, want none", name, v)
			}
		}
	}
	if v := res.placeholder(userIDPlaceholder); v != "" {
		t.Errorf("{%s} = %q, want unset", userIDPlaceholder, v)
	}
}

// wantRejected fails unless the handler answered 401 with its built-in page for reason, set no
// cookie and did not call the upstream.
func wantRejected(t *testing.T, res result, reason string) {
	t.Helper()
	if res.err != nil {
		t.Fatalf("handler error %v, want the built-in page", res.err)
	}
	if res.rec.Code != http.StatusUnauthorized {
		t.Errorf("status = %d, want 401", res.rec.Code)
	}
	if res.up.called {
		t.Error("upstream called on a rejection")
	}
	if got := res.placeholder(errorPlaceholder); got != reason {
		t.Errorf("{%s} = %q, want %q", errorPlaceholder, got, reason)
	}
	if cc := res.rec.Header().Get("Cache-Control"); cc != "no-store" {
		t.Errorf("Cache-Control = %q, want no-store", cc)
	}
	want := "This link is invalid."
	switch reason {
	case ReasonExpired:
		want = "This link has expired. Ask for a new one."
	case ReasonUnauthenticated:
		want = "Sign in with the link from your email."
	}
	if body := res.rec.Body.String(); !strings.Contains(body, want) || strings.Contains(body, "<script") {
		t.Errorf("page = %q, want it to say %q", body, want)
	}
}
