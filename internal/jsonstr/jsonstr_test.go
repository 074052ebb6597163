package jsonstr_test

import (
	"bytes"
	"testing"

	"github.com/magiclink-dev/magiclink/internal/jsonstr"
	"github.com/magiclink-dev/magiclink/internal/ruletest"
)

// TestAppend checks Append against encoding/json on texts that take every escape.
func TestAppend(t *testing.T) {
	for _, s := range ruletest.JSONStrings {
		if got, want := jsonstr.Append(nil, s), ruletest.EncodingJSON(t, s); !bytes.Equal(got, want) {
			t.Errorf("Append(%q) = %q, want %q (encoding/json)", s, got, want)
		}
	}
}

// FuzzAppend checks Append against encoding/json on any text.
func FuzzAppend(f *testing.F) {
	for _, s := range ruletest.JSONStrings {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got := jsonstr.Append([]byte("x"), s)
		want := append([]byte("x"), ruletest.EncodingJSON(t, s)...)
		if !bytes.Equal(got, want) {
			t.Errorf("Append(%q) = %q, want %q (encoding/json)", s, got[1:], want[1:])
		}
	})
}
