// Package caddymodule provides the Caddy HTTP handler http.handlers.magic_link and its Caddyfile
// directive magic_link: it redeems signed link tokens for a session cookie and passes the user's
// identity to the next handler in headers and placeholders.
package caddymodule

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/textproto"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/magiclink-dev/magiclink/token"
)

func init() {
	caddy.RegisterModule(MagicLink{})
}

// Values of MagicLink.Redeem.
const (
	RedeemRedirect = "redirect"
	RedeemConfirm  = "confirm"
	RedeemForward  = "forward"
)

// Values of MagicLink.Unauthenticated.
const (
	UnauthenticatedDeny     = "deny"
	UnauthenticatedPass     = "pass"
	UnauthenticatedRedirect = "redirect"
)

// Defaults of the fields of MagicLink.
const (
	DefaultSessionTTL     = token.DefaultTTL
	DefaultCookieName     = "__Host-magic_link"
	DefaultDomainCookie   = "__Secure-magic_link"
	DefaultInsecureCookie = "magic_link"
	DefaultHeaderUser     = "Remote-User"
	DefaultHeaderEmail    = "Remote-Email"
	DefaultHeaderName     = "Remote-Name"
)

// Reasons a request is rejected, as set in the placeholder {http.auth.magic_link.error}.
const (
	ReasonExpired         = "expired"
	ReasonNotYetValid     = "not_yet_valid"
	ReasonOutsideScope    = "outside_scope"
	ReasonInvalid         = "invalid"
	ReasonUnauthenticated = "unauthenticated"
)

// Placeholders the handler sets.
const (
	errorPlaceholder  = "http.auth.magic_link.error"
	userIDPlaceholder = "http.auth.user.id"
	emailPlaceholder  = "http.auth.user.email"
	namePlaceholder   = "http.auth.user.name"
)

// maxCookieTries bounds how many session cookies of the configured name one request may make the
// handler try to open.
const maxCookieTries = 3

// MagicLink is a middleware that signs people in with magic links. A request carrying a valid link
// token in its query gets a session cookie; a request carrying a valid session cookie is passed to
// the next handler with the user's identity in request headers and in the placeholders
// {http.auth.user.id}, {http.auth.user.email} and {http.auth.user.name}. Rejected requests get a
// 401 response and the reason in {http.auth.magic_link.error}, so handle_errors can render its own
// page.
type MagicLink struct {
	// Keys lists the files holding the keys that verify link tokens: JWK, JWKS or PEM files with
	// public keys or HS256 secrets. At least one is required.
	Keys []string `json:"keys,omitempty"`

	// Audience is the value a link token's aud claim must contain, usually the site's origin. It
	// is required.
	Audience string `json:"audience,omitempty"`

	// Issuer, when set, is the value a link token's iss claim must equal.
	Issuer string `json:"issuer,omitempty"`

	// Param is the name of the query parameter that carries the link token. The default is token.
	Param string `json:"param,omitempty"`

	// Leeway is the clock skew allowed when checking a link token's times. The default is 30s.
	Leeway *caddy.Duration `json:"leeway,omitempty"`

	// MaxLinkAge is the longest lifetime (exp − iat) a link token may have. The default is 720h.
	MaxLinkAge caddy.Duration `json:"max_link_age,omitempty"`

	// SessionSecret keys the session cookie and must be at least 32 bytes long. Placeholders such
	// as {env.NAME} and {file.PATH} are expanded once, at provisioning. Instances with the same
	// secret accept each other's sessions. When it is empty, a secret is generated once and kept
	// in Caddy's configured storage, shared by every instance that uses that storage.
	SessionSecret string `json:"session_secret,omitempty"`

	// PreviousSessionSecrets are former values of SessionSecret. Cookies sealed with them are
	// still accepted until they expire, while new cookies are sealed with SessionSecret, so the
	// secret can be rotated without ending every session. Placeholders are expanded as in
	// SessionSecret.
	PreviousSessionSecrets []string `json:"previous_session_secrets,omitempty"`

	// SessionTTL is how long a session lasts after a link is redeemed. The default is 24h.
	SessionTTL caddy.Duration `json:"session_ttl,omitempty"`

	// CookieName is the name of the session cookie. The default is __Host-magic_link, or
	// __Secure-magic_link when CookieDomain is set, or magic_link when InsecureCookie is set.
	CookieName string `json:"cookie_name,omitempty"`

	// CookieDomain, when set, is the Domain attribute of the session cookie, so that it is sent to
	// subdomains too. By default the cookie is host-only.
	CookieDomain string `json:"cookie_domain,omitempty"`

	// CookieSameSite is the SameSite attribute of the session cookie: lax (the default), strict or
	// none.
	CookieSameSite string `json:"cookie_samesite,omitempty"`

	// InsecureCookie drops the Secure attribute of the session cookie, for development over plain
	// HTTP only. It cannot be combined with CookieSameSite none.
	InsecureCookie bool `json:"insecure_cookie,omitempty"`

	// Redeem says what a GET request with a valid link token gets: redirect (the default) answers
	// 303 to the same URL without the token and sets the session cookie; confirm answers a page
	// with a button that POSTs the link, and the POST then behaves as redirect, so that email
	// scanners following links do not use them up; forward removes the token from the URL and
	// passes the request on with the identity set and the session cookie on the response.
	Redeem string `json:"redeem,omitempty"`

	// Unauthenticated says what a request without a link token or a valid session gets: deny (the
	// default) answers 401; pass passes it on without identity; redirect answers 302 to
	// RedirectURL.
	Unauthenticated string `json:"unauthenticated,omitempty"`

	// RedirectURL is where Unauthenticated redirect sends requests. Placeholders such as
	// {http.request.uri} are expanded on each request.
	RedirectURL string `json:"redirect_url,omitempty"`

	// HeaderUser is the request header that carries the user id (the sub claim) upstream. The
	// default is Remote-User.
	HeaderUser string `json:"header_user,omitempty"`

	// HeaderEmail is the request header that carries the email claim upstream. The default is
	// Remote-Email.
	HeaderEmail string `json:"header_email,omitempty"`

	// HeaderName is the request header that carries the name claim upstream. The default is
	// Remote-Name.
	HeaderName string `json:"header_name,omitempty"`

	verifier *token.Verifier
	sessions *sessionCache // opens session cookies; its codec seals them
	logger   *zap.Logger

	userHeader, emailHeader, nameHeader string   // canonical forms of the identity headers
	spoofable                           []string // every header name an upstream may read as an identity header
	setCookiePrefix, setCookieSuffix    string   // a new session cookie is prefix + value + suffix
	clearCookie                         string   // the Set-Cookie value that deletes the session cookie
}

