package caddymodule

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/magiclink-dev/magiclink/caddymodule/store"
	"github.com/magiclink-dev/magiclink/internal/claimtext"
	"github.com/magiclink-dev/magiclink/internal/origin"
	"github.com/magiclink-dev/magiclink/internal/queryparam"
	"github.com/magiclink-dev/magiclink/token"
)

func init() {
	caddy.RegisterModule(API{})
}

// Defaults of the fields of API.
const (
	DefaultAPITTL    = 720 * time.Hour
	DefaultAPIMaxTTL = 720 * time.Hour
)

// minAPISecretKey is the shortest secret key the API accepts, in bytes.
const minAPISecretKey = 32

// maxAPIBody bounds the request bodies the API reads.
const maxAPIBody = 64 << 10

// API is the issuing API: an HTTP handler that mints magic links for a backend, with the requests
// and responses of Clerk's Backend API for sign-in tokens (POST …/sign_in_tokens, GET
// …/sign_in_tokens/{id}, POST …/sign_in_tokens/{id}/revoke), so that Clerk's SDKs work with it
// when pointed at it. Requests whose path ends otherwise are passed to the next handler. It keeps
// each link's status in the magic_link app's store, which the gateways redeeming the links must
// share.
type API struct {
	// Key is the file holding the private key that signs the links: a private JWK, a JWKS with
	// exactly one private key, or a PEM private key. It is required.
	Key string `json:"key,omitempty"`

	// SecretKeys are the bearer keys a request may present in its Authorization header, each at
	// least 32 bytes long. Placeholders such as {env.NAME} and {file.PATH} are expanded once, at
	// provisioning. At least one is required.
	SecretKeys []string `json:"secret_keys,omitempty"`

	// URL is the page the links open, an absolute http or https URL; the token is set as its
	// query parameter Param. A request may name another page of the same origin. It is required.
	URL string `json:"url,omitempty"`

	// Audience is the aud claim of the links: the gateway's audience. The default is the origin
	// of URL.
	Audience string `json:"audience,omitempty"`

	// Issuer, when set, is the iss claim of the links.
	Issuer string `json:"issuer,omitempty"`

	// Param is the name of the query parameter that carries the token. The default is token.
	Param string `json:"param,omitempty"`

	// DefaultTTL is how long a link stays valid when the request does not say. The default is
	// 720h, as Clerk's sign-in tokens.
	DefaultTTL caddy.Duration `json:"default_ttl,omitempty"`

	// MaxTTL is the longest lifetime a request may ask for. The default is 720h.
	MaxTTL caddy.Duration `json:"max_ttl,omitempty"`

	// Once makes the links one-time unless a request says otherwise: each opens at most one
	// session. The default is true, as Clerk's sign-in tokens are single-use.
	Once *bool `json:"once,omitempty"`

	signer *token.Signer
	app    *App
	keys   [][sha256.Size]byte // SHA-256 of each secret key, compared in constant time
	logger *zap.Logger

	// linkURL is URL parsed; a link to it is linkPrefix + token + linkSuffix.
	linkURL                *url.URL
	linkPrefix, linkSuffix string
}

// CaddyModule returns the Caddy module information.
func (API) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.magic_link_api",
		New: func() caddy.Module { return new(API) },
	}
}

// Provision fills in defaults, checks the configuration, loads the signing key, expands the secret
// keys and finds the magic_link app.
func (a *API) Provision(ctx caddy.Context) error {
	a.logger = ctx.Logger()
	a.setDefaults()
	if err := registerMetrics(ctx.GetMetricsRegistry()); err != nil {
		return fmt.Errorf("metrics: %w", err)
	}
	if err := a.Validate(); err != nil {
		return err
	}
	if err := a.parseURL(); err != nil {
		return err
	}

	a.keys = a.keys[:0]
	repl := caddy.NewReplacer()
	for i, configured := range a.SecretKeys {
		key := configured
		if strings.Contains(key, "{") {
			var err error
			key, err = repl.ReplaceOrErr(key, true, true)
			if err != nil {
				return fmt.Errorf("secret_key %d: a placeholder in it is unknown or expands to nothing: check the environment variable or file it names", i+1)
			}
		}
		if len(key) < minAPISecretKey {
			return fmt.Errorf("secret_key %d: %d bytes is too short; use at least %d (for example the output of: openssl rand -base64 32)", i+1, len(key), minAPISecretKey)
		}
		a.keys = append(a.keys, sha256.Sum256([]byte(key)))
	}

	signer, err := token.LoadSigner(a.Key)
	if err != nil {
		return fmt.Errorf("key: %w", err)
	}
	a.signer = signer

	app, err := ctx.App("magic_link")
	if err != nil {
		return fmt.Errorf("magic_link app: %w", err)
	}
	a.app = app.(*App)
	return nil
}

