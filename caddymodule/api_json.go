package caddymodule

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/magiclink-dev/magiclink/caddymodule/store"
	"github.com/magiclink-dev/magiclink/internal/claimtext"
	"github.com/magiclink-dev/magiclink/internal/jsonobj"
	"github.com/magiclink-dev/magiclink/internal/jsonstr"
	"github.com/magiclink-dev/magiclink/internal/origin"
	"github.com/magiclink-dev/magiclink/internal/pathscope"
	"github.com/magiclink-dev/magiclink/token"
)

// signInToken is Clerk's SignInToken object, as the API answers it: appendJSON writes it as
// encoding/json would with these tags.
type signInToken struct {
	Object    string `json:"object"`
	ID        string `json:"id"`
	Status    string `json:"status"`
	UserID    string `json:"user_id"`
	Token     string `json:"token,omitempty"`
	URL       string `json:"url,omitempty"`
	CreatedAt int64  `json:"created_at"`
	UpdatedAt int64  `json:"updated_at"`
}

// newSignInToken is the object of a stored link, without its token and URL.
func newSignInToken(l store.Link) signInToken {
	return signInToken{
		Object:    "sign_in_token",
		ID:        l.ID,
		Status:    string(l.Status),
		UserID:    l.UserID,
		CreatedAt: l.CreatedAt.UnixMilli(),
		UpdatedAt: l.UpdatedAt.UnixMilli(),
	}
}

// appendJSON appends t as encoding/json's Encoder writes it with HTML escaping off, newline
// included.
func (t *signInToken) appendJSON(dst []byte) []byte {
	dst = append(dst, `{"object":`...)
	dst = jsonstr.Append(dst, t.Object)
	dst = append(dst, `,"id":`...)
	dst = jsonstr.Append(dst, t.ID)
	dst = append(dst, `,"status":`...)
	dst = jsonstr.Append(dst, t.Status)
	dst = append(dst, `,"user_id":`...)
	dst = jsonstr.Append(dst, t.UserID)
	if t.Token != "" {
		dst = append(dst, `,"token":`...)
		dst = jsonstr.Append(dst, t.Token)
	}
	if t.URL != "" {
		dst = append(dst, `,"url":`...)
		dst = jsonstr.Append(dst, t.URL)
	}
	dst = append(dst, `,"created_at":`...)
	dst = strconv.AppendInt(dst, t.CreatedAt, 10)
	dst = append(dst, `,"updated_at":`...)
	dst = strconv.AppendInt(dst, t.UpdatedAt, 10)
	return append(dst, "}\n"...)
}

// clerkError is one error of Clerk's error response.
type clerkError struct {
	Message     string        `json:"message"`
	LongMessage string        `json:"long_message"`
	Code        string        `json:"code"`
	Meta        *apiErrorMeta `json:"meta,omitempty"`
}

// apiErrorMeta names the request field an error is about.
type apiErrorMeta struct {
	ParamName string `json:"param_name"`
}

// rejection is a request the API refuses, with its status.
type rejection struct {
	status int
	clerkError
}

// paramMissing rejects a request that lacks the field name.
func paramMissing(name string) *rejection {
	return &rejection{http.StatusUnprocessableEntity, clerkError{
		Code: "form_param_missing", Message: "is missing", LongMessage: name + " is missing",
		Meta: &apiErrorMeta{ParamName: name},
	}}
}

// paramInvalid rejects a request whose field name has a value the API cannot take, saying why.
func paramInvalid(name, why string) *rejection {
	return &rejection{http.StatusUnprocessableEntity, clerkError{
		Code: "form_param_format_invalid", Message: "is invalid", LongMessage: name + " is invalid: " + why,
		Meta: &apiErrorMeta{ParamName: name},
	}}
}

// bodyInvalid rejects a request body that is not what the endpoint takes.
func bodyInvalid(why string) *rejection {
	return &rejection{http.StatusUnprocessableEntity, clerkError{
		Code: "form_param_format_invalid", Message: "is invalid", LongMessage: "The request body is invalid: " + why,
	}}
}

