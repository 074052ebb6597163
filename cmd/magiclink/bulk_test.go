package main

import (
	"bytes"
	"crypto/ed25519"
	"encoding/csv"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/magiclink-dev/magiclink/token"
)

// userCSV returns a CSV of n users with the header sub,email,name.
func userCSV(n int) []byte {
	var b bytes.Buffer
	b.WriteString("sub,email,name\n")
	for i := range n {
		fmt.Fprintf(&b, "user_%d,user%d@example.com,User Number %d\n", i, i, i)
	}
	return b.Bytes()
}

// readCSV parses out as CSV, failing the test if it is not.
func readCSV(t *testing.T, out string) [][]string {
	t.Helper()
	recs, err := csv.NewReader(strings.NewReader(out)).ReadAll()
	if err != nil {
		t.Fatalf("output is not CSV: %v\n%s", err, out)
	}
	return recs
}

func TestBulkOrderAcrossWorkers(t *testing.T) {
	prefix := newKey(t, "EdDSA")
	signer, err := token.LoadSigner(prefix + ".private.jwk")
	if err != nil {
		t.Fatal(err)
	}
	const rows = 10_000
	for _, workers := range []int{1, 4, 7} {
		t.Run(strconv.Itoa(workers), func(t *testing.T) {
			job := bulkJob{
				signOptions: signOptions{signer: signer, aud: "https://example.com", param: "token", ttl: time.Hour},
				issuedAt:    time.Now().Truncate(time.Second),
				workers:     workers,
			}
			var out, errOut bytes.Buffer
			stats, err := job.run(bytes.NewReader(userCSV(rows)), &out, &errOut)
			if err != nil || stats.failed != 0 || stats.signed != rows || errOut.Len() != 0 {
				t.Fatalf("run: %v, %+v, stderr %q", err, stats, errOut.String())
			}
			recs := readCSV(t, out.String())
			if len(recs) != rows+1 {
				t.Fatalf("%d output records, want %d", len(recs), rows+1)
			}
			v := verifier(t, prefix, "https://example.com")
			seen := map[string]bool{}
			for i, rec := range recs[1:] {
				if rec[0] != "user_"+strconv.Itoa(i) {
					t.Fatalf("record %d is %q: order lost", i, rec[0])
				}
				if i%97 != 0 {
					continue
				}
				_, c, err := v.Verify(rec[3])
				if err != nil || c.Subject != rec[0] || c.Email != rec[1] || c.Name != rec[2] {
					t.Fatalf("record %d: token does not verify for its row: %v %+v", i, err, c)
				}
				if seen[c.ID] {
					t.Fatalf("record %d: jti %q repeated", i, c.ID)
				}
				seen[c.ID] = true
			}
		})
	}
}

func TestBulkRows(t *testing.T) {
	prefix := newKey(t, "EdDSA")
	key := prefix + ".private.jwk"
	code, stdout, stderr := cli(t, "", "sign", "--key", key, "--csv", "testdata/users.csv", "--url", "https://shop.example.com/welcome?utm=mail", "--path", "/app", "--ttl", "2h")
	if code != exitFailure {
		t.Errorf("exit %d, want 1 because rows failed", code)
	}
	wantErrs := []string{
		"magiclink: sign: line 6: sub is empty",
		"magiclink: sign: line 7: url: not an absolute http or https URL",
		"magiclink: sign: line 8: has 4 fields but the header has 6",
		"magiclink: sign: line 10: url: URL has no host",
		`magiclink: sign: line 11: extraneous or missing " in quoted-field`,
		"magiclink: sign: 5 of 10 rows failed and were left out",
	}
	if got := strings.Split(strings.TrimSuffix(stderr, "\n"), "\n"); strings.Join(got, "\n") != strings.Join(wantErrs, "\n") {
		t.Errorf("stderr:\n%s\nwant:\n%s", stderr, strings.Join(wantErrs, "\n"))
	}
	recs := readCSV(t, stdout)
	if got, want := strings.Join(recs[0], ","), "name,sub,Email,team,url,path,token,link,expires_at"; got != want {
		t.Errorf("header %q, want %q", got, want)
	}
	want := []struct {
		sub, email, name, team, aud, url, path string
	}{
		{"u1", "a@example.com", "Ann", "red", "https://shop.example.com", "https://shop.example.com/welcome?utm=mail", "/app"},
		{"u2", "", "Bob \"B\", Jr.", "multi\nline\nteam", "https://shop.example.com", "https://shop.example.com/welcome?utm=mail", "/survey/2"},
		{"u3", "c@example.com", "", "", "https://other.example.org:8443", "https://Other.example.org:8443/x?token=old&k=v", "/app"},
		{"u4", "d@example.com", "Dee", " padded", "https://shop.example.com", "https://shop.example.com/welcome?utm=mail", "/app"},
		{"u5", "e@example.com", "Eve", "", "https://shop.example.com", "https://shop.example.com/welcome?utm=mail", "/app"},
	}
	if len(recs) != len(want)+1 {
		t.Fatalf("%d output records, want %d:\n%s", len(recs), len(want)+1, stdout)
	}
	for i, w := range want {
		rec := recs[i+1]
		if rec[0] != w.name || rec[1] != w.sub || rec[2] != w.email || rec[3] != w.team {
			t.Errorf("row %d passthrough: %q", i, rec[:4])
		}
		c := checkToken(t, prefix, w.aud, rec[6])
		if c.Subject != w.sub || c.Email != w.email || c.Name != w.name || c.Path != w.path {
			t.Errorf("row %d claims %+v, want %+v", i, c, w)
		}
		if len(c.Audience) != 1 || c.Audience[0] != w.aud {
			t.Errorf("row %d aud %q, want %q", i, c.Audience, w.aud)
		}
		link, err := token.Link(w.url, "token", rec[6])
		if err != nil || rec[7] != link {
			t.Errorf("row %d link %q, want %q (%v)", i, rec[7], link, err)
		}
		if exp := c.Expiry.UTC().Format(time.RFC3339); rec[8] != exp || c.Expiry.Sub(c.IssuedAt) != 2*time.Hour {
			t.Errorf("row %d expires_at %q, token exp %q iat %v", i, rec[8], exp, c.IssuedAt)
		}
	}
}

