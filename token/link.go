package token

import (
	"errors"
	"net/url"
	"strings"

	"github.com/magiclink-dev/magiclink/internal/queryparam"
)

// Link returns rawURL with the query parameter param set to token: the
// first parameter of that name is replaced (later ones are dropped) or, when
// there is none, the parameter is added at the end. The rest of the URL,
// including the order and spelling of the other parameters and the
// fragment, is kept. Parameter names are compared after query-unescaping, as
// the gateway compares them. param is one or more letters, digits, '-', '_',
// '.' or '~'.
func Link(rawURL, param, token string) (string, error) {
	prefix, suffix, err := LinkTemplate(rawURL, param)
	if err != nil {
		return "", err
	}
	return prefix + url.QueryEscape(token) + suffix, nil
}

// ParseLinkURL parses the URL a link is built on: an absolute http or https
// URL with a host, and without a user name or password (a link carries
// nothing secret but its token). Its errors say what is wrong without
// repeating the URL.
func ParseLinkURL(rawURL string) (*url.URL, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		var uerr *url.Error
		if errors.As(err, &uerr) {
			err = uerr.Err
		}
		return nil, errors.New("not a valid URL: " + err.Error())
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return nil, errors.New("not an absolute http or https URL")
	case u.Host == "":
		return nil, errors.New("URL has no host")
	case u.User != nil:
		return nil, errors.New("URL must not carry a user name or password")
	}
	return u, nil
}

// LinkTemplate returns the text of Link(rawURL, param, token) before and
// after the query-escaped token, which is the same for every token, so that
// many links to one URL can be made without parsing it again. A token that
// Sign makes needs no escaping (its base64url segments and dots are left as
// they are), so its link is prefix + token + suffix.
func LinkTemplate(rawURL, param string) (prefix, suffix string, err error) {
	if err := queryparam.CheckName(param); err != nil {
		return "", "", err
	}
	u, err := ParseLinkURL(rawURL)
	if err != nil {
		return "", "", errors.New("bad URL: " + err.Error())
	}
	before, after := queryparam.Split(u.RawQuery, param)
	u.RawQuery = before + after
	u.ForceQuery = false
	s := u.String()
	// The query starts after the first '?': String escapes any in the parts before it.
	at := strings.IndexByte(s, '?') + 1 + len(before)
	return s[:at], s[at:], nil
}
