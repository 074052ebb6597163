package main

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"

	"github.com/magiclink-dev/magiclink/token"
)

// cli runs the command line args in-process with stdin as standard input.
func cli(t *testing.T, stdin string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = run(args, strings.NewReader(stdin), &out, &errOut)
	return code, out.String(), errOut.String()
}

// newKey runs keygen for alg in a fresh directory and returns the prefix.
func newKey(t *testing.T, alg string) string {
	t.Helper()
	prefix := filepath.Join(t.TempDir(), "k")
	if code, _, stderr := cli(t, "", "keygen", "--alg", alg, "--out", prefix); code != exitOK {
		t.Fatalf("keygen --alg %s: exit %d: %s", alg, code, stderr)
	}
	return prefix
}

// verifier returns a Verifier for the public keys of prefix and aud.
func verifier(t *testing.T, prefix, aud string) *token.Verifier {
	t.Helper()
	keys, err := token.LoadKeys(prefix + ".public.jwks")
	if err != nil {
		t.Fatal(err)
	}
	v, err := token.NewVerifier(keys, token.Config{Audience: aud, Leeway: token.DefaultLeeway})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// checkToken verifies tok with the public keys of prefix for aud and returns
// its claims.
func checkToken(t *testing.T, prefix, aud, tok string) *token.Claims {
	t.Helper()
	_, c, err := verifier(t, prefix, aud).Verify(tok)
	if err != nil {
		t.Fatalf("token for %s does not verify: %v", aud, err)
	}
	return c
}

// oneErrorLine fails unless stderr is exactly one line containing want.
func oneErrorLine(t *testing.T, stderr, want string) {
	t.Helper()
	if strings.Count(stderr, "\n") != 1 || !strings.HasSuffix(stderr, "\n") {
		t.Errorf("stderr is not one line: %q", stderr)
	}
	if !strings.HasPrefix(stderr, "magiclink: ") || !strings.Contains(stderr, want) {
		t.Errorf("stderr = %q, want a magiclink: line containing %q", stderr, want)
	}
}

func TestUsage(t *testing.T) {
	tests := []struct {
		name       string
		args       []string
		code       int
		stdout     []string // substrings of stdout
		stderrLine string   // when set, stderr is one line containing it
	}{
		{name: "no arguments", args: nil, code: exitUsage},
		{name: "-h", args: []string{"-h"}, code: exitOK, stdout: []string{"keygen", "sign", "verify", "--csv"}},
		{name: "--help", args: []string{"--help"}, code: exitOK, stdout: []string{"keygen", "sign", "verify"}},
		{name: "help", args: []string{"help"}, code: exitOK, stdout: []string{"keygen", "sign", "verify"}},
		{name: "help sign", args: []string{"help", "sign"}, code: exitOK, stdout: []string{"-csv", "-sub", "-ttl duration", "(default 24h0m0s)"}},
		{name: "help verify", args: []string{"help", "verify"}, code: exitOK, stdout: []string{"-keys file", "-max-link-age", "(default 720h0m0s)", "(default 30s)"}},
		{name: "keygen -h", args: []string{"keygen", "-h"}, code: exitOK, stdout: []string{"-out PREFIX", "-alg algorithm"}},
		{name: "help unknown", args: []string{"help", "frob"}, code: exitUsage, stderrLine: `unknown command "frob"`},
		{name: "unknown command", args: []string{"frob"}, code: exitUsage, stderrLine: `unknown command "frob"; run 'magiclink help' for usage`},
		{name: "unknown flag", args: []string{"sign", "--frob"}, code: exitUsage, stderrLine: "magiclink: sign: flag provided but not defined: -frob; run 'magiclink sign -h' for usage"},
		{name: "bad flag value", args: []string{"verify", "--leeway", "soon"}, code: exitUsage, stderrLine: `invalid value "soon" for flag -leeway`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := cli(t, "", tt.args...)
			if code != tt.code {
				t.Errorf("exit %d, want %d", code, tt.code)
			}
			for _, s := range tt.stdout {
				if !strings.Contains(stdout, s) {
					t.Errorf("stdout lacks %q:\n%s", s, stdout)
				}
			}
			switch {
			case tt.stderrLine != "":
				oneErrorLine(t, stderr, tt.stderrLine)
			case tt.args == nil:
				if !strings.Contains(stderr, "magiclink keygen") || stdout != "" {
					t.Errorf("no arguments: want usage on stderr only, got stdout %q stderr %q", stdout, stderr)
				}
			case stderr != "":
				t.Errorf("unexpected stderr %q", stderr)
			}
		})
	}
}

func TestParseFlagsInterspersed(t *testing.T) {
	tests := []struct {
		args []string
		aud  string
		pos  []string
	}{
		{args: []string{"--aud", "x", "T"}, aud: "x", pos: []string{"T"}},
		{args: []string{"T", "--aud", "x"}, aud: "x", pos: []string{"T"}},
		{args: []string{"A", "--aud", "x", "B"}, aud: "x", pos: []string{"A", "B"}},
		{args: []string{"--aud", "x", "--", "--aud", "y"}, aud: "x", pos: []string{"--aud", "y"}},
		{args: []string{"A", "--", "-B"}, aud: "", pos: []string{"A", "-B"}},
	}
	for _, tt := range tests {
		fs := newFlagSet("t", "t")
		aud := fs.String("aud", "", "")
		pos, err := parseFlags(fs, tt.args, &bytes.Buffer{})
		if err != nil {
			t.Fatalf("%q: %v", tt.args, err)
		}
		if *aud != tt.aud || strings.Join(pos, " ") != strings.Join(tt.pos, " ") {
			t.Errorf("%q: aud %q positional %q, want %q %q", tt.args, *aud, pos, tt.aud, tt.pos)
		}
	}
}

// TestReadmeWalkthrough is the quick start: make a key, sign a link, verify it.
func TestReadmeWalkthrough(t *testing.T) {
	prefix := filepath.Join(t.TempDir(), "shop")
	code, stdout, stderr := cli(t, "", "keygen", "--out", prefix)
	if code != exitOK {
		t.Fatalf("keygen: exit %d: %s", code, stderr)
	}
	if !strings.Contains(stdout, prefix+".private.jwk") || !strings.Contains(stdout, prefix+".public.jwks") {
		t.Errorf("keygen output does not name both files:\n%s", stdout)
	}
	code, link, stderr := cli(t, "", "sign", "--key", prefix+".private.jwk", "--url", "https://example.com/welcome", "--sub", "user_1")
	if code != exitOK {
		t.Fatalf("sign: exit %d: %s", code, stderr)
	}
	link = strings.TrimSpace(link)
	if !strings.HasPrefix(link, "https://example.com/welcome?token=ey") {
		t.Fatalf("sign printed %q, want a link to https://example.com/welcome?token=…", link)
	}
	code, stdout, stderr = cli(t, "", "verify", "--keys", prefix+".public.jwks", "--aud", "https://example.com", link)
	if code != exitOK {
		t.Fatalf("verify: exit %d: %s", code, stderr)
	}
	for _, want := range []string{`"sub": "user_1"`, `"aud": "https://example.com"`, `"typ": "magic-link+jwt"`, `"alg": "EdDSA"`} {
		if !strings.Contains(stdout, want) {
			t.Errorf("verify output lacks %s:\n%s", want, stdout)
		}
	}
}
