package caddymodule

import (
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/magiclink-dev/magiclink/token"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// errRawFragment is the error of a request whose target holds a raw '#'.
var errRawFragment = errors.New("request target holds a raw '#': browsers never send one, and log filters do not see a query after it")

// ServeHTTP implements caddyhttp.MiddlewareHandler.
func (m *MagicLink) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	for _, name := range m.spoofable {
		delete(r.Header, name)
	}
	u, target := arrived(r)
	if strings.IndexByte(target, '#') >= 0 {
		m.logger.Info("request rejected", zap.String("reason", "raw_fragment"))
		return caddyhttp.Error(http.StatusBadRequest, errRawFragment)
	}
	repl := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer)

	guardTrailers(r, m.spoofable)

	if raw, n := queryParam(r.URL.RawQuery, m.Param); n > 0 {
		return m.redeem(w, r, u, repl, next, raw, n)
	}

	return m.serveWithoutToken(w, r, u, repl, next)
}

// arrived returns the URL and the request target of r as it arrived, before rewrites such as
// handle_path, uri strip_prefix or rewrite changed r: Caddy keeps them in the request's context.
func arrived(r *http.Request) (*url.URL, string) {
	if orig, ok := r.Context().Value(caddyhttp.OriginalRequestCtxKey).(http.Request); ok && orig.URL != nil {
		return orig.URL, orig.RequestURI
	}
	return r.URL, r.RequestURI
}

// serveWithoutToken handles a request that carries no link token: with the identity of its
// session, if it has one, or else as Unauthenticated says. u is the URL the request arrived with.
func (m *MagicLink) serveWithoutToken(w http.ResponseWriter, r *http.Request, u *url.URL, repl *caddy.Replacer, next caddyhttp.Handler) error {
	if id := m.sessionFromCookie(w, r, u); id != nil {
		m.setIdentity(r, repl, id)
		m.stripSessionCookie(r)
		return next.ServeHTTP(w, r)
	}
	switch m.Unauthenticated {
	case UnauthenticatedPass:
		m.stripSessionCookie(r)
		return next.ServeHTTP(w, r)
	case UnauthenticatedRedirect:
		h := w.Header()
		h.Set("Location", repl.ReplaceAll(m.RedirectURL, ""))
		h.Set("Cache-Control", "no-store")
		w.WriteHeader(http.StatusFound)
		return nil
	}
	return m.reject(w, r, repl, ReasonUnauthenticated)
}

// sessionFromCookie returns the identity of the request's session cookie, if one opens and covers
// the path of u, the URL the request arrived with, or else nil. Of several cookies of the
// configured name, the first valid one that covers the path wins; at most maxCookieTries are
// looked at, those already in the cache before any is decrypted. When cookies of the name are
// present but none opens, and every one was tried, it clears the cookie.
func (m *MagicLink) sessionFromCookie(w http.ResponseWriter, r *http.Request, u *url.URL) *identity {
	var (
		now      time.Time
		uncached int       // cookies not in the cache
		more     bool      // more cookies of the name than are tried
		outside  *identity // a session that opened but does not cover the path
		failed   error
	)
	tries := 0
	for _, line := range r.Header["Cookie"] {
		for rest := line; ; {
			value, after, found := findCookie(rest, m.CookieName)
			if !found {
				break
			}
			rest = after
			if tries == maxCookieTries {
				more = true
				break
			}
			tries++
			if now.IsZero() {
				now = time.Now()
			}
			id, err := m.sessions.cached(value, now)
			switch {
			case err != nil:
				failed = err
			case id == nil:
				uncached++
			case covers(u, id):
				return id
			default:
				outside = id
			}
		}
	}
	if uncached > 0 {
		// The same cookies again, now decrypting those not in the cache.
		tries = 0
		for _, line := range r.Header["Cookie"] {
			for rest := line; tries < maxCookieTries; {
				value, after, found := findCookie(rest, m.CookieName)
				if !found {
					break
				}
				rest = after
				tries++
				id, err := m.sessions.open(value, now)
				switch {
				case err != nil:
					failed = err
				case covers(u, id):
					return id
				default:
					outside = id
				}
			}
		}
	}
	if outside != nil {
		if c := m.logger.Check(zapcore.DebugLevel, "session rejected"); c != nil {
			c.Write(zap.String("reason", ReasonOutsideScope), zap.String("jti", outside.LinkID), zap.String("sub", outside.Subject))
		}
		return nil
	}
	if failed != nil {
		reason := ReasonInvalid
		if errors.Is(failed, errSessionExpired) {
			reason = ReasonExpired
		}
		if c := m.logger.Check(zapcore.InfoLevel, "session rejected"); c != nil {
			c.Write(zap.String("reason", reason))
		}
		if !more {
			w.Header().Add("Set-Cookie", m.clearCookie)
		}
	}
	return nil
}

