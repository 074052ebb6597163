// Command load puts magiclink under load and faults: real Caddy processes built from this
// repository, a real redis-server, an upstream app of its own, all on 127.0.0.1. bench/load.sh
// builds and runs it; bench/README.md says what each scenario does and what it checks.
//
// Each scenario prints what it did and what it found, and ends with PASS or FAIL and the reasons;
// the command exits 1 when one failed. Every scenario is bounded in requests and time and stops
// by itself; every process it starts is stopped when it ends.
package main

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/magiclink-dev/magiclink/token"
)

// audience is the audience of every link and site of the scenarios.
const audience = "https://load.example"

// settings are the command's flags.
type settings struct {
	caddy, redisServer, work string

	conns     int           // connections of the connections scenario
	hold      time.Duration // how long they are held
	think     time.Duration // pause between two requests on one connection
	links     int           // valid links of the storm
	garbage   int           // garbage tokens of the storm
	cookies   int           // distinct garbage cookies sent after the storm
	rssGrowth int64         // bound on Caddy's RSS growth over the garbage cookies, in MiB
	onceLinks int           // one-time links of the Redis fault scenario
	rate      int           // their requests per second
	reloadFor time.Duration // how long the reload scenario runs
}

// scenario is one load or fault scenario.
type scenario struct {
	name, title string
	run         func(*env, *report)
}

var scenarios = []scenario{
	{"connections", "10,000 keep-alive connections on the session path", connections},
	{"storm", "a redemption storm: valid links and garbage interleaved, then distinct garbage cookies", storm},
	{"redis", "one-time links over two instances while Redis is killed (kill -9) and restarted", redisFault},
	{"upstream", "the upstream down, then slow", upstreamFault},
	{"reload", "config reloads (POST /load) every second under load, with revocations", reload},
}

func main() {
	var s settings
	var only string
	flag.StringVar(&s.caddy, "caddy", "", "the Caddy `binary` built from ./cmd/caddy")
	flag.StringVar(&s.redisServer, "redis-server", "redis-server", "the redis-server `binary`")
	flag.StringVar(&s.work, "work", "", "a `directory` for configs, logs and stores (default: a new one under $TMPDIR)")
	flag.StringVar(&only, "scenarios", "connections,storm,redis,upstream,reload", "the scenarios to run, comma-separated")
	flag.IntVar(&s.conns, "conns", 10000, "connections held open in the connections scenario")
	flag.DurationVar(&s.hold, "hold", 24*time.Second, "how long the connections scenario sends requests")
	flag.DurationVar(&s.think, "think", 8*time.Second, "pause between two requests on one connection (on average)")
	flag.IntVar(&s.links, "links", 50000, "valid links in the redemption storm")
	flag.IntVar(&s.garbage, "garbage", 50000, "garbage tokens in the redemption storm")
	flag.IntVar(&s.cookies, "cookies", 1000000, "distinct garbage session cookies sent after the storm")
	flag.Int64Var(&s.rssGrowth, "rss-growth", 64, "bound on Caddy's RSS growth (MiB) over the garbage cookies")
	flag.IntVar(&s.onceLinks, "once-links", 20000, "one-time links in the Redis fault scenario, each sent to both instances")
	flag.IntVar(&s.rate, "rate", 2000, "requests per second of the Redis fault scenario")
	flag.DurationVar(&s.reloadFor, "reload-for", 15*time.Second, "how long the reload scenario runs")
	flag.Parse()

	run, err := selected(only)
	if err == nil {
		err = s.check()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "load:", err)
		os.Exit(2)
	}
	e, err := newEnv(s)
	if err != nil {
		fmt.Fprintln(os.Stderr, "load:", err)
		os.Exit(1)
	}
	fmt.Printf("work directory: %s\n", e.work)
	var reports []*report
	for _, sc := range run {
		fmt.Printf("\n== %s: %s\n", sc.name, sc.title)
		r := &report{name: sc.name}
		start, sent := time.Now(), retries.Load()
		sc.run(e, r)
		e.stopAll()
		if n := retries.Load() - sent; n > 0 {
			r.figure("requests sent again after their connection failed before any answer: %d", n)
		}
		r.took = time.Since(start)
		r.print()
		reports = append(reports, r)
	}
	fmt.Printf("\n== summary\n")
	failed := false
	for _, r := range reports {
		fmt.Printf("%-12s %-4s %6.1fs\n", r.name, r.verdict(), r.took.Seconds())
		failed = failed || len(r.failures) > 0
	}
	if failed {
		os.Exit(1)
	}
}

