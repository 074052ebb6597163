package caddymodule

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/magiclink-dev/magiclink/caddymodule/store"
	"github.com/magiclink-dev/magiclink/internal/pathscope"
	"github.com/magiclink-dev/magiclink/internal/queryparam"
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

	if m.Logout != "" && u.Path == m.Logout && (r.Method == http.MethodGet || r.Method == http.MethodPost) {
		return m.logout(w, r)
	}
	if raw, n := queryparam.Find(r.URL.RawQuery, m.Param); n > 0 {
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
	id, reason := m.sessionFromCookie(w, r, u)
	if id != nil {
		metrics.sessionValid.Inc()
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
	return m.reject(w, r, repl, reason)
}

// sessionFromCookie returns the identity of the request's session cookie, if one opens, is not
// revoked and covers the path of u, the URL the request arrived with, or else nil and the reason
// to give when the request is denied. Of several cookies of the configured name, the first valid
// one that covers the path wins; at most maxCookieTries are looked at, those already in the cache
// before any is decrypted. When cookies of the name are present but none opens, and every one was
// tried, it clears the cookie.
func (m *MagicLink) sessionFromCookie(w http.ResponseWriter, r *http.Request, u *url.URL) (*identity, string) {
	var (
		now      time.Time
		uncached int       // cookies not in the cache
		more     bool      // more cookies of the name than are tried
		outside  *identity // a session that opened but does not cover the path
		revoked  *identity // a session that opened but is revoked
		failed   error
	)
	// The first pass looks only at cookies already in the cache; the second, needed only when
	// some were not, decrypts them.
	for pass := 0; pass < 2; pass++ {
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
				var id *identity
				var err error
				if pass == 0 {
					if now.IsZero() {
						now = time.Now()
					}
					if id, err = m.sessions.cached(value, now); id == nil && err == nil {
						uncached++
						continue
					}
				} else {
					id, err = m.sessions.open(value, now)
				}
				switch {
				case err != nil:
					failed = err
				case m.revoked(id):
					failed, revoked = errSessionRevoked, id
				case covers(u, id):
					return id, ""
				default:
					outside = id
				}
			}
		}
		if uncached == 0 {
			break
		}
	}
	if outside != nil {
		if c := m.logger.Check(zapcore.DebugLevel, "session rejected"); c != nil {
			c.Write(zap.String("reason", ReasonOutsideScope), zap.String("jti", outside.LinkID), zap.String("sub", outside.Subject))
		}
		countSessionRejected(ReasonOutsideScope)
		return nil, ReasonUnauthenticated
	}
	if failed == nil {
		return nil, ReasonUnauthenticated
	}
	reason := ReasonInvalid
	switch {
	case revoked != nil:
		reason = ReasonRevoked
		m.logger.Info("session rejected", zap.String("reason", reason), zap.String("jti", revoked.LinkID),
			zap.String("sub", revoked.Subject))
	case errors.Is(failed, errSessionExpired):
		reason = ReasonExpired
		fallthrough
	default:
		if c := m.logger.Check(zapcore.InfoLevel, "session rejected"); c != nil {
			c.Write(zap.String("reason", reason))
		}
	}
	countSessionRejected(reason)
	if !more {
		w.Header().Add("Set-Cookie", m.clearCookie)
	}
	if reason == ReasonRevoked {
		return nil, reason
	}
	return nil, ReasonUnauthenticated
}

// errSessionRevoked marks a session cookie that opened but whose session is revoked.
var errSessionRevoked = errors.New("session revoked")

// revoked reports whether the session id is revoked, checked in memory.
func (m *MagicLink) revoked(id *identity) bool {
	app := m.app()
	return app != nil && app.state.revocations.sessionRevoked(&id.session)
}

// sessionOf returns the request's valid session that the link linkID opened and that covers the
// path of u, if it has one: the session a second click on a one-time link finds.
func (m *MagicLink) sessionOf(r *http.Request, u *url.URL, linkID string) *identity {
	var found *identity
	m.eachSession(r, func(id *identity) bool {
		if id.LinkID == linkID && covers(u, id) {
			found = id
		}
		return found == nil
	})
	return found
}

