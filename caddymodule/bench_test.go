package caddymodule

import (
	"context"
	"crypto/ed25519"
	"io"
	"net/http"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/magiclink-dev/magiclink/caddymodule/store"
	"github.com/magiclink-dev/magiclink/internal/redistest"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// discardWriter is a ResponseWriter that keeps its header map and drops everything else.
type discardWriter struct{ h http.Header }

func (w *discardWriter) Header() http.Header         { return w.h }
func (w *discardWriter) Write(b []byte) (int, error) { return len(b), nil }
func (w *discardWriter) WriteHeader(int)             {}

// newBenchGateway is newGateway with the log lines encoded as in production, at info level, but
// thrown away, so that a growing buffer does not weigh on the benchmark.
func newBenchGateway(b *testing.B, keys gwKeys, edit func(*MagicLink)) *MagicLink {
	m, _ := newGateway(b, keys, edit)
	m.logger = zap.New(zapcore.NewCore(zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig()),
		zapcore.AddSync(io.Discard), zapcore.InfoLevel))
	return m
}

// benchRequest is a GET request carrying a Caddy replacer, as Caddy's server hands it to handlers.
func benchRequest(target string) *http.Request {
	r := newGWRequest(http.MethodGet, target)
	r.Header.Set("User-Agent", "Mozilla/5.0")
	r.Header.Set("Accept", "text/html")
	return r.WithContext(context.WithValue(r.Context(), caddy.ReplacerCtxKey, caddy.NewReplacer()))
}

func BenchmarkServeHTTPCookie(b *testing.B) {
	benchCookie(b, nil)
}

// BenchmarkServeHTTPCookieRevocations is BenchmarkServeHTTPCookie with 100,000 revoked links and
// 10,000 revoked users held in memory, none of them the session's.
func BenchmarkServeHTTPCookieRevocations(b *testing.B) {
	now := time.Now()
	all := make([]store.Revocation, 0, 110_000)
	for i := range 100_000 {
		all = append(all, store.Revocation{Kind: store.KindLink, Value: "revoked-link-" + strconv.Itoa(i), At: now, Until: now.Add(time.Hour)})
	}
	for i := range 10_000 {
		all = append(all, store.Revocation{Kind: store.KindSubject, Value: "revoked-user-" + strconv.Itoa(i), At: now, Until: now.Add(time.Hour)})
	}
	st := new(appState)
	st.revocations.replace(all)
	benchCookie(b, &App{state: st})
}

// benchCookie measures the handler on requests carrying a valid session cookie, with app as the
// magic_link app (nil: none).
func benchCookie(b *testing.B, app *App) {
	keys := newGWKeys(b)
	m := newBenchGateway(b, keys, nil)
	m.app = func() *App { return app }
	r := benchRequest("/survey/42/page?x=1")
	line := "theme=dark; " + sessionCookie(b, m, aliceSession("/survey/42")) + "; lang=en"
	cookies := []string{line}
	w := &discardWriter{h: make(http.Header)}
	next := caddyhttp.HandlerFunc(func(http.ResponseWriter, *http.Request) error { return nil })
	b.ReportAllocs()
	for b.Loop() {
		cookies[0] = line // the handler removes the session cookie from the request
		r.Header["Cookie"] = cookies
		if err := m.ServeHTTP(w, r, next); err != nil {
			b.Fatal(err)
		}
	}
	if got := r.Header.Get("Cookie"); got != "theme=dark; lang=en" {
		b.Fatalf("upstream Cookie = %q, want the session cookie removed", got)
	}
	if r.Header.Get("Remote-User") != "alice" {
		b.Fatal("the session was not accepted")
	}
}

