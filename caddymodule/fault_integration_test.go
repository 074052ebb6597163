package caddymodule

import (
	"fmt"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/magiclink-dev/magiclink/token"
)

// When the app behind the gateway is down, a request that carried a link token fails after the
// gateway removed it; Caddy then logs the failure at ERROR level with the request as it arrived,
// and runs handle_errors on it. Neither may show the token: the Caddy process's whole log is
// searched for it, and an error route that echoes {http.request.uri} must not print it.
func TestIntegrationAppDownKeepsTokenOut(t *testing.T) {
	keys := newGWKeys(t)
	down := fmt.Sprintf("127.0.0.1:%d", freePort()) // nothing listens there
	forward := gatewayBlock(keys.keyFile, down, "\t\tsession_secret "+gwSecret+"\n\t\tredeem forward\n")
	plain := startInstance(t, "", forward)
	pages := startInstance(t, "", forward+"\thandle_errors {\n\t\trespond \"{http.error.status_code} {http.request.uri}\"\n\t}\n")
	expired := func(c *token.Claims) {
		c.IssuedAt, c.Expiry = time.Now().Add(-2*time.Hour), time.Now().Add(-time.Hour)
	}

	var sent []string // the signatures of every token sent
	link := func(edit func(*token.Claims)) string {
		tok := keys.link(t, edit)
		sent = append(sent, tok[strings.LastIndexByte(tok, '.')+1:])
		return tok
	}
	for _, tt := range []struct {
		name     string
		in       *instance
		method   string
		edit     func(*token.Claims)
		want     int
		wantBody string // the error route's answer; "" to skip
	}{
		{"forward, no error routes", plain, http.MethodGet, nil, http.StatusBadGateway, ""},
		{"forward, error routes", pages, http.MethodGet, nil, http.StatusBadGateway, "502 /app?a=1"},
		{"rejected link, error routes", pages, http.MethodGet, expired, http.StatusUnauthorized, "401 /app?a=1"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			res, body := fetch(t, browser(t), tt.method, tt.in.url("/app?a=1&token="+link(tt.edit)), nil)
			if res.StatusCode != tt.want {
				t.Errorf("status %d, want %d", res.StatusCode, tt.want)
			}
			switch {
			case tt.wantBody == "" || body == tt.wantBody:
			case strings.Contains(body, "token="):
				t.Errorf("the error route's {http.request.uri} holds the link token; want %q", tt.wantBody)
			default:
				t.Errorf("the error route answered %q, want %q", body, tt.wantBody)
			}
		})
	}

	plain.stop()
	pages.stop()
	for _, in := range []*instance{plain, pages} {
		out, err := os.ReadFile(in.log)
		if err != nil {
			t.Fatal(err)
		}
		for _, sig := range sent {
			if strings.Contains(string(out), sig) {
				t.Errorf("the log of the Caddy on port %d holds a link token", in.port)
				break
			}
		}
		if in == plain && !strings.Contains(string(out), "request failed after its link token was removed") {
			t.Errorf("the log of the Caddy without error routes does not say the app failed")
		}
	}
}
