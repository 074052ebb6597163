package caddymodule

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/caddyserver/caddy/v2"

	"github.com/magiclink-dev/magiclink/caddymodule/store"
	"github.com/magiclink-dev/magiclink/internal/claimtext"
)

func init() {
	caddy.RegisterModule(adminAPI{})
}

// maxAdminBody bounds the body of an admin API request.
const maxAdminBody = 64 << 10

// adminAPI serves the magic_link endpoints of Caddy's admin API: POST /magic_link/revoke and GET
// /magic_link/revocations.
type adminAPI struct {
	ctx    caddy.Context
	logger *zap.Logger
}

// CaddyModule returns the Caddy module information.
func (adminAPI) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "admin.api.magic_link",
		New: func() caddy.Module { return new(adminAPI) },
	}
}

// Provision keeps the context, through which the magic_link app is found at each request: it is
// loaded after the admin API, and only when the configuration uses it.
func (a *adminAPI) Provision(ctx caddy.Context) error {
	a.ctx = ctx
	a.logger = ctx.Logger(a)
	return nil
}

// Routes returns the admin routes of the magic_link app.
func (a *adminAPI) Routes() []caddy.AdminRoute {
	return []caddy.AdminRoute{
		{Pattern: "/magic_link/revoke", Handler: caddy.AdminHandlerFunc(a.handleRevoke)},
		{Pattern: "/magic_link/revocations", Handler: caddy.AdminHandlerFunc(a.handleRevocations)},
	}
}

// revocationJSON is a revocation as the admin API shows it.
type revocationJSON struct {
	Kind  store.Kind `json:"kind"`
	Value string     `json:"value"`
	At    time.Time  `json:"at"`
	Until time.Time  `json:"until"`
}

func toJSON(r store.Revocation) revocationJSON {
	return revocationJSON{Kind: r.Kind, Value: r.Value, At: r.At.UTC(), Until: r.Until.UTC()}
}

// handleRevoke revokes a link (and every session it opened) or everything of a subject issued
// before now.
func (a *adminAPI) handleRevoke(w http.ResponseWriter, r *http.Request) error {
	if r.Method != http.MethodPost {
		return apiError(http.StatusMethodNotAllowed, "use POST")
	}
	app, err := a.app()
	if err != nil {
		return err
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxAdminBody+1))
	if err != nil {
		return apiError(http.StatusBadRequest, "reading the body: "+err.Error())
	}
	if len(body) > maxAdminBody {
		return apiError(http.StatusRequestEntityTooLarge, fmt.Sprintf("the body is over %d bytes", maxAdminBody))
	}
	kind, value, err := parseRevokeRequest(body)
	if err != nil {
		return apiError(http.StatusBadRequest, err.Error())
	}
	now := time.Now()
	rev := store.Revocation{Kind: kind, Value: value, At: now, Until: now.Add(app.revocationLifetime())}
	if err := app.state.revoke(r.Context(), rev); err != nil {
		a.logger.Error("revocation failed", zap.String(string(kind), value), zap.Error(err))
		if errors.Is(err, store.ErrUnavailable) {
			return apiError(http.StatusServiceUnavailable, "the store is unreachable; nothing was revoked, try again")
		}
		return apiError(http.StatusInternalServerError, "nothing was revoked: "+err.Error())
	}
	a.logger.Info("revoked", zap.String(string(kind), value))
	return writeAPIJSON(w, http.StatusOK, map[string]revocationJSON{"revoked": toJSON(rev)})
}

// handleRevocations lists the revocations this instance holds.
func (a *adminAPI) handleRevocations(w http.ResponseWriter, r *http.Request) error {
	if r.Method != http.MethodGet {
		return apiError(http.StatusMethodNotAllowed, "use GET")
	}
	app, err := a.app()
	if err != nil {
		return err
	}
	list := app.state.revocations.list()
	slices.SortFunc(list, func(x, y store.Revocation) int {
		return strings.Compare(string(x.Kind)+"\x00"+x.Value, string(y.Kind)+"\x00"+y.Value)
	})
	out := make([]revocationJSON, 0, len(list))
	for _, rev := range list {
		out = append(out, toJSON(rev))
	}
	return writeAPIJSON(w, http.StatusOK, map[string][]revocationJSON{"revocations": out})
}

// app returns the running magic_link app.
func (a *adminAPI) app() (*App, error) {
	v, err := a.ctx.AppIfConfigured("magic_link")
	if err != nil {
		return nil, apiError(http.StatusNotFound,
			"the magic_link app is not running: add a magic_link global option block (or a handler with once or logout) to keep revocations")
	}
	return v.(*App), nil
}

// parseRevokeRequest parses the body of POST /magic_link/revoke: a JSON object with exactly one
// member, "jti" (a link) or "sub" (a subject), spelled so, whose value is a non-empty string of at
// most 255 bytes without control characters. Any other member, a repeated one or anything after the
// object is an error.
func parseRevokeRequest(body []byte) (store.Kind, string, error) {
	const shape = `the body must be a JSON object {"jti":"…"} or {"sub":"…"}`
	dec := json.NewDecoder(bytes.NewReader(body))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return "", "", errors.New(shape)
	}
	var kind store.Kind
	var value string
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return "", "", fmt.Errorf("%s: %s", shape, oneLineError(err))
		}
		name, _ := t.(string)
		if len(name) > 32 {
			name = name[:32] + "…"
		}
		var v *string
		if err := dec.Decode(&v); err != nil || v == nil {
			return "", "", fmt.Errorf("%s: %q must be a string", shape, name)
		}
		switch {
		case name != string(store.KindLink) && name != string(store.KindSubject):
			return "", "", fmt.Errorf("%s: unknown member %q", shape, name)
		case kind != "":
			return "", "", errors.New(`give "jti" or "sub", once, not both`)
		}
		kind, value = store.Kind(name), *v
	}
	if t, err := dec.Token(); err != nil || t != json.Delim('}') {
		return "", "", errors.New(shape)
	}
	if _, err := dec.Token(); err != io.EOF {
		return "", "", errors.New("the body holds more than one JSON value")
	}
	switch {
	case kind == "":
		return "", "", errors.New(`give "jti" (a link) or "sub" (a user)`)
	case value == "":
		return "", "", fmt.Errorf("%s is empty", kind)
	case len(value) > claimtext.MaxLength:
		return "", "", fmt.Errorf("%s is longer than %d bytes", kind, claimtext.MaxLength)
	case claimtext.HasControl(value):
		return "", "", fmt.Errorf("%s contains a control character or invalid UTF-8", kind)
	}
	return kind, value, nil
}

// oneLineError is err's message on one line.
func oneLineError(err error) string {
	return strings.Join(strings.Fields(err.Error()), " ")
}

// apiError is an admin API error with its status.
func apiError(status int, msg string) error {
	return caddy.APIError{HTTPStatus: status, Err: errors.New(msg)}
}

// Interface guards
var (
	_ caddy.AdminRouter = (*adminAPI)(nil)
	_ caddy.Provisioner = (*adminAPI)(nil)
)
