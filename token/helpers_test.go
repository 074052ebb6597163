package token_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/magiclink-dev/magiclink/token"
)

// testNow is the fixed clock of every test: 2027-01-15T08:00:00Z.
var testNow = time.Unix(1_800_000_000, 0).UTC()

const (
	testAudience = "https://shop.example.com"
	testIssuer   = "https://mint.example.com"
)

func fixedNow() time.Time { return testNow }

// testKey is a key pair (or an HS256 secret) of the test key set, pinned to one algorithm.
type testKey struct {
	alg    string
	kid    string
	signer crypto.Signer // nil for HS256
	secret []byte        // HS256 only
}

// loadTestKey reads testdata/keys/<file>: a PKCS #8 PEM private key, or raw secret bytes for HS256.
func loadTestKey(t testing.TB, file, alg, kid string) testKey {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", "keys", file))
	if err != nil {
		t.Fatal(err)
	}
	k := testKey{alg: alg, kid: kid}
	if alg == token.HS256 {
		k.secret = data
		return k
	}
	block, _ := pem.Decode(data)
	if block == nil {
		t.Fatalf("%s: no PEM block", file)
	}
	priv, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	k.signer = priv.(crypto.Signer)
	return k
}

// testKeys are the keys of the suite, one per supported algorithm, plus spares.
type testKeySet struct {
	eddsa, eddsa2, attacker, es256, ps256, rs256, hs256 testKey
	p384, rsa1024                                       testKey
}

func keySet(t testing.TB) testKeySet {
	t.Helper()
	return testKeySet{
		eddsa:    loadTestKey(t, "eddsa.pem", token.EdDSA, "ed-1"),
		eddsa2:   loadTestKey(t, "eddsa-2.pem", token.EdDSA, "ed-2"),
		attacker: loadTestKey(t, "attacker-eddsa.pem", token.EdDSA, "ed-1"),
		es256:    loadTestKey(t, "es256.pem", token.ES256, "ec-1"),
		ps256:    loadTestKey(t, "ps256.pem", token.PS256, "ps-1"),
		rs256:    loadTestKey(t, "rs256.pem", token.RS256, "rs-1"),
		hs256:    loadTestKey(t, "hs256.secret", token.HS256, "hs-1"),
		p384:     loadTestKey(t, "p384.pem", "ES384", "ec384-1"),
		rsa1024:  loadTestKey(t, "rsa-1024.pem", token.RS256, "rs-1024"),
	}
}

// supported returns one key per supported algorithm, in a fixed order.
func (s testKeySet) supported() []testKey {
	return []testKey{s.eddsa, s.es256, s.ps256, s.rs256, s.hs256}
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func bigB64(n *big.Int, size int) string { return b64(n.FillBytes(make([]byte, size))) }

// publicJWK is the key's public JWK (the secret for HS256), with alg and kid.
func (k testKey) publicJWK() map[string]any {
	m := map[string]any{"alg": k.alg}
	if k.kid != "" {
		m["kid"] = k.kid
	}
	switch pub := k.public().(type) {
	case ed25519.PublicKey:
		m["kty"], m["crv"], m["x"] = "OKP", "Ed25519", b64(pub)
	case *ecdsa.PublicKey:
		size := (pub.Curve.Params().BitSize + 7) / 8
		m["kty"], m["crv"] = "EC", pub.Curve.Params().Name
		m["x"], m["y"] = bigB64(pub.X, size), bigB64(pub.Y, size)
	case *rsa.PublicKey:
		m["kty"], m["n"], m["e"] = "RSA", b64(pub.N.Bytes()), b64(big.NewInt(int64(pub.E)).Bytes())
	case nil:
		m["kty"], m["k"] = "oct", b64(k.secret)
	}
	return m
}

// privateJWK is the key's private JWK, with alg and kid.
func (k testKey) privateJWK() map[string]any {
	m := k.publicJWK()
	switch priv := k.signer.(type) {
	case ed25519.PrivateKey:
		m["d"] = b64(priv.Seed())
	case *ecdsa.PrivateKey:
		m["d"] = bigB64(priv.D, (priv.Curve.Params().BitSize+7)/8)
	case *rsa.PrivateKey:
		priv.Precompute()
		m["d"] = b64(priv.D.Bytes())
		m["p"], m["q"] = b64(priv.Primes[0].Bytes()), b64(priv.Primes[1].Bytes())
		m["dp"], m["dq"] = b64(priv.Precomputed.Dp.Bytes()), b64(priv.Precomputed.Dq.Bytes())
		m["qi"] = b64(priv.Precomputed.Qinv.Bytes())
	}
	return m
}

func (k testKey) public() crypto.PublicKey {
	if k.signer == nil {
		return nil
	}
	return k.signer.Public()
}

// publicPEM and publicDER are the SubjectPublicKeyInfo of the key, as an attacker would find it.
func (k testKey) publicDER(t testing.TB) []byte {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(k.public())
	if err != nil {
		t.Fatal(err)
	}
	return der
}

func (k testKey) publicPEM(t testing.TB) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: k.publicDER(t)})
}

