package caddymodule

import (
	"net/url"
	"strings"

	"github.com/magiclink-dev/magiclink/internal/queryparam"
)

// redeemLocation returns the relative Location (path and query) that a redeemed link redirects to:
// the request's path with the query parameter param removed, every other parameter kept verbatim and
// in order. The result never leaves the site: it always starts with exactly one "/" followed by a
// character other than "/" or "\".
//
// Every leading run of "/" and "\" in the path collapses to one "/", so "//evil.example/x" becomes
// "/evil.example/x"; an empty path becomes "/". Bytes a request line cannot carry (controls, space,
// "#" and non-ASCII) are percent-encoded, so the result is always a single-line header value.
func redeemLocation(u *url.URL, param string) string {
	path := strings.TrimLeft(u.EscapedPath(), `/\`)
	query := queryparam.Remove(u.RawQuery, param)
	var b strings.Builder
	b.Grow(1 + len(path) + 1 + len(query))
	b.WriteByte('/')
	writeEscapedUnsafe(&b, path)
	if query != "" {
		b.WriteByte('?')
		writeEscapedUnsafe(&b, query)
	}
	return b.String()
}

// writeEscapedUnsafe writes s to b with control characters, space, '#' and non-ASCII bytes
// percent-encoded.
func writeEscapedUnsafe(b *strings.Builder, s string) {
	const hex = "0123456789ABCDEF"
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c == '#' || c >= 0x7f {
			b.WriteByte('%')
			b.WriteByte(hex[c>>4])
			b.WriteByte(hex[c&15])
			continue
		}
		b.WriteByte(c)
	}
}