// eachSession calls fn with each valid, unrevoked session among the request's first
// maxCookieTries cookies of the configured name, whatever their scope, until fn returns false.
func (m *MagicLink) eachSession(r *http.Request, fn func(*identity) bool) {
	now := time.Now()
	tries := 0
	for _, line := range r.Header["Cookie"] {
		for rest := line; tries < maxCookieTries; tries++ {
			value, after, found := findCookie(rest, m.CookieName)
			if !found {
				break
			}
			rest = after
			if id, err := m.sessions.open(value, now); err == nil && !m.revoked(id) && !fn(id) {
				return
			}
		}
	}
}

// logout answers the sign-out endpoint: it revokes the request's sessions, clears the cookie and
// redirects to LogoutRedirect. When the store cannot be reached, clearing the cookie is all it
// can do, and it says so in the log.
func (m *MagicLink) logout(w http.ResponseWriter, r *http.Request) error {
	app := m.app()
	m.eachSession(r, func(id *identity) bool {
		if id.ID == "" {
			return true // a cookie of the previous format has no id to revoke; it is cleared
		}
		ctx, cancel := context.WithTimeout(r.Context(), time.Duration(app.Timeout))
		defer cancel()
		err := app.state.revoke(ctx, store.Revocation{Kind: store.KindSession, Value: id.ID, At: time.Now(), Until: id.Expiry})
		if err != nil {
			m.logger.Error("sign-out: store unreachable, the session ends only with its cookie",
				zap.String("jti", id.LinkID), zap.String("sub", id.Subject), zap.Error(err))
		} else {
			m.logger.Info("signed out", zap.String("jti", id.LinkID), zap.String("sub", id.Subject))
		}
		return true
	})
	h := w.Header()
	h.Add("Set-Cookie", m.clearCookie)
	h.Set("Cache-Control", "no-store")
	h.Set("Location", m.LogoutRedirect)
	w.WriteHeader(http.StatusSeeOther)
	return nil
}

