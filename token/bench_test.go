package token_test

import (
	"crypto/ed25519"
	"strings"
	"testing"
	"time"

	"github.com/magiclink-dev/magiclink/token"
)

// The benchmarks compare with benchstat. The targets, on one machine in one run:
//   Verify/EdDSA ÷ RawEd25519Verify ≤ 1.15 (VerifyPerRawEd25519 measures it pairwise), and
//   RawEd25519Verify ÷ Reject/* ≥ 20.

func BenchmarkVerify(b *testing.B) {
	ks := keySet(b)
	for _, k := range ks.supported() {
		b.Run(k.alg, func(b *testing.B) {
			v := newVerifier(b, baseConfig(), k)
			tok := mint(b, k, claims())
			if _, _, err := v.Verify(tok); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				v.Verify(tok)
			}
		})
	}
}

// BenchmarkRawEd25519Verify is the floor of BenchmarkVerify/EdDSA: ed25519.Verify of exactly
// that token's signing input and signature.
func BenchmarkRawEd25519Verify(b *testing.B) {
	ks := keySet(b)
	tok := mint(b, ks.eddsa, claims())
	dot := strings.LastIndexByte(tok, '.')
	input := []byte(tok[:dot])
	_, _, sig := segments(b, tok)
	pub := ks.eddsa.public().(ed25519.PublicKey)
	if !ed25519.Verify(pub, input, sig) {
		b.Fatal("signature does not verify")
	}
	b.ReportAllocs()
	for b.Loop() {
		ed25519.Verify(pub, input, sig)
	}
}

// BenchmarkVerifyPerRawEd25519 alternates Verify/EdDSA and the raw ed25519.Verify under it,
// one of each per iteration, so that both meet the same load on a shared machine, and reports
// the ratio of their times as verify/raw.
func BenchmarkVerifyPerRawEd25519(b *testing.B) {
	ks := keySet(b)
	v := newVerifier(b, baseConfig(), ks.eddsa)
	tok := mint(b, ks.eddsa, claims())
	dot := strings.LastIndexByte(tok, '.')
	input := []byte(tok[:dot])
	_, _, sig := segments(b, tok)
	pub := ks.eddsa.public().(ed25519.PublicKey)
	if _, _, err := v.Verify(tok); err != nil || !ed25519.Verify(pub, input, sig) {
		b.Fatal("the token does not verify")
	}
	var verify, raw time.Duration
	b.ReportAllocs()
	for b.Loop() {
		start := time.Now()
		v.Verify(tok)
		mid := time.Now()
		ed25519.Verify(pub, input, sig)
		verify += mid.Sub(start)
		raw += time.Since(mid)
	}
	b.ReportMetric(float64(verify)/float64(raw), "verify/raw")
}

func BenchmarkReject(b *testing.B) {
	ks := keySet(b)
	v := newVerifier(b, baseConfig(), ks.eddsa)
	valid := mint(b, ks.eddsa, claims())
	for _, c := range []struct {
		name string
		tok  string
		want error
	}{
		{"oversize", valid + strings.Repeat("A", 1<<20), token.ErrMalformed},
		{"malformed", strings.Repeat("A", 2000) + "!" + strings.Repeat("A", 2000), token.ErrMalformed},
		{"dots", strings.Repeat(".", token.MaxLength), token.ErrMalformed},
		{"wrong_alg", compact(b, ks.eddsa, header(ks.eddsa).set("alg", "none").json(), claims().json()), token.ErrWrongAlgorithm},
		{"wrong_type", compact(b, ks.eddsa, header(ks.eddsa).set("typ", "JWT").json(), claims().json()), token.ErrWrongType},
		{"unknown_key", compact(b, ks.eddsa, header(ks.eddsa).set("kid", "nope").json(), claims().json()), token.ErrUnknownKey},
	} {
		b.Run(c.name, func(b *testing.B) {
			_, _, err := v.Verify(c.tok)
			checkReason(b, err, c.want)
			b.ReportAllocs()
			for b.Loop() {
				v.Verify(c.tok)
			}
		})
	}
}

func BenchmarkSign(b *testing.B) {
	ks := keySet(b)
	c := wantClaims()
	for _, k := range ks.supported() {
		b.Run(k.alg, func(b *testing.B) {
			s := newSigner(b, k)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := s.Sign(c); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	b.Run("EdDSA_AppendSign", func(b *testing.B) {
		s := newSigner(b, ks.eddsa)
		var dst []byte
		b.ReportAllocs()
		for b.Loop() {
			claims := c
			var err error
			if dst, err = s.AppendSign(dst[:0], &claims); err != nil {
				b.Fatal(err)
			}
		}
	})
}