// parseURL parses URL, which Validate has checked, once for all the links: for the origin a
// request's url must be on, and for the text of the links to it around their token.
func (a *API) parseURL() error {
	a.linkURL, _ = token.ParseLinkURL(a.URL)
	var err error
	if a.linkPrefix, a.linkSuffix, err = token.LinkTemplate(a.URL, a.Param); err != nil {
		return fmt.Errorf("url: %w", err)
	}
	return nil
}

// setDefaults fills in every empty field that has a default.
func (a *API) setDefaults() {
	if a.Param == "" {
		a.Param = queryparam.DefaultName
	}
	if a.DefaultTTL == 0 {
		a.DefaultTTL = caddy.Duration(DefaultAPITTL)
	}
	if a.MaxTTL == 0 {
		a.MaxTTL = caddy.Duration(DefaultAPIMaxTTL)
	}
	if a.Once == nil {
		once := true
		a.Once = &once
	}
	if a.URL != "" && a.Audience == "" {
		if u, err := token.ParseLinkURL(a.URL); err == nil {
			a.Audience = origin.Of(u)
		}
	}
}

// Validate checks the configuration for mistakes. It is the one place where configuration values
// are checked: the Caddyfile parser only parses.
func (a *API) Validate() error {
	if a.Key == "" {
		return errors.New("key: the private key file that signs the links is required")
	}
	if len(a.SecretKeys) == 0 {
		return errors.New("secret_key: at least one bearer key is required")
	}
	for i, s := range a.SecretKeys {
		if !strings.Contains(s, "{") && len(s) < minAPISecretKey {
			return fmt.Errorf("secret_key %d: %d bytes is too short; use at least %d, or a placeholder such as {env.MAGIC_LINK_API_KEY}",
				i+1, len(s), minAPISecretKey)
		}
	}
	if a.URL == "" {
		return errors.New("url: required; the page the links open, such as https://shop.example.com/welcome")
	}
	if _, err := token.ParseLinkURL(a.URL); err != nil {
		return fmt.Errorf("url: %w", err)
	}
	if claimtext.HasControl(a.Audience) || claimtext.HasControl(a.Issuer) {
		return errors.New("audience and issuer must not hold control characters or invalid UTF-8")
	}
	if err := queryparam.CheckName(a.Param); err != nil {
		return fmt.Errorf("param: %w", err)
	}
	if a.MaxTTL < caddy.Duration(time.Second) {
		return fmt.Errorf("max_ttl %s: must be at least 1s", time.Duration(a.MaxTTL))
	}
	if a.DefaultTTL < caddy.Duration(time.Second) {
		return fmt.Errorf("default_ttl %s: must be at least 1s", time.Duration(a.DefaultTTL))
	}
	if a.DefaultTTL > a.MaxTTL {
		return fmt.Errorf("default_ttl %s is longer than max_ttl %s", time.Duration(a.DefaultTTL), time.Duration(a.MaxTTL))
	}
	return nil
}

// ServeHTTP answers the requests for sign-in tokens and passes any other request on.
func (a *API) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	ep, id := route(r.URL.Path)
	if ep == endpointNone {
		return next.ServeHTTP(w, r)
	}
	rec := &statusRecorder{ResponseWriterWrapper: &caddyhttp.ResponseWriterWrapper{ResponseWriter: w}}
	err := a.serveEndpoint(rec, r, ep, id)
	countAPIRequest(endpointNames[ep], rec.status)
	return err
}

// endpointNames are the endpoint labels of the api_requests_total metric.
var endpointNames = map[int]string{endpointCreate: "create", endpointGet: "get", endpointRevoke: "revoke"}

// statusRecorder remembers the status of the response written through it.
type statusRecorder struct {
	*caddyhttp.ResponseWriterWrapper
	status int
}

// WriteHeader implements http.ResponseWriter.
func (w *statusRecorder) WriteHeader(status int) {
	if w.status == 0 {
		w.status = status
	}
	w.ResponseWriterWrapper.WriteHeader(status)
}

// serveEndpoint answers a request for endpoint ep (the token id, for get and revoke).
func (a *API) serveEndpoint(w http.ResponseWriter, r *http.Request, ep int, id string) error {
	if !a.authorized(r.Header.Values("Authorization")) {
		return writeAPIError(w, http.StatusUnauthorized, clerkError{
			Code: "authorization_invalid", Message: "Unauthorized request",
			LongMessage: "You are not authorized to perform this request",
		})
	}
	method := http.MethodPost
	if ep == endpointGet {
		method = http.MethodGet
	}
	if r.Method != method {
		w.Header().Set("Allow", method)
		return writeAPIError(w, http.StatusMethodNotAllowed, clerkError{
			Code: "method_not_allowed", Message: "method not allowed",
			LongMessage: "This endpoint accepts only " + method + " requests",
		})
	}
	switch ep {
	case endpointCreate:
		return a.create(w, r)
	case endpointGet:
		return a.get(w, r, id)
	default:
		return a.revoke(w, r, id)
	}
}

