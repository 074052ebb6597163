package main

import (
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// cookieName is the session cookie's name on the scenarios' sites (insecure_cookie).
const cookieName = "magic_link"

// site is a site block of the scenarios: magic_link in front of reverse_proxy to the upstream.
type site struct {
	name     string
	port     int
	upstream string
	gateway  string // more magic_link subdirectives, whole lines
	after    string // more directives after reverse_proxy, whole lines
	// logged gives the site an access log, WORK/NAME-access.log, with the token deleted as
	// Caddyfile.example does. The connections and the storm go without: Caddy writes each line
	// to the file under one lock, and with thousands of requests in flight that lock, not the
	// gateway, is what they would measure.
	logged bool
}

func (e *env) block(s site) string {
	log := ""
	if s.logged {
		log = fmt.Sprintf("\tlog {\n\t\toutput file %s/%s-access.log\n\t\tformat filter {\n\t\t\trequest>uri query {\n\t\t\t\tdelete token\n\t\t\t}\n\t\t}\n\t}\n", e.work, s.name)
	}
	return fmt.Sprintf(`http://127.0.0.1:%d {
	bind 127.0.0.1
%s	magic_link {
		keys %s
		audience %s
		insecure_cookie
		session_secret %s
%s	}
	reverse_proxy %s {
%s	}
%s}
`, s.port, log, e.keys, audience, e.secret, s.gateway, s.upstream, keepAlive, s.after)
}

// keepAlive lets Caddy keep up to 1,024 idle connections to the upstream (its default is 32):
// with thousands of requests in flight, the scenarios measure requests, not new upstream
// connections.
const keepAlive = "\t\ttransport http {\n\t\t\tkeepalive_idle_conns_per_host 1024\n\t\t}\n"

// globals is a Caddyfile's global options block: admin on the given address (or "off"), the
// storage in the work directory, and more options as given.
func (e *env) globals(name, admin, more string) string {
	return fmt.Sprintf(`{
	admin %s
	auto_https off
	persist_config off
	storage file_system %s/%s-storage
%s}
`, admin, e.work, name, more)
}

// newClient returns an HTTP client that keeps up to conns connections, does not follow
// redirects and gives up on a request after timeout.
func newClient(conns int, timeout time.Duration) *http.Client {
	return &http.Client{
		Transport: &http.Transport{
			MaxIdleConns: conns, MaxIdleConnsPerHost: conns, DisableCompression: true,
			DialContext: (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
		},
		Timeout:       timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// outcome is what one request got.
type outcome struct {
	status  int
	session string // the value of a session cookie it set, if any
	cleared bool   // it cleared the session cookie
	body    string // the first 4 KiB of the body
	err     error
	took    time.Duration
}

// retries counts the requests get sent again, see get.
var retries atomic.Int64

// get sends a GET with the session cookie (when not empty) and returns what it got. When the
// connection failed before any answer (reset, or closed: Caddy closes the keep-alive connections
// of its old servers when it reloads), it sends it once more, as browsers do with a request that
// may be repeated; Go's client does that itself only in some of those cases. retries counts them.
func get(c *http.Client, target, cookie string) outcome {
	start := time.Now()
	o := getOnce(c, target, cookie)
	var op *net.OpError
	if errors.As(o.err, &op) && (op.Op == "read" || op.Op == "write") || errors.Is(o.err, io.EOF) || errors.Is(o.err, io.ErrUnexpectedEOF) {
		// The other idle connections to that server may be closed too: drop them all, so that
		// the request goes on a new one.
		c.CloseIdleConnections()
		retries.Add(1)
		o = getOnce(c, target, cookie)
	}
	o.took = time.Since(start)
	return o
}

// getOnce sends the GET.
func getOnce(c *http.Client, target, cookie string) outcome {
	req, err := http.NewRequest(http.MethodGet, target, nil)
	if err != nil {
		return outcome{err: err}
	}
	if cookie != "" {
		req.Header.Set("Cookie", cookieName+"="+cookie)
	}
	res, err := c.Do(req)
	if err != nil {
		return outcome{err: err}
	}
	body, err := io.ReadAll(io.LimitReader(res.Body, 4096))
	_, _ = io.Copy(io.Discard, res.Body)
	res.Body.Close()
	o := outcome{status: res.StatusCode, body: string(body), err: err}
	for _, ck := range res.Cookies() {
		if ck.Name != cookieName {
			continue
		}
		if ck.Value == "" || ck.MaxAge < 0 {
			o.cleared = true
		} else {
			o.session = ck.Value
		}
	}
	return o
}

// latencies collects request durations from many goroutines.
type latencies struct {
	mu sync.Mutex
	d  []time.Duration
}

func (l *latencies) add(d ...time.Duration) {
	l.mu.Lock()
	l.d = append(l.d, d...)
	l.mu.Unlock()
}

// quantile returns the nearest-rank q-quantile, or 0 without samples.
func (l *latencies) quantile(q float64) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.d) == 0 {
		return 0
	}
	slices.Sort(l.d)
	i := int(math.Ceil(q*float64(len(l.d)))) - 1
	return l.d[max(i, 0)]
}

// counts counts outcomes by a label, from many goroutines, and keeps one example of each.
type counts struct {
	mu       sync.Mutex
	n        map[string]int
	examples map[string]string
}

func (c *counts) add(label, example string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n == nil {
		c.n, c.examples = map[string]int{}, map[string]string{}
	}
	c.n[label]++
	if _, ok := c.examples[label]; !ok {
		c.examples[label] = example
	}
}

func (c *counts) get(label string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n[label]
}

// String lists the counts by label, in order of the labels.
func (c *counts) String() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	labels := make([]string, 0, len(c.n))
	for l := range c.n {
		labels = append(labels, l)
	}
	slices.Sort(labels)
	parts := make([]string, len(labels))
	for i, l := range labels {
		parts[i] = fmt.Sprintf("%s %d", l, c.n[l])
	}
	return strings.Join(parts, ", ")
}

// unexpected returns the labels counted that are not in want, each with its example.
func (c *counts) unexpected(want ...string) []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for l, n := range c.n {
		if !slices.Contains(want, l) {
			out = append(out, fmt.Sprintf("%d × %s (e.g. %s)", n, l, c.examples[l]))
		}
	}
	slices.Sort(out)
	return out
}

