package token_test

import (
	"crypto"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/magiclink-dev/magiclink/token"
)

// rejectCase is one token and the verdict the verifier must give on it.
type rejectCase struct {
	name string
	// keys are the verifier's keys; nil means the EdDSA key alone.
	keys []testKey
	// cfg changes the base configuration.
	cfg func(*token.Config)
	tok string
	// want is the reason; nil means the token must be accepted.
	want error
	// check inspects the claims of an accepted token.
	check func(t *testing.T, c *token.Claims)
}

func TestVerifyAcceptsEverySupportedAlgorithm(t *testing.T) {
	ks := keySet(t)
	for _, k := range ks.supported() {
		t.Run(k.alg, func(t *testing.T) {
			v := newVerifier(t, baseConfig(), k)
			want := wantClaims()
			crafted := mint(t, k, claims())
			signed, err := newSigner(t, k).Sign(want)
			if err != nil {
				t.Fatalf("Sign: %v", err)
			}
			for name, tok := range map[string]string{"crafted": crafted, "Signer": signed} {
				h, c, err := v.Verify(tok)
				if err != nil {
					t.Fatalf("%s token rejected: %v", name, err)
				}
				if h.Algorithm != k.alg || h.KeyID != k.kid || h.Type != token.Type {
					t.Errorf("%s token header = %+v", name, h)
				}
				checkClaimsEqual(t, c, &want)
			}
		})
	}
}

// wantClaims are the claims of claims() as token.Claims.
func wantClaims() token.Claims {
	return token.Claims{
		Subject:  "user-42",
		Audience: []string{testAudience},
		Expiry:   time.Unix(unix(time.Hour), 0),
		IssuedAt: time.Unix(unix(-time.Minute), 0),
		ID:       "bGluay1pZC0wMDAx",
		Email:    "ada@example.com",
		Name:     "Ada Lovelace",
	}
}

func checkClaimsEqual(t *testing.T, got, want *token.Claims) {
	t.Helper()
	if got == nil {
		t.Fatal("no claims")
	}
	same := got.Subject == want.Subject && got.Issuer == want.Issuer && got.ID == want.ID &&
		got.Email == want.Email && got.Name == want.Name && got.Path == want.Path &&
		got.Expiry.Equal(want.Expiry) && got.IssuedAt.Equal(want.IssuedAt) &&
		got.NotBefore.Equal(want.NotBefore) && strings.Join(got.Audience, "\n") == strings.Join(want.Audience, "\n")
	if !same {
		t.Fatalf("claims = %+v, want %+v", *got, *want)
	}
}