// The endpoints of the API.
const (
	endpointNone = iota
	endpointCreate
	endpointGet
	endpointRevoke
)

// route says which endpoint a request path ends with and the sign-in token id it names.
func route(path string) (endpoint int, id string) {
	segs := strings.Split(path, "/")
	n := len(segs)
	switch {
	case segs[n-1] == "sign_in_tokens":
		return endpointCreate, ""
	case n >= 2 && segs[n-2] == "sign_in_tokens":
		return endpointGet, segs[n-1]
	case n >= 3 && segs[n-3] == "sign_in_tokens" && segs[n-1] == "revoke":
		return endpointRevoke, segs[n-2]
	}
	return endpointNone, ""
}

// authorized reports whether the Authorization header values hold exactly one bearer credential
// equal to one of the secret keys. Every key is compared, in constant time, against the digest of
// the credential, so the time taken tells nothing about the keys.
func (a *API) authorized(values []string) bool {
	if len(values) != 1 {
		return false
	}
	scheme, credential, ok := strings.Cut(values[0], " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || credential == "" {
		return false
	}
	digest := sha256.Sum256([]byte(credential))
	match := 0
	for i := range a.keys {
		match |= subtle.ConstantTimeCompare(digest[:], a.keys[i][:])
	}
	return match == 1
}

// create mints a link for the user the request names, records it as pending and answers it.
func (a *API) create(w http.ResponseWriter, r *http.Request) error {
	body := bodyBuffers.Get().(*bytes.Buffer)
	defer bodyBuffers.Put(body)
	if rejected := readAPIBody(w, r, body); rejected != nil {
		return writeAPIError(w, rejected.status, rejected.clerkError)
	}
	p, rejected := parseCreateRequest(body.Bytes(), a.linkURL, time.Duration(a.MaxTTL))
	if rejected != nil {
		return writeAPIError(w, rejected.status, rejected.clerkError)
	}

	now := time.Now()
	iat := now.Truncate(time.Second)
	ttl := time.Duration(a.DefaultTTL)
	if p.ExpiresIn > 0 {
		ttl = time.Duration(p.ExpiresIn) * time.Second
	}
	once := *a.Once
	if p.Once != nil {
		once = *p.Once
	}
	c := token.Claims{
		ID:       token.NewID(),
		Subject:  p.UserID,
		Audience: []string{a.Audience},
		Issuer:   a.Issuer,
		IssuedAt: iat,
		Expiry:   iat.Add(ttl),
		Email:    p.Email,
		Name:     p.Name,
		Path:     p.Path,
		Once:     once,
	}
	prefix, suffix := a.linkPrefix, a.linkSuffix
	if p.URL != "" {
		var err error
		if prefix, suffix, err = token.LinkTemplate(p.URL, a.Param); err != nil {
			return a.internalError(w, "building a link failed", err)
		}
	}
	// The token is signed into the link's text, which becomes one string; the token is a substring
	// of it.
	buf := byteBuffers.Get().(*[]byte)
	defer byteBuffers.Put(buf)
	b, err := a.signer.AppendSign(append((*buf)[:0], prefix...), &c)
	if err != nil {
		return a.internalError(w, "signing a link failed", err)
	}
	*buf = append(b, suffix...)
	link := string(*buf)
	tok := link[len(prefix) : len(link)-len(suffix)]
	rec := store.Link{
		ID:        c.ID,
		UserID:    c.Subject,
		Status:    store.StatusPending,
		CreatedAt: now,
		UpdatedAt: now,
		ExpiresAt: c.Expiry,
	}
	// One store operation, bounded by the store's own timeout.
	if err := a.app.state.store.PutLink(r.Context(), rec); err != nil {
		return a.storeError(w, "recording a link failed", c.ID, err)
	}
	logLink(r, c.ID, c.Subject)
	if ce := a.logger.Check(zapcore.DebugLevel, "sign-in token created"); ce != nil {
		ce.Write(zap.String("id", c.ID), zap.String("user_id", c.Subject), zap.Time("expires", c.Expiry),
			zap.Bool("once", once))
	}
	res := newSignInToken(rec)
	res.Token = tok
	res.URL = link
	return writeSignInToken(w, &res)
}

