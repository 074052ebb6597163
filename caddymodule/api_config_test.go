package caddymodule

import (
	"context"
	"encoding/json"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/magiclink-dev/magiclink/internal/origin"
	"github.com/magiclink-dev/magiclink/internal/pathscope"
	"github.com/magiclink-dev/magiclink/token"
)

func TestAPIUnmarshalCaddyfile(t *testing.T) {
	input := `magic_link_api {
		key         api.private.jwk
		secret_key  {env.API_KEY} {file./run/old_key}
		secret_key  third-key
		url         https://shop.example.com/welcome
		audience    https://shop.example.com
		issuer      https://mailer.example.com
		param       t
		default_ttl 1h
		max_ttl     48h
		once        false
	}`
	var a API
	if err := a.UnmarshalCaddyfile(caddyfile.NewTestDispenser(input)); err != nil {
		t.Fatal(err)
	}
	got, err := json.Marshal(a)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"key":"api.private.jwk","secret_keys":["{env.API_KEY}","{file./run/old_key}","third-key"],` +
		`"url":"https://shop.example.com/welcome","audience":"https://shop.example.com","issuer":"https://mailer.example.com",` +
		`"param":"t","default_ttl":3600000000000,"max_ttl":172800000000000,"once":false}`
	if string(got) != want {
		t.Errorf("JSON = %s\nwant   %s", got, want)
	}

	for _, bad := range []string{
		"magic_link_api arg {\n}",
		"magic_link_api {\n\tkey\n}",
		"magic_link_api {\n\tkey a b\n}",
		"magic_link_api {\n\tkey a\n\tkey b\n}",
		"magic_link_api {\n\tsecret_key\n}",
		"magic_link_api {\n\tonce\n}",
		"magic_link_api {\n\tonce yes\n}",
		"magic_link_api {\n\tmax_ttl soon\n}",
		"magic_link_api {\n\tdefault_ttl 0\n}",
		"magic_link_api {\n\tkeys a\n}",
	} {
		var a API
		if err := a.UnmarshalCaddyfile(caddyfile.NewTestDispenser(bad)); err == nil {
			t.Errorf("%q: parsed, want an error", bad)
		}
	}
}

// TestAPIDirectiveOrder checks that magic_link_api needs no order line and runs before magic_link,
// so that a site's gateway never asks the API's callers for a session.
func TestAPIDirectiveOrder(t *testing.T) {
	input := "http://127.0.0.1:9 {\n\tmagic_link {\n\t\tkeys k.jwks\n\t\taudience https://a.example\n\t}\n" +
		"\tmagic_link_api /api/* {\n\t\tkey k.jwk\n\t\tsecret_key {env.API_KEY}\n\t\turl https://a.example/\n\t}\n}\n"
	adapted, warnings, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(input), nil)
	if err != nil || len(warnings) > 0 {
		t.Fatalf("adapt: %v %v", err, warnings)
	}
	s := string(adapted)
	api, gw := strings.Index(s, `"handler":"magic_link_api"`), strings.Index(s, `"handler":"magic_link"`)
	if api < 0 || gw < 0 || api > gw {
		t.Errorf("magic_link_api at %d, magic_link at %d: want the API first\n%s", api, gw, s)
	}
}

func TestAPIDefaults(t *testing.T) {
	a := API{URL: "HTTPS://Shop.Example.com:443/welcome?x=1"}
	a.setDefaults()
	if a.Audience != "https://shop.example.com" || a.Param != "token" || a.DefaultTTL != caddy.Duration(720*time.Hour) ||
		a.MaxTTL != caddy.Duration(720*time.Hour) || a.Once == nil || !*a.Once {
		t.Errorf("defaults %+v (once %v)", a, a.Once)
	}
	b := API{URL: "http://shop.example.com:8080/", Audience: "https://other.example"}
	b.setDefaults()
	if b.Audience != "https://other.example" {
		t.Errorf("a configured audience became %q", b.Audience)
	}
	c := API{URL: "http://127.0.0.1:80/"}
	c.setDefaults()
	if c.Audience != "http://127.0.0.1" {
		t.Errorf("audience %q, want http://127.0.0.1", c.Audience)
	}
}

// TestAPIProvisionRefuses checks the configurations the API refuses to start with, each error
// naming the setting.
func TestAPIProvisionRefuses(t *testing.T) {
	keys := newGWKeys(t)
	dir := t.TempDir()
	hs := filepath.Join(dir, "short.jwk")
	if err := os.WriteFile(hs, []byte(`{"kty":"oct","k":"c2hvcnQ","alg":"HS256"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("MAGICLINK_API_SHORT", "short")
	t.Setenv("MAGICLINK_API_EMPTY", "")
	valid := func() API {
		return API{Key: keys.privateFile, SecretKeys: []string{apiSecretKey}, URL: "https://shop.example.com/welcome"}
	}
	tests := []struct {
		name string
		edit func(*API)
		want string
	}{
		{"no key", func(a *API) { a.Key = "" }, "key:"},
		{"no secret key", func(a *API) { a.SecretKeys = nil }, "secret_key"},
		{"short secret key", func(a *API) { a.SecretKeys = []string{apiSecretKey, "0123456789abcdef0123456789abcde"} }, "secret_key 2: 31 bytes"},
		{"short expanded secret key", func(a *API) { a.SecretKeys = []string{"{env.MAGICLINK_API_SHORT}"} }, "secret_key 1: 5 bytes"},
		{"empty expanded secret key", func(a *API) { a.SecretKeys = []string{"{env.MAGICLINK_API_EMPTY}"} }, "secret_key 1: a placeholder"},
		{"no url", func(a *API) { a.URL = "" }, "url:"},
		{"relative url", func(a *API) { a.URL = "/welcome" }, "url:"},
		{"ftp url", func(a *API) { a.URL = "ftp://shop.example.com/" }, "url:"},
		{"url with credentials", func(a *API) { a.URL = "https://u:p@shop.example.com/" }, "url:"},
		{"bad param", func(a *API) { a.Param = "a b" }, "param:"},
		{"audience with a control character", func(a *API) { a.Audience = "https://a\x01" }, "audience"},
		{"default_ttl over max_ttl", func(a *API) { a.DefaultTTL = caddy.Duration(721 * time.Hour) }, "default_ttl"},
		{"max_ttl under the default default_ttl", func(a *API) { a.MaxTTL = caddy.Duration(time.Hour) }, "default_ttl"},
		{"max_ttl under a second", func(a *API) { a.MaxTTL = caddy.Duration(time.Millisecond) }, "max_ttl"},
		{"negative default_ttl", func(a *API) { a.DefaultTTL = caddy.Duration(-time.Hour) }, "default_ttl"},
		{"missing key file", func(a *API) { a.Key = filepath.Join(dir, "nope.jwk") }, "key: reading key file"},
		{"public key", func(a *API) { a.Key = keys.keyFile }, "signing needs the private key"},
		{"short HS256 secret", func(a *API) { a.Key = hs }, "key: key file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := valid()
			tt.edit(&a)
			ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
			defer cancel()
			err := a.Provision(ctx)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want one containing %q", err, tt.want)
			}
			if strings.Contains(err.Error(), apiSecretKey) {
				t.Errorf("the error repeats a secret key: %v", err)
			}
		})
	}
}

