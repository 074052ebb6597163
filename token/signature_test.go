package token

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"testing"
)

// TestVerifySignatureMaterial checks that verifySignature refuses, without panicking, key
// material that does not fit the algorithm and algorithms it does not know, even with a
// signature the material made.
func TestVerifySignatureMaterial(t *testing.T) {
	const input = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ1In0"
	secret := []byte("a secret of thirty-two bytes, ok")
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte(input))
	macSig := mac.Sum(nil)
	edPub, edPriv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	edSig := ed25519.Sign(edPriv, []byte(input))
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	rsaPub := &rsa.PublicKey{N: ec.X, E: 65537}

	for _, c := range []struct {
		name     string
		alg      string
		material any
		sig      []byte
		want     bool
	}{
		{"HS256 with its secret", HS256, secret, macSig, true},
		{"EdDSA with its key", EdDSA, edPub, edSig, true},
		{"HS256 with an Ed25519 key", HS256, edPub, macSig, false},
		{"EdDSA with a secret", EdDSA, []byte(edPub), edSig, false},
		{"ES256 with an Ed25519 key", ES256, edPub, edSig, false},
		{"RS256 with a secret", RS256, secret, macSig, false},
		{"PS256 with a P-256 key", PS256, &ec.PublicKey, edSig, false},
		{"ES256 with an RSA key", ES256, rsaPub, edSig, false},
		{"HS384 with a secret", "HS384", secret, macSig, false},
		{"none with a secret", "none", secret, nil, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := verifySignature(c.alg, c.material, input, c.sig); got != c.want {
				t.Fatalf("verifySignature = %v, want %v", got, c.want)
			}
		})
	}
}