// covers reports whether the session id covers the path of u.
func covers(u *url.URL, id *identity) bool {
	return id.Path == "" || inScope(u.EscapedPath(), id.Path)
}

// findCookie finds the first cookie called name in the Cookie header value line and returns its
// value and the rest of line after it.
func findCookie(line, name string) (value, rest string, found bool) {
	for line != "" {
		var part string
		part, line, _ = strings.Cut(line, ";")
		part = strings.TrimLeft(part, " \t")
		if len(part) > len(name) && part[len(name)] == '=' && part[:len(name)] == name {
			return strings.TrimRight(part[len(name)+1:], " \t"), line, true
		}
	}
	return "", "", false
}

// stripSessionCookie removes the session cookies from the request's Cookie header, keeping the
// other cookies in order, and drops the header when none remains.
func (m *MagicLink) stripSessionCookie(r *http.Request) {
	lines := r.Header["Cookie"]
	n := 0
	for _, line := range lines {
		if strings.Contains(line, m.setCookiePrefix) {
			line = withoutCookie(line, m.setCookiePrefix)
		}
		if line != "" {
			lines[n] = line // in place: the header's slice shares its array
			n++
		}
	}
	switch {
	case n == 0 && len(lines) > 0:
		delete(r.Header, "Cookie")
	case n < len(lines):
		r.Header["Cookie"] = lines[:n]
	}
}

// withoutCookie returns the Cookie header value line without the cookies whose name and '=' are
// prefix, the others kept in order and joined by "; ". When the cookies kept are one run of line,
// the result is that substring and costs no allocation; otherwise it costs one, of the result's
// size when line has its cookies joined by "; " as browsers send them.
func withoutCookie(line, prefix string) string {
	var (
		b       strings.Builder // the result, once it is not a substring of line
		lo, hi  int             // line[lo:hi] is the result so far, while b is empty
		removed bool            // a cookie was removed after line[lo:hi]
		dropped int             // the bytes of the removed cookies, with a "; " each
	)
	for i := 0; i < len(line); {
		end := strings.IndexByte(line[i:], ';')
		if end < 0 {
			end = len(line)
		} else {
			end += i
		}
		start, stop := i, end
		for start < stop && (line[start] == ' ' || line[start] == '\t') {
			start++
		}
		for stop > start && (line[stop-1] == ' ' || line[stop-1] == '\t') {
			stop--
		}
		i = end + 1
		part := line[start:stop]
		switch {
		case part == "":
		case strings.HasPrefix(part, prefix):
			removed = true
			dropped += len(part) + len("; ")
		case b.Len() > 0:
			b.WriteString("; ")
			b.WriteString(part)
		case hi == 0:
			lo, hi, removed = start, stop, false
		case !removed:
			hi = stop
		default:
			b.Grow(len(line) - dropped)
			b.WriteString(line[lo:hi])
			b.WriteString("; ")
			b.WriteString(part)
		}
	}
	if b.Len() > 0 {
		return b.String()
	}
	return line[lo:hi]
}

