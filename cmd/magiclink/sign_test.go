package main

import (
	"encoding/json"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/magiclink-dev/magiclink/token"
)

func TestSign(t *testing.T) {
	prefix := newKey(t, "EdDSA")
	key := prefix + ".private.jwk"
	tests := []struct {
		name     string
		args     []string
		aud      string // the audience the token must verify for
		linkTo   string // the URL the printed link must point to; "" = a bare token
		param    string
		claims   token.Claims
		warnings string
	}{
		{
			name:   "bare token",
			args:   []string{"--sub", "u1", "--aud", "https://gw.example.com"},
			aud:    "https://gw.example.com",
			claims: token.Claims{Subject: "u1"},
		},
		{
			name:   "link with audience from its origin",
			args:   []string{"--sub", "u2", "--url", "https://Shop.Example.com:443/cart?item=7&token=old#top"},
			aud:    "https://shop.example.com",
			linkTo: "https://Shop.Example.com:443/cart?item=7&token=old#top",
			param:  "token",
			claims: token.Claims{Subject: "u2"},
		},
		{
			name:   "every claim, another param, explicit audience",
			args:   []string{"--sub", "u3", "--url", "http://localhost:8080/survey/42", "--param", "t", "--aud", "app", "--iss", "crm", "--email", "u3@example.com", "--name", "Ü Three", "--path", "/survey/42", "--ttl", "90m"},
			aud:    "app",
			linkTo: "http://localhost:8080/survey/42",
			param:  "t",
			claims: token.Claims{Subject: "u3", Issuer: "crm", Email: "u3@example.com", Name: "Ü Three", Path: "/survey/42"},
		},
		{
			name:     "ttl beyond the default max link age",
			args:     []string{"--sub", "u4", "--aud", "a", "--ttl", "1000h"},
			aud:      "a",
			claims:   token.Claims{Subject: "u4"},
			warnings: "magiclink: sign: warning: --ttl 1000h0m0s is longer than the gateway's default max_link_age 720h0m0s; raise max_link_age or the links will be rejected\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := cli(t, "", append([]string{"sign", "--key", key}, tt.args...)...)
			if code != exitOK || stderr != tt.warnings {
				t.Fatalf("exit %d stderr %q", code, stderr)
			}
			out := strings.TrimSuffix(stdout, "\n")
			if strings.Contains(out, "\n") {
				t.Fatalf("more than one line printed: %q", stdout)
			}
			tok := out
			if tt.linkTo != "" {
				u, err := url.Parse(out)
				if err != nil {
					t.Fatal(err)
				}
				tok = u.Query().Get(tt.param)
				if want, _ := token.Link(tt.linkTo, tt.param, tok); out != want {
					t.Errorf("link %q, want %q", out, want)
				}
			}
			keys, err := token.LoadKeys(prefix + ".public.jwks")
			if err != nil {
				t.Fatal(err)
			}
			v, err := token.NewVerifier(keys, token.Config{Audience: tt.aud, Issuer: tt.claims.Issuer, MaxLinkAge: 2000 * time.Hour})
			if err != nil {
				t.Fatal(err)
			}
			_, c, err := v.Verify(tok)
			if err != nil {
				t.Fatalf("token does not verify: %v", err)
			}
			want := tt.claims
			if c.Subject != want.Subject || c.Issuer != want.Issuer || c.Email != want.Email || c.Name != want.Name || c.Path != want.Path {
				t.Errorf("claims %+v, want %+v", c, want)
			}
			if len(c.ID) < 16 {
				t.Errorf("jti %q is too short for 96 random bits", c.ID)
			}
		})
	}
}

func TestSignTTL(t *testing.T) {
	prefix := newKey(t, "EdDSA")
	for _, ttl := range []time.Duration{time.Minute, defaultTTL} {
		args := []string{"sign", "--key", prefix + ".private.jwk", "--sub", "u", "--aud", "a"}
		if ttl != defaultTTL {
			args = append(args, "--ttl", ttl.String())
		}
		code, stdout, stderr := cli(t, "", args...)
		if code != exitOK {
			t.Fatalf("exit %d: %s", code, stderr)
		}
		c := checkToken(t, prefix, "a", strings.TrimSpace(stdout))
		if got := c.Expiry.Sub(c.IssuedAt); got != ttl {
			t.Errorf("exp - iat = %v, want %v", got, ttl)
		}
		if d := time.Since(c.IssuedAt); d < 0 || d > time.Minute {
			t.Errorf("iat %v is not now", c.IssuedAt)
		}
	}
}

