package token

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// Project Wycheproof's JOSE vectors (testdata/wycheproof, Apache-2.0) run against ParseKeys and
// NewVerifier, then through verifyJWS, the very stages Verify runs up to the claims, with the typ
// check left out: no vector carries the typ header of a link token, so Verify would stop every
// one before the signature. Every vector where our verdict differs from Wycheproof's is listed
// below with the outcome we give and why; testdata/wycheproof/DIFFERENCES.md explains them.
// Verify itself must reject every vector before its signature.
//
// An outcome is "accepted" (the signature verifies and the payload is the token's), "wrong payload"
// (it verifies but another payload came back), "keys refused" (ParseKeys or NewVerifier refused
// the vector's key set) or the Reason code of the rejection.

type wycheproofFile struct {
	TestGroups []struct {
		Comment string          `json:"comment"`
		Private json.RawMessage `json:"private"`
		Public  json.RawMessage `json:"public"`
		Tests   []struct {
			TcID    int      `json:"tcId"`
			Comment string   `json:"comment"`
			JWS     string   `json:"jws"`
			Result  string   `json:"result"`
			Flags   []string `json:"flags"`
		} `json:"tests"`
	} `json:"testGroups"`
}

type difference struct {
	got string // our outcome
	why string // one line; DIFFERENCES.md has the full story
}

const (
	whyAlg       = "algorithm outside EdDSA, ES256, PS256, RS256, HS256: its keys are refused"
	whyPinnedAlg = "alg PS384 on a key pinned to PS256: a key allows one algorithm (Wycheproof accepts it)"
	whyCharset   = "a character outside base64url: refused before anything is decoded"
	whyROCA      = "no ROCA fingerprint check on RSA keys: the key loads and its token verifies"
	whyEmptyBody = "empty payload segment: a link token always has claims"
	whyDataBug   = "Wycheproof data bug: byte-identical to valid tc357, a correct token (C2SP/wycheproof#236)"
)

// knownKeyDifferences covers json_web_key_test.json.
var knownKeyDifferences = map[int]difference{
	7:  {"accepted", whyROCA},
	14: {"keys refused", whyAlg},
	15: {"keys refused", whyAlg},
}

// knownSignatureDifferences covers json_web_signature_test.json.
var knownSignatureDifferences = map[int]difference{
	259: {"malformed", whyEmptyBody},
	264: {"keys refused", whyAlg},
	265: {"keys refused", whyAlg},
	266: {"keys refused", whyAlg},
	267: {"keys refused", whyAlg},
	268: {"keys refused", whyAlg},
	269: {"keys refused", whyAlg},
	270: {"keys refused", whyAlg},
	271: {"keys refused", whyAlg},
	272: {"malformed", whyEmptyBody},
	320: {"keys refused", whyAlg},
	321: {"keys refused", whyAlg},
	322: {"keys refused", whyAlg},
	323: {"keys refused", whyAlg},
	325: {"keys refused", whyAlg},
	326: {"keys refused", whyAlg},
	327: {"keys refused", whyAlg},
	328: {"keys refused", whyAlg},
	346: {"wrong_algorithm", whyPinnedAlg},
	347: {"keys refused", whyAlg},
	350: {"wrong_algorithm", whyPinnedAlg},
	351: {"keys refused", whyAlg},
	367: {"accepted", whyDataBug},
	370: {"accepted", whyDataBug},
	372: {"malformed", whyCharset},
	373: {"malformed", whyCharset},
}

// TestWycheproofKeySets holds key loading to the stricter rule: a vector whose key set is flawed
// must have its keys refused, not just its token rejected.
func TestWycheproofKeySets(t *testing.T) {
	runWycheproof(t, "json_web_key_test.json", knownKeyDifferences, func(result, comment, got string) bool {
		switch {
		case result == "valid":
			return got == "accepted"
		case comment == "rejectsModifiedSignature":
			return got != "accepted"
		}
		return got == "keys refused"
	})
}

func TestWycheproofSignatures(t *testing.T) {
	runWycheproof(t, "json_web_signature_test.json", knownSignatureDifferences, func(result, _, got string) bool {
		return (result == "valid") == (got == "accepted")
	})
}

