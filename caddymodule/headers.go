package caddymodule

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/textproto"
	"slices"
	"strings"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

func init() {
	caddy.RegisterModule(StripIdentity{})
}

// IdentityHeaders name the request headers that carry a signed-in user's identity upstream. A
// client's headers and trailers of these names, in every spelling with '-' or '_', are removed.
type IdentityHeaders struct {
	// HeaderUser is the request header that carries the user id (the sub claim) upstream. The
	// default is Remote-User.
	HeaderUser string `json:"header_user,omitempty"`

	// HeaderEmail is the request header that carries the email claim upstream. The default is
	// Remote-Email.
	HeaderEmail string `json:"header_email,omitempty"`

	// HeaderName is the request header that carries the name claim upstream. The default is
	// Remote-Name.
	HeaderName string `json:"header_name,omitempty"`
}

// setDefaults fills in the default of every empty name.
func (h *IdentityHeaders) setDefaults() {
	if h.HeaderUser == "" {
		h.HeaderUser = DefaultHeaderUser
	}
	if h.HeaderEmail == "" {
		h.HeaderEmail = DefaultHeaderEmail
	}
	if h.HeaderName == "" {
		h.HeaderName = DefaultHeaderName
	}
}

// validate checks that the three names are valid header names and different.
func (h *IdentityHeaders) validate() error {
	for _, f := range []struct{ field, name string }{
		{"header_user", h.HeaderUser}, {"header_email", h.HeaderEmail}, {"header_name", h.HeaderName},
	} {
		if err := checkHeaderName(f.field, f.name); err != nil {
			return err
		}
	}
	if strings.EqualFold(h.HeaderUser, h.HeaderEmail) || strings.EqualFold(h.HeaderUser, h.HeaderName) ||
		strings.EqualFold(h.HeaderEmail, h.HeaderName) {
		return errors.New("header_user, header_email and header_name must be three different headers")
	}
	return nil
}

// StripIdentity is a middleware that removes a client's claims to an identity: the request headers
// and trailers named as the identity headers of a magic_link handler, in every spelling with '-'
// or '_'. The magic_link Caddyfile directive adds it, without the directive's matcher, beside a
// magic_link handler that has a matcher, so that the requests the matcher skips cannot carry an
// identity upstream either.
//
// A header that holds exactly the identity an authentication handler set for this request (in the
// placeholders {http.auth.user.id}, {http.auth.user.email} and {http.auth.user.name}) is kept,
// so that it never undoes the work of a magic_link handler that ran before it.
type StripIdentity struct {
	// IdentityHeaders name the headers to remove, as in the magic_link handler beside it.
	IdentityHeaders

	canonical [3]string   // the canonical forms of the user, email and name headers
	spellings [3][]string // every spelling of each, canonicalized
	all       []string    // every spelling of the three
}

// CaddyModule returns the Caddy module information.
func (StripIdentity) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.magic_link_strip_identity",
		New: func() caddy.Module { return new(StripIdentity) },
	}
}

// Provision fills in the default header names and lists their spellings.
func (s *StripIdentity) Provision(caddy.Context) error {
	s.setDefaults()
	s.all = nil
	for i, name := range [3]string{s.HeaderUser, s.HeaderEmail, s.HeaderName} {
		s.canonical[i] = textproto.CanonicalMIMEHeaderKey(name)
		s.spellings[i] = appendHeaderVariants(nil, name)
		s.all = append(s.all, s.spellings[i]...)
	}
	return nil
}

// Validate checks the header names.
func (s *StripIdentity) Validate() error {
	return s.validate()
}

// identityPlaceholders are the placeholders of the authenticated user's id, email and name.
var identityPlaceholders = [3]string{userIDPlaceholder, emailPlaceholder, namePlaceholder}

// ServeHTTP implements caddyhttp.MiddlewareHandler.
func (s *StripIdentity) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	repl := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer)
	for i, placeholder := range identityPlaceholders {
		authenticated, _ := repl.GetString(placeholder)
		for _, name := range s.spellings[i] {
			if v := r.Header[name]; authenticated != "" && name == s.canonical[i] && len(v) == 1 && v[0] == authenticated {
				continue
			}
			delete(r.Header, name)
		}
	}
	guardTrailers(r, s.all)
	return next.ServeHTTP(w, r)
}

// Interface guards
var (
	_ caddy.Provisioner           = (*StripIdentity)(nil)
	_ caddy.Validator             = (*StripIdentity)(nil)
	_ caddyhttp.MiddlewareHandler = (*StripIdentity)(nil)
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

// guardTrailers removes the header names from the request's trailers, both those already known and
// those that arrive at the end of its body.
func guardTrailers(r *http.Request, names []string) {
	if r.Body == nil || r.Body == http.NoBody {
		return
	}
	for _, name := range names {
		delete(r.Trailer, name)
	}
	r.Body = &trailerGuard{ReadCloser: r.Body, r: r, names: names}
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
