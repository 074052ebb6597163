package caddymodule

import (
	"net/url"
	"strings"
	"unicode/utf8"
)

// maxScope is the longest path scope accepted, in bytes.
const maxScope = 255

// inScope reports whether a request's escaped path (r.URL.EscapedPath()) lies within scope, by
// whole path segments. scope "" or "/" is the whole site, which holds every path; a trailing slash
// on scope is ignored.
//
// For any other scope the path is outside when it does not start with "/", when it holds a
// backslash or an encoded slash or backslash (%2F, %5C in either case), when it is not valid
// percent-encoding, when any segment is a dot-segment ("." or "..", also percent-encoded, and also
// when followed by ";parameters", which some servers strip), or when its decoded form still holds an
// encoded dot, slash or backslash (a double encoding some backends decode twice). Otherwise the
// percent-decoded path is compared with scope byte for byte, so "/survey/4%32" is inside
// "/survey/42": both name the same resource.
func inScope(escapedPath, scope string) bool {
	scope = strings.TrimRight(scope, "/")
	if scope == "" {
		return true
	}
	if !strings.HasPrefix(escapedPath, "/") || strings.IndexByte(escapedPath, '\\') >= 0 {
		return false
	}
	path := escapedPath
	if strings.IndexByte(escapedPath, '%') >= 0 {
		decoded, err := url.PathUnescape(escapedPath)
		if err != nil || strings.Count(decoded, "/") != strings.Count(escapedPath, "/") ||
			strings.IndexByte(decoded, '\\') >= 0 || hasEncodedSeparator(decoded) {
			return false
		}
		path = decoded
	}
	if hasDotSegment(path) {
		return false
	}
	return path == scope || strings.HasPrefix(path, scope) && path[len(scope)] == '/'
}

// validScope reports whether scope can be a path claim and a session's scope: empty (the whole
// site), or a decoded absolute path of at most 255 bytes that starts with "/" and has no empty
// segment ("//"), no dot-segment, no backslash, no "%" and no control character. A trailing "/" is
// allowed.
func validScope(scope string) bool {
	if scope == "" {
		return true
	}
	if len(scope) > maxScope || scope[0] != '/' || strings.Contains(scope, "//") || hasDotSegment(scope) {
		return false
	}
	for i := 0; i < len(scope); i++ {
		if c := scope[i]; c < 0x20 || c == 0x7f || c == '\\' || c == '%' {
			return false
		}
	}
	return true
}

// hasDotSegment reports whether a decoded path has a segment that a server or a backend may take
// for "." or "..": a segment, up to any ";parameters", made only of dots (also "...", and the
// full-width, small and leader dots that Unicode normalization turns into "."), with any spaces
// among them. It also reports paths with control characters or invalid UTF-8 (such as the overlong
// "%C0%AE"), which no clean path holds.
func hasDotSegment(path string) bool {
	if !utf8.ValidString(path) {
		return true
	}
	for rest := path; rest != ""; {
		var segment string
		segment, rest, _ = strings.Cut(rest, "/")
		segment, _, _ = strings.Cut(segment, ";")
		dots, other := 0, false
		for _, r := range segment {
			switch {
			case r == '.' || r == '\uFF0E' || r == '\uFE52' || r == '\u2024':
				dots++
			case r < 0x20 || r == 0x7f:
				return true
			case r != ' ':
				other = true
			}
		}
		if dots > 0 && !other {
			return true
		}
	}
	return false
}

// hasEncodedSeparator reports whether s holds "%2e", "%2f" or "%5c" in either case.
func hasEncodedSeparator(s string) bool {
	for i := 0; i+2 < len(s); i++ {
		if s[i] != '%' {
			continue
		}
		if c := s[i+2] | 0x20; s[i+1] == '2' && (c == 'e' || c == 'f') || s[i+1] == '5' && c == 'c' {
			return true
		}
	}
	return false
}
