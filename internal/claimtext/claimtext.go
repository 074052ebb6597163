// Package claimtext is the one rule for the text of a link's claims (sub, email, name, iss, aud),
// which the token package, the issuing API and the admin API apply alike.
package claimtext

import "unicode/utf8"

// MaxLength is the length in bytes of the longest sub, jti, email or name.
const MaxLength = 255

// HasControl reports whether s holds a C0 or C1 control character, DEL or invalid UTF-8, which no
// claim may hold.
func HasControl(s string) bool {
	if !utf8.ValidString(s) {
		return true
	}
	for _, r := range s {
		if r < 0x20 || r >= 0x7f && r <= 0x9f {
			return true
		}
	}
	return false
}
