package caddymodule

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/magiclink-dev/magiclink/internal/ruletest"
)

// TestLinkRule runs the shared link table through the gateway: every link token.Link makes is
// found, redeemed and removed, and the browser is sent on to the same page without it.
func TestLinkRule(t *testing.T) {
	keys := newGWKeys(t)
	m, _ := newGateway(t, keys, nil)
	tok := keys.link(t, nil)
	for _, tt := range ruletest.Links {
		u, err := url.Parse(strings.Replace(tt.Link, ruletest.Token, tok, 1))
		if err != nil {
			t.Fatal(err)
		}
		res := serve(m, newGWRequest(http.MethodGet, u.RequestURI()))
		if res.rec.Code != http.StatusSeeOther || res.rec.Header().Get("Location") != tt.Target {
			t.Errorf("%s: %d to %q, want 303 to %q", tt.Name, res.rec.Code, res.rec.Header().Get("Location"), tt.Target)
		}
	}
	for _, link := range ruletest.Repeated {
		u, err := url.Parse(strings.ReplaceAll(link, ruletest.Token, tok))
		if err != nil {
			t.Fatal(err)
		}
		wantRejected(t, serve(m, newGWRequest(http.MethodGet, u.RequestURI())), ReasonInvalid)
	}
}

// TestLinkURLRule runs the shared table of page URLs through the issuing API's url field: the
// pages of links on the API's origin are taken, the pages no link may be made for refused alike.
func TestLinkURLRule(t *testing.T) {
	linkURL, err := url.Parse("https://x.example/welcome")
	if err != nil {
		t.Fatal(err)
	}
	body := func(page string) []byte {
		b, err := json.Marshal(map[string]string{"user_id": "u", "url": page})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	for _, tt := range ruletest.Links {
		if _, rejected := parseCreateRequest(body(tt.URL), linkURL, time.Hour); rejected != nil {
			t.Errorf("%s: url %q refused: %s", tt.Name, tt.URL, rejected.LongMessage)
		}
	}
	for _, tt := range ruletest.BadPages {
		_, rejected := parseCreateRequest(body(tt.URL), linkURL, time.Hour)
		if rejected == nil || rejected.Meta == nil || rejected.Meta.ParamName != "url" || !strings.Contains(rejected.LongMessage, tt.Reason) {
			t.Errorf("%s: url %q: %+v; want url refused, saying %q", tt.Name, tt.URL, rejected, tt.Reason)
		}
	}
}

// TestPathRule runs the shared path table through the gateway: a link whose path the signer
// accepts opens at that path, and a link whose path it refuses is rejected however it was made.
func TestPathRule(t *testing.T) {
	keys := newGWKeys(t)
	m, _ := newGateway(t, keys, nil)
	now := time.Now().Unix()
	for _, tt := range ruletest.Paths {
		scope := `"` + tt.Scope + `"`
		if utf8.ValidString(tt.Scope) {
			scope = strconv.Quote(tt.Scope)
		}
		link := keys.rawLink(`{"sub":"alice","aud":"` + gwAudience + `","jti":"rule","iat":` +
			strconv.FormatInt(now, 10) + `,"exp":` + strconv.FormatInt(now+3600, 10) + `,"path":` + scope + `}`)
		target := "/"
		if tt.Valid {
			target = (&url.URL{Path: tt.Scope}).EscapedPath()
		}
		res := serve(m, newGWRequest(http.MethodGet, target+"?token="+link))
		if tt.Valid && res.rec.Code != http.StatusSeeOther {
			t.Errorf("path %q: link at %q got %d, want 303", tt.Scope, target, res.rec.Code)
		}
		if !tt.Valid && (res.rec.Code != http.StatusUnauthorized || res.placeholder(errorPlaceholder) != ReasonInvalid) {
			t.Errorf("path %q: got %d (%q), want 401 invalid", tt.Scope, res.rec.Code, res.placeholder(errorPlaceholder))
		}
	}
}