func BenchmarkServeHTTPNoCookie(b *testing.B) {
	keys := newGWKeys(b)
	m := newBenchGateway(b, keys, func(m *MagicLink) { m.Unauthenticated = UnauthenticatedPass })
	r := benchRequest("/page?x=1")
	r.Header.Set("Cookie", "theme=dark; lang=en")
	w := &discardWriter{h: make(http.Header)}
	next := caddyhttp.HandlerFunc(func(http.ResponseWriter, *http.Request) error { return nil })
	b.ReportAllocs()
	for b.Loop() {
		if err := m.ServeHTTP(w, r, next); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkServeHTTPRedeemBaseline is one raw ed25519.Verify of a link token's signing input: the
// unit the README measures BenchmarkServeHTTPRedeem in (≤ 1.15 ×). bench/run.sh runs the two
// back to back.
func BenchmarkServeHTTPRedeemBaseline(b *testing.B) {
	tok := newGWKeys(b).link(b, nil)
	input := []byte(tok[:strings.LastIndexByte(tok, '.')])
	pub, priv, err := ed25519.GenerateKey(nil)
	if err != nil {
		b.Fatal(err)
	}
	sig := ed25519.Sign(priv, input)
	b.ReportAllocs()
	for b.Loop() {
		if !ed25519.Verify(pub, input, sig) {
			b.Fatal("signature does not verify")
		}
	}
}

func BenchmarkServeHTTPRedeem(b *testing.B) {
	keys := newGWKeys(b)
	m := newBenchGateway(b, keys, nil)
	r := benchRequest("/cart?token=" + keys.link(b, nil))
	w := &discardWriter{h: make(http.Header)}
	b.ReportAllocs()
	for b.Loop() {
		clear(w.h)
		if err := m.ServeHTTP(w, r, nil); err != nil {
			b.Fatal(err)
		}
	}
}

// benchRedeemParallel redeems one of toks per operation, 16 redemptions in flight (as bench/run.sh
// sends over HTTP), through m.
func benchRedeemParallel(b *testing.B, m *MagicLink, toks []string) {
	var next atomic.Int64
	b.SetParallelism(16 / runtime.GOMAXPROCS(0))
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		w := &discardWriter{h: make(http.Header)}
		for pb.Next() {
			r := benchRequest("/cart?token=" + toks[int(next.Add(1)-1)%len(toks)])
			clear(w.h)
			if err := m.ServeHTTP(w, r, nil); err != nil {
				b.Error(err)
				return
			}
			if w.h.Get("Set-Cookie") == "" {
				b.Error("no session")
				return
			}
		}
	})
}

// BenchmarkServeHTTPRedeemParallel is the baseline of BenchmarkServeHTTPRedeemOnce: stateless
// redemptions, 16 in flight.
func BenchmarkServeHTTPRedeemParallel(b *testing.B) {
	keys := newGWKeys(b)
	toks := make([]string, 1000)
	for i := range toks {
		toks[i] = keys.link(b, nil)
	}
	benchRedeemParallel(b, newBenchGateway(b, keys, nil), toks)
}

// BenchmarkServeHTTPRedeemOnce redeems one-time links recorded in a real Redis on loopback, 16 in
// flight, each link once: the in-process view of bench/run.sh's scenario 5.
func BenchmarkServeHTTPRedeemOnce(b *testing.B) {
	redistest.Require(b)
	srv := redistest.Start(b)
	st, err := store.OpenRedis(store.RedisOptions{Addresses: []string{srv.Addr}})
	if err != nil {
		b.Fatal(err)
	}
	state := newAppState(st, time.Second, zap.NewNop())
	b.Cleanup(func() { _ = state.Destruct() })
	app := &App{state: state, mu: new(sync.Mutex), Timeout: caddy.Duration(time.Second)}
	keys := newGWKeys(b)
	m := newBenchGateway(b, keys, nil)
	m.Once, m.app = true, func() *App { return app } // as Provision sets them with the app configured
	toks := make([]string, b.N)
	for i := range toks {
		toks[i] = keys.link(b, nil)
	}
	benchRedeemParallel(b, m, toks)
}

// apiBenchBody is the create request of the benchmarks, as bench/wrk.lua sends it.
const apiBenchBody = `{"user_id":"bench-user","expires_in_seconds":600}`

// rewindBody is a request body that can be read again after Reset.
type rewindBody struct{ strings.Reader }

func (*rewindBody) Close() error { return nil }

// BenchmarkAPICreate measures POST /v1/sign_in_tokens through the handler, 8 requests at a time
// per core (bench/run.sh's wrk keeps 16 open on 2 cores), with the links recorded in a real Redis
// and the log lines encoded as in production but thrown away: the issuing API's work per link
// without HTTP (bench/run.sh measures it over HTTP).
func BenchmarkAPICreate(b *testing.B) {
	redistest.Require(b)
	srv := redistest.Start(b)
	rs, err := store.OpenRedis(store.RedisOptions{URL: "redis://" + srv.Addr})
	if err != nil {
		b.Fatal(err)
	}
	a := newAPIWith(b, rs, zapcore.AddSync(io.Discard), zapcore.InfoLevel)
	next := caddyhttp.HandlerFunc(func(http.ResponseWriter, *http.Request) error { return nil })
	b.ReportAllocs()
	b.SetParallelism(8)
	b.RunParallel(func(pb *testing.PB) {
		body := new(rewindBody)
		r := newAPIHTTPRequest(b, "https://api.internal", apiRequest{http.MethodPost, "/v1/sign_in_tokens", bearer, apiBenchBody})
		w := &discardWriter{h: make(http.Header)}
		for pb.Next() {
			body.Reset(apiBenchBody)
			r.Body = body
			clear(w.h)
			if err := a.ServeHTTP(w, r, next); err != nil {
				b.Error(err) // not Fatal: this is not the benchmark's goroutine
				return
			}
		}
	})
}
