// Package pathscope is the one rule for a link's path scope: which scopes a
// link may carry (its "path" claim, and the session it opens), and which
// request paths lie within one. The signer, the verifier and the gateway all
// apply it, so a link that can be minted is a link the gateway can accept.
package pathscope

import (
	"errors"
	"net/url"
	"strings"
	"unicode/utf8"
)

// MaxLength is the length in bytes of the longest scope.
const MaxLength = 255

// Check reports why scope cannot be a link's path scope, or nil when it can.
// The empty scope, the whole site, is valid. Any other scope is a decoded
// absolute path of at most MaxLength bytes, valid UTF-8, that starts with
// "/" and holds no empty segment ("//"; a trailing "/" is allowed), no
// segment a server or backend may take for "." or "..", no control
// character, none of `\ % ; ? #`, and none of the Unicode look-alikes of
// "/", "\" or "%" that normalization turns into them.
func Check(scope string) error {
	switch {
	case scope == "":
		return nil
	case len(scope) > MaxLength:
		return errors.New("path is longer than 255 bytes")
	case scope[0] != '/':
		return errors.New(`path must start with "/"`)
	case strings.Contains(scope, "//"):
		return errors.New(`path must not hold an empty segment ("//")`)
	case strings.ContainsAny(scope, `\%;?#`):
		return errors.New(`path must not hold "\", "%", ";", "?" or "#"; give it decoded`)
	case !clean(scope):
		return errors.New(`path must not hold a "." or ".." segment (in any spelling), a control character, invalid UTF-8 or a look-alike of "/", "\" or "%"`)
	}
	return nil
}

// Contains reports whether a request path lies within scope, by whole path
// segments. escapedPath is the path as it arrived, percent-encoded (as
// url.URL.EscapedPath returns it). The scope "" or "/" is the whole site and
// contains every path; a trailing "/" on scope is ignored.
//
// For any other scope the path is outside when it does not start with "/",
// when it holds a backslash or an encoded "/" or "\", when it is not valid
// percent-encoding, when its decoded form still holds a "%" (an encoding a
// backend might decode again), or when it fails the rules of Check for dot
// segments (also when followed by ";parameters", which some servers strip),
// control characters, invalid UTF-8 and look-alikes. Otherwise the decoded
// path is compared with scope byte for byte, so "/survey/4%32" is inside
// "/survey/42": both name the same resource.
func Contains(scope, escapedPath string) bool {
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
			strings.ContainsAny(decoded, `\%`) {
			return false
		}
		path = decoded
	}
	if !clean(path) {
		return false
	}
	return path == scope || strings.HasPrefix(path, scope) && path[len(scope)] == '/'
}

// clean reports whether a decoded path is valid UTF-8 with no control
// character, no look-alike of "/", "\" or "%", and no segment that is, up to
// any ";parameters", made only of dots (also "..." and the Unicode dots that
// normalization turns into one or more ".") and spaces.
func clean(path string) bool {
	if !utf8.ValidString(path) {
		return false
	}
	for rest := path; rest != ""; {
		var segment string
		segment, rest, _ = strings.Cut(rest, "/")
		segment, _, _ = strings.Cut(segment, ";")
		dots, other := 0, false
		for _, r := range segment {
			switch {
			case isDot(r):
				dots++
			case r < 0x20 || r >= 0x7f && r <= 0x9f || isSeparatorLike(r):
				return false
			case r != ' ':
				other = true
			}
		}
		if dots > 0 && !other {
			return false
		}
	}
	return true
}

// isDot reports whether r is "." or a code point that NFKC normalization
// turns into one or more ".": the one-dot, two-dot and three-dot leaders,
// their vertical presentation forms, and the small and full-width full stops.
func isDot(r rune) bool {
	switch r {
	case '.', '\u2024', '\u2025', '\u2026', '\uFE19', '\uFE30', '\uFE52', '\uFF0E':
		return true
	}
	return false
}

// isSeparatorLike reports whether r is a code point that NFKC normalization
// turns into "/", "\" or "%": the full-width solidus, reverse solidus and
// percent sign, and the small reverse solidus and percent sign.
func isSeparatorLike(r rune) bool {
	switch r {
	case '\uFF0F', '\uFF3C', '\uFE68', '\uFF05', '\uFE6A':
		return true
	}
	return false
}
