package caddymodule

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/magiclink-dev/magiclink/internal/pathscope"
)

// session is the identity a session cookie carries.
type session struct {
	Subject, Email, Name string
	Path                 string    // the path scope ("" = whole site)
	LinkID               string    // jti of the link that opened the session
	ID                   string    // the session's own random id, for sign-out ("" in cookies of version 1)
	Start                time.Time // when the session was opened (zero in cookies of version 1)
	Expiry               time.Time // the session's own expiry (sealed inside; Max-Age is not trusted)
}

// Errors returned by sessionCodec.open. Every rejection is one of these two.
var (
	errSessionInvalid = errors.New("session cookie is invalid: tampered, truncated, foreign or malformed")
	errSessionExpired = errors.New("session cookie has expired")
)

// Limits of the session cookie. Every field is at most maxSessionField bytes, so a sealed cookie is
// at most maxSessionCookie bytes however the fields are filled.
const (
	minSessionSecret = 32
	maxSessionField  = 255
	maxSessionCookie = 4096
)

// The cookie value is base64url without padding (RFC 4648 §5) of
//
//	version (1 byte, sessionVersion)
//	key id  (4 bytes, derived with the key from the secret and the audience)
//	nonce   (12 random bytes)
//	AES-256-GCM ciphertext of the plaintext, then the 16-byte tag
//
// The additional data is version || key id || audience. The plaintext is the expiry and the start
// as big-endian int64s of Unix seconds followed by Subject, Email, Name, Path, LinkID and ID, each as
// one length byte and its bytes. Cookies of version 1, sealed before sessions had an id and a
// start, still open until they expire: their plaintext has no start and no ID.
//
// The base64url alphabet has no '.', so a cookie value never parses as a link token (a compact JWS
// is three segments joined by dots), and a link token never opens as a cookie (its dots are not
// base64url).
const (
	sessionVersion     = 2
	sessionVersion1    = 1
	sessionKeyIDSize   = 4
	sessionNonceSize   = 12
	sessionHeaderSize  = 1 + sessionKeyIDSize + sessionNonceSize
	sessionTagSize     = 16
	sessionFieldCount  = 6
	sessionMinPlain    = 8 + 8 + sessionFieldCount
	sessionMinPlainV1  = 8 + sessionFieldCount - 1
	sessionMinRaw      = sessionHeaderSize + sessionMinPlainV1 + sessionTagSize
	sessionKeyLabel    = "magiclink session v1"
	sessionDerivedSize = 32 + sessionKeyIDSize
	sessionIDSize      = 12 // random bytes of a session id
)

var sessionEncoding = base64.RawURLEncoding.Strict()

// sessionKey is one key derived from one secret.
type sessionKey struct {
	id   [sessionKeyIDSize]byte
	aead cipher.AEAD
	ad   [3][]byte // ad[v] is version v || id || audience, for versions 1 and 2
}

// sessionCodec seals and opens session cookie values. It is safe for concurrent use.
type sessionCodec struct {
	keys []sessionKey // keys[0] seals
}

// newSessionCodec derives the cookie keys from secrets (each ≥ 32 bytes; the first seals, all open,
// so a secret can be rotated) and binds every cookie to audience.
func newSessionCodec(audience string, secrets ...[]byte) (*sessionCodec, error) {
	if len(secrets) == 0 {
		return nil, errors.New("no session secret: give session_secret (at least 32 bytes)")
	}
	c := &sessionCodec{keys: make([]sessionKey, 0, len(secrets))}
	for i, secret := range secrets {
		if len(secret) < minSessionSecret {
			return nil, fmt.Errorf("session secret %d is %d bytes: it must be at least %d bytes", i+1, len(secret), minSessionSecret)
		}
		derived, err := hkdf.Key(sha256.New, secret, nil, sessionKeyLabel+"\x00"+audience, sessionDerivedSize)
		if err != nil {
			return nil, fmt.Errorf("deriving session key %d: %w", i+1, err)
		}
		block, err := aes.NewCipher(derived[:32])
		if err != nil {
			return nil, fmt.Errorf("session key %d: %w", i+1, err)
		}
		aead, err := cipher.NewGCM(block)
		if err != nil {
			return nil, fmt.Errorf("session key %d: %w", i+1, err)
		}
		k := sessionKey{aead: aead}
		copy(k.id[:], derived[32:])
		for j, other := range c.keys {
			if other.id == k.id {
				return nil, fmt.Errorf("session secrets %d and %d are the same: remove one", j+1, i+1)
			}
		}
		for _, v := range []byte{sessionVersion1, sessionVersion} {
			k.ad[v] = append(append([]byte{v}, k.id[:]...), audience...)
		}
		c.keys = append(c.keys, k)
	}
	return c, nil
}

