package caddymodule

import (
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

func init() {
	httpcaddyfile.RegisterHandlerDirective("magic_link_api", parseAPICaddyfile)
	// Before the authentication handlers, magic_link among them: the API authenticates its callers
	// with their bearer key, and a site's gateway must not ask them for a session.
	httpcaddyfile.RegisterDirectiveOrder("magic_link_api", httpcaddyfile.After, "try_files")
}

// parseAPICaddyfile sets up the issuing API from Caddyfile tokens.
func parseAPICaddyfile(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
	file, line := blockLine(h.Dispenser)
	a := new(API)
	if err := a.UnmarshalCaddyfile(h.Dispenser); err != nil {
		return nil, err
	}
	checked := *a
	checked.setDefaults()
	if err := atLine(file, line, checked.Validate()); err != nil {
		return nil, err
	}
	return a, nil
}

// UnmarshalCaddyfile sets up the issuing API from Caddyfile tokens. Syntax:
//
//	magic_link_api [<matcher>] {
//		key         <file>
//		secret_key  <key>...
//		url         <url>
//		audience    <aud>
//		issuer      <iss>
//		param       <name>
//		default_ttl <duration>
//		max_ttl     <duration>
//		once        true|false
//	}
//
// key, secret_key and url are required; secret_key may be given more than once. The parser only
// parses: the values are checked by Validate.
func (a *API) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // consume directive name
	if d.NextArg() {
		return d.Errf("magic_link_api takes no arguments, only a block; got %q", d.Val())
	}
	seen := make(map[string]bool)
	for d.NextBlock(0) {
		sub := d.Val()
		if sub != "secret_key" {
			if seen[sub] {
				return d.Errf("magic_link_api: %s is set twice", sub)
			}
			seen[sub] = true
		}
		var err error
		switch sub {
		case "key":
			err = oneArg(d, &a.Key)
		case "secret_key":
			keys := d.RemainingArgs()
			if len(keys) == 0 {
				return d.Err("secret_key: missing value")
			}
			a.SecretKeys = append(a.SecretKeys, keys...)
		case "url":
			err = oneArg(d, &a.URL)
		case "audience":
			err = oneArg(d, &a.Audience)
		case "issuer":
			err = oneArg(d, &a.Issuer)
		case "param":
			err = oneArg(d, &a.Param)
		case "default_ttl":
			err = durationArg(d, &a.DefaultTTL, false)
		case "max_ttl":
			err = durationArg(d, &a.MaxTTL, false)
		case "once":
			var v string
			if err = oneArg(d, &v); err != nil {
				break
			}
			if v != "true" && v != "false" {
				return d.Errf("once %q: use true or false", v)
			}
			once := v == "true"
			a.Once = &once
		default:
			return d.Errf("unrecognized magic_link_api subdirective %q", sub)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// Interface guard
var _ caddyfile.Unmarshaler = (*API)(nil)
