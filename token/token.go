// Package token mints and verifies magic-link tokens: short-lived, signed
// JWS tokens (RFC 7515, compact serialization) that a site puts in a link,
// as in https://shop.example.com/cart?token=eyJ…, to sign a person in with
// one click.
//
// A token's protected header has "typ" set to [Type], the "alg" of the key
// that signed it and, when the verifier holds more than one key, its "kid".
// Its claims are described by [Claims].
//
// A [Signer] holds one private key (or an HS256 secret) and mints tokens; a
// [Verifier] holds public keys only and checks every rule of the format
// itself: signature, algorithm pinned per key, type, audience, issuer, expiry,
// not-before, issued-at, link lifetime and the shape of every claim. Verify
// errors wrap exactly one of the Err* reasons, so callers can tell an expired
// link from a forged one with [errors.Is] or [Reason].
package token

import (
	"errors"
	"time"
)

// Type is the "typ" header of a link token (RFC 8725 §3.11). It is compared
// case-insensitively, and "application/magic-link+jwt" is the same type.
const Type = "magic-link+jwt"

// MaxLength is the length in bytes of the longest token a Verifier accepts.
const MaxLength = 4096

// The values of Config that verifiers usually want: the gateway's and the
// CLI's defaults.
const (
	DefaultLeeway     = 30 * time.Second
	DefaultMaxLinkAge = 720 * time.Hour
)

// The algorithms a key can be pinned to.
const (
	EdDSA = "EdDSA" // Ed25519
	ES256 = "ES256" // ECDSA on P-256 with SHA-256
	PS256 = "PS256" // RSASSA-PSS with SHA-256, RSA of 2048 bits or more
	RS256 = "RS256" // RSASSA-PKCS1-v1_5 with SHA-256, RSA of 2048 bits or more
	HS256 = "HS256" // HMAC with SHA-256, secret of 32 bytes or more
)

// Header is the part of a token's protected header a caller may need.
type Header struct {
	Algorithm string `json:"alg"`
	KeyID     string `json:"kid,omitempty"`
	Type      string `json:"typ"`
}

// The reasons a token is rejected. Every error returned by [Verifier.Verify]
// wraps exactly one of them.
var (
	ErrMalformed      = errors.New("malformed token")
	ErrBadSignature   = errors.New("bad signature")
	ErrUnknownKey     = errors.New("unknown key")
	ErrWrongAlgorithm = errors.New("wrong algorithm")
	ErrWrongType      = errors.New("wrong token type")
	ErrExpired        = errors.New("token expired")
	ErrNotYetValid    = errors.New("token not yet valid")
	ErrWrongAudience  = errors.New("wrong audience")
	ErrWrongIssuer    = errors.New("wrong issuer")
	ErrTooOld         = errors.New("link lifetime over the maximum")
	ErrInvalidClaim   = errors.New("invalid claim")
)

var reasonCodes = []struct {
	err  error
	code string
}{
	{ErrMalformed, "malformed"},
	{ErrBadSignature, "bad_signature"},
	{ErrUnknownKey, "unknown_key"},
	{ErrWrongAlgorithm, "wrong_algorithm"},
	{ErrWrongType, "wrong_type"},
	{ErrExpired, "expired"},
	{ErrNotYetValid, "not_yet_valid"},
	{ErrWrongAudience, "wrong_audience"},
	{ErrWrongIssuer, "wrong_issuer"},
	{ErrTooOld, "too_old"},
	{ErrInvalidClaim, "invalid_claim"},
}

// Reason returns the short code of the reason err wraps: "malformed",
// "bad_signature", "unknown_key", "wrong_algorithm", "wrong_type", "expired",
// "not_yet_valid", "wrong_audience", "wrong_issuer", "too_old" or
// "invalid_claim". It returns "" for nil and for errors that wrap no reason.
func Reason(err error) string {
	if err == nil {
		return ""
	}
	for _, r := range reasonCodes {
		if errors.Is(err, r.err) {
			return r.code
		}
	}
	return ""
}

// RejectedLink returns the link id ("jti") and subject ("sub") of a token
// that Verify rejected although its signature verified (expired, not yet
// valid, for another audience or issuer, too old, with an invalid claim), so
// that the rejection can be logged with them. ok is false for every other
// error: when the signature did not verify, nothing in the token can be
// trusted, not even for a log line.
func RejectedLink(err error) (id, subject string, ok bool) {
	var r *rejection
	if errors.As(err, &r) && r.signed {
		return r.id, r.subject, true
	}
	return "", "", false
}

// rejection is a Verify error: a reason and a detail that never holds the
// token or key material and, for a token whose signature verified, the
// link's id and subject.
type rejection struct {
	reason      error
	detail      string
	signed      bool
	id, subject string
}

func (e *rejection) Error() string {
	if e.detail == "" {
		return e.reason.Error()
	}
	return e.reason.Error() + ": " + e.detail
}

func (e *rejection) Unwrap() error { return e.reason }

func reject(reason error, detail string) error {
	return &rejection{reason: reason, detail: detail}
}
