package main

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/magiclink-dev/magiclink/token"
)

// mint signs c with the private key of prefix.
func mint(t *testing.T, prefix string, c token.Claims) string {
	t.Helper()
	s, err := token.LoadSigner(prefix + ".private.jwk")
	if err != nil {
		t.Fatal(err)
	}
	tok, err := s.Sign(c)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func TestVerify(t *testing.T) {
	prefix := newKey(t, "EdDSA")
	pub := prefix + ".public.jwks"
	now := time.Now().Truncate(time.Second)
	good := mint(t, prefix, token.Claims{Subject: "u1", Audience: []string{"https://a.example"}, Issuer: "crm", Expiry: now.Add(time.Hour), Email: "u1@example.com", Path: "/s"})
	tests := []struct {
		name  string
		stdin string
		args  []string
		sub   string
	}{
		{"token", "", []string{"--keys", pub, "--aud", "https://a.example", good}, "u1"},
		{"flags after the token", "", []string{good, "--keys", pub, "--aud", "https://a.example", "--iss", "crm"}, "u1"},
		{"link", "", []string{"--keys", pub, "--aud", "https://a.example", "https://a.example/s?x=1&token=" + good}, "u1"},
		{"link with another param", "", []string{"--keys", pub, "--aud", "https://a.example", "--param", "t", "https://a.example/s?t=" + good}, "u1"},
		{"token on stdin", good + "\n", []string{"--keys", pub, "--aud", "https://a.example", "-"}, "u1"},
		{"several key files", "", []string{"--keys", pub, "--keys", newKey(t, "ES256") + ".public.jwks", "--aud", "https://a.example", good}, "u1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := cli(t, tt.stdin, append([]string{"verify"}, tt.args...)...)
			if code != exitOK || stderr != "" {
				t.Fatalf("exit %d: %s", code, stderr)
			}
			var got verifyJSON
			if err := json.Unmarshal([]byte(stdout), &got); err != nil {
				t.Fatalf("not JSON: %v\n%s", err, stdout)
			}
			if got.Claims.Sub != tt.sub || got.Claims.Aud != "https://a.example" || got.Claims.Email != "u1@example.com" || got.Claims.Path != "/s" ||
				got.Claims.Exp != now.Add(time.Hour).Unix() || got.Claims.Jti == "" || got.Header.Typ != token.Type || got.Header.Alg != "EdDSA" {
				t.Errorf("verify printed %+v", got)
			}
			if !strings.Contains(stdout, "\n  \"header\": {\n    \"alg\"") {
				t.Errorf("output is not indented JSON:\n%s", stdout)
			}
		})
	}
}

func TestVerifyRejects(t *testing.T) {
	prefix := newKey(t, "EdDSA")
	pub := prefix + ".public.jwks"
	other := newKey(t, "EdDSA")
	now := time.Now().Truncate(time.Second)
	aud := []string{"https://a.example"}
	good := mint(t, prefix, token.Claims{Subject: "u1", Audience: aud, Expiry: now.Add(time.Hour)})
	expired := mint(t, prefix, token.Claims{Subject: "u1", Audience: aud, IssuedAt: now.Add(-2 * time.Hour), Expiry: now.Add(-time.Hour)})
	tooLong := mint(t, prefix, token.Claims{Subject: "u1", Audience: aud, Expiry: now.Add(800 * time.Hour)})
	notYet := mint(t, prefix, token.Claims{Subject: "u1", Audience: aud, Expiry: now.Add(2 * time.Hour), NotBefore: now.Add(time.Hour)})
	withIss := mint(t, prefix, token.Claims{Subject: "u1", Audience: aud, Issuer: "crm", Expiry: now.Add(time.Hour)})
	foreign := mint(t, other, token.Claims{Subject: "u1", Audience: aud, Expiry: now.Add(time.Hour)})
	parts := strings.Split(good, ".")
	tamperedPayload := mint(t, prefix, token.Claims{Subject: "admin", Audience: aud, Expiry: now.Add(time.Hour)})
	tampered := parts[0] + "." + strings.Split(tamperedPayload, ".")[1] + "." + parts[2]

	tests := []struct {
		name   string
		tok    string
		args   []string
		reason string
	}{
		{"expired", expired, nil, "expired"},
		{"wrong audience", good, []string{"--aud", "https://b.example"}, "wrong_audience"},
		{"tampered", tampered, nil, "bad_signature"},
		{"signed by another key", foreign, nil, "unknown_key"},
		{"lifetime over --max-link-age", tooLong, nil, "too_old"},
		{"lifetime within a raised --max-link-age", tooLong, []string{"--max-link-age", "1000h", "--aud", "x"}, "wrong_audience"},
		{"not yet valid", notYet, nil, "not_yet_valid"},
		{"wrong issuer", withIss, []string{"--iss", "shop"}, "wrong_issuer"},
		{"garbage", "not-a-token", nil, "malformed"},
		{"link with a bad token", "https://a.example/?token=" + parts[0] + ".e30." + parts[2], nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := append([]string{"verify", "--keys", pub, "--aud", "https://a.example"}, tt.args...)
			code, stdout, stderr := cli(t, "", append(args, tt.tok)...)
			if code != exitFailure || stdout != "" {
				t.Errorf("exit %d stdout %q, want exit 1 and nothing on stdout", code, stdout)
			}
			oneErrorLine(t, stderr, "magiclink: verify: invalid token: "+tt.reason)
			if len(tt.tok) > 20 && strings.Contains(stderr, tt.tok[len(tt.tok)-20:]) {
				t.Errorf("stderr echoes the token: %q", stderr)
			}
		})
	}
}