func TestVerifyRejects(t *testing.T) {
	ks := keySet(t)
	ed := ks.eddsa
	two := []testKey{ks.eddsa, ks.eddsa2}
	hdr := header(ed)
	tok := func(h, c fields) string { return compact(t, ed, h.json(), c.json()) }
	withClaim := func(name string, v any) string { return tok(hdr, claims().set(name, v)) }
	withoutClaim := func(name string) string { return tok(hdr, claims().del(name)) }
	withHeader := func(name string, v any) string { return tok(hdr.set(name, v), claims()) }
	zeroLeeway := func(c *token.Config) { c.Leeway = 0 }
	withIssuer := func(c *token.Config) { c.Issuer = testIssuer }
	valid := mint(t, ed, claims())
	input := signingInput(hdr.json(), claims().json())

	var cases []rejectCase
	add := func(c ...rejectCase) { cases = append(cases, c...) }

	// The algorithm comes from the key, never from the token.
	for _, alg := range []string{"none", "None", "NONE", "nOnE"} {
		h := hdr.set("alg", alg)
		add(rejectCase{name: "alg " + alg + " with empty signature", tok: signingInput(h.json(), claims().json()) + ".", want: token.ErrWrongAlgorithm})
		add(rejectCase{name: "alg " + alg + " with a signature", tok: signingInput(h.json(), claims().json()) + "." + b64(sign(t, ed, token.EdDSA, signingInput(h.json(), claims().json()))), want: token.ErrWrongAlgorithm})
	}
	confusion := func(name string, k testKey, secret []byte) rejectCase {
		mac := k
		mac.secret = secret
		h := header(k).set("alg", token.HS256)
		return rejectCase{name: name, keys: []testKey{k}, tok: compactAs(t, mac, token.HS256, h.json(), claims().json()), want: token.ErrWrongAlgorithm}
	}
	add(
		confusion("HS256 keyed with the RSA public key PEM", ks.rs256, ks.rs256.publicPEM(t)),
		confusion("HS256 keyed with the RSA public key DER", ks.rs256, ks.rs256.publicDER(t)),
		confusion("HS256 keyed with the PS256 public key PEM", ks.ps256, ks.ps256.publicPEM(t)),
		confusion("HS256 keyed with the Ed25519 public key bytes", ed, ed.public().(ed25519.PublicKey)),
		confusion("HS256 keyed with the Ed25519 public key PEM", ed, ed.publicPEM(t)),
		confusion("HS256 keyed with the P-256 public key DER", ks.es256, ks.es256.publicDER(t)),
		confusion("HS256 keyed with the public JWK", ed, mustJSON(t, ed.publicJWK())),
		rejectCase{name: "RS256 token for a PS256 key", keys: []testKey{ks.ps256}, tok: compactAs(t, ks.ps256, token.RS256, header(ks.ps256).set("alg", token.RS256).json(), claims().json()), want: token.ErrWrongAlgorithm},
		rejectCase{name: "PS256 token for an RS256 key", keys: []testKey{ks.rs256}, tok: compactAs(t, ks.rs256, token.PS256, header(ks.rs256).set("alg", token.PS256).json(), claims().json()), want: token.ErrWrongAlgorithm},
		rejectCase{name: "ES256 token for an EdDSA key", tok: compactAs(t, ks.es256, token.ES256, hdr.set("alg", token.ES256).json(), claims().json()), want: token.ErrWrongAlgorithm},
		rejectCase{name: "EdDSA token for an ES256 key", keys: []testKey{ks.es256}, tok: compactAs(t, ed, token.EdDSA, header(ks.es256).set("alg", token.EdDSA).json(), claims().json()), want: token.ErrWrongAlgorithm},
		rejectCase{name: "HS384 token for an HS256 key", keys: []testKey{ks.hs256}, tok: signingInput(header(ks.hs256).set("alg", "HS384").json(), claims().json()) + "." + b64(make([]byte, 48)), want: token.ErrWrongAlgorithm},
		rejectCase{name: "ES384 token for an ES256 key", keys: []testKey{ks.es256}, tok: signingInput(header(ks.es256).set("alg", "ES384").json(), claims().json()) + "." + b64(make([]byte, 96)), want: token.ErrWrongAlgorithm},
		rejectCase{name: "alg in lower case", tok: tok(hdr.set("alg", "eddsa"), claims()), want: token.ErrWrongAlgorithm},
		rejectCase{name: "alg Ed25519 (fully-specified name)", tok: tok(hdr.set("alg", "Ed25519"), claims()), want: token.ErrWrongAlgorithm},
		rejectCase{name: "alg empty", tok: withHeader("alg", ""), want: token.ErrWrongAlgorithm},
		rejectCase{name: "alg missing", tok: tok(hdr.del("alg"), claims()), want: token.ErrMalformed},
		rejectCase{name: "alg not a string", tok: withHeader("alg", raw(`["EdDSA"]`)), want: token.ErrMalformed},
	)

	// One bit flipped anywhere breaks the signature.
	add(
		rejectCase{name: "bit flipped in header (typ case)", tok: flipBit(t, valid, 0, "magic-link", 5), want: token.ErrBadSignature},
		rejectCase{name: "bit flipped in header (kid)", keys: []testKey{ed, ed.withKID("ed-0")}, tok: flipBit(t, valid, 0, `1","typ`, 0), want: token.ErrBadSignature},
		rejectCase{name: "bit flipped in payload (sub)", tok: flipBit(t, valid, 1, "user-42", 1), want: token.ErrBadSignature},
		rejectCase{name: "bit flipped in payload (exp)", tok: flipBit(t, valid, 1, `"exp":1`, 6), want: token.ErrBadSignature},
		rejectCase{name: "empty signature", tok: input + ".", want: token.ErrBadSignature},
		rejectCase{name: "signature of another token", tok: input + "." + strings.Split(mint(t, ed, claims().set("sub", "other")), ".")[2], want: token.ErrBadSignature},
		rejectCase{name: "signature by another key with the same kid", tok: mint(t, ks.attacker, claims()), want: token.ErrBadSignature},
		rejectCase{name: "signature truncated to 63 bytes", tok: input + "." + b64(sign(t, ed, token.EdDSA, input)[:63]), want: token.ErrBadSignature},
		rejectCase{name: "signature with a byte appended", tok: input + "." + b64(append(sign(t, ed, token.EdDSA, input), 0)), want: token.ErrBadSignature},
	)
	for _, k := range ks.supported() {
		good := mint(t, k, claims())
		sigLen := len(must3(t, good))
		for _, at := range []int{0, sigLen / 2, sigLen - 1} {
			add(rejectCase{name: k.alg + " signature bit flipped at byte " + itoa(at), keys: []testKey{k}, tok: flipSigBit(t, good, at), want: token.ErrBadSignature})
		}
	}
	es := ks.es256
	esInput := signingInput(header(es).json(), claims().json())
	esSig := sign(t, es, token.ES256, esInput)
	add(
		rejectCase{name: "ES256 signature in ASN.1 DER", keys: []testKey{es}, tok: esInput + "." + b64(derSignature(esSig)), want: token.ErrBadSignature},
		rejectCase{name: "ES256 signature r and s zero", keys: []testKey{es}, tok: esInput + "." + b64(make([]byte, 64)), want: token.ErrBadSignature},
		rejectCase{name: "ES256 signature s replaced by n - s", keys: []testKey{es}, tok: esInput + "." + b64(negateS(esSig)), want: nil},
		rejectCase{name: "ES256 signature r + n", keys: []testKey{es}, tok: esInput + "." + b64(rPlusN(esSig)), want: token.ErrBadSignature},
		rejectCase{name: "ES256 signature with trailing zero bytes", keys: []testKey{es}, tok: esInput + "." + b64(append(append([]byte(nil), esSig...), 0, 0)), want: token.ErrBadSignature},
	)

	// RSA signatures whose padding is not exactly PKCS #1 v1.5 or PSS with a 32-byte salt.
	rs := ks.rs256
	rsInput := signingInput(header(rs).json(), claims().json())
	for name, em := range pkcs1Variants(rsInput) {
		add(rejectCase{name: "RS256 padding " + name, keys: []testKey{rs}, tok: rsInput + "." + b64(rawRSA(t, rs, em)), want: token.ErrBadSignature})
	}
	add(rejectCase{name: "RS256 padding exact (control for rawRSA)", keys: []testKey{rs}, tok: rsInput + "." + b64(rawRSA(t, rs, pkcs1Exact(rsInput)))})
	ps := ks.ps256
	psInput := signingInput(header(ps).json(), claims().json())
	for _, salt := range []int{0, 20, 64} {
		add(rejectCase{name: "PS256 salt of " + itoa(salt) + " bytes", keys: []testKey{ps}, tok: psInput + "." + b64(pssSign(t, ps, psInput, salt)), want: token.ErrBadSignature})
	}
	add(
		rejectCase{name: "RS256 signature one byte short", keys: []testKey{rs}, tok: rsInput + "." + b64(sign(t, rs, token.RS256, rsInput)[1:]), want: token.ErrBadSignature},
		rejectCase{name: "RS256 signature with a leading zero byte", keys: []testKey{rs}, tok: rsInput + "." + b64(append([]byte{0}, sign(t, rs, token.RS256, rsInput)...)), want: token.ErrBadSignature},
		rejectCase{name: "RS256 signature equal to the modulus", keys: []testKey{rs}, tok: rsInput + "." + b64(rs.public().(*rsa.PublicKey).N.Bytes()), want: token.ErrBadSignature},
	)

	// Non-canonical base64url: the token must be one exact string.
	add(
		rejectCase{name: "signature with non-zero unused bits", tok: nonCanonicalLast(t, valid), want: token.ErrMalformed},
		rejectCase{name: "padding in the signature", tok: valid + "==", want: token.ErrMalformed},
		rejectCase{name: "standard base64 in the header", tok: strings.Replace(valid, "-", "+", 1), want: token.ErrMalformed},
		rejectCase{name: "space in the token", tok: " " + valid, want: token.ErrMalformed},
		rejectCase{name: "newline in the token", tok: valid + "\n", want: token.ErrMalformed},
		rejectCase{name: "NUL in the token", tok: valid + "\x00", want: token.ErrMalformed},
		rejectCase{name: "non-ASCII in the token", tok: strings.Replace(valid, ".", ".é", 1), want: token.ErrMalformed},
		rejectCase{name: "percent-encoded dot", tok: strings.Replace(valid, ".", "%2E", 1), want: token.ErrMalformed},
	)

	// Key ids: no fallback, no path or query semantics.
	two2 := func(name, kid string, want error) rejectCase {
		return rejectCase{name: name, keys: two, tok: compact(t, ed, hdr.set("kid", kid).json(), claims().json()), want: want}
	}
	add(
		two2("kid unknown", "ed-3", token.ErrUnknownKey),
		two2("kid empty", "", token.ErrUnknownKey),
		two2("kid path traversal", "../../dev/null", token.ErrUnknownKey),
		two2("kid SQL injection", "' OR 1=1", token.ErrUnknownKey),
		two2("kid with NUL", "ed-1\x00", token.ErrUnknownKey),
		two2("kid with newline", "ed-1\n", token.ErrUnknownKey),
		two2("kid of another case", "ED-1", token.ErrUnknownKey),
		two2("kid 2 KB long", strings.Repeat("k", 2048), token.ErrUnknownKey),
		two2("kid 10 KB long", strings.Repeat("k", 10240), token.ErrMalformed),
		rejectCase{name: "kid missing with two keys", keys: two, tok: tok(hdr.del("kid"), claims()), want: token.ErrUnknownKey},
		rejectCase{name: "kid not a string", keys: two, tok: withHeader("kid", 1), want: token.ErrMalformed},
		rejectCase{name: "kid null", keys: two, tok: withHeader("kid", raw("null")), want: token.ErrMalformed},
		rejectCase{name: "kid of the other key, signed by this one", keys: two, tok: tok(hdr.set("kid", "ed-2"), claims()), want: token.ErrBadSignature},
		rejectCase{name: "kid of the second key", keys: two, tok: mint(t, ks.eddsa2, claims())},
		rejectCase{name: "kid unknown with one key", tok: withHeader("kid", "ed-3"), want: token.ErrUnknownKey},
		rejectCase{name: "kid missing with one key", tok: tok(hdr.del("kid"), claims())},
	)

	// The type header.
	add(
		rejectCase{name: "typ missing", tok: tok(hdr.del("typ"), claims()), want: token.ErrWrongType},
		rejectCase{name: "typ JWT", tok: withHeader("typ", "JWT"), want: token.ErrWrongType},
		rejectCase{name: "typ empty", tok: withHeader("typ", ""), want: token.ErrWrongType},
		rejectCase{name: "typ application/jwt", tok: withHeader("typ", "application/jwt"), want: token.ErrWrongType},
		rejectCase{name: "typ with trailing space", tok: withHeader("typ", token.Type+" "), want: token.ErrWrongType},
		rejectCase{name: "typ with a parameter", tok: withHeader("typ", token.Type+"; charset=utf-8"), want: token.ErrWrongType},
		rejectCase{name: "typ application/ twice", tok: withHeader("typ", "application/application/"+token.Type), want: token.ErrWrongType},
		rejectCase{name: "typ application/ alone", tok: withHeader("typ", "application/"), want: token.ErrWrongType},
		rejectCase{name: "typ of a session cookie", tok: withHeader("typ", "magic-link-session"), want: token.ErrWrongType},
		rejectCase{name: "typ not a string", tok: withHeader("typ", raw(`["magic-link+jwt"]`)), want: token.ErrMalformed},
		rejectCase{name: "typ upper case", tok: withHeader("typ", "MAGIC-LINK+JWT")},
		rejectCase{name: "typ with application/", tok: withHeader("typ", "application/magic-link+jwt")},
		rejectCase{name: "typ mixed case with application/", tok: withHeader("typ", "Application/Magic-Link+JWT")},
	)

	// Header parameters that change how a token is read are refused; key-carrying ones are ignored.
	add(
		rejectCase{name: "crit present", tok: withHeader("crit", []string{"exp"}), want: token.ErrMalformed},
		rejectCase{name: "crit empty", tok: withHeader("crit", []string{}), want: token.ErrMalformed},
		rejectCase{name: "b64 false", tok: b64FalseToken(t, ed, hdr.set("b64", false).set("crit", []string{"b64"})), want: token.ErrMalformed},
		rejectCase{name: "b64 false without crit", tok: b64FalseToken(t, ed, hdr.set("b64", false)), want: token.ErrMalformed},
		rejectCase{name: "b64 true", tok: withHeader("b64", true), want: token.ErrMalformed},
		rejectCase{name: "unknown header parameter", tok: withHeader("x-note", "ignored")},
	)

	// Only the compact serialization is accepted.
	parts := strings.Split(valid, ".")
	add(
		rejectCase{name: "JSON serialization, flattened", tok: obj("payload", parts[1], "protected", parts[0], "signature", parts[2]), want: token.ErrMalformed},
		rejectCase{name: "JSON serialization, general", tok: obj("payload", parts[1], "signatures", []any{map[string]string{"protected": parts[0], "signature": parts[2]}}), want: token.ErrMalformed},
		rejectCase{name: "empty string", tok: "", want: token.ErrMalformed},
		rejectCase{name: "two segments", tok: parts[0] + "." + parts[1], want: token.ErrMalformed},
		rejectCase{name: "four segments", tok: valid + ".", want: token.ErrMalformed},
		rejectCase{name: "five segments (JWE shape)", tok: valid + "." + parts[2], want: token.ErrMalformed},
		rejectCase{name: "empty header", tok: "." + parts[1] + "." + parts[2], want: token.ErrMalformed},
		rejectCase{name: "empty payload", tok: parts[0] + ".." + parts[2], want: token.ErrMalformed},
		rejectCase{name: "only dots", tok: "..", want: token.ErrMalformed},
		rejectCase{name: "header not JSON", tok: compact(t, ed, "eyJ", claims().json()), want: token.ErrMalformed},
		rejectCase{name: "header a JSON array", tok: compact(t, ed, `["alg","EdDSA"]`, claims().json()), want: token.ErrMalformed},
		rejectCase{name: "header a JSON string", tok: compact(t, ed, `"EdDSA"`, claims().json()), want: token.ErrMalformed},
		rejectCase{name: "header null", tok: compact(t, ed, `null`, claims().json()), want: token.ErrMalformed},
		rejectCase{name: "header with trailing data", tok: compact(t, ed, hdr.json()+"{}", claims().json()), want: token.ErrMalformed},
		rejectCase{name: "header with trailing garbage", tok: compact(t, ed, hdr.json()+"x", claims().json()), want: token.ErrMalformed},
		rejectCase{name: "header truncated", tok: compact(t, ed, strings.TrimSuffix(hdr.json(), "}"), claims().json()), want: token.ErrMalformed},
		rejectCase{name: "header with a BOM", tok: compact(t, ed, "\ufeff"+hdr.json(), claims().json()), want: token.ErrMalformed},
		rejectCase{name: "header with whitespace", tok: compact(t, ed, " \n"+hdr.json()+"\t", claims().json())},
	)

	// Duplicate members: no parser differential can pick another value.
	add(
		rejectCase{name: "two alg headers", tok: tok(hdr.add("alg", "none"), claims()), want: token.ErrMalformed},
		rejectCase{name: "two alg headers, same value", tok: tok(hdr.add("alg", token.EdDSA), claims()), want: token.ErrMalformed},
		rejectCase{name: "two kid headers", keys: two, tok: tok(hdr.add("kid", "ed-2"), claims()), want: token.ErrMalformed},
		rejectCase{name: "two typ headers", tok: tok(hdr.add("typ", "JWT"), claims()), want: token.ErrMalformed},
		rejectCase{name: "alg and an escaped alg", tok: compact(t, ed, strings.TrimSuffix(hdr.json(), "}")+`,"\u0061lg":"none"}`, claims().json()), want: token.ErrMalformed},
		rejectCase{name: "two sub claims", tok: tok(hdr, claims().add("sub", "admin")), want: token.ErrInvalidClaim},
		rejectCase{name: "two exp claims", tok: tok(hdr, claims().add("exp", unix(1000*time.Hour))), want: token.ErrInvalidClaim},
		rejectCase{name: "two aud claims", tok: tok(hdr, claims().add("aud", "https://evil.example")), want: token.ErrInvalidClaim},
		rejectCase{name: "sub and an escaped sub", tok: compact(t, ed, hdr.json(), strings.TrimSuffix(claims().json(), "}")+`,"\u0073ub":"admin"}`), want: token.ErrInvalidClaim},
		rejectCase{name: "sub and SUB", tok: tok(hdr, claims().add("SUB", "admin")), check: func(t *testing.T, c *token.Claims) {
			if c.Subject != "user-42" {
				t.Fatalf("sub = %q, want user-42: claim names must be case-sensitive", c.Subject)
			}
		}},
		rejectCase{name: "exp and Exp", tok: tok(hdr, claims().add("Exp", unix(-time.Hour))), check: func(t *testing.T, c *token.Claims) {
			if c.Expiry.Unix() != unix(time.Hour) {
				t.Fatalf("exp = %v, claim names must be case-sensitive", c.Expiry)
			}
		}},
	)

	// Payload shape.
	add(
		rejectCase{name: "payload not JSON", tok: compact(t, ed, hdr.json(), "foo"), want: token.ErrInvalidClaim},
		rejectCase{name: "payload a JSON array", tok: compact(t, ed, hdr.json(), `[{"sub":"user-42"}]`), want: token.ErrInvalidClaim},
		rejectCase{name: "payload with trailing data", tok: compact(t, ed, hdr.json(), claims().json()+`{"sub":"admin"}`), want: token.ErrInvalidClaim},
		rejectCase{name: "payload an empty object", tok: compact(t, ed, hdr.json(), `{}`), want: token.ErrInvalidClaim},
	)

	// Expiry.
	add(
		rejectCase{name: "exp missing", tok: withoutClaim("exp"), want: token.ErrInvalidClaim},
		rejectCase{name: "exp in the past", tok: tok(hdr, claims().set("iat", unix(-2*time.Hour)).set("exp", unix(-time.Hour))), want: token.ErrExpired},
		rejectCase{name: "exp exactly now, no leeway", cfg: zeroLeeway, tok: withClaim("exp", unix(0)), want: token.ErrExpired},
		rejectCase{name: "exp one second ahead, no leeway", cfg: zeroLeeway, tok: withClaim("exp", unix(time.Second))},
		rejectCase{name: "exp one second ago, no leeway", cfg: zeroLeeway, tok: withClaim("exp", unix(-time.Second)), want: token.ErrExpired},
		rejectCase{name: "exp 29 s ago, 30 s leeway", tok: withClaim("exp", unix(-29*time.Second))},
		rejectCase{name: "exp 30 s ago, 30 s leeway", tok: withClaim("exp", unix(-30*time.Second)), want: token.ErrExpired},
		rejectCase{name: "exp as a string", tok: withClaim("exp", strings.TrimSpace(itoa64(unix(time.Hour)))), want: token.ErrInvalidClaim},
		rejectCase{name: "exp as a quoted number", tok: withClaim("exp", raw(`"1800003600"`)), want: token.ErrInvalidClaim},
		rejectCase{name: "exp null", tok: withClaim("exp", raw("null")), want: token.ErrInvalidClaim},
		rejectCase{name: "exp true", tok: withClaim("exp", true), want: token.ErrInvalidClaim},
		rejectCase{name: "exp an array", tok: withClaim("exp", []int64{unix(time.Hour)}), want: token.ErrInvalidClaim},
		rejectCase{name: "exp 1e300", tok: withClaim("exp", raw("1e300")), want: token.ErrInvalidClaim},
		rejectCase{name: "exp 1e400 (overflows float64)", tok: withClaim("exp", raw("1e400")), want: token.ErrInvalidClaim},
		rejectCase{name: "exp 2^63", tok: withClaim("exp", raw("9223372036854775808")), want: token.ErrInvalidClaim},
		rejectCase{name: "exp negative", tok: withClaim("exp", -1), want: token.ErrInvalidClaim},
		rejectCase{name: "exp NaN", tok: withClaim("exp", raw("NaN")), want: token.ErrInvalidClaim},
		rejectCase{name: "exp not after iat", tok: withClaim("exp", unix(-time.Minute)), want: token.ErrInvalidClaim},
		rejectCase{name: "exp fractional", tok: withClaim("exp", raw(itoa64(unix(time.Hour))+".5")), check: func(t *testing.T, c *token.Claims) {
			if want := testNow.Add(time.Hour + 500*time.Millisecond); !c.Expiry.Equal(want) {
				t.Fatalf("exp = %v, want %v", c.Expiry, want)
			}
		}},
		rejectCase{name: "exp fractional, half a second ago, no leeway", cfg: zeroLeeway, tok: withClaim("exp", raw(itoa64(unix(-time.Second))+".5")), want: token.ErrExpired},
		rejectCase{name: "exp in exponent notation", tok: withClaim("exp", raw("1.8000036e9"))},
	)

	// Not-before and issued-at.
	add(
		rejectCase{name: "nbf 31 s ahead, 30 s leeway", tok: withClaim("nbf", unix(31*time.Second)), want: token.ErrNotYetValid},
		rejectCase{name: "nbf 30 s ahead, 30 s leeway", tok: withClaim("nbf", unix(30*time.Second))},
		rejectCase{name: "nbf 1 s ahead, no leeway", cfg: zeroLeeway, tok: withClaim("nbf", unix(time.Second)), want: token.ErrNotYetValid},
		rejectCase{name: "nbf now, no leeway", cfg: zeroLeeway, tok: withClaim("nbf", unix(0))},
		rejectCase{name: "nbf as a string", tok: withClaim("nbf", "0"), want: token.ErrInvalidClaim},
		rejectCase{name: "iat 31 s ahead, 30 s leeway", tok: withClaim("iat", unix(31*time.Second)), want: token.ErrInvalidClaim},
		rejectCase{name: "iat 30 s ahead, 30 s leeway", tok: withClaim("iat", unix(30*time.Second))},
		rejectCase{name: "iat a year ahead", tok: tok(hdr, claims().set("iat", unix(365*24*time.Hour)).set("exp", unix(366*24*time.Hour))), want: token.ErrInvalidClaim},
		rejectCase{name: "iat missing", tok: withoutClaim("iat"), want: token.ErrInvalidClaim},
		rejectCase{name: "iat as a string", tok: withClaim("iat", itoa64(unix(0))), want: token.ErrInvalidClaim},
		rejectCase{name: "lifetime over max_link_age", tok: tok(hdr, claims().set("iat", unix(-time.Minute)).set("exp", unix(-time.Minute+token.DefaultMaxLinkAge+time.Second))), want: token.ErrTooOld},
		rejectCase{name: "lifetime exactly max_link_age", tok: tok(hdr, claims().set("iat", unix(-time.Minute)).set("exp", unix(-time.Minute+token.DefaultMaxLinkAge)))},
		rejectCase{name: "lifetime over a configured max_link_age", cfg: func(c *token.Config) { c.MaxLinkAge = 30 * time.Minute }, tok: valid, want: token.ErrTooOld},
		rejectCase{name: "ancient iat with far exp", tok: tok(hdr, claims().set("iat", 1).set("exp", unix(time.Hour))), want: token.ErrTooOld},
	)

	// Audience and issuer.
	add(
		rejectCase{name: "aud missing", tok: withoutClaim("aud"), want: token.ErrInvalidClaim},
		rejectCase{name: "aud wrong", tok: withClaim("aud", "https://evil.example"), want: token.ErrWrongAudience},
		rejectCase{name: "aud of another case", tok: withClaim("aud", strings.ToUpper(testAudience)), want: token.ErrWrongAudience},
		rejectCase{name: "aud with a trailing slash", tok: withClaim("aud", testAudience+"/"), want: token.ErrWrongAudience},
		rejectCase{name: "aud with ours as a prefix", tok: withClaim("aud", testAudience+".evil.example"), want: token.ErrWrongAudience},
		rejectCase{name: "aud array without ours", tok: withClaim("aud", []string{"https://a.example", "https://b.example"}), want: token.ErrWrongAudience},
		rejectCase{name: "aud array with ours", tok: withClaim("aud", []string{"https://a.example", testAudience}), check: func(t *testing.T, c *token.Claims) {
			if len(c.Audience) != 2 || c.Audience[1] != testAudience {
				t.Fatalf("aud = %q", c.Audience)
			}
		}},
		rejectCase{name: "aud empty array", tok: withClaim("aud", []string{}), want: token.ErrInvalidClaim},
		rejectCase{name: "aud empty string", tok: withClaim("aud", ""), want: token.ErrInvalidClaim},
		rejectCase{name: "aud array of arrays", tok: withClaim("aud", [][]string{{testAudience}}), want: token.ErrInvalidClaim},
		rejectCase{name: "aud a number", tok: withClaim("aud", 1), want: token.ErrInvalidClaim},
		rejectCase{name: "aud an object", tok: withClaim("aud", map[string]string{"aud": testAudience}), want: token.ErrInvalidClaim},
		rejectCase{name: "iss wrong", cfg: withIssuer, tok: withClaim("iss", "https://evil.example"), want: token.ErrWrongIssuer},
		rejectCase{name: "iss missing", cfg: withIssuer, tok: valid, want: token.ErrWrongIssuer},
		rejectCase{name: "iss of another case", cfg: withIssuer, tok: withClaim("iss", strings.ToUpper(testIssuer)), want: token.ErrWrongIssuer},
		rejectCase{name: "iss an array", cfg: withIssuer, tok: withClaim("iss", []string{testIssuer}), want: token.ErrInvalidClaim},
		rejectCase{name: "iss right", cfg: withIssuer, tok: withClaim("iss", testIssuer)},
		rejectCase{name: "iss present, none configured", tok: withClaim("iss", "https://anyone.example")},
	)

	// Subject, id and the other strings.
	add(
		rejectCase{name: "sub with a newline", tok: withClaim("sub", "user-42\nadmin"), want: token.ErrInvalidClaim},
		rejectCase{name: "sub with a carriage return", tok: withClaim("sub", "user-42\r"), want: token.ErrInvalidClaim},
		rejectCase{name: "sub with NUL", tok: withClaim("sub", "user-42\x00"), want: token.ErrInvalidClaim},
		rejectCase{name: "sub with DEL", tok: withClaim("sub", "user-42\x7f"), want: token.ErrInvalidClaim},
		rejectCase{name: "sub with a C1 control", tok: withClaim("sub", "user-42\u0085"), want: token.ErrInvalidClaim},
		rejectCase{name: "sub empty", tok: withClaim("sub", ""), want: token.ErrInvalidClaim},
		rejectCase{name: "sub missing", tok: withoutClaim("sub"), want: token.ErrInvalidClaim},
		rejectCase{name: "sub not a string", tok: withClaim("sub", 42), want: token.ErrInvalidClaim},
		rejectCase{name: "sub 256 bytes", tok: withClaim("sub", strings.Repeat("u", 256)), want: token.ErrInvalidClaim},
		rejectCase{name: "sub 255 bytes", tok: withClaim("sub", strings.Repeat("u", 255))},
		rejectCase{name: "sub 128 two-byte runes (256 bytes)", tok: withClaim("sub", strings.Repeat("é", 128)), want: token.ErrInvalidClaim},
		rejectCase{name: "sub with non-ASCII letters", tok: withClaim("sub", "zoë-ß-用户")},
		rejectCase{name: "jti missing", tok: withoutClaim("jti"), want: token.ErrInvalidClaim},
		rejectCase{name: "jti empty", tok: withClaim("jti", ""), want: token.ErrInvalidClaim},
		rejectCase{name: "jti not a string", tok: withClaim("jti", 7), want: token.ErrInvalidClaim},
		rejectCase{name: "jti with a newline", tok: withClaim("jti", "a\nb"), want: token.ErrInvalidClaim},
		rejectCase{name: "email with a newline", tok: withClaim("email", "ada@example.com\r\nX-Admin: 1"), want: token.ErrInvalidClaim},
		rejectCase{name: "name with a newline", tok: withClaim("name", "Ada\nLovelace"), want: token.ErrInvalidClaim},
		rejectCase{name: "name 256 bytes", tok: withClaim("name", strings.Repeat("n", 256)), want: token.ErrInvalidClaim},
	)

	// Path scopes must be clean absolute paths.
	for _, p := range []string{"survey/42", "/survey/../admin", "/survey/./42", "/..", "/.", "//evil.example", "/survey//42", `/survey\42`, "/survey%2F42", "/survey?x=1", "/survey#x", "/survey/42\n"} {
		add(rejectCase{name: "path " + strconvQuote(p), tok: withClaim("path", p), want: token.ErrInvalidClaim})
	}
	for _, p := range []string{"/", "/survey/42", "/survey/42/", "/s/ü"} {
		add(rejectCase{name: "path " + strconvQuote(p), tok: withClaim("path", p), check: func(t *testing.T, c *token.Claims) {
			if c.Path != p {
				t.Fatalf("path = %q, want %q", c.Path, p)
			}
		}})
	}
	add(rejectCase{name: "path not a string", tok: withClaim("path", []string{"/a"}), want: token.ErrInvalidClaim})

	// Keys carried by the token are never used.
	att := ks.attacker
	attSecret := []byte("attacker-chosen-secret-of-32-bytes!")
	attMac := att
	attMac.secret = attSecret
	add(
		rejectCase{name: "embedded jwk of the attacker's key", tok: compact(t, att, hdr.set("jwk", att.withKID("").publicJWK()).json(), claims().json()), want: token.ErrBadSignature},
		rejectCase{name: "embedded jwk of the attacker's key, no kid", tok: compact(t, att, hdr.del("kid").set("jwk", att.publicJWK()).json(), claims().json()), want: token.ErrBadSignature},
		rejectCase{name: "embedded symmetric jwk", tok: compactAs(t, attMac, token.HS256, hdr.set("alg", token.HS256).set("jwk", map[string]string{"kty": "oct", "k": b64(attSecret)}).json(), claims().json()), want: token.ErrWrongAlgorithm},
		rejectCase{name: "embedded x5c of the attacker's certificate", tok: compact(t, att, hdr.set("x5c", []string{base64.StdEncoding.EncodeToString(selfSigned(t, att))}).json(), claims().json()), want: token.ErrBadSignature},
	)

	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			runCase(t, ks, c)
		})
	}
}

