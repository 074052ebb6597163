package caddymodule

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/magiclink-dev/magiclink/internal/redistest"
	"github.com/magiclink-dev/magiclink/token"
)

// TestIntegrationRedisCluster runs the gateway on a Redis Cluster of three masters: a one-time
// link opens one session and then answers used, and a revocation through the admin API ends the
// session it names.
func TestIntegrationRedisCluster(t *testing.T) {
	redistest.Require(t)
	nodes := redistest.StartCluster(t, 3)
	addrs := make([]string, len(nodes))
	for i, n := range nodes {
		addrs[i] = n.Addr
	}
	keys := newGWKeys(t)
	upstream := newUpstream(t)
	gw := site{port: freePort(), block: gatewayBlock(keys.keyFile, upstream, "\t\tsession_secret "+gwSecret+"\n\t\tonce\n")}
	global := fmt.Sprintf("\tmagic_link {\n\t\tstore redis {\n\t\t\taddresses %s\n\t\t\tcluster\n\t\t}\n\t}\n", strings.Join(addrs, " "))
	startCaddyWith(t, t.TempDir(), global, gw)

	for i := range 5 { // several links, so that their keys land on several masters
		tok := keys.link(t, nil)
		c := browser(t)
		res, _ := fetch(t, c, http.MethodGet, gw.url("/?token="+tok), nil)
		if res.StatusCode != http.StatusSeeOther {
			t.Fatalf("link %d, first use: status %d, want 303", i, res.StatusCode)
		}
		res, body := fetch(t, browser(t), http.MethodGet, gw.url("/?token="+tok), nil)
		if res.StatusCode != http.StatusUnauthorized || !strings.Contains(body, "already been used") {
			t.Fatalf("link %d, second use: status %d, want 401 used", i, res.StatusCode)
		}
		if e := upstreamSaw(t, c, gw.url("/"), nil); e.User != "alice" {
			t.Fatalf("link %d: the session does not reach the upstream as alice: %+v", i, e)
		}
	}

	c := browser(t)
	jti := token.NewID()
	fetch(t, c, http.MethodGet, gw.url("/?token="+keys.link(t, func(c *token.Claims) { c.ID = jti })), nil)
	if code, body := adminDo(t, http.MethodPost, "/magic_link/revoke", "application/json", `{"jti":"`+jti+`"}`); code != http.StatusOK {
		t.Fatalf("revoke: %d %s", code, body)
	}
	deadline := time.Now().Add(time.Second)
	for {
		res, _ := fetch(t, c, http.MethodGet, gw.url("/"), nil)
		if res.StatusCode == http.StatusUnauthorized {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the revoked session still answers %d after 1s", res.StatusCode)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
