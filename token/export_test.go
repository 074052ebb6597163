package token

import "errors"

// VerifySignature runs the steps of Verify that do not look at typ or the claims: the compact
// pre-checks, the key the header names, and the signature. It returns the payload.
func VerifySignature(v *Verifier, token string) ([]byte, error) {
	if !v.single {
		return nil, errors.New("VerifySignature needs a verifier with exactly one key")
	}
	dot1, dot2, err := precheck(token)
	if err != nil {
		return nil, err
	}
	var h Header
	seen, err := decodeHeader(token[:dot1], &h)
	if err != nil {
		return nil, err
	}
	key, err := v.keyFor(&h, seen)
	if err != nil {
		return nil, err
	}
	payload, err := v.verifySigned(token, dot1, dot2, key)
	return []byte(payload), err
}