func runCase(t *testing.T, ks testKeySet, c rejectCase) {
	t.Helper()
	cfg := baseConfig()
	if c.cfg != nil {
		c.cfg(&cfg)
	}
	keys := c.keys
	if keys == nil {
		keys = []testKey{ks.eddsa}
	}
	v := newVerifier(t, cfg, keys...)
	h, claims, err := v.Verify(c.tok)
	checkReason(t, err, c.want)
	if err != nil {
		if claims != nil {
			t.Errorf("rejected token returned claims %+v", *claims)
		}
		var secrets [][]byte
		for _, k := range keys {
			secrets = append(secrets, k.secret)
		}
		checkNoLeak(t, err.Error(), c.tok, secrets...)
		if len(h.KeyID) > token.MaxLength {
			t.Errorf("header kid of %d bytes returned", len(h.KeyID))
		}
		return
	}
	if claims == nil || claims.Subject == "" || claims.ID == "" {
		t.Fatalf("accepted with claims %+v", claims)
	}
	if c.check != nil {
		c.check(t, claims)
	}
}

func TestVerifyReturnsHeaderOnRejection(t *testing.T) {
	ks := keySet(t)
	v := newVerifier(t, baseConfig(), ks.eddsa, ks.eddsa2)
	tok := compact(t, ks.eddsa, header(ks.eddsa).set("kid", "ed-9").json(), claims().json())
	h, _, err := v.Verify(tok)
	checkReason(t, err, token.ErrUnknownKey)
	if h.KeyID != "ed-9" || h.Algorithm != token.EdDSA {
		t.Errorf("header = %+v, want kid ed-9 and alg EdDSA for the log", h)
	}
	tok = compact(t, ks.eddsa, header(ks.eddsa).set("alg", "none").json(), claims().json())
	h, _, err = v.Verify(tok)
	checkReason(t, err, token.ErrWrongAlgorithm)
	if h.Algorithm != "none" {
		t.Errorf("header = %+v, want alg none for the log", h)
	}
}

