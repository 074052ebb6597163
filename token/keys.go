package token

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"

	jose "github.com/go-jose/go-jose/v4"
)

// A Key is one verification key, a public key or an HS256 secret, pinned to
// one algorithm. Keys are made by LoadKeys and ParseKeys.
type Key struct {
	id          string
	alg         string
	source      string
	fromPrivate bool
	material    any // ed25519.PublicKey, *ecdsa.PublicKey, *rsa.PublicKey or []byte
}

// ID returns the key id ("kid"). A key without one in its file gets its
// RFC 7638 thumbprint (SHA-256, base64url), as the Signer does.
func (k Key) ID() string { return k.id }

// Algorithm returns the only "alg" a token signed with this key may carry.
func (k Key) Algorithm() string { return k.alg }

// Source returns the file the key was loaded from by LoadKeys, for
// messages; it is empty for keys from ParseKeys.
func (k Key) Source() string { return k.source }

// FromPrivate reports that the key's source held a private key, of which
// only the public half was kept. Callers should warn: a private key does not
// belong where tokens are only verified.
func (k Key) FromPrivate() bool { return k.fromPrivate }

// minRSABits and minSecretBytes are the weakest keys accepted.
const (
	minRSABits     = 2048
	minSecretBytes = 32
)

// LoadKeys reads verification keys from files holding a JWK, a JWKS or PEM
// blocks. Errors name the file and the problem: RSA keys under 2048 bits,
// HS256 secrets under 32 bytes, duplicate key ids (across all the files),
// keys marked "use": "enc", unknown key types or curves, and a JWKS that
// mixes secrets with public keys are refused.
func LoadKeys(paths ...string) ([]Key, error) {
	if len(paths) == 0 {
		return nil, errors.New("no key files given")
	}
	var all []Key
	for _, path := range paths {
		data, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("reading key file: %w", err)
		}
		keys, err := ParseKeys(data)
		if err != nil {
			return nil, fmt.Errorf("key file %s: %w", path, err)
		}
		for i := range keys {
			keys[i].source = path
			for _, k := range all {
				if k.id == keys[i].id {
					return nil, fmt.Errorf("key file %s: key id %q is also used in %s; key ids must be unique", path, k.id, k.source)
				}
			}
			all = append(all, keys[i])
		}
	}
	return all, nil
}

// ParseKeys parses verification keys from a JWK, a JWKS or PEM blocks, with
// the rules of LoadKeys.
func ParseKeys(data []byte) ([]Key, error) {
	jwks, err := parseKeyData(data)
	if err != nil {
		return nil, err
	}
	keys := make([]Key, 0, len(jwks))
	secrets := 0
	for i := range jwks {
		alg, err := pin(&jwks[i])
		if err != nil {
			return nil, err
		}
		k := Key{id: jwks[i].KeyID, alg: alg}
		switch m := jwks[i].Key.(type) {
		case []byte:
			secrets++
			k.material = m
		case ed25519.PrivateKey:
			k.material, k.fromPrivate = m.Public(), true
		case *ecdsa.PrivateKey:
			k.material, k.fromPrivate = &m.PublicKey, true
		case *rsa.PrivateKey:
			k.material, k.fromPrivate = &m.PublicKey, true
		default:
			k.material = m
		}
		for _, prev := range keys {
			if prev.id == k.id {
				return nil, fmt.Errorf("key id %q is used twice; key ids must be unique", k.id)
			}
		}
		keys = append(keys, k)
	}
	if secrets > 0 && secrets < len(keys) {
		return nil, errors.New("the key set mixes HS256 secrets with public keys; keep them in separate files")
	}
	return keys, nil
}

// parseKeyData parses a JWK, a JWKS or PEM blocks into JWKs whose KeyID is
// set (to the thumbprint when the source has none).
func parseKeyData(data []byte) ([]jose.JSONWebKey, error) {
	trimmed := bytes.TrimSpace(data)
	var keys []jose.JSONWebKey
	switch {
	case len(trimmed) == 0:
		return nil, errors.New("the file is empty; it must hold a JWK, a JWKS or a PEM key")
	case bytes.HasPrefix(trimmed, []byte("-----BEGIN")):
		var err error
		if keys, err = parsePEM(trimmed); err != nil {
			return nil, err
		}
	case trimmed[0] == '{':
		var probe struct {
			Keys []json.RawMessage `json:"keys"`
		}
		if err := json.Unmarshal(trimmed, &probe); err != nil {
			return nil, fmt.Errorf("not a JWK or a JWKS: %v", err)
		}
		raws := probe.Keys
		if probe.Keys == nil {
			raws = []json.RawMessage{trimmed}
		} else if len(raws) == 0 {
			return nil, errors.New("the JWKS holds no keys")
		}
		for _, raw := range raws {
			k, err := parseJWK(raw)
			if err != nil {
				return nil, err
			}
			keys = append(keys, k)
		}
	default:
		return nil, errors.New("not a JWK, a JWKS or a PEM key")
	}
	for i := range keys {
		if keys[i].KeyID != "" {
			continue
		}
		id, err := thumbprint(keys[i].Key)
		if err != nil {
			return nil, err
		}
		keys[i].KeyID = id
	}
	return keys, nil
}

