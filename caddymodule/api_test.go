package caddymodule

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/magiclink-dev/magiclink/caddymodule/store"
	"github.com/magiclink-dev/magiclink/token"
)

// apiSecretKey is the bearer key of the issuing API in the tests.
const apiSecretKey = "sk_test_magiclink-api-0123456789abcdef"

// verify checks tok as a gateway with the audience gwAudience would, and returns its claims.
func (k gwKeys) verify(t testing.TB, tok string) *token.Claims {
	t.Helper()
	keys, err := token.LoadKeys(k.keyFile)
	if err != nil {
		t.Fatal(err)
	}
	v, err := token.NewVerifier(keys, token.Config{Audience: gwAudience})
	if err != nil {
		t.Fatal(err)
	}
	_, c, err := v.Verify(tok)
	if err != nil {
		t.Fatalf("the API's token does not verify: %v", err)
	}
	return c
}

// apiEnv is a Caddy with a gateway site in front of an upstream and an API site minting links to
// the gateway, both using one magic_link app.
type apiEnv struct {
	keys      gwKeys
	gw, api   site
	linkURL   string // the API's url
	accessLog string // the file of the API site's access log
}

// startAPI starts an apiEnv. global holds the app's global options (a file store under a temporary
// directory when empty); apiExtra adds lines to the magic_link_api block.
func startAPI(t *testing.T, global, apiExtra string) apiEnv {
	t.Helper()
	e := apiEnv{keys: newGWKeys(t)}
	upstream := newUpstream(t)
	e.gw = site{port: freePort(), block: gatewayBlock(e.keys.keyFile, upstream, "\t\tsession_secret "+gwSecret+"\n")}
	e.linkURL = e.gw.url("/welcome?utm=mail")
	e.accessLog = filepath.Join(t.TempDir(), "api-access.log")
	e.api = site{port: freePort(), block: fmt.Sprintf(
		"\tlog {\n\t\toutput file %s\n\t}\n"+
			"\tmagic_link_api {\n\t\tkey %s\n\t\tsecret_key %s\n\t\turl %q\n\t\taudience %s\n%s\t}\n\trespond \"not the API\" 418\n",
		e.accessLog, e.keys.privateFile, apiSecretKey, e.linkURL, gwAudience, apiExtra)}
	if global == "" {
		global = fmt.Sprintf("\tmagic_link {\n\t\tstore file %s\n\t}\n", filepath.Join(t.TempDir(), "state.db"))
	}
	startCaddyWith(t, t.TempDir(), global, e.gw, e.api)
	return e
}

// apiResponse is an answer of the API.
type apiResponse struct {
	status int
	header http.Header
	body   string
}

// object decodes the answer as a JSON object.
func (r apiResponse) object(t testing.TB) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(r.body), &m); err != nil {
		t.Fatalf("status %d, body %q: not a JSON object", r.status, r.body)
	}
	return m
}

// signInToken decodes a 200 answer as a sign-in token, checking its Content-Type.
func (r apiResponse) signInToken(t testing.TB) signInToken {
	t.Helper()
	if r.status != http.StatusOK {
		t.Fatalf("status %d (%s), want 200", r.status, r.body)
	}
	if ct := r.header.Values("Content-Type"); !slices.Equal(ct, []string{"application/json"}) {
		t.Errorf("Content-Type = %q, want application/json exactly", ct)
	}
	var s signInToken
	if err := json.Unmarshal([]byte(r.body), &s); err != nil {
		t.Fatalf("body %q: %v", r.body, err)
	}
	if s.Object != "sign_in_token" {
		t.Errorf("object = %q, want sign_in_token", s.Object)
	}
	return s
}

// apiRequest is a request to the API: Authorization header values (nil means none) and a body
// (empty means none).
type apiRequest struct {
	method, path string
	auth         []string
	body         string
}

// bearer is the Authorization header of a caller holding the secret key.
var bearer = []string{"Bearer " + apiSecretKey}

// newAPIHTTPRequest builds the HTTP request of q against base.
func newAPIHTTPRequest(t testing.TB, base string, q apiRequest) *http.Request {
	t.Helper()
	var body io.Reader = http.NoBody
	if q.body != "" {
		body = strings.NewReader(q.body)
	}
	req, err := http.NewRequest(q.method, base+q.path, body)
	if err != nil {
		t.Fatal(err)
	}
	if q.body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header["Authorization"] = q.auth
	return req
}

