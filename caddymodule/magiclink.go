// Package caddymodule provides the Caddy HTTP handler http.handlers.magic_link and its Caddyfile
// directive magic_link: it redeems signed link tokens for a session cookie and passes the user's
// identity to the next handler in headers and placeholders.
package caddymodule

import (
	"errors"
	"fmt"
	"io"
	"net/textproto"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/magiclink-dev/magiclink/internal/pathscope"
	"github.com/magiclink-dev/magiclink/internal/queryparam"
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
	DefaultSessionTTL     = 24 * time.Hour
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
	ReasonUsed            = "used"
	ReasonRevoked         = "revoked"
	ReasonUnavailable     = "unavailable"
)

// Placeholders the handler sets.
const (
	errorPlaceholder  = "http.auth.magic_link.error"
	userIDPlaceholder = "http.auth.user.id"
	emailPlaceholder  = "http.auth.user.email"
	namePlaceholder   = "http.auth.user.name"
)

// maxCookieTries bounds how many session cookies of the configured name one request may make the
// handler try to open: enough that cookies planted beside the real one (set for a longer path or
// from a sibling subdomain, which browsers send first) cannot push it out of reach, few enough that
// a request costs at most that many decryptions.
const maxCookieTries = 16

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

	// IdentityHeaders name the request headers that carry the identity upstream.
	IdentityHeaders

	// Once treats every link as one-time, as if it carried the claim once: true: a link opens at
	// most one session, across every instance that shares the magic_link app's store.
	Once bool `json:"once,omitempty"`

	// Logout is the path of the sign-out endpoint: a GET or POST to exactly this path clears the
	// session cookie, revokes that session in the magic_link app's store and redirects to
	// LogoutRedirect. Empty means no sign-out endpoint.
	Logout string `json:"logout,omitempty"`

	// LogoutRedirect is where the sign-out endpoint sends the browser. The default is /.
	LogoutRedirect string `json:"logout_redirect,omitempty"`

	verifier *token.Verifier
	app      func() *App   // the magic_link app, when the configuration has one or this handler needs it; else nil
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

// Provision fills in defaults, checks the configuration (before anything is written to storage),
// loads the keys, builds the token verifier and sets up the session cookie's key.
func (m *MagicLink) Provision(ctx caddy.Context) error {
	m.logger = ctx.Logger()
	m.setDefaults()
	if err := registerMetrics(ctx.GetMetricsRegistry()); err != nil {
		return fmt.Errorf("metrics: %w", err)
	}
	if err := m.Validate(); err != nil {
		return err
	}

	keys, err := token.LoadKeys(m.Keys...)
	if err != nil {
		return fmt.Errorf("keys: %w", err)
	}
	for _, k := range keys {
		if k.FromPrivate() {
			m.logger.Warn("key file holds a private key; only its public half is used: give the gateway the public key file instead",
				zap.String("file", k.Source()), zap.String("kid", k.ID()))
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
	return m.provisionApp(ctx)
}

// provisionApp finds the magic_link app. A handler with once or logout needs it and loads it now.
// Any other handler uses it for revocations when the configuration has it, in the global option or
// because another handler loaded it; as handlers are provisioned in no set order, that is known only
// once the whole configuration is, so it looks at the first request. A stateless site never opens
// a store.
func (m *MagicLink) provisionApp(ctx caddy.Context) error {
	if !m.Once && m.Logout == "" {
		m.app = sync.OnceValue(func() *App {
			app, err := ctx.AppIfConfigured("magic_link")
			if err != nil {
				return nil
			}
			a := app.(*App)
			a.use(time.Duration(m.MaxLinkAge), time.Duration(m.SessionTTL))
			return a
		})
		return nil
	}
	v, err := ctx.App("magic_link")
	if err != nil {
		return fmt.Errorf("magic_link app: %w", err)
	}
	app := v.(*App)
	app.use(time.Duration(m.MaxLinkAge), time.Duration(m.SessionTTL))
	m.app = func() *App { return app }
	return nil
}

// setDefaults fills in every empty field that has a default.
func (m *MagicLink) setDefaults() {
	if m.Param == "" {
		m.Param = queryparam.DefaultName
	}
	if m.Leeway == nil {
		d := caddy.Duration(token.DefaultLeeway)
		m.Leeway = &d
	}
	if m.MaxLinkAge == 0 {
		m.MaxLinkAge = caddy.Duration(token.DefaultMaxLinkAge)
	}
	if m.Logout != "" && m.LogoutRedirect == "" {
		m.LogoutRedirect = "/"
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
	m.IdentityHeaders.setDefaults()
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

// Validate checks the configuration for mistakes. It is the one place where configuration values
// are checked: the Caddyfile parser only parses. Provision calls it first, so nothing is written
// to storage for a configuration that is not valid.
func (m *MagicLink) Validate() error {
	if len(m.Keys) == 0 {
		return errors.New("keys: at least one key file is required")
	}
	if m.Audience == "" {
		return errors.New("audience: required; set it to the site's origin, as in the links' aud claim")
	}
	if err := queryparam.CheckName(m.Param); err != nil {
		return fmt.Errorf("param: %w", err)
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
	if m.SessionSecret == "" && len(m.PreviousSessionSecrets) > 0 {
		return errors.New("previous_session_secrets: set session_secret to the new secret too")
	}
	for _, s := range append([]string{m.SessionSecret}, m.PreviousSessionSecrets...) {
		if s != "" && !strings.Contains(s, "{") && len(s) < minSessionSecret {
			return fmt.Errorf("session_secret: %d bytes is too short; use at least %d, or a placeholder such as {env.MAGIC_LINK_SECRET}",
				len(s), minSessionSecret)
		}
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
	if m.Logout != "" && pathscope.Check(m.Logout) != nil {
		return fmt.Errorf("logout %q: give a clean absolute path such as /logout", m.Logout)
	}
	if m.Logout == "" && m.LogoutRedirect != "" {
		return errors.New("logout_redirect is only used with logout <path>")
	}
	if m.Unauthenticated == UnauthenticatedRedirect && m.RedirectURL == "" {
		return errors.New("unauthenticated redirect: the URL to redirect to is missing")
	}
	if m.Unauthenticated != UnauthenticatedRedirect && m.RedirectURL != "" {
		return fmt.Errorf("redirect_url is only used with unauthenticated redirect, not %s", m.Unauthenticated)
	}
	return m.IdentityHeaders.validate()
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

// Interface guards
var (
	_ caddy.Provisioner           = (*MagicLink)(nil)
	_ caddy.Validator             = (*MagicLink)(nil)
	_ caddyhttp.MiddlewareHandler = (*MagicLink)(nil)
	_ io.ReaderFrom               = (*sessionWriter)(nil)
)
