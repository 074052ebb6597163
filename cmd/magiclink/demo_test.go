package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// demoWait bounds every wait for the demo: starting, answering, stopping.
const demoWait = 30 * time.Second

// A runningDemo is a demo started by startDemo.
type runningDemo struct {
	origin                      string // the site, http://127.0.0.1:PORT
	ready, expired, once, scope string // the four printed links, in order
	curl                        string // the printed curl line that mints a link
	output                      string // everything demo printed
	stop                        func() error
}

// startDemo runs demo in-process with opts until the returned demo's stop is called (or the test
// ends) and returns what it printed.
// demoCookie is the session cookie's name: the magic_link default with insecure_cookie.
const demoCookie = "magic_link"

func startDemo(t *testing.T, opts demoOptions) *runningDemo {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		err := demo(ctx, pw, opts)
		pw.Close()
		done <- err
	}()

	var (
		mu    sync.Mutex
		lines []string
	)
	printed := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(pr)
		sc.Buffer(nil, 64<<10)
		signalled := false
		for sc.Scan() {
			mu.Lock()
			lines = append(lines, sc.Text())
			mu.Unlock()
			if sc.Text() == "Press Ctrl-C to stop." && !signalled {
				close(printed)
				signalled = true
			}
		}
	}()

	var once sync.Once
	var stopErr error
	stop := func() error {
		once.Do(func() {
			cancel()
			select {
			case stopErr = <-done:
			case <-time.After(demoWait):
				stopErr = errors.New("demo did not return after its context was cancelled")
			}
		})
		return stopErr
	}
	t.Cleanup(func() {
		if err := stop(); err != nil {
			t.Error(err)
		}
	})

	select {
	case <-printed:
	case err := <-done:
		done <- err
		t.Fatalf("demo returned before printing its links: %v", err)
	case <-time.After(demoWait):
		t.Fatal("demo did not print its links in time")
	}

	mu.Lock()
	d := &runningDemo{output: strings.Join(lines, "\n"), stop: stop}
	var links []string
	for _, l := range lines {
		if rest, ok := strings.CutPrefix(l, "Caddy with magic_link is serving the demo app at "); ok {
			d.origin = rest
		}
		if strings.HasPrefix(l, "  http://") {
			links = append(links, strings.TrimSpace(l))
		}
		if strings.HasPrefix(l, "  curl ") {
			d.curl = strings.TrimSpace(l)
		}
	}
	mu.Unlock()
	if d.origin == "" || len(links) != 4 {
		t.Fatalf("demo printed no site address or not four links:\n%s", d.output)
	}
	d.ready, d.expired, d.once, d.scope = links[0], links[1], links[2], links[3]
	return d
}

func TestDemo(t *testing.T) {
	// Hold a port so that the demo has to fall back to a free one.
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	d := startDemo(t, demoOptions{Listen: taken.Addr().String(), FallBack: true})

	if d.origin == "http://"+taken.Addr().String() {
		t.Fatalf("demo claims to serve on the taken address %s", d.origin)
	}
	for _, want := range []string{
		taken.Addr().String() + " is in use", `signs you in as demo-user`, `expired an hour ago`, `Link already used`, `on /survey/42 only`, "/survey/42?token=",
	} {
		if !strings.Contains(d.output, want) {
			t.Errorf("demo output lacks %q:\n%s", want, d.output)
		}
	}
	for _, link := range []string{d.ready, d.expired, d.once, d.scope} {
		if !strings.HasPrefix(link, d.origin+"/") {
			t.Errorf("a printed link is not on the site %s", d.origin)
		}
	}

	// A step requests url (a printed link or a path on the site), following redirects, and
	// checks the final response and the cookie jar.
	type step struct {
		url     string
		status  int
		path    string // the final URL's path
		body    string // the page contains it
		session bool   // the jar holds a session cookie for the site afterwards
	}
	tests := []struct {
		name  string
		steps []step
	}{
		{"ready link signs in, sign-out signs out", []step{
			{d.ready, http.StatusOK, "/", "Signed in as demo-user", true},
			{"/", http.StatusOK, "/", "demo@example.com", true},
			{"/signout", http.StatusOK, "/", "Not signed in", false},
		}},
		{"one-time link signs in once; a second click in the same browser is harmless", []step{
			{d.once, http.StatusOK, "/", "Signed in as demo-user", true},
			{d.once, http.StatusOK, "/", "Signed in as demo-user", true},
		}},
		{"one-time link already used in another browser", []step{
			{d.once, http.StatusUnauthorized, "/", "already been used", false},
		}},
		{"expired link is refused", []step{
			{d.expired, http.StatusUnauthorized, "/", "Link expired", false},
			{"/", http.StatusOK, "/", "Not signed in", false},
		}},
		{"scoped link signs in on its path only", []step{
			{d.scope, http.StatusOK, "/survey/42", "Signed in as demo-user", true},
			{"/survey/42/page-2", http.StatusOK, "/survey/42/page-2", "Signed in as demo-user", true},
			{"/", http.StatusOK, "/", "Not signed in", true},
			{"/survey/421", http.StatusOK, "/survey/421", "Not signed in", true},
		}},
	}
	site, err := url.Parse(d.origin)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			jar, err := cookiejar.New(nil)
			if err != nil {
				t.Fatal(err)
			}
			client := &http.Client{Jar: jar, Timeout: demoWait}
			for i, s := range tt.steps {
				target := s.url
				if strings.HasPrefix(target, "/") {
					target = d.origin + target
				}
				resp, err := client.Get(target)
				if err != nil {
					t.Fatalf("step %d: %v", i, err)
				}
				body, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				if err != nil {
					t.Fatalf("step %d: %v", i, err)
				}
				if resp.StatusCode != s.status {
					t.Errorf("step %d: status %d, want %d", i, resp.StatusCode, s.status)
				}
				got := resp.Request.URL
				if got.Path != s.path || s.status == http.StatusOK && strings.Contains(got.RawQuery, "token") {
					t.Errorf("step %d: ended on %s (token in query: %v), want %s without the token",
						i, got.Path, strings.Contains(got.RawQuery, "token"), s.path)
				}
				if !strings.Contains(string(body), s.body) {
					t.Errorf("step %d: page lacks %q:\n%s", i, s.body, body)
				}
				if s.status == http.StatusUnauthorized && len(resp.Header.Values("Set-Cookie")) > 0 {
					t.Errorf("step %d: a refused link set a cookie", i)
				}
				session := false
				for _, c := range jar.Cookies(site) {
					session = session || c.Name == demoCookie && c.Value != ""
				}
				if session != s.session {
					t.Errorf("step %d: session cookie held = %v, want %v", i, session, s.session)
				}
			}
		})
	}

	t.Run("the printed curl line mints a link", func(t *testing.T) {
		m := regexp.MustCompile(`^curl -s -X POST (http://\S+) -H 'Authorization: Bearer (\S+)' -H 'Content-Type: application/json' -d '(.+)'$`).
			FindStringSubmatch(d.curl)
		if m == nil {
			t.Fatalf("no curl line of the expected shape: %q", d.curl)
		}
		req, err := http.NewRequest(http.MethodPost, m[1], strings.NewReader(m[3]))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+m[2])
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var minted struct{ URL, Status string }
		if err := json.NewDecoder(resp.Body).Decode(&minted); err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("the curl request: status %d, %v", resp.StatusCode, err)
		}
		if minted.Status != "pending" || !strings.HasPrefix(minted.URL, d.origin+"/?token=") {
			t.Fatalf("minted %+v, want a pending link to %s", minted, d.origin)
		}
		jar, err := cookiejar.New(nil)
		if err != nil {
			t.Fatal(err)
		}
		page, err := (&http.Client{Jar: jar, Timeout: demoWait}).Get(minted.URL)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(page.Body)
		page.Body.Close()
		if !strings.Contains(string(body), "Signed in as api-user") {
			t.Errorf("the minted link did not sign in api-user:\n%s", body)
		}
	})

	if err := d.stop(); err != nil {
		t.Fatalf("demo returned %v after Ctrl-C, want nil", err)
	}
	if conn, err := net.DialTimeout("tcp", site.Host, time.Second); err == nil {
		conn.Close()
		t.Errorf("%s still accepts connections after the demo stopped", site.Host)
	}
}