// TestVerifyNeverFetchesKeys serves the attacker's key set and certificate over HTTP and checks
// that tokens pointing there by jku and x5u make no request and are rejected.
func TestVerifyNeverFetchesKeys(t *testing.T) {
	ks := keySet(t)
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.Header().Set("Content-Type", "application/json")
		w.Write(jwksOf(t, ks.attacker))
	}))
	defer srv.Close()
	v := newVerifier(t, baseConfig(), ks.eddsa)
	hdr := header(ks.attacker)
	for name, h := range map[string]fields{
		"jku":         hdr.set("jku", srv.URL+"/jwks.json"),
		"x5u":         hdr.set("x5u", srv.URL+"/cert.pem"),
		"jku, no kid": hdr.del("kid").set("jku", srv.URL+"/jwks.json"),
	} {
		t.Run(name, func(t *testing.T) {
			_, _, err := v.Verify(compact(t, ks.attacker, h.json(), claims().json()))
			checkReason(t, err, token.ErrBadSignature)
		})
	}
	if n := hits.Load(); n != 0 {
		t.Fatalf("the verifier made %d requests to a URL named by a token", n)
	}
}

// TestVerifyRejectsOversizeCheaply checks that garbage is refused before anything is decoded.
func TestVerifyRejectsOversizeCheaply(t *testing.T) {
	ks := keySet(t)
	v := newVerifier(t, baseConfig(), ks.eddsa)
	valid := mint(t, ks.eddsa, claims())
	for _, c := range []struct {
		name string
		tok  string
	}{
		{"1 MB", "eyJ" + strings.Repeat("A", 1<<20)},
		{"1 MB valid prefix", valid + strings.Repeat("A", 1<<20)},
		{"100,000 dots", strings.Repeat(".", 100_000)},
		{"4096 dots", strings.Repeat(".", token.MaxLength)},
		{"4096 bytes of %", strings.Repeat("%", token.MaxLength)},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, _, err := v.Verify(c.tok)
			checkReason(t, err, token.ErrMalformed)
			allocs := testing.AllocsPerRun(20, func() { v.Verify(c.tok) })
			if allocs > 3 {
				t.Fatalf("rejecting it allocates %v times, want at most 3", allocs)
			}
		})
	}
}