// redeem handles a request that carries n link token parameters, the first being raw. u is the URL
// the request arrived with: it decides the scope and where the redirect goes.
func (m *MagicLink) redeem(w http.ResponseWriter, r *http.Request, u *url.URL, repl *caddy.Replacer, next caddyhttp.Handler, raw string, n int) error {
	confirm := m.Redeem == RedeemConfirm
	if confirm && r.Method != http.MethodGet && r.Method != http.MethodHead && r.Method != http.MethodPost {
		m.logger.Info("link rejected", zap.String("reason", "method_not_allowed"), zap.String("method", r.Method))
		w.Header().Set("Allow", "GET, HEAD, POST")
		return caddyhttp.Error(http.StatusMethodNotAllowed, errConfirmMethod)
	}
	if n > 1 {
		m.logger.Info("link rejected", zap.String("reason", "duplicate_param"))
		return m.reject(w, r, repl, ReasonInvalid)
	}
	hdr, claims, err := m.verifier.Verify(raw)
	if err != nil {
		reason := token.Reason(err)
		if reason == "" {
			reason = ReasonInvalid
		}
		// Claims are logged only when Verify returns them: never from a token whose signature did
		// not verify, since anyone can write those.
		if c := m.logger.Check(zapcore.InfoLevel, "link rejected"); c != nil {
			if claims != nil {
				c.Write(zap.String("reason", reason), zap.String("kid", hdr.KeyID), zap.String("jti", claims.ID),
					zap.String("sub", claims.Subject))
			} else {
				c.Write(zap.String("reason", reason), zap.String("kid", hdr.KeyID))
			}
		}
		return m.reject(w, r, repl, publicReason(err))
	}
	if !inScope(u.EscapedPath(), claims.Path) {
		m.logger.Info("link rejected", zap.String("reason", ReasonOutsideScope), zap.String("kid", hdr.KeyID),
			zap.String("jti", claims.ID), zap.String("sub", claims.Subject), zap.String("scope", claims.Path))
		return m.reject(w, r, repl, ReasonOutsideScope)
	}

	if r.Method == http.MethodHead {
		m.stripToken(r)
		return m.serveWithoutToken(w, r, u, repl, next)
	}
	if confirm && (r.Method == http.MethodGet || !sameOrigin(r)) {
		m.logger.Info("link awaiting confirmation", zap.String("jti", claims.ID), zap.String("sub", claims.Subject),
			zap.String("kid", hdr.KeyID), zap.String("method", r.Method))
		return writeConfirmPage(w, u)
	}

	s := session{
		Subject: claims.Subject,
		Email:   claims.Email,
		Name:    claims.Name,
		Path:    claims.Path,
		LinkID:  claims.ID,
		Expiry:  time.Now().Add(time.Duration(m.SessionTTL)),
	}
	value, err := m.sessions.codec.seal(s)
	if err != nil {
		m.logger.Info("link rejected", zap.String("reason", ReasonInvalid), zap.String("kid", hdr.KeyID),
			zap.String("jti", claims.ID), zap.String("sub", claims.Subject), zap.Error(err))
		return m.reject(w, r, repl, ReasonInvalid)
	}
	m.logger.Info("link accepted", zap.String("jti", claims.ID), zap.String("sub", claims.Subject),
		zap.String("kid", hdr.KeyID), zap.String("method", r.Method))

	cookie := m.setCookiePrefix + value + m.setCookieSuffix
	if r.Method == http.MethodGet && m.Redeem == RedeemRedirect || r.Method == http.MethodPost && confirm {
		h := w.Header()
		h.Add("Set-Cookie", cookie)
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Location", redeemLocation(u, m.Param))
		h.Set("Cache-Control", "no-store")
		w.WriteHeader(http.StatusSeeOther)
		return nil
	}
	m.stripToken(r)
	m.setIdentity(r, repl, newIdentity(s))
	m.stripSessionCookie(r)
	return next.ServeHTTP(&sessionWriter{ResponseWriterWrapper: &caddyhttp.ResponseWriterWrapper{ResponseWriter: w}, cookie: cookie}, r)
}

// sessionWriter is the response writer of a request forwarded with a new session. When the
// response's header is written, it adds the session cookie and sets Cache-Control: no-store and
// Referrer-Policy: no-referrer, replacing whatever the next handlers set: a response that carries
// a session must not be cached or leak its URL.
type sessionWriter struct {
	*caddyhttp.ResponseWriterWrapper
	cookie  string // the Set-Cookie value of the new session
	written bool   // the final header has been written
}

// WriteHeader implements http.ResponseWriter.
func (w *sessionWriter) WriteHeader(status int) {
	if !w.written && (status >= http.StatusOK || status == http.StatusSwitchingProtocols) {
		w.written = true
		h := w.Header()
		h.Add("Set-Cookie", w.cookie)
		h.Set("Cache-Control", "no-store")
		h.Set("Referrer-Policy", "no-referrer")
	}
	w.ResponseWriterWrapper.WriteHeader(status)
}

// Write implements http.ResponseWriter.
func (w *sessionWriter) Write(p []byte) (int, error) {
	if !w.written {
		w.WriteHeader(http.StatusOK)
	}
	return w.ResponseWriterWrapper.Write(p)
}