func TestBulkAudience(t *testing.T) {
	prefix := newKey(t, "EdDSA")
	key := prefix + ".private.jwk"
	input := "sub,url\nu1,https://a.example.com/x\nu2,\n"
	tests := []struct {
		name    string
		args    []string
		code    int
		auds    []string // per output row
		links   []bool
		stderrs string
	}{
		{"--aud for all rows", []string{"--aud", "https://gw.example.com"}, exitOK, []string{"https://gw.example.com", "https://gw.example.com"}, []bool{true, false}, ""},
		{"origin of row url or --url", []string{"--url", "https://b.example.com/"}, exitOK, []string{"https://a.example.com", "https://b.example.com"}, []bool{true, true}, ""},
		{"no audience for a row", nil, exitFailure, []string{"https://a.example.com"}, []bool{true},
			"magiclink: sign: line 3: no audience: give --aud, --url or a url in this row\nmagiclink: sign: 1 of 2 rows failed and were left out\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := append([]string{"sign", "--key", key, "--csv", "-"}, tt.args...)
			code, stdout, stderr := cli(t, input, args...)
			if code != tt.code || stderr != tt.stderrs {
				t.Errorf("exit %d stderr %q, want %d %q", code, stderr, tt.code, tt.stderrs)
			}
			recs := readCSV(t, stdout)
			if len(recs) != len(tt.auds)+1 {
				t.Fatalf("%d records, want %d", len(recs), len(tt.auds)+1)
			}
			for i, aud := range tt.auds {
				rec := recs[i+1]
				checkToken(t, prefix, aud, rec[2])
				if (rec[3] != "") != tt.links[i] {
					t.Errorf("row %d link %q, want a link: %v", i, rec[3], tt.links[i])
				}
			}
		})
	}
}

func TestBulkFailures(t *testing.T) {
	prefix := newKey(t, "EdDSA")
	key := prefix + ".private.jwk"
	tests := []struct {
		name  string
		input string
		args  []string
		code  int
		want  string
	}{
		{"empty input", "", nil, exitFailure, "the file is empty"},
		{"no sub column", "email,name\na@b.c,A\n", nil, exitFailure, "the header (line 1) has no sub column"},
		{"duplicate column", "sub,Sub\nx,y\n", nil, exitFailure, "names the sub column twice"},
		{"output column in input", "sub,token\nx,y\n", nil, exitFailure, "the header has a token column"},
		{"bad header", "sub,\"a\n", nil, exitFailure, `--csv: line 1: extraneous or missing " in quoted-field`},
		{"missing file", "", []string{"--csv", "testdata/nope.csv"}, exitFailure, "open testdata/nope.csv: no such file"},
		{"bad --path", "sub\nu1\n", []string{"--path", "survey"}, exitUsage, `magiclink: sign: --path "survey": path must start with "/"; the gateway could never accept it`},
		{"--sub with --csv", "", []string{"--sub", "x"}, exitUsage, "--sub cannot be used with --csv"},
		{"--json with --csv", "", []string{"--json"}, exitUsage, "--json cannot be used with --csv"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := []string{"sign", "--key", key, "--aud", "https://a.example"}
			if len(tt.args) == 0 || tt.args[0] != "--csv" {
				args = append(args, "--csv", "-")
			}
			code, stdout, stderr := cli(t, tt.input, append(args, tt.args...)...)
			if code != tt.code || stdout != "" {
				t.Errorf("exit %d stdout %q, want exit %d and no output", code, stdout, tt.code)
			}
			oneErrorLine(t, stderr, tt.want)
		})
	}
}