// writeAPIJSON answers v as JSON with the given status.
func writeAPIJSON(w http.ResponseWriter, status int, v any) error {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return err
	}
	return writeJSONBody(w, status, buf.Bytes())
}

// byteBuffers holds the buffers links are signed into and sign-in tokens encoded into.
var byteBuffers = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

// writeSignInToken answers t with status 200.
func writeSignInToken(w http.ResponseWriter, t *signInToken) error {
	buf := byteBuffers.Get().(*[]byte)
	defer byteBuffers.Put(buf)
	*buf = t.appendJSON((*buf)[:0])
	return writeJSONBody(w, http.StatusOK, *buf)
}

// writeJSONBody answers body, a JSON text, with the given status. The Content-Type is exactly
// application/json: Clerk's npm SDK reads a body as JSON only then.
func writeJSONBody(w http.ResponseWriter, status int, body []byte) error {
	h := w.Header()
	// As Set does, with one allocation for the three values.
	v := []string{"application/json", "no-store", "nosniff"}
	h["Content-Type"], h["Cache-Control"], h["X-Content-Type-Options"] = v[0:1:1], v[1:2:2], v[2:3:3]
	w.WriteHeader(status)
	_, err := w.Write(body)
	return err
}

// writeAPIError answers the error in Clerk's shape.
func writeAPIError(w http.ResponseWriter, status int, e clerkError) error {
	return writeAPIJSON(w, status, struct {
		Errors []clerkError `json:"errors"`
	}{[]clerkError{e}})
}

// writeNotFound answers 404 for an unknown sign-in token.
func writeNotFound(w http.ResponseWriter) error {
	return writeAPIError(w, http.StatusNotFound, clerkError{
		Code: "resource_not_found", Message: "not found", LongMessage: "Resource not found",
	})
}

// bodyBuffers holds the buffers request bodies are read into.
var bodyBuffers = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// readAPIBody reads a request body of at most maxAPIBody bytes into body, a buffer of bodyBuffers.
func readAPIBody(w http.ResponseWriter, r *http.Request, body *bytes.Buffer) *rejection {
	body.Reset()
	if r.ContentLength > maxAPIBody {
		return bodyTooLarge()
	}
	_, err := body.ReadFrom(http.MaxBytesReader(w, r.Body, maxAPIBody))
	var maxErr *http.MaxBytesError
	if errors.As(err, &maxErr) {
		return bodyTooLarge()
	}
	if err != nil {
		return bodyInvalid("it could not be read")
	}
	return nil
}

// bodyTooLarge rejects a request body longer than maxAPIBody.
func bodyTooLarge() *rejection {
	return &rejection{http.StatusRequestEntityTooLarge, clerkError{
		Code: "request_body_too_large", Message: "is too large",
		LongMessage: "The request body is larger than " + strconv.Itoa(maxAPIBody>>10) + " KiB",
	}}
}

// checkRevokeBody accepts what the SDKs send with a revoke call, an empty body or the JSON null,
// and any JSON object, whose members are ignored.
func checkRevokeBody(body []byte) *rejection {
	body = bytes.Trim(body, " \t\r\n") // JSON's whitespace, and only it
	if len(body) == 0 || string(body) == "null" {
		return nil
	}
	if body[0] != '{' || !json.Valid(body) {
		return bodyInvalid("give no body, null or a JSON object")
	}
	return nil
}

// createRequest is a valid body of a create call.
type createRequest struct {
	UserID    string
	ExpiresIn int64 // seconds; 0 means the default
	Email     string
	Name      string
	Path      string
	URL       string // "" means the configured URL
	Once      *bool  // nil means the configured default
}

