// Package ruletest holds the tables that show every caller of the one path
// rule (package pathscope), the one query rule (package queryparam) and the
// one link URL rule (token.ParseLinkURL) agrees with the others: token.Link
// and the Signer, the Verifier, the gateway and the CLI each run these tables
// in their own tests. It also holds the texts the one JSON string encoder
// (package jsonstr) is held to encoding/json with, and that reference
// encoding, EncodingJSON. It is imported by tests only.
package ruletest

import (
	"bytes"
	"encoding/json"
	"testing"
)

// Token is the token the link cases put in their links: what a real token
// looks like, three base64url segments.
const Token = "eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiJhbGljZSJ9.c2ln"

// A LinkCase is a page URL a link is made for.
type LinkCase struct {
	Name string
	// URL is the page the link opens.
	URL string
	// Link is what token.Link makes of URL with the parameter "token" set
	// to Token.
	Link string
	// Target is the path and query the gateway sends the browser on to once
	// the link is redeemed: the link's, without the token.
	Target string
}

// Links are the page URLs every caller of the query rule agrees on.
var Links = []LinkCase{
	{"no query", "https://x.example/p", "https://x.example/p?token=" + Token, "/p"},
	{"semicolon kept in a value", "https://x.example/p?a=1;b=2", "https://x.example/p?a=1;b=2&token=" + Token, "/p?a=1;b=2"},
	{"invalid escape kept", "https://x.example/p?a=%zz", "https://x.example/p?a=%zz&token=" + Token, "/p?a=%zz"},
	{"plus kept", "https://x.example/p?q=a+b", "https://x.example/p?q=a+b&token=" + Token, "/p?q=a+b"},
	{"empty values kept", "https://x.example/p?e=&f", "https://x.example/p?e=&f&token=" + Token, "/p?e=&f"},
	{"parameter twice", "https://x.example/p?token=old&x=1&token=older", "https://x.example/p?token=" + Token + "&x=1", "/p?x=1"},
	{"escaped parameter name", "https://x.example/p?%74oken=old&y=2", "https://x.example/p?token=" + Token + "&y=2", "/p?y=2"},
	{"fragment kept", "https://x.example/p?a=1#top", "https://x.example/p?a=1&token=" + Token + "#top", "/p?a=1"},
	{"order kept", "https://x.example/p?z=9&a=1&m=%41", "https://x.example/p?z=9&a=1&m=%41&token=" + Token, "/p?z=9&a=1&m=%41"},
}

// BadPages are page URLs no link may be made for, each with the words its
// refusal contains: token.ParseLinkURL, token.Link, magiclink sign --url and
// the issuing API's url all refuse them alike. Every page of Links is one a
// link may be made for.
var BadPages = []struct{ Name, URL, Reason string }{
	{"relative", "/welcome", "not an absolute http or https URL"},
	{"another scheme", "ftp://x.example/p", "not an absolute http or https URL"},
	{"no scheme", "x.example/p", "not an absolute http or https URL"},
	{"no host", "https:///p", "URL has no host"},
	{"user name", "https://alice@x.example/p", "must not carry a user name or password"},
	{"password", "https://alice:secret@x.example/p", "must not carry a user name or password"},
	{"space in the host", "https://exa mple.com/", "not a valid URL"},
}

// A PathCase is a path scope given to the signer.
type PathCase struct {
	Scope string
	// Valid reports whether the scope can be minted, verified and matched.
	Valid bool
}

// Paths are the scopes every caller of the path rule agrees on.
var Paths = []PathCase{
	{"/", true},
	{"/survey/42", true},
	{"/survey/42/", true},
	{"/a.b/..c/d.", true},
	{"/café/menu", true},
	{"/a b", true},
	{"/a\u2025b", true},
	{"survey", false},
	{"//survey", false},
	{"/survey//42", false},
	{"/survey/../admin", false},
	{"/survey/./42", false},
	{"/survey/...", false},
	{"/a/..;x", false},
	{"/a;b", false},
	{"/a?b", false},
	{"/a#b", false},
	{`/a\b`, false},
	{"/a%2Fb", false},
	{"/a/\uFF0E\uFF0E", false},
	{"/a/\u2025", false},
	{"/a/\u2026", false},
	{"/a/\uFE19", false},
	{"/a/\uFE30", false},
	{"/a/..\uFF0Fb", false},
	{"/a/\uFF3C", false},
	{"/a/\uFE68", false},
	{"/a/\uFF05", false},
	{"/a/\xff", false},
	{"/a/\x00", false},
	{"/a/\u0085", false},
}

// Repeated are links that carry the token parameter more than once, in
// some spelling; the gateway rejects them and the CLI refuses to pick one.
var Repeated = []string{
	"https://x.example/p?token=" + Token + "&token=" + Token,
	"https://x.example/p?token=" + Token + "&tok%65n=" + Token,
	"https://x.example/p?token=" + Token + "&token",
}

// JSONStrings are texts whose JSON encoding takes every escape encoding/json has: jsonstr.Append
// and the encoders that use it are held to encoding/json with them.
var JSONStrings = []string{
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

// EncodingJSON is v as encoding/json encodes it with HTML escaping off, the
// way the project's own JSON encoders must write it, without the newline
// json.Encoder adds.
func EncodingJSON(t testing.TB, v any) []byte {
	t.Helper()
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		t.Fatal(err)
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
}