// TestVerifyLengthBoundary checks that MaxLength is inclusive and exact.
func TestVerifyLengthBoundary(t *testing.T) {
	ks := keySet(t)
	v := newVerifier(t, baseConfig(), ks.eddsa)
	byLen := map[int]string{}
	for n := 2500; n < 3200 && (byLen[token.MaxLength] == "" || byLen[token.MaxLength+1] == ""); n++ {
		for _, pad := range []string{"", "x"} {
			tok := compact(t, ks.eddsa, header(ks.eddsa).set("x", pad).json(), claims().set("pad", strings.Repeat("p", n)).json())
			byLen[len(tok)] = tok
		}
	}
	for _, c := range []struct {
		n    int
		want error
	}{{token.MaxLength, nil}, {token.MaxLength + 1, token.ErrMalformed}} {
		tok, ok := byLen[c.n]
		if !ok {
			t.Fatalf("could not craft a token of %d bytes", c.n)
		}
		_, _, err := v.Verify(tok)
		checkReason(t, err, c.want)
	}
}

func TestParseKeysRejects(t *testing.T) {
	ks := keySet(t)
	short := ks.hs256
	short.secret = short.secret[:31]
	jwk := func(k testKey, set ...any) []byte {
		m := k.publicJWK()
		for i := 0; i+1 < len(set); i += 2 {
			if set[i+1] == nil {
				delete(m, set[i].(string))
				continue
			}
			m[set[i].(string)] = set[i+1]
		}
		return mustJSON(t, m)
	}
	for _, c := range []struct {
		name string
		data []byte
	}{
		{"RSA 1024 JWK", jwk(ks.rsa1024)},
		{"RSA 1024 PEM", ks.rsa1024.publicPEM(t)},
		{"HS256 secret of 31 bytes", jwk(short)},
		{"HS256 secret empty", jwk(ks.hs256, "k", "")},
		{"duplicate kid", jwksOf(t, ks.eddsa, ks.eddsa2.withKID("ed-1"))},
		{"use enc", jwk(ks.es256, "use", "enc")},
		{"key_ops encrypt only", jwk(ks.rs256, "key_ops", []string{"encrypt"})},
		{"unknown kty", jwk(ks.eddsa, "kty", "XYZ")},
		{"P-384 curve", jwk(ks.p384, "alg", nil)},
		{"P-384 PEM", ks.p384.publicPEM(t)},
		{"X25519 curve", jwk(ks.eddsa, "crv", "X25519")},
		{"mixed secret and public keys", jwksOf(t, ks.hs256, ks.eddsa)},
		{"alg none", jwk(ks.eddsa, "alg", "none")},
		{"alg HS256 on an RSA key", jwk(ks.rs256, "alg", token.HS256)},
		{"alg RS256 on an EC key", jwk(ks.es256, "alg", token.RS256)},
		{"alg EdDSA on an HS256 secret", jwk(ks.hs256, "alg", token.EdDSA)},
		{"alg RS384", jwk(ks.rs256, "alg", "RS384")},
		{"alg ES256 on a P-384 key", jwk(ks.p384, "alg", token.ES256)},
		{"EC point not on the curve", jwk(ks.es256, "y", b64(make([]byte, 32)))},
		{"empty key set", []byte(`{"keys":[]}`)},
		{"empty input", nil},
		{"not JSON", []byte("{not json")},
		{"a certificate", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: selfSigned(t, ks.eddsa)})},
		{"PEM garbage", []byte("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n")},
	} {
		t.Run(c.name, func(t *testing.T) {
			keys, err := token.ParseKeys(c.data)
			if err == nil {
				t.Fatalf("ParseKeys accepted it: %+v", keys)
			}
			checkNoLeak(t, err.Error(), "", ks.hs256.secret, short.secret)
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("error %q is not one line", err)
			}
		})
	}
}

