package caddymodule

import (
	"net/url"
	"strings"
	"testing"
)

func TestInScope(t *testing.T) {
	tests := []struct {
		path, scope string
		want        bool
	}{
		// Inside.
		{"/survey/42", "/survey/42", true},
		{"/survey/42/", "/survey/42", true},
		{"/survey/42/q1", "/survey/42", true},
		{"/survey/42/q1/", "/survey/42", true},
		{"/survey/42/q%201", "/survey/42", true},
		{"/survey/42/q1", "/survey/42/", true},
		{"/survey/42", "/survey/42/", true},
		{"/survey/42/a.b/.c/..d/q.", "/survey/42", true},
		{"/survey/42/file%2ehtml", "/survey/42", true},
		{"/survey/4%32", "/survey/42", true},
		{"/survey/%34%32/q", "/survey/42", true},
		{"/caf%C3%A9/x", "/café", true},
		{"/survey/42//q", "/survey/42", true},

		// The whole site holds every path.
		{"/", "", true},
		{"/anything/../at/all", "", true},
		{"/x", "/", true},
		{"*", "/", true},

		// Outside: other paths.
		{"/survey/420", "/survey/42", false},
		{"/survey/42x/q", "/survey/42", false},
		{"/SURVEY/42", "/survey/42", false},
		{"/survey/4", "/survey/42", false},
		{"/survey", "/survey/42", false},
		{"/", "/survey/42", false},
		{"", "/survey/42", false},
		{"/survey//42", "/survey/42", false},
		{"//survey/42", "/survey/42", false},
		{"/survey/42;x/q", "/survey/42", false},
		{"/survey/42%00", "/survey/42", false},
		{"/survey/42%20", "/survey/42", false},

		// Outside: not an absolute path.
		{"survey/42", "/survey/42", false},
		{"*", "/survey/42", false},
		{"http://shop.example/survey/42", "/survey/42", false},

		// Outside: dot-segments, plain or encoded, anywhere.
		{"/survey/42/../../admin", "/survey/42", false},
		{"/survey/42/..", "/survey/42", false},
		{"/survey/42/.", "/survey/42", false},
		{"/survey/42/./q", "/survey/42", false},
		{"/./survey/42", "/survey/42", false},
		{"/survey/42/%2e%2e/admin", "/survey/42", false},
		{"/survey/42/%2E%2E/admin", "/survey/42", false},
		{"/survey/42/.%2e/admin", "/survey/42", false},
		{"/survey/42/%2E./admin", "/survey/42", false},
		{"/survey/42/%2e/q", "/survey/42", false},
		{"/survey/42/..;/..;/admin", "/survey/42", false},
		{"/survey/42/.;x/q", "/survey/42", false},

		// Outside: encoded slashes and backslashes, in any case.
		{"/survey/42%2F..%2F..%2Fadmin", "/survey/42", false},
		{"/survey/42%2f..%2f..%2fadmin", "/survey/42", false},
		{"/survey/42/a%2Fb", "/survey/42", false},
		{"/survey/42/a%5Cb", "/survey/42", false},
		{"/survey/42/a%5cb", "/survey/42", false},
		{`/survey/42/a\b`, "/survey/42", false},
		{`/survey/42\..\..\admin`, "/survey/42", false},

		// Outside: double encodings a backend might decode twice.
		{"/survey/42/%252e%252e/admin", "/survey/42", false},
		{"/survey/42/a%252Fb", "/survey/42", false},
		{"/survey/42/a%255cb", "/survey/42", false},

		// Outside: segments a backend may trim or normalize into a dot-segment, control
		// characters and invalid UTF-8.
		{"/survey/42/...", "/survey/42", false},
		{"/survey/42/..%20/admin", "/survey/42", false},
		{"/survey/42/.%20./admin", "/survey/42", false},
		{"/survey/42/..%00/admin", "/survey/42", false},
		{"/survey/42/..%09/admin", "/survey/42", false},
		{"/survey/42/q%0Ax", "/survey/42", false},
		{"/survey/42/%C0%AE%C0%AE/admin", "/survey/42", false},
		{"/survey/42/%EF%BC%8E%EF%BC%8E/admin", "/survey/42", false},
		{"/survey/42/%E2%80%A4%E2%80%A4/admin", "/survey/42", false},
		{"/survey/42/%EF%B9%92/admin", "/survey/42", false},

		// Outside: invalid percent-encoding.
		{"/survey/42/%zz", "/survey/42", false},
		{"/survey/42/%2", "/survey/42", false},
		{"/survey/42/%", "/survey/42", false},
	}
	for _, tt := range tests {
		if got := inScope(tt.path, tt.scope); got != tt.want {
			t.Errorf("inScope(%q, %q) = %v, want %v", tt.path, tt.scope, got, tt.want)
		}
	}
}

