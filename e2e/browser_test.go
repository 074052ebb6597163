package e2e

import (
	"context"
	"html/template"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/magiclink-dev/magiclink/token"
)

func TestBrowser(t *testing.T) {
	browser := newBrowser(t)
	g := startGateway(t)
	user := token.Claims{Subject: "e2e-user", Email: "e2e@example.com", Expiry: time.Now().Add(time.Hour)}

	t.Run("link signs in", func(t *testing.T) {
		tab := newTab(t, browser)
		link := g.link(t, g.redirect, "/welcome?campaign=spring", user)

		resp := run(t, tab, "opening the link", chromedp.NavigateResponse(link))
		if resp.Status != http.StatusOK {
			t.Errorf("the link ended on status %d, want 200", resp.Status)
		}
		heading(t, tab, "Signed in as e2e-user")
		if got := run(t, tab, "reading the email", chromedp.Text(chromedp.ID("email"))); got != "e2e@example.com" {
			t.Errorf("the page shows email %q, want e2e@example.com", got)
		}
		saveScreenshot(t, "signed-in.png", run(t, tab, "taking a screenshot", chromedp.CaptureScreenshot()))

		href := run(t, tab, "reading location.href", chromedp.Evaluate[string]("location.href"))
		if want := g.redirect + "/welcome?campaign=spring"; href != want {
			t.Errorf("the address bar shows %s (token in it: %v), want %s", strings.SplitN(href, "?", 2)[0],
				strings.Contains(href, "token="), want)
		}

		// The app's own cookie shows that scripts can read cookies here; the session's cannot.
		if got := run(t, tab, "checking that scripts run", chromedp.Text(chromedp.ID("js"))); got != "JavaScript on" {
			t.Fatalf("the page says %q, want JavaScript on", got)
		}
		jsCookies := run(t, tab, "reading document.cookie", chromedp.Evaluate[string]("document.cookie"))
		if !strings.Contains(jsCookies, appCookie+"=1") {
			t.Errorf("document.cookie lacks the app's cookie %s", appCookie)
		}
		if strings.Contains(jsCookies, sessionCookie) {
			t.Errorf("document.cookie exposes the session cookie %s", sessionCookie)
		}
		c := findCookie(run(t, tab, "reading the cookies", cookies(g.redirect)), sessionCookie)
		switch {
		case c == nil:
			t.Fatalf("the browser holds no %s cookie", sessionCookie)
		case !c.HTTPOnly || c.SameSite != network.CookieSameSiteLax || c.Path != "/":
			t.Errorf("session cookie HttpOnly=%v SameSite=%s Path=%s, want HttpOnly, Lax, /", c.HTTPOnly, c.SameSite, c.Path)
		}

		run(t, tab, "reloading", chromedp.Reload())
		heading(t, tab, "Signed in as e2e-user")
	})

	rejected := []struct {
		name       string
		link       string
		heading    string
		screenshot string
	}{
		{"expired link", g.link(t, g.redirect, "/", token.Claims{
			Subject: "e2e-user", IssuedAt: time.Now().Add(-2 * time.Hour), Expiry: time.Now().Add(-time.Hour),
		}), "Link expired", "expired.png"},
		{"link for another site", g.link(t, g.redirect, "/", token.Claims{
			Subject: "e2e-user", Audience: []string{g.confirm}, Expiry: time.Now().Add(time.Hour),
		}), "Invalid link", ""},
		{"link outside its path", g.link(t, g.redirect, "/account", token.Claims{
			Subject: "e2e-user", Path: "/survey/42", Expiry: time.Now().Add(time.Hour),
		}), "Invalid link", ""},
	}
	for _, tt := range rejected {
		t.Run(tt.name, func(t *testing.T) {
			tab := newTab(t, browser)
			resp := run(t, tab, "opening the link", chromedp.NavigateResponse(tt.link))
			if resp.Status != http.StatusUnauthorized {
				t.Errorf("status %d, want 401", resp.Status)
			}
			heading(t, tab, tt.heading)
			if tt.screenshot != "" {
				saveScreenshot(t, tt.screenshot, run(t, tab, "taking a screenshot", chromedp.CaptureScreenshot()))
			}
			if c := findCookie(run(t, tab, "reading the cookies", cookies(g.redirect)), sessionCookie); c != nil {
				t.Errorf("a rejected link left a %s cookie", sessionCookie)
			}
		})
	}

	t.Run("confirm page works without JavaScript", func(t *testing.T) {
		tab := newTab(t, browser)
		run(t, tab, "disabling JavaScript", chromedp.Func(func(ctx context.Context, target *chromedp.Target) error {
			_, err := cdp.Call(ctx, target, emulation.SetScriptExecutionDisabled,
				emulation.SetScriptExecutionDisabledParams{Value: true})
			return err
		}))
		link := g.link(t, g.confirm, "/survey?q=1", user)

		resp := run(t, tab, "opening the link", chromedp.NavigateResponse(link))
		if resp.Status != http.StatusOK {
			t.Errorf("the confirmation page has status %d, want 200", resp.Status)
		}
		heading(t, tab, "Continue to sign in")
		if c := findCookie(run(t, tab, "reading the cookies", cookies(g.confirm)), sessionCookie); c != nil {
			t.Fatalf("the confirmation page set a %s cookie before the button was pressed", sessionCookie)
		}

		ctx, cancel := context.WithTimeout(tab, browserWait)
		defer cancel()
		resp, err := chromedp.RunResponse(ctx, chromedp.Click(chromedp.CSS("form button")))
		if err != nil {
			t.Fatalf("pressing the button: %v", err)
		}
		if resp.Status != http.StatusOK {
			t.Errorf("pressing the button ended on status %d, want 200", resp.Status)
		}
		heading(t, tab, "Signed in as e2e-user")
		if got := run(t, tab, "checking that scripts do not run", chromedp.Text(chromedp.ID("js"))); got != "JavaScript off" {
			t.Errorf("the page says %q, want JavaScript off", got)
		}
		if u := currentURL(t, tab); u != g.confirm+"/survey?q=1" {
			t.Errorf("ended on %s (token in it: %v), want %s/survey?q=1", strings.SplitN(u, "?", 2)[0],
				strings.Contains(u, "token="), g.confirm)
		}
		if c := findCookie(run(t, tab, "reading the cookies", cookies(g.confirm)), sessionCookie); c == nil {
			t.Errorf("pressing the button set no %s cookie", sessionCookie)
		}
	})
}