func TestSignJSON(t *testing.T) {
	prefix := newKey(t, "EdDSA")
	key := prefix + ".private.jwk"
	tests := []struct {
		name string
		args []string
		url  bool
	}{
		{"with url", []string{"--url", "https://example.com/w"}, true},
		{"without url", []string{"--aud", "https://example.com"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := cli(t, "", append([]string{"sign", "--key", key, "--sub", "u1", "--json"}, tt.args...)...)
			if code != exitOK {
				t.Fatalf("exit %d: %s", code, stderr)
			}
			var raw map[string]any
			if err := json.Unmarshal([]byte(stdout), &raw); err != nil {
				t.Fatalf("not JSON: %v\n%s", err, stdout)
			}
			want := []string{"id", "token", "sub", "expires_at", "created_at"}
			if tt.url {
				want = append(want, "url")
			}
			if len(raw) != len(want) {
				t.Errorf("fields %v, want %v", raw, want)
			}
			for _, k := range want {
				if _, ok := raw[k].(string); !ok {
					t.Errorf("%s is %T, want a string", k, raw[k])
				}
			}
			var res signResult
			if err := json.Unmarshal([]byte(stdout), &res); err != nil {
				t.Fatal(err)
			}
			c := checkToken(t, prefix, "https://example.com", res.Token)
			exp, err1 := time.Parse(time.RFC3339, res.ExpiresAt)
			created, err2 := time.Parse(time.RFC3339, res.CreatedAt)
			if err1 != nil || err2 != nil {
				t.Fatalf("times are not RFC 3339: %v %v", err1, err2)
			}
			if res.ID != c.ID || res.Subject != "u1" || !exp.Equal(c.Expiry) || !created.Equal(c.IssuedAt) {
				t.Errorf("JSON %+v does not match claims %+v", res, c)
			}
			if tt.url {
				if link, _ := token.Link("https://example.com/w", "token", res.Token); res.URL != link {
					t.Errorf("url %q, want %q", res.URL, link)
				}
			}
		})
	}
}

func TestSignErrors(t *testing.T) {
	prefix := newKey(t, "EdDSA")
	key := prefix + ".private.jwk"
	tests := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"no --key", []string{"--sub", "u", "--aud", "a"}, exitUsage, "magiclink: sign: --key is required"},
		{"no --sub", []string{"--key", key, "--aud", "a"}, exitUsage, "magiclink: sign: --sub is required"},
		{"no --aud or --url", []string{"--key", key, "--sub", "u"}, exitUsage, "magiclink: sign: --aud is required when --url is not given"},
		{"bad --ttl", []string{"--key", key, "--sub", "u", "--aud", "a", "--ttl", "1 day"}, exitUsage, `invalid value "1 day" for flag -ttl`},
		{"zero --ttl", []string{"--key", key, "--sub", "u", "--aud", "a", "--ttl", "0s"}, exitUsage, "--ttl must be positive, not 0s"},
		{"negative --ttl", []string{"--key", key, "--sub", "u", "--aud", "a", "--ttl", "-1h"}, exitUsage, "--ttl must be positive, not -1h0m0s"},
		{"relative --url", []string{"--key", key, "--sub", "u", "--url", "/welcome"}, exitUsage, "--url: not an absolute http or https URL"},
		{"bad --url", []string{"--key", key, "--sub", "u", "--url", "https://exa mple.com/"}, exitUsage, "--url: not a valid URL"},
		{"positional argument", []string{"--key", key, "--sub", "u", "--aud", "a", "extra"}, exitUsage, `unexpected argument "extra"`},
		{"missing key file", []string{"--key", key + ".nope", "--sub", "u", "--aud", "a"}, exitFailure, "magiclink: sign: "},
		{"public key instead of private", []string{"--key", prefix + ".public.jwks", "--sub", "u", "--aud", "a"}, exitFailure, "magiclink: sign: "},
		{"sub with a control character", []string{"--key", key, "--sub", "u\x01", "--aud", "a"}, exitFailure, "magiclink: sign: "},
		{"path not a path", []string{"--key", key, "--sub", "u", "--aud", "a", "--path", "survey"}, exitUsage, `--path "survey": path must start with "/"`},
		{"path with a dot segment", []string{"--key", key, "--sub", "u", "--aud", "a", "--path", "/a/..;x"}, exitUsage, "the gateway could never accept it"},
		{"path with a full-width dot segment", []string{"--key", key, "--sub", "u", "--aud", "a", "--path", "/a/\uFF0E\uFF0E"}, exitUsage, "the gateway could never accept it"},
		{"bad --param", []string{"--key", key, "--sub", "u", "--aud", "a", "--param", "to&ken"}, exitUsage, `--param: parameter name "to&ken"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := cli(t, "", append([]string{"sign"}, tt.args...)...)
			if code != tt.code || stdout != "" {
				t.Errorf("exit %d stdout %q, want exit %d and no output", code, stdout, tt.code)
			}
			oneErrorLine(t, stderr, tt.want)
		})
	}
}
