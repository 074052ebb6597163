package caddymodule

import (
	"fmt"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
)

func init() {
	httpcaddyfile.RegisterDirective("magic_link", parseCaddyfile)
	httpcaddyfile.RegisterDirectiveOrder("magic_link", httpcaddyfile.Before, "basic_auth")
}

// parseCaddyfile sets up the handler from Caddyfile tokens. When the directive has a matcher, it
// also adds a magic_link_strip_identity handler with the same header names, without the matcher,
// so that the requests the matcher skips lose a client's identity headers too: the operator's
// choice of matcher must not decide who can claim an identity.
func parseCaddyfile(h httpcaddyfile.Helper) ([]httpcaddyfile.ConfigValue, error) {
	if !h.Next() {
		return nil, h.ArgErr()
	}
	file, line := h.File(), h.Line()
	matcherSet, err := h.ExtractMatcherSet()
	if err != nil {
		return nil, err
	}
	m := new(MagicLink)
	if err := m.UnmarshalCaddyfile(h.Dispenser); err != nil {
		return nil, err
	}
	checked := *m
	checked.setDefaults()
	if err := atLine(file, line, checked.Validate()); err != nil {
		return nil, err
	}
	routes := h.NewRoute(matcherSet, m)
	if matcherSet == nil {
		return routes, nil
	}
	strip := &StripIdentity{IdentityHeaders: m.IdentityHeaders}
	return append(h.NewRoute(nil, strip), routes...), nil
}

// atLine returns err, from the Validate of a configuration parsed from the block at file:line,
// naming that line: a bad value in a Caddyfile points at its block while every check stays in
// Validate.
func atLine(file string, line int, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%s:%d: %w", file, line, err)
}

// blockLine returns the file and line of the directive or option d is about to read, leaving d
// where it was.
func blockLine(d *caddyfile.Dispenser) (string, int) {
	d.Next()
	defer d.Prev()
	return d.File(), d.Line()
}

// UnmarshalCaddyfile sets up the handler from Caddyfile tokens. Syntax:
//
//	magic_link [<matcher>] {
//		keys            <file>...
//		audience        <aud>
//		issuer          <iss>
//		param           <name>
//		leeway          <duration>
//		max_link_age    <duration>
//		session_secret  <secret> [<previous secret>...]
//		session_ttl     <duration>
//		cookie_name     <name>
//		cookie_domain   <domain>
//		cookie_samesite lax|strict|none
//		insecure_cookie
//		redeem          redirect|confirm|forward
//		unauthenticated deny|pass|redirect <url>
//		header_user     <name>
//		header_email    <name>
//		header_name     <name>
//		once
//		logout          <path> [<url>]
//	}
//
// keys and audience are required; keys may be given more than once. The parser only parses: the
// values are checked by Validate.
func (m *MagicLink) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // consume directive name
	if d.NextArg() {
		return d.Errf("magic_link takes no arguments, only a block; got %q", d.Val())
	}

	seen := make(map[string]bool)
	for d.NextBlock(0) {
		sub := d.Val()
		if sub != "keys" {
			if seen[sub] {
				return d.Errf("magic_link: %s is set twice", sub)
			}
			seen[sub] = true
		}
		var err error
		switch sub {
		case "keys":
			files := d.RemainingArgs()
			if len(files) == 0 {
				return d.Errf("keys: name one or more key files")
			}
			m.Keys = append(m.Keys, files...)
		case "audience":
			err = oneArg(d, &m.Audience)
		case "issuer":
			err = oneArg(d, &m.Issuer)
		case "param":
			err = oneArg(d, &m.Param)
		case "leeway":
			var v caddy.Duration
			if err = durationArg(d, &v, true); err == nil {
				m.Leeway = &v
			}
		case "max_link_age":
			err = durationArg(d, &m.MaxLinkAge, false)
		case "session_secret":
			secrets := d.RemainingArgs()
			if len(secrets) == 0 {
				return d.Err("session_secret: missing value")
			}
			m.SessionSecret = secrets[0]
			if len(secrets) > 1 {
				m.PreviousSessionSecrets = secrets[1:]
			}
		case "session_ttl":
			err = durationArg(d, &m.SessionTTL, false)
		case "cookie_name":
			err = oneArg(d, &m.CookieName)
		case "cookie_domain":
			err = oneArg(d, &m.CookieDomain)
		case "cookie_samesite":
			err = oneArg(d, &m.CookieSameSite)
		case "once":
			if d.NextArg() {
				return d.Errf("once takes no arguments; got %q", d.Val())
			}
			m.Once = true
		case "logout":
			args := d.RemainingArgs()
			if len(args) == 0 || len(args) > 2 {
				return d.Err("logout: give the sign-out path and, optionally, the URL to send the browser to")
			}
			m.Logout = args[0]
			if len(args) == 2 {
				m.LogoutRedirect = args[1]
			}
		case "insecure_cookie":
			if d.NextArg() {
				return d.Errf("insecure_cookie takes no arguments; got %q", d.Val())
			}
			m.InsecureCookie = true
		case "redeem":
			err = oneArg(d, &m.Redeem)
		case "unauthenticated":
			err = m.unmarshalUnauthenticated(d)
		case "header_user":
			err = oneArg(d, &m.HeaderUser)
		case "header_email":
			err = oneArg(d, &m.HeaderEmail)
		case "header_name":
			err = oneArg(d, &m.HeaderName)
		default:
			return d.Errf("unrecognized magic_link subdirective %q", sub)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// unmarshalUnauthenticated parses the arguments of the unauthenticated subdirective.
func (m *MagicLink) unmarshalUnauthenticated(d *caddyfile.Dispenser) error {
	args := d.RemainingArgs()
	if len(args) == 0 {
		return d.Errf("unauthenticated: use deny, pass or redirect <url>")
	}
	m.Unauthenticated = args[0]
	switch {
	case args[0] == UnauthenticatedRedirect && len(args) != 2:
		return d.Errf("unauthenticated redirect: give exactly one URL to redirect to")
	case args[0] != UnauthenticatedRedirect && len(args) != 1:
		return d.Errf("unauthenticated %s takes no more arguments", args[0])
	}
	if len(args) == 2 {
		m.RedirectURL = args[1]
	}
	return nil
}

// oneArg reads the single argument of the current subdirective into dst.
func oneArg(d *caddyfile.Dispenser, dst *string) error {
	sub := d.Val()
	if !d.NextArg() {
		return d.Errf("%s: missing value", sub)
	}
	*dst = d.Val()
	if d.NextArg() {
		return d.Errf("%s: takes one value; got also %q", sub, d.Val())
	}
	return nil
}

// durationArg reads the single duration argument of the current subdirective into dst. Zero is
// accepted only when zeroOK: elsewhere a zero duration would read as unset in JSON and silently
// become the default.
func durationArg(d *caddyfile.Dispenser, dst *caddy.Duration, zeroOK bool) error {
	sub := d.Val()
	var s string
	if err := oneArg(d, &s); err != nil {
		return err
	}
	v, err := caddy.ParseDuration(s)
	if err != nil {
		return d.Errf("%s %q: not a duration; write it like 30s, 15m or 24h", sub, s)
	}
	if v == 0 && !zeroOK {
		return d.Errf("%s %q: must be positive", sub, s)
	}
	*dst = caddy.Duration(v)
	return nil
}

// Interface guard
var _ caddyfile.Unmarshaler = (*MagicLink)(nil)
