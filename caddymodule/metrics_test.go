package caddymodule

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/magiclink-dev/magiclink/token"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// scrape returns the value of every caddy_magic_link_ series on the admin endpoint's /metrics,
// keyed by its name and labels as Prometheus's text format writes them.
func scrape(t *testing.T) map[string]float64 {
	t.Helper()
	res, err := http.Get(fmt.Sprintf("http://localhost:%d/metrics", adminPort()))
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	series := make(map[string]float64)
	for _, line := range strings.Split(string(body), "\n") {
		if !strings.HasPrefix(line, "caddy_magic_link_") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("bad metrics line %q", line)
		}
		series[line[:i]] = v
	}
	return series
}

// TestIntegrationMetrics sends real requests through a real Caddy and reads the counts back from
// the admin endpoint's /metrics.
func TestIntegrationMetrics(t *testing.T) {
	keys := newGWKeys(t)
	upstream := newUpstream(t)
	s := site{port: freePort(), block: gatewayBlock(keys.keyFile, upstream, "\t\tsession_secret "+gwSecret+"\n")}
	confirm := site{port: freePort(), block: gatewayBlock(keys.keyFile, upstream, "\t\tsession_secret "+gwSecret+"\n\t\tredeem confirm\n")}
	startCaddy(t, t.TempDir(), s, confirm)
	before := scrape(t)

	if res, _ := fetch(t, browser(t), http.MethodGet, confirm.url("/?token="+keys.link(t, nil)), nil); res.StatusCode != http.StatusOK {
		t.Fatalf("a link with redeem confirm: status %d, want the confirmation page", res.StatusCode)
	}

	c := browser(t)
	res, _ := fetch(t, c, http.MethodGet, s.url("/?token="+keys.link(t, nil)), nil)
	if res.StatusCode != http.StatusSeeOther {
		t.Fatalf("redeeming: status %d", res.StatusCode)
	}
	for range 3 {
		upstreamSaw(t, c, s.url("/"), nil)
	}
	expired := keys.link(t, func(c *token.Claims) {
		c.IssuedAt, c.Expiry = time.Now().Add(-2*time.Hour), time.Now().Add(-time.Hour)
	})
	for _, tok := range []string{expired, "garbage.garbage.garbage", keys.link(t, func(c *token.Claims) { c.Path = "/a" })} {
		fetch(t, browser(t), http.MethodGet, s.url("/b?token="+tok), nil)
	}
	fetch(t, browser(t), http.MethodGet, s.url("/"), http.Header{"Cookie": {DefaultInsecureCookie + "=tampered"}})

	after := scrape(t)
	for _, tt := range []struct {
		series string
		delta  float64
	}{
		{`caddy_magic_link_links_total{outcome="accepted",reason=""}`, 1},
		{`caddy_magic_link_links_total{outcome="confirm_page",reason=""}`, 1},
		{`caddy_magic_link_links_total{outcome="rejected",reason="expired"}`, 1},
		{`caddy_magic_link_links_total{outcome="rejected",reason="invalid"}`, 1},
		{`caddy_magic_link_links_total{outcome="rejected",reason="outside_scope"}`, 1},
		{`caddy_magic_link_sessions_total{outcome="valid",reason=""}`, 3},
		{`caddy_magic_link_sessions_total{outcome="rejected",reason="invalid"}`, 1},
		{`caddy_magic_link_links_total{outcome="rejected",reason="used"}`, 0},
	} {
		if got := after[tt.series] - before[tt.series]; got != tt.delta {
			t.Errorf("%s went up by %v, want %v", tt.series, got, tt.delta)
		}
	}
	for name := range after {
		if strings.Contains(name, "alice") || strings.Contains(name, "garbage") {
			t.Errorf("a label holds request data: %s", name)
		}
	}
	if _, ok := after["caddy_magic_link_revocations"]; !ok {
		t.Error("caddy_magic_link_revocations is not exported")
	}
}

// TestStoreMetrics checks that a store operation is timed and, when it fails, counted by its op.
func TestStoreMetrics(t *testing.T) {
	value := func(c prometheus.Metric) *dto.Metric {
		t.Helper()
		var m dto.Metric
		if err := c.Write(&m); err != nil {
			t.Fatal(err)
		}
		return &m
	}
	for _, op := range storeOps {
		errorsBefore := value(metrics.storeError[op]).GetCounter().GetValue()
		timedBefore := value(metrics.storeTime[op].(prometheus.Metric)).GetHistogram().GetSampleCount()
		observeStore(op, time.Now(), nil)
		observeStore(op, time.Now(), errors.New("unreachable"))
		if got := value(metrics.storeError[op]).GetCounter().GetValue() - errorsBefore; got != 1 {
			t.Errorf("caddy_magic_link_store_errors_total{op=%q} went up by %v, want 1", op, got)
		}
		if got := value(metrics.storeTime[op].(prometheus.Metric)).GetHistogram().GetSampleCount() - timedBefore; got != 2 {
			t.Errorf("caddy_magic_link_store_operation_seconds{op=%q} counted %d operations, want 2", op, got)
		}
	}
}