// CaddyModule returns the Caddy module information.
func (MagicLink) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.magic_link",
		New: func() caddy.Module { return new(MagicLink) },
	}
}

// Provision fills in defaults, loads the keys, builds the token verifier and sets up the session
// cookie's key.
func (m *MagicLink) Provision(ctx caddy.Context) error {
	m.logger = ctx.Logger()
	m.setDefaults()

	if len(m.Keys) == 0 {
		return errors.New("keys: at least one key file is required")
	}
	keys, err := token.LoadKeys(m.Keys...)
	if err != nil {
		return fmt.Errorf("keys: %w", err)
	}
	for _, k := range keys {
		if k.FromPrivate {
			m.logger.Warn("key file holds a private key; only its public half is used: give the gateway the public key file instead",
				zap.String("file", k.Source), zap.String("kid", k.ID))
		}
	}
	m.verifier, err = token.NewVerifier(keys, token.Config{
		Audience:   m.Audience,
		Issuer:     m.Issuer,
		Leeway:     time.Duration(*m.Leeway),
		MaxLinkAge: time.Duration(m.MaxLinkAge),
	})
	if err != nil {
		return err
	}

	secrets, err := m.sessionSecrets(ctx)
	if err != nil {
		return err
	}
	codec, err := newSessionCodec(m.Audience, secrets...)
	if err != nil {
		return fmt.Errorf("session_secret: %w", err)
	}
	m.sessions = newSessionCache(codec)

	m.userHeader = textproto.CanonicalMIMEHeaderKey(m.HeaderUser)
	m.emailHeader = textproto.CanonicalMIMEHeaderKey(m.HeaderEmail)
	m.nameHeader = textproto.CanonicalMIMEHeaderKey(m.HeaderName)
	m.spoofable = nil
	for _, name := range []string{m.HeaderUser, m.HeaderEmail, m.HeaderName} {
		m.spoofable = appendHeaderVariants(m.spoofable, name)
	}
	m.buildCookieAttributes()
	return nil
}