// TestBrowserCrossSiteConfirm checks that another site cannot sign a visitor in with a link of its
// own: a page on a second origin that submits a form posting a valid link to a site with redeem
// confirm gets the visitor the confirmation page, and no session.
func TestBrowserCrossSiteConfirm(t *testing.T) {
	browser := newBrowser(t)
	g := startGateway(t)
	link := g.link(t, g.confirm, "/survey?q=1", token.Claims{Subject: "attacker", Expiry: time.Now().Add(time.Hour)})
	attacker := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		crossSitePage.Execute(w, link)
	}))
	t.Cleanup(attacker.Close)

	tab := newTab(t, browser)
	run(t, tab, "opening the other site's page", chromedp.Navigate(attacker.URL))
	run(t, tab, "waiting for the form's answer", chromedp.WaitVisible(chromedp.CSS("h1")))
	heading(t, tab, "Continue to sign in")
	if u := currentURL(t, tab); !strings.HasPrefix(u, g.confirm+"/") {
		t.Errorf("the form landed on %s, want the gateway's confirmation page", strings.SplitN(u, "?", 2)[0])
	}
	if c := findCookie(run(t, tab, "reading the cookies", cookies(g.confirm)), sessionCookie); c != nil {
		t.Fatalf("a form on another site signed the browser in (a %s cookie)", sessionCookie)
	}
	run(t, tab, "opening the site", chromedp.Navigate(g.confirm+"/"))
	heading(t, tab, "Not signed in")
}

// crossSitePage is a page of another site that submits a form posting a link as soon as it loads.
var crossSitePage = template.Must(template.New("cross-site").Parse(`<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><link rel="icon" href="data:,"><title>another site</title></head>
<body>
<form method="post" action="{{.}}"></form>
<script>document.forms[0].submit();</script>
</body>
</html>
`))

// heading fails the test unless the page's h1 reads want.
func heading(t *testing.T, tab context.Context, want string) {
	t.Helper()
	if got := run(t, tab, "reading the heading", chromedp.Text(chromedp.CSS("h1"))); got != want {
		t.Fatalf("the page's heading is %q, want %q", got, want)
	}
}

// currentURL returns the URL of the tab's current history entry, read without running scripts.
func currentURL(t *testing.T, tab context.Context) string {
	t.Helper()
	h := run(t, tab, "reading the history", chromedp.NavigationEntries())
	if h.CurrentIndex < 0 || int(h.CurrentIndex) >= len(h.Entries) {
		t.Fatalf("the tab has no current history entry")
	}
	return h.Entries[h.CurrentIndex].URL
}

// cookies is an action that returns the cookies the browser would send to origin.
func cookies(origin string) chromedp.Action[[]*network.Cookie] {
	return func(ctx context.Context, target *chromedp.Target) ([]*network.Cookie, error) {
		res, err := cdp.Call(ctx, target, network.GetCookies, network.GetCookiesParams{URLs: []string{origin + "/"}})
		return res.Cookies, err
	}
}

// findCookie returns the cookie called name in list, or nil.
func findCookie(list []*network.Cookie, name string) *network.Cookie {
	for _, c := range list {
		if c.Name == name {
			return c
		}
	}
	return nil
}
