package token

import (
	"errors"
	"net/url"

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
	if err := queryparam.CheckName(param); err != nil {
		return "", err
	}
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
	u.RawQuery = queryparam.Set(u.RawQuery, param, token)
	u.ForceQuery = false
	return u.String(), nil
}