// setDefaults fills in every empty field that has a default.
func (m *MagicLink) setDefaults() {
	if m.Param == "" {
		m.Param = token.DefaultParam
	}
	if m.Leeway == nil {
		d := caddy.Duration(token.DefaultLeeway)
		m.Leeway = &d
	}
	if m.MaxLinkAge == 0 {
		m.MaxLinkAge = caddy.Duration(token.DefaultMaxLinkAge)
	}
	if m.SessionTTL == 0 {
		m.SessionTTL = caddy.Duration(DefaultSessionTTL)
	}
	if m.CookieName == "" {
		switch {
		case m.InsecureCookie:
			m.CookieName = DefaultInsecureCookie
		case m.CookieDomain != "":
			m.CookieName = DefaultDomainCookie
		default:
			m.CookieName = DefaultCookieName
		}
	}
	if m.CookieSameSite == "" {
		m.CookieSameSite = "lax"
	}
	if m.Redeem == "" {
		m.Redeem = RedeemRedirect
	}
	if m.Unauthenticated == "" {
		m.Unauthenticated = UnauthenticatedDeny
	}
	if m.HeaderUser == "" {
		m.HeaderUser = DefaultHeaderUser
	}
	if m.HeaderEmail == "" {
		m.HeaderEmail = DefaultHeaderEmail
	}
	if m.HeaderName == "" {
		m.HeaderName = DefaultHeaderName
	}
}

// buildCookieAttributes precomputes the Set-Cookie values, so issuing or clearing a cookie costs
// one concatenation.
func (m *MagicLink) buildCookieAttributes() {
	var attrs strings.Builder
	attrs.WriteString("; Path=/")
	if m.CookieDomain != "" {
		attrs.WriteString("; Domain=")
		attrs.WriteString(m.CookieDomain)
	}
	attrs.WriteString("; HttpOnly")
	if !m.InsecureCookie {
		attrs.WriteString("; Secure")
	}
	attrs.WriteString("; SameSite=")
	attrs.WriteString(sameSiteValues[m.CookieSameSite])
	common := attrs.String()

	m.setCookiePrefix = m.CookieName + "="
	m.setCookieSuffix = "; Max-Age=" + strconv.FormatInt(int64(time.Duration(m.SessionTTL)/time.Second), 10) + common
	m.clearCookie = m.CookieName + "=; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT" + common
}

// sameSiteValues maps the accepted cookie_samesite values to their attribute spelling.
var sameSiteValues = map[string]string{"lax": "Lax", "strict": "Strict", "none": "None"}

// Validate checks the configuration for mistakes.
func (m *MagicLink) Validate() error {
	if len(m.Keys) == 0 {
		return errors.New("keys: at least one key file is required")
	}
	if m.Audience == "" {
		return errors.New("audience: required; set it to the site's origin, as in the links' aud claim")
	}
	if !validParam(m.Param) {
		return fmt.Errorf("param %q: use letters, digits, '-', '_', '.' or '~'", m.Param)
	}
	if m.Leeway != nil && *m.Leeway < 0 {
		return fmt.Errorf("leeway %s: must not be negative", time.Duration(*m.Leeway))
	}
	if m.MaxLinkAge < 0 {
		return fmt.Errorf("max_link_age %s: must be positive", time.Duration(m.MaxLinkAge))
	}
	if m.SessionTTL < caddy.Duration(time.Second) {
		return fmt.Errorf("session_ttl %s: must be at least 1s", time.Duration(m.SessionTTL))
	}
	if err := checkCookie(m.CookieName, m.CookieDomain, m.CookieSameSite, m.InsecureCookie); err != nil {
		return err
	}
	if err := checkRedeem(m.Redeem); err != nil {
		return err
	}
	if err := checkUnauthenticated(m.Unauthenticated); err != nil {
		return err
	}
	if m.Unauthenticated == UnauthenticatedRedirect && m.RedirectURL == "" {
		return errors.New("unauthenticated redirect: the URL to redirect to is missing")
	}
	if m.Unauthenticated != UnauthenticatedRedirect && m.RedirectURL != "" {
		return fmt.Errorf("redirect_url is only used with unauthenticated redirect, not %s", m.Unauthenticated)
	}
	for _, h := range []struct{ field, name string }{
		{"header_user", m.HeaderUser}, {"header_email", m.HeaderEmail}, {"header_name", m.HeaderName},
	} {
		if err := checkHeaderName(h.field, h.name); err != nil {
			return err
		}
	}
	if strings.EqualFold(m.HeaderUser, m.HeaderEmail) || strings.EqualFold(m.HeaderUser, m.HeaderName) ||
		strings.EqualFold(m.HeaderEmail, m.HeaderName) {
		return errors.New("header_user, header_email and header_name must be three different headers")
	}
	return nil
}

