package token

import (
	"encoding/base64"
	"errors"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/magiclink-dev/magiclink/internal/jsonobj"
)

// Config is what a Verifier checks besides the signature. A zero field
// checks nothing: no issuer, no leeway, no limit on a link's lifetime, the
// current time. Audience alone is required. Verifiers usually want
// DefaultLeeway and DefaultMaxLinkAge.
type Config struct {
	// Audience is required: a token's "aud" must contain it.
	Audience string
	// Issuer, when set, must equal a token's "iss".
	Issuer string
	// Leeway is the clock skew allowed on exp, nbf and iat.
	Leeway time.Duration
	// MaxLinkAge, when set, is the longest lifetime (exp − iat) a token
	// may have.
	MaxLinkAge time.Duration
	// Now, when set, returns the current time; otherwise time.Now does.
	Now func() time.Time
}

// A Verifier checks link tokens against a fixed set of keys. It is safe for
// concurrent use.
type Verifier struct {
	keys   []Key
	byID   map[string]int
	cfg    Config
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
		if _, dup := v.byID[k.id]; dup {
			return nil, errors.New("key id " + k.id + " is used twice; key ids must be unique")
		}
		v.byID[k.id] = i
	}
	return v, nil
}

// Verify checks a compact link token and returns its claims. The header is
// returned as far as it was parsed, even on rejection, so that its key id
// can be logged. Every error wraps one of the Err* reasons; none holds the
// token. When the signature verified but a claim was rejected, the error
// also names the link: see [RejectedLink].
//
// Length and characters are checked before anything is decoded, and the
// header before any signature work.
func (v *Verifier) Verify(token string) (Header, *Claims, error) {
	var h Header
	payload, err := v.verifyJWS(token, &h, true)
	if err != nil {
		return h, nil, err
	}
	c, err := parseClaims(payload)
	if err != nil {
		return h, nil, reject(ErrInvalidClaim, err.Error())
	}
	if err := v.checkClaims(c); err != nil {
		var r *rejection
		if errors.As(err, &r) {
			r.signed, r.id, r.subject = true, c.ID, c.Subject
		}
		return h, nil, err
	}
	return h, c, nil
}

// verifyJWS is Verify up to the claims: it pre-checks a compact token,
// decodes its header into h, checks typ when requireType is set, picks the
// key, verifies the signature and returns the payload. Only the tests of
// Project Wycheproof's vectors, which carry no typ, leave requireType unset.
func (v *Verifier) verifyJWS(token string, h *Header, requireType bool) (string, error) {
	dot1, dot2, err := precheck(token)
	if err != nil {
		return "", err
	}
	seen, err := decodeHeader(token[:dot1], h)
	if err != nil {
		return "", err
	}
	if requireType && (!seen.typ || !isLinkType(h.Type)) {
		return "", reject(ErrWrongType, `typ must be "`+Type+`"`)
	}
	key, err := v.keyFor(h, seen)
	if err != nil {
		return "", err
	}
	return v.verifySigned(token, dot1, dot2, key)
}

// precheck checks the length and the characters of a compact token and
// returns the positions of its two dots.
func precheck(token string) (dot1, dot2 int, err error) {
	if len(token) > MaxLength {
		return 0, 0, reject(ErrMalformed, "longer than 4096 bytes")
	}
	dot1, dot2, ok := splitCompact(token)
	if !ok {
		return 0, 0, reject(ErrMalformed, "not a compact JWS of base64url segments")
	}
	return dot1, dot2, nil
}

