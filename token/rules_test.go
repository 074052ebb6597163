package token_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/magiclink-dev/magiclink/internal/ruletest"
	"github.com/magiclink-dev/magiclink/token"
)

// TestLinkRule runs the shared link table through Link and LinkTemplate: they set the token
// parameter as the gateway and the CLI find and remove it.
func TestLinkRule(t *testing.T) {
	for _, tt := range ruletest.Links {
		got, err := token.Link(tt.URL, "token", ruletest.Token)
		if err != nil || got != tt.Link {
			t.Errorf("%s: Link(%q) = %q, %v; want %q", tt.Name, tt.URL, got, err, tt.Link)
		}
		prefix, suffix, err := token.LinkTemplate(tt.URL, "token")
		if got := prefix + ruletest.Token + suffix; err != nil || got != tt.Link {
			t.Errorf("%s: LinkTemplate(%q) makes %q, %v; want %q", tt.Name, tt.URL, got, err, tt.Link)
		}
	}
}

// TestPathRule runs the shared path table through the Signer and the Verifier: a scope is
// minted exactly when it verifies, and it verifies exactly when the gateway can match it.
func TestPathRule(t *testing.T) {
	k := keySet(t).eddsa
	s := newSigner(t, k)
	v := newVerifier(t, baseConfig(), k)
	for _, tt := range ruletest.Paths {
		_, err := s.Sign(token.Claims{
			Subject: "user-42", Audience: []string{testAudience}, Path: tt.Scope,
			IssuedAt: testNow, Expiry: testNow.Add(time.Hour),
		})
		if (err == nil) != tt.Valid {
			t.Errorf("Sign with path %q: error %v, want valid %v", tt.Scope, err, tt.Valid)
		}
		_, _, err = v.Verify(mint(t, k, claims().add("path", jsonString(tt.Scope))))
		if (err == nil) != tt.Valid || err != nil && !errors.Is(err, token.ErrInvalidClaim) {
			t.Errorf("Verify with path %q: error %v, want valid %v (or an invalid claim)", tt.Scope, err, tt.Valid)
		}
	}
}

// jsonString is s as a JSON string, with invalid UTF-8 written as the raw bytes a hostile signer
// would put there.
func jsonString(s string) raw {
	if !utf8.ValidString(s) {
		return raw(`"` + s + `"`)
	}
	b, _ := json.Marshal(s)
	return raw(b)
}

// TestLinkURLRule runs the shared table of page URLs through ParseLinkURL, Link and LinkTemplate.
func TestLinkURLRule(t *testing.T) {
	for _, tt := range ruletest.Links {
		if _, err := token.ParseLinkURL(tt.URL); err != nil {
			t.Errorf("%s: ParseLinkURL(%q): %v; want it accepted", tt.Name, tt.URL, err)
		}
	}
	for _, tt := range ruletest.BadPages {
		if _, err := token.ParseLinkURL(tt.URL); err == nil || !strings.Contains(err.Error(), tt.Reason) {
			t.Errorf("%s: ParseLinkURL(%q) = %v; want an error saying %q", tt.Name, tt.URL, err, tt.Reason)
		}
		if _, err := token.Link(tt.URL, "token", ruletest.Token); err == nil || !strings.Contains(err.Error(), tt.Reason) {
			t.Errorf("%s: Link(%q) = %v; want an error saying %q", tt.Name, tt.URL, err, tt.Reason)
		}
		if _, _, err := token.LinkTemplate(tt.URL, "token"); err == nil || !strings.Contains(err.Error(), tt.Reason) {
			t.Errorf("%s: LinkTemplate(%q) = %v; want an error saying %q", tt.Name, tt.URL, err, tt.Reason)
		}
	}
}
