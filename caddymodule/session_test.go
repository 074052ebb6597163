package caddymodule

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"strings"
	"testing"
	"time"
)

var (
	testSecretA = []byte("0123456789abcdef0123456789abcdef")
	testSecretB = []byte("fedcba9876543210fedcba9876543210")
	// testNow is the clock of the session tests and of FuzzSessionOpen's seed corpus.
	testNow = time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
)

// testSession returns a session valid at testNow.
func testSession() session {
	return session{
		Subject: "user-42",
		Email:   "ada@example.com",
		Name:    "Ada Lovelace",
		Path:    "/survey/42",
		LinkID:  "hV3mQy8kP2xZ0aBc",
		ID:      "c2Vzc2lvbi1pZC0x",
		Start:   testNow.Add(-time.Hour),
		Expiry:  testNow.Add(24 * time.Hour),
	}
}

func mustCodec(t testing.TB, audience string, secrets ...[]byte) *sessionCodec {
	t.Helper()
	c, err := newSessionCodec(audience, secrets...)
	if err != nil {
		t.Fatalf("newSessionCodec: %v", err)
	}
	return c
}

func mustSeal(t testing.TB, c *sessionCodec, s session) string {
	t.Helper()
	v, err := c.appendSeal(nil, s)
	if err != nil {
		t.Fatalf("seal: %v", err)
	}
	return string(v)
}

// sameSession reports whether a and b carry the same identity, scope and expiry instant.
func sameSession(a, b session) bool {
	return a.Subject == b.Subject && a.Email == b.Email && a.Name == b.Name && a.Path == b.Path &&
		a.LinkID == b.LinkID && a.ID == b.ID && a.Start.Equal(b.Start) && a.Expiry.Equal(b.Expiry)
}

// rawCookie decodes a cookie value to its bytes.
func rawCookie(t testing.TB, value string) []byte {
	t.Helper()
	raw, err := base64.RawURLEncoding.DecodeString(value)
	if err != nil {
		t.Fatalf("decoding cookie: %v", err)
	}
	return raw
}

func TestSessionRoundTrip(t *testing.T) {
	c := mustCodec(t, "https://shop.example", testSecretA)
	tests := []session{
		testSession(),
		{Subject: "u", Expiry: testNow.Add(time.Second)},
		{
			Subject: strings.Repeat("s", maxSessionField),
			Email:   strings.Repeat("e", maxSessionField),
			Name:    strings.Repeat("n", maxSessionField),
			Path:    "/" + strings.Repeat("p", maxSessionField-1),
			LinkID:  strings.Repeat("j", maxSessionField),
			Expiry:  testNow.Add(time.Hour),
		},
		{Subject: "名前\x00", Name: "Zoë \"quoted\"", Path: "/", Expiry: testNow.Add(time.Hour)},
	}
	for _, want := range tests {
		value := mustSeal(t, c, want)
		if len(value) > maxSessionCookie {
			t.Errorf("cookie is %d bytes, over %d", len(value), maxSessionCookie)
		}
		if strings.ContainsFunc(value, func(r rune) bool {
			return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_')
		}) {
			t.Errorf("cookie %q has a character outside base64url", value)
		}
		got, err := c.open(value, testNow)
		if err != nil {
			t.Fatalf("open: %v", err)
		}
		if !sameSession(got, want) {
			t.Errorf("open = %+v, want %+v", got, want)
		}
	}
}

func TestSessionExpiryKeptToTheSecond(t *testing.T) {
	c := mustCodec(t, "aud", testSecretA)
	s := testSession()
	s.Expiry = testNow.Add(90*time.Minute + 700*time.Millisecond)
	got, err := c.open(mustSeal(t, c, s), testNow)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	if want := testNow.Add(90 * time.Minute); !got.Expiry.Equal(want) {
		t.Errorf("expiry = %v, want %v", got.Expiry, want)
	}
}

func TestSessionSealsAreRandomized(t *testing.T) {
	c := mustCodec(t, "aud", testSecretA)
	if a, b := mustSeal(t, c, testSession()), mustSeal(t, c, testSession()); a == b {
		t.Error("two seals of the same session are equal: the nonce is not random")
	}
}

func TestSessionExpiry(t *testing.T) {
	c := mustCodec(t, "aud", testSecretA)
	s := testSession()
	value := mustSeal(t, c, s)
	tests := []struct {
		now  time.Time
		want error
	}{
		{s.Expiry.Add(-time.Second), nil},
		{s.Expiry.Add(-time.Nanosecond), nil},
		{s.Expiry, errSessionExpired},
		{s.Expiry.Add(time.Hour), errSessionExpired},
	}
	for _, tt := range tests {
		if _, err := c.open(value, tt.now); !errors.Is(err, tt.want) {
			t.Errorf("open at %v: err = %v, want %v", tt.now, err, tt.want)
		}
	}
}