// withKID returns a copy of k with another key id.
func (k testKey) withKID(kid string) testKey {
	k.kid = kid
	return k
}

// withAlg returns a copy of k pinned to another algorithm (for the same key material).
func (k testKey) withAlg(alg string) testKey {
	k.alg = alg
	return k
}

func mustJSON(t testing.TB, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// jwksOf is the JSON Web Key Set of the keys' public halves.
func jwksOf(t testing.TB, keys ...testKey) []byte {
	t.Helper()
	list := make([]map[string]any, len(keys))
	for i, k := range keys {
		list[i] = k.publicJWK()
	}
	return mustJSON(t, map[string]any{"keys": list})
}

// parsedKeys loads the keys' public halves through token.ParseKeys.
func parsedKeys(t testing.TB, keys ...testKey) []token.Key {
	t.Helper()
	parsed, err := token.ParseKeys(jwksOf(t, keys...))
	if err != nil {
		t.Fatalf("ParseKeys: %v", err)
	}
	return parsed
}

// baseConfig is the verifier configuration most tests use.
func baseConfig() token.Config {
	return token.Config{Audience: testAudience, Leeway: token.DefaultLeeway, MaxLinkAge: token.DefaultMaxLinkAge, Now: fixedNow}
}

func newVerifier(t testing.TB, cfg token.Config, keys ...testKey) *token.Verifier {
	t.Helper()
	v, err := token.NewVerifier(parsedKeys(t, keys...), cfg)
	if err != nil {
		t.Fatalf("NewVerifier: %v", err)
	}
	return v
}

// newSigner loads the key's private JWK through token.ParseSigner.
func newSigner(t testing.TB, k testKey) *token.Signer {
	t.Helper()
	s, err := token.ParseSigner(mustJSON(t, k.privateJWK()))
	if err != nil {
		t.Fatalf("ParseSigner(%s): %v", k.alg, err)
	}
	return s
}

// raw is a JSON value written verbatim by obj.
type raw string

// obj writes a JSON object from name, value pairs in order, keeping duplicate names: the
// crafting tool for headers and claims. A raw value is written as it is; others are marshalled.
func obj(kv ...any) string {
	var b strings.Builder
	b.WriteByte('{')
	for i := 0; i+1 < len(kv); i += 2 {
		if i > 0 {
			b.WriteByte(',')
		}
		name, _ := json.Marshal(kv[i].(string))
		b.Write(name)
		b.WriteByte(':')
		if r, ok := kv[i+1].(raw); ok {
			b.WriteString(string(r))
			continue
		}
		v, err := json.Marshal(kv[i+1])
		if err != nil {
			panic(err)
		}
		b.Write(v)
	}
	b.WriteByte('}')
	return b.String()
}

// fields is an ordered list of JSON object members, for building variants of a header or claims.
type fields []any

// set replaces the value of name, or appends name when absent.
func (f fields) set(name string, v any) fields {
	out := append(fields(nil), f...)
	for i := 0; i+1 < len(out); i += 2 {
		if out[i] == name {
			out[i+1] = v
			return out
		}
	}
	return append(out, name, v)
}

// del removes name.
func (f fields) del(name string) fields {
	var out fields
	for i := 0; i+1 < len(f); i += 2 {
		if f[i] != name {
			out = append(out, f[i], f[i+1])
		}
	}
	return out
}

// add appends name even when present (for duplicate members).
func (f fields) add(name string, v any) fields {
	return append(append(fields(nil), f...), name, v)
}

func (f fields) json() string { return obj(f...) }

func unix(d time.Duration) int64 { return testNow.Add(d).Unix() }

// header is the header a correct signer writes for k.
func header(k testKey) fields {
	f := fields{"alg", k.alg}
	if k.kid != "" {
		f = append(f, "kid", k.kid)
	}
	return append(f, "typ", token.Type)
}

// claims is a valid claim set at testNow: issued a minute ago, expiring in an hour.
func claims() fields {
	return fields{
		"sub", "user-42",
		"aud", testAudience,
		"exp", unix(time.Hour),
		"iat", unix(-time.Minute),
		"jti", "bGluay1pZC0wMDAx",
		"email", "ada@example.com",
		"name", "Ada Lovelace",
	}
}

// signingInput is BASE64URL(header) '.' BASE64URL(payload).
func signingInput(headerJSON, payloadJSON string) string {
	return b64([]byte(headerJSON)) + "." + b64([]byte(payloadJSON))
}

// sign signs input with k by algorithm alg (not necessarily k's own: the crafting tool for
// algorithm-confusion tokens). HS256 uses k.secret; the others k's private key.
func sign(t testing.TB, k testKey, alg, input string) []byte {
	t.Helper()
	digest := sha256.Sum256([]byte(input))
	var (
		sig []byte
		err error
	)
	switch alg {
	case token.EdDSA:
		sig = ed25519.Sign(k.signer.(ed25519.PrivateKey), []byte(input))
	case token.ES256:
		var r, s *big.Int
		r, s, err = ecdsa.Sign(rand.Reader, k.signer.(*ecdsa.PrivateKey), digest[:])
		if err == nil {
			sig = append(r.FillBytes(make([]byte, 32)), s.FillBytes(make([]byte, 32))...)
		}
	case token.PS256:
		sig, err = rsa.SignPSS(rand.Reader, k.signer.(*rsa.PrivateKey), crypto.SHA256, digest[:],
			&rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash})
	case token.RS256:
		sig, err = rsa.SignPKCS1v15(rand.Reader, k.signer.(*rsa.PrivateKey), crypto.SHA256, digest[:])
	case token.HS256:
		mac := hmac.New(sha256.New, k.secret)
		mac.Write([]byte(input))
		sig = mac.Sum(nil)
	default:
		t.Fatalf("sign: unsupported algorithm %q", alg)
	}
	if err != nil {
		t.Fatal(err)
	}
	return sig
}

