package caddymodule

import (
	"net/url"
	"strings"
	"testing"

	"github.com/magiclink-dev/magiclink/internal/queryparam"
)

// checkSameOrigin fails unless location resolves, against the site and as a whole URL after it, to
// shop.example.
func checkSameOrigin(t *testing.T, location string) {
	t.Helper()
	if len(location) < 1 || location[0] != '/' || len(location) > 1 && (location[1] == '/' || location[1] == '\\') {
		t.Fatalf("location %q does not start with exactly one slash", location)
	}
	if strings.ContainsAny(location, "\r\n\t #") {
		t.Fatalf("location %q holds a control character, space or '#'", location)
	}
	base, err := url.Parse("https://shop.example/some/page")
	if err != nil {
		t.Fatal(err)
	}
	ref, err := url.Parse(location)
	if err != nil {
		t.Fatalf("location %q does not parse: %v", location, err)
	}
	if got := base.ResolveReference(ref); got.Host != "shop.example" || got.Scheme != "https" {
		t.Fatalf("location %q resolves to %s, off the site", location, got)
	}
	joined, err := url.Parse("https://shop.example" + location)
	if err != nil {
		t.Fatalf("https://shop.example%s does not parse: %v", location, err)
	}
	if joined.Host != "shop.example" {
		t.Fatalf("https://shop.example%s has host %q", location, joined.Host)
	}
}

func TestRedeemLocation(t *testing.T) {
	tests := []struct {
		target, want string
	}{
		{"/cart?token=abc", "/cart"},
		{"/cart?a=1&token=abc&b=2", "/cart?a=1&b=2"},
		{"/cart?token=abc&a=1", "/cart?a=1"},
		{"/cart?a=1&token=abc", "/cart?a=1"},
		{"/cart?b=2&a=1&token=abc&c=%20x+y&d", "/cart?b=2&a=1&c=%20x+y&d"},
		{"/cart?tok%65n=abc&a=1", "/cart?a=1"},
		{"/cart?a=1&&token=abc&&b=2&", "/cart?a=1&b=2"},
		{"/cart?tokens=1&xtoken=2&token=abc", "/cart?tokens=1&xtoken=2"},
		{"/cart?TOKEN=1&token=abc", "/cart?TOKEN=1"},
		{"/cart?token", "/cart"},
		{"/cart?token=abc&token=def", "/cart"},
		{"/cart", "/cart"},
		{"/cart?", "/cart"},
		{"/?token=abc", "/"},
		{"/survey/42/q%201?x=%2F%2F&token=t", "/survey/42/q%201?x=%2F%2F"},
		{"/a%2Fb?token=t", "/a%2Fb"},

		// Paths that would leave the site collapse to one leading slash.
		{"//evil.example/x?token=abc", "/evil.example/x"},
		{"///evil.example", "/evil.example"},
		{"/%2F%2Fevil.example", "/%2F%2Fevil.example"},
		{"/%5Cevil.example", "/%5Cevil.example"},
		{"//?token=abc&a=1", "/?a=1"},
	}
	for _, tt := range tests {
		u, err := url.ParseRequestURI(tt.target)
		if err != nil {
			t.Fatalf("ParseRequestURI(%q): %v", tt.target, err)
		}
		got := redeemLocation(u, "token")
		if got != tt.want {
			t.Errorf("redeemLocation(%q) = %q, want %q", tt.target, got, tt.want)
		}
		checkSameOrigin(t, got)
	}
}

// TestRedeemLocationUnsafeURLs builds URLs no request line yields, to prove the result stays on the
// site and on one line whatever the handler is given.
func TestRedeemLocationUnsafeURLs(t *testing.T) {
	tests := []struct {
		u    url.URL
		want string
	}{
		{url.URL{}, "/"},
		{url.URL{Path: `/\evil.example`}, "/%5Cevil.example"},
		{url.URL{Path: `\\evil.example`}, "/%5C%5Cevil.example"},
		{url.URL{Path: `/\/\evil.example`, RawPath: `/\/\evil.example`}, "/%5C/%5Cevil.example"},
		{url.URL{Path: "//evil.example", RawPath: "//evil.example"}, "/evil.example"},
		{url.URL{Path: "relative"}, "/relative"},
		{url.URL{Path: "/\t/evil.example"}, "/%09/evil.example"},
		{url.URL{Path: "/x\r\nSet-Cookie: a=b"}, "/x%0D%0ASet-Cookie:%20a=b"},
		{url.URL{Path: "/x", RawQuery: "a=\r\nSet-Cookie:%20b&token=t"}, "/x?a=%0D%0ASet-Cookie:%20b"},
		{url.URL{Path: "/x", RawQuery: "a=1#frag"}, "/x?a=1%23frag"},
		{url.URL{Path: "/x", RawQuery: "n=zoë"}, "/x?n=zo%C3%AB"},
		{url.URL{Path: "/x", RawQuery: "a=b c\x7f"}, "/x?a=b%20c%7F"},
		{url.URL{Opaque: "//evil.example/x"}, "/"},
	}
	for _, tt := range tests {
		got := redeemLocation(&tt.u, "token")
		if got != tt.want {
			t.Errorf("redeemLocation(%#v) = %q, want %q", tt.u, got, tt.want)
		}
		checkSameOrigin(t, got)
	}
}

// FuzzRedeemLocation's seeds are in testdata/fuzz/FuzzRedeemLocation.
func FuzzRedeemLocation(f *testing.F) {
	f.Fuzz(func(t *testing.T, target, rawQuery, param string) {
		urls := []*url.URL{{Path: target, RawQuery: rawQuery}, {Path: target, RawPath: target, RawQuery: rawQuery}}
		if u, err := url.ParseRequestURI(target); err == nil {
			urls = append(urls, u)
		}
		for _, u := range urls {
			loc := redeemLocation(u, param)
			checkSameOrigin(t, loc)
			if _, query, ok := strings.Cut(loc, "?"); ok && !hasUnsafeByte(u.RawQuery) {
				if _, n := queryparam.Find(query, param); n != 0 {
					t.Fatalf("redeemLocation(%q) = %q still holds %q", u, loc, param)
				}
			}
		}
	})
}

// hasUnsafeByte reports whether s holds a byte redeemLocation percent-encodes.
func hasUnsafeByte(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] == '#' || s[i] >= 0x7f {
			return true
		}
	}
	return false
}
