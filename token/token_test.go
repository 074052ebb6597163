package token

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestSignVerifyRoundTrip(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	for _, alg := range []string{EdDSA, ES256, PS256, RS256, HS256} {
		t.Run(alg, func(t *testing.T) {
			private, public, err := GenerateKey(alg, "")
			if err != nil {
				t.Fatal(err)
			}
			s, err := ParseSigner(private)
			if err != nil {
				t.Fatal(err)
			}
			s.now = func() time.Time { return now }
			keys, err := ParseKeys(public)
			if err != nil {
				t.Fatal(err)
			}
			if len(keys) != 1 || keys[0].Algorithm() != alg || keys[0].ID() != s.KeyID() || keys[0].FromPrivate() {
				t.Fatalf("keys = %+v, want one %s key with id %s", keys, alg, s.KeyID())
			}
			v, err := NewVerifier(keys, Config{Audience: "https://shop.example", Now: func() time.Time { return now }})
			if err != nil {
				t.Fatal(err)
			}
			in := Claims{
				Subject:  "user_1",
				Audience: []string{"https://shop.example"},
				Expiry:   now.Add(time.Hour),
				Email:    "ann@example.com",
				Name:     "Ann \"the\" Tester\u00e9",
				Path:     "/survey/42",
			}
			tok, err := s.Sign(in)
			if err != nil {
				t.Fatal(err)
			}
			h, c, err := v.Verify(tok)
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if h.Algorithm != alg || h.KeyID != s.KeyID() || h.Type != Type {
				t.Errorf("header = %+v", h)
			}
			if c.Subject != in.Subject || c.Email != in.Email || c.Name != in.Name || c.Path != in.Path ||
				!c.Expiry.Equal(in.Expiry) || !c.IssuedAt.Equal(now) || len(c.ID) < 16 {
				t.Errorf("claims = %+v", c)
			}
		})
	}
}

func TestPrivateKeyReducedToPublic(t *testing.T) {
	private, _, err := GenerateKey(EdDSA, "k1")
	if err != nil {
		t.Fatal(err)
	}
	keys, err := ParseKeys(private)
	if err != nil {
		t.Fatal(err)
	}
	if !keys[0].FromPrivate() || keys[0].ID() != "k1" {
		t.Errorf("key = %+v, want FromPrivate with id k1", keys[0])
	}
}

func TestSignRefusesBadClaims(t *testing.T) {
	private, _, err := GenerateKey(EdDSA, "")
	if err != nil {
		t.Fatal(err)
	}
	s, err := ParseSigner(private)
	if err != nil {
		t.Fatal(err)
	}
	exp := time.Now().Add(time.Hour)
	for name, c := range map[string]Claims{
		"no sub":     {Audience: []string{"a"}, Expiry: exp},
		"no aud":     {Subject: "u", Expiry: exp},
		"no exp":     {Subject: "u", Audience: []string{"a"}},
		"newline":    {Subject: "u\n", Audience: []string{"a"}, Expiry: exp},
		"long sub":   {Subject: strings.Repeat("u", 256), Audience: []string{"a"}, Expiry: exp},
		"dot path":   {Subject: "u", Audience: []string{"a"}, Expiry: exp, Path: "/a/../b"},
		"dots path":  {Subject: "u", Audience: []string{"a"}, Expiry: exp, Path: "/a/.../b"},
		"past exp":   {Subject: "u", Audience: []string{"a"}, Expiry: time.Now().Add(-time.Hour)},
		"empty aud":  {Subject: "u", Audience: []string{""}, Expiry: exp},
		"relative p": {Subject: "u", Audience: []string{"a"}, Expiry: exp, Path: "survey"},
	} {
		if _, err := s.Sign(c); err == nil {
			t.Errorf("%s: Sign succeeded, want an error", name)
		}
	}
}

