package jsonobj

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
)

// twoPassMembers is the reference Members is held to: encoding/json's Valid, then a scan of the
// valid object for its members (how Members worked before it validated and scanned in one pass).
func twoPassMembers(data string, fn func(name, value string) error) error {
	if !json.Valid([]byte(data)) {
		return errors.New("not JSON")
	}
	i := skipSpace(data, 0)
	if data[i] != '{' {
		return errors.New("not a JSON object")
	}
	var names []string
	for i = skipSpace(data, i+1); data[i] != '}'; i = skipSpace(data, i) {
		if data[i] == ',' {
			i = skipSpace(data, i+1)
		}
		end := validValueEnd(data, i)
		name, err := String(data[i:end])
		if err != nil {
			return err
		}
		if slices.Contains(names, name) {
			return fmt.Errorf("duplicate member %q", truncate(name))
		}
		names = append(names, name)
		i = skipSpace(data, skipSpace(data, end)+1) // past the colon
		end = validValueEnd(data, i)
		if err := fn(name, data[i:end]); err != nil {
			return err
		}
		i = end
	}
	return nil
}

// validValueEnd returns the index just past the value starting at data[i], in data already known
// to be valid JSON.
func validValueEnd(data string, i int) int {
	depth := 0
	for ; i < len(data); i++ {
		switch data[i] {
		case '"':
			for i++; data[i] != '"'; i++ {
				if data[i] == '\\' {
					i++
				}
			}
			if depth == 0 {
				return i + 1
			}
		case '{', '[':
			depth++
		case '}', ']':
			depth--
			if depth == 0 {
				return i + 1
			}
			if depth < 0 {
				return i
			}
		case ',', ' ', '\t', '\n', '\r', ':':
			if depth == 0 {
				return i
			}
		}
	}
	return i
}

// memberVerdict runs an implementation of Members on data and describes what it did: the members it
// passed on, then its error. The callback refuses a member named "stop", so that the order of
// its calls and of the checks shows.
func memberVerdict(impl func(string, func(string, string) error) error, data string) string {
	var b strings.Builder
	err := impl(data, func(name, value string) error {
		fmt.Fprintf(&b, "%q=%q;", name, value)
		if name == "stop" {
			return errors.New("stopped")
		}
		return nil
	})
	if err != nil {
		return b.String() + " error: " + err.Error()
	}
	return b.String() + " ok"
}

// checkMembers fails t when Members and twoPassMembers differ on data.
func checkMembers(t *testing.T, data string) {
	t.Helper()
	got, want := memberVerdict(Members, data), memberVerdict(twoPassMembers, data)
	if got != want {
		t.Fatalf("Members(%q):\n got %s\nwant %s", data, got, want)
	}
}

