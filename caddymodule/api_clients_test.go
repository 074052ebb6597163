package caddymodule

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/clerk/clerk-sdk-go/v2"
	"github.com/clerk/clerk-sdk-go/v2/signintoken"
)

// TestAPIClerkGoSDK drives the issuing API with Clerk's Go SDK, unmodified, pointed at the test
// Caddy: the token it creates opens a session through the gateway, and once revoked its link is
// refused.
func TestAPIClerkGoSDK(t *testing.T) {
	e := startAPI(t, "", "\t\tonce false\n")
	client := signintoken.NewClient(&clerk.ClientConfig{BackendConfig: clerk.BackendConfig{
		URL: clerk.String(e.api.url("/v1")),
		Key: clerk.String(apiSecretKey),
	}})
	ctx := context.Background()

	created, err := client.Create(ctx, &signintoken.CreateParams{
		UserID:           clerk.String("user_go"),
		ExpiresInSeconds: clerk.Int64(900),
	})
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	if created.Object != "sign_in_token" || created.Status != "pending" || created.UserID != "user_go" ||
		created.Token == "" || created.URL == nil || created.CreatedAt == 0 {
		t.Fatalf("Create answered %+v", created)
	}
	c := e.keys.verify(t, created.Token)
	if c.ID != created.ID || c.Expiry.Sub(c.IssuedAt) != 900*time.Second {
		t.Errorf("claims jti %q, lifetime %v; want %q, 15m", c.ID, c.Expiry.Sub(c.IssuedAt), created.ID)
	}

	session := e.openLink(t, *created.URL, "user_go")
	e.waitStatus(t, created.ID, "accepted")

	revoked, err := client.Revoke(ctx, created.ID)
	if err != nil {
		t.Fatalf("Revoke: %v", err)
	}
	if revoked.ID != created.ID || revoked.Status != "revoked" {
		t.Errorf("Revoke answered %+v", revoked)
	}
	if s := e.get(t, created.ID); s.Status != "revoked" {
		t.Errorf("status after Revoke %q", s.Status)
	}
	if res, _ := fetch(t, browser(t), http.MethodGet, *created.URL, nil); res.StatusCode != http.StatusUnauthorized {
		t.Errorf("the revoked link: status %d, want 401", res.StatusCode)
	}
	if res, _ := fetch(t, session, http.MethodGet, e.gw.url("/welcome"), nil); res.StatusCode != http.StatusUnauthorized {
		t.Errorf("the revoked link's session: status %d, want 401", res.StatusCode)
	}

	// The SDK reads our errors as Clerk's.
	_, err = client.Create(ctx, &signintoken.CreateParams{UserID: clerk.String("u"), ExpiresInSeconds: clerk.Int64(-5)})
	var apiErr *clerk.APIErrorResponse
	if !errors.As(err, &apiErr) || apiErr.HTTPStatusCode != http.StatusUnprocessableEntity || len(apiErr.Errors) != 1 ||
		apiErr.Errors[0].Code != "form_param_format_invalid" {
		t.Errorf("a negative lifetime: error %v, want Clerk's 422 form_param_format_invalid", err)
	}
	_, err = client.Revoke(ctx, "nope")
	if !errors.As(err, &apiErr) || apiErr.HTTPStatusCode != http.StatusNotFound || apiErr.Errors[0].Code != "resource_not_found" {
		t.Errorf("revoking an unknown id: error %v, want Clerk's 404 resource_not_found", err)
	}
	wrong := signintoken.NewClient(&clerk.ClientConfig{BackendConfig: clerk.BackendConfig{
		URL: clerk.String(e.api.url("/v1")), Key: clerk.String("sk_test_not-the-key-0123456789abcdef"),
	}})
	_, err = wrong.Create(ctx, &signintoken.CreateParams{UserID: clerk.String("u")})
	if !errors.As(err, &apiErr) || apiErr.HTTPStatusCode != http.StatusUnauthorized || apiErr.Errors[0].Code != "authorization_invalid" {
		t.Errorf("a wrong key: error %v, want Clerk's 401 authorization_invalid", err)
	}
}

// clerkNPMDir holds the harness of Clerk's npm SDK. Install it with:
// npm ci --prefix caddymodule/testdata/clerknpm
var clerkNPMDir = filepath.Join("testdata", "clerknpm")

