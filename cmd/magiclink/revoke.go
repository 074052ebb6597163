package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	caddycmd "github.com/caddyserver/caddy/v2/cmd"
)

const revokeSynopsis = `magiclink revoke [--admin ADDR] (--jti ID | --sub ID)

Revokes a link (--jti: the link and every session it opened) or a user (--sub:
every link issued and every session started before now) through the admin API
of a running Caddy whose configuration holds the magic_link app. ADDR is the
admin endpoint, as in Caddy's own commands: localhost:2019 by default, or a
unix socket (unix//path/to/admin.sock, or just the path).`

// defaultAdmin is Caddy's default admin endpoint.
const defaultAdmin = "localhost:2019"

func runRevoke(args []string, _ io.Reader, stdout, stderr io.Writer) int {
	flags := newFlagSet("revoke", revokeSynopsis)
	admin := flags.String("admin", defaultAdmin, "`address` of Caddy's admin endpoint: host:port or a unix socket")
	jti := flags.String("jti", "", "link `id` (the token's jti) to revoke, with every session it opened")
	sub := flags.String("sub", "", "user `id` (the token's sub) whose links and sessions up to now are revoked")
	rest, err := parseFlags(flags, args, stdout)
	if err != nil {
		return usageError(stderr, "revoke", err)
	}
	var body map[string]string
	switch {
	case len(rest) > 0:
		err = fmt.Errorf("unexpected argument %q; give the id with --jti or --sub", rest[0])
	case (*jti == "") == (*sub == ""):
		err = errors.New("give exactly one of --jti and --sub")
	case *jti != "":
		body = map[string]string{"jti": *jti}
	default:
		body = map[string]string{"sub": *sub}
	}
	if err != nil {
		return usageError(stderr, "revoke", err)
	}
	addr := *admin
	if strings.HasPrefix(addr, "/") {
		addr = "unix/" + addr
	}
	payload, err := json.Marshal(body)
	if err != nil {
		return failure(stderr, "revoke", err)
	}
	res, err := caddycmd.AdminAPIRequest(addr, http.MethodPost, "/magic_link/revoke", nil, strings.NewReader(string(payload)))
	if err != nil {
		return failure(stderr, "revoke", fmt.Errorf("%s; is Caddy running with its admin endpoint at %s?", adminError(err), *admin))
	}
	defer res.Body.Close()
	var out struct {
		Revoked struct {
			Kind  string    `json:"kind"`
			Value string    `json:"value"`
			Until time.Time `json:"until"`
		} `json:"revoked"`
	}
	if err := json.NewDecoder(io.LimitReader(res.Body, 64<<10)).Decode(&out); err != nil || out.Revoked.Value == "" {
		return failure(stderr, "revoke", errors.New("unexpected answer from the admin endpoint"))
	}
	what := "link " + out.Revoked.Value + " and every session it opened"
	if out.Revoked.Kind == "sub" {
		what = "user " + out.Revoked.Value + ": every link issued and every session started until now"
	}
	fmt.Fprintf(stdout, "revoked %s (kept until %s)\n", what, out.Revoked.Until.Format(time.RFC3339))
	return exitOK
}

// adminError turns an error of caddycmd.AdminAPIRequest into one line: the admin endpoint's own
// message when it answered with an error.
func adminError(err error) string {
	msg := err.Error()
	if i := strings.Index(msg, `{"error":`); i >= 0 {
		var apiErr struct {
			Error string `json:"error"`
		}
		if json.Unmarshal([]byte(msg[i:]), &apiErr) == nil && apiErr.Error != "" {
			return apiErr.Error
		}
	}
	return oneLine(msg)
}
