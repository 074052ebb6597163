package token

import (
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"slices"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// Config is what a Verifier checks besides the signature.
type Config struct {
	// Audience is required: a token's "aud" must contain it.
	Audience string
	// Issuer, when set, must equal a token's "iss".
	Issuer string
	// Leeway is the clock skew allowed on exp, nbf and iat. Zero means
	// none; callers usually want DefaultLeeway.
	Leeway time.Duration
	// MaxLinkAge is the longest lifetime (exp − iat) a token may have.
	// Zero means DefaultMaxLinkAge.
	MaxLinkAge time.Duration
	// Now returns the current time; nil means time.Now.
	Now func() time.Time
}

// A Verifier checks link tokens against a fixed set of keys. It is safe for
// concurrent use.
type Verifier struct {
	keys   []Key
	byID   map[string]int
	cfg    Config
	algs   [][]jose.SignatureAlgorithm // algs[i] allows only keys[i].Algorithm
	single bool
}

// NewVerifier returns a Verifier for keys and cfg. Each key's algorithm is
// the only one its tokens may use; with more than one key, tokens must name
// theirs with "kid".
func NewVerifier(keys []Key, cfg Config) (*Verifier, error) {
	if len(keys) == 0 {
		return nil, errors.New("no verification keys")
	}
	if cfg.Audience == "" {
		return nil, errors.New("no audience configured")
	}
	if cfg.Leeway < 0 || cfg.MaxLinkAge < 0 {
		return nil, errors.New("leeway and maximum link age must not be negative")
	}
	if cfg.MaxLinkAge == 0 {
		cfg.MaxLinkAge = DefaultMaxLinkAge
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	v := &Verifier{
		keys:   slices.Clone(keys),
		byID:   make(map[string]int, len(keys)),
		cfg:    cfg,
		single: len(keys) == 1,
	}
	for i := range v.keys {
		k := &v.keys[i]
		if k.material == nil {
			return nil, errors.New("a key was not made by LoadKeys or ParseKeys")
		}
		if _, dup := v.byID[k.ID]; dup {
			return nil, errors.New("key id " + k.ID + " is used twice; key ids must be unique")
		}
		v.byID[k.ID] = i
		v.algs = append(v.algs, []jose.SignatureAlgorithm{jose.SignatureAlgorithm(k.Algorithm)})
	}
	return v, nil
}

// Verify checks a compact link token and returns its claims. The header is
// returned as far as it was parsed, even on rejection, so that its key id
// can be logged. Every error wraps one of the Err* reasons; none holds the
// token.
//
// Length and characters are checked before anything is decoded, and the
// header before any signature work.
func (v *Verifier) Verify(token string) (Header, *Claims, error) {
	var h Header
	if len(token) > MaxLength {
		return h, nil, reject(ErrMalformed, "longer than 4096 bytes")
	}
	dot1, dot2, ok := splitCompact(token)
	if !ok {
		return h, nil, reject(ErrMalformed, "not a compact JWS of base64url segments")
	}
	key, err := v.checkHeader(token[:dot1], &h)
	if err != nil {
		return h, nil, err
	}
	if dot2 == len(token)-1 {
		return h, nil, reject(ErrBadSignature, "empty signature")
	}
	payload, err := v.verifySignature(token, dot2, key)
	if err != nil {
		return h, nil, err
	}
	c, err := parseClaims(payload)
	if err != nil {
		return h, nil, reject(ErrInvalidClaim, err.Error())
	}
	if err := v.checkClaims(c); err != nil {
		return h, nil, err
	}
	return h, c, nil
}

// verifySignature checks the signature of a compact token, whose second dot
// is at dot2, with v.keys[key], and returns the payload.
func (v *Verifier) verifySignature(token string, dot2, key int) ([]byte, error) {
	jws, err := jose.ParseSignedCompact(token, v.algs[key])
	if err != nil {
		return nil, reject(ErrMalformed, "unparsable JWS")
	}
	k := &v.keys[key]
	payload, err := jws.Verify(k.material)
	if err != nil {
		return nil, reject(ErrBadSignature, "signature does not verify")
	}
	if k.Algorithm == PS256 && !strictPSS(k.material.(*rsa.PublicKey), token[:dot2], token[dot2+1:]) {
		return nil, reject(ErrBadSignature, "PSS salt is not 32 bytes")
	}
	return payload, nil
}

// strictPSS reports whether sig is an RSASSA-PSS signature of input with a
// salt as long as the SHA-256 hash, as RFC 7518 §3.5 requires; go-jose
// accepts any salt length.
func strictPSS(pub *rsa.PublicKey, input, sig string) bool {
	raw, err := base64.RawURLEncoding.DecodeString(sig)
	if err != nil {
		return false
	}
	digest := sha256.Sum256([]byte(input))
	return rsa.VerifyPSS(pub, crypto.SHA256, digest[:], raw, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash}) == nil
}

// splitCompact checks that token is three non-empty-headed base64url
// segments and returns the positions of the two dots.
func splitCompact(token string) (dot1, dot2 int, ok bool) {
	dot1, dot2 = -1, -1
	for i := 0; i < len(token); i++ {
		c := token[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '-', c == '_':
		case c == '.' && dot1 < 0:
			dot1 = i
		case c == '.' && dot2 < 0:
			dot2 = i
		default:
			return 0, 0, false
		}
	}
	ok = dot1 > 0 && dot2 > dot1+1 &&
		canonical(token[:dot1]) && canonical(token[dot1+1:dot2]) && canonical(token[dot2+1:])
	return dot1, dot2, ok
}

// canonical reports whether a segment of base64url characters is the
// canonical encoding of its bytes: a length that leaves no lone character,
// and zero bits after the last byte. Otherwise several spellings of one
// signature would verify.
func canonical(seg string) bool {
	if len(seg) == 0 {
		return true
	}
	last := strings.IndexByte(b64url, seg[len(seg)-1])
	switch len(seg) % 4 {
	case 1:
		return false
	case 2:
		return last&0xf == 0
	case 3:
		return last&0x3 == 0
	}
	return true
}

const b64url = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"

// checkHeader decodes and checks the protected header and returns the index
// of the key that must verify the token.
func (v *Verifier) checkHeader(segment string, h *Header) (int, error) {
	raw, err := base64.RawURLEncoding.DecodeString(segment)
	if err != nil {
		return 0, reject(ErrMalformed, "header is not base64url")
	}
	var hasAlg, hasKid, hasTyp bool
	err = members(raw, func(name, value string) error {
		var err error
		switch name {
		case "alg":
			h.Algorithm, err = stringValue(value, name)
			hasAlg = true
		case "kid":
			h.KeyID, err = stringValue(value, name)
			hasKid = true
		case "typ":
			h.Type, err = stringValue(value, name)
			hasTyp = true
		case "crit", "b64":
			err = errors.New(`"` + name + `" header is not supported`)
		}
		return err
	})
	if err != nil {
		*h = Header{}
		return 0, reject(ErrMalformed, "header: "+err.Error())
	}
	if !hasTyp || !isLinkType(h.Type) {
		return 0, reject(ErrWrongType, `typ must be "`+Type+`"`)
	}
	if !hasAlg {
		return 0, reject(ErrMalformed, "header has no alg")
	}
	i, found := 0, v.single
	if hasKid {
		i, found = v.byID[h.KeyID]
	} else if !v.single {
		return 0, reject(ErrUnknownKey, "no kid, and more than one key is configured")
	}
	if !found {
		return 0, reject(ErrUnknownKey, "kid names no configured key")
	}
	if h.Algorithm != v.keys[i].Algorithm {
		return 0, reject(ErrWrongAlgorithm, "the key allows only "+v.keys[i].Algorithm)
	}
	return i, nil
}

// isLinkType reports whether typ is Type, with or without "application/",
// in any case.
func isLinkType(typ string) bool {
	if len(typ) > len("application/") && strings.EqualFold(typ[:len("application/")], "application/") {
		typ = typ[len("application/"):]
	}
	return strings.EqualFold(typ, Type)
}

// checkClaims applies the claim rules of the format to verified claims.
func (v *Verifier) checkClaims(c *Claims) error {
	if err := c.checkShape(); err != nil {
		return reject(ErrInvalidClaim, err.Error())
	}
	now, leeway := v.cfg.Now(), v.cfg.Leeway
	switch {
	case !slices.Contains(c.Audience, v.cfg.Audience):
		return reject(ErrWrongAudience, "aud does not contain the configured audience")
	case v.cfg.Issuer != "" && c.Issuer != v.cfg.Issuer:
		return reject(ErrWrongIssuer, "iss is not the configured issuer")
	case !now.Before(c.Expiry.Add(leeway)):
		return reject(ErrExpired, "expired at "+c.Expiry.UTC().Format(time.RFC3339))
	case !c.NotBefore.IsZero() && now.Before(c.NotBefore.Add(-leeway)):
		return reject(ErrNotYetValid, "valid from "+c.NotBefore.UTC().Format(time.RFC3339))
	case c.IssuedAt.After(now.Add(leeway)):
		return reject(ErrInvalidClaim, "iat is in the future")
	case c.Expiry.Sub(c.IssuedAt) > v.cfg.MaxLinkAge:
		return reject(ErrTooOld, "lifetime exp − iat is over the maximum link age")
	}
	return nil
}