// get answers the record of the sign-in token id, without its token.
func (a *API) get(w http.ResponseWriter, r *http.Request, id string) error {
	if id == "" {
		return writeNotFound(w)
	}
	ctx, cancel := a.storeContext(r)
	defer cancel()
	rec, err := a.app.state.store.GetLink(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return writeNotFound(w)
	}
	if err != nil {
		return a.storeError(w, "reading a link failed", id, err)
	}
	if rec.Status == store.StatusPending {
		// A one-time link's use is recorded where the gateway consumed it, in the same store:
		// the gateway does not write its status a second time.
		at, used, err := a.app.state.store.UsedAt(ctx, id)
		if err != nil {
			return a.storeError(w, "reading a link failed", id, err)
		}
		if used {
			rec.Status, rec.UpdatedAt = store.StatusAccepted, at
		}
	}
	logLink(r, id, rec.UserID)
	res := newSignInToken(rec)
	return writeSignInToken(w, &res)
}

// revoke ends the link id and the sessions it opened, on every instance sharing the store, and
// records it as revoked. The revocation is recorded before the status, so that a link never reads
// revoked while it still works.
func (a *API) revoke(w http.ResponseWriter, r *http.Request, id string) error {
	body := bodyBuffers.Get().(*bytes.Buffer)
	defer bodyBuffers.Put(body)
	rejected := readAPIBody(w, r, body)
	if rejected == nil {
		rejected = checkRevokeBody(body.Bytes())
	}
	if rejected != nil {
		return writeAPIError(w, rejected.status, rejected.clerkError)
	}
	if id == "" {
		return writeNotFound(w)
	}
	ctx, cancel := a.storeContext(r)
	defer cancel()
	if _, err := a.app.state.store.GetLink(ctx, id); errors.Is(err, store.ErrNotFound) {
		return writeNotFound(w)
	} else if err != nil {
		return a.storeError(w, "reading a link failed", id, err)
	}
	now := time.Now()
	err := a.app.state.revoke(ctx, store.Revocation{
		Kind:  store.KindLink,
		Value: id,
		At:    now,
		Until: now.Add(a.app.revocationLifetime()),
	})
	if err != nil {
		return a.storeError(w, "revoking a link failed", id, err)
	}
	rec, err := a.app.state.store.SetLinkStatus(ctx, id, store.StatusRevoked, now)
	if errors.Is(err, store.ErrNotFound) {
		return writeNotFound(w)
	}
	if err != nil {
		return a.storeError(w, "recording a link as revoked failed", id, err)
	}
	logLink(r, id, rec.UserID)
	a.logger.Info("sign-in token revoked", zap.String("id", id), zap.String("user_id", rec.UserID))
	res := newSignInToken(rec)
	return writeSignInToken(w, &res)
}

// logLink adds the link id and user id a request created, read or revoked to its line in the
// access log (when the site has one): one line per request, as for every other request, and
// never the token.
func logLink(r *http.Request, id, userID string) {
	if extra, ok := r.Context().Value(caddyhttp.ExtraLogFieldsCtxKey).(*caddyhttp.ExtraLogFields); ok {
		extra.Add(zap.String("link_id", id))
		extra.Add(zap.String("link_user_id", userID))
	}
}

// storeContext bounds a request's store operations by the app's timeout.
func (a *API) storeContext(r *http.Request) (context.Context, context.CancelFunc) {
	return context.WithTimeout(r.Context(), a.app.state.timeout)
}

// storeError answers a failed store operation: 503 when the store could not be reached, 500
// otherwise.
func (a *API) storeError(w http.ResponseWriter, msg, id string, err error) error {
	if errors.Is(err, store.ErrUnavailable) || errors.Is(err, context.DeadlineExceeded) {
		a.logger.Warn(msg, zap.String("id", id), zap.Error(err))
		w.Header().Set("Retry-After", "1")
		return writeAPIError(w, http.StatusServiceUnavailable, clerkError{
			Code: "service_unavailable", Message: "service unavailable",
			LongMessage: "The store of sign-in tokens cannot be reached; try again later",
		})
	}
	return a.internalError(w, msg, err)
}

// internalError answers 500 for an error that is a bug or a misconfiguration.
func (a *API) internalError(w http.ResponseWriter, msg string, err error) error {
	a.logger.Error(msg, zap.Error(err))
	return writeAPIError(w, http.StatusInternalServerError, clerkError{
		Code: "internal_clerk_error", Message: "Oops, an unexpected error occurred",
		LongMessage: "There was an internal error on our servers; the gateway's log says more",
	})
}

// Interface guards
var (
	_ caddy.Provisioner           = (*API)(nil)
	_ caddy.Validator             = (*API)(nil)
	_ caddyhttp.MiddlewareHandler = (*API)(nil)
)