// selected returns the scenarios named in the comma-separated list, in the order they run.
func selected(list string) ([]scenario, error) {
	names := strings.Split(list, ",")
	var run []scenario
	for _, sc := range scenarios {
		if i := slices.Index(names, sc.name); i >= 0 {
			run = append(run, sc)
			names = slices.Delete(names, i, i+1)
		}
	}
	if len(names) > 0 {
		return nil, fmt.Errorf("unknown scenario %q in -scenarios; the scenarios are connections, storm, redis, upstream and reload", names[0])
	}
	return run, nil
}

func (s settings) check() error {
	if s.caddy == "" {
		return errors.New("-caddy is required: build it with go build -o caddy ./cmd/caddy")
	}
	for _, n := range []struct {
		name string
		v    int
	}{{"-conns", s.conns}, {"-links", s.links}, {"-garbage", s.garbage}, {"-cookies", s.cookies}, {"-once-links", s.onceLinks}, {"-rate", s.rate}} {
		if n.v <= 0 {
			return fmt.Errorf("%s must be positive, got %d", n.name, n.v)
		}
	}
	if s.hold <= 0 || s.think < 0 || s.reloadFor <= 0 {
		return errors.New("-hold and -reload-for must be positive, -think not negative")
	}
	return nil
}

// env is what the scenarios share: the binaries, the work directory, the signing key, the
// session secret, and the processes running.
type env struct {
	settings
	signer  *token.Signer
	keys    string // the public key file
	secret  string // the session secret
	running []stopper
}

type stopper interface{ stop() }

func newEnv(s settings) (*env, error) {
	if s.work == "" {
		dir, err := os.MkdirTemp("", "magiclink-load.")
		if err != nil {
			return nil, err
		}
		s.work = dir
	}
	private, public, err := token.GenerateKey(token.EdDSA, "load")
	if err != nil {
		return nil, err
	}
	signer, err := token.ParseSigner(private)
	if err != nil {
		return nil, err
	}
	keys := filepath.Join(s.work, "load.public.jwks")
	if err := os.WriteFile(keys, public, 0o600); err != nil {
		return nil, err
	}
	return &env{settings: s, signer: signer, keys: keys, secret: randomHex(32)}, nil
}

// stopAll stops every process the scenario started, last started first.
func (e *env) stopAll() {
	for i := len(e.running) - 1; i >= 0; i-- {
		e.running[i].stop()
	}
	e.running = nil
}

// link signs a link token for sub and returns it with its id; once makes it one-time.
func (e *env) link(sub string, once bool) (tok, id string) {
	now := time.Now()
	id = token.NewID()
	tok, err := e.signer.Sign(token.Claims{
		Subject: sub, Audience: []string{audience}, IssuedAt: now, Expiry: now.Add(time.Hour),
		ID: id, Once: once,
	})
	if err != nil {
		panic(err) // the claims are built here and always valid
	}
	return tok, id
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// report collects what a scenario found.
type report struct {
	name     string
	figures  []string
	failures []string
	took     time.Duration
}

// figure records a measurement and prints it at once.
func (r *report) figure(format string, args ...any) {
	line := fmt.Sprintf(format, args...)
	fmt.Println("  " + line)
	r.figures = append(r.figures, line)
}

// fail records a failed check and prints it at once.
func (r *report) fail(format string, args ...any) {
	line := fmt.Sprintf(format, args...)
	fmt.Println("  FAIL: " + line)
	r.failures = append(r.failures, line)
}

// check fails with the message unless ok.
func (r *report) check(ok bool, format string, args ...any) {
	if !ok {
		r.fail(format, args...)
	}
}

func (r *report) verdict() string {
	if len(r.failures) > 0 {
		return "FAIL"
	}
	return "PASS"
}

func (r *report) print() {
	fmt.Printf("  %s (%d failed checks) in %.1fs\n", r.verdict(), len(r.failures), r.took.Seconds())
}