func TestSessionOpenRejects(t *testing.T) {
	c := mustCodec(t, "https://shop.example", testSecretA)
	valid := mustSeal(t, c, testSession())
	raw := rawCookie(t, valid)
	flip := func(i int) string {
		b := bytes.Clone(raw)
		b[i] ^= 0x01
		return base64.RawURLEncoding.EncodeToString(b)
	}
	enc := base64.RawURLEncoding.EncodeToString
	tagStart := len(raw) - sessionTagSize
	tests := []struct {
		name, value string
	}{
		{"empty", ""},
		{"version", flip(0)},
		{"version 0", enc(append([]byte{0}, raw[1:]...))},
		{"key id first byte", flip(1)},
		{"key id last byte", flip(sessionKeyIDSize)},
		{"nonce first byte", flip(1 + sessionKeyIDSize)},
		{"nonce last byte", flip(sessionHeaderSize - 1)},
		{"ciphertext first byte", flip(sessionHeaderSize)},
		{"ciphertext last byte", flip(tagStart - 1)},
		{"tag first byte", flip(tagStart)},
		{"tag last byte", flip(len(raw) - 1)},
		{"truncated by one byte", enc(raw[:len(raw)-1])},
		{"truncated to the header", enc(raw[:sessionHeaderSize])},
		{"truncated value", valid[:len(valid)-1]},
		{"one byte", enc(raw[:1])},
		{"extended", enc(append(bytes.Clone(raw), 0))},
		{"bad base64", valid[:10] + "*" + valid[11:]},
		{"padding", valid + "=="},
		{"standard base64", strings.NewReplacer("-", "+", "_", "/").Replace(valid) + "+/"},
		{"newline inside", valid[:10] + "\n" + valid[10:]},
		{"carriage return inside", valid[:10] + "\r" + valid[10:]},
		{"oversize", strings.Repeat("A", maxSessionCookie+1)},
		{"oversize valid prefix", valid + strings.Repeat("A", maxSessionCookie)},
		{"a link token", "eyJhbGciOiJFZERTQSIsInR5cCI6Im1hZ2ljLWxpbmsrand0In0.eyJzdWIiOiJ1c2VyLTQyIn0.c2lnbmF0dXJlc2lnbmF0dXJl"},
		{"dots around a valid value", "." + valid + "."},
		{"random bytes", enc(bytes.Repeat([]byte{0x01, 0x42}, 60))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.value == valid {
				t.Fatal("test value equals the valid cookie")
			}
			s, err := c.open(tt.value, testNow)
			if !errors.Is(err, errSessionInvalid) {
				t.Errorf("err = %v, want errSessionInvalid", err)
			}
			if s != (session{}) {
				t.Errorf("rejected open returned a session: %+v", s)
			}
		})
	}
}

func TestSessionForeignCodecs(t *testing.T) {
	sealer := mustCodec(t, "https://shop.example", testSecretA)
	value := mustSeal(t, sealer, testSession())
	tests := []struct {
		name   string
		opener *sessionCodec
	}{
		{"other audience", mustCodec(t, "https://evil.example", testSecretA)},
		{"audience differs by a suffix", mustCodec(t, "https://shop.example.", testSecretA)},
		{"other secret", mustCodec(t, "https://shop.example", testSecretB)},
		{"secret one byte longer", mustCodec(t, "https://shop.example", append(bytes.Clone(testSecretA), 'x'))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := tt.opener.open(value, testNow); !errors.Is(err, errSessionInvalid) {
				t.Errorf("err = %v, want errSessionInvalid", err)
			}
		})
	}
}

// TestSessionAudienceBoundInAdditionalData re-encrypts a cookie's plaintext under the same key but
// with other additional data, so only the additional data can make open fail.
func TestSessionAudienceBoundInAdditionalData(t *testing.T) {
	c := mustCodec(t, "aud", testSecretA)
	value := mustSeal(t, c, testSession())
	raw := rawCookie(t, value)
	k := &c.keys[0]
	nonce := raw[1+sessionKeyIDSize : sessionHeaderSize]
	plain, err := k.aead.Open(nil, nonce, raw[sessionHeaderSize:], k.ad[sessionVersion])
	if err != nil {
		t.Fatalf("decrypting own cookie: %v", err)
	}
	control := k.aead.Seal(bytes.Clone(raw[:sessionHeaderSize]), nonce, plain, k.ad[sessionVersion])
	if _, err := c.open(base64.RawURLEncoding.EncodeToString(control), testNow); err != nil {
		t.Fatalf("re-encrypting with the right additional data: %v", err)
	}
	otherAD := append(bytes.Clone(raw[:1+sessionKeyIDSize]), "other"...)
	forged := k.aead.Seal(bytes.Clone(raw[:sessionHeaderSize]), nonce, plain, otherAD)
	if _, err := c.open(base64.RawURLEncoding.EncodeToString(forged), testNow); !errors.Is(err, errSessionInvalid) {
		t.Errorf("err = %v, want errSessionInvalid", err)
	}
}

