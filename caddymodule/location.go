package caddymodule

import (
	"net/url"
	"strings"
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
	query := stripParam(u.RawQuery, param)
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

// queryParam returns how many times param occurs in rawQuery (a request with more than one token
// parameter is rejected) and the value of the first occurrence, query-unescaped (or verbatim when it
// is not valid query escaping). Keys are compared after query-unescaping, so "tok%65n" is "token".
func queryParam(rawQuery, param string) (value string, n int) {
	for rest := rawQuery; rest != ""; {
		var pair string
		pair, rest, _ = strings.Cut(rest, "&")
		key, v, _ := strings.Cut(pair, "=")
		if !isParam(key, param) {
			continue
		}
		if n == 0 {
			value = unescapeQuery(v)
		}
		n++
	}
	return value, n
}

// stripParam returns rawQuery without param, other parameters kept verbatim and in order. Empty
// pairs ("a=1&&b=2") are dropped.
func stripParam(rawQuery, param string) string {
	var b strings.Builder
	for rest := rawQuery; rest != ""; {
		var pair string
		pair, rest, _ = strings.Cut(rest, "&")
		key, _, _ := strings.Cut(pair, "=")
		if pair == "" || isParam(key, param) {
			continue
		}
		if b.Len() > 0 {
			b.WriteByte('&')
		}
		b.WriteString(pair)
	}
	return b.String()
}

// isParam reports whether the raw query key names param.
func isParam(rawKey, param string) bool {
	return unescapeQuery(rawKey) == param
}

// unescapeQuery query-unescapes s, or returns it verbatim when it is not valid query escaping.
func unescapeQuery(s string) string {
	if strings.IndexAny(s, "%+") < 0 {
		return s
	}
	u, err := url.QueryUnescape(s)
	if err != nil {
		return s
	}
	return u
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
