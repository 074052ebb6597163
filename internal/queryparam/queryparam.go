// Package queryparam is the one rule for the query parameter that carries a
// link token: how a link's URL gets it, how the gateway and the CLI find it,
// and how the gateway removes it before the request goes on.
//
// A raw query is split into pairs at "&" only (a ";" is part of a value, as
// in Go's net/url since 1.17); a pair's name is compared with the parameter
// name after query-unescaping ("tok%65n" and "token" are the same name, "+"
// is a space), or verbatim when it is not valid query escaping. Every other
// pair is kept byte for byte and in order.
package queryparam

import (
	"fmt"
	"net/url"
	"strings"
)

// DefaultName is the name of the token parameter when none is configured.
const DefaultName = "token"

// CheckName reports why name cannot be a token parameter name, or nil: a
// name is one or more letters, digits, '-', '_', '.' or '~', so that it
// needs no escaping anywhere.
func CheckName(name string) error {
	if name == "" {
		return fmt.Errorf("parameter name is empty")
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("-_.~", c) >= 0) {
			return fmt.Errorf("parameter name %q: use letters, digits, '-', '_', '.' or '~'", name)
		}
	}
	return nil
}

// Find returns how many pairs of rawQuery are named name and the value of
// the first, query-unescaped (or verbatim when it is not valid query
// escaping). A pair without "=" has the empty value.
func Find(rawQuery, name string) (value string, n int) {
	for rest := rawQuery; rest != ""; {
		var pair string
		pair, rest, _ = strings.Cut(rest, "&")
		key, v, _ := strings.Cut(pair, "=")
		if !isName(key, name) {
			continue
		}
		if n == 0 {
			value = unescape(v)
		}
		n++
	}
	return value, n
}

// Remove returns rawQuery without the pairs named name. Empty pairs
// ("a=1&&b=2") are dropped too.
func Remove(rawQuery, name string) string {
	q, _ := edit(rawQuery, name, "")
	return q
}

// Set returns rawQuery with the parameter name set to value: the first pair
// named name is replaced, later ones are dropped, and when there is none the
// pair is added at the end. Empty pairs are dropped. Name and value are
// query-escaped.
func Set(rawQuery, name, value string) string {
	before, after := Split(rawQuery, name)
	return before + url.QueryEscape(value) + after
}

// Split returns the text of Set(rawQuery, name, value) before and after the
// query-escaped value, which is the same for every value: Set is before +
// url.QueryEscape(value) + after. before ends with the escaped name and "=";
// after is empty or starts with "&".
func Split(rawQuery, name string) (before, after string) {
	q, at := edit(rawQuery, name, url.QueryEscape(name)+"=")
	return q[:at], q[at:]
}

// edit rebuilds rawQuery without empty pairs and with the pairs named name
// replaced by replacement, once, or dropped when replacement is empty. at is
// where the replacement ends in the result.
func edit(rawQuery, name, replacement string) (q string, at int) {
	var b strings.Builder
	placed := replacement == ""
	for rest := rawQuery; rest != ""; {
		var pair string
		pair, rest, _ = strings.Cut(rest, "&")
		key, _, _ := strings.Cut(pair, "=")
		if pair == "" {
			continue
		}
		named := isName(key, name)
		if named {
			if placed {
				continue
			}
			pair, placed = replacement, true
		}
		if b.Len() > 0 {
			b.WriteByte('&')
		} else {
			b.Grow(len(rawQuery) + len(replacement) + 1)
		}
		b.WriteString(pair)
		if named {
			at = b.Len()
		}
	}
	if !placed {
		if b.Len() > 0 {
			b.WriteByte('&')
		}
		b.WriteString(replacement)
		at = b.Len()
	}
	return b.String(), at
}

// isName reports whether the raw pair name rawKey is name.
func isName(rawKey, name string) bool {
	return unescape(rawKey) == name
}

// unescape query-unescapes s, or returns it verbatim when it is not valid
// query escaping.
func unescape(s string) string {
	if strings.IndexByte(s, '%') < 0 && strings.IndexByte(s, '+') < 0 {
		return s
	}
	u, err := url.QueryUnescape(s)
	if err != nil {
		return s
	}
	return u
}