func TestParseKeysAcceptsPrivateKeysAsPublic(t *testing.T) {
	ks := keySet(t)
	for _, k := range []testKey{ks.eddsa, ks.es256, ks.ps256, ks.rs256} {
		t.Run(k.alg, func(t *testing.T) {
			keys, err := token.ParseKeys(mustJSON(t, k.privateJWK()))
			if err != nil {
				t.Fatal(err)
			}
			if len(keys) != 1 || !keys[0].FromPrivate() || keys[0].Algorithm() != k.alg || keys[0].ID() != k.kid {
				t.Fatalf("keys = %+v, want one %s key %s marked FromPrivate", keys, k.alg, k.kid)
			}
			v, err := token.NewVerifier(keys, baseConfig())
			if err != nil {
				t.Fatal(err)
			}
			if _, _, err := v.Verify(mint(t, k, claims())); err != nil {
				t.Fatalf("token rejected by the key's public half: %v", err)
			}
		})
	}
}

func TestNewVerifierRejectsBadConfig(t *testing.T) {
	ks := keySet(t)
	keys := parsedKeys(t, ks.eddsa)
	for _, c := range []struct {
		name string
		keys []token.Key
		cfg  token.Config
	}{
		{"no keys", nil, baseConfig()},
		{"no audience", keys, token.Config{Leeway: token.DefaultLeeway}},
		{"negative leeway", keys, token.Config{Audience: testAudience, Leeway: -time.Second}},
		{"negative max link age", keys, token.Config{Audience: testAudience, MaxLinkAge: -time.Second}},
		{"a zero Key", []token.Key{{}}, baseConfig()},
		{"duplicate kid across key sets", append(parsedKeys(t, ks.eddsa), parsedKeys(t, ks.eddsa2.withKID("ed-1"))...), baseConfig()},
	} {
		t.Run(c.name, func(t *testing.T) {
			if _, err := token.NewVerifier(c.keys, c.cfg); err == nil {
				t.Fatal("NewVerifier accepted it")
			}
		})
	}
}

