package main

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"

	"github.com/magiclink-dev/magiclink/token"
)

func runKeygen(args []string, _ io.Reader, stdout, stderr io.Writer) int {
	flags := newFlagSet("keygen", "magiclink keygen [--alg EdDSA|ES256|PS256|RS256|HS256] [--kid ID] --out PREFIX")
	alg := flags.String("alg", "EdDSA", "signing `algorithm`: EdDSA, ES256, PS256, RS256 or HS256 (a shared secret)")
	kid := flags.String("kid", "", "key `id` (default: the RFC 7638 SHA-256 thumbprint of the key)")
	out := flags.String("out", "", "write `PREFIX`.private.jwk and PREFIX.public.jwks (required)")
	rest, err := parseFlags(flags, args, stdout)
	if err != nil {
		return usageError(stderr, "keygen", err)
	}
	switch {
	case len(rest) > 0:
		return usageError(stderr, "keygen", fmt.Errorf("unexpected argument %q", rest[0]))
	case *out == "":
		return usageError(stderr, "keygen", errors.New("--out is required"))
	}

	privPath, pubPath := *out+".private.jwk", *out+".public.jwks"
	for _, p := range []string{privPath, pubPath} {
		if _, err := os.Lstat(p); err == nil {
			return failure(stderr, "keygen", fmt.Errorf("%s already exists; remove it or choose another --out", p))
		}
	}
	priv, pub, err := token.GenerateKey(*alg, *kid)
	if err != nil {
		return failure(stderr, "keygen", err)
	}
	signer, err := token.ParseSigner(priv)
	if err != nil {
		return failure(stderr, "keygen", err)
	}
	pubMode := fs.FileMode(0o644)
	if signer.Algorithm() == "HS256" {
		pubMode = 0o600
	}
	if err := writeNew(privPath, priv, 0o600); err != nil {
		return failure(stderr, "keygen", err)
	}
	if err := writeNew(pubPath, pub, pubMode); err != nil {
		os.Remove(privPath)
		return failure(stderr, "keygen", err)
	}
	secret := "private key: keep it secret"
	public := "public keys: give this to the gateway"
	if signer.Algorithm() == "HS256" {
		public = "the same secret: keep it secret too"
	}
	fmt.Fprintf(stdout, "wrote %s (%s)\nwrote %s (%s)\nalg: %s\nkid: %s\n",
		privPath, secret, pubPath, public, signer.Algorithm(), signer.KeyID())
	return exitOK
}

// writeNew creates path with data and mode; it never replaces an existing file.
func writeNew(path string, data []byte, mode fs.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("%s already exists; remove it or choose another --out", path)
	}
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(path)
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}
