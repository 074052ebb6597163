package token_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/magiclink-dev/magiclink/token"
)

// Project Wycheproof's JOSE vectors (testdata/wycheproof, Apache-2.0) run against ParseKeys,
// NewVerifier and Verify. Every vector where our verdict differs from Wycheproof's is listed
// below with the outcome we give and why; testdata/wycheproof/DIFFERENCES.md explains them.
//
// An outcome is "accepted", "keys refused" (ParseKeys or NewVerifier refused the vector's key
// set) or the token.Reason code of the rejection.

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
	whyTyp       = "no typ header: a link token must carry typ magic-link+jwt, checked before the signature"
	whyAlg       = "algorithm outside EdDSA, ES256, PS256, RS256, HS256: its keys are refused"
	whyCharset   = "a character outside base64url: refused before anything is decoded"
	whyROCA      = "no ROCA fingerprint check on RSA keys"
	whyTypAlg    = "no typ header; and its alg PS384 is not the key's PS256 (Wycheproof accepts it)"
	whyEmptyBody = "empty payload segment: a link token always has claims"
)

// knownKeyDifferences covers json_web_key_test.json.
var knownKeyDifferences = map[int]difference{
	2:  {"wrong_type", whyTyp},
	5:  {"wrong_type", whyTyp},
	7:  {"wrong_type", whyROCA},
	13: {"wrong_type", whyTyp},
	14: {"keys refused", whyAlg},
	15: {"keys refused", whyAlg},
}

// knownSignatureDifferences covers json_web_signature_test.json.
var knownSignatureDifferences = map[int]difference{
	1:   {"wrong_type", whyTyp},
	18:  {"wrong_type", whyTyp},
	33:  {"wrong_type", whyTyp},
	259: {"malformed", whyEmptyBody},
	260: {"wrong_type", whyTyp},
	261: {"wrong_type", whyTyp},
	262: {"wrong_type", whyTyp},
	263: {"wrong_type", whyTyp},
	264: {"keys refused", whyAlg},
	265: {"keys refused", whyAlg},
	266: {"keys refused", whyAlg},
	267: {"keys refused", whyAlg},
	268: {"keys refused", whyAlg},
	269: {"keys refused", whyAlg},
	270: {"keys refused", whyAlg},
	271: {"keys refused", whyAlg},
	272: {"malformed", whyEmptyBody},
	273: {"wrong_type", whyTyp},
	274: {"wrong_type", whyTyp},
	275: {"wrong_type", whyTyp},
	287: {"wrong_type", whyTyp},
	288: {"wrong_type", whyTyp},
	320: {"keys refused", whyAlg},
	321: {"keys refused", whyAlg},
	322: {"keys refused", whyAlg},
	323: {"keys refused", whyAlg},
	325: {"keys refused", whyAlg},
	326: {"keys refused", whyAlg},
	327: {"keys refused", whyAlg},
	328: {"keys refused", whyAlg},
	345: {"wrong_type", whyTyp},
	346: {"wrong_type", whyTypAlg},
	347: {"keys refused", whyAlg},
	348: {"wrong_type", whyTyp},
	349: {"wrong_type", whyTyp},
	350: {"wrong_type", whyTypAlg},
	351: {"keys refused", whyAlg},
	352: {"wrong_type", whyTyp},
	357: {"wrong_type", whyTyp},
	358: {"wrong_type", whyTyp},
	359: {"wrong_type", whyTyp},
	372: {"malformed", whyCharset},
	373: {"malformed", whyCharset},
	376: {"wrong_type", whyTyp},
	377: {"wrong_type", whyTyp},
	378: {"wrong_type", whyTyp},
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
	for _, g := range f.TestGroups {
		keySet := g.Public
		if len(keySet) == 0 {
			keySet = g.Private
		}
		v, keyErr := wycheproofVerifier(keySet)
		for _, tc := range g.Tests {
			count++
			got := "keys refused"
			if keyErr == nil {
				_, _, err := v.Verify(tc.JWS)
				got = outcome(err)
			}
			name := fmt.Sprintf("tc%d %s %s", tc.TcID, g.Comment, tc.Comment)
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
}

// wycheproofVerifier builds a verifier for a vector's key set. Its claim rules cannot be met by
// Wycheproof's payloads: the vectors are about keys and signatures.
func wycheproofVerifier(keySet json.RawMessage) (*token.Verifier, error) {
	keys, err := token.ParseKeys(keySet)
	if err != nil {
		return nil, err
	}
	return token.NewVerifier(keys, baseConfig())
}

func outcome(err error) string {
	if err == nil {
		return "accepted"
	}
	if r := token.Reason(err); r != "" {
		return r
	}
	return "foreign error: " + err.Error()
}

// TestWycheproofDifferencesDocumented checks that DIFFERENCES.md names every known difference.
func TestWycheproofDifferencesDocumented(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join("testdata", "wycheproof", "DIFFERENCES.md"))
	if err != nil {
		t.Fatal(err)
	}
	for file, known := range map[string]map[int]difference{
		"json_web_key_test.json":       knownKeyDifferences,
		"json_web_signature_test.json": knownSignatureDifferences,
	} {
		ids := make([]int, 0, len(known))
		for id := range known {
			ids = append(ids, id)
		}
		slices.Sort(ids)
		for _, id := range ids {
			if !strings.Contains(string(doc), fmt.Sprintf("%s tc%d:", file, id)) {
				t.Errorf("DIFFERENCES.md does not list %s tc%d (%s)", file, id, known[id].why)
			}
		}
	}
}