func TestLink(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"https://example.com/welcome", "https://example.com/welcome?token=T"},
		{"https://example.com/cart?b=2&a=1#top", "https://example.com/cart?b=2&a=1&token=T#top"},
		{"https://example.com/?a=1&token=old&c=3&token=older", "https://example.com/?a=1&token=T&c=3"},
		{"https://example.com/?tok%65n=old", "https://example.com/?token=T"},
		{"https://example.com/x?q=a%20b+c", "https://example.com/x?q=a%20b+c&token=T"},
	} {
		got, err := Link(tc.in, "token", "T")
		if err != nil || got != tc.want {
			t.Errorf("Link(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
	for _, bad := range []string{"/relative", "mailto:a@b", "https://", "http://[::1"} {
		if got, err := Link(bad, "token", "T"); err == nil {
			t.Errorf("Link(%q) = %q, want an error", bad, got)
		}
	}
}

// TestLinkTemplate checks where LinkTemplate cuts a link around its token, and that a signed token
// put there makes the link Link makes.
func TestLinkTemplate(t *testing.T) {
	tok := "eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiJ1In0.sig-_x"
	for _, tc := range []struct{ in, param, prefix, suffix string }{
		{"https://example.com", "token", "https://example.com?token=", ""},
		{"https://example.com/", "t", "https://example.com/?t=", ""},
		{"http://[::1]:8080/p?", "token", "http://[::1]:8080/p?token=", ""},
		{"https://example.com/a/b?x=1&y=2", "A", "https://example.com/a/b?x=1&y=2&A=", ""},
		{"https://example.com/?token=old&x=1&token=older", "token", "https://example.com/?token=", "&x=1"},
		{"https://example.com/p?x=A&y=B#frag", "token", "https://example.com/p?x=A&y=B&token=", "#frag"},
		{"https://example.com/p?a=1,2&q=\"x\"", "token", "https://example.com/p?a=1,2&q=\"x\"&token=", ""},
		{"https://example.com/a%3Fb?c=1#d?e", "token", "https://example.com/a%3Fb?c=1&token=", "#d?e"},
	} {
		prefix, suffix, err := LinkTemplate(tc.in, tc.param)
		if err != nil || prefix != tc.prefix || suffix != tc.suffix {
			t.Errorf("LinkTemplate(%q, %q) = %q, %q, %v; want %q, %q", tc.in, tc.param, prefix, suffix, err, tc.prefix, tc.suffix)
		}
		if link, err := Link(tc.in, tc.param, tok); err != nil || link != prefix+tok+suffix {
			t.Errorf("Link(%q, %q) = %q, %v; want %q", tc.in, tc.param, link, err, prefix+tok+suffix)
		}
	}
	for _, bad := range []struct{ url, param string }{{"/relative", "token"}, {"http://[::1", "token"}, {"https://example.com/", "a b"}} {
		if prefix, suffix, err := LinkTemplate(bad.url, bad.param); err == nil {
			t.Errorf("LinkTemplate(%q, %q) = %q, %q, want an error", bad.url, bad.param, prefix, suffix)
		}
	}
}

func TestReasonCodes(t *testing.T) {
	if Reason(nil) != "" || Reason(errors.New("x")) != "" {
		t.Error("Reason of nil or a foreign error is not empty")
	}
	for _, r := range reasonCodes {
		if got := Reason(reject(r.err, "detail")); got != r.code {
			t.Errorf("Reason(%v) = %q, want %q", r.err, got, r.code)
		}
	}
}

// TestDocumentedDefaults pins the defaults the README documents for the gateway and the CLI,
// which take them from here.
func TestDocumentedDefaults(t *testing.T) {
	if DefaultLeeway != 30*time.Second || DefaultMaxLinkAge != 720*time.Hour || Type != "magic-link+jwt" || MaxLength != 4096 {
		t.Errorf("defaults = %v %v %q %d; want 30s 720h magic-link+jwt 4096", DefaultLeeway, DefaultMaxLinkAge, Type, MaxLength)
	}
}

// TestClaimsJSONRoundTrip checks that Claims survive encoding/json both ways, and that decoding
// applies the verifier's rules.
func TestClaimsJSONRoundTrip(t *testing.T) {
	in := Claims{
		Subject: "user-42", Audience: []string{"https://a.example", "https://b.example"}, Issuer: "iss",
		Expiry: time.Unix(1_800_003_600, 0), IssuedAt: time.Unix(1_800_000_000, 0), NotBefore: time.Unix(1_800_000_060, 0),
		ID: "jti-1", Email: "ada@example.com", Name: "Ada \"Lovelace\"", Path: "/survey/42", Once: true,
	}
	b, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	var out Claims
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatalf("Unmarshal(%s): %v", b, err)
	}
	if !reflect.DeepEqual(in, out) {
		t.Errorf("round trip through %s:\n got %+v\nwant %+v", b, out, in)
	}
	for _, bad := range []string{`{"sub":"a","sub":"b"}`, `{"exp":"soon"}`, `{"once":"yes"}`, `{"once":1}`, `{"sub":1}`, `[]`} {
		if err := json.Unmarshal([]byte(bad), &out); err == nil {
			t.Errorf("Unmarshal(%s) accepted it", bad)
		}
	}
}