// covers reports whether the session id covers the path of u.
func covers(u *url.URL, id *identity) bool {
	return pathscope.Contains(id.Path, u.EscapedPath())
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
		countLinkRejected(ReasonInvalid)
		w.Header().Set("Allow", "GET, HEAD, POST")
		return caddyhttp.Error(http.StatusMethodNotAllowed, errConfirmMethod)
	}
	if n > 1 {
		m.logger.Info("link rejected", zap.String("reason", "duplicate_param"))
		countLinkRejected(ReasonInvalid)
		return m.reject(w, r, repl, ReasonInvalid)
	}
	hdr, claims, err := m.verifier.Verify(raw)
	if err != nil {
		reason := token.Reason(err)
		if reason == "" {
			reason = ReasonInvalid
		}
		// The link's jti and sub are logged only when its signature verified: anyone can write
		// the claims of a token whose signature did not.
		if c := m.logger.Check(zapcore.InfoLevel, "link rejected"); c != nil {
			if jti, sub, signed := token.RejectedLink(err); signed {
				c.Write(zap.String("reason", reason), zap.String("kid", hdr.KeyID), zap.String("jti", jti),
					zap.String("sub", sub))
			} else {
				c.Write(zap.String("reason", reason), zap.String("kid", hdr.KeyID))
			}
		}
		countLinkRejected(publicReason(err))
		return m.reject(w, r, repl, publicReason(err))
	}
	if !pathscope.Contains(claims.Path, u.EscapedPath()) {
		m.logger.Info("link rejected", zap.String("reason", ReasonOutsideScope), zap.String("kid", hdr.KeyID),
			zap.String("jti", claims.ID), zap.String("sub", claims.Subject), zap.String("scope", claims.Path))
		countLinkRejected(ReasonOutsideScope)
		return m.reject(w, r, repl, ReasonOutsideScope)
	}
	app := m.app()
	if app != nil && app.state.revocations.linkRevoked(claims.ID, claims.Subject, claims.IssuedAt) {
		m.logger.Info("link rejected", zap.String("reason", ReasonRevoked), zap.String("kid", hdr.KeyID),
			zap.String("jti", claims.ID), zap.String("sub", claims.Subject))
		countLinkRejected(ReasonRevoked)
		return m.reject(w, r, repl, ReasonRevoked)
	}

	if r.Method == http.MethodHead {
		return m.serveWithoutToken(w, r, u, repl, m.stripToken(r, next))
	}
	if confirm && (r.Method == http.MethodGet || !sameOrigin(r)) {
		m.logger.Info("link awaiting confirmation", zap.String("jti", claims.ID), zap.String("sub", claims.Subject),
			zap.String("kid", hdr.KeyID), zap.String("method", r.Method))
		metrics.linkConfirmPage.Inc()
		return writeConfirmPage(w, u)
	}

	redirect := r.Method == http.MethodGet && m.Redeem == RedeemRedirect || r.Method == http.MethodPost && confirm
	once := claims.Once || m.Once
	if once {
		if id := m.sessionOf(r, u, claims.ID); id != nil {
			// A second click in the browser this link already signed in: no new session, and the
			// same answer as the first time.
			m.logger.Info("link already redeemed in this browser", zap.String("jti", claims.ID), zap.String("sub", claims.Subject))
			metrics.linkAccepted.Inc()
			if redirect {
				return m.redirectAfterRedeem(w, u, "")
			}
			return m.serveWithoutToken(w, r, u, repl, m.stripToken(r, next))
		}
		if reason := m.consume(r, claims); reason != "" {
			countLinkRejected(reason)
			return m.reject(w, r, repl, reason)
		}
	}

	now := time.Now()
	s := session{
		Subject: claims.Subject,
		Email:   claims.Email,
		Name:    claims.Name,
		Path:    claims.Path,
		LinkID:  claims.ID,
		ID:      newSessionID(),
		Start:   now,
		Expiry:  now.Add(time.Duration(m.SessionTTL)),
	}
	// The Set-Cookie value is built in place: a typical one fits buf.
	var buf [512]byte
	cookie, err := m.sessions.codec.appendSeal(append(buf[:0], m.setCookiePrefix...), s)
	if err != nil {
		m.logger.Info("link rejected", zap.String("reason", ReasonInvalid), zap.String("kid", hdr.KeyID),
			zap.String("jti", claims.ID), zap.String("sub", claims.Subject), zap.Error(err))
		countLinkRejected(ReasonInvalid)
		return m.reject(w, r, repl, ReasonInvalid)
	}
	m.logger.Info("link accepted", zap.String("jti", claims.ID), zap.String("sub", claims.Subject),
		zap.String("kid", hdr.KeyID), zap.String("method", r.Method))
	metrics.linkAccepted.Inc()
	if app != nil && !once {
		// The consumption of a one-time link already says it was accepted (see the issuing
		// API); any other link of the API's needs its status written.
		go app.state.accepted(claims.ID, now)
	}

	setCookie := string(append(cookie, m.setCookieSuffix...))
	if redirect {
		return m.redirectAfterRedeem(w, u, setCookie)
	}
	next = m.stripToken(r, next)
	m.setIdentity(r, repl, newIdentity(s))
	m.stripSessionCookie(r)
	return next.ServeHTTP(&sessionWriter{ResponseWriterWrapper: &caddyhttp.ResponseWriterWrapper{ResponseWriter: w}, cookie: setCookie}, r)
}

// redirectAfterRedeem answers 303 to the URL u without the token, with the session cookie when
// cookie is not empty.
func (m *MagicLink) redirectAfterRedeem(w http.ResponseWriter, u *url.URL, cookie string) error {
	h := w.Header()
	if cookie != "" {
		h.Add("Set-Cookie", cookie)
	}
	// As Set does, with one allocation for the three values.
	v := []string{"no-referrer", redeemLocation(u, m.Param), "no-store"}
	h["Referrer-Policy"], h["Location"], h["Cache-Control"] = v[0:1:1], v[1:2:2], v[2:3:3]
	w.WriteHeader(http.StatusSeeOther)
	return nil
}

