package token

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// A Signer mints link tokens with one private key or HS256 secret. It is
// safe for concurrent use.
type Signer struct {
	alg    string
	kid    string
	key    any    // ed25519.PrivateKey, *ecdsa.PrivateKey, *rsa.PrivateKey or []byte
	header []byte // the encoded protected header, the same for every token
	now    func() time.Time
}

// LoadSigner reads a Signer's key from a file holding a private JWK, a JWKS
// with exactly one private key, or a PEM private key.
func LoadSigner(path string) (*Signer, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading key file: %w", err)
	}
	s, err := ParseSigner(data)
	if err != nil {
		return nil, fmt.Errorf("key file %s: %w", path, err)
	}
	return s, nil
}

// ParseSigner parses a Signer's key from a private JWK, a JWKS with exactly
// one private key, or a PEM private key. The key id is the JWK's "kid", or
// else the key's RFC 7638 thumbprint.
func ParseSigner(data []byte) (*Signer, error) {
	keys, err := parseKeyData(data)
	if err != nil {
		return nil, err
	}
	if len(keys) != 1 {
		return nil, fmt.Errorf("holds %d keys; a signing key file must hold exactly one", len(keys))
	}
	k := &keys[0]
	alg, err := pin(k)
	if err != nil {
		return nil, err
	}
	switch k.Key.(type) {
	case ed25519.PrivateKey, *ecdsa.PrivateKey, *rsa.PrivateKey, []byte:
	default:
		return nil, errors.New("holds a public key; signing needs the private key")
	}
	header, err := json.Marshal(Header{Algorithm: alg, KeyID: k.KeyID, Type: Type})
	if err != nil {
		return nil, err
	}
	return &Signer{
		alg:    alg,
		kid:    k.KeyID,
		key:    k.Key,
		header: base64.RawURLEncoding.AppendEncode(nil, header),
		now:    time.Now,
	}, nil
}

// KeyID returns the "kid" of the signer's tokens.
func (s *Signer) KeyID() string { return s.kid }

// Algorithm returns the "alg" of the signer's tokens.
func (s *Signer) Algorithm() string { return s.alg }

// Sign mints a token for c. c.Expiry is required; an empty c.ID is
// replaced by a fresh [NewID] and a zero c.IssuedAt by the current time
// (set them first to know them). The claims must pass the checks a Verifier
// makes of their shape, including the path rule.
func (s *Signer) Sign(c Claims) (string, error) {
	b, err := s.AppendSign(nil, &c)
	return string(b), err
}

var payloadPool = sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}

// AppendSign is like Sign but appends the token to dst. It does not modify
// *c. On error it returns dst unchanged.
func (s *Signer) AppendSign(dst []byte, c *Claims) ([]byte, error) {
	claims := *c
	if claims.ID == "" {
		claims.ID = NewID()
	}
	if claims.IssuedAt.IsZero() {
		claims.IssuedAt = s.now()
	}
	if err := claims.checkShape(); err != nil {
		return dst, err
	}
	buf := payloadPool.Get().(*[]byte)
	defer payloadPool.Put(buf)
	*buf = claims.appendJSON((*buf)[:0])

	start := len(dst)
	dst = append(dst, s.header...)
	dst = append(dst, '.')
	dst = base64.RawURLEncoding.AppendEncode(dst, *buf)
	sig, err := s.signature(dst[start:])
	if err != nil {
		return dst[:start], err
	}
	dst = append(dst, '.')
	return base64.RawURLEncoding.AppendEncode(dst, sig), nil
}

// NewID returns a fresh link id ("jti"): 96 random bits, base64url.
func NewID() string {
	var id [12]byte
	rand.Read(id[:])
	return base64.RawURLEncoding.EncodeToString(id[:])
}

// signature signs the JWS signing input with the signer's algorithm.
func (s *Signer) signature(input []byte) ([]byte, error) {
	if k, ok := s.key.(ed25519.PrivateKey); ok {
		return ed25519.Sign(k, input), nil
	}
	digest := sha256.Sum256(input)
	switch k := s.key.(type) {
	case *ecdsa.PrivateKey:
		r, sv, err := ecdsa.Sign(rand.Reader, k, digest[:])
		if err != nil {
			return nil, err
		}
		sig := make([]byte, 64)
		r.FillBytes(sig[:32])
		sv.FillBytes(sig[32:])
		return sig, nil
	case *rsa.PrivateKey:
		if s.alg == PS256 {
			return rsa.SignPSS(rand.Reader, k, crypto.SHA256, digest[:], &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash})
		}
		return rsa.SignPKCS1v15(nil, k, crypto.SHA256, digest[:])
	case []byte:
		mac := hmac.New(sha256.New, k)
		mac.Write(input)
		return mac.Sum(nil), nil
	}
	return nil, errors.New("unsupported key")
}

// GenerateKey makes a new signing key for alg ("" means EdDSA) with key id
// kid ("" means the RFC 7638 SHA-256 thumbprint). It returns the private
// JWK, for the Signer, and the JWKS for verifiers: the public key, or for
// HS256 the secret itself.
func GenerateKey(alg, kid string) (privateJWK, publicJWKS []byte, err error) {
	var key, public any
	switch alg {
	case "", EdDSA:
		alg = EdDSA
		pub, priv, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			return nil, nil, err
		}
		key, public = priv, pub
	case ES256:
		priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return nil, nil, err
		}
		key, public = priv, &priv.PublicKey
	case RS256, PS256:
		priv, err := rsa.GenerateKey(rand.Reader, 3072)
		if err != nil {
			return nil, nil, err
		}
		key, public = priv, &priv.PublicKey
	case HS256:
		secret := make([]byte, 32)
		rand.Read(secret)
		key, public = secret, secret
	default:
		return nil, nil, fmt.Errorf("unsupported algorithm %q; use EdDSA, ES256, PS256, RS256 or HS256", alg)
	}
	if kid == "" {
		if kid, err = thumbprint(public); err != nil {
			return nil, nil, err
		}
	}
	if privateJWK, err = json.MarshalIndent(jose.JSONWebKey{Key: key, KeyID: kid, Algorithm: alg, Use: "sig"}, "", "  "); err != nil {
		return nil, nil, err
	}
	set := jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: public, KeyID: kid, Algorithm: alg, Use: "sig"}}}
	if publicJWKS, err = json.MarshalIndent(set, "", "  "); err != nil {
		return nil, nil, err
	}
	return append(privateJWK, '\n'), append(publicJWKS, '\n'), nil
}