func TestBulkHeaderBOMAndCase(t *testing.T) {
	prefix := newKey(t, "EdDSA")
	code, stdout, stderr := cli(t, "\ufeffSUB , Email\nu1,a@example.com\n", "sign", "--key", prefix+".private.jwk", "--csv", "-", "--aud", "https://a.example")
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	recs := readCSV(t, stdout)
	c := checkToken(t, prefix, "https://a.example", recs[1][2])
	if c.Subject != "u1" || c.Email != "a@example.com" {
		t.Errorf("claims %+v", c)
	}
}

func TestProgressOnlyOnTerminal(t *testing.T) {
	f, err := os.Create(filepath.Join(t.TempDir(), "stderr"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if isTerminal(f) || isTerminal(&bytes.Buffer{}) {
		t.Error("a regular file or a buffer is taken for a terminal")
	}
}

// TestBulkAwkwardFields checks that rows with fields needing CSV quoting
// come out as CSV that reads back to the input fields plus token, link and
// expires_at, and that the link is made from the row's url or --url.
func TestBulkAwkwardFields(t *testing.T) {
	prefix := newKey(t, "EdDSA")
	const aud = "https://gw.example.com"
	tests := []struct {
		name  string
		input string
		url   string     // --url
		want  [][]string // the input records, header first
	}{
		{"double quotes", "sub,name\nu1,\"say \"\"hi\"\"\"\n", "",
			[][]string{{"sub", "name"}, {"u1", `say "hi"`}}},
		{"lone double quote", "sub,name\nu1,\"\"\"\"\n", "",
			[][]string{{"sub", "name"}, {"u1", `"`}}},
		{"commas", "sub,name\n\"u,1\",\"a,b,c\"\n", "",
			[][]string{{"sub", "name"}, {"u,1", "a,b,c"}}},
		{"LF and CR in fields", "sub,note,more\nu1,\"two\nlines\",\"cr\rhere\"\n", "",
			[][]string{{"sub", "note", "more"}, {"u1", "two\nlines", "cr\rhere"}}},
		{"CRLF line ends", "sub,note\r\nu1,\"a\r\nb\"\r\nu2,c\r\n", "",
			[][]string{{"sub", "note"}, {"u1", "a\nb"}, {"u2", "c"}}},
		{"leading space", "sub,name,note,nbsp\nu1, Ann,\tTab,\u00a0x\n", "",
			[][]string{{"sub", "name", "note", "nbsp"}, {"u1", " Ann", "\tTab", "\u00a0x"}}},
		{"trailing space", "sub,name\nu1,Ann \n", "",
			[][]string{{"sub", "name"}, {"u1", "Ann "}}},
		{"backslash dot", "sub,note\nu1,\\.\n", "",
			[][]string{{"sub", "note"}, {"u1", `\.`}}},
		{"empty fields", "sub,email,name,note\nu1,,,\nu2,\"\",,\"\"\n", "",
			[][]string{{"sub", "email", "name", "note"}, {"u1", "", "", ""}, {"u2", "", "", ""}}},
		{"awkward header names", "sub,\"a,b\",\" c\",\"d\"\"\"\nu1,1,2,3\n", "",
			[][]string{{"sub", "a,b", " c", `d"`}, {"u1", "1", "2", "3"}}},
		{"url column with a comma and a quote", "sub,url\nu1,\"https://example.com/p?a=1,2\"\nu2,\"https://example.com/p?q=\"\"x\"\"\"\n", "",
			[][]string{{"sub", "url"}, {"u1", "https://example.com/p?a=1,2"}, {"u2", `https://example.com/p?q="x"`}}},
		{"--url with a comma and a quote", "sub,name\nu1,\"A, \"\"B\"\"\"\n", `https://example.com/p?a=1,2&q="x"#f,g`,
			[][]string{{"sub", "name"}, {"u1", `A, "B"`}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if in := readCSV(t, tt.input); !slices.EqualFunc(in, tt.want, slices.Equal) {
				t.Fatalf("the test input reads as %q, want %q", in, tt.want)
			}
			args := []string{"sign", "--key", prefix + ".private.jwk", "--csv", "-", "--aud", aud}
			if tt.url != "" {
				args = append(args, "--url", tt.url)
			}
			code, stdout, stderr := cli(t, tt.input, args...)
			if code != exitOK || stderr != "" {
				t.Fatalf("exit %d: %s", code, stderr)
			}
			recs := readCSV(t, stdout)
			if len(recs) != len(tt.want) {
				t.Fatalf("%d output records, want %d:\n%s", len(recs), len(tt.want), stdout)
			}
			header := tt.want[0]
			if got, want := recs[0], append(slices.Clip(header), "token", "link", "expires_at"); !slices.Equal(got, want) {
				t.Errorf("header %q, want %q", got, want)
			}
			for i, in := range tt.want[1:] {
				rec := recs[i+1]
				if len(rec) != len(in)+3 || !slices.Equal(rec[:len(in)], in) {
					t.Fatalf("record %d is %q, want %q and three more fields", i, rec, in)
				}
				tok, link, exp := rec[len(in)], rec[len(in)+1], rec[len(in)+2]
				c := checkToken(t, prefix, aud, tok)
				if c.Subject != in[0] {
					t.Errorf("record %d: token sub %q, want %q", i, c.Subject, in[0])
				}
				if got := c.Expiry.UTC().Format(time.RFC3339); exp != got {
					t.Errorf("record %d: expires_at %q, token exp %q", i, exp, got)
				}
				u := tt.url
				if k := slices.Index(header, "url"); k >= 0 {
					u = in[k]
				}
				want := ""
				if u != "" {
					var err error
					if want, err = token.Link(u, "token", tok); err != nil {
						t.Fatal(err)
					}
				}
				if link != want {
					t.Errorf("record %d: link %q, want %q", i, link, want)
				}
			}
		})
	}
}

// TestBulkOutputBytes pins the output format: LF line ends, fields quoted
// only when needed, quotes doubled.
func TestBulkOutputBytes(t *testing.T) {
	prefix := newKey(t, "EdDSA")
	code, stdout, stderr := cli(t, "sub,\"n,ote\"\r\nu1,\"say \"\"hi\"\"\"\r\n", "sign", "--key", prefix+".private.jwk", "--csv", "-", "--url", "https://example.com/p?a=1,2")
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	recs := readCSV(t, stdout)
	tok, exp := recs[1][2], recs[1][4]
	want := "sub,\"n,ote\",token,link,expires_at\n" +
		"u1,\"say \"\"hi\"\"\"," + tok + ",\"https://example.com/p?a=1,2&token=" + tok + "\"," + exp + "\n"
	if stdout != want {
		t.Errorf("output\n%q\nwant\n%q", stdout, want)
	}
}

func TestBulkLinkNeedingQuotes(t *testing.T) {
	prefix := newKey(t, "EdDSA")
	u := `https://example.com/p?a=1,2&q="x"`
	code, stdout, stderr := cli(t, "sub\nu1\n", "sign", "--key", prefix+".private.jwk", "--csv", "-", "--url", u)
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	recs := readCSV(t, stdout)
	if want, _ := token.Link(u, "token", recs[1][1]); recs[1][2] != want {
		t.Errorf("link %q, want %q", recs[1][2], want)
	}
}

// BenchmarkBulkSign measures sign --csv on b.N rows with all cores, as links
// per second.
func BenchmarkBulkSign(b *testing.B) {
	dir := b.TempDir()
	prefix := filepath.Join(dir, "k")
	if code := run([]string{"keygen", "--out", prefix}, nil, io.Discard, os.Stderr); code != exitOK {
		b.Fatal("keygen failed")
	}
	input := userCSV(b.N)
	args := []string{"sign", "--key", prefix + ".private.jwk", "--csv", "-", "--url", "https://shop.example.com/welcome?utm_source=email&utm_campaign=spring"}
	b.ResetTimer()
	start := time.Now()
	if code := run(args, bytes.NewReader(input), io.Discard, os.Stderr); code != exitOK {
		b.Fatal("sign --csv failed")
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "links/s")
}

// BenchmarkRawEd25519SignParallel measures ed25519.Sign of a message the size
// of a link token's signing input on all cores: the rate BenchmarkBulkSign is
// held to (≥ 0.75 ×, see the README's Performance section).
func BenchmarkRawEd25519SignParallel(b *testing.B) {
	_, priv, err := ed25519.GenerateKey(nil)
	if err != nil {
		b.Fatal(err)
	}
	msg := bytes.Repeat([]byte("x"), 250)
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			ed25519.Sign(priv, msg)
		}
	})
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "signs/s")
}
