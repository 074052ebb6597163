package pathscope

import (
	"net/url"
	"strings"
	"testing"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

func TestContains(t *testing.T) {
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
		{"/survey/42/a%E2%80%A5b", "/survey/42", true},

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

		// Outside: double and triple encodings a backend might decode again.
		{"/survey/42/%252e%252e/admin", "/survey/42", false},
		{"/survey/42/a%252Fb", "/survey/42", false},
		{"/survey/42/a%255cb", "/survey/42", false},
		{"/survey/42/%25252e%25252e/admin", "/survey/42", false},
		{"/survey/42/100%25", "/survey/42", false},

		// Outside: segments a backend may trim or normalize into a dot-segment, control
		// characters and invalid UTF-8.
		{"/survey/42/...", "/survey/42", false},
		{"/survey/42/..%20/admin", "/survey/42", false},
		{"/survey/42/.%20./admin", "/survey/42", false},
		{"/survey/42/..%00/admin", "/survey/42", false},
		{"/survey/42/..%09/admin", "/survey/42", false},
		{"/survey/42/q%0Ax", "/survey/42", false},
		{"/survey/42/q%C2%85x", "/survey/42", false},
		{"/survey/42/%C0%AE%C0%AE/admin", "/survey/42", false},
		{"/survey/42/%EF%BC%8E%EF%BC%8E/admin", "/survey/42", false},
		{"/survey/42/%E2%80%A4%E2%80%A4/admin", "/survey/42", false},
		{"/survey/42/%EF%B9%92/admin", "/survey/42", false},
		{"/survey/42/%E2%80%A5/admin", "/survey/42", false},        // U+2025 two dot leader
		{"/survey/42/%EF%B8%B0/admin", "/survey/42", false},        // U+FE30
		{"/survey/42/%E2%80%A6/admin", "/survey/42", false},        // U+2026 ellipsis
		{"/survey/42/%EF%B8%99/admin", "/survey/42", false},        // U+FE19
		{"/survey/42/..%EF%BC%8Fadmin", "/survey/42", false},       // U+FF0F full-width solidus
		{"/survey/42/..%EF%BC%BCadmin", "/survey/42", false},       // U+FF3C full-width reverse solidus
		{"/survey/42/..%EF%B9%A8admin", "/survey/42", false},       // U+FE68 small reverse solidus
		{"/survey/42/%EF%BC%852e%EF%BC%852e", "/survey/42", false}, // U+FF05 full-width percent
		{"/survey/42/%EF%B9%AA2e", "/survey/42", false},            // U+FE6A small percent
		{"/survey/42/\u2025/admin", "/survey/42", false},

		// Outside: invalid percent-encoding.
		{"/survey/42/%zz", "/survey/42", false},
		{"/survey/42/%2", "/survey/42", false},
		{"/survey/42/%", "/survey/42", false},
	}
	for _, tt := range tests {
		if got := Contains(tt.scope, tt.path); got != tt.want {
			t.Errorf("Contains(%q, %q) = %v, want %v", tt.scope, tt.path, got, tt.want)
		}
	}
}

// TestContainsEscapedPath feeds request targets through url.ParseRequestURI and URL.EscapedPath,
// the way the gateway does.
func TestContainsEscapedPath(t *testing.T) {
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
		{"/survey/42/%E2%80%A5/admin", false},
		{"//survey/42", false},
	}
	for _, tt := range tests {
		u, err := url.ParseRequestURI(tt.target)
		if err != nil {
			t.Fatalf("ParseRequestURI(%q): %v", tt.target, err)
		}
		if got := Contains("/survey/42", u.EscapedPath()); got != tt.want {
			t.Errorf("Contains of the EscapedPath of %q = %v, want %v", tt.target, got, tt.want)
		}
	}
}

