package main

import (
	"encoding/base64"
	"encoding/csv"
	"strings"
	"testing"
)

// TestSignOnce checks that --once puts the claim once: true in the token, for one link and for
// every row of a CSV, and leaves it out otherwise.
func TestSignOnce(t *testing.T) {
	key := newKey(t, "EdDSA") + ".private.jwk"
	payload := func(tok string) string {
		t.Helper()
		parts := strings.Split(tok, ".")
		if len(parts) != 3 {
			t.Fatalf("not a compact token: %d parts", len(parts))
		}
		b, err := base64.RawURLEncoding.DecodeString(parts[1])
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	for _, once := range []bool{true, false} {
		args := []string{"sign", "--key", key, "--sub", "u", "--aud", "https://a.example"}
		if once {
			args = append(args, "--once")
		}
		code, stdout, stderr := cli(t, "", args...)
		if code != exitOK {
			t.Fatalf("sign: exit %d: %s", code, stderr)
		}
		if got := strings.Contains(payload(strings.TrimSpace(stdout)), `"once":true`); got != once {
			t.Errorf("sign with --once %v: claims %s", once, payload(strings.TrimSpace(stdout)))
		}

		code, stdout, stderr = cli(t, "sub\nu1\nu2\n", append(args[:3], "--aud", "https://a.example", "--csv", "-", map[bool]string{true: "--once", false: "--ttl=1h"}[once])...)
		if code != exitOK {
			t.Fatalf("sign --csv: exit %d: %s", code, stderr)
		}
		records, err := csv.NewReader(strings.NewReader(stdout)).ReadAll()
		if err != nil || len(records) != 3 {
			t.Fatalf("sign --csv output: %v, %d records", err, len(records))
		}
		for _, rec := range records[1:] {
			if got := strings.Contains(payload(rec[1]), `"once":true`); got != once {
				t.Errorf("sign --csv with --once %v: claims %s", once, payload(rec[1]))
			}
		}
	}
}
