package caddymodule

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/magiclink-dev/magiclink/caddymodule/store"
)

func TestParseRevokeRequest(t *testing.T) {
	for _, tc := range []struct {
		body  string
		kind  store.Kind
		value string
		err   string // a part of the error, when the body is refused
	}{
		{body: `{"jti":"link-1"}`, kind: store.KindLink, value: "link-1"},
		{body: " {\n\"sub\" : \"alice\" }\n", kind: store.KindSubject, value: "alice"},
		{body: `{"sub":"` + strings.Repeat("a", 255) + `"}`, kind: store.KindSubject, value: strings.Repeat("a", 255)},
		{body: ``, err: "must be a JSON object"},
		{body: `jti=x`, err: "must be a JSON object"},
		{body: `["jti","x"]`, err: "must be a JSON object"},
		{body: `{}`, err: `give "jti" (a link) or "sub" (a user)`},
		{body: `{"jti":""}`, err: "jti is empty"},
		{body: `{"jti":null}`, err: `"jti" must be a string`},
		{body: `{"sub":7}`, err: `"sub" must be a string`},
		{body: `{"jti":"a","sub":"b"}`, err: "not both"},
		{body: `{"jti":"a","jti":"b"}`, err: "once"},
		{body: `{"JTI":"a"}`, err: `unknown member "JTI"`},
		{body: `{"jti":"a","reason":"b"}`, err: `unknown member "reason"`},
		{body: `{"` + strings.Repeat("k", 1000) + `":"a"}`, err: "unknown member"},
		{body: `{"jti":"a"}]`, err: "more than one JSON value"},
		{body: `{"jti":"a"}{"sub":"b"}`, err: "more than one JSON value"},
		{body: `{"jti":"a"`, err: "must be a JSON object"},
		{body: `{"sub":"a\u0007b"}`, err: "control character"},
		{body: `{"sub":"` + strings.Repeat("a", 256) + `"}`, err: "longer than 255 bytes"},
	} {
		kind, value, err := parseRevokeRequest([]byte(tc.body))
		switch {
		case tc.err == "" && (err != nil || kind != tc.kind || value != tc.value):
			t.Errorf("%.40q: %q %q %v; want %q %q", tc.body, kind, value, err, tc.kind, tc.value)
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("%.40q: %q %q %v; want an error containing %q", tc.body, kind, value, err, tc.err)
		case err != nil && (strings.ContainsAny(err.Error(), "\r\n") || len(err.Error()) > 200):
			t.Errorf("%.40q: error %q is not one short line", tc.body, err)
		}
	}
}

// members returns the names of the members of the JSON object body, in order and repeated as
// they are, or ok false when body is not one JSON object.
func members(body []byte) (names []string, ok bool) {
	dec := json.NewDecoder(bytes.NewReader(body))
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(body, &obj); err != nil || obj == nil {
		return nil, false
	}
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return nil, false
	}
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return nil, false
		}
		names = append(names, t.(string))
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			return nil, false
		}
	}
	return names, true
}

func FuzzParseRevokeRequest(f *testing.F) {
	f.Add([]byte(`{"jti":"link-1"}`))
	f.Add([]byte(`{"sub":"alice"}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		kind, value, err := parseRevokeRequest(body)
		if err != nil {
			if kind != "" || value != "" {
				t.Errorf("refused with %v, yet returned %q %q", err, kind, value)
			}
			if msg := err.Error(); strings.ContainsAny(msg, "\r\n") || len(msg) > 300 {
				t.Errorf("error %q is not one short line", msg)
			}
			return
		}
		if kind != store.KindLink && kind != store.KindSubject {
			t.Fatalf("accepted kind %q", kind)
		}
		if value == "" || len(value) > maxSessionField || !utf8.ValidString(value) ||
			strings.ContainsFunc(value, func(r rune) bool { return r < 0x20 || r >= 0x7f && r <= 0x9f }) {
			t.Fatalf("accepted %s %q", kind, value)
		}
		names, ok := members(body)
		if !ok || len(names) != 1 || names[0] != string(kind) {
			t.Fatalf("accepted %.60q, whose members are %q (a JSON object: %t), as %s", body, names, ok, kind)
		}
		var obj map[string]string
		if err := json.Unmarshal(body, &obj); err != nil || obj[string(kind)] != value {
			t.Fatalf("accepted %.60q as %s %q; encoding/json reads %q (%v)", body, kind, value, obj, err)
		}
	})
}