// call sends q to the API site.
func (e apiEnv) call(t testing.TB, q apiRequest) apiResponse {
	t.Helper()
	res, err := http.DefaultClient.Do(newAPIHTTPRequest(t, e.api.url(""), q))
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(res.Body)
	res.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	return apiResponse{res.StatusCode, res.Header, string(body)}
}

// create mints a link through the API with the JSON body.
func (e apiEnv) create(t testing.TB, body string) signInToken {
	t.Helper()
	return e.call(t, apiRequest{http.MethodPost, "/v1/sign_in_tokens", bearer, body}).signInToken(t)
}

// get reads the sign-in token id through the API.
func (e apiEnv) get(t testing.TB, id string) signInToken {
	t.Helper()
	return e.call(t, apiRequest{http.MethodGet, "/v1/sign_in_tokens/" + id, bearer, ""}).signInToken(t)
}

// waitStatus polls the sign-in token id until it has the status want (the gateway records
// acceptance off the request path).
func (e apiEnv) waitStatus(t testing.TB, id, want string) signInToken {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		s := e.get(t, id)
		if s.Status == want {
			return s
		}
		if time.Now().After(deadline) {
			t.Fatalf("status of %s is %q after 5s, want %q", id, s.Status, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// openLink opens link in a new browser and returns the browser, holding the session, once the
// upstream has seen user.
func (e apiEnv) openLink(t testing.TB, link, user string) *http.Client {
	t.Helper()
	b := browser(t.(*testing.T))
	res, body := fetch(t.(*testing.T), b, http.MethodGet, link, nil)
	if res.StatusCode != http.StatusSeeOther {
		t.Fatalf("opening the link: status %d (%s), want 303", res.StatusCode, body)
	}
	if got := upstreamSaw(t.(*testing.T), b, e.gw.url(res.Header.Get("Location")), nil).User; got != user {
		t.Fatalf("the upstream saw user %q, want %q", got, user)
	}
	return b
}

func TestAPIFlow(t *testing.T) {
	e := startAPI(t, "", "")
	const created200 = `caddy_magic_link_api_requests_total{code="200",endpoint="create"}`
	countBefore := scrape(t)[created200]
	before := time.Now().UnixMilli()
	res := e.call(t, apiRequest{http.MethodPost, "/v1/sign_in_tokens", bearer,
		`{"user_id":"user_123","expires_in_seconds":600,"email":"ada@example.com","name":"Ada","unknown":{"x":[1]}}`})
	after := time.Now().UnixMilli()
	if got := scrape(t)[created200] - countBefore; got != 1 {
		t.Errorf("%s went up by %v, want 1", created200, got)
	}
	const created401 = `caddy_magic_link_api_requests_total{code="401",endpoint="create"}`
	refusedBefore := scrape(t)[created401]
	if res := e.call(t, apiRequest{http.MethodPost, "/v1/sign_in_tokens", nil, `{"user_id":"user_123"}`}); res.status != http.StatusUnauthorized {
		t.Errorf("a create without a key: status %d, want 401", res.status)
	}
	if got := scrape(t)[created401] - refusedBefore; got != 1 {
		t.Errorf("%s went up by %v, want 1", created401, got)
	}
	created := res.signInToken(t)
	var members []string
	for k := range res.object(t) {
		members = append(members, k)
	}
	slices.Sort(members)
	if want := []string{"created_at", "id", "object", "status", "token", "updated_at", "url", "user_id"}; !slices.Equal(members, want) {
		t.Errorf("members %q, want %q", members, want)
	}
	if created.Status != "pending" || created.UserID != "user_123" {
		t.Errorf("status %q, user_id %q; want pending, user_123", created.Status, created.UserID)
	}
	if created.CreatedAt < before || created.CreatedAt > after || created.UpdatedAt != created.CreatedAt {
		t.Errorf("created_at %d, updated_at %d: want both the same Unix ms in [%d, %d]", created.CreatedAt, created.UpdatedAt, before, after)
	}
	c := e.keys.verify(t, created.Token)
	if c.ID != created.ID || c.Subject != "user_123" || c.Email != "ada@example.com" || c.Name != "Ada" || !c.Once {
		t.Errorf("claims %+v: want jti = id, sub user_123, the email and name, once", c)
	}
	if got := c.Expiry.Sub(c.IssuedAt); got != 600*time.Second {
		t.Errorf("exp − iat = %v, want 10m", got)
	}
	if want, _ := token.Link(e.linkURL, "token", created.Token); created.URL != want {
		t.Errorf("url = %q, want %q", created.URL, want)
	}

	got := e.call(t, apiRequest{http.MethodGet, "/v1/sign_in_tokens/" + created.ID, bearer, ""})
	read := got.signInToken(t)
	if _, ok := got.object(t)["token"]; ok || read.URL != "" {
		t.Errorf("GET answered %s; want no token and no url", got.body)
	}
	if read.ID != created.ID || read.Status != "pending" || read.UserID != "user_123" || read.CreatedAt != created.CreatedAt {
		t.Errorf("GET answered %+v; want the created token, pending", read)
	}

	session := e.openLink(t, created.URL, "user_123")
	accepted := e.waitStatus(t, created.ID, "accepted")
	if accepted.UpdatedAt < created.CreatedAt {
		t.Errorf("updated_at %d before created_at %d", accepted.UpdatedAt, created.CreatedAt)
	}
	res2, _ := fetch(t, browser(t), http.MethodGet, created.URL, nil)
	if res2.StatusCode != http.StatusUnauthorized {
		t.Errorf("a second browser opening the one-time link: status %d, want 401", res2.StatusCode)
	}

	revoked := e.call(t, apiRequest{http.MethodPost, "/v1/sign_in_tokens/" + created.ID + "/revoke", bearer, ""}).signInToken(t)
	if revoked.Status != "revoked" || revoked.ID != created.ID || revoked.UpdatedAt < accepted.UpdatedAt || revoked.Token != "" {
		t.Errorf("revoke answered %+v; want the token revoked, without its token", revoked)
	}
	if s := e.get(t, created.ID); s.Status != "revoked" {
		t.Errorf("status after revoke %q, want revoked", s.Status)
	}
	if res, body := fetch(t, session, http.MethodGet, e.gw.url("/welcome"), nil); res.StatusCode != http.StatusUnauthorized {
		t.Errorf("the session the revoked link opened: status %d (%s), want 401", res.StatusCode, body)
	}
	again := e.call(t, apiRequest{http.MethodPost, "/v1/sign_in_tokens/" + created.ID + "/revoke", bearer, "null"}).signInToken(t)
	if again.Status != "revoked" || again.UpdatedAt != revoked.UpdatedAt {
		t.Errorf("revoking again answered %+v; want it revoked as before", again)
	}
}

// TestAPIRevokeReusableLink revokes a link that is not one-time: the link itself stops working.
// TestAPIAccessLog checks that the access log line of each create, get and revoke names the link's
// id and user id, that a refused request names none, and that no line holds a token or the
// secret key.
func TestAPIAccessLog(t *testing.T) {
	e := startAPI(t, "", "")
	tok := e.create(t, `{"user_id":"user_access_log"}`)
	e.get(t, tok.ID)
	if res := e.call(t, apiRequest{http.MethodPost, "/v1/sign_in_tokens/" + tok.ID + "/revoke", bearer, ""}); res.status != http.StatusOK {
		t.Fatalf("revoke: status %d (%s), want 200", res.status, res.body)
	}
	if res := e.call(t, apiRequest{http.MethodPost, "/v1/sign_in_tokens", bearer, `{"user_id":`}); res.status != http.StatusUnprocessableEntity {
		t.Fatalf("a body cut short: status %d (%s), want 422", res.status, res.body)
	}

	type line struct {
		Request struct {
			Method, URI string
		}
		Status     int
		LinkID     *string `json:"link_id"`
		LinkUserID *string `json:"link_user_id"`
	}
	val := func(p *string) string {
		if p == nil {
			return "(absent)"
		}
		return *p
	}
	var lines []line
	var raw string
	for deadline := time.Now().Add(5 * time.Second); len(lines) < 4 && time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		b, err := os.ReadFile(e.accessLog)
		if err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
		raw, lines = string(b), nil
		for _, l := range strings.Split(strings.TrimSpace(raw), "\n") {
			var v line
			if json.Unmarshal([]byte(l), &v) == nil && v.Request.URI != "" {
				lines = append(lines, v)
			}
		}
	}
	if len(lines) != 4 {
		t.Fatalf("the access log has %d request lines, want 4:\n%s", len(lines), raw)
	}
	for i, want := range []struct {
		method, uri string
		named       bool
	}{
		{http.MethodPost, "/v1/sign_in_tokens", true},
		{http.MethodGet, "/v1/sign_in_tokens/" + tok.ID, true},
		{http.MethodPost, "/v1/sign_in_tokens/" + tok.ID + "/revoke", true},
		{http.MethodPost, "/v1/sign_in_tokens", false},
	} {
		l := lines[i]
		if l.Request.Method != want.method || l.Request.URI != want.uri {
			t.Errorf("line %d: %s %s, want %s %s", i, l.Request.Method, l.Request.URI, want.method, want.uri)
			continue
		}
		switch {
		case want.named && (l.LinkID == nil || *l.LinkID != tok.ID || l.LinkUserID == nil || *l.LinkUserID != "user_access_log"):
			t.Errorf("%s %s: link_id %s, link_user_id %s; want %s and user_access_log", want.method, want.uri, val(l.LinkID), val(l.LinkUserID), tok.ID)
		case !want.named && (l.LinkID != nil || l.LinkUserID != nil):
			t.Errorf("the refused %s %s names a link: link_id %s, link_user_id %s", want.method, want.uri, val(l.LinkID), val(l.LinkUserID))
		}
	}
	for name, secret := range map[string]string{"the token": tok.Token, "the secret key": apiSecretKey} {
		if strings.Contains(raw, secret) {
			t.Errorf("the access log holds %s", name)
		}
	}
}

func TestAPIRevokeReusableLink(t *testing.T) {
	e := startAPI(t, "", "\t\tonce false\n")
	s := e.create(t, `{"user_id":"user_9"}`)
	c := e.keys.verify(t, s.Token)
	if c.Once {
		t.Error("with once false, the link is one-time")
	}
	if got := c.Expiry.Sub(c.IssuedAt); got != DefaultAPITTL {
		t.Errorf("exp − iat = %v, want the default 720h", got)
	}
	first := e.openLink(t, s.URL, "user_9")
	e.openLink(t, s.URL, "user_9") // reusable
	if r := e.call(t, apiRequest{http.MethodPost, "/v1/sign_in_tokens/" + s.ID + "/revoke", bearer, "null"}).signInToken(t); r.Status != "revoked" {
		t.Fatalf("revoke answered status %q", r.Status)
	}
	if res, _ := fetch(t, browser(t), http.MethodGet, s.URL, nil); res.StatusCode != http.StatusUnauthorized {
		t.Errorf("the revoked link: status %d, want 401", res.StatusCode)
	}
	if res, _ := fetch(t, first, http.MethodGet, e.gw.url("/welcome"), nil); res.StatusCode != http.StatusUnauthorized {
		t.Errorf("a session of the revoked link: status %d, want 401", res.StatusCode)
	}

	// The body may ask for a one-time link, another page of the same origin and a path scope.
	o := e.create(t, `{"user_id":"user_9","once":true,"url":"`+e.gw.url("/survey/42/start")+`","path":"/survey/42"}`)
	oc := e.keys.verify(t, o.Token)
	if !oc.Once || oc.Path != "/survey/42" {
		t.Errorf("claims once %v, path %q; want true, /survey/42", oc.Once, oc.Path)
	}
	if want, _ := token.Link(e.gw.url("/survey/42/start"), "token", o.Token); o.URL != want {
		t.Errorf("url = %q, want %q", o.URL, want)
	}
}

// TestAPIMountAndPassThrough checks that the API answers under any prefix and passes other
// requests on.
func TestAPIMountAndPassThrough(t *testing.T) {
	e := startAPI(t, "", "")
	s := e.call(t, apiRequest{http.MethodPost, "/internal/clerk/v1/sign_in_tokens", bearer, `{"user_id":"u"}`}).signInToken(t)
	if g := e.call(t, apiRequest{http.MethodGet, "/elsewhere/sign_in_tokens/" + s.ID, bearer, ""}).signInToken(t); g.ID != s.ID {
		t.Errorf("GET under another prefix answered id %q, want %q", g.ID, s.ID)
	}
	for _, path := range []string{"/", "/v1/users", "/v1/sign_in_tokens_x", "/v1/sign_in_tokens/a/b/c"} {
		if r := e.call(t, apiRequest{http.MethodPost, path, nil, ""}); r.status != 418 || r.body != "not the API" {
			t.Errorf("POST %s: status %d (%s), want the next handler's 418", path, r.status, r.body)
		}
	}
}

// apiErrorCase is a request the API must refuse.
type apiErrorCase struct {
	name   string
	req    apiRequest
	status int
	code   string
	param  string // meta.param_name, when the error names a field
	allow  string // the Allow header of a 405
}

// apiErrorCases lists the refused requests; id names a sign-in token that exists.
func apiErrorCases(id string) []apiErrorCase {
	post := func(body string) apiRequest { return apiRequest{http.MethodPost, "/v1/sign_in_tokens", bearer, body} }
	invalid := func(name, param, body string) apiErrorCase {
		return apiErrorCase{name, post(body), 422, "form_param_format_invalid", param, ""}
	}
	missing := func(name, body string) apiErrorCase {
		return apiErrorCase{name, post(body), 422, "form_param_missing", "user_id", ""}
	}
	unauthorized := func(name string, auth ...string) apiErrorCase {
		return apiErrorCase{name, apiRequest{http.MethodPost, "/v1/sign_in_tokens", auth, `{"user_id":"u"}`}, 401, "authorization_invalid", "", ""}
	}
	long := strings.Repeat("x", 256)
	return []apiErrorCase{
		unauthorized("no authorization"),
		unauthorized("basic scheme", "Basic "+apiSecretKey),
		unauthorized("wrong key", "Bearer "+strings.Repeat("k", 40)),
		unauthorized("key with a suffix", "Bearer "+apiSecretKey+"x"),
		unauthorized("key prefix", "Bearer "+apiSecretKey[:len(apiSecretKey)-1]),
		unauthorized("bearer without key", "Bearer"),
		unauthorized("bearer and a space", "Bearer "),
		unauthorized("two authorization headers", "Bearer "+apiSecretKey, "Bearer "+apiSecretKey),
		{"unauthorized get", apiRequest{http.MethodGet, "/v1/sign_in_tokens/" + id, nil, ""}, 401, "authorization_invalid", "", ""},
		{"unauthorized revoke", apiRequest{http.MethodPost, "/v1/sign_in_tokens/" + id + "/revoke", []string{"Bearer nope"}, ""}, 401, "authorization_invalid", "", ""},
		{"GET create", apiRequest{http.MethodGet, "/v1/sign_in_tokens", bearer, ""}, 405, "method_not_allowed", "", "POST"},
		{"DELETE token", apiRequest{http.MethodDelete, "/v1/sign_in_tokens/" + id, bearer, ""}, 405, "method_not_allowed", "", "GET"},
		{"POST token", apiRequest{http.MethodPost, "/v1/sign_in_tokens/" + id, bearer, ""}, 405, "method_not_allowed", "", "GET"},
		{"GET revoke", apiRequest{http.MethodGet, "/v1/sign_in_tokens/" + id + "/revoke", bearer, ""}, 405, "method_not_allowed", "", "POST"},
		{"unknown id", apiRequest{http.MethodGet, "/v1/sign_in_tokens/nope", bearer, ""}, 404, "resource_not_found", "", ""},
		{"empty id", apiRequest{http.MethodGet, "/v1/sign_in_tokens/", bearer, ""}, 404, "resource_not_found", "", ""},
		{"revoke unknown id", apiRequest{http.MethodPost, "/v1/sign_in_tokens/nope/revoke", bearer, ""}, 404, "resource_not_found", "", ""},
		{"revoke with an array", apiRequest{http.MethodPost, "/v1/sign_in_tokens/" + id + "/revoke", bearer, "[1]"}, 422, "form_param_format_invalid", "", ""},
		{"revoke with bad JSON", apiRequest{http.MethodPost, "/v1/sign_in_tokens/" + id + "/revoke", bearer, "{"}, 422, "form_param_format_invalid", "", ""},
		invalid("empty body", "", ""),
		invalid("malformed JSON", "", `{"user_id":"u"`),
		invalid("trailing data", "", `{"user_id":"u"} {}`),
		invalid("array", "", `["u"]`),
		invalid("null body", "", `null`),
		invalid("string body", "", `"u"`),
		invalid("invalid UTF-8", "", "{\"user_id\":\"\xff\"}"),
		invalid("repeated member", "", `{"user_id":"u","user_id":"v"}`),
		invalid("repeated member under an escape", "", `{"user_id":"u","\u0075ser_id":null}`),
		missing("no user_id", `{}`),
		missing("null user_id", `{"user_id":null}`),
		missing("empty user_id", `{"user_id":""}`),
		missing("user_id under another case", `{"User_Id":"u"}`),
		invalid("numeric user_id", "user_id", `{"user_id":5}`),
		invalid("long user_id", "user_id", `{"user_id":"`+long+`"}`),
		invalid("user_id with a control character", "user_id", `{"user_id":"a\u0007b"}`),
		invalid("user_id with a C1 control character", "user_id", `{"user_id":"a\u0085b"}`),
		invalid("user_id with NUL", "user_id", `{"user_id":"a\u0000"}`),
		invalid("expires_in_seconds as a string", "expires_in_seconds", `{"user_id":"u","expires_in_seconds":"600"}`),
		invalid("expires_in_seconds as a float", "expires_in_seconds", `{"user_id":"u","expires_in_seconds":1.5}`),
		invalid("expires_in_seconds as 600.0", "expires_in_seconds", `{"user_id":"u","expires_in_seconds":600.0}`),
		invalid("expires_in_seconds as 6e2", "expires_in_seconds", `{"user_id":"u","expires_in_seconds":6e2}`),
		invalid("expires_in_seconds negative", "expires_in_seconds", `{"user_id":"u","expires_in_seconds":-1}`),
		invalid("expires_in_seconds zero", "expires_in_seconds", `{"user_id":"u","expires_in_seconds":0}`),
		invalid("expires_in_seconds over max_ttl", "expires_in_seconds", `{"user_id":"u","expires_in_seconds":2592001}`),
		invalid("expires_in_seconds huge", "expires_in_seconds", `{"user_id":"u","expires_in_seconds":99999999999999999999}`),
		invalid("expires_in_seconds true", "expires_in_seconds", `{"user_id":"u","expires_in_seconds":true}`),
		invalid("long email", "email", `{"user_id":"u","email":"`+long+`"}`),
		invalid("numeric email", "email", `{"user_id":"u","email":1}`),
		invalid("name with a newline", "name", `{"user_id":"u","name":"a\nb"}`),
		invalid("relative path", "path", `{"user_id":"u","path":"survey"}`),
		invalid("path with dot segments", "path", `{"user_id":"u","path":"/a/../b"}`),
		invalid("url on another origin", "url", `{"user_id":"u","url":"https://evil.example/welcome"}`),
		invalid("url not http", "url", `{"user_id":"u","url":"javascript:alert(1)"}`),
		invalid("url relative", "url", `{"user_id":"u","url":"/welcome"}`),
		invalid("url with credentials", "url", `{"user_id":"u","url":"https://a:b@shop.example.com/"}`),
		invalid("once as a string", "once", `{"user_id":"u","once":"yes"}`),
		invalid("once as a number", "once", `{"user_id":"u","once":1}`),
		{"body over 64 KiB", post(`{"user_id":"u","pad":"` + strings.Repeat("p", 64<<10) + `"}`), 413, "request_body_too_large", "", ""},
		{"revoke body over 64 KiB", apiRequest{http.MethodPost, "/v1/sign_in_tokens/" + id + "/revoke", bearer, `{"pad":"` + strings.Repeat("p", 64<<10) + `"}`}, 413, "request_body_too_large", "", ""},
	}
}

// checkAPIError checks that an answer is the error c wants, in Clerk's shape.
func checkAPIError(t *testing.T, c apiErrorCase, status int, header http.Header, body string) {
	t.Helper()
	if status != c.status {
		t.Errorf("status %d (%s), want %d", status, body, c.status)
	}
	if ct := header.Values("Content-Type"); !slices.Equal(ct, []string{"application/json"}) {
		t.Errorf("Content-Type = %q, want application/json exactly", ct)
	}
	if got := header.Get("Allow"); got != c.allow {
		t.Errorf("Allow = %q, want %q", got, c.allow)
	}
	var e struct {
		Errors []struct {
			Message     *string `json:"message"`
			LongMessage *string `json:"long_message"`
			Code        string  `json:"code"`
			Meta        struct {
				ParamName string `json:"param_name"`
			} `json:"meta"`
		} `json:"errors"`
	}
	if err := json.Unmarshal([]byte(body), &e); err != nil || len(e.Errors) != 1 {
		t.Fatalf("body %q: not Clerk's error shape with one error", body)
	}
	got := e.Errors[0]
	if got.Code != c.code || got.Meta.ParamName != c.param || got.Message == nil || *got.Message == "" ||
		got.LongMessage == nil || *got.LongMessage == "" {
		t.Errorf("error %s: want code %q, param_name %q, a message and a long_message", body, c.code, c.param)
	}
	if strings.Contains(body, apiSecretKey) {
		t.Errorf("the error repeats the secret key: %s", body)
	}
}

func TestAPIErrors(t *testing.T) {
	e := startAPI(t, "", "")
	s := e.create(t, `{"user_id":"user_err"}`)
	for _, c := range apiErrorCases(s.ID) {
		t.Run(c.name, func(t *testing.T) {
			r := e.call(t, c.req)
			checkAPIError(t, c, r.status, r.header, r.body)
		})
	}
	if got := e.get(t, s.ID); got.Status != "pending" {
		t.Errorf("after the refused requests the token is %q, want pending", got.Status)
	}
}

// TestAPIStoreUnreachable runs the API with a Redis store nobody listens on: every endpoint answers
// 503 in Clerk's shape, and no link is handed out.
func TestAPIStoreUnreachable(t *testing.T) {
	e := startAPI(t, fmt.Sprintf("\tmagic_link {\n\t\tstore redis redis://127.0.0.1:%d\n\t\ttimeout 200ms\n\t}\n", freePort()), "")
	for _, q := range []apiRequest{
		{http.MethodPost, "/v1/sign_in_tokens", bearer, `{"user_id":"u"}`},
		{http.MethodGet, "/v1/sign_in_tokens/some-id", bearer, ""},
		{http.MethodPost, "/v1/sign_in_tokens/some-id/revoke", bearer, ""},
	} {
		r := e.call(t, q)
		checkAPIError(t, apiErrorCase{code: "service_unavailable", status: 503}, r.status, r.header, r.body)
		if strings.Contains(r.body, "token\"") || strings.Contains(r.body, "eyJ") {
			t.Errorf("%s %s: the 503 carries a token: %s", q.method, q.path, r.body)
		}
	}
}

// countingStore counts the writes to a store.
type countingStore struct {
	store.Store
	puts, revokes atomic.Int32
}

func (s *countingStore) PutLink(ctx context.Context, l store.Link) error {
	s.puts.Add(1)
	return s.Store.PutLink(ctx, l)
}

func (s *countingStore) Revoke(ctx context.Context, r store.Revocation) error {
	s.revokes.Add(1)
	return s.Store.Revoke(ctx, r)
}

// newTestAPI is a provisioned API on a file store under a temporary directory, without Caddy, its
// log lines in the returned buffer.
func newTestAPI(t *testing.T) (*API, *countingStore, *syncBuffer) {
	t.Helper()
	fs, err := store.OpenFile(filepath.Join(t.TempDir(), "state.db"), store.FileOptions{})
	if err != nil {
		t.Fatal(err)
	}
	st := &countingStore{Store: fs}
	logs := new(syncBuffer)
	a := newAPIWith(t, st, zapcore.AddSync(logs), zapcore.DebugLevel)
	return a, st, logs
}

// newAPIWith returns an API as Provision makes it, minting links with a fresh key into st and
// logging its JSON lines of at least level to out.
func newAPIWith(t testing.TB, st store.Store, out zapcore.WriteSyncer, level zapcore.Level) *API {
	t.Helper()
	keys := newGWKeys(t)
	state := newAppState(st, time.Second, zap.NewNop())
	t.Cleanup(func() { _ = state.Destruct() })
	once := true
	a := &API{
		Key: keys.privateFile, SecretKeys: []string{apiSecretKey}, URL: "https://shop.example.com/welcome",
		Audience: gwAudience, Param: "token", DefaultTTL: caddy.Duration(DefaultAPITTL), MaxTTL: caddy.Duration(DefaultAPIMaxTTL),
		Once:   &once,
		signer: keys.signer,
		app:    &App{state: state, mu: new(sync.Mutex)},
		keys:   [][sha256.Size]byte{sha256.Sum256([]byte(apiSecretKey))},
	}
	if err := a.Validate(); err != nil {
		t.Fatal(err)
	}
	if err := a.parseURL(); err != nil {
		t.Fatal(err)
	}
	a.logger = zap.New(zapcore.NewCore(zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig()), out, level))
	return a
}

// syncBuffer is a bytes.Buffer safe for concurrent use.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// serve sends q through the handler.
func serveAPI(t *testing.T, a *API, q apiRequest) *httptest.ResponseRecorder {
	t.Helper()
	rec := httptest.NewRecorder()
	next := caddyhttp.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) error {
		w.WriteHeader(http.StatusTeapot)
		return nil
	})
	if err := a.ServeHTTP(rec, newAPIHTTPRequest(t, "https://api.internal", q), next); err != nil {
		t.Fatal(err)
	}
	return rec
}

