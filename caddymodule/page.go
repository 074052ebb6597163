package caddymodule

import (
	"bytes"
	"embed"
	"html/template"
	"net/http"
	"net/url"
	"strings"
)

//go:embed pages/page.html
var pagesFS embed.FS

// pageTemplate renders the built-in pages: a title, one sentence and, for the confirmation page, a
// button that POSTs to Action.
var pageTemplate = template.Must(template.ParseFS(pagesFS, "pages/page.html"))

// pageData fills pageTemplate.
type pageData struct {
	Title, Message string
	Action         string
}

// pageSecurityPolicy forbids scripts, framing and every resource the pages do not use.
const pageSecurityPolicy = "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

// rejectionPages holds the rendered 401 page of each rejection reason.
var rejectionPages = renderRejectionPages()

func renderRejectionPages() map[string][]byte {
	invalid := pageData{Title: "Invalid link", Message: "This link is invalid."}
	texts := map[string]pageData{
		ReasonExpired:         {Title: "Link expired", Message: "This link has expired. Ask for a new one."},
		ReasonNotYetValid:     invalid,
		ReasonOutsideScope:    invalid,
		ReasonInvalid:         invalid,
		ReasonUnauthenticated: {Title: "Sign in", Message: "Sign in with the link from your email."},
		ReasonUsed:            {Title: "Link already used", Message: "This link has already been used. Ask for a new one."},
		ReasonRevoked:         {Title: "Link revoked", Message: "This link is no longer valid. Ask for a new one."},
		ReasonUnavailable:     {Title: "Try again", Message: "Signing in is not possible right now. Try again in a moment."},
	}
	pages := make(map[string][]byte, len(texts))
	for reason, data := range texts {
		var b bytes.Buffer
		if err := pageTemplate.Execute(&b, data); err != nil {
			panic("caddymodule: rendering the built-in page: " + err.Error())
		}
		pages[reason] = b.Bytes()
	}
	return pages
}

// setPageHeaders sets the headers every built-in page carries.
func setPageHeaders(h http.Header) {
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Content-Security-Policy", pageSecurityPolicy)
}

// writeRejectionPage answers with the built-in page for reason: 503 when the store is
// unavailable, 401 otherwise.
func writeRejectionPage(w http.ResponseWriter, reason string) error {
	setPageHeaders(w.Header())
	w.WriteHeader(rejectionStatus(reason))
	_, err := w.Write(rejectionPages[reason])
	return err
}

// rejectionStatus is the status of a rejection for reason.
func rejectionStatus(reason string) int {
	if reason == ReasonUnavailable {
		return http.StatusServiceUnavailable
	}
	return http.StatusUnauthorized
}

// writeConfirmPage answers 200 with a page whose button POSTs the link u back to the same origin.
func writeConfirmPage(w http.ResponseWriter, u *url.URL) error {
	action := "/" + strings.TrimLeft(u.EscapedPath(), `/\`) + "?" + u.RawQuery
	var b bytes.Buffer
	err := pageTemplate.Execute(&b, pageData{
		Title:   "Continue to sign in",
		Message: "Press the button to open your link.",
		Action:  action,
	})
	if err != nil {
		return err
	}
	setPageHeaders(w.Header())
	w.WriteHeader(http.StatusOK)
	_, err = w.Write(b.Bytes())
	return err
}
