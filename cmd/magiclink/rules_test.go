package main

import (
	"strings"
	"testing"

	"github.com/magiclink-dev/magiclink/internal/ruletest"
)

// TestLinkRule runs the shared link table through the CLI: sign --url makes each link as
// token.Link does, bulk signing too, and verify finds the token in it, as the gateway does.
func TestLinkRule(t *testing.T) {
	prefix := newKey(t, "EdDSA")
	for _, tt := range ruletest.Links {
		got, err := tokenFromArg(tt.Link, "token")
		if err != nil || got != ruletest.Token {
			t.Errorf("%s: tokenFromArg(%q) = %q, %v; want the token", tt.Name, tt.Link, got, err)
		}
		code, stdout, stderr := cli(t, "", "sign", "--key", prefix+".private.jwk", "--sub", "u", "--url", tt.URL)
		link := strings.TrimSpace(stdout)
		tok, err := tokenFromArg(link, "token")
		if code != exitOK || err != nil || link != strings.Replace(tt.Link, ruletest.Token, tok, 1) {
			t.Errorf("%s: sign --url %q printed %q (exit %d, %s), want %q with its token", tt.Name, tt.URL, link, code, stderr, tt.Link)
		}
		code, stdout, stderr = cli(t, "sub,url\nu,"+csvField(tt.URL)+"\n", "sign", "--key", prefix+".private.jwk", "--csv", "-")
		if code != exitOK || !strings.Contains(stdout, strings.Split(tt.Link, ruletest.Token)[0]) {
			t.Errorf("%s: sign --csv with url %q printed %q (exit %d, %s)", tt.Name, tt.URL, stdout, code, stderr)
		}
	}
	for _, link := range ruletest.Repeated {
		if _, err := tokenFromArg(link, "token"); err == nil || !strings.Contains(err.Error(), "the gateway rejects that") {
			t.Errorf("tokenFromArg(%q) = %v, want a refusal of the repeated parameter", link, err)
		}
	}
}

// TestLinkURLRule runs the shared table of page URLs no link may be made for through sign --url
// and sign --csv.
func TestLinkURLRule(t *testing.T) {
	prefix := newKey(t, "EdDSA")
	for _, tt := range ruletest.BadPages {
		code, _, stderr := cli(t, "", "sign", "--key", prefix+".private.jwk", "--sub", "u", "--url", tt.URL)
		if code != exitUsage || !strings.Contains(stderr, tt.Reason) {
			t.Errorf("%s: sign --url %q: exit %d, %q; want a usage error saying %q", tt.Name, tt.URL, code, stderr, tt.Reason)
		}
		code, _, stderr = cli(t, "sub,url\nu,"+csvField(tt.URL)+"\n", "sign", "--key", prefix+".private.jwk", "--csv", "-")
		if code == exitOK || !strings.Contains(stderr, tt.Reason) {
			t.Errorf("%s: sign --csv with url %q: exit %d, %q; want a refusal saying %q", tt.Name, tt.URL, code, stderr, tt.Reason)
		}
	}
}

// csvField quotes s as one CSV field.
func csvField(s string) string {
	return `"` + strings.ReplaceAll(s, `"`, `""`) + `"`
}

// TestPathRule runs the shared path table through sign --path: a scope is minted exactly when the
// gateway can accept it.
func TestPathRule(t *testing.T) {
	key := newKey(t, "EdDSA") + ".private.jwk"
	for _, tt := range ruletest.Paths {
		code, _, stderr := cli(t, "", "sign", "--key", key, "--sub", "u", "--aud", "a", "--path", tt.Scope)
		if (code == exitOK) != tt.Valid {
			t.Errorf("sign --path %q: exit %d (%s), want valid %v", tt.Scope, code, strings.TrimSpace(stderr), tt.Valid)
		}
	}
}