// parseJWK parses one JWK. Besides go-jose's checks, a "key_ops" member
// must allow signing or verifying.
func parseJWK(raw []byte) (jose.JSONWebKey, error) {
	var k jose.JSONWebKey
	var ops struct {
		KeyOps []string `json:"key_ops"`
	}
	if err := json.Unmarshal(raw, &ops); err != nil {
		return k, fmt.Errorf("bad JWK: %v", err)
	}
	if ops.KeyOps != nil && !slices.Contains(ops.KeyOps, "verify") && !slices.Contains(ops.KeyOps, "sign") {
		return k, errors.New(`bad JWK: "key_ops" allows neither "sign" nor "verify"; a link key must be a signature key`)
	}
	if err := k.UnmarshalJSON(raw); err != nil {
		return k, fmt.Errorf("bad JWK: %s", joseMessage(err))
	}
	return k, nil
}

// joseMessage drops go-jose's package prefix from an error message.
func joseMessage(err error) string {
	if errors.Is(err, jose.ErrUnsupportedKeyType) {
		return "unsupported key type or curve; use Ed25519, P-256, RSA or an HS256 secret"
	}
	msg, _ := strings.CutPrefix(err.Error(), "go-jose/go-jose: ")
	return msg
}

// parsePEM parses every PEM block in data: public keys (PKIX or PKCS #1)
// and private keys (PKCS #8, PKCS #1 or SEC 1).
func parsePEM(data []byte) ([]jose.JSONWebKey, error) {
	var keys []jose.JSONWebKey
	for {
		block, rest := pem.Decode(data)
		if block == nil {
			break
		}
		data = rest
		var k any
		var err error
		switch block.Type {
		case "PUBLIC KEY":
			k, err = x509.ParsePKIXPublicKey(block.Bytes)
		case "RSA PUBLIC KEY":
			k, err = x509.ParsePKCS1PublicKey(block.Bytes)
		case "PRIVATE KEY":
			k, err = x509.ParsePKCS8PrivateKey(block.Bytes)
		case "RSA PRIVATE KEY":
			k, err = x509.ParsePKCS1PrivateKey(block.Bytes)
		case "EC PRIVATE KEY":
			k, err = x509.ParseECPrivateKey(block.Bytes)
		default:
			return nil, fmt.Errorf("PEM block %q is not a key; use PUBLIC KEY or PRIVATE KEY", block.Type)
		}
		if err != nil {
			return nil, fmt.Errorf("bad PEM %s: %v", block.Type, err)
		}
		if p, ok := k.(*ecdsa.PrivateKey); ok && p.Curve != elliptic.P256() {
			return nil, fmt.Errorf("unsupported curve %s; ES256 needs P-256", p.Curve.Params().Name)
		}
		keys = append(keys, jose.JSONWebKey{Key: k})
	}
	if len(bytes.TrimSpace(data)) > 0 || len(keys) == 0 {
		return nil, errors.New("bad PEM data")
	}
	return keys, nil
}

// pin returns the one algorithm k may be used with: its "alg" when set and
// fitting its type, else the default for its type. It refuses weak keys,
// encryption keys and unsupported types.
func pin(k *jose.JSONWebKey) (string, error) {
	if k.Use != "" && k.Use != "sig" {
		return "", fmt.Errorf("key %q is marked \"use\": %q; a link key must be a signature key (\"use\": \"sig\")", k.KeyID, k.Use)
	}
	var allowed []string
	switch m := k.Key.(type) {
	case ed25519.PublicKey, ed25519.PrivateKey:
		allowed = []string{EdDSA}
	case *ecdsa.PublicKey:
		if m.Curve != elliptic.P256() {
			return "", fmt.Errorf("key %q: unsupported curve %s; ES256 needs P-256", k.KeyID, m.Curve.Params().Name)
		}
		allowed = []string{ES256}
	case *ecdsa.PrivateKey:
		if m.Curve != elliptic.P256() {
			return "", fmt.Errorf("key %q: unsupported curve %s; ES256 needs P-256", k.KeyID, m.Curve.Params().Name)
		}
		allowed = []string{ES256}
	case *rsa.PublicKey:
		if m.N.BitLen() < minRSABits {
			return "", fmt.Errorf("key %q: RSA key of %d bits; at least %d are needed", k.KeyID, m.N.BitLen(), minRSABits)
		}
		allowed = []string{RS256, PS256}
	case *rsa.PrivateKey:
		if m.N.BitLen() < minRSABits {
			return "", fmt.Errorf("key %q: RSA key of %d bits; at least %d are needed", k.KeyID, m.N.BitLen(), minRSABits)
		}
		allowed = []string{RS256, PS256}
	case []byte:
		if len(m) < minSecretBytes {
			return "", fmt.Errorf("key %q: HS256 secret of %d bytes; at least %d are needed", k.KeyID, len(m), minSecretBytes)
		}
		allowed = []string{HS256}
	default:
		return "", fmt.Errorf("key %q: unsupported key type; use Ed25519, P-256, RSA or an HS256 secret", k.KeyID)
	}
	if k.Algorithm == "" {
		return allowed[0], nil
	}
	for _, a := range allowed {
		if k.Algorithm == a {
			return a, nil
		}
	}
	return "", fmt.Errorf("key %q: \"alg\": %q does not fit this key type; use %s", k.KeyID, k.Algorithm, allowed[0])
}

// thumbprint returns the RFC 7638 SHA-256 thumbprint of a key, base64url.
func thumbprint(key any) (string, error) {
	var sum []byte
	if secret, ok := key.([]byte); ok {
		h := sha256.Sum256([]byte(`{"k":"` + base64.RawURLEncoding.EncodeToString(secret) + `","kty":"oct"}`))
		sum = h[:]
	} else {
		var err error
		jwk := jose.JSONWebKey{Key: key}
		if sum, err = jwk.Thumbprint(crypto.SHA256); err != nil {
			return "", fmt.Errorf("unsupported key: %s", joseMessage(err))
		}
	}
	return base64.RawURLEncoding.EncodeToString(sum), nil
}
