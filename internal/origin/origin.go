// Package origin is the one rule for the origin of a link's URL, which is the audience of a link
// when none is given: the CLI and the issuing API both call it.
package origin

import (
	"net/url"
	"strings"
)

// Of returns scheme://host[:port] of u as a browser writes it: scheme and host in lower case, the
// scheme's default port left out.
func Of(u *url.URL) string {
	host := strings.ToLower(u.Host)
	scheme := strings.ToLower(u.Scheme)
	switch {
	case scheme == "https" && strings.HasSuffix(host, ":443"):
		host = strings.TrimSuffix(host, ":443")
	case scheme == "http" && strings.HasSuffix(host, ":80"):
		host = strings.TrimSuffix(host, ":80")
	}
	return scheme + "://" + host
}
