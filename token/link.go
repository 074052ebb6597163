package token

import (
	"errors"
	"net/url"
	"strings"
)

// Link returns rawURL with the query parameter param set to token: the
// first occurrence is replaced (later ones are dropped) or, when there is
// none, the parameter is added at the end. The rest of the URL, including the
// order and spelling of the other parameters, is kept.
func Link(rawURL, param, token string) (string, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		var uerr *url.Error
		if errors.As(err, &uerr) {
			err = uerr.Err
		}
		return "", errors.New("bad URL: " + err.Error())
	}
	if u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
		return "", errors.New("bad URL: a link needs an absolute http or https URL")
	}
	if param == "" {
		param = DefaultParam
	}
	pair := url.QueryEscape(param) + "=" + token
	var b strings.Builder
	placed := false
	for part := range strings.SplitSeq(u.RawQuery, "&") {
		if part == "" {
			continue
		}
		name, _, _ := strings.Cut(part, "=")
		if n, err := url.QueryUnescape(name); err == nil && n == param {
			if placed {
				continue
			}
			part, placed = pair, true
		}
		if b.Len() > 0 {
			b.WriteByte('&')
		}
		b.WriteString(part)
	}
	if !placed {
		if b.Len() > 0 {
			b.WriteByte('&')
		}
		b.WriteString(pair)
	}
	u.RawQuery = b.String()
	u.ForceQuery = false
	return u.String(), nil
}
