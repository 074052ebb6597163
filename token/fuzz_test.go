package token_test

import (
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/magiclink-dev/magiclink/token"
)

// Seed corpora live in testdata/fuzz/<FuzzName>/: valid tokens of every algorithm, truncations,
// dots, oversize input, unicode, duplicate members, JSON serialization, hostile headers.

// fuzzVerifier holds a key of every supported algorithm (HS256 loaded separately: a key set may
// not mix secrets with public keys), with the test clock.
func fuzzVerifier(f *testing.F) (*token.Verifier, testKeySet) {
	ks := keySet(f)
	keys := append(parsedKeys(f, ks.eddsa, ks.es256, ks.ps256, ks.rs256), parsedKeys(f, ks.hs256)...)
	v, err := token.NewVerifier(keys, baseConfig())
	if err != nil {
		f.Fatal(err)
	}
	return v, ks
}

// checkVerdict fails t when Verify's verdict breaks the format's invariants.
func checkVerdict(t *testing.T, tok string, h token.Header, c *token.Claims, err error) {
	if err != nil {
		if token.Reason(err) == "" {
			t.Fatalf("error %q wraps no reason", err)
		}
		if c != nil {
			t.Fatalf("rejected (%v) but claims returned", err)
		}
		return
	}
	if len(tok) > token.MaxLength {
		t.Fatalf("accepted a token of %d bytes", len(tok))
	}
	if c == nil || c.Subject == "" || c.ID == "" || !slices.Contains(c.Audience, testAudience) {
		t.Fatalf("accepted claims %+v: need sub, jti and our audience", c)
	}
	if len(c.Subject) > 255 || strings.ContainsFunc(c.Subject, isControl) || !utf8.ValidString(c.Subject) {
		t.Fatalf("accepted sub %q", c.Subject)
	}
	if !testNow.Before(c.Expiry.Add(token.DefaultLeeway)) {
		t.Fatalf("accepted exp %v at %v", c.Expiry, testNow)
	}
	if c.IssuedAt.IsZero() || c.Expiry.Sub(c.IssuedAt) > token.DefaultMaxLinkAge {
		t.Fatalf("accepted iat %v, exp %v", c.IssuedAt, c.Expiry)
	}
	if c.Path != "" && (!strings.HasPrefix(c.Path, "/") || strings.Contains(c.Path, "/../") || strings.HasSuffix(c.Path, "/..") || strings.Contains(c.Path, "//")) {
		t.Fatalf("accepted path %q", c.Path)
	}
	if h.Type == "" || h.Algorithm == "" {
		t.Fatalf("accepted header %+v", h)
	}
}

func isControl(r rune) bool { return r < 0x20 || r >= 0x7f && r <= 0x9f }

// FuzzVerify feeds arbitrary strings to Verify: it never panics, every error carries a reason,
// and anything accepted meets the format's invariants.
func FuzzVerify(f *testing.F) {
	v, ks := fuzzVerifier(f)
	for _, k := range ks.supported() {
		f.Add(mint(f, k, claims()))
	}
	f.Fuzz(func(t *testing.T, tok string) {
		h, c, err := v.Verify(tok)
		checkVerdict(t, tok, h, c, err)
	})
}

// FuzzVerifySigned signs an arbitrary header and payload with the EdDSA key, so that fuzzing
// reaches the claim rules behind the signature.
func FuzzVerifySigned(f *testing.F) {
	ks := keySet(f)
	ed := ks.eddsa
	v := newVerifier(f, baseConfig(), ed)
	f.Add(header(ed).json(), claims().json())
	f.Add(header(ed).json(), claims().add("sub", "admin").json())
	f.Add(header(ed).set("alg", "none").json(), claims().json())
	f.Add(header(ed).json(), claims().set("exp", raw("1e300")).json())
	f.Add(header(ed).json(), claims().set("aud", []string{"x", testAudience}).set("path", "/a/../b").json())
	f.Fuzz(func(t *testing.T, headerJSON, payloadJSON string) {
		tok := compact(t, ed, headerJSON, payloadJSON)
		h, c, err := v.Verify(tok)
		checkVerdict(t, tok, h, c, err)
	})
}

// FuzzParseKeys feeds arbitrary bytes to ParseKeys: it never panics, and whatever it accepts is
// a set of uniquely named keys of supported algorithms that a Verifier takes.
func FuzzParseKeys(f *testing.F) {
	ks := keySet(f)
	for _, k := range ks.supported() {
		f.Add(jwksOf(f, k))
		f.Add(mustJSON(f, k.privateJWK()))
	}
	f.Add(ks.rs256.publicPEM(f))
	f.Fuzz(func(t *testing.T, data []byte) {
		keys, err := token.ParseKeys(data)
		if err != nil {
			if keys != nil {
				t.Fatalf("error %v with keys %+v", err, keys)
			}
			return
		}
		if len(keys) == 0 {
			t.Fatal("no error and no keys")
		}
		ids := map[string]bool{}
		secrets := 0
		for _, k := range keys {
			if !slices.Contains([]string{token.EdDSA, token.ES256, token.PS256, token.RS256, token.HS256}, k.Algorithm()) {
				t.Fatalf("key %q pinned to %q", k.ID(), k.Algorithm())
			}
			if k.ID() == "" || ids[k.ID()] {
				t.Fatalf("key id %q empty or repeated", k.ID())
			}
			ids[k.ID()] = true
			if k.Algorithm() == token.HS256 {
				secrets++
			}
		}
		if secrets != 0 && secrets != len(keys) {
			t.Fatal("a key set mixing secrets and public keys was accepted")
		}
		if _, err := token.NewVerifier(keys, baseConfig()); err != nil {
			t.Fatalf("NewVerifier refuses what ParseKeys accepted: %v", err)
		}
	})
}
