package token_test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/magiclink-dev/magiclink/token"
)

// go-jose's JWS verification is the reference the verifier is held to: whatever Verify accepts,
// jose.ParseSignedCompact with the key's one algorithm and Verify with the key must accept too,
// with the same payload. Verify is stricter in many ways (typ, canonical base64url, duplicate
// members, the PSS salt length, the claims), so the converse does not hold.

// differentialTarget is one key of every supported algorithm with its own Verifier.
type differentialTarget struct {
	key   testKey
	v     *token.Verifier
	valid string // a token Verify accepts
	ref   any    // the key go-jose verifies with: the public key, or the HS256 secret
}

func differentialTargets(t testing.TB) []differentialTarget {
	var targets []differentialTarget
	for _, k := range keySet(t).supported() {
		ref := k.public()
		if k.alg == token.HS256 {
			ref = k.secret
		}
		targets = append(targets, differentialTarget{key: k, v: newVerifier(t, baseConfig(), k), valid: mint(t, k, claims()), ref: ref})
	}
	return targets
}

// The mutations of FuzzDifferential, picked by the fuzz input's mode modulo their number.
const (
	mutateNone          = iota // the token is the fuzz data itself
	mutateOverwrite            // data overwrites the valid token at a position
	mutateInsert               // data is inserted into the valid token at a position
	mutateDelete               // len(data) bytes of the valid token are cut at a position
	mutateSignatureXOR         // data is XORed into the decoded signature at a position
	mutateSignature            // the signature is data, base64url-encoded
	mutateSignedHeader         // data is inserted into the header JSON, and the token signed again
	mutateSignedPayload        // data is inserted into the claims JSON, and the token signed again
	mutations
)

// mutate builds the token FuzzDifferential checks from a target's valid token.
func mutate(t *testing.T, tg differentialTarget, mode uint8, at uint16, data []byte) string {
	tok := tg.valid
	pos := func(n int) int { return int(at) % (n + 1) }
	switch mode % mutations {
	case mutateNone:
		return string(data)
	case mutateOverwrite:
		p := pos(len(tok))
		end := min(p+len(data), len(tok))
		return tok[:p] + string(data[:end-p]) + tok[end:]
	case mutateInsert:
		p := pos(len(tok))
		return tok[:p] + string(data) + tok[p:]
	case mutateDelete:
		p := pos(len(tok))
		return tok[:p] + tok[min(p+len(data), len(tok)):]
	case mutateSignatureXOR:
		dot := strings.LastIndexByte(tok, '.')
		sig, err := base64.RawURLEncoding.DecodeString(tok[dot+1:])
		if err != nil {
			t.Fatal(err)
		}
		p := pos(len(sig))
		for i, b := range data {
			if p+i == len(sig) {
				sig = append(sig, 0)
			}
			sig[p+i] ^= b
		}
		return tok[:dot+1] + b64(sig)
	case mutateSignature:
		return tok[:strings.LastIndexByte(tok, '.')+1] + b64(data)
	case mutateSignedHeader:
		h := header(tg.key).json()
		p := pos(len(h))
		return compact(t, tg.key, h[:p]+string(data)+h[p:], claims().json())
	case mutateSignedPayload:
		c := claims().json()
		p := pos(len(c))
		return compact(t, tg.key, header(tg.key).json(), c[:p]+string(data)+c[p:])
	}
	panic("unreachable")
}

// ignoredMemberError reports whether go-jose rejected a token for a header member Verify never
// reads: a "jwk", "x5c" or "nonce" it cannot decode, or another member whose value its JSON
// decoder refuses (a number beyond float64). Verify ignores every member but alg, kid and typ
// (and rejects crit and b64); it never trusts keys or certificates a token carries.
func ignoredMemberError(err error) bool {
	for _, prefix := range []string{"failed to unmarshal JWK:", "failed to unmarshal x5c header:", "failed to unmarshal nonce:", "failed to unmarshal value:"} {
		if strings.HasPrefix(err.Error(), prefix) {
			return true
		}
	}
	return false
}

// checkAgainstJose fails t when Verify accepts tok but go-jose does not, or returns other claims.
// headerSigned tells that tok was signed by the target's key over a crafted header: only then
// may go-jose refuse a member Verify ignores.
func checkAgainstJose(t *testing.T, tg differentialTarget, tok string, headerSigned bool) {
	_, c, err := tg.v.Verify(tok)
	if err != nil {
		return
	}
	jws, err := jose.ParseSignedCompact(tok, []jose.SignatureAlgorithm{jose.SignatureAlgorithm(tg.key.alg)})
	if err != nil {
		if headerSigned && ignoredMemberError(err) {
			return
		}
		t.Fatalf("%s: Verify accepts %q, go-jose cannot parse it: %v", tg.key.alg, tok, err)
	}
	payload, err := jws.Verify(tg.ref)
	if err != nil {
		t.Fatalf("%s: Verify accepts %q, go-jose rejects it: %v", tg.key.alg, tok, err)
	}
	// Numbers stay text: a claim Verify ignores may be a number beyond float64 (valid JSON).
	var m map[string]any
	dec := json.NewDecoder(bytes.NewReader(payload))
	dec.UseNumber()
	if err := dec.Decode(&m); err != nil || m["sub"] != c.Subject || m["jti"] != c.ID {
		t.Fatalf("%s: Verify accepts %q with sub %q, jti %q; go-jose's payload is %q", tg.key.alg, tok, c.Subject, c.ID, payload)
	}
}

// FuzzDifferential mutates valid tokens of every supported algorithm (the fuzz input picks the
// algorithm, the mutation and where it applies) and takes arbitrary bytes as a token, and fails
// whenever Verify accepts what go-jose rejects.
func FuzzDifferential(f *testing.F) {
	targets := differentialTargets(f)
	for i := range targets {
		f.Add(uint8(i), uint8(mutateNone), uint16(0), []byte(targets[i].valid))
		f.Add(uint8(i), uint8(mutateSignatureXOR), uint16(0), []byte{1})
		f.Add(uint8(i), uint8(mutateSignedPayload), uint16(1), []byte(`"nbf":1799999000,`))
	}
	f.Fuzz(func(t *testing.T, alg, mode uint8, at uint16, data []byte) {
		tg := targets[int(alg)%len(targets)]
		tok := mutate(t, tg, mode, at, data)
		checkAgainstJose(t, tg, tok, mode%mutations == mutateSignedHeader)
	})
}

// TestDifferentialIgnoredMembers pins the tokens Verify accepts and go-jose refuses: a header
// member Verify never reads that go-jose cannot decode. Each is signed by the verifier's key.
func TestDifferentialIgnoredMembers(t *testing.T) {
	tg := differentialTargets(t)[0]
	for _, member := range []string{`"jwk":1`, `"x5c":["AA"]`, `"nonce":1`, `"ext":1e999`} {
		t.Run(member, func(t *testing.T) {
			h := strings.TrimSuffix(header(tg.key).json(), "}") + "," + member + "}"
			tok := compact(t, tg.key, h, claims().json())
			if _, _, err := tg.v.Verify(tok); err != nil {
				t.Fatalf("Verify rejects: %v", err)
			}
			_, err := jose.ParseSignedCompact(tok, []jose.SignatureAlgorithm{jose.SignatureAlgorithm(tg.key.alg)})
			if err == nil || !ignoredMemberError(err) {
				t.Fatalf("go-jose: %v; want an error about the member; if go-jose accepts it now, drop it from ignoredMemberError", err)
			}
			checkAgainstJose(t, tg, tok, true)
		})
	}
}