// clerkNPMResult is what testdata/clerknpm/clerk.mjs prints. Constructor is the name of the class
// the SDK made of the answer (its bundler may prefix it with "_").
type clerkNPMResult struct {
	OK          bool   `json:"ok"`
	Constructor string `json:"constructor"`
	Token       struct {
		ID        string `json:"id"`
		UserID    string `json:"userId"`
		Token     string `json:"token"`
		Status    string `json:"status"`
		URL       string `json:"url"`
		CreatedAt int64  `json:"createdAt"`
	} `json:"token"`
	Status int `json:"status"`
	Errors []struct {
		Code string `json:"code"`
	} `json:"errors"`
}

// clerkNPM runs one call of Clerk's npm SDK against apiURL with the secret key. It skips the test
// when Node.js or the SDK is missing, except on CI (CI=true), where that is a failure.
func clerkNPM(t *testing.T, apiURL, secretKey string, args ...string) clerkNPMResult {
	t.Helper()
	node, err := exec.LookPath("node")
	if err == nil {
		_, err = os.Stat(filepath.Join(clerkNPMDir, "node_modules", "@clerk", "backend", "package.json"))
	}
	if err != nil {
		msg := "Clerk's npm SDK needs Node.js and `npm ci --prefix caddymodule/testdata/clerknpm`: " + err.Error()
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	cmd := exec.Command(node, append([]string{"clerk.mjs", apiURL}, args...)...)
	cmd.Dir = clerkNPMDir
	cmd.Env = append(os.Environ(), "CLERK_SECRET_KEY="+secretKey)
	out, err := cmd.Output()
	if err != nil {
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			t.Fatalf("node clerk.mjs: %v\n%s", err, exit.Stderr)
		}
		t.Fatal(err)
	}
	var r clerkNPMResult
	if err := json.Unmarshal(out, &r); err != nil {
		t.Fatalf("node clerk.mjs printed %q: %v", out, err)
	}
	return r
}

// TestAPIClerkNPMSDK drives the issuing API with Clerk's npm SDK, @clerk/backend, unmodified.
func TestAPIClerkNPMSDK(t *testing.T) {
	e := startAPI(t, "", "\t\tonce false\n")
	base := e.api.url("")

	created := clerkNPM(t, base, apiSecretKey, "create", "user_npm", "1200")
	if !created.OK || strings.TrimLeft(created.Constructor, "_") != "SignInToken" || created.Token.UserID != "user_npm" ||
		created.Token.Status != "pending" || created.Token.Token == "" || created.Token.URL == "" || created.Token.CreatedAt == 0 {
		t.Fatalf("createSignInToken answered %+v", created)
	}
	c := e.keys.verify(t, created.Token.Token)
	if c.ID != created.Token.ID || c.Expiry.Sub(c.IssuedAt) != 1200*time.Second {
		t.Errorf("claims jti %q, lifetime %v; want %q, 20m", c.ID, c.Expiry.Sub(c.IssuedAt), created.Token.ID)
	}

	session := e.openLink(t, created.Token.URL, "user_npm")
	e.waitStatus(t, created.Token.ID, "accepted")

	revoked := clerkNPM(t, base, apiSecretKey, "revoke", created.Token.ID)
	if !revoked.OK || revoked.Token.ID != created.Token.ID || revoked.Token.Status != "revoked" {
		t.Fatalf("revokeSignInToken answered %+v", revoked)
	}
	if res, _ := fetch(t, browser(t), http.MethodGet, created.Token.URL, nil); res.StatusCode != http.StatusUnauthorized {
		t.Errorf("the revoked link: status %d, want 401", res.StatusCode)
	}
	if res, _ := fetch(t, session, http.MethodGet, e.gw.url("/welcome"), nil); res.StatusCode != http.StatusUnauthorized {
		t.Errorf("the revoked link's session: status %d, want 401", res.StatusCode)
	}

	// The SDK reads our errors as Clerk's.
	if r := clerkNPM(t, base, apiSecretKey, "create", "u", "0"); r.OK || r.Status != 422 || len(r.Errors) != 1 || r.Errors[0].Code != "form_param_format_invalid" {
		t.Errorf("a zero lifetime: %+v, want Clerk's 422 form_param_format_invalid", r)
	}
	if r := clerkNPM(t, base, "sk_test_not-the-key-0123456789abcdef", "revoke", created.Token.ID); r.OK || r.Status != 401 ||
		len(r.Errors) != 1 || r.Errors[0].Code != "authorization_invalid" {
		t.Errorf("a wrong key: %+v, want Clerk's 401 authorization_invalid", r)
	}
}
