package main

import (
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/magiclink-dev/magiclink/internal/redistest"
)

// TestScenarios runs every scenario of bench/load.sh, small enough for the test suite: the same
// checks against real Caddy processes built from this repository, a real redis-server and the
// scenarios' upstream, with fewer connections, links and requests.
func TestScenarios(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Caddy processes and redis-server")
	}
	redistest.Require(t)
	dir := t.TempDir()
	caddy := filepath.Join(dir, "caddy")
	if out, err := exec.Command("go", "build", "-o", caddy, "github.com/magiclink-dev/magiclink/cmd/caddy").CombinedOutput(); err != nil {
		t.Fatalf("building cmd/caddy: %v\n%s", err, out)
	}
	redis, err := exec.LookPath("redis-server")
	if err != nil {
		t.Fatal(err)
	}
	e, err := newEnv(settings{
		caddy: caddy, redisServer: redis, work: dir,
		conns: 500, hold: 3 * time.Second, think: 200 * time.Millisecond,
		links: 500, garbage: 500, cookies: 5000, rssGrowth: 64,
		onceLinks: 500, rate: 250, reloadFor: 4 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) {
			r := &report{name: sc.name}
			sent := retries.Load()
			sc.run(e, r)
			e.stopAll()
			t.Logf("requests sent again after their connection failed before any answer: %d", retries.Load()-sent)
			for _, f := range r.failures {
				t.Error(f)
			}
			if len(r.figures) == 0 {
				t.Error("the scenario measured nothing")
			}
		})
	}
}
