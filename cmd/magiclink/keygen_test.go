package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestKeygenSignVerifyEveryAlgorithm(t *testing.T) {
	tests := []struct {
		alg     string
		pubMode os.FileMode
	}{
		{"EdDSA", 0o644},
		{"ES256", 0o644},
		{"PS256", 0o644},
		{"RS256", 0o644},
		{"HS256", 0o600},
	}
	for _, tt := range tests {
		t.Run(tt.alg, func(t *testing.T) {
			prefix := filepath.Join(t.TempDir(), "k")
			code, stdout, stderr := cli(t, "", "keygen", "--alg", tt.alg, "--kid", "key-"+tt.alg, "--out", prefix)
			if code != exitOK {
				t.Fatalf("keygen: exit %d: %s", code, stderr)
			}
			if !strings.Contains(stdout, "kid: key-"+tt.alg+"\n") || !strings.Contains(stdout, "alg: "+tt.alg+"\n") {
				t.Errorf("keygen output lacks kid or alg:\n%s", stdout)
			}
			for path, want := range map[string]os.FileMode{prefix + ".private.jwk": 0o600, prefix + ".public.jwks": tt.pubMode} {
				fi, err := os.Stat(path)
				if err != nil {
					t.Fatal(err)
				}
				if fi.Mode().Perm() != want {
					t.Errorf("%s has mode %v, want %v", path, fi.Mode().Perm(), want)
				}
			}
			var jwks struct {
				Keys []struct {
					Kid string `json:"kid"`
					Alg string `json:"alg"`
					D   string `json:"d"`
				} `json:"keys"`
			}
			data, err := os.ReadFile(prefix + ".public.jwks")
			if err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal(data, &jwks); err != nil || len(jwks.Keys) != 1 {
				t.Fatalf("public.jwks is not a JWKS with one key: %v", err)
			}
			if jwks.Keys[0].Kid != "key-"+tt.alg || jwks.Keys[0].D != "" {
				t.Errorf("public key: kid %q, has private part %v", jwks.Keys[0].Kid, jwks.Keys[0].D != "")
			}

			code, link, stderr := cli(t, "", "sign", "--key", prefix+".private.jwk", "--sub", "u-"+tt.alg, "--url", "https://shop.example.com/cart?x=1")
			if code != exitOK {
				t.Fatalf("sign: exit %d: %s", code, stderr)
			}
			code, stdout, stderr = cli(t, "", "verify", "--keys", prefix+".public.jwks", "--aud", "https://shop.example.com", strings.TrimSpace(link))
			if code != exitOK {
				t.Fatalf("verify: exit %d: %s", code, stderr)
			}
			var got verifyJSON
			if err := json.Unmarshal([]byte(stdout), &got); err != nil {
				t.Fatalf("verify output is not JSON: %v\n%s", err, stdout)
			}
			if got.Header.Alg != tt.alg || got.Header.Kid != "key-"+tt.alg || got.Claims.Sub != "u-"+tt.alg {
				t.Errorf("verify printed header %+v claims %+v", got.Header, got.Claims)
			}
		})
	}
}

func TestKeygenDefaultKidIsThumbprint(t *testing.T) {
	prefix := filepath.Join(t.TempDir(), "k")
	code, stdout, stderr := cli(t, "", "keygen", "--out", prefix)
	if code != exitOK {
		t.Fatalf("keygen: exit %d: %s", code, stderr)
	}
	data, err := os.ReadFile(prefix + ".public.jwks")
	if err != nil {
		t.Fatal(err)
	}
	var jwks struct {
		Keys []struct {
			Kid string `json:"kid"`
		} `json:"keys"`
	}
	if err := json.Unmarshal(data, &jwks); err != nil || len(jwks.Keys) != 1 {
		t.Fatalf("public.jwks is not a JWKS with one key: %v", err)
	}
	// An RFC 7638 SHA-256 thumbprint is 32 bytes, 43 base64url characters.
	if kid := jwks.Keys[0].Kid; len(kid) != 43 || !strings.Contains(stdout, "kid: "+kid+"\n") {
		t.Errorf("kid %q is not a thumbprint or not printed:\n%s", kid, stdout)
	}
}

func TestKeygenRefusesOverwrite(t *testing.T) {
	for _, existing := range []string{".private.jwk", ".public.jwks"} {
		t.Run(existing, func(t *testing.T) {
			prefix := filepath.Join(t.TempDir(), "k")
			if err := os.WriteFile(prefix+existing, []byte("keep me"), 0o600); err != nil {
				t.Fatal(err)
			}
			code, stdout, stderr := cli(t, "", "keygen", "--out", prefix)
			if code != exitFailure || stdout != "" {
				t.Errorf("exit %d stdout %q, want exit 1 and no output", code, stdout)
			}
			oneErrorLine(t, stderr, prefix+existing+" already exists; remove it or choose another --out")
			if data, _ := os.ReadFile(prefix + existing); string(data) != "keep me" {
				t.Errorf("%s was overwritten", existing)
			}
			entries, err := os.ReadDir(filepath.Dir(prefix))
			if err != nil {
				t.Fatal(err)
			}
			if len(entries) != 1 {
				t.Errorf("keygen left %d files, want only the existing one", len(entries))
			}
		})
	}
}

func TestKeygenErrors(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"no --out", []string{"keygen"}, exitUsage, "magiclink: keygen: --out is required"},
		{"unknown alg", []string{"keygen", "--alg", "none", "--out", filepath.Join(dir, "a")}, exitFailure, "magiclink: keygen: "},
		{"extra argument", []string{"keygen", "--out", filepath.Join(dir, "b"), "extra"}, exitUsage, `unexpected argument "extra"`},
		{"missing directory", []string{"keygen", "--out", filepath.Join(dir, "nope", "k")}, exitFailure, "magiclink: keygen: "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := cli(t, "", tt.args...)
			if code != tt.code || stdout != "" {
				t.Errorf("exit %d stdout %q, want exit %d and no output", code, stdout, tt.code)
			}
			oneErrorLine(t, stderr, tt.want)
		})
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("failed keygen runs left %d files", len(entries))
	}
}

// verifyJSON is the shape verify prints.
type verifyJSON struct {
	Header struct {
		Alg string `json:"alg"`
		Kid string `json:"kid"`
		Typ string `json:"typ"`
	} `json:"header"`
	Claims struct {
		Sub   string `json:"sub"`
		Aud   any    `json:"aud"`
		Exp   int64  `json:"exp"`
		Iat   int64  `json:"iat"`
		Jti   string `json:"jti"`
		Email string `json:"email"`
		Name  string `json:"name"`
		Path  string `json:"path"`
	} `json:"claims"`
}
