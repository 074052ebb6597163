package caddymodule

import (
	"bytes"
	"encoding/json"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/magiclink-dev/magiclink/internal/jsonstr"
	"github.com/magiclink-dev/magiclink/internal/ruletest"
)

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
			if got, want := v.appendJSON(nil), append(ruletest.EncodingJSON(t, v), '\n'); !bytes.Equal(got, want) {
				t.Errorf("appendJSON of %+v\n= %q\nwant %q (encoding/json)", v, got, want)
			}
		}
	}
}

// parseCreateRequestEncodingJSON is the reference parseCreateRequest is held to: the create body
// parser as it was on encoding/json, which lets the last of repeated member names win. It shares
// the field rules (parseExpiresIn, checkUserField, checkLinkFields), so the two differ only in how
// they read the JSON.
func parseCreateRequestEncodingJSON(body []byte, linkURL *url.URL, maxTTL time.Duration) (createRequest, *rejection) {
	var p createRequest
	if !utf8.Valid(body) {
		return p, bodyInvalid("it must be UTF-8")
	}
	var members map[string]json.RawMessage
	if err := json.Unmarshal(body, &members); err != nil {
		return p, bodyInvalid("it must be a JSON object")
	}
	if members == nil {
		return p, bodyInvalid("it must be a JSON object")
	}
	present := func(name string) bool {
		v, ok := members[name]
		return ok && string(v) != "null"
	}

	if !present("user_id") {
		return p, paramMissing("user_id")
	}
	if err := json.Unmarshal(members["user_id"], &p.UserID); err != nil {
		return p, paramInvalid("user_id", "it must be a string")
	}
	if p.UserID == "" {
		return p, paramMissing("user_id")
	}
	if r := checkUserField("user_id", p.UserID); r != nil {
		return p, r
	}

	if present("expires_in_seconds") {
		var r *rejection
		if p.ExpiresIn, r = parseExpiresIn(string(members["expires_in_seconds"]), maxTTL); r != nil {
			return p, r
		}
	}

	for _, f := range []struct {
		name string
		dst  *string
	}{{"email", &p.Email}, {"name", &p.Name}, {"path", &p.Path}, {"url", &p.URL}} {
		if !present(f.name) {
			continue
		}
		if err := json.Unmarshal(members[f.name], f.dst); err != nil {
			return p, paramInvalid(f.name, "it must be a string")
		}
	}
	if r := checkLinkFields(&p, linkURL); r != nil {
		return p, r
	}

	if present("once") {
		var once bool
		if err := json.Unmarshal(members["once"], &once); err != nil {
			return p, paramInvalid("once", "it must be true or false")
		}
		p.Once = &once
	}
	return p, nil
}

// repeatsName reports whether body is one valid JSON object that repeats a member name at its top
// level, names compared after unescaping.
func repeatsName(body []byte) bool {
	if !json.Valid(body) {
		return false
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return false
	}
	seen := make(map[string]bool)
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return false
		}
		name := tok.(string)
		if seen[name] {
			return true
		}
		seen[name] = true
		var value json.RawMessage
		if err := dec.Decode(&value); err != nil {
			return false
		}
	}
	return false
}