func TestCheck(t *testing.T) {
	tests := []struct {
		scope string
		want  bool
	}{
		{"", true},
		{"/", true},
		{"/survey/42", true},
		{"/survey/42/", true},
		{"/a.b/..c/d.", true},
		{"/café", true},
		{"/a\u2025b", true},
		{"/" + strings.Repeat("a", MaxLength-1), true},
		{"/" + strings.Repeat("a", MaxLength), false},
		{"/a/...", false},
		{"/a/\uFF0E\uFF0E", false},
		{"/a/\u2025", false},
		{"/a/\u2026", false},
		{"/a/\uFE19", false},
		{"/a/\uFE30", false},
		{"/a/..\uFF0Fx", false},
		{"/a/\uFF3C", false},
		{"/a/\uFE68", false},
		{"/a/\uFF05", false},
		{"/a/\uFE6A", false},
		{"survey/42", false},
		{" /survey", false},
		{"//survey", false},
		{"/survey//42", false},
		{"/survey/../admin", false},
		{"/survey/..", false},
		{"/survey/./42", false},
		{"/.", false},
		{"/a/..;x", false},
		{"/..;x/admin", false},
		{"/a;b", false},
		{"/a?b", false},
		{"/a#b", false},
		{`/survey\42`, false},
		{"/survey%2F42", false},
		{"/survey/4%32", false},
		{"/survey/42\n", false},
		{"/survey/\x00", false},
		{"/survey/\x7f", false},
		{"/survey/\u0085", false},
		{"/survey/\xff", false},
	}
	for _, tt := range tests {
		if err := Check(tt.scope); (err == nil) != tt.want {
			t.Errorf("Check(%q) = %v, want valid %v", tt.scope, err, tt.want)
		}
	}
}

// TestValidScopeIsContained holds Check and Contains to each other: a valid scope contains
// itself, escaped, and its own subpaths.
func TestValidScopeIsContained(t *testing.T) {
	for _, scope := range []string{"/", "/survey/42", "/survey/42/", "/café", "/a b/c", "/a\u2025b"} {
		if err := Check(scope); err != nil {
			t.Fatalf("Check(%q) = %v", scope, err)
		}
		escaped := (&url.URL{Path: scope}).EscapedPath()
		if !Contains(scope, escaped) || !Contains(scope, strings.TrimRight(escaped, "/")+"/q") {
			t.Errorf("valid scope %q does not contain itself (%q) or its subpaths", scope, escaped)
		}
	}
}

// TestLookAlikesAreComplete checks isDot and isSeparatorLike against Unicode's NFKC tables: they
// hold exactly the code points that normalize into nothing but ".", "/", "\" or "%".
func TestLookAlikesAreComplete(t *testing.T) {
	for r := rune(0x80); r <= utf8.MaxRune; r++ {
		if !utf8.ValidRune(r) {
			continue
		}
		n := norm.NFKC.String(string(r))
		dots := n != "" && strings.Trim(n, ".") == ""
		seps := n != "" && strings.Trim(n, `/\%`) == ""
		if isDot(r) != dots {
			t.Errorf("isDot(%U) = %v, but NFKC gives %q", r, isDot(r), n)
		}
		if isSeparatorLike(r) != seps {
			t.Errorf("isSeparatorLike(%U) = %v, but NFKC gives %q", r, isSeparatorLike(r), n)
		}
	}
}

// FuzzContains's seeds are in testdata/fuzz/FuzzContains.
func FuzzContains(f *testing.F) {
	f.Fuzz(func(t *testing.T, path, scope string) {
		if !Contains(scope, path) {
			return
		}
		scope = strings.TrimRight(scope, "/")
		if scope == "" {
			return
		}
		decoded, err := url.PathUnescape(path)
		if err != nil {
			t.Fatalf("Contains(%q, %q) holds but the path does not decode: %v", scope, path, err)
		}
		if decoded != scope && !strings.HasPrefix(decoded, scope+"/") {
			t.Fatalf("Contains(%q, %q) holds but %q is not within it by segments", scope, path, decoded)
		}
		if !clean(decoded) || strings.ContainsAny(decoded, `\%`) {
			t.Fatalf("Contains(%q, %q) holds for a path with a dot-segment, look-alike, %% or backslash", scope, path)
		}
	})
}