// verifySigned checks the signature of a pre-checked compact token, whose
// dots are at dot1 and dot2, with v.keys[key], and only then decodes and
// returns the payload.
func (v *Verifier) verifySigned(token string, dot1, dot2, key int) (string, error) {
	if dot2 == len(token)-1 {
		return "", reject(ErrBadSignature, "empty signature")
	}
	// 512 bytes hold a signature of every algorithm up to RSA-4096.
	var buf [512]byte
	sig, err := base64.RawURLEncoding.AppendDecode(buf[:0], []byte(token[dot2+1:]))
	if err != nil {
		return "", reject(ErrMalformed, "signature is not base64url")
	}
	k := &v.keys[key]
	if !verifySignature(k.alg, k.material, token[:dot2], sig) {
		return "", reject(ErrBadSignature, "signature does not verify")
	}
	payload, ok := decodeSegment(token[dot1+1 : dot2])
	if !ok {
		return "", reject(ErrMalformed, "payload is not base64url")
	}
	return payload, nil
}

// scratchPool holds buffers of MaxLength bytes, for the decoded segments and
// the signing input of a token, so that verifying one allocates little more
// than what it returns.
var scratchPool = sync.Pool{New: func() any { return new([MaxLength]byte) }}

// decodeSegment decodes a base64url segment of a token.
func decodeSegment(segment string) (string, bool) {
	buf := scratchPool.Get().(*[MaxLength]byte)
	defer scratchPool.Put(buf)
	raw, err := base64.RawURLEncoding.AppendDecode(buf[:0], []byte(segment))
	return string(raw), err == nil
}

// splitCompact checks that token is three non-empty-headed base64url
// segments and returns the positions of the two dots.
func splitCompact(token string) (dot1, dot2 int, ok bool) {
	dot1, dot2 = -1, -1
	for i := 0; i < len(token); i++ {
		c := token[i]
		switch {
		case b64urlIndex[c] != 0:
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
	last := b64urlIndex[seg[len(seg)-1]] - 1
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

// b64urlIndex maps each character of b64url to its value plus one, and every
// other byte to 0.
var b64urlIndex = func() (index [256]byte) {
	for i := range len(b64url) {
		index[b64url[i]] = byte(i) + 1
	}
	return index
}()

// headerMembers tells which of the members a Verifier reads a protected
// header has.
type headerMembers struct{ alg, kid, typ bool }

// decodeHeader decodes the protected header segment into h. A header with
// "crit" or "b64", or that is not one JSON object without duplicate
// members, is malformed; then h is left empty.
func decodeHeader(segment string, h *Header) (headerMembers, error) {
	var seen headerMembers
	raw, ok := decodeSegment(segment)
	if !ok {
		return seen, reject(ErrMalformed, "header is not base64url")
	}
	err := jsonobj.Members(raw, func(name, value string) error {
		var err error
		switch name {
		case "alg":
			h.Algorithm, err = stringValue(value, name)
			seen.alg = true
		case "kid":
			h.KeyID, err = stringValue(value, name)
			seen.kid = true
		case "typ":
			h.Type, err = stringValue(value, name)
			seen.typ = true
		case "crit", "b64":
			err = errors.New(`"` + name + `" header is not supported`)
		}
		return err
	})
	if err != nil {
		*h = Header{}
		return seen, reject(ErrMalformed, "header: "+err.Error())
	}
	return seen, nil
}

// keyFor returns the index of the key that must verify a token with header
// h: the one its kid names, or the only one, and only when the header's alg
// is that key's algorithm.
func (v *Verifier) keyFor(h *Header, seen headerMembers) (int, error) {
	if !seen.alg {
		return 0, reject(ErrMalformed, "header has no alg")
	}
	i, found := 0, v.single
	if seen.kid {
		i, found = v.byID[h.KeyID]
	} else if !v.single {
		return 0, reject(ErrUnknownKey, "no kid, and more than one key is configured")
	}
	if !found {
		return 0, reject(ErrUnknownKey, "kid names no configured key")
	}
	if h.Algorithm != v.keys[i].alg {
		return 0, reject(ErrWrongAlgorithm, "the key allows only "+v.keys[i].alg)
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
	case v.cfg.MaxLinkAge > 0 && c.Expiry.Sub(c.IssuedAt) > v.cfg.MaxLinkAge:
		return reject(ErrTooOld, "lifetime exp − iat is over the maximum link age")
	}
	return nil
}