func TestVerifyErrors(t *testing.T) {
	prefix := newKey(t, "EdDSA")
	pub := prefix + ".public.jwks"
	tok := mint(t, prefix, token.Claims{Subject: "u1", Audience: []string{"a"}, Expiry: time.Now().Add(time.Hour)})
	tests := []struct {
		name  string
		stdin string
		args  []string
		code  int
		want  string
	}{
		{"no --keys", "", []string{"--aud", "a", tok}, exitUsage, "magiclink: verify: --keys is required"},
		{"no --aud", "", []string{"--keys", pub, tok}, exitUsage, "magiclink: verify: --aud is required"},
		{"no token", "", []string{"--keys", pub, "--aud", "a"}, exitUsage, "give the token or link to check"},
		{"two tokens", "", []string{"--keys", pub, "--aud", "a", tok, tok}, exitUsage, "give exactly one token or link"},
		{"negative leeway", "", []string{"--keys", pub, "--aud", "a", "--leeway", "-1s", tok}, exitUsage, "--leeway must not be negative"},
		{"zero max link age", "", []string{"--keys", pub, "--aud", "a", "--max-link-age", "0s", tok}, exitUsage, "--max-link-age must be positive"},
		{"missing key file", "", []string{"--keys", pub + ".nope", "--aud", "a", tok}, exitFailure, "magiclink: verify: "},
		{"link without token", "", []string{"--keys", pub, "--aud", "a", "https://a.example/?x=1"}, exitFailure, "the link has no token query parameter; use --param"},
		{"link with two tokens", "", []string{"--keys", pub, "--aud", "a", "https://a.example/?token=" + tok + "&token=" + tok}, exitFailure, "the link has 2 token query parameters"},
		{"link without host", "", []string{"--keys", pub, "--aud", "a", "https:///?token=" + tok}, exitFailure, "the link: URL has no host"},
		{"empty stdin", "\n", []string{"--keys", pub, "--aud", "a", "-"}, exitFailure, "standard input holds no token or link"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := cli(t, tt.stdin, append([]string{"verify"}, tt.args...)...)
			if code != tt.code || stdout != "" {
				t.Errorf("exit %d stdout %q, want exit %d and no output", code, stdout, tt.code)
			}
			oneErrorLine(t, stderr, tt.want)
			if strings.Contains(stderr, tok[len(tok)-20:]) {
				t.Errorf("stderr echoes the token: %q", stderr)
			}
		})
	}
}

func TestVerifyWarnsAboutPrivateKey(t *testing.T) {
	prefix := newKey(t, "ES256")
	tok := mint(t, prefix, token.Claims{Subject: "u1", Audience: []string{"a"}, Expiry: time.Now().Add(time.Hour)})
	code, stdout, stderr := cli(t, "", "verify", "--keys", prefix+".private.jwk", "--aud", "a", tok)
	if code != exitOK || !strings.Contains(stdout, `"sub": "u1"`) {
		t.Fatalf("exit %d stdout %q", code, stdout)
	}
	oneErrorLine(t, stderr, "magiclink: verify: warning: "+prefix+".private.jwk holds a private key; only its public half is used")
}

func TestVerifyHS256Secret(t *testing.T) {
	dir := t.TempDir()
	for _, name := range []string{"a", "b"} {
		if code, _, stderr := cli(t, "", "keygen", "--alg", "HS256", "--kid", "shared", "--out", filepath.Join(dir, name)); code != exitOK {
			t.Fatalf("keygen: %s", stderr)
		}
	}
	tok := mint(t, filepath.Join(dir, "a"), token.Claims{Subject: "u1", Audience: []string{"a"}, Expiry: time.Now().Add(time.Hour)})
	tests := []struct {
		keys   string
		code   int
		stderr string
	}{
		{filepath.Join(dir, "a.public.jwks"), exitOK, ""},
		{filepath.Join(dir, "b.public.jwks"), exitFailure, "magiclink: verify: invalid token: bad_signature ("},
	}
	for _, tt := range tests {
		code, _, stderr := cli(t, "", "verify", "--keys", tt.keys, "--aud", "a", tok)
		if code != tt.code || !strings.HasPrefix(stderr, tt.stderr) || (tt.stderr == "") != (stderr == "") {
			t.Errorf("%s: exit %d stderr %q, want %d %q", tt.keys, code, stderr, tt.code, tt.stderr)
		}
	}
}