func TestSessionRotation(t *testing.T) {
	oldCodec := mustCodec(t, "aud", testSecretA)
	rotated := mustCodec(t, "aud", testSecretB, testSecretA)
	newCodec := mustCodec(t, "aud", testSecretB)
	want := testSession()

	oldValue := mustSeal(t, oldCodec, want)
	if got, err := rotated.open(oldValue, testNow); err != nil || !sameSession(got, want) {
		t.Errorf("rotated codec opening an old cookie = %+v, %v; want %+v", got, err, want)
	}
	rotatedValue := mustSeal(t, rotated, want)
	if got, err := newCodec.open(rotatedValue, testNow); err != nil || !sameSession(got, want) {
		t.Errorf("new codec opening a cookie sealed after rotation = %+v, %v; want %+v", got, err, want)
	}
	if _, err := oldCodec.open(rotatedValue, testNow); !errors.Is(err, errSessionInvalid) {
		t.Errorf("old codec opening a cookie sealed with the new secret: err = %v, want errSessionInvalid", err)
	}
	if _, err := newCodec.open(oldValue, testNow); !errors.Is(err, errSessionInvalid) {
		t.Errorf("new codec opening a cookie of a retired secret: err = %v, want errSessionInvalid", err)
	}
}

func TestNewSessionCodecRefuses(t *testing.T) {
	tests := []struct {
		name    string
		secrets [][]byte
		wantErr string
	}{
		{"no secret", nil, "no session secret"},
		{"empty secret", [][]byte{{}}, "at least 32 bytes"},
		{"31 bytes", [][]byte{testSecretA[:31]}, "is 31 bytes"},
		{"short second secret", [][]byte{testSecretA, testSecretB[:20]}, "secret 2 is 20 bytes"},
		{"same secret twice", [][]byte{testSecretA, testSecretB, testSecretA}, "secrets 1 and 3 are the same"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := newSessionCodec("aud", tt.secrets...)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want one containing %q", err, tt.wantErr)
			}
			if c != nil {
				t.Error("a refused codec is not nil")
			}
			for _, s := range tt.secrets {
				if len(s) > 0 && strings.Contains(err.Error(), string(s)) {
					t.Error("the error echoes a secret")
				}
			}
		})
	}
}

func TestSessionSealRefuses(t *testing.T) {
	c := mustCodec(t, "aud", testSecretA)
	long := strings.Repeat("x", maxSessionField+1)
	tests := []struct {
		name    string
		edit    func(*session)
		wantErr string
	}{
		{"no subject", func(s *session) { s.Subject = "" }, "no subject"},
		{"no expiry", func(s *session) { s.Expiry = time.Time{} }, "no expiry"},
		{"long subject", func(s *session) { s.Subject = long }, "subject is 256 bytes"},
		{"long email", func(s *session) { s.Email = long }, "email is 256 bytes"},
		{"long name", func(s *session) { s.Name = long }, "name is 256 bytes"},
		{"long link id", func(s *session) { s.LinkID = long }, "link id is 256 bytes"},
		{"long path", func(s *session) { s.Path = "/" + long }, "path scope"},
		{"relative path", func(s *session) { s.Path = "survey" }, "path scope"},
		{"dot-segment path", func(s *session) { s.Path = "/survey/../admin" }, "path scope"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := testSession()
			tt.edit(&s)
			v, err := c.appendSeal([]byte("x"), s)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want one containing %q", err, tt.wantErr)
			}
			if string(v) != "x" {
				t.Errorf("a refused seal returned %q, want dst unchanged", v)
			}
		})
	}
}