// must3 returns the decoded signature of tok.
func must3(t testing.TB, tok string) []byte {
	t.Helper()
	_, _, sig := segments(t, tok)
	return sig
}

// flipSigBit flips the low bit of byte at of tok's signature.
func flipSigBit(t testing.TB, tok string, at int) string {
	t.Helper()
	parts := strings.Split(tok, ".")
	sig := must3(t, tok)
	sig[at] ^= 1
	return parts[0] + "." + parts[1] + "." + b64(sig)
}

// nonCanonicalLast sets the unused low bits of the signature's last base64url character, which
// decoders that are not strict ignore.
func nonCanonicalLast(t testing.TB, tok string) string {
	t.Helper()
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	last := strings.IndexByte(alphabet, tok[len(tok)-1])
	// An Ed25519 signature is 64 bytes: 86 characters, the last holding 2 bits and 4 unused.
	if len(must3(t, tok)) != 64 {
		t.Fatal("nonCanonicalLast needs an Ed25519 token")
	}
	return tok[:len(tok)-1] + string(alphabet[last|1])
}

// b64FalseToken signs a token with an unencoded payload (RFC 7797) under header h.
func b64FalseToken(t testing.TB, k testKey, h fields) string {
	t.Helper()
	payload := claims().json()
	hb := b64([]byte(h.json()))
	sig := sign(t, k, k.alg, hb+"."+payload)
	return hb + "." + b64([]byte(payload)) + "." + b64(sig)
}

// derSignature encodes a 64-byte r||s ECDSA signature as ASN.1 DER.
func derSignature(sig []byte) []byte {
	der, err := asn1.Marshal(struct{ R, S *big.Int }{new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])})
	if err != nil {
		panic(err)
	}
	return der
}

// negateS returns the other valid ECDSA signature (r, n - s).
func negateS(sig []byte) []byte {
	n := elliptic.P256().Params().N
	s := new(big.Int).Sub(n, new(big.Int).SetBytes(sig[32:]))
	return append(append([]byte(nil), sig[:32]...), s.FillBytes(make([]byte, 32))...)
}

// rPlusN returns (r + n, s) in 64 bytes when it fits, else (r, s + n): out-of-range scalars.
func rPlusN(sig []byte) []byte {
	n := elliptic.P256().Params().N
	r := new(big.Int).Add(new(big.Int).SetBytes(sig[:32]), n)
	if r.BitLen() > 256 {
		s := new(big.Int).Add(new(big.Int).SetBytes(sig[32:]), n)
		if s.BitLen() > 256 {
			return make([]byte, 64)
		}
		return append(append([]byte(nil), sig[:32]...), s.FillBytes(make([]byte, 32))...)
	}
	return append(r.FillBytes(make([]byte, 32)), sig[32:]...)
}

