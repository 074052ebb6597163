package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/magiclink-dev/magiclink/internal/origin"
	"github.com/magiclink-dev/magiclink/internal/pathscope"
	"github.com/magiclink-dev/magiclink/internal/queryparam"
	"github.com/magiclink-dev/magiclink/token"
)

const signSynopsis = `magiclink sign --key FILE --sub ID [--aud AUD] [--iss ISS] [--ttl 24h] [--url URL]
                 [--param token] [--path PREFIX] [--email E] [--name N] [--once] [--json]
  magiclink sign --key FILE --csv FILE [--aud AUD] [--iss ISS] [--ttl 24h] [--url URL]
                 [--param token] [--path PREFIX] [--once]

With --csv, FILE ("-" for standard input) starts with a header row naming its
columns: sub (required), email, name, url, path, in any order; other columns are
passed through. The CSV is written to standard output with token, link and
expires_at appended. A row's url replaces --url, and without --aud a row's
audience is the origin of its URL. A bad row is reported on standard error with
its line number and left out; the exit code is then 1.`

// signOptions are the sign flags shared by single and bulk signing.
type signOptions struct {
	signer *token.Signer
	aud    string // "" = the origin of the link URL
	iss    string
	url    string
	param  string
	path   string
	ttl    time.Duration
	once   bool
}

// defaultTTL is how long a link stays valid when --ttl is not given.
const defaultTTL = 24 * time.Hour

func runSign(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	flags := newFlagSet("sign", signSynopsis)
	keyFile := flags.String("key", "", "private key `file`: JWK, JWKS with one private key, or PEM (required)")
	sub := flags.String("sub", "", "user `id` the link signs in (required without --csv)")
	aud := flags.String("aud", "", "`audience`: the gateway's audience setting (default: the origin of the link URL)")
	iss := flags.String("iss", "", "`issuer` claim, if the gateway is configured with one")
	ttl := flags.Duration("ttl", defaultTTL, "how long the link stays valid")
	linkURL := flags.String("url", "", "`URL` of the page the link opens; the token is added as its --param query parameter")
	param := flags.String("param", queryparam.DefaultName, "query parameter `name` that carries the token")
	path := flags.String("path", "", "URL path `prefix` the link and its session are limited to (default: the whole site)")
	email := flags.String("email", "", "user's email `address`, passed upstream")
	name := flags.String("name", "", "user's display `name`, passed upstream")
	once := flags.Bool("once", false, "make the link one-time: it opens at most one session (the gateway needs a store)")
	asJSON := flags.Bool("json", false, "print id, token, url, sub, expires_at and created_at as JSON")
	csvFile := flags.String("csv", "", "sign one link per row of this CSV `file` (\"-\" for standard input)")
	rest, err := parseFlags(flags, args, stdout)
	if err != nil {
		return usageError(stderr, "sign", err)
	}
	set := map[string]bool{}
	flags.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if err := checkSignFlags(rest, set, *keyFile, *csvFile, *sub, *aud, *linkURL, *param, *path, *ttl); err != nil {
		return usageError(stderr, "sign", err)
	}
	if *ttl > token.DefaultMaxLinkAge {
		fmt.Fprintf(stderr, "magiclink: sign: warning: --ttl %v is longer than the gateway's default max_link_age %v; raise max_link_age or the links will be rejected\n", *ttl, token.DefaultMaxLinkAge)
	}
	signer, err := token.LoadSigner(*keyFile)
	if err != nil {
		return failure(stderr, "sign", err)
	}
	opts := signOptions{signer: signer, aud: *aud, iss: *iss, url: *linkURL, param: *param, path: *path, ttl: *ttl, once: *once}
	if *csvFile != "" {
		return signBulk(*csvFile, opts, stdin, stdout, stderr)
	}
	return signOne(opts, *sub, *email, *name, *asJSON, stdout, stderr)
}

// checkSignFlags reports a sign command line that cannot work.
func checkSignFlags(rest []string, set map[string]bool, keyFile, csvFile, sub, aud, linkURL, param, path string, ttl time.Duration) error {
	switch {
	case len(rest) > 0:
		return fmt.Errorf("unexpected argument %q; all sign input is given by flags", rest[0])
	case keyFile == "":
		return errors.New("--key is required")
	case ttl <= 0:
		return fmt.Errorf("--ttl must be positive, not %v", ttl)
	}
	if err := queryparam.CheckName(param); err != nil {
		return fmt.Errorf("--param: %w", err)
	}
	if err := pathscope.Check(path); err != nil {
		return fmt.Errorf("--path %q: %w; the gateway could never accept it", path, err)
	}
	if linkURL != "" {
		if _, err := token.ParseLinkURL(linkURL); err != nil {
			return fmt.Errorf("--url: %w", err)
		}
	}
	if csvFile != "" {
		for _, f := range []string{"sub", "email", "name", "json"} {
			if set[f] {
				return fmt.Errorf("--%s cannot be used with --csv; give per-user values as CSV columns", f)
			}
		}
		return nil
	}
	switch {
	case sub == "":
		return errors.New("--sub is required")
	case aud == "" && linkURL == "":
		return errors.New("--aud is required when --url is not given")
	}
	return nil
}

// signResult is what sign --json prints.
type signResult struct {
	ID        string `json:"id"`
	Token     string `json:"token"`
	URL       string `json:"url,omitempty"`
	Subject   string `json:"sub"`
	ExpiresAt string `json:"expires_at"`
	CreatedAt string `json:"created_at"`
}

func signOne(o signOptions, sub, email, name string, asJSON bool, stdout, stderr io.Writer) int {
	aud := o.aud
	if aud == "" {
		u, err := token.ParseLinkURL(o.url)
		if err != nil {
			return failure(stderr, "sign", fmt.Errorf("--url: %w", err))
		}
		aud = origin.Of(u)
	}
	now := time.Now().UTC().Truncate(time.Second)
	c := token.Claims{
		ID:       token.NewID(),
		Once:     o.once,
		Subject:  sub,
		Audience: []string{aud},
		Issuer:   o.iss,
		Expiry:   now.Add(o.ttl),
		IssuedAt: now,
		Email:    email,
		Name:     name,
		Path:     o.path,
	}
	b, err := o.signer.AppendSign(nil, &c)
	if err != nil {
		return failure(stderr, "sign", err)
	}
	tok := string(b)
	link := ""
	if o.url != "" {
		if link, err = token.Link(o.url, o.param, tok); err != nil {
			return failure(stderr, "sign", fmt.Errorf("--url: %w", err))
		}
	}
	if !asJSON {
		out := tok
		if link != "" {
			out = link
		}
		fmt.Fprintln(stdout, out)
		return exitOK
	}
	res := signResult{
		ID:        c.ID,
		Token:     tok,
		URL:       link,
		Subject:   sub,
		ExpiresAt: c.Expiry.Format(time.RFC3339),
		CreatedAt: now.Format(time.RFC3339),
	}
	enc := json.NewEncoder(stdout)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(res); err != nil {
		return failure(stderr, "sign", err)
	}
	return exitOK
}

// isTerminal reports whether w is a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}
