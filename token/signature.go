package token

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/rsa"
	"crypto/sha256"
	"math/big"
)

// verifySignature reports whether sig is a signature of the JWS signing
// input by material (a Key's) under alg, the key's one algorithm. It is the
// mirror of Signer.signature: Ed25519; ECDSA P-256 as the 64 bytes r‖s of
// RFC 7518 §3.4; RSASSA-PKCS1-v1_5; RSASSA-PSS with a salt as long as the
// SHA-256 hash (RFC 7518 §3.5); HMAC compared in constant time.
func verifySignature(alg string, material any, input string, sig []byte) bool {
	buf := scratchPool.Get().(*[MaxLength]byte)
	defer scratchPool.Put(buf)
	msg := append(buf[:0], input...)
	if alg == EdDSA {
		pub, ok := material.(ed25519.PublicKey)
		return ok && ed25519.Verify(pub, msg, sig)
	}
	if alg == HS256 {
		secret, ok := material.([]byte)
		if !ok {
			return false
		}
		mac := hmac.New(sha256.New, secret)
		mac.Write(msg)
		var sum [sha256.Size]byte
		return hmac.Equal(mac.Sum(sum[:0]), sig)
	}
	digest := sha256.Sum256(msg)
	switch alg {
	case ES256:
		pub, ok := material.(*ecdsa.PublicKey)
		if !ok || len(sig) != 64 {
			return false
		}
		r, s := new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])
		return ecdsa.Verify(pub, digest[:], r, s)
	case RS256:
		pub, ok := material.(*rsa.PublicKey)
		return ok && rsa.VerifyPKCS1v15(pub, crypto.SHA256, digest[:], sig) == nil
	case PS256:
		pub, ok := material.(*rsa.PublicKey)
		return ok && rsa.VerifyPSS(pub, crypto.SHA256, digest[:], sig, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash}) == nil
	}
	return false
}