// appendSeal appends the cookie value for s to dst: at most 4096 bytes of base64url without padding.
// Subject must be 1–255 bytes, the other fields at most 255 bytes, Path a valid scope (see
// pathscope.Check), and Expiry set; it is kept to the second. On error, dst is returned as it was.
func (c *sessionCodec) appendSeal(dst []byte, s session) ([]byte, error) {
	if s.Subject == "" {
		return dst, errors.New("session has no subject: a session needs the link's sub")
	}
	if s.Expiry.IsZero() {
		return dst, errors.New("session has no expiry: set Expiry")
	}
	if pathscope.Check(s.Path) != nil {
		return dst, errors.New("session path scope is not a valid path prefix: it must be empty or a clean absolute path")
	}
	fields := [sessionFieldCount]string{s.Subject, s.Email, s.Name, s.Path, s.LinkID, s.ID}
	names := [sessionFieldCount]string{"subject", "email", "name", "path", "link id", "id"}
	plainLen := 16
	for i, f := range fields {
		if len(f) > maxSessionField {
			return dst, fmt.Errorf("session %s is %d bytes: at most %d are allowed", names[i], len(f), maxSessionField)
		}
		plainLen += 1 + len(f)
	}

	k := &c.keys[0]
	raw := make([]byte, sessionHeaderSize, sessionHeaderSize+plainLen+sessionTagSize)
	raw[0] = sessionVersion
	copy(raw[1:], k.id[:])
	nonce := raw[1+sessionKeyIDSize : sessionHeaderSize]
	if _, err := rand.Read(nonce); err != nil {
		return dst, fmt.Errorf("session nonce: %w", err)
	}
	plain := binary.BigEndian.AppendUint64(raw[sessionHeaderSize:], uint64(s.Expiry.Unix()))
	var start int64
	if !s.Start.IsZero() {
		start = s.Start.Unix()
	}
	plain = binary.BigEndian.AppendUint64(plain, uint64(start))
	for _, f := range fields {
		plain = append(plain, byte(len(f)))
		plain = append(plain, f...)
	}
	raw = k.aead.Seal(raw[:sessionHeaderSize], nonce, plain, k.ad[sessionVersion])
	return sessionEncoding.AppendEncode(dst, raw), nil
}

// open authenticates and decrypts a cookie value; the expiry it returns is in UTC. It returns errSessionExpired when now is at or
// after the session's expiry, and errSessionInvalid for anything else that does not open.
func (c *sessionCodec) open(value string, now time.Time) (session, error) {
	if len(value) > maxSessionCookie || len(value) < sessionEncoding.EncodedLen(sessionMinRaw) ||
		strings.ContainsAny(value, "\r\n") {
		return session{}, errSessionInvalid
	}
	raw, err := sessionEncoding.DecodeString(value)
	if err != nil || len(raw) < sessionMinRaw || raw[0] != sessionVersion && raw[0] != sessionVersion1 {
		return session{}, errSessionInvalid
	}
	var k *sessionKey
	for i := range c.keys {
		if string(c.keys[i].id[:]) == string(raw[1:1+sessionKeyIDSize]) {
			k = &c.keys[i]
			break
		}
	}
	if k == nil {
		return session{}, errSessionInvalid
	}
	ciphertext := raw[sessionHeaderSize:]
	plain, err := k.aead.Open(ciphertext[:0], raw[1+sessionKeyIDSize:sessionHeaderSize], ciphertext, k.ad[raw[0]])
	if err != nil {
		return session{}, errSessionInvalid
	}
	s, ok := decodeSession(raw[0], plain)
	if !ok {
		return session{}, errSessionInvalid
	}
	if !now.Before(s.Expiry) {
		return session{}, errSessionExpired
	}
	return s, nil
}

// decodeSession parses an authenticated plaintext of the given version. All strings share one
// allocation.
func decodeSession(version byte, plain []byte) (session, bool) {
	minPlain, count := sessionMinPlain, sessionFieldCount
	if version == sessionVersion1 {
		minPlain, count = sessionMinPlainV1, sessionFieldCount-1
	}
	if len(plain) < minPlain {
		return session{}, false
	}
	s := session{Expiry: time.Unix(int64(binary.BigEndian.Uint64(plain)), 0).UTC()}
	plain = plain[8:]
	if version != sessionVersion1 {
		if start := int64(binary.BigEndian.Uint64(plain)); start != 0 {
			s.Start = time.Unix(start, 0).UTC()
		}
		plain = plain[8:]
	}
	text := string(plain)
	var fields [sessionFieldCount]string
	for i := range count {
		if len(text) == 0 {
			return session{}, false
		}
		n := int(text[0])
		if len(text) < 1+n {
			return session{}, false
		}
		fields[i], text = text[1:1+n], text[1+n:]
	}
	if len(text) != 0 {
		return session{}, false
	}
	s.Subject, s.Email, s.Name, s.Path, s.LinkID, s.ID = fields[0], fields[1], fields[2], fields[3], fields[4], fields[5]
	return s, true
}

// newSessionID returns a fresh random session id: 96 bits, base64url.
func newSessionID() string {
	var id [sessionIDSize]byte
	rand.Read(id[:])
	return base64.RawURLEncoding.EncodeToString(id[:])
}