// TestInScopeEscapedPath feeds request targets through url.ParseRequestURI and URL.EscapedPath,
// the way the handler does.
func TestInScopeEscapedPath(t *testing.T) {
	tests := []struct {
		target string
		want   bool
	}{
		{"/survey/42/q1?x=1", true},
		{"/survey/42/q%201", true},
		{"/survey/42/%2e%2e/admin", false},
		{"/survey/42%2F..%2F..%2Fadmin", false},
		{"/survey/42/../../admin", false},
		{"/survey/42/%5C..%5C..%5Cadmin", false},
		{"//survey/42", false},
	}
	for _, tt := range tests {
		u, err := url.ParseRequestURI(tt.target)
		if err != nil {
			t.Fatalf("ParseRequestURI(%q): %v", tt.target, err)
		}
		if got := inScope(u.EscapedPath(), "/survey/42"); got != tt.want {
			t.Errorf("inScope(EscapedPath of %q) = %v, want %v", tt.target, got, tt.want)
		}
	}
}

func TestValidScope(t *testing.T) {
	tests := []struct {
		scope string
		want  bool
	}{
		{"", true},
		{"/", true},
		{"/survey/42", true},
		{"/survey/42/", true},
		{"/a.b/..c/d.", true},
		{"/a/...", false},
		{"/a/\uFF0E\uFF0E", false},
		{"/café", true},
		{"/" + strings.Repeat("a", maxScope-1), true},
		{"/" + strings.Repeat("a", maxScope), false},
		{"survey/42", false},
		{" /survey", false},
		{"//survey", false},
		{"/survey//42", false},
		{"/survey/../admin", false},
		{"/survey/..", false},
		{"/survey/./42", false},
		{"/.", false},
		{"/..;x/admin", false},
		{`/survey\42`, false},
		{"/survey%2F42", false},
		{"/survey/4%32", false},
		{"/survey/42\n", false},
		{"/survey/\x00", false},
		{"/survey/\x7f", false},
	}
	for _, tt := range tests {
		if got := validScope(tt.scope); got != tt.want {
			t.Errorf("validScope(%q) = %v, want %v", tt.scope, got, tt.want)
		}
	}
}

// FuzzInScope's seeds are in testdata/fuzz/FuzzInScope.
func FuzzInScope(f *testing.F) {
	f.Fuzz(func(t *testing.T, path, scope string) {
		if !inScope(path, scope) {
			return
		}
		scope = strings.TrimRight(scope, "/")
		if scope == "" {
			return
		}
		decoded, err := url.PathUnescape(path)
		if err != nil {
			t.Fatalf("inScope(%q, %q) holds but the path does not decode: %v", path, scope, err)
		}
		if decoded != scope && !strings.HasPrefix(decoded, scope+"/") {
			t.Fatalf("inScope(%q, %q) holds but %q is not within it by segments", path, scope, decoded)
		}
		if hasDotSegment(decoded) || strings.ContainsRune(decoded, '\\') {
			t.Fatalf("inScope(%q, %q) holds for a path with a dot-segment or backslash", path, scope)
		}
	})
}
