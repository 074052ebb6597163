package e2e

import (
	"bytes"
	"context"
	"html/template"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	texttemplate "text/template"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	_ "github.com/caddyserver/caddy/v2/modules/standard"
	"github.com/chromedp/chromedp"

	_ "github.com/magiclink-dev/magiclink/caddymodule"
	"github.com/magiclink-dev/magiclink/internal/freeport"
	"github.com/magiclink-dev/magiclink/internal/queryparam"
	"github.com/magiclink-dev/magiclink/token"
)

// chromiumPath is where Debian's chromium package installs the browser.
const chromiumPath = "/usr/bin/chromium"

// sessionCookie is the session cookie's name: the magic_link default with insecure_cookie.
const sessionCookie = "magic_link"

// appCookie is a cookie the test app sets without HttpOnly, so scripts can read it.
const appCookie = "app_visit"

// A gateway is Caddy with magic_link in front of the test app, serving two sites on loopback.
type gateway struct {
	redirect string // origin of the site with redeem redirect
	confirm  string // origin of the site with redeem confirm
	signer   *token.Signer
}

// startGateway starts the test app and Caddy with testdata/Caddyfile.tmpl, both stopped when the
// test ends.
func startGateway(t *testing.T) *gateway {
	t.Helper()
	dir := t.TempDir()
	privateJWK, publicJWKS, err := token.GenerateKey(token.EdDSA, "")
	if err != nil {
		t.Fatal(err)
	}
	signer, err := token.ParseSigner(privateJWK)
	if err != nil {
		t.Fatal(err)
	}
	keys := filepath.Join(dir, "public.jwks")
	if err := os.WriteFile(keys, publicJWKS, 0o600); err != nil {
		t.Fatal(err)
	}

	app := httptest.NewServer(testApp())
	t.Cleanup(app.Close)

	g := &gateway{redirect: "http://" + freeAddr(t), confirm: "http://" + freeAddr(t), signer: signer}
	tmpl, err := texttemplate.ParseFiles(filepath.Join("testdata", "Caddyfile.tmpl"))
	if err != nil {
		t.Fatal(err)
	}
	var caddyfile bytes.Buffer
	err = tmpl.Execute(&caddyfile, map[string]string{
		"Storage":  filepath.Join(dir, "caddy"),
		"Keys":     keys,
		"Redirect": g.redirect,
		"Confirm":  g.confirm,
		"Upstream": app.Listener.Addr().String(),
	})
	if err != nil {
		t.Fatal(err)
	}
	cfg, _, err := caddyconfig.GetAdapter("caddyfile").Adapt(caddyfile.Bytes(), nil)
	if err != nil {
		t.Fatalf("adapting the Caddyfile: %v", err)
	}
	if err := caddy.Load(cfg, true); err != nil {
		t.Fatalf("starting Caddy: %v", err)
	}
	t.Cleanup(func() {
		if err := caddy.Stop(); err != nil {
			t.Errorf("stopping Caddy: %v", err)
		}
	})
	return g
}

// freeAddr returns a loopback address with a port that was free a moment ago and that no other
// test of this process was given.
func freeAddr(t *testing.T) string {
	t.Helper()
	port, err := freeport.Take()
	if err != nil {
		t.Fatal(err)
	}
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
}

// link mints a link to path on the site at origin with claims c; an empty audience becomes origin.
func (g *gateway) link(t *testing.T, origin, path string, c token.Claims) string {
	t.Helper()
	if len(c.Audience) == 0 {
		c.Audience = []string{origin}
	}
	tok, err := g.signer.Sign(c)
	if err != nil {
		t.Fatal(err)
	}
	u, err := token.Link(origin+path, queryparam.DefaultName, tok)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// testApp is the app behind the gateway. Its page shows who is signed in (from the identity
// headers), and a line that a script rewrites, so a test can tell whether scripts run. It sets
// appCookie, readable by scripts.
func testApp() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.SetCookie(w, &http.Cookie{Name: appCookie, Value: "1", Path: "/", SameSite: http.SameSiteLaxMode})
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		testPage.Execute(w, map[string]string{
			"User":  r.Header.Get("Remote-User"),
			"Email": r.Header.Get("Remote-Email"),
		})
	})
}

// testPage is the test app's page.
var testPage = template.Must(template.New("page").Parse(`<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><link rel="icon" href="data:,"><title>test app</title>
<style>body { font: 18px/1.5 system-ui, sans-serif; margin: 3rem; }</style></head>
<body>
<h1>{{if .User}}Signed in as {{.User}}{{else}}Not signed in{{end}}</h1>
{{with .Email}}<p id="email">{{.}}</p>{{end}}
<p id="js">JavaScript off</p>
<script>document.getElementById("js").textContent = "JavaScript on";</script>
</body>
</html>
`))

// browserWait bounds every wait on the browser: one step (a navigation, a query) must finish in it.
const browserWait = 20 * time.Second

// newBrowser starts headless Chromium for the test and returns a context of it, ended (with the
// browser) when the test ends. Without Chromium the test is skipped, or fails in CI.
func newBrowser(t *testing.T) context.Context {
	t.Helper()
	if _, err := os.Stat(chromiumPath); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("Chromium is required in CI: %v; install the chromium package", err)
		}
		t.Skipf("Chromium is not installed (%v); apt-get install chromium to run the browser tests", err)
	}
	profile := t.TempDir()
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(chromiumPath),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.UserDataDir(profile),
		chromedp.WindowSize(1000, 640),
	)
	t.Cleanup(cancelAlloc)
	ctx, cancel := chromedp.NewContext(allocCtx)
	t.Cleanup(cancel)

	startWithin(t, ctx, cancel, "starting Chromium")
	return ctx
}

// startWithin starts the browser or tab of ctx, bounded by browserWait. The first Run of a
// context must not carry a timeout (it would end the browser or tab), so a timer bounds it.
func startWithin(t *testing.T, ctx context.Context, cancel context.CancelFunc, what string) {
	t.Helper()
	started := make(chan error, 1)
	go func() { started <- chromedp.Do(ctx) }()
	select {
	case err := <-started:
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	case <-time.After(browserWait):
		cancel()
		t.Fatalf("%s: no answer within %s", what, browserWait)
	}
}

// newTab opens a tab in a fresh browser context (its own cookie jar) of the browser.
func newTab(t *testing.T, browser context.Context) context.Context {
	t.Helper()
	ctx, cancel := chromedp.NewContext(browser, chromedp.WithNewBrowserContext())
	t.Cleanup(cancel)
	startWithin(t, ctx, cancel, "opening a tab")
	return ctx
}

// run runs the action on the tab, bounded by browserWait.
func run[T any](t *testing.T, tab context.Context, what string, a chromedp.Action[T]) T {
	t.Helper()
	ctx, cancel := context.WithTimeout(tab, browserWait)
	defer cancel()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	return v
}

// saveScreenshot writes the PNG png as name under the test's temporary directory and, when the
// environment variable E2E_ARTIFACTS names a directory, there too.
func saveScreenshot(t *testing.T, name string, png []byte) {
	t.Helper()
	dirs := []string{t.TempDir()}
	if dir := os.Getenv("E2E_ARTIFACTS"); dir != "" {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		dirs = append(dirs, dir)
	}
	for _, dir := range dirs {
		if err := os.WriteFile(filepath.Join(dir, name), png, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
