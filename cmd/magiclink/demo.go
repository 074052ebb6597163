package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"html/template"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	_ "github.com/caddyserver/caddy/v2/modules/standard" // the http app, reverse_proxy, the Caddyfile adapter, log encoders

	_ "github.com/magiclink-dev/magiclink/caddymodule" // the magic_link handler and directive
	"github.com/magiclink-dev/magiclink/internal/queryparam"
	"github.com/magiclink-dev/magiclink/token"
)

// defaultDemoListen is the gateway's address when --listen is not given.
const defaultDemoListen = "127.0.0.1:8080"

// demoShutdownTimeout bounds how long stopping the demo app may take.
const demoShutdownTimeout = 5 * time.Second

// demoOptions configure demo.
type demoOptions struct {
	// Listen is the gateway's address: an IP address and a port; port 0 picks a free port.
	Listen string
	// FallBack makes demo pick a free port when it cannot listen on Listen.
	FallBack bool
	// Logs sends the magic_link handler's log (one line per decision) to standard error;
	// otherwise Caddy's log is discarded.
	Logs bool
}

func runDemo(args []string, _ io.Reader, stdout, stderr io.Writer) int {
	flags := newFlagSet("demo", "magiclink demo [--listen 127.0.0.1:8080]")
	listen := flags.String("listen", defaultDemoListen,
		"gateway `address`; port 0 picks a free port (the default falls back to a free port when 8080 is taken)")
	rest, err := parseFlags(flags, args, stdout)
	if err != nil {
		return usageError(stderr, "demo", err)
	}
	if len(rest) > 0 {
		return usageError(stderr, "demo", fmt.Errorf("unexpected argument %q", rest[0]))
	}
	explicit := false
	flags.Visit(func(f *flag.Flag) { explicit = explicit || f.Name == "listen" })

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := demo(ctx, stdout, demoOptions{Listen: *listen, FallBack: !explicit, Logs: true}); err != nil {
		return failure(stderr, "demo", err)
	}
	return exitOK
}

// demo runs the magic_link gateway in front of a small demo app until ctx is done. It makes a
// fresh key pair, starts the app on a free loopback port and Caddy on opts.Listen, and writes the
// site's address, three links to try and how to stop to stdout. It returns once Caddy and the app
// have stopped and the temporary files are removed.
func demo(ctx context.Context, stdout io.Writer, opts demoOptions) (err error) {
	host, err := demoHost(opts.Listen)
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "magiclink-demo-")
	if err != nil {
		return fmt.Errorf("make a temporary directory: %w", err)
	}
	defer os.RemoveAll(dir)

	privateJWK, publicJWKS, err := token.GenerateKey(token.EdDSA, "")
	if err != nil {
		return fmt.Errorf("generate a key: %w", err)
	}
	signer, err := token.ParseSigner(privateJWK)
	if err != nil {
		return err
	}
	keyFile := filepath.Join(dir, "demo.public.jwks")
	if err := os.WriteFile(keyFile, publicJWKS, 0o600); err != nil {
		return fmt.Errorf("write the public key: %w", err)
	}
	privateFile := filepath.Join(dir, "demo.private.jwk")
	if err := os.WriteFile(privateFile, privateJWK, 0o600); err != nil {
		return fmt.Errorf("write the private key: %w", err)
	}
	var secret [24]byte
	rand.Read(secret[:])
	apiSecret := "sk_demo_" + hex.EncodeToString(secret[:])

	appListener, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		return fmt.Errorf("start the demo app: %w", err)
	}
	app := &http.Server{Handler: demoApp(), ReadHeaderTimeout: 10 * time.Second}
	go app.Serve(appListener)
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), demoShutdownTimeout)
		defer cancel()
		if e := app.Shutdown(sctx); e != nil && err == nil {
			err = fmt.Errorf("stop the demo app: %w", e)
		}
	}()

	siteListener, fellBack, err := reserveAddr(opts.Listen, opts.FallBack)
	if err != nil {
		return err
	}
	apiListener, _, err := reserveAddr(net.JoinHostPort(host, "0"), false)
	if err != nil {
		siteListener.Close()
		return err
	}
	// Both are held until both are chosen, so the two addresses differ; Caddy binds them next.
	addr, apiAddr := siteListener.Addr().String(), apiListener.Addr().String()
	siteListener.Close()
	apiListener.Close()
	origin := "http://" + addr
	site := demoSite{origin: origin, addr: addr, upstream: appListener.Addr().String(), keyFile: keyFile,
		apiAddr: apiAddr, privateFile: privateFile, apiSecret: apiSecret}
	cfg, err := demoConfig(demoCaddyfile(site, dir, opts.Logs))
	if err != nil {
		return err
	}
	if err := caddy.Load(cfg, true); err != nil {
		return fmt.Errorf("start Caddy on %s: %w; choose another address with --listen", addr, err)
	}
	defer caddy.Stop()

	links, err := demoLinks(signer, origin, time.Now())
	if err != nil {
		return err
	}
	if fellBack {
		fmt.Fprintf(stdout, "%s is in use, so the demo took a free port.\n", opts.Listen)
	}
	fmt.Fprintf(stdout, "Caddy with magic_link is serving the demo app at %s\n\n", origin)
	for _, l := range links {
		fmt.Fprintf(stdout, "%s\n  %s\n\n", l.about, l.url)
	}
	fmt.Fprintf(stdout, "Mint a link from a backend, the way Clerk's API does (the issuing API listens on %s only):\n  %s\n\n",
		apiAddr, demoCurl(apiAddr, apiSecret))
	fmt.Fprintln(stdout, "Press Ctrl-C to stop.")

	<-ctx.Done()
	return nil
}

