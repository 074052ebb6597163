package token

import (
	"encoding/base64"
	"errors"
)

// VerifySignature runs the steps of Verify that do not look at typ or the claims: the compact
// pre-checks, the algorithm pinned to the verifier's only key, and the signature. It returns the
// payload. Header members other than alg are not looked at, so kid need not name the key.
func VerifySignature(v *Verifier, token string) ([]byte, error) {
	if !v.single {
		return nil, errors.New("VerifySignature needs a verifier with exactly one key")
	}
	if len(token) > MaxLength {
		return nil, reject(ErrMalformed, "longer than 4096 bytes")
	}
	dot1, dot2, ok := splitCompact(token)
	if !ok {
		return nil, reject(ErrMalformed, "not a compact JWS of base64url segments")
	}
	raw, err := base64.RawURLEncoding.DecodeString(token[:dot1])
	if err != nil {
		return nil, reject(ErrMalformed, "header is not base64url")
	}
	alg, hasAlg := "", false
	err = members(raw, func(name, value string) error {
		var err error
		if name == "alg" {
			alg, err = stringValue(value, name)
			hasAlg = true
		}
		return err
	})
	switch {
	case err != nil:
		return nil, reject(ErrMalformed, "header: "+err.Error())
	case !hasAlg:
		return nil, reject(ErrMalformed, "header has no alg")
	case alg != v.keys[0].Algorithm:
		return nil, reject(ErrWrongAlgorithm, "the key allows only "+v.keys[0].Algorithm)
	case dot2 == len(token)-1:
		return nil, reject(ErrBadSignature, "empty signature")
	}
	return v.verifySignature(token, dot2, 0)
}
