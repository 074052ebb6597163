// Command magiclink mints and checks link tokens for the magic_link Caddy
// handler: it makes keys (keygen), signs one link or a whole CSV file of them
// (sign) and verifies a token or link the way the gateway does (verify).
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
)

const usage = `magiclink mints and checks magic links for the magic_link Caddy handler.

Usage:
  magiclink keygen [--alg EdDSA|ES256|PS256|RS256|HS256] [--kid ID] --out PREFIX
  magiclink sign --key FILE --sub ID [--aud AUD] [--iss ISS] [--ttl 24h] [--url URL]
                 [--param token] [--path PREFIX] [--email E] [--name N] [--once] [--json]
  magiclink sign --key FILE --csv FILE [--aud AUD] [--iss ISS] [--ttl 24h] [--url URL]
                 [--param token] [--path PREFIX] [--once]
  magiclink verify --keys FILE [--keys FILE]... --aud AUD [--iss ISS] [--leeway 30s]
                   [--max-link-age 720h] [--param token] TOKEN|URL|-
  magiclink revoke [--admin ADDR] (--jti ID | --sub ID)
  magiclink demo [--listen 127.0.0.1:8080]

Commands:
  keygen   write a new key pair: PREFIX.private.jwk and PREFIX.public.jwks
  sign     print a signed link (or bare token) for one user, or for every row of a CSV file
  verify   check a token or link like the gateway does and print its header and claims
  revoke   revoke a link or a user through the admin API of a running Caddy
  demo     run Caddy with magic_link in front of a demo app on 127.0.0.1 and print links to try

Run 'magiclink help COMMAND' or 'magiclink COMMAND -h' for the flags of a command.
`

// Exit codes.
const (
	exitOK      = 0
	exitFailure = 1 // an invalid token, a failed row, an unreadable file
	exitUsage   = 2 // a command line that cannot be run
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// commands maps each subcommand to the function that runs it with the
// arguments after its name and returns the exit code.
var commands = map[string]func(args []string, stdin io.Reader, stdout, stderr io.Writer) int{
	"keygen": runKeygen,
	"sign":   runSign,
	"verify": runVerify,
	"revoke": runRevoke,
	"demo":   runDemo,
}

// run executes the command line args (without the program name) and returns
// the process exit code.
func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return exitUsage
	}
	name := args[0]
	switch name {
	case "-h", "-help", "--help", "help":
		if name == "help" && len(args) > 1 {
			if _, ok := commands[args[1]]; ok {
				return commands[args[1]]([]string{"-h"}, stdin, stdout, stderr)
			}
			fmt.Fprintf(stderr, "magiclink: help: unknown command %q; run 'magiclink help' for the list\n", args[1])
			return exitUsage
		}
		fmt.Fprint(stdout, usage)
		return exitOK
	}
	cmd, ok := commands[name]
	if !ok {
		fmt.Fprintf(stderr, "magiclink: unknown command %q; run 'magiclink help' for usage\n", name)
		return exitUsage
	}
	return cmd(args[1:], stdin, stdout, stderr)
}

// newFlagSet returns a FlagSet for the subcommand name that reports nothing
// itself: parseFlags turns its errors into one line.
func newFlagSet(name, synopsis string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {
		out := fs.Output()
		fmt.Fprintf(out, "Usage:\n  %s\n\nFlags:\n", synopsis)
		fs.PrintDefaults()
	}
	return fs
}

// errUsageShown reports that the help text was printed and the command should
// end successfully.
var errUsageShown = errors.New("usage shown")

// parseFlags parses args with fs, allowing flags after positional arguments
// (magiclink verify TOKEN --aud X); "--" ends the flags. On -h it prints the
// usage on stdout and returns errUsageShown; any other problem is returned as
// an error of one line.
func parseFlags(fs *flag.FlagSet, args []string, stdout io.Writer) ([]string, error) {
	var positional []string
	for {
		err := fs.Parse(args)
		if errors.Is(err, flag.ErrHelp) {
			fs.SetOutput(stdout)
			fs.Usage()
			return nil, errUsageShown
		}
		if err != nil {
			return nil, err
		}
		rest := fs.Args()
		if consumed := len(args) - len(rest); consumed > 0 && args[consumed-1] == "--" {
			return append(positional, rest...), nil
		}
		if len(rest) == 0 {
			return positional, nil
		}
		positional = append(positional, rest[0])
		args = rest[1:]
	}
}

// usageError prints err for the subcommand name with a hint to its help and
// returns the usage exit code.
func usageError(stderr io.Writer, name string, err error) int {
	if errors.Is(err, errUsageShown) {
		return exitOK
	}
	fmt.Fprintf(stderr, "magiclink: %s: %v; run 'magiclink %s -h' for usage\n", name, err, name)
	return exitUsage
}

// failure prints err for the subcommand name and returns the failure exit code.
func failure(stderr io.Writer, name string, err error) int {
	fmt.Fprintf(stderr, "magiclink: %s: %s\n", name, oneLine(err.Error()))
	return exitFailure
}

// oneLine folds a message onto one line.
func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}
