package caddymodule

import (
	"bytes"
	"encoding/json"
	"testing"
)

// hostileStrings are texts whose JSON encoding takes every escape encoding/json has.
var hostileStrings = []string{
	"",
	"plain user_42",
	`quote " and backslash \ and slash /`,
	"<script>alert('x')</script> & more",
	"\x00\x01\x07\x08\x09\x0a\x0b\x0c\x0d\x1b\x1f\x20\x7f",
	"line\u2028separator\u2029paragraph",
	"\u2027\u202a\u00a0\ufeff\ufffd",
	"café 日本 🎉",
	"invalid \xff\xfe UTF-8 \xc3",
	"\xe2\x80\xa8 and a cut \xe2\x80",
	"\xed\xa0\x80 surrogate",
	"https://shop.example.com/welcome?a=<b>&c=\"d\"#\\e",
}

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
	for _, s := range hostileStrings {
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

// FuzzAppendJSONString checks appendJSONString against encoding/json on any text.
func FuzzAppendJSONString(f *testing.F) {
	for _, s := range hostileStrings {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got := appendJSONString([]byte("x"), s)
		want := append([]byte("x"), bytes.TrimSuffix(encodingJSON(t, s), []byte("\n"))...)
		if !bytes.Equal(got, want) {
			t.Errorf("appendJSONString(%q) = %q, want %q (encoding/json)", s, got[1:], want[1:])
		}
	})
}