// consume records the one use of a one-time link in the store. It returns "" when this is the
// first use, or the reason to reject the request: used, or unavailable when the store cannot say
// (then nothing is recorded and a retry works).
func (m *MagicLink) consume(r *http.Request, claims *token.Claims) string {
	app := m.app()
	if app == nil {
		m.logger.Error("one-time link rejected: no store; add a magic_link global option block (or once to this handler)",
			zap.String("jti", claims.ID), zap.String("sub", claims.Subject))
		return ReasonUnavailable
	}
	start := time.Now()
	// One store operation, bounded by the store's own timeout.
	first, err := app.state.store.Consume(r.Context(), claims.ID, claims.Expiry.Add(time.Duration(*m.Leeway)))
	observeStore(opConsume, start, err)
	switch {
	case err != nil:
		m.logger.Error("one-time link rejected: store unreachable", zap.String("jti", claims.ID),
			zap.String("sub", claims.Subject), zap.Error(err))
		return ReasonUnavailable
	case !first:
		m.logger.Info("link rejected", zap.String("reason", ReasonUsed), zap.String("jti", claims.ID),
			zap.String("sub", claims.Subject))
		return ReasonUsed
	}
	return ""
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

// stripToken removes the link token parameter from the request's URL, and from the URL Caddy
// keeps of the request as it arrived, which it puts back before it runs the error routes (so
// that {http.request.uri} in handle_errors has no token either). It returns next wrapped so that
// a 5xx failure of the handlers after the gateway, on a site without error routes, is answered
// and logged here: Caddy would log it at ERROR level with the request as it arrived, token
// included.
func (m *MagicLink) stripToken(r *http.Request, next caddyhttp.Handler) caddyhttp.Handler {
	r.URL.RawQuery = queryparam.Remove(r.URL.RawQuery, m.Param)
	r.RequestURI = r.URL.RequestURI()
	m.stripArrivedToken(r)
	if hasErrorRoutes(r) {
		return next // Caddy logs a handled error at DEBUG level only
	}
	return caddyhttp.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
		err := next.ServeHTTP(w, r)
		if err == nil {
			return nil
		}
		status := http.StatusInternalServerError
		if he := (caddyhttp.HandlerError{}); errors.As(err, &he) && he.StatusCode != 0 {
			status = he.StatusCode
		}
		if status < 500 {
			return err // logged at DEBUG level only
		}
		m.logger.Error("request failed after its link token was removed", zap.Int("status", status), zap.Error(err))
		w.WriteHeader(status)
		return nil
	})
}

// stripArrivedToken removes the link token parameter from the URL Caddy keeps of the request as
// it arrived.
func (m *MagicLink) stripArrivedToken(r *http.Request) {
	if orig, ok := r.Context().Value(caddyhttp.OriginalRequestCtxKey).(http.Request); ok && orig.URL != nil {
		orig.URL.RawQuery = queryparam.Remove(orig.URL.RawQuery, m.Param)
	}
}

// hasErrorRoutes reports whether the request's site has error routes (handle_errors).
func hasErrorRoutes(r *http.Request) bool {
	srv, ok := r.Context().Value(caddyhttp.ServerCtxKey).(*caddyhttp.Server)
	return ok && srv.Errors != nil && len(srv.Errors.Routes) > 0
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
	if hasErrorRoutes(r) {
		m.stripArrivedToken(r)
		return caddyhttp.Error(rejectionStatus(reason), rejectionErrors[reason])
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
	ReasonUsed:            errors.New("magic link rejected: already used"),
	ReasonRevoked:         errors.New("magic link or session rejected: revoked"),
	ReasonUnavailable:     errors.New("magic link not redeemed: the store is unreachable"),
}
