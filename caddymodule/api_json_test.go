package caddymodule

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/magiclink-dev/magiclink/internal/ruletest"
)

// encodingJSON is v as writeAPIJSON encodes it, with encoding/json.
func encodingJSON(t testing.TB, v any) []byte {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestSignInTokenJSON checks that the API's sign-in token answers are byte for byte what
// encoding/json makes of them, for hostile texts in every field.
func TestSignInTokenJSON(t *testing.T) {
	for _, s := range ruletest.JSONStrings {
		for _, v := range []signInToken{
			{Object: "sign_in_token", ID: s, Status: "pending", UserID: s, Token: s, URL: s, CreatedAt: 1796174674185, UpdatedAt: -1},
			{Object: s, ID: "id", Status: s, UserID: "u", CreatedAt: 0, UpdatedAt: 9223372036854775807},
			{Object: "sign_in_token", ID: "id", Status: "accepted", UserID: s, Token: "", URL: s, CreatedAt: -9223372036854775808},
			{Object: "sign_in_token", ID: "id", Status: "revoked", UserID: s, Token: s, URL: ""},
		} {
			if got, want := v.appendJSON(nil), encodingJSON(t, v); !bytes.Equal(got, want) {
				t.Errorf("appendJSON of %+v\n= %q\nwant %q (encoding/json)", v, got, want)
			}
		}
	}
}
