package token_test

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/magiclink-dev/magiclink/token"
)

// Interop with panva/jose (npm "jose"), run by testdata/interop/interop.mjs under Node.js.
// Install it with: npm ci --prefix token/testdata/interop

var interopDir = filepath.Join("testdata", "interop")

// nodeInterop runs interop.mjs with the requests and returns its results. It skips the test when
// Node.js or the jose package is missing, except on CI (CI=true), where that is a failure.
func nodeInterop(t *testing.T, requests []map[string]any) []map[string]json.RawMessage {
	t.Helper()
	node, err := exec.LookPath("node")
	if err == nil {
		_, err = os.Stat(filepath.Join(interopDir, "node_modules", "jose", "package.json"))
	}
	if err != nil {
		msg := "interop with panva/jose needs Node.js and `npm ci --prefix token/testdata/interop`: " + err.Error()
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	cmd := exec.Command(node, "interop.mjs")
	cmd.Dir = interopDir
	cmd.Stdin = bytes.NewReader(mustJSON(t, requests))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("interop.mjs: %v: %s", err, stderr.Bytes())
	}
	var results []map[string]json.RawMessage
	if err := json.Unmarshal(out, &results); err != nil || len(results) != len(requests) {
		t.Fatalf("interop.mjs answered %d results for %d requests (%v): %.200s", len(results), len(requests), err, out)
	}
	return results
}

func resultString(t *testing.T, r map[string]json.RawMessage, name string) string {
	t.Helper()
	if e, ok := r["error"]; ok {
		t.Fatalf("jose: %s", e)
	}
	var s string
	if err := json.Unmarshal(r[name], &s); err != nil {
		t.Fatalf("jose result has no string %q: %v", name, err)
	}
	return s
}

// interopClaims are the claims both sides mint: every claim of the format.
func interopClaims() token.Claims {
	c := wantClaims()
	c.Audience = []string{"https://other.example", testAudience}
	c.Issuer = testIssuer
	c.NotBefore = testNow.Add(-2 * time.Minute)
	c.Path = "/survey/42"
	return c
}

func interopConfig() token.Config {
	cfg := baseConfig()
	cfg.Issuer = testIssuer
	return cfg
}

func TestInteropJoseMintsWeVerify(t *testing.T) {
	ks := keySet(t)
	want := interopClaims()
	payload := json.RawMessage(mustMarshalClaims(t, want))
	type minted struct {
		key testKey
		typ string
	}
	var (
		requests []map[string]any
		sent     []minted
	)
	for _, k := range ks.supported() {
		for _, typ := range []string{token.Type, "application/" + token.Type} {
			sent = append(sent, minted{k, typ})
			requests = append(requests, map[string]any{
				"op":     "sign",
				"jwk":    k.privateJWK(),
				"header": map[string]string{"alg": k.alg, "kid": k.kid, "typ": typ},
				"claims": payload,
			})
		}
	}
	results := nodeInterop(t, requests)
	for i, r := range results {
		k := sent[i].key
		t.Run(k.alg+" typ "+sent[i].typ, func(t *testing.T) {
			tok := resultString(t, r, "token")
			h, c, err := newVerifier(t, interopConfig(), k).Verify(tok)
			if err != nil {
				t.Fatalf("our Verifier rejects jose's %s token: %v", k.alg, err)
			}
			if h.Algorithm != k.alg || h.KeyID != k.kid {
				t.Errorf("header = %+v", h)
			}
			checkClaimsEqual(t, c, &want)
		})
	}
}

func TestInteropWeMintJoseVerifies(t *testing.T) {
	ks := keySet(t)
	want := interopClaims()
	var requests []map[string]any
	for _, k := range ks.supported() {
		tok, err := newSigner(t, k).Sign(want)
		if err != nil {
			t.Fatalf("Sign(%s): %v", k.alg, err)
		}
		requests = append(requests, map[string]any{
			"op":         "verify",
			"token":      tok,
			"jwks":       json.RawMessage(jwksOf(t, k)),
			"audience":   testAudience,
			"issuer":     testIssuer,
			"typ":        token.Type,
			"algorithms": []string{k.alg},
			"now":        testNow.Unix(),
		})
	}
	results := nodeInterop(t, requests)
	wantJSON := mustMarshalClaims(t, want)
	for i, r := range results {
		k := ks.supported()[i]
		t.Run(k.alg, func(t *testing.T) {
			if e, ok := r["error"]; ok {
				t.Fatalf("jose rejects our %s token: %s", k.alg, e)
			}
			var h token.Header
			if err := json.Unmarshal(r["header"], &h); err != nil {
				t.Fatal(err)
			}
			if h != (token.Header{Algorithm: k.alg, KeyID: k.kid, Type: token.Type}) {
				t.Errorf("jose sees header %+v", h)
			}
			if !jsonEqual(t, r["claims"], wantJSON) {
				t.Errorf("jose sees claims %s, want %s", r["claims"], wantJSON)
			}
		})
	}
}

// TestInteropJoseRejectsTampering checks that the harness can fail: jose refuses our token once
// its audience, type or signature is wrong.
func TestInteropJoseRejectsTampering(t *testing.T) {
	ks := keySet(t)
	tok, err := newSigner(t, ks.eddsa).Sign(interopClaims())
	if err != nil {
		t.Fatal(err)
	}
	base := map[string]any{
		"op": "verify", "token": tok, "jwks": json.RawMessage(jwksOf(t, ks.eddsa)),
		"audience": testAudience, "typ": token.Type, "now": testNow.Unix(),
	}
	variant := func(name string, v any) map[string]any {
		m := map[string]any{}
		for k, x := range base {
			m[k] = x
		}
		m[name] = v
		return m
	}
	cases := []map[string]any{
		variant("audience", "https://evil.example"),
		variant("typ", "JWT"),
		variant("token", flipSigBit(t, tok, 0)),
		variant("jwks", json.RawMessage(jwksOf(t, ks.eddsa2.withKID(ks.eddsa.kid)))),
	}
	for i, r := range nodeInterop(t, cases) {
		if _, ok := r["error"]; !ok {
			t.Errorf("case %d: jose accepted a tampered token", i)
		}
	}
}

func mustMarshalClaims(t *testing.T, c token.Claims) []byte {
	t.Helper()
	b, err := c.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func jsonEqual(t *testing.T, a, b []byte) bool {
	t.Helper()
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		t.Fatalf("not JSON: %s / %s", a, b)
	}
	return bytes.Equal(mustJSON(t, x), mustJSON(t, y))
}
