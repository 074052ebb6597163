package caddymodule

import (
	"encoding/json"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	_ "github.com/caddyserver/caddy/v2/modules/standard"
)

func TestUnmarshalCaddyfile(t *testing.T) {
	zero := caddy.Duration(0)
	tests := []struct {
		name  string
		input string
		want  MagicLink
	}{
		{
			name: "every subdirective",
			input: `magic_link {
				keys            a.jwks b.pem
				keys            c.jwk
				audience        https://shop.example.com
				issuer          https://mailer.example.com
				param           t
				leeway          0
				max_link_age    168h
				session_secret  {env.MAGIC_LINK_SECRET}
				session_ttl     1d
				cookie_name     sid
				cookie_domain   example.com
				cookie_samesite strict
				redeem          confirm
				unauthenticated redirect https://login.example.com/?next={http.request.uri}
				header_user     X-User
				header_email    X-Email
				header_name     X-Name
			}`,
			want: MagicLink{
				Keys:            []string{"a.jwks", "b.pem", "c.jwk"},
				Audience:        "https://shop.example.com",
				Issuer:          "https://mailer.example.com",
				Param:           "t",
				Leeway:          &zero,
				MaxLinkAge:      caddy.Duration(168 * time.Hour),
				SessionSecret:   "{env.MAGIC_LINK_SECRET}",
				SessionTTL:      caddy.Duration(24 * time.Hour),
				CookieName:      "sid",
				CookieDomain:    "example.com",
				CookieSameSite:  "strict",
				Redeem:          RedeemConfirm,
				Unauthenticated: UnauthenticatedRedirect,
				RedirectURL:     "https://login.example.com/?next={http.request.uri}",
				IdentityHeaders: IdentityHeaders{HeaderUser: "X-User", HeaderEmail: "X-Email", HeaderName: "X-Name"},
			},
		},
		{
			name: "session secret with previous ones",
			input: `magic_link {
				keys k.jwks
				audience https://a.example
				session_secret {env.NEW_SECRET} {file./run/old_secret} 0123456789abcdef0123456789abcdef
			}`,
			want: MagicLink{
				Keys:                   []string{"k.jwks"},
				Audience:               "https://a.example",
				SessionSecret:          "{env.NEW_SECRET}",
				PreviousSessionSecrets: []string{"{file./run/old_secret}", "0123456789abcdef0123456789abcdef"},
			},
		},
		{
			name: "minimal development",
			input: `magic_link {
				keys demo.public.jwks
				audience http://localhost:8080
				insecure_cookie
				unauthenticated pass
				redeem forward
			}`,
			want: MagicLink{
				Keys:            []string{"demo.public.jwks"},
				Audience:        "http://localhost:8080",
				InsecureCookie:  true,
				Unauthenticated: UnauthenticatedPass,
				Redeem:          RedeemForward,
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got MagicLink
			if err := got.UnmarshalCaddyfile(caddyfile.NewTestDispenser(tt.input)); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got  %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func TestUnmarshalCaddyfileJSON(t *testing.T) {
	var m MagicLink
	input := `magic_link {
		keys k.jwks
		audience https://a.example
		leeway 0
		session_ttl 2h
		insecure_cookie
		unauthenticated redirect /login
	}`
	if err := m.UnmarshalCaddyfile(caddyfile.NewTestDispenser(input)); err != nil {
		t.Fatal(err)
	}
	got, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"keys":["k.jwks"],"audience":"https://a.example","leeway":0,"session_ttl":7200000000000,` +
		`"insecure_cookie":true,"unauthenticated":"redirect","redirect_url":"/login"}`
	if string(got) != want {
		t.Errorf("JSON = %s\nwant   %s", got, want)
	}
}

// TestUnmarshalCaddyfileErrors covers what the parser refuses: syntax. Values are checked by
// Validate (TestValidate), and TestParsedValuesAreValidated shows the parser leaves them to it.
func TestUnmarshalCaddyfileErrors(t *testing.T) {
	const base = "keys k.jwks\naudience https://a.example\n"
	tests := []struct {
		name  string
		block string // the lines of the magic_link block
		want  string // the error must contain it
		line  int    // and name this line of the Caddyfile (the directive is line 1)
	}{
		{"unknown subdirective", base + "cookie_path /x\n", `unrecognized magic_link subdirective "cookie_path"`, 4},
		{"keys without files", "keys\naudience https://a.example\n", "keys: name one or more key files", 2},
		{"audience without value", "keys k.jwks\naudience\n", "audience: missing value", 3},
		{"two audiences", base + "audience https://b.example\n", "audience is set twice", 4},
		{"bad duration", base + "session_ttl forever\n", `session_ttl "forever": not a duration`, 4},
		{"zero ttl", base + "session_ttl 0\n", `session_ttl "0": must be positive`, 4},
		{"bad max_link_age", base + "max_link_age 3 days\n", "max_link_age: takes one value", 4},
		{"unauthenticated without mode", base + "unauthenticated\n", "unauthenticated: use deny, pass or redirect <url>", 4},
		{"redirect without url", base + "unauthenticated redirect\n", "unauthenticated redirect: give exactly one URL", 4},
		{"deny with url", base + "unauthenticated deny /login\n", "unauthenticated deny takes no more arguments", 4},
		{"insecure_cookie with argument", base + "insecure_cookie yes\n", "insecure_cookie takes no arguments", 4},
		{"session_secret without value", base + "session_secret\n", "session_secret: missing value", 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			input := "magic_link {\n" + tt.block + "}\n"
			var m MagicLink
			err := m.UnmarshalCaddyfile(caddyfile.NewTestDispenser(input))
			if err == nil {
				t.Fatalf("no error for\n%s", input)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error = %q, want it to contain %q", err, tt.want)
			}
			if line := "Testfile:" + strconv.Itoa(tt.line); !strings.Contains(err.Error(), line) {
				t.Errorf("error = %q, want it to name %s", err, line)
			}
		})
	}
	t.Run("arguments on the directive", func(t *testing.T) {
		var m MagicLink
		err := m.UnmarshalCaddyfile(caddyfile.NewTestDispenser("magic_link k.jwks {\n" + base + "}"))
		if err == nil || !strings.Contains(err.Error(), "takes no arguments") {
			t.Errorf("error = %v, want one saying the directive takes no arguments", err)
		}
	})
}

// TestDirectiveOrder checks that magic_link runs before basic_auth and reverse_proxy without an
// order line, and that the adapted handler carries its configuration.
func TestDirectiveOrder(t *testing.T) {
	input := "http://localhost:8080 {\n" + proxyAndAuth +
		"\tmagic_link {\n" +
		"\t\tkeys demo.public.jwks\n" +
		"\t\taudience http://localhost:8080\n" +
		"\t\tinsecure_cookie\n" +
		"\t}\n" +
		"}\n"
	adapted := adaptCaddyfile(t, input)
	out := string(adapted)
	ours := strings.Index(out, `"handler":"magic_link"`)
	auth := strings.Index(out, `"handler":"authentication"`)
	proxy := strings.Index(out, `"handler":"reverse_proxy"`)
	if ours < 0 || auth < 0 || proxy < 0 || ours > auth || ours > proxy {
		t.Errorf("magic_link must come before basic_auth and reverse_proxy:\n%s", out)
	}
	for _, want := range []string{`"keys":["demo.public.jwks"]`, `"audience":"http://localhost:8080"`, `"insecure_cookie":true`} {
		if !strings.Contains(out, want) {
			t.Errorf("adapted config lacks %s:\n%s", want, out)
		}
	}
}

// TestParsedValuesAreValidated parses blocks that are well-formed but hold bad values: the parser
// accepts them and Validate names the problem.
func TestParsedValuesAreValidated(t *testing.T) {
	const base = "keys k.jwks\naudience https://a.example\n"
	tests := []struct{ block, want string }{
		{"audience https://a.example\n", "keys"},
		{"keys k.jwks\n", "audience"},
		{base + "leeway -5s\n", "leeway"},
		{base + "cookie_samesite loose\n", `cookie_samesite "loose": use lax, strict or none`},
		{base + "redeem auto\n", `redeem "auto": use redirect, confirm or forward`},
		{base + "unauthenticated allow\n", `unauthenticated "allow": use deny, pass or redirect <url>`},
		{base + "cookie_samesite none\ninsecure_cookie\n", "cookie_samesite none needs a Secure cookie"},
		{base + "session_secret hunter2\n", "session_secret: 7 bytes is too short"},
		{base + "session_secret {env.S} hunter22\n", "session_secret: 8 bytes is too short"},
		{base + "param to&ken\n", `param: parameter name "to&ken"`},
		{base + "header_user \"Remote User\"\n", `header_user "Remote User": not a valid header name`},
	}
	for _, tt := range tests {
		var m MagicLink
		if err := m.UnmarshalCaddyfile(caddyfile.NewTestDispenser("magic_link {\n" + tt.block + "}\n")); err != nil {
			t.Errorf("parsing %q: %v, want it left to Validate", tt.block, err)
			continue
		}
		m.setDefaults()
		if err := m.Validate(); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Validate of %q = %v, want an error containing %q", tt.block, err, tt.want)
		}
	}
}

// TestDirectiveWithMatcher checks that magic_link with a matcher also removes the identity headers,
// with the directive's header names, on a route without the matcher, before basic_auth and
// reverse_proxy.
func TestDirectiveWithMatcher(t *testing.T) {
	input := ":8080 {\n" + proxyAndAuth +
		"\tmagic_link /account/* {\n" +
		"\t\tkeys demo.public.jwks\n" +
		"\t\taudience http://localhost:8080\n" +
		"\t\theader_user X-User\n" +
		"\t}\n" +
		"}\n"
	adapted := adaptCaddyfile(t, input)
	var cfg struct {
		Apps struct {
			HTTP struct {
				Servers map[string]struct {
					Routes []struct {
						Match  []map[string]json.RawMessage `json:"match"`
						Handle []map[string]json.RawMessage `json:"handle"`
					} `json:"routes"`
				} `json:"servers"`
			} `json:"http"`
		} `json:"apps"`
	}
	if err := json.Unmarshal(adapted, &cfg); err != nil {
		t.Fatal(err)
	}
	var order []string // handler names in order, with the path matcher of their route
	for _, srv := range cfg.Apps.HTTP.Servers {
		for _, route := range srv.Routes {
			var match string
			if len(route.Match) > 0 {
				match = string(route.Match[0]["path"])
			}
			for _, h := range route.Handle {
				var name string
				if err := json.Unmarshal(h["handler"], &name); err != nil {
					t.Fatal(err)
				}
				if name == "magic_link_strip_identity" && string(h["header_user"]) != `"X-User"` {
					t.Errorf("magic_link_strip_identity has header_user %s, want the directive's X-User", h["header_user"])
				}
				order = append(order, name+" "+match)
			}
		}
	}
	want := []string{`magic_link ["/account/*"]`, "magic_link_strip_identity ", `authentication ["/admin/*"]`, "reverse_proxy "}
	if !slices.Equal(order, want) {
		t.Errorf("handlers (with their path matchers) = %q, want %q", order, want)
	}
}

// TestConfigErrorsNameTheLine adapts Caddyfiles with a bad value in each of the module's blocks:
// the error comes from Validate and names the line of the block.
func TestConfigErrorsNameTheLine(t *testing.T) {
	tests := []struct {
		name, caddyfile, want string
	}{
		{"handler", "http://localhost:8080 {\n\treverse_proxy 127.0.0.1:9000\n\n\tmagic_link {\n\t\tkeys k.jwks\n\t\taudience http://localhost:8080\n\t\tredeem auto\n\t}\n}\n",
			`Caddyfile:4: redeem "auto"`},
		{"issuing API", "http://localhost:8081 {\n\tmagic_link_api {\n\t\tkey k.jwk\n\t\tsecret_key short\n\t\turl http://localhost:8080/\n\t}\n}\n",
			"Caddyfile:2: secret_key 1: 5 bytes is too short"},
		{"global option", "{\n\tmagic_link {\n\t\tstore file\n\t\ttimeout -1s\n\t}\n}\n\nhttp://localhost:8080 {\n\trespond ok\n}\n",
			"Caddyfile:2: timeout"},
	}
	for _, tt := range tests {
		_, _, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(tt.caddyfile), map[string]any{"filename": "Caddyfile"})
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: error %v, want one containing %q", tt.name, err, tt.want)
		}
	}
}

// proxyAndAuth are the lines of a site block with reverse_proxy and basic_auth, which magic_link
// must come before.
const proxyAndAuth = "\treverse_proxy 127.0.0.1:9000\n" +
	"\tbasic_auth /admin/* {\n" +
	"\t\tadmin $2a$14$Zkx19XLiW6VYouLHR5NmfOFU0z2GTNmpkT/5qqR7hx4IjWJPDhjvG\n" +
	"\t}\n"

// adaptCaddyfile adapts input to JSON, failing on an error or a warning.
func adaptCaddyfile(t *testing.T, input string) []byte {
	t.Helper()
	adapted, warnings, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(input), nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(warnings) != 0 {
		t.Errorf("warnings: %v", warnings)
	}
	return adapted
}