// demoHost checks listen and returns its host.
func demoHost(listen string) (string, error) {
	host, port, err := net.SplitHostPort(listen)
	if err == nil {
		var ip netip.Addr
		if ip, err = netip.ParseAddr(host); err == nil && ip.IsUnspecified() {
			err = errors.New("unspecified address")
		}
	}
	if err != nil || port == "" {
		return "", fmt.Errorf("--listen %q: give an IP address and a port, such as 127.0.0.1:8080 (port 0 picks a free one)", listen)
	}
	return host, nil
}

// reserveAddr listens on listen (port 0 picks a free port); the caller closes the listener once
// it knows the address. When nothing can listen on listen and fallBack is set, it listens on a
// free port of the same host instead, and fellBack is true.
func reserveAddr(listen string, fallBack bool) (ln net.Listener, fellBack bool, err error) {
	ln, err = net.Listen("tcp", listen)
	if err != nil && fallBack {
		host, _, _ := net.SplitHostPort(listen)
		ln, err = net.Listen("tcp", net.JoinHostPort(host, "0"))
		fellBack = true
	}
	if err != nil {
		return nil, false, fmt.Errorf("cannot listen on %s: %w; choose another address with --listen", listen, err)
	}
	return ln, fellBack, nil
}

// demoSite is what the demo's Caddyfile serves.
type demoSite struct {
	origin, addr, upstream, keyFile string // the gateway: its origin and address, the app, the public key
	apiAddr, privateFile, apiSecret string // the issuing API: its address, signing key and bearer key
}

// demoCurl is a curl command line that mints a link through the demo's issuing API.
func demoCurl(apiAddr, secret string) string {
	return fmt.Sprintf(`curl -s -X POST http://%s/v1/sign_in_tokens -H 'Authorization: Bearer %s' -H 'Content-Type: application/json' -d '{"user_id":"api-user","expires_in_seconds":600}'`,
		apiAddr, secret)
}

// demoCaddyfile returns the Caddyfile of the demo: magic_link on s.addr in front of the app,
// verifying links for s.origin, the issuing API on s.apiAddr, Caddy's storage (which keeps the
// generated session secret) and the state file under dir.
func demoCaddyfile(s demoSite, dir string, logs bool) string {
	host, _, _ := net.SplitHostPort(s.addr)
	output := "discard"
	if logs {
		output = "stderr"
	}
	return fmt.Sprintf(`{
	admin off
	persist_config off
	grace_period 2s
	storage file_system %q
	log {
		output %s
		format console
		include http.handlers.magic_link
	}
	magic_link {
		store file %q
	}
}

%s {
	bind %s
	magic_link {
		keys %q
		audience %s
		insecure_cookie
		unauthenticated pass
		logout /signout /
	}
	reverse_proxy %s
}

http://%s {
	bind %s
	magic_link_api {
		key %q
		secret_key %q
		url %s/
	}
	respond 404
}
`, filepath.Join(dir, "caddy"), output, filepath.Join(dir, "state.db"), s.origin, host, s.keyFile, s.origin, s.upstream,
		s.apiAddr, host, s.privateFile, s.apiSecret, s.origin)
}

// demoConfig adapts a Caddyfile to Caddy's JSON config.
func demoConfig(caddyfile string) ([]byte, error) {
	adapter := caddyconfig.GetAdapter("caddyfile")
	if adapter == nil {
		return nil, errors.New("the caddyfile config adapter is not compiled in")
	}
	cfg, _, err := adapter.Adapt([]byte(caddyfile), nil)
	if err != nil {
		return nil, fmt.Errorf("adapt the demo Caddyfile: %w", err)
	}
	return cfg, nil
}

// A demoLink is a link to try, with one sentence on what to expect.
type demoLink struct {
	about, url string
}