// checkCookie checks the cookie settings against each other and against the rules of the cookie
// name prefixes (RFC 6265bis §4.1.3).
func checkCookie(name, domain, sameSite string, insecure bool) error {
	if _, ok := sameSiteValues[sameSite]; !ok {
		return fmt.Errorf("cookie_samesite %q: use lax, strict or none", sameSite)
	}
	if sameSite == "none" && insecure {
		return errors.New("cookie_samesite none needs a Secure cookie: remove insecure_cookie or use lax or strict")
	}
	if !validToken(name) {
		return fmt.Errorf("cookie_name %q: not a valid cookie name", name)
	}
	if strings.ContainsAny(domain, ";, \t\"\\") || strings.ContainsFunc(domain, func(r rune) bool { return r < 0x20 || r >= 0x7f }) {
		return fmt.Errorf("cookie_domain %q: not a valid domain", domain)
	}
	if hasPrefixFold(name, "__Host-") && (insecure || domain != "") {
		return fmt.Errorf("cookie_name %q: a __Host- cookie must be Secure and host-only: drop insecure_cookie and cookie_domain, or rename it", name)
	}
	if hasPrefixFold(name, "__Secure-") && insecure {
		return fmt.Errorf("cookie_name %q: a __Secure- cookie must be Secure: drop insecure_cookie or rename it", name)
	}
	return nil
}

// hasPrefixFold reports whether s begins with prefix, ignoring case, as browsers match cookie name
// prefixes.
func hasPrefixFold(s, prefix string) bool {
	return len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix)
}

// checkRedeem checks a value of Redeem.
func checkRedeem(v string) error {
	switch v {
	case RedeemRedirect, RedeemConfirm, RedeemForward:
		return nil
	}
	return fmt.Errorf("redeem %q: use redirect, confirm or forward", v)
}

// checkUnauthenticated checks a value of Unauthenticated.
func checkUnauthenticated(v string) error {
	switch v {
	case UnauthenticatedDeny, UnauthenticatedPass, UnauthenticatedRedirect:
		return nil
	}
	return fmt.Errorf("unauthenticated %q: use deny, pass or redirect <url>", v)
}

// maxHeaderSeparators bounds the '-' and '_' in an identity header name, since every spelling with
// either separator is removed from requests.
const maxHeaderSeparators = 4

// checkHeaderName checks an identity header name given in field.
func checkHeaderName(field, name string) error {
	if !validToken(name) {
		return fmt.Errorf("%s %q: not a valid header name", field, name)
	}
	if strings.Count(name, "-")+strings.Count(name, "_") > maxHeaderSeparators {
		return fmt.Errorf("%s %q: use at most %d '-' or '_'", field, name, maxHeaderSeparators)
	}
	return nil
}

// validToken reports whether s is a non-empty RFC 9110 token, as header and cookie names are.
func validToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`"(),/:;<=>?@[\]{}`, c) >= 0 {
			return false
		}
	}
	return true
}

// validParam reports whether s is a query parameter name that needs no escaping.
func validParam(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("-_.~", c) >= 0) {
			return false
		}
	}
	return true
}

// appendHeaderVariants appends to dst the canonical form of name with each of its '-' and '_'
// spelled either way: CGI, FastCGI and many frameworks read Remote_User as Remote-User, so a
// client must not be able to send either.
func appendHeaderVariants(dst []string, name string) []string {
	var seps []int
	for i := 0; i < len(name); i++ {
		if name[i] == '-' || name[i] == '_' {
			seps = append(seps, i)
		}
	}
	b := []byte(name)
	for mask := 0; mask < 1<<len(seps); mask++ {
		for j, i := range seps {
			if mask&(1<<j) != 0 {
				b[i] = '_'
			} else {
				b[i] = '-'
			}
		}
		v := textproto.CanonicalMIMEHeaderKey(string(b))
		if !slices.Contains(dst, v) {
			dst = append(dst, v)
		}
	}
	return dst
}

