package token

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/magiclink-dev/magiclink/internal/claimtext"
	"github.com/magiclink-dev/magiclink/internal/jsonobj"
	"github.com/magiclink-dev/magiclink/internal/jsonstr"
	"github.com/magiclink-dev/magiclink/internal/pathscope"
)

// Claims are the claims of a link token. Zero times and empty strings mean
// the claim is absent.
type Claims struct {
	// Subject ("sub") is the user id: 1 to 255 bytes, no control characters.
	Subject string
	// Audience ("aud") names the sites the link is for; the gateway's
	// audience must be among them. One value is encoded as a JSON string.
	Audience []string
	// Issuer ("iss") names who minted the link.
	Issuer string
	// Expiry ("exp") is when the link stops working.
	Expiry time.Time
	// IssuedAt ("iat") is when the link was minted.
	IssuedAt time.Time
	// NotBefore ("nbf") is when the link starts working.
	NotBefore time.Time
	// ID ("jti") identifies the link, for logs; the Signer makes one of 96
	// random bits.
	ID string
	// Email ("email") and Name ("name") are passed to the site.
	Email string
	Name  string
	// Path ("path") limits the link, and the session it opens, to a URL path
	// prefix, matched by whole segments: "/survey/42" covers "/survey/42"
	// and "/survey/42/q1" but not "/survey/420". Empty means the whole site.
	// It is a decoded absolute path of at most 255 bytes with no empty or dot
	// segment (in any Unicode spelling), no control character and none of
	// `\ % ; ? #`: exactly the scopes the gateway can match requests against.
	Path string
	// Once ("once") makes the link one-time: it opens at most one session,
	// where the gateway keeps state. False is encoded by leaving it out.
	Once bool
}

// MarshalJSON encodes the claims as a JWT claims set, dates in seconds.
func (c Claims) MarshalJSON() ([]byte, error) {
	return c.appendJSON(nil), nil
}

// UnmarshalJSON decodes a JWT claims set with the rules a Verifier applies
// to a token's payload: member names are case-sensitive; duplicates, dates
// that are not numbers and values of the wrong type are errors. Unknown
// members are ignored. The claims' shape (required claims, lengths) is not
// checked.
func (c *Claims) UnmarshalJSON(data []byte) error {
	parsed, err := parseClaims(string(data))
	if err != nil {
		return err
	}
	*c = *parsed
	return nil
}

// appendJSON appends the JSON claims set to dst.
func (c *Claims) appendJSON(dst []byte) []byte {
	dst = append(dst, '{')
	dst = appendString(dst, "sub", c.Subject, true)
	switch len(c.Audience) {
	case 0:
	case 1:
		dst = appendString(dst, "aud", c.Audience[0], false)
	default:
		dst = append(dst, `,"aud":[`...)
		for i, a := range c.Audience {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = jsonstr.Append(dst, a)
		}
		dst = append(dst, ']')
	}
	dst = appendString(dst, "iss", c.Issuer, false)
	dst = appendDate(dst, "exp", c.Expiry)
	dst = appendDate(dst, "iat", c.IssuedAt)
	dst = appendDate(dst, "nbf", c.NotBefore)
	dst = appendString(dst, "jti", c.ID, false)
	dst = appendString(dst, "email", c.Email, false)
	dst = appendString(dst, "name", c.Name, false)
	dst = appendString(dst, "path", c.Path, false)
	if c.Once {
		dst = append(dst, `,"once":true`...)
	}
	return append(dst, '}')
}

func appendString(dst []byte, name, value string, first bool) []byte {
	if value == "" && !first {
		return dst
	}
	if !first {
		dst = append(dst, ',')
	}
	dst = append(dst, '"')
	dst = append(dst, name...)
	dst = append(dst, `":`...)
	return jsonstr.Append(dst, value)
}

func appendDate(dst []byte, name string, t time.Time) []byte {
	if t.IsZero() {
		return dst
	}
	dst = append(dst, `,"`...)
	dst = append(dst, name...)
	dst = append(dst, `":`...)
	return strconv.AppendInt(dst, t.Unix(), 10)
}

// parseClaims decodes a claims set. Member names are case-sensitive;
// duplicates, dates that are not numbers and strings that are not strings
// are errors. Unknown members are ignored.
func parseClaims(payload string) (*Claims, error) {
	c := new(Claims)
	err := jsonobj.Members(payload, func(name, value string) error {
		var err error
		switch name {
		case "sub":
			c.Subject, err = stringValue(value, name)
		case "aud":
			c.Audience, err = audienceValue(value)
		case "iss":
			c.Issuer, err = stringValue(value, name)
		case "exp":
			c.Expiry, err = dateValue(value, name)
		case "iat":
			c.IssuedAt, err = dateValue(value, name)
		case "nbf":
			c.NotBefore, err = dateValue(value, name)
		case "jti":
			c.ID, err = stringValue(value, name)
		case "email":
			c.Email, err = stringValue(value, name)
		case "name":
			c.Name, err = stringValue(value, name)
		case "path":
			c.Path, err = stringValue(value, name)
		case "once":
			c.Once, err = boolValue(value, name)
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	return c, nil
}

// audienceValue decodes "aud": a string or an array of strings.
func audienceValue(raw string) ([]string, error) {
	if s, err := jsonobj.String(raw); err == nil {
		return []string{s}, nil
	}
	var list []string
	if len(raw) == 0 || raw[0] != '[' || json.Unmarshal([]byte(raw), &list) != nil {
		return nil, errors.New("aud is not a string or an array of strings")
	}
	return list, nil
}

// checkShape checks what must hold of every token's claims whoever reads
// them: the required claims are present and every string claim is short and
// free of control characters.
func (c *Claims) checkShape() error {
	switch {
	case c.Subject == "":
		return errors.New("sub is missing")
	case len(c.Audience) == 0:
		return errors.New("aud is missing")
	case c.Expiry.IsZero():
		return errors.New("exp is missing")
	case c.IssuedAt.IsZero():
		return errors.New("iat is missing")
	case c.ID == "":
		return errors.New("jti is missing")
	case !c.Expiry.After(c.IssuedAt):
		return errors.New("exp is not after iat")
	}
	for _, f := range []struct{ name, value string }{
		{"sub", c.Subject}, {"jti", c.ID}, {"email", c.Email}, {"name", c.Name},
	} {
		if len(f.value) > claimtext.MaxLength {
			return fmt.Errorf("%s is longer than %d bytes", f.name, claimtext.MaxLength)
		}
		if claimtext.HasControl(f.value) {
			return fmt.Errorf("%s contains a control character or invalid UTF-8", f.name)
		}
	}
	if claimtext.HasControl(c.Issuer) {
		return errors.New("iss contains a control character or invalid UTF-8")
	}
	for _, a := range c.Audience {
		if a == "" || claimtext.HasControl(a) {
			return errors.New("aud holds an empty value, a control character or invalid UTF-8")
		}
	}
	return pathscope.Check(c.Path)
}