// demoLinks mints the demo's links for the site at origin: one that signs demo-user in, one that
// expired an hour before now, a one-time link and one limited to /survey/42.
func demoLinks(signer *token.Signer, origin string, now time.Time) ([]demoLink, error) {
	aud := []string{origin}
	links := []struct {
		about, path string
		claims      token.Claims
	}{
		{
			about:  `Ready link: opening it signs you in as demo-user and shows "Signed in as demo-user".`,
			path:   "/",
			claims: token.Claims{Subject: "demo-user", Email: "demo@example.com", Name: "Demo User", Expiry: now.Add(time.Hour)},
		},
		{
			about:  `Expired link: it expired an hour ago, so the gateway answers "Link expired" (401) and signs nobody in.`,
			path:   "/",
			claims: token.Claims{Subject: "demo-user", IssuedAt: now.Add(-2 * time.Hour), Expiry: now.Add(-time.Hour)},
		},
		{
			about:  `One-time link: the first click signs you in; opened again in another browser or a private window it answers "Link already used" (401). A second click in the same browser just takes you in.`,
			path:   "/",
			claims: token.Claims{Subject: "demo-user", Email: "demo@example.com", Name: "Demo User", Once: true, Expiry: now.Add(time.Hour)},
		},
		{
			about:  `Scoped link: it signs you in on /survey/42 only; every other page of the site still shows "Not signed in".`,
			path:   "/survey/42",
			claims: token.Claims{Subject: "demo-user", Email: "demo@example.com", Name: "Demo User", Path: "/survey/42", Expiry: now.Add(time.Hour)},
		},
	}
	out := make([]demoLink, 0, len(links))
	for _, l := range links {
		l.claims.Audience = aud
		tok, err := signer.Sign(l.claims)
		if err != nil {
			return nil, fmt.Errorf("sign a demo link: %w", err)
		}
		u, err := token.Link(origin+l.path, queryparam.DefaultName, tok)
		if err != nil {
			return nil, err
		}
		out = append(out, demoLink{about: l.about, url: u})
	}
	return out, nil
}

// demoApp returns the handler of the demo app behind the gateway: every path shows who is signed
// in, as the gateway says in Remote-User, Remote-Email and Remote-Name. The gateway itself answers
// /signout (its logout endpoint).
func demoApp() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'")
		demoPage.Execute(w, demoPageData{
			User:  r.Header.Get("Remote-User"),
			Email: r.Header.Get("Remote-Email"),
			Name:  r.Header.Get("Remote-Name"),
			Path:  r.URL.Path,
		})
	})
	return mux
}

// demoPageData fills demoPage.
type demoPageData struct {
	User, Email, Name, Path string
}

// demoPage is the demo app's only page.
var demoPage = template.Must(template.New("page").Parse(`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="data:,">
<title>magiclink demo</title>
<style>
body { font: 1.05rem/1.5 system-ui, sans-serif; color: #1d2330; background: #eef1f5; margin: 0; }
header { background: #1d2330; color: #fff; padding: .8rem 1.5rem; font-weight: 600; letter-spacing: .02em; }
main { max-width: 32rem; margin: 12vh auto; padding: 2rem 2.2rem; background: #fff; border-radius: .6rem; box-shadow: 0 2px 10px rgba(0,0,0,.08); }
h1 { font-size: 1.5rem; margin: 0 0 1rem; }
.dot { display: inline-block; width: .7rem; height: .7rem; border-radius: 50%; margin-right: .5rem; background: #9aa3ae; }
.in .dot { background: #23a55a; }
dl { display: grid; grid-template-columns: max-content 1fr; gap: .3rem 1.2rem; margin: 0 0 1.5rem; }
dt { color: #5c6775; }
dd { margin: 0; }
code { background: #eef1f5; padding: .1rem .35rem; border-radius: .25rem; }
a.button { display: inline-block; padding: .55rem 1.3rem; border-radius: .35rem; background: #2456c7; color: #fff; text-decoration: none; }
p.note { color: #5c6775; font-size: .9rem; margin: 1.5rem 0 0; }
</style>
</head>
<body>
<header>magiclink demo app</header>
{{if .User -}}
<main class="in">
<h1><span class="dot"></span>Signed in as {{.User}}</h1>
<dl>
{{with .Name}}<dt>Name</dt><dd>{{.}}</dd>{{end}}
{{with .Email}}<dt>Email</dt><dd>{{.}}</dd>{{end}}
<dt>Page</dt><dd><code>{{.Path}}</code></dd>
</dl>
<a class="button" href="/signout">Sign out</a>
<p class="note">The gateway checked your link, set an HttpOnly session cookie and told this app who you are in the Remote-User header.</p>
</main>
{{- else -}}
<main>
<h1><span class="dot"></span>Not signed in</h1>
<dl><dt>Page</dt><dd><code>{{.Path}}</code></dd></dl>
<p class="note">Open one of the links that <code>magiclink demo</code> printed in your terminal.</p>
</main>
{{- end}}
</body>
</html>
`))