// compact signs header and payload JSON with k using k's algorithm.
func compact(t testing.TB, k testKey, headerJSON, payloadJSON string) string {
	t.Helper()
	return compactAs(t, k, k.alg, headerJSON, payloadJSON)
}

// compactAs signs header and payload JSON with k's material using alg.
func compactAs(t testing.TB, k testKey, alg, headerJSON, payloadJSON string) string {
	t.Helper()
	input := signingInput(headerJSON, payloadJSON)
	return input + "." + b64(sign(t, k, alg, input))
}

// mint is a correct token of k with the given claims.
func mint(t testing.TB, k testKey, c fields) string {
	t.Helper()
	return compact(t, k, header(k).json(), c.json())
}

// segments splits a compact token into its three decoded parts.
func segments(t testing.TB, tok string) (headerJSON, payloadJSON, sig []byte) {
	t.Helper()
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("token has %d segments", len(parts))
	}
	dec := make([][]byte, 3)
	for i, p := range parts {
		b, err := base64.RawURLEncoding.DecodeString(p)
		if err != nil {
			t.Fatal(err)
		}
		dec[i] = b
	}
	return dec[0], dec[1], dec[2]
}

// flipBit flips bit (0–7) of the first byte at or after the first occurrence of marker in part
// (0 header, 1 payload, 2 signature) of tok, keeping the other parts' encodings untouched.
func flipBit(t testing.TB, tok string, part int, marker string, bit uint) string {
	t.Helper()
	parts := strings.Split(tok, ".")
	b, err := base64.RawURLEncoding.DecodeString(parts[part])
	if err != nil {
		t.Fatal(err)
	}
	i := 0
	if marker != "" {
		i = strings.Index(string(b), marker)
		if i < 0 {
			t.Fatalf("flipBit: %q not in part %d", marker, part)
		}
	}
	b[i] ^= 1 << bit
	parts[part] = b64(b)
	return strings.Join(parts, ".")
}

// checkReason fails t unless err wraps want (nil: err is nil) and token.Reason agrees.
func checkReason(t testing.TB, err, want error) {
	t.Helper()
	if want == nil {
		if err != nil {
			t.Fatalf("rejected with %v (reason %q), want accepted", err, token.Reason(err))
		}
		return
	}
	if err == nil {
		t.Fatalf("accepted, want %v", want)
	}
	if !errors.Is(err, want) || token.Reason(err) != token.Reason(want) {
		t.Fatalf("rejected with %q (reason %q), want reason %q", err, token.Reason(err), token.Reason(want))
	}
	for _, r := range allReasons {
		if r != want && errors.Is(err, r) {
			t.Fatalf("error %q wraps %q besides %q", err, token.Reason(r), token.Reason(want))
		}
	}
}

// allReasons are the rejection reasons of token.Verify.
var allReasons = []error{
	token.ErrMalformed, token.ErrBadSignature, token.ErrUnknownKey, token.ErrWrongAlgorithm,
	token.ErrWrongType, token.ErrExpired, token.ErrNotYetValid, token.ErrWrongAudience,
	token.ErrWrongIssuer, token.ErrTooOld, token.ErrInvalidClaim,
}

// checkNoLeak fails t when msg shows the token's signature or payload, or any of the secrets.
func checkNoLeak(t testing.TB, msg, tok string, secrets ...[]byte) {
	t.Helper()
	for _, part := range strings.Split(tok, ".") {
		if len(part) >= 16 && strings.Contains(msg, part) {
			t.Fatalf("error message shows a token segment: %q", msg)
		}
	}
	for _, s := range secrets {
		if len(s) > 0 && (strings.Contains(msg, string(s)) || strings.Contains(msg, b64(s))) {
			t.Fatalf("error message shows a secret: %q", msg)
		}
	}
}