// parseCreateRequest checks the body of a create call: a JSON object with a user_id, an optional
// integer expires_in_seconds from 1 to maxTTL, and optional email, name, path, url (on the origin
// of linkURL) and once. Member names are case-sensitive and must not repeat; unknown members are
// ignored, and a member set to null counts as absent.
func parseCreateRequest(body []byte, linkURL *url.URL, maxTTL time.Duration) (createRequest, *rejection) {
	var p createRequest
	if !utf8.Valid(body) {
		return p, bodyInvalid("it must be UTF-8")
	}
	// The raw values of the members read, "" when absent or null.
	var userID, expiresIn, email, name, path, linkTo, once string
	err := jsonobj.Members(string(body), func(member, value string) error {
		if value == "null" {
			return nil
		}
		switch member {
		case "user_id":
			userID = value
		case "expires_in_seconds":
			expiresIn = value
		case "email":
			email = value
		case "name":
			name = value
		case "path":
			path = value
		case "url":
			linkTo = value
		case "once":
			once = value
		}
		return nil
	})
	if errors.Is(err, jsonobj.ErrDuplicate) {
		return p, bodyInvalid("its member names must not repeat")
	}
	if err != nil {
		return p, bodyInvalid("it must be a JSON object")
	}

	if userID == "" {
		return p, paramMissing("user_id")
	}
	var r *rejection
	if p.UserID, r = stringMember("user_id", userID); r != nil {
		return p, r
	}
	if p.UserID == "" {
		return p, paramMissing("user_id")
	}
	if r := checkUserField("user_id", p.UserID); r != nil {
		return p, r
	}

	if expiresIn != "" {
		if p.ExpiresIn, r = parseExpiresIn(expiresIn, maxTTL); r != nil {
			return p, r
		}
	}

	if p.Email, r = stringMember("email", email); r != nil {
		return p, r
	}
	if p.Name, r = stringMember("name", name); r != nil {
		return p, r
	}
	if p.Path, r = stringMember("path", path); r != nil {
		return p, r
	}
	if p.URL, r = stringMember("url", linkTo); r != nil {
		return p, r
	}
	if r := checkLinkFields(&p, linkURL); r != nil {
		return p, r
	}

	if once != "" {
		v, err := jsonobj.Bool(once)
		if err != nil {
			return p, paramInvalid("once", "it must be true or false")
		}
		p.Once = &v
	}
	return p, nil
}

// parseExpiresIn reads raw, the JSON text of expires_in_seconds: a whole number of seconds from 1
// to maxTTL.
func parseExpiresIn(raw string, maxTTL time.Duration) (int64, *rejection) {
	n, err := strconv.ParseInt(raw, 10, 64)
	switch {
	case err != nil:
		return 0, paramInvalid("expires_in_seconds", "it must be a whole number of seconds")
	case n <= 0:
		return 0, paramInvalid("expires_in_seconds", "it must be positive")
	case n > int64(maxTTL/time.Second):
		return 0, paramInvalid("expires_in_seconds", "it must not exceed "+strconv.FormatInt(int64(maxTTL/time.Second), 10))
	}
	return n, nil
}

// checkLinkFields rejects an email or name no link could carry, a path the gateway could never
// accept, and a url that is not a link URL on the origin of linkURL.
func checkLinkFields(p *createRequest, linkURL *url.URL) *rejection {
	if r := checkUserField("email", p.Email); r != nil {
		return r
	}
	if r := checkUserField("name", p.Name); r != nil {
		return r
	}
	if err := pathscope.Check(p.Path); err != nil {
		return paramInvalid("path", err.Error())
	}
	if p.URL != "" {
		u, err := token.ParseLinkURL(p.URL)
		if err != nil {
			return paramInvalid("url", err.Error())
		}
		if origin.Of(u) != origin.Of(linkURL) {
			return paramInvalid("url", "it must be on "+origin.Of(linkURL))
		}
	}
	return nil
}

// stringMember decodes raw, the value of the member name of a create body, which must be a string;
// "" stands for an absent member.
func stringMember(name, raw string) (string, *rejection) {
	if raw == "" {
		return "", nil
	}
	s, err := jsonobj.String(raw)
	if err != nil {
		return "", paramInvalid(name, "it must be a string")
	}
	return s, nil
}

// checkUserField rejects a user_id, email or name that no link could carry: longer than 255 bytes,
// or with a control character or invalid UTF-8.
func checkUserField(name, v string) *rejection {
	if len(v) > claimtext.MaxLength {
		return paramInvalid(name, "it must not be longer than "+strconv.Itoa(claimtext.MaxLength)+" bytes")
	}
	if claimtext.HasControl(v) {
		return paramInvalid(name, "it must not hold control characters")
	}
	return nil
}
