package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/magiclink-dev/magiclink/internal/freeport"
)

// startAdmin runs Caddy in this process with its admin endpoint at listen (a caddy network
// address) and, when withApp, the magic_link app on a file store; Caddy stops when the test ends.
func startAdmin(t *testing.T, listen string, withApp bool) {
	t.Helper()
	dir := t.TempDir()
	t.Setenv("XDG_DATA_HOME", filepath.Join(dir, "data"))
	t.Setenv("XDG_CONFIG_HOME", filepath.Join(dir, "config"))
	cfg := map[string]any{"admin": map[string]any{"listen": listen, "config": map[string]any{"persist": false}}}
	if withApp {
		cfg["apps"] = map[string]any{"magic_link": map[string]any{"store": map[string]any{"type": "file", "path": filepath.Join(dir, "state.db")}}}
	}
	raw, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := caddy.Load(raw, true); err != nil {
		t.Fatalf("start Caddy: %v", err)
	}
	t.Cleanup(func() {
		if err := caddy.Stop(); err != nil {
			t.Errorf("stop Caddy: %v", err)
		}
	})
}

// loopbackAddr returns a loopback host:port that was free a moment ago and that no other test of
// this process was given.
func loopbackAddr(t *testing.T) string {
	t.Helper()
	port, err := freeport.Take()
	if err != nil {
		t.Fatal(err)
	}
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
}

// held lists the revocations the admin endpoint at addr holds, as "kind value" strings.
func held(t *testing.T, addr string) []string {
	t.Helper()
	res, err := http.Get("http://" + addr + "/magic_link/revocations")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	var out struct {
		Revocations []struct{ Kind, Value string }
	}
	if res.StatusCode != http.StatusOK || json.Unmarshal(body, &out) != nil {
		t.Fatalf("GET /magic_link/revocations: status %d: %s", res.StatusCode, body)
	}
	var list []string
	for _, r := range out.Revocations {
		list = append(list, r.Kind+" "+r.Value)
	}
	return list
}

func TestRevoke(t *testing.T) {
	addr := loopbackAddr(t)
	startAdmin(t, addr, true)

	code, stdout, stderr := cli(t, "", "revoke", "--admin", addr, "--jti", "link-1")
	if code != exitOK || stderr != "" || !strings.HasPrefix(stdout, "revoked link link-1 and every session it opened (kept until ") {
		t.Errorf("--jti: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	code, stdout, stderr = cli(t, "", "revoke", "--admin", addr, "--sub", "alice")
	if code != exitOK || stderr != "" || !strings.HasPrefix(stdout, "revoked user alice: every link issued and every session started until now") {
		t.Errorf("--sub: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	if got := strings.Join(held(t, addr), ","); got != "jti link-1,sub alice" {
		t.Errorf("revocations held: %q, want the link and the user", got)
	}

	// The admin endpoint's refusal is passed on in one line.
	code, stdout, stderr = cli(t, "", "revoke", "--admin", addr, "--sub", "a\tb")
	if code != exitFailure || stdout != "" {
		t.Errorf("a refused id: exit %d, stdout %q; want 1 and nothing", code, stdout)
	}
	oneErrorLine(t, stderr, "sub contains a control character")

	for _, tc := range []struct {
		name string
		args []string
	}{
		{"both", []string{"--jti", "a", "--sub", "b"}},
		{"neither", nil},
		{"an argument", []string{"--jti", "a", "b"}},
	} {
		code, stdout, stderr := cli(t, "", append([]string{"revoke", "--admin", addr}, tc.args...)...)
		if code != exitUsage || stdout != "" || stderr == "" {
			t.Errorf("%s: exit %d, stdout %q, stderr %q; want 2 and the reason", tc.name, code, stdout, stderr)
		}
	}
	if got := strings.Join(held(t, addr), ","); got != "jti link-1,sub alice" {
		t.Errorf("after the refused commands: revocations held %q, want only the first two", got)
	}
}

func TestRevokeUnixSocket(t *testing.T) {
	socket := filepath.Join(t.TempDir(), "admin.sock")
	startAdmin(t, "unix/"+socket, true)
	for _, admin := range []string{socket, "unix/" + socket} {
		code, stdout, stderr := cli(t, "", "revoke", "--admin", admin, "--jti", "link-2")
		if code != exitOK || stderr != "" || !strings.HasPrefix(stdout, "revoked link link-2") {
			t.Errorf("--admin %s: exit %d, stdout %q, stderr %q", admin, code, stdout, stderr)
		}
	}
}

func TestRevokeFailures(t *testing.T) {
	dead := loopbackAddr(t)
	code, stdout, stderr := cli(t, "", "revoke", "--admin", dead, "--jti", "link-1")
	if code != exitFailure || stdout != "" || strings.Contains(stderr, "goroutine") {
		t.Errorf("a dead address: exit %d, stdout %q, stderr %q; want 1 and one line", code, stdout, stderr)
	}
	oneErrorLine(t, stderr, fmt.Sprintf("is Caddy running with its admin endpoint at %s?", dead))

	addr := loopbackAddr(t)
	startAdmin(t, addr, false)
	code, stdout, stderr = cli(t, "", "revoke", "--admin", addr, "--jti", "link-1")
	if code != exitFailure || stdout != "" {
		t.Errorf("a Caddy without the app: exit %d, stdout %q; want 1", code, stdout)
	}
	oneErrorLine(t, stderr, "the magic_link app is not running")
}