// hostileJSON are inputs for Members, with whether it accepts them when its callback accepts
// every member: every way of not being one valid JSON object, and duplicates at the top level.
var hostileJSON = []struct {
	data string
	ok   bool
}{
	{`{}`, true},
	{" \t\r\n{ \t\r\n} \t\r\n", true},
	{`{"a":1,"b":"x","c":true,"d":false,"e":null,"f":[],"g":{},"h":-0.5e+3}`, true},
	{`{"":1}`, true},
	{`{"a":[1,[2,{"b":[]}]],"c":{"d":{"e":[{}]}}}`, true},
	{`{"a":{"b":1,"b":2}}`, true},
	{`{"a":1,"b":{"a":2}}`, true},
	{`{"a":"\u00e9\u00E9\n\/\b\f\r\t\"\\"}`, true},
	{`{"a":"\ud800"}`, true},
	{`{"\ud800":1}`, true},
	{"{\"a\":\"\x7f\"}", true},
	{"{\"a\":\"\xff\xfe\"}", true},
	{"{\"a\":[\"\xc0\xaf\"]}", true},
	{`{"a":0,"b":-0,"c":0.0,"d":1E5,"e":1e-5,"f":-12.34E+56,"g":123456789012345678901234567890}`, true},
	{`{"stop":1,"a":}`, false},
	{`{"a":1,"stop":2,"a":3}`, false},
	{`{"a":1,"stop":2,"b":3}`, true},

	{``, false},
	{` `, false},
	{`{`, false},
	{`}`, false},
	{`{}}`, false},
	{`{} {}`, false},
	{`{}x`, false},
	{`{},`, false},
	{"{}\x00", false},
	{"\x00{}", false},
	{"\xef\xbb\xbf{}", false},
	{"\v{}", false},
	{"{\f}", false},
	{"{\u00a0}", false},
	{`[]`, false},
	{`[{}]`, false},
	{`1`, false},
	{`"x"`, false},
	{`null`, false},
	{`true`, false},

	{`{"a":1,}`, false},
	{`{,"a":1}`, false},
	{`{"a":1,,"b":2}`, false},
	{`{"a" 1}`, false},
	{`{"a"::1}`, false},
	{`{"a":}`, false},
	{`{"a"}`, false},
	{`{"a":1 "b":2}`, false},
	{`{a:1}`, false},
	{`{'a':1}`, false},
	{`{1:1}`, false},
	{`{null:1}`, false},
	{`{"a":1]`, false},
	{`{"a":1`, false},
	{`{"a":1,`, false},
	{`{"a":1,"b"`, false},

	{`{"a":01}`, false},
	{`{"a":00}`, false},
	{`{"a":-01}`, false},
	{`{"a":1.}`, false},
	{`{"a":1.e5}`, false},
	{`{"a":.5}`, false},
	{`{"a":-}`, false},
	{`{"a":-a}`, false},
	{`{"a":--1}`, false},
	{`{"a":1e}`, false},
	{`{"a":1e+}`, false},
	{`{"a":1E-}`, false},
	{`{"a":1e5.5}`, false},
	{`{"a":+1}`, false},
	{`{"a":0x1}`, false},
	{`{"a":NaN}`, false},
	{`{"a":Infinity}`, false},
	{`{"a":-Infinity}`, false},
	{`{"a":1 2}`, false},
	{`{"a":-}`, false},
	{`{"a":1-}`, false},

	{`{"a":tru}`, false},
	{`{"a":truex}`, false},
	{`{"a":True}`, false},
	{`{"a":nul}`, false},
	{`{"a":nulll}`, false},
	{`{"a":fals}`, false},
	{`{"a":undefined}`, false},

	{`{"a":"\x"}`, false},
	{`{"a":"\'"}`, false},
	{`{"a":"\U0041"}`, false},
	{`{"a":"\u12"}`, false},
	{`{"a":"\u12G4"}`, false},
	{`{"a":"\u"}`, false},
	{`{"a":"\`, false},
	{`{"a":"\"}`, false},
	{`{"a":"abc}`, false},
	{`{"a":"abc`, false},
	{"{\"a\":\"a\tb\"}", false},
	{"{\"a\":\"a\nb\"}", false},
	{"{\"a\":\"\x00\"}", false},
	{"{\"a\":\"\x1f\"}", false},
	{"{\"a\\tb\":1}", true},
	{"{\"a\tb\":1}", false},
	{"{\"\xff\":1}", false},
	{"{\"a\":1,\"\xed\xa0\x80\":2}", false},

	{`{"a":1,"a":2}`, false},
	{`{"a":1,"\u0061":2}`, false},
	{`{"\/":1,"/":2}`, false},
	{`{"a":1,"b":2,"c":3,"d":4,"e":5,"f":6,"g":7,"h":8,"i":9,"j":10,"k":11,"l":12,"m":13,"n":14,"o":15,"p":16,"q":17,"r":18}`, true},
	{`{"a":1,"b":2,"c":3,"d":4,"e":5,"f":6,"g":7,"h":8,"i":9,"j":10,"k":11,"l":12,"m":13,"n":14,"o":15,"p":16,"q":17,"a":18}`, false},

	{`{"a":[1,]}`, false},
	{`{"a":[,1]}`, false},
	{`{"a":[1 2]}`, false},
	{`{"a":[}`, false},
	{`{"a":{]}`, false},
	{`{"a":{"b"}}`, false},
	{`{"a":{"b":1,}}`, false},
	{`{"a":[[]}`, false},
	{`{"a":[]]}`, false},
	{`{"a":{}}}`, false},
}

func TestMembersHostileJSON(t *testing.T) {
	for _, tt := range hostileJSON {
		checkMembers(t, tt.data)
		if err := Members(tt.data, func(string, string) error { return nil }); (err == nil) != tt.ok {
			t.Errorf("Members(%q) = %v, want accepted %v", tt.data, err, tt.ok)
		}
	}
}

// TestMembersDepth checks the nesting limit that Members shares with encoding/json: the top-level
// object and 9,999 arrays are accepted, one array more is not.
func TestMembersDepth(t *testing.T) {
	for _, arrays := range []int{maxDepth - 1, maxDepth} {
		data := `{"a":` + strings.Repeat("[", arrays) + strings.Repeat("]", arrays) + `}`
		checkMembers(t, data)
		err := Members(data, func(string, string) error { return nil })
		if want := arrays < maxDepth; (err == nil) != want {
			t.Errorf("%d nested arrays: %v, want accepted %v", arrays, err, want)
		}
	}
}

// FuzzMembers holds Members to twoPassMembers on arbitrary input: the same members passed on in
// the same order, and the same error.
func FuzzMembers(f *testing.F) {
	for _, tt := range hostileJSON {
		f.Add(tt.data)
	}
	f.Fuzz(checkMembers)
}

// TestMembersDuplicate checks that the error of a repeated name, and only that one, wraps
// ErrDuplicate: a repeat in a nested object is no duplicate, and the whole object is validated
// before names are compared.
func TestMembersDuplicate(t *testing.T) {
	for _, tt := range []struct {
		data string
		dup  bool
	}{
		{`{"a":1,"a":2}`, true},
		{`{"a":1,"\u0061":2}`, true},
		{`{"\ud800":1,"\udbff":2}`, true},
		{`{"a":{"b":1,"b":2}}`, false},
		{`{"a":1,"b":{"a":2}}`, false},
		{`{"a":1,"a":2`, false},
		{`{"a":1,"a":2,}`, false},
		{`[{"a":1,"a":2}]`, false},
	} {
		err := Members(tt.data, func(string, string) error { return nil })
		if errors.Is(err, ErrDuplicate) != tt.dup {
			t.Errorf("Members(%q) = %v, want a duplicate error %v", tt.data, err, tt.dup)
		}
	}
}

func TestBool(t *testing.T) {
	for _, tt := range []struct {
		raw      string
		want, ok bool
	}{
		{"true", true, true},
		{"false", false, true},
		{"", false, false},
		{"null", false, false},
		{"True", false, false},
		{`"true"`, false, false},
		{"1", false, false},
		{" true", false, false},
	} {
		got, err := Bool(tt.raw)
		if got != tt.want || (err == nil) != tt.ok {
			t.Errorf("Bool(%q) = %v, %v; want %v, ok %v", tt.raw, got, err, tt.want, tt.ok)
		}
	}
}
