package caddymodule

import (
	"fmt"
	"io"
	"net/http"
	"net/textproto"
	"slices"
	"strings"
)

// maxHeaderSeparators bounds the '-' and '_' in an identity header name, since every spelling with
// either separator is removed from requests.
const maxHeaderSeparators = 4

// checkHeaderName checks an identity header name given in field.
func checkHeaderName(field, name string) error {
	if !validToken(name) {
		return fmt.Errorf("%s %q: not a valid header name", field, name)
	}
	if strings.Count(name, "-")+strings.Count(name, "_") > maxHeaderSeparators {
		return fmt.Errorf("%s %q: use at most %d '-' or '_'", field, name, maxHeaderSeparators)
	}
	return nil
}

// appendHeaderVariants appends to dst the canonical form of name with each of its '-' and '_'
// spelled either way: CGI, FastCGI and many frameworks read Remote_User as Remote-User, so a
// client must not be able to send either.
func appendHeaderVariants(dst []string, name string) []string {
	var seps []int
	for i := 0; i < len(name); i++ {
		if name[i] == '-' || name[i] == '_' {
			seps = append(seps, i)
		}
	}
	b := []byte(name)
	for mask := 0; mask < 1<<len(seps); mask++ {
		for j, i := range seps {
			if mask&(1<<j) != 0 {
				b[i] = '_'
			} else {
				b[i] = '-'
			}
		}
		v := textproto.CanonicalMIMEHeaderKey(string(b))
		if !slices.Contains(dst, v) {
			dst = append(dst, v)
		}
	}
	return dst
}

// validToken reports whether s is a non-empty RFC 9110 token, as header and cookie names are.
func validToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`"(),/:;<=>?@[\]{}`, c) >= 0 {
			return false
		}
	}
	return true
}

// trailerGuard removes the identity header names from a request's trailers when its body has been
// read to the end, which is when net/http fills them in, so that no client can send an identity as
// a trailer either.
type trailerGuard struct {
	io.ReadCloser
	r     *http.Request
	names []string
}

func (g *trailerGuard) Read(p []byte) (int, error) {
	n, err := g.ReadCloser.Read(p)
	if err == io.EOF {
		for _, name := range g.names {
			delete(g.r.Trailer, name)
		}
	}
	return n, err
}