// ServeHTTP implements caddyhttp.MiddlewareHandler.
func (m *MagicLink) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	for _, name := range m.spoofable {
		delete(r.Header, name)
	}
	repl := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer)

	if r.Body != nil && r.Body != http.NoBody {
		for _, name := range m.spoofable {
			delete(r.Trailer, name)
		}
		r.Body = &trailerGuard{ReadCloser: r.Body, r: r, names: m.spoofable}
	}

	if raw, n := queryParam(r.URL.RawQuery, m.Param); n > 0 {
		return m.redeem(w, r, repl, next, raw, n)
	}

	return m.serveWithoutToken(w, r, repl, next)
}

// serveWithoutToken handles a request that carries no link token: with the identity of its
// session, if it has one, or else as Unauthenticated says.
func (m *MagicLink) serveWithoutToken(w http.ResponseWriter, r *http.Request, repl *caddy.Replacer, next caddyhttp.Handler) error {
	if id := m.sessionFromCookie(w, r); id != nil {
		m.setIdentity(r, repl, id)
		return next.ServeHTTP(w, r)
	}
	switch m.Unauthenticated {
	case UnauthenticatedPass:
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
// the request's path, or else nil. When cookies of the configured name are present but none opens,
// it clears the cookie.
func (m *MagicLink) sessionFromCookie(w http.ResponseWriter, r *http.Request) *identity {
	var (
		now     time.Time
		tries   int
		outside *identity // a session that opened but does not cover the path
		failed  error
	)
	for _, line := range r.Header["Cookie"] {
		for rest := line; tries < maxCookieTries; {
			value, after, found := findCookie(rest, m.CookieName)
			if !found {
				break
			}
			rest = after
			tries++
			if now.IsZero() {
				now = time.Now()
			}
			id, err := m.sessions.open(value, now)
			if err != nil {
				failed = err
				continue
			}
			if id.Path == "" || inScope(r.URL.EscapedPath(), id.Path) {
				return id
			}
			outside = id
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
		w.Header().Add("Set-Cookie", m.clearCookie)
	}
	return nil
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

// redeem handles a request that carries n link token parameters, the first being raw.
func (m *MagicLink) redeem(w http.ResponseWriter, r *http.Request, repl *caddy.Replacer, next caddyhttp.Handler, raw string, n int) error {
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
		m.logger.Info("link rejected", zap.String("reason", reason), zap.String("kid", hdr.KeyID))
		return m.reject(w, r, repl, publicReason(err))
	}
	if !inScope(r.URL.EscapedPath(), claims.Path) {
		m.logger.Info("link rejected", zap.String("reason", ReasonOutsideScope), zap.String("kid", hdr.KeyID),
			zap.String("jti", claims.ID), zap.String("sub", claims.Subject), zap.String("scope", claims.Path))
		return m.reject(w, r, repl, ReasonOutsideScope)
	}

	if r.Method == http.MethodHead {
		m.stripToken(r)
		return m.serveWithoutToken(w, r, repl, next)
	}
	confirm := m.Redeem == RedeemConfirm
	if r.Method == http.MethodGet && confirm {
		m.logger.Info("link awaiting confirmation", zap.String("jti", claims.ID), zap.String("sub", claims.Subject),
			zap.String("kid", hdr.KeyID))
		return writeConfirmPage(w, r)
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

	h := w.Header()
	h.Add("Set-Cookie", m.setCookiePrefix+value+m.setCookieSuffix)
	h.Set("Referrer-Policy", "no-referrer")
	if r.Method == http.MethodGet && m.Redeem == RedeemRedirect || r.Method == http.MethodPost && confirm {
		h.Set("Location", redeemLocation(r.URL, m.Param))
		h.Set("Cache-Control", "no-store")
		w.WriteHeader(http.StatusSeeOther)
		return nil
	}
	h.Set("Cache-Control", "no-store")
	m.stripToken(r)
	m.setIdentity(r, repl, newIdentity(s))
	return next.ServeHTTP(w, r)
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

// trailerGuard removes the identity header names from a request's trailers when its body has been
// read to the end, which is when net/http fills them in, so that no client can send an identity as
// a trailer either.
type trailerGuard struct {
	io.ReadCloser
	r     *http.Request
	names []string
}

func (g *trailerGuard) Read(p []byte) (int, error) {
	n, err := g.ReadCloser.Read(p)
	if err == io.EOF {
		for _, name := range g.names {
			delete(g.r.Trailer, name)
		}
	}
	return n, err
}

// Interface guards
var (
	_ caddy.Provisioner           = (*MagicLink)(nil)
	_ caddy.Validator             = (*MagicLink)(nil)
	_ caddyhttp.MiddlewareHandler = (*MagicLink)(nil)
)
