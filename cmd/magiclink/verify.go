package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/magiclink-dev/magiclink/internal/queryparam"
	"github.com/magiclink-dev/magiclink/token"
)

const verifySynopsis = `magiclink verify --keys FILE [--keys FILE]... --aud AUD [--iss ISS] [--leeway 30s]
                   [--max-link-age 720h] [--param token] TOKEN|URL|-

Checks a link token, or the token in a link's query, with the gateway's rules
and prints its header and claims as JSON. "-" reads the token or link from
standard input, which keeps it out of the shell history. Exit code 0 means
valid, 1 invalid (the reason is printed on standard error).`

// fileList is a flag that may be given more than once.
type fileList []string

func (l *fileList) String() string { return strings.Join(*l, ",") }

func (l *fileList) Set(v string) error {
	if v == "" {
		return errors.New("empty file name")
	}
	*l = append(*l, v)
	return nil
}

// verifyOutput is what verify prints for a valid token.
type verifyOutput struct {
	Header token.Header  `json:"header"`
	Claims *token.Claims `json:"claims"`
}

func runVerify(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	flags := newFlagSet("verify", verifySynopsis)
	var keyFiles fileList
	flags.Var(&keyFiles, "keys", "verification key `file` (JWK, JWKS or PEM); repeat for several (required)")
	aud := flags.String("aud", "", "`audience` the token must be for, as the gateway's audience setting (required)")
	iss := flags.String("iss", "", "`issuer` the token must name, as the gateway's issuer setting")
	leeway := flags.Duration("leeway", token.DefaultLeeway, "allowed clock skew")
	maxAge := flags.Duration("max-link-age", token.DefaultMaxLinkAge, "longest accepted lifetime (exp - iat) of a link")
	param := flags.String("param", queryparam.DefaultName, "query parameter `name` that carries the token in a URL")
	rest, err := parseFlags(flags, args, stdout)
	if err != nil {
		return usageError(stderr, "verify", err)
	}
	switch {
	case len(keyFiles) == 0:
		err = errors.New("--keys is required")
	case *aud == "":
		err = errors.New("--aud is required")
	case *leeway < 0:
		err = fmt.Errorf("--leeway must not be negative, not %v", *leeway)
	case *maxAge <= 0:
		err = fmt.Errorf("--max-link-age must be positive, not %v", *maxAge)
	case len(rest) == 0:
		err = errors.New("give the token or link to check (or - to read it from standard input)")
	case len(rest) > 1:
		err = errors.New("give exactly one token or link")
	}
	if err != nil {
		return usageError(stderr, "verify", err)
	}

	arg := rest[0]
	if arg == "-" {
		if arg, err = readArg(stdin); err != nil {
			return failure(stderr, "verify", err)
		}
	}
	tok, err := tokenFromArg(arg, *param)
	if err != nil {
		return failure(stderr, "verify", err)
	}
	keys, err := token.LoadKeys(keyFiles...)
	if err != nil {
		return failure(stderr, "verify", err)
	}
	warned := map[string]bool{}
	for _, k := range keys {
		if k.FromPrivate() && !warned[k.Source()] {
			warned[k.Source()] = true
			fmt.Fprintf(stderr, "magiclink: verify: warning: %s holds a private key; only its public half is used\n", k.Source())
		}
	}
	v, err := token.NewVerifier(keys, token.Config{Audience: *aud, Issuer: *iss, Leeway: *leeway, MaxLinkAge: *maxAge})
	if err != nil {
		return failure(stderr, "verify", err)
	}
	header, claims, err := v.Verify(tok)
	if err != nil {
		fmt.Fprintf(stderr, "magiclink: verify: invalid token: %s (%s)\n", token.Reason(err), oneLine(err.Error()))
		return exitFailure
	}
	out, err := json.MarshalIndent(verifyOutput{Header: header, Claims: claims}, "", "  ")
	if err != nil {
		return failure(stderr, "verify", err)
	}
	fmt.Fprintf(stdout, "%s\n", out)
	return exitOK
}

// readArg reads one token or link from r: its first line, trimmed.
func readArg(r io.Reader) (string, error) {
	line, err := bufio.NewReader(io.LimitReader(r, 64<<10)).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("reading standard input: %w", err)
	}
	line = strings.TrimSpace(line)
	if line == "" {
		return "", errors.New("standard input holds no token or link")
	}
	return line, nil
}

// tokenFromArg returns the token in arg: arg itself, or the param query
// parameter when arg is an http or https URL.
func tokenFromArg(arg, param string) (string, error) {
	if !strings.HasPrefix(arg, "http://") && !strings.HasPrefix(arg, "https://") {
		return arg, nil
	}
	u, err := token.ParseLinkURL(arg)
	if err != nil {
		return "", fmt.Errorf("the link: %w", err)
	}
	switch value, n := queryparam.Find(u.RawQuery, param); n {
	case 0:
		return "", fmt.Errorf("the link has no %s query parameter; use --param if the gateway uses another name", param)
	case 1:
		return value, nil
	default:
		return "", fmt.Errorf("the link has %d %s query parameters; the gateway rejects that", n, param)
	}
}