// sha256DigestInfo is the DER prefix of a SHA-256 DigestInfo (RFC 8017 §9.2).
var sha256DigestInfo = []byte{0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00, 0x04, 0x20}

// pkcs1Variants are encoded messages for a 2048-bit modulus that a strict PKCS #1 v1.5 verifier
// refuses, after Wycheproof's rs256 vectors.
func pkcs1Variants(input string) map[string][]byte {
	digest := sha256.Sum256([]byte(input))
	em := func(prefix, digestInfo, hash []byte, fill byte, sep byte) []byte {
		t := append(append([]byte(nil), digestInfo...), hash...)
		out := append([]byte(nil), prefix...)
		for len(out) < 256-len(t)-1 {
			out = append(out, fill)
		}
		out = append(out, sep)
		return append(out, t...)[:256]
	}
	noNull := []byte{0x30, 0x2f, 0x30, 0x0b, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x04, 0x20}
	sha1OID := append([]byte(nil), sha256DigestInfo...)
	sha1OID[14] = 0x02
	return map[string][]byte{
		"block type 1 replaced by 2":   em([]byte{0, 2}, sha256DigestInfo, digest[:], 0xff, 0),
		"padding bytes 0xfe":           em([]byte{0, 1}, sha256DigestInfo, digest[:], 0xfe, 0),
		"separator 0x01":               em([]byte{0, 1}, sha256DigestInfo, digest[:], 0xff, 1),
		"DigestInfo without NULL":      em([]byte{0, 1}, noNull, digest[:], 0xff, 0),
		"DigestInfo naming SHA-384":    em([]byte{0, 1}, sha1OID, digest[:], 0xff, 0),
		"bare hash without DigestInfo": em([]byte{0, 1}, nil, digest[:], 0xff, 0),
		"leading byte 0x01":            em([]byte{1, 1}, sha256DigestInfo, digest[:], 0xff, 0),
	}
}

// pkcs1Exact is the correct PKCS #1 v1.5 encoded message of input for a 2048-bit modulus.
func pkcs1Exact(input string) []byte {
	digest := sha256.Sum256([]byte(input))
	em := []byte{0, 1}
	for len(em) < 256-len(sha256DigestInfo)-len(digest)-1 {
		em = append(em, 0xff)
	}
	em = append(em, 0)
	em = append(em, sha256DigestInfo...)
	return append(em, digest[:]...)
}

// rawRSA is the RSA private-key operation on em: a signature of any encoded message.
func rawRSA(t testing.TB, k testKey, em []byte) []byte {
	t.Helper()
	priv := k.signer.(*rsa.PrivateKey)
	m := new(big.Int).SetBytes(em)
	if m.Cmp(priv.N) >= 0 {
		t.Fatal("rawRSA: message not below the modulus")
	}
	return new(big.Int).Exp(m, priv.D, priv.N).FillBytes(make([]byte, priv.Size()))
}

// pssSign signs input with RSASSA-PSS and a salt of saltLen bytes.
func pssSign(t testing.TB, k testKey, input string, saltLen int) []byte {
	t.Helper()
	digest := sha256.Sum256([]byte(input))
	sig, err := rsa.SignPSS(rand.Reader, k.signer.(*rsa.PrivateKey), crypto.SHA256, digest[:], &rsa.PSSOptions{SaltLength: saltLen})
	if err != nil {
		t.Fatal(err)
	}
	return sig
}

// selfSigned is a self-signed certificate for k, DER.
func selfSigned(t testing.TB, k testKey) []byte {
	t.Helper()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "attacker"},
		NotBefore:    testNow.Add(-time.Hour),
		NotAfter:     testNow.Add(time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, k.public(), k.signer)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

func itoa(i int) string { return itoa64(int64(i)) }

func itoa64(i int64) string { return string(mustMarshal(i)) }

func strconvQuote(s string) string { return string(mustMarshal(s)) }

func mustMarshal(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

// TestRejectedLink checks which rejections name the link: those after the signature verified, and
// no other.
func TestRejectedLink(t *testing.T) {
	k := keySet(t).eddsa
	v := newVerifier(t, baseConfig(), k)
	valid := mint(t, k, claims())
	tests := []struct {
		name   string
		tok    string
		signed bool
	}{
		{"expired", mint(t, k, claims().set("exp", unix(-time.Hour))), true},
		{"not yet valid", mint(t, k, claims().add("nbf", unix(time.Hour))), true},
		{"wrong audience", mint(t, k, claims().set("aud", "https://other.example")), true},
		{"too old", mint(t, k, claims().set("exp", unix(-time.Minute+token.DefaultMaxLinkAge+time.Second))), true},
		{"bad path claim", mint(t, k, claims().add("path", "/a/../b")), true},
		{"bad signature", flipSigBit(t, valid, 3), false},
		{"malformed", "a.b", false},
		{"wrong type", compact(t, k, header(k).set("typ", "JWT").json(), claims().json()), false},
	}
	for _, tt := range tests {
		_, c, err := v.Verify(tt.tok)
		if err == nil || c != nil {
			t.Fatalf("%s: Verify = %v, %v; want a rejection without claims", tt.name, c, err)
		}
		id, sub, ok := token.RejectedLink(err)
		if ok != tt.signed {
			t.Errorf("%s: RejectedLink ok = %v, want %v", tt.name, ok, tt.signed)
		}
		if tt.signed && (id != "bGluay1pZC0wMDAx" || sub != "user-42") {
			t.Errorf("%s: RejectedLink = %q, %q; want the token's jti and sub", tt.name, id, sub)
		}
		if !tt.signed && (id != "" || sub != "") {
			t.Errorf("%s: RejectedLink named %q, %q for a token it cannot trust", tt.name, id, sub)
		}
	}
	if _, _, ok := token.RejectedLink(errors.New("other")); ok {
		t.Error("RejectedLink of a foreign error is ok")
	}
}

// TestZeroMaxLinkAgeIsNoLimit checks the documented meaning of a zero Config field.
func TestZeroMaxLinkAgeIsNoLimit(t *testing.T) {
	k := keySet(t).eddsa
	cfg := baseConfig()
	cfg.MaxLinkAge = 0
	tok := mint(t, k, claims().set("iat", unix(-365*24*time.Hour)))
	if _, _, err := newVerifier(t, cfg, k).Verify(tok); err != nil {
		t.Errorf("a zero MaxLinkAge limited a year-long link: %v", err)
	}
	if _, _, err := newVerifier(t, baseConfig(), k).Verify(tok); !errors.Is(err, token.ErrTooOld) {
		t.Errorf("MaxLinkAge of 720h accepted a year-long link: %v", err)
	}
}