func TestDemoCommandLine(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()

	tests := []struct {
		name       string
		args       []string
		code       int
		stderrLine string
	}{
		{"no port", []string{"demo", "--listen", "127.0.0.1"}, exitFailure, `--listen "127.0.0.1": give an IP address and a port`},
		{"host name", []string{"demo", "--listen", "example.com:8080"}, exitFailure, `--listen "example.com:8080": give an IP address`},
		{"unspecified address", []string{"demo", "--listen", "0.0.0.0:0"}, exitFailure, `--listen "0.0.0.0:0": give an IP address`},
		{"taken port given explicitly", []string{"demo", "--listen", taken.Addr().String()}, exitFailure,
			"cannot listen on " + taken.Addr().String()},
		{"extra argument", []string{"demo", "now"}, exitUsage, `unexpected argument "now"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := cli(t, "", tt.args...)
			if code != tt.code {
				t.Errorf("exit %d, want %d", code, tt.code)
			}
			if stdout != "" {
				t.Errorf("stdout = %q, want nothing", stdout)
			}
			oneErrorLine(t, stderr, tt.stderrLine)
		})
	}
}

func TestDemoApp(t *testing.T) {
	tests := []struct {
		name    string
		path    string
		headers map[string]string
		status  int
		want    []string
		notWant []string
	}{
		{"signed in", "/", map[string]string{"Remote-User": "ann", "Remote-Email": "ann@example.com", "Remote-Name": "Ann"},
			http.StatusOK, []string{"Signed in as ann", "ann@example.com", "<dd>Ann</dd>", `href="/signout"`}, []string{"Not signed in"}},
		{"signed in without email or name", "/x", map[string]string{"Remote-User": "bob"},
			http.StatusOK, []string{"Signed in as bob", "<code>/x</code>"}, []string{"Email", "<dt>Name"}},
		{"not signed in", "/", nil,
			http.StatusOK, []string{"Not signed in"}, []string{"Signed in as", "/signout"}},
		{"identity is escaped", "/", map[string]string{"Remote-User": `<script>x</script>`, "Remote-Name": `"a" & b`},
			http.StatusOK, []string{"Signed in as &lt;script&gt;x&lt;/script&gt;", "&#34;a&#34; &amp; b"}, []string{"<script>"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, tt.path, nil)
			for k, v := range tt.headers {
				r.Header.Set(k, v)
			}
			w := httptest.NewRecorder()
			demoApp().ServeHTTP(w, r)
			body := w.Body.String()
			if w.Code != tt.status {
				t.Errorf("status %d, want %d", w.Code, tt.status)
			}
			for _, s := range tt.want {
				if !strings.Contains(body, s) {
					t.Errorf("page lacks %q:\n%s", s, body)
				}
			}
			for _, s := range tt.notWant {
				if strings.Contains(body, s) {
					t.Errorf("page contains %q:\n%s", s, body)
				}
			}
		})
	}
}