// ReadFrom implements io.ReaderFrom, which the wrapped writer would otherwise serve without
// writing the header through w.
func (w *sessionWriter) ReadFrom(src io.Reader) (int64, error) {
	if !w.written {
		w.WriteHeader(http.StatusOK)
	}
	return w.ResponseWriterWrapper.ReadFrom(src)
}

// FlushError flushes the response for http.ResponseController, which would otherwise flush the
// wrapped writer without writing the header through w.
func (w *sessionWriter) FlushError() error {
	if !w.written {
		w.WriteHeader(http.StatusOK)
	}
	return http.NewResponseController(w.ResponseWriter).Flush()
}

// errConfirmMethod is the error of a request that carries a link token, with redeem confirm, in a
// method other than GET, HEAD and POST.
var errConfirmMethod = errors.New("redeem confirm takes a link in GET, HEAD or POST only")

// sameOrigin reports whether a request comes from the site itself or straight from the person:
// Sec-Fetch-Site same-origin or none or, from a client that does not send Sec-Fetch-Site, an Origin
// equal to the site's origin (the scheme and host of the request). Any other request may be another
// site's form, sending its own link to sign the visitor in.
func sameOrigin(r *http.Request) bool {
	if site := r.Header["Sec-Fetch-Site"]; len(site) > 0 {
		return len(site) == 1 && (site[0] == "same-origin" || site[0] == "none")
	}
	origin := r.Header["Origin"]
	if len(origin) != 1 {
		return false
	}
	scheme := "http://"
	if r.TLS != nil {
		scheme = "https://"
	}
	o := origin[0]
	return len(o) == len(scheme)+len(r.Host) && strings.EqualFold(o[:len(scheme)], scheme) && strings.EqualFold(o[len(scheme):], r.Host)
}

// stripToken removes the link token parameter from the request's URL.
func (m *MagicLink) stripToken(r *http.Request) {
	r.URL.RawQuery = stripParam(r.URL.RawQuery, m.Param)
	r.RequestURI = r.URL.RequestURI()
}

// setIdentity passes the identity to the next handlers.
func (m *MagicLink) setIdentity(r *http.Request, repl *caddy.Replacer, id *identity) {
	values := [...]string{id.Subject, id.Email, id.Name}
	names := [...]string{m.userHeader, m.emailHeader, m.nameHeader}
	n := 0
	for _, v := range values {
		if v != "" {
			n++
		}
	}
	backing := make([]string, 0, n)
	for i, v := range values {
		if v != "" {
			backing = append(backing, v)
			r.Header[names[i]] = backing[len(backing)-1 : len(backing) : len(backing)]
		}
	}
	repl.Set(userIDPlaceholder, id.user)
	if id.Email != "" {
		repl.Set(emailPlaceholder, id.email)
	}
	if id.Name != "" {
		repl.Set(namePlaceholder, id.name)
	}
}

// publicReason maps a Verify error to the reason shown in {http.auth.magic_link.error}.
func publicReason(err error) string {
	switch {
	case errors.Is(err, token.ErrExpired):
		return ReasonExpired
	case errors.Is(err, token.ErrNotYetValid):
		return ReasonNotYetValid
	}
	return ReasonInvalid
}

// reject answers 401 for reason: through the server's error routes when it has any, so that
// handle_errors renders the page, otherwise with a built-in page.
func (m *MagicLink) reject(w http.ResponseWriter, r *http.Request, repl *caddy.Replacer, reason string) error {
	repl.Set(errorPlaceholder, reason)
	w.Header().Set("Cache-Control", "no-store")
	if srv, ok := r.Context().Value(caddyhttp.ServerCtxKey).(*caddyhttp.Server); ok &&
		srv.Errors != nil && len(srv.Errors.Routes) > 0 {
		return caddyhttp.Error(http.StatusUnauthorized, rejectionErrors[reason])
	}
	return writeRejectionPage(w, reason)
}

// rejectionErrors are the errors handed to the error routes, one per reason. They never hold
// anything from the request.
var rejectionErrors = map[string]error{
	ReasonExpired:         errors.New("magic link rejected: expired"),
	ReasonNotYetValid:     errors.New("magic link rejected: not yet valid"),
	ReasonOutsideScope:    errors.New("magic link rejected: outside its path"),
	ReasonInvalid:         errors.New("magic link rejected: invalid"),
	ReasonUnauthenticated: errors.New("not authenticated: no magic link or session"),
}