// createBodies are create bodies on which parseCreateRequest could part from encoding/json: every
// way of not being a JSON object, numbers, escapes, nulls, names under another case or escaped.
var createBodies = func() []string {
	bodies := []string{
		``, ` `, `null`, ` null `, `[]`, `"u"`, `1`, `true`, `{`, `}`, `{} {}`, `{}x`, "\xef\xbb\xbf{}", "\v{}",
		`{}`, " \t\r\n{ \t\r\n\"user_id\" \t\r\n: \t\r\n\"u\" \t\r\n} \t\r\n",
		`{"user_id":"u",}`, `{"user_id":"u"`, `{"user_id":'u'}`, `{user_id:"u"}`, `{"user_id":"u" "email":"e"}`,
		`{"user_id":null}`, `{"user_id":""}`, `{"user_id":5}`, `{"user_id":true}`, `{"user_id":["u"]}`, `{"user_id":{"u":1}}`,
		`{"User_Id":"u"}`, `{"user_id ":"u"}`, `{"\u0075ser_id":"u"}`, `{"user\u005fid":"u","once":true}`,
		`{"user_id":"u","unknown":{"x":[1,{"y":null}]},"extra":-1.5e3}`,
		`{"user_id":"u","user_id":"v"}`, `{"user_id":"u","\u0075ser_id":null}`, `{"user_id":"u","once":true,"once":false}`,
		`{"a":{"user_id":1,"user_id":2},"user_id":"u"}`,
		`{"user_id":"u","email":null,"name":null,"path":null,"url":null,"once":null,"expires_in_seconds":null}`,
		`{"user_id":"u","once":true}`, `{"user_id":"u","once":false}`, `{"user_id":"u","once":"true"}`,
		`{"user_id":"u","once":1}`, `{"user_id":"u","once":0}`, `{"user_id":"u","once":True}`, `{"user_id":"u","once":[]}`,
		`{"user_id":"u","email":1}`, `{"user_id":"u","name":false}`, `{"user_id":"u","path":{}}`, `{"user_id":"u","url":[]}`,
		`{"user_id":"u","path":"/a"}`, `{"user_id":"u","path":"/a/../b"}`, `{"user_id":"u","path":"\/a\/b"}`,
		`{"user_id":"u","url":"https://shop.example.com/b"}`, `{"user_id":"u","url":"https:\/\/shop.example.com\/b"}`,
		`{"user_id":"u","url":"https://evil.example/"}`, `{"user_id":"u","url":""}`, `{"user_id":"u","email":""}`,
		`{"user_id":"\u00e9\u00E9\"\\\/\b\f\n\r\t"}`, `{"user_id":"a\u0000"}`, `{"user_id":"a\u0085b"}`,
		`{"user_id":"\ud83c\udf89"}`, `{"user_id":"\ud800"}`, `{"user_id":"\udc00\ud800x"}`, `{"user_id":"\ud800\u0041"}`,
		`{"user_id":"u","name":"\ud800\ud800"}`, `{"user_id":"u","email":"\uDBFF\uDFFF"}`,
		`{"\ud800":"x","user_id":"u"}`, `{"\ud800":1,"\udbff":2,"user_id":"u"}`,
		"{\"user_id\":\"\xff\"}", "{\"user_id\":\"u\",\"\xff\":1}", "{\"user_id\":\"\xed\xa0\x80\"}",
		"{\"user_id\":\"a\tb\"}", "{\"user_id\":\"u\"}\x00",
		`{"user_id":"` + strings.Repeat("x", 255) + `"}`, `{"user_id":"` + strings.Repeat("x", 256) + `"}`,
		`{"user_id":"` + strings.Repeat(`\u00e9`, 127) + `x"}`, `{"user_id":"` + strings.Repeat(`\u00e9`, 128) + `"}`,
		`{"user_id":"u","pad":` + strings.Repeat("[", 10000) + strings.Repeat("]", 10000) + `}`,
		`{"user_id":"u","pad":` + strings.Repeat("[", 9999) + strings.Repeat("]", 9999) + `}`,
		`{"a":1,"b":2,"c":3,"d":4,"e":5,"f":6,"g":7,"h":8,"i":9,"j":10,"k":11,"l":12,"m":13,"n":14,"o":15,"p":16,"q":17,"user_id":"u"}`,
	}
	for _, n := range []string{
		`600`, `1`, `0`, `-0`, `-1`, `1.0`, `1.5`, `600.0`, `1e3`, `6e2`, `1E3`, `"60"`, `true`, `[]`, `{}`,
		`172800`, `172801`, `9223372036854775807`, `9223372036854775808`, `99999999999999999999`, `-9223372036854775808`,
		`01`, `+1`, `0x10`, `1 `, ` 1`,
	} {
		bodies = append(bodies, `{"user_id":"u","expires_in_seconds":`+n+`}`)
	}
	for _, s := range ruletest.JSONStrings {
		bodies = append(bodies, string(jsonstr.Append([]byte(`{"user_id":`), s))+`}`)
		for _, field := range []string{"email", "name", "path", "url"} {
			bodies = append(bodies, string(jsonstr.Append([]byte(`{"user_id":"u","`+field+`":`), s))+`}`)
		}
	}
	return bodies
}()

// FuzzParseCreateRequestDifferential holds parseCreateRequest to parseCreateRequestEncodingJSON:
// the same refusal, or the same request, for every body but those that repeat a member name, which
// parseCreateRequest refuses.
func FuzzParseCreateRequestDifferential(f *testing.F) {
	for _, body := range createBodies {
		f.Add([]byte(body))
	}
	linkURL, _ := url.Parse("https://shop.example.com/welcome")
	const maxTTL = 48 * time.Hour
	f.Fuzz(func(t *testing.T, body []byte) {
		got, gotRejected := parseCreateRequest(body, linkURL, maxTTL)
		if utf8.Valid(body) && repeatsName(body) {
			if want := bodyInvalid("its member names must not repeat"); !reflect.DeepEqual(gotRejected, want) {
				t.Fatalf("parseCreateRequest(%q) refuses %+v, want %+v", body, gotRejected, want)
			}
			return
		}
		want, wantRejected := parseCreateRequestEncodingJSON(body, linkURL, maxTTL)
		if !reflect.DeepEqual(gotRejected, wantRejected) {
			t.Fatalf("parseCreateRequest(%q) refuses %+v, want %+v (encoding/json)", body, gotRejected, wantRejected)
		}
		if gotRejected == nil && !reflect.DeepEqual(got, want) {
			t.Fatalf("parseCreateRequest(%q) = %+v, want %+v (encoding/json)", body, got, want)
		}
	})
}

// TestCheckRevokeBody checks the bodies a revoke call takes: none, null or a JSON object, with
// JSON's whitespace around them and no other.
func TestCheckRevokeBody(t *testing.T) {
	for _, tt := range []struct {
		body string
		ok   bool
	}{
		{"", true},
		{"null", true},
		{" \t\r\nnull\n", true},
		{"{}", true},
		{"\t{\"a\":[1,{\"b\":null}]}\r\n", true},
		{"\v{}", false},
		{"\vnull", false},
		{"{}\f", false},
		{"\u00a0{}", false},
		{"nul", false},
		{"[1]", false},
		{`"x"`, false},
		{"1", false},
		{"{", false},
		{"{}{}", false},
		{"{}x", false},
	} {
		if got := checkRevokeBody([]byte(tt.body)) == nil; got != tt.ok {
			t.Errorf("checkRevokeBody(%q) accepted = %v, want %v", tt.body, got, tt.ok)
		}
	}
}