// TestAPIRefusedStoresNothing checks that no refused request records or revokes anything, and that
// the log names ids and user ids but never a token or a secret key.
func TestAPIRefusedStoresNothing(t *testing.T) {
	a, st, logs := newTestAPI(t)
	rec := serveAPI(t, a, apiRequest{http.MethodPost, "/v1/sign_in_tokens", bearer, `{"user_id":"user_log"}`})
	var s signInToken
	if err := json.Unmarshal(rec.Body.Bytes(), &s); err != nil || rec.Code != 200 || s.Token == "" {
		t.Fatalf("create: status %d, body %s", rec.Code, rec.Body)
	}
	if st.puts.Load() != 1 {
		t.Fatalf("create stored %d records, want 1", st.puts.Load())
	}
	for _, c := range apiErrorCases(s.ID) {
		rec := serveAPI(t, a, c.req)
		checkAPIError(t, c, rec.Code, rec.Header(), rec.Body.String())
	}
	if p, r := st.puts.Load(), st.revokes.Load(); p != 1 || r != 0 {
		t.Errorf("the refused requests stored %d more records and %d revocations, want none", p-1, r)
	}
	if strings.Count(logs.String(), "sign-in token created") != 1 {
		t.Errorf("the log tells of other links than one:\n%s", logs)
	}
	if rec := serveAPI(t, a, apiRequest{http.MethodPost, "/v1/sign_in_tokens/" + s.ID + "/revoke", bearer, ""}); rec.Code != 200 || st.revokes.Load() != 1 {
		t.Fatalf("revoke: status %d, %d revocations; want 200, 1", rec.Code, st.revokes.Load())
	}
	if !a.app.state.revocations.linkRevoked(s.ID, "u-none", time.Now()) {
		t.Error("the revoked link is not in the in-memory revocation list")
	}
	out := logs.String()
	for _, want := range []string{`"id":"` + s.ID + `"`, `"user_id":"user_log"`, "sign-in token revoked"} {
		if !strings.Contains(out, want) {
			t.Errorf("the log lacks %s:\n%s", want, out)
		}
	}
	for _, secret := range []string{s.Token, strings.SplitN(s.Token, ".", 3)[2], apiSecretKey} {
		if strings.Contains(out, secret) {
			t.Errorf("the log holds a token or the secret key:\n%s", out)
		}
	}
}