// label names an outcome for counting: the status, or the error.
func (o outcome) label() string {
	if o.err != nil {
		return "error"
	}
	return fmt.Sprint(o.status)
}

// example describes an outcome for a failure message, without any token or cookie value (an
// error of the client names the request's URL: it is left out).
func (o outcome) example() string {
	if ue := (*url.Error)(nil); errors.As(o.err, &ue) {
		return ue.Op + ": " + ue.Err.Error()
	}
	if o.err != nil {
		return o.err.Error()
	}
	return fmt.Sprintf("status %d, body %.80q", o.status, o.body)
}

// prepare starts the scenario's upstream and picks n free loopback ports; it fails the report
// and returns false when it cannot.
func (e *env) prepare(r *report, n int) (*upstream, []int, bool) {
	up, err := startUpstream("127.0.0.1:0")
	if err != nil {
		r.fail("upstream: %v", err)
		return nil, nil, false
	}
	e.running = append(e.running, up)
	ports, err := freePorts(n)
	if err != nil {
		r.fail("ports: %v", err)
		return nil, nil, false
	}
	return up, ports, true
}

// upstream is the app behind the gateway. It answers with the Remote-User it was given, and
// counts the requests that reached it without an identity the gateway set: no Remote-User, one
// that no link of the scenarios carries, a token parameter left in the URL, or the session
// cookie passed on.
type upstream struct {
	addr       string
	srv        *http.Server
	delay      atomic.Int64 // nanoseconds to wait before answering
	requests   atomic.Int64
	conns      atomic.Int64 // connections accepted
	violations atomic.Int64
	example    atomic.Value // one violating request, described
}

const userPrefix = "load-"

// startUpstream starts an upstream on addr (host:port; port 0 for any free one).
func startUpstream(addr string) (*upstream, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	u := &upstream{addr: ln.Addr().String()}
	u.srv = &http.Server{Handler: u, ReadHeaderTimeout: 10 * time.Second, ConnState: func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			u.conns.Add(1)
		}
	}}
	go func() { _ = u.srv.Serve(ln) }()
	return u, nil
}

func (u *upstream) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	u.requests.Add(1)
	user := r.Header.Get("Remote-User")
	switch {
	case !strings.HasPrefix(user, userPrefix):
		u.violate(fmt.Sprintf("Remote-User %.40q", user))
	case r.URL.Query().Has("token"):
		u.violate("a token parameter in " + r.URL.Path)
	case strings.Contains(r.Header.Get("Cookie"), cookieName+"="):
		u.violate("the session cookie passed on")
	}
	if d := time.Duration(u.delay.Load()); d > 0 {
		time.Sleep(d)
	}
	_, _ = io.WriteString(w, user)
}

func (u *upstream) violate(what string) {
	u.violations.Add(1)
	u.example.CompareAndSwap(nil, what)
}

// stop closes the upstream's listener and connections: it is down.
func (u *upstream) stop() { _ = u.srv.Close() }

// checkUpstream fails the report if a request reached the upstream without a valid session.
func checkUpstream(r *report, u *upstream) {
	if n := u.violations.Load(); n > 0 {
		r.fail("%d requests reached the upstream without a valid session (e.g. %v)", n, u.example.Load())
	}
}
