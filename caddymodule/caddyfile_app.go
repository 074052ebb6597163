package caddymodule

import (
	"net/url"
	"strconv"
	"strings"

	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
)

func init() {
	httpcaddyfile.RegisterGlobalOption("magic_link", parseGlobalOption)
}

// parseGlobalOption sets up the magic_link app from the global option block of that name.
func parseGlobalOption(d *caddyfile.Dispenser, _ any) (any, error) {
	file, line := blockLine(d)
	app := new(App)
	if err := app.UnmarshalCaddyfile(d); err != nil {
		return nil, err
	}
	if err := atLine(file, line, app.Validate()); err != nil {
		return nil, err
	}
	return httpcaddyfile.App{Name: "magic_link", Value: caddyconfig.JSON(app, nil)}, nil
}

// UnmarshalCaddyfile sets up the app from Caddyfile tokens. Syntax:
//
//	magic_link {
//		store file [<path>]
//		store redis <url>
//		store redis {
//			addresses   <host:port>...
//			master_name <name>
//			cluster
//			username    <name>
//			password    <password>
//			db          <number>
//			tls
//		}
//		key_prefix <prefix>
//		timeout    <duration>
//	}
//
// The parser only parses: the values are checked by Validate.
func (a *App) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // consume option name
	if d.NextArg() {
		return d.Errf("magic_link takes no arguments, only a block; got %q", d.Val())
	}
	seen := make(map[string]bool)
	for d.NextBlock(0) {
		sub := d.Val()
		if seen[sub] {
			return d.Errf("magic_link: %s is set twice", sub)
		}
		seen[sub] = true
		var err error
		switch sub {
		case "store":
			err = a.unmarshalStore(d)
		case "key_prefix":
			err = oneArg(d, &a.KeyPrefix)
		case "timeout":
			err = durationArg(d, &a.Timeout, false)
		default:
			return d.Errf("unrecognized magic_link option %q", sub)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// unmarshalStore parses the store option.
func (a *App) unmarshalStore(d *caddyfile.Dispenser) error {
	if !d.NextArg() {
		return d.Err("store: use file [<path>], redis <url> or redis { … }")
	}
	s := &StoreConfig{Type: d.Val()}
	a.Store = s
	args := d.RemainingArgs()
	switch s.Type {
	case StoreFile:
		if len(args) > 1 {
			return d.Errf("store file: takes at most one path; got also %q", args[1])
		}
		if len(args) == 1 {
			s.Path = args[0]
		}
		if d.NextBlock(d.Nesting()) {
			return d.Err("store file: takes no block")
		}
		return nil
	case StoreRedis:
	default:
		return d.Errf("store %q: use file or redis", s.Type)
	}
	if len(args) > 1 {
		return d.Errf("store redis: takes one URL; got also %q", args[1])
	}
	if len(args) == 1 {
		s.URL = args[0]
		if !strings.Contains(s.URL, "{") {
			if u, err := url.Parse(s.URL); err != nil || u.Scheme != "redis" && u.Scheme != "rediss" && u.Scheme != "unix" {
				return d.Errf("store redis: %q is not a redis://, rediss:// or unix:// URL", redactURL(s.URL))
			}
		}
		if d.NextBlock(d.Nesting()) {
			return d.Err("store redis: give a URL or a block, not both")
		}
		return nil
	}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		opt := d.Val()
		var err error
		switch opt {
		case "addresses":
			s.Addresses = d.RemainingArgs()
			if len(s.Addresses) == 0 {
				return d.Err("addresses: name one or more host:port")
			}
		case "master_name":
			err = oneArg(d, &s.MasterName)
		case "cluster":
			s.Cluster, err = true, noArgs(d)
		case "username":
			err = oneArg(d, &s.Username)
		case "password":
			err = oneArg(d, &s.Password)
		case "db":
			var v string
			if err = oneArg(d, &v); err == nil {
				if s.DB, err = strconv.Atoi(v); err != nil {
					err = d.Errf("db %q: not a number", v)
				}
			}
		case "tls":
			s.TLS, err = true, noArgs(d)
		default:
			return d.Errf("unrecognized store redis option %q", opt)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// noArgs checks that the current subdirective has no arguments.
func noArgs(d *caddyfile.Dispenser) error {
	sub := d.Val()
	if d.NextArg() {
		return d.Errf("%s takes no arguments; got %q", sub, d.Val())
	}
	return nil
}

// Interface guard
var _ caddyfile.Unmarshaler = (*App)(nil)

// redactURL returns raw with any password replaced, for messages.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "the URL"
	}
	return u.Redacted()
}