// FuzzParseCreateRequest checks that the body parser never panics and that whatever it accepts
// makes a link a gateway takes: a signable token with the user id, a lifetime within max_ttl, a
// path scope the gateway can match and a URL on the configured origin.
func FuzzParseCreateRequest(f *testing.F) {
	for _, seed := range []string{
		`{"user_id":"user_1"}`,
		`{"user_id":"user_1","expires_in_seconds":600,"email":"a@example.com","name":"A","path":"/a","url":"https://shop.example.com/b","once":false}`,
		`{"user_id":"u","expires_in_seconds":2592000}`,
		`{"user_id":"u","expires_in_seconds":1e3}`,
		`{"user_id":null,"extra":[1,{"a":null}]}`,
		`{"user_id":"\u0000"}`,
		`[]`, `null`, ``, `{`,
	} {
		f.Add([]byte(seed))
	}
	private, _, err := token.GenerateKey("", "")
	if err != nil {
		f.Fatal(err)
	}
	signer, err := token.ParseSigner(private)
	if err != nil {
		f.Fatal(err)
	}
	linkURL, _ := url.Parse("https://shop.example.com/welcome")
	const maxTTL = 48 * time.Hour
	f.Fuzz(func(t *testing.T, body []byte) {
		p, rejected := parseCreateRequest(body, linkURL, maxTTL)
		if rejected != nil {
			if rejected.status != 422 || rejected.Code == "" || rejected.LongMessage == "" {
				t.Fatalf("refusal %+v: want a 422 with a code and a long message", rejected)
			}
			return
		}
		if p.ExpiresIn < 0 || time.Duration(p.ExpiresIn)*time.Second > maxTTL {
			t.Fatalf("accepted expires_in_seconds %d", p.ExpiresIn)
		}
		if pathscope.Check(p.Path) != nil {
			t.Fatalf("accepted path %q", p.Path)
		}
		if p.URL != "" {
			u, err := url.Parse(p.URL)
			if err != nil || origin.Of(u) != "https://shop.example.com" {
				t.Fatalf("accepted url %q", p.URL)
			}
		}
		now := time.Now()
		_, err := signer.Sign(token.Claims{Subject: p.UserID, Audience: []string{gwAudience}, IssuedAt: now,
			Expiry: now.Add(time.Hour), Email: p.Email, Name: p.Name, Path: p.Path})
		if err != nil {
			t.Fatalf("accepted %q, but its claims cannot be signed: %v", body, err)
		}
	})
}