// TestAPIStoreClosed checks the 503 of every endpoint when the store answers ErrUnavailable.
func TestAPIStoreClosed(t *testing.T) {
	a, st, _ := newTestAPI(t)
	rec := serveAPI(t, a, apiRequest{http.MethodPost, "/v1/sign_in_tokens", bearer, `{"user_id":"u"}`})
	var s signInToken
	if err := json.Unmarshal(rec.Body.Bytes(), &s); err != nil || rec.Code != 200 {
		t.Fatalf("create: status %d, body %s", rec.Code, rec.Body)
	}
	if err := st.Store.Close(); err != nil {
		t.Fatal(err)
	}
	for _, q := range []apiRequest{
		{http.MethodPost, "/v1/sign_in_tokens", bearer, `{"user_id":"u"}`},
		{http.MethodGet, "/v1/sign_in_tokens/" + s.ID, bearer, ""},
		{http.MethodPost, "/v1/sign_in_tokens/" + s.ID + "/revoke", bearer, ""},
	} {
		rec := serveAPI(t, a, q)
		checkAPIError(t, apiErrorCase{code: "service_unavailable", status: 503}, rec.Code, rec.Header(), rec.Body.String())
	}
	if a.app.state.revocations.linkRevoked(s.ID, "u-none", time.Now()) {
		t.Error("a revoke the store refused is in the in-memory list")
	}
}