func TestDecodeSessionRejectsMalformedPlaintext(t *testing.T) {
	expiry := []byte{0, 0, 0, 0, 0x70, 0, 0, 0}
	start := []byte{0, 0, 0, 0, 0x6f, 0, 0, 0}
	v1 := func(tail ...byte) []byte { return append(bytes.Clone(expiry), tail...) }
	v2 := func(tail ...byte) []byte { return append(append(bytes.Clone(expiry), start...), tail...) }
	tests := []struct {
		name    string
		version byte
		plain   []byte
	}{
		{"empty", sessionVersion, nil},
		{"expiry only", sessionVersion, expiry},
		{"expiry and start only", sessionVersion, v2()},
		{"five fields", sessionVersion, v2(1, 'a', 0, 0, 0, 0)},
		{"field past the end", sessionVersion, v2(1, 'a', 0, 0, 0, 0, 5, 'b')},
		{"trailing byte", sessionVersion, v2(1, 'a', 0, 0, 0, 0, 0, 'z')},
		{"version 1: empty", sessionVersion1, nil},
		{"version 1: four fields", sessionVersion1, v1(1, 'a', 0, 0, 0)},
		{"version 1: trailing byte", sessionVersion1, v1(1, 'a', 0, 0, 0, 0, 'z')},
		{"version 1 read as 2", sessionVersion, v1(1, 'a', 0, 0, 0, 0)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if s, ok := decodeSession(tt.version, tt.plain); ok {
				t.Errorf("decodeSession = %+v, true; want false", s)
			}
		})
	}
	if s, ok := decodeSession(sessionVersion, v2(1, 'a', 0, 0, 0, 0, 2, 'i', 'd')); !ok || s.Subject != "a" || s.ID != "id" || s.Start.Unix() != 0x6f000000 {
		t.Errorf("decodeSession of a minimal plaintext = %+v, %v; want subject a, id id and its start", s, ok)
	}
	if s, ok := decodeSession(sessionVersion1, v1(1, 'a', 0, 0, 0, 0)); !ok || s.Subject != "a" || s.ID != "" || !s.Start.IsZero() {
		t.Errorf("decodeSession of a version 1 plaintext = %+v, %v; want subject a, no id, no start", s, ok)
	}
}

// TestSessionVersion1StillOpens seals a cookie the way the previous release did (version 1: no
// start, no id) and opens it with this one.
func TestSessionVersion1StillOpens(t *testing.T) {
	c := mustCodec(t, "aud", testSecretA)
	k := &c.keys[0]
	s := testSession()
	plain := binary.BigEndian.AppendUint64(nil, uint64(s.Expiry.Unix()))
	for _, f := range []string{s.Subject, s.Email, s.Name, s.Path, s.LinkID} {
		plain = append(append(plain, byte(len(f))), f...)
	}
	header := append(append([]byte{sessionVersion1}, k.id[:]...), make([]byte, sessionNonceSize)...)
	raw := k.aead.Seal(header, header[1+sessionKeyIDSize:], plain, k.ad[sessionVersion1])
	got, err := c.open(base64.RawURLEncoding.EncodeToString(raw), testNow)
	if err != nil {
		t.Fatalf("opening a version 1 cookie: %v", err)
	}
	if got.Subject != s.Subject || got.LinkID != s.LinkID || got.Path != s.Path || got.ID != "" || !got.Start.IsZero() {
		t.Errorf("version 1 cookie opened as %+v, want %+v without id and start", got, s)
	}
	raw[0] = sessionVersion
	if _, err := c.open(base64.RawURLEncoding.EncodeToString(raw), testNow); !errors.Is(err, errSessionInvalid) {
		t.Errorf("a version 1 cookie relabelled version 2 opened: %v", err)
	}
}

func TestSessionOpenAllocations(t *testing.T) {
	c := mustCodec(t, "https://shop.example", testSecretA)
	value := mustSeal(t, c, testSession())
	allocs := testing.AllocsPerRun(100, func() {
		if _, err := c.open(value, testNow); err != nil {
			t.Fatal(err)
		}
	})
	if allocs > 5 {
		t.Errorf("open makes %.0f allocations, want at most 5", allocs)
	}
}

func BenchmarkSessionOpen(b *testing.B) {
	c := mustCodec(b, "https://shop.example", testSecretA)
	value := mustSeal(b, c, testSession())
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.open(value, testNow); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkSessionSeal(b *testing.B) {
	c := mustCodec(b, "https://shop.example", testSecretA)
	s := testSession()
	b.ReportAllocs()
	var buf [512]byte
	for b.Loop() {
		if _, err := c.appendSeal(buf[:0], s); err != nil {
			b.Fatal(err)
		}
	}
}

func FuzzSessionOpen(f *testing.F) {
	c := mustCodec(f, "https://shop.example", testSecretA)
	f.Add(mustSeal(f, c, testSession())) // more seeds are in testdata/fuzz/FuzzSessionOpen
	f.Fuzz(func(t *testing.T, value string) {
		s, err := c.open(value, testNow)
		if err != nil {
			if !errors.Is(err, errSessionInvalid) && !errors.Is(err, errSessionExpired) {
				t.Fatalf("open returned a foreign error: %v", err)
			}
			return
		}
		if strings.Contains(value, ".") {
			t.Fatalf("a value with a dot opened: %q", value)
		}
		again, err := c.open(mustSeal(t, c, s), testNow)
		if err != nil || !sameSession(again, s) {
			t.Fatalf("resealed session = %+v, %v; want %+v", again, err, s)
		}
	})
}