// runWycheproof runs every vector of file; agrees tells whether our outcome got matches
// Wycheproof's result for a vector with that comment.
func runWycheproof(t *testing.T, file string, known map[int]difference, agrees func(result, comment, got string) bool) {
	data, err := os.ReadFile(filepath.Join("testdata", "wycheproof", file))
	if err != nil {
		t.Fatal(err)
	}
	var f wycheproofFile
	if err := json.Unmarshal(data, &f); err != nil {
		t.Fatal(err)
	}
	seen := map[int]bool{}
	count := 0
	outcomes := map[string]map[string]int{} // per key algorithm, per outcome of verifyJWS
	for _, g := range f.TestGroups {
		keySet := g.Public
		if len(keySet) == 0 {
			keySet = g.Private
		}
		keys, v, keyErr := wycheproofVerifier(keySet)
		for _, tc := range g.Tests {
			count++
			name := fmt.Sprintf("tc%d %s %s", tc.TcID, g.Comment, tc.Comment)
			got := "keys refused"
			if keyErr == nil {
				_, _, err := v.Verify(tc.JWS)
				got = outcome(err)
				if got != "wrong_type" && got != "malformed" {
					t.Errorf("%s: Verify gives %s; no vector carries typ %s, so it must stop at the header (wrong_type) or before (malformed)", name, got, Type)
				}
				got = signatureOutcome(v, tc.JWS)
				alg := keys[0].Algorithm()
				if outcomes[alg] == nil {
					outcomes[alg] = map[string]int{}
				}
				outcomes[alg][got]++
			}
			differs := !agrees(tc.Result, tc.Comment, got)
			d, listed := known[tc.TcID]
			switch {
			case differs && !listed:
				t.Errorf("%s: Wycheproof says %s, we say %s (keys: %v); fix the code or list it in the known differences", name, tc.Result, got, keyErr)
			case !differs && listed:
				t.Errorf("%s: listed as a known difference (%s) but we agree with Wycheproof now (%s); remove the entry", name, d.why, got)
			case differs && d.got != got:
				t.Errorf("%s: known difference expects outcome %q, got %q (keys: %v)", name, d.got, got, keyErr)
			}
			seen[tc.TcID] = true
		}
	}
	for id := range known {
		if !seen[id] {
			t.Errorf("known difference tc%d names no vector of %s", id, file)
		}
	}
	if count == 0 {
		t.Fatalf("%s holds no vectors", file)
	}
	for alg, byOutcome := range outcomes {
		t.Logf("%s: %s vectors through verifyJWS: %v", file, alg, byOutcome)
	}
}

// wycheproofVerifier builds a verifier for a vector's key set. Its claim rules cannot be met by
// Wycheproof's payloads: the vectors are about keys and signatures.
func wycheproofVerifier(keySet json.RawMessage) ([]Key, *Verifier, error) {
	keys, err := ParseKeys(keySet)
	if err != nil {
		return nil, nil, err
	}
	v, err := NewVerifier(keys, Config{Audience: "https://shop.example.com"})
	return keys, v, err
}

// signatureOutcome is the outcome of verifyJWS, without the typ check, for jws; a payload that
// verifies must be the one the token carries.
func signatureOutcome(v *Verifier, jws string) string {
	var h Header
	payload, err := v.verifyJWS(jws, &h, false)
	if err != nil {
		return outcome(err)
	}
	parts := strings.Split(jws, ".")
	if want, err := base64.RawURLEncoding.DecodeString(parts[1]); err != nil || !bytes.Equal([]byte(payload), want) {
		return "wrong payload"
	}
	return "accepted"
}

func outcome(err error) string {
	if err == nil {
		return "accepted"
	}
	if r := Reason(err); r != "" {
		return r
	}
	return "foreign error: " + err.Error()
}

// TestWycheproofDifferencesDocumented checks that DIFFERENCES.md lists exactly the known
// differences, each with the outcome we give.
func TestWycheproofDifferencesDocumented(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join("testdata", "wycheproof", "DIFFERENCES.md"))
	if err != nil {
		t.Fatal(err)
	}
	tables := map[string]map[int]difference{
		"json_web_key_test.json":       knownKeyDifferences,
		"json_web_signature_test.json": knownSignatureDifferences,
	}
	entry := regexp.MustCompile(`(?m)^- (\S+) tc(\d+): .*, we: ([^.]+)\.`)
	listed := map[string]bool{}
	for _, m := range entry.FindAllStringSubmatch(string(doc), -1) {
		file, got := m[1], m[3]
		id, err := strconv.Atoi(m[2])
		if err != nil {
			t.Fatal(err)
		}
		key := fmt.Sprintf("%s tc%d", file, id)
		d, known := tables[file][id]
		switch {
		case listed[key]:
			t.Errorf("DIFFERENCES.md lists %s twice", key)
		case !known:
			t.Errorf("DIFFERENCES.md lists %s, which is not a known difference; remove it", key)
		case d.got != got:
			t.Errorf("DIFFERENCES.md gives %s the outcome %q; the test's table says %q", key, got, d.got)
		}
		listed[key] = true
	}
	for file, known := range tables {
		ids := make([]int, 0, len(known))
		for id := range known {
			ids = append(ids, id)
		}
		slices.Sort(ids)
		for _, id := range ids {
			if !listed[fmt.Sprintf("%s tc%d", file, id)] {
				t.Errorf("DIFFERENCES.md does not list %s tc%d (%s)", file, id, known[id].why)
			}
		}
	}
}
