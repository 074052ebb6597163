// Command propagation measures how long a revocation made through one gateway instance takes to
// reach another that shares its Redis store. bench/run.sh builds and runs it; see
// bench/README.md.
//
// For each link token read from -tokens (one a line), it redeems the link on instance B (-site),
// checks that B accepts the session cookie it got, revokes the link's jti through instance A's
// admin API (-admin), and polls B with the cookie every -poll until B answers 401. The delay is
// from the moment the revocation is sent to A until B's first 401. It prints one line for run.sh:
//
//	PROPAGATION n=… p50_ms=… p99_ms=… max_ms=… timeouts=…
//
// A revocation that B has not applied after -wait counts as a timeout; after -max-timeouts of them
// the run stops, so that a broken propagation cannot keep it going for long.
package main

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"
)

func main() {
	site := flag.String("site", "", "base `URL` of the site on instance B, e.g. http://127.0.0.1:18086/")
	admin := flag.String("admin", "", "admin endpoint `address` of instance A, e.g. 127.0.0.1:18087")
	tokens := flag.String("tokens", "", "`file` of link tokens, one a line")
	n := flag.Int("n", 100, "revocations to measure")
	poll := flag.Duration("poll", 2*time.Millisecond, "interval between two requests to B")
	wait := flag.Duration("wait", 5*time.Second, "how long to poll B for one revocation")
	maxTimeouts := flag.Int("max-timeouts", 3, "stop after this many revocations that did not arrive within -wait")
	flag.Parse()
	if err := run(*site, *admin, *tokens, *n, *poll, *wait, *maxTimeouts); err != nil {
		fmt.Fprintln(os.Stderr, "propagation:", err)
		os.Exit(1)
	}
}

func run(site, admin, tokenFile string, n int, poll, wait time.Duration, maxTimeouts int) error {
	if site == "" || admin == "" || tokenFile == "" {
		return errors.New("-site, -admin and -tokens are required")
	}
	data, err := os.ReadFile(tokenFile)
	if err != nil {
		return err
	}
	toks := strings.Fields(string(data))
	if len(toks) < n {
		return fmt.Errorf("%s has %d tokens, want %d", tokenFile, len(toks), n)
	}
	client := &http.Client{
		Timeout:       2 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	var delays []time.Duration
	timeouts := 0
	for _, tok := range toks[:n] {
		jti, err := tokenID(tok)
		if err != nil {
			return err
		}
		cookie, err := redeem(client, site, tok)
		if err != nil {
			return fmt.Errorf("link %s: %w", jti, err)
		}
		if code, err := get(client, site, cookie); err != nil || code != http.StatusOK {
			return fmt.Errorf("link %s: B answered %d (%v) to the new session, want 200", jti, code, err)
		}
		start := time.Now()
		if err := revoke(client, admin, jti); err != nil {
			return fmt.Errorf("link %s: %w", jti, err)
		}
		d, err := until401(client, site, cookie, start, poll, wait)
		if err != nil {
			return fmt.Errorf("link %s: %w", jti, err)
		}
		if d < 0 {
			timeouts++
			fmt.Fprintf(os.Stderr, "propagation: link %s: B still accepts its session %v after the revocation\n", jti, wait)
			if timeouts >= maxTimeouts {
				break
			}
			continue
		}
		delays = append(delays, d)
	}
	slices.Sort(delays)
	fmt.Printf("PROPAGATION n=%d p50_ms=%.2f p99_ms=%.2f max_ms=%.2f timeouts=%d\n",
		len(delays), ms(rank(delays, 0.50)), ms(rank(delays, 0.99)), ms(rank(delays, 1)), timeouts)
	return nil
}

// tokenID returns the jti claim of a compact link token (its payload is not verified here).
func tokenID(tok string) (string, error) {
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		return "", errors.New("a token is not a compact JWS")
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return "", fmt.Errorf("a token's payload: %w", err)
	}
	var claims struct {
		ID string `json:"jti"`
	}
	if err := json.Unmarshal(payload, &claims); err != nil || claims.ID == "" {
		return "", fmt.Errorf("a token's payload has no jti (%v)", err)
	}
	return claims.ID, nil
}

// redeem opens the link on B and returns the session cookie of its 303.
func redeem(client *http.Client, site, tok string) (*http.Cookie, error) {
	res, err := client.Get(site + "?token=" + url.QueryEscape(tok))
	if err != nil {
		return nil, err
	}
	drain(res)
	if res.StatusCode != http.StatusSeeOther {
		return nil, fmt.Errorf("redeeming it on B answered %d, want 303", res.StatusCode)
	}
	for _, c := range res.Cookies() {
		if c.Value != "" {
			return c, nil
		}
	}
	return nil, errors.New("redeeming it on B set no cookie")
}

// get requests site with the cookie and returns the status.
func get(client *http.Client, site string, cookie *http.Cookie) (int, error) {
	req, err := http.NewRequest(http.MethodGet, site, nil)
	if err != nil {
		return 0, err
	}
	req.AddCookie(cookie)
	res, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	drain(res)
	return res.StatusCode, nil
}

// revoke revokes the link jti through A's admin API.
func revoke(client *http.Client, admin, jti string) error {
	body, _ := json.Marshal(map[string]string{"jti": jti})
	res, err := client.Post("http://"+admin+"/magic_link/revoke", "application/json", strings.NewReader(string(body)))
	if err != nil {
		return err
	}
	msg, _ := io.ReadAll(io.LimitReader(res.Body, 4096))
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return fmt.Errorf("revoking it through A answered %d: %s", res.StatusCode, strings.TrimSpace(string(msg)))
	}
	return nil
}

// until401 polls B with the cookie until it answers 401 and returns the time since start, or -1
// when that did not happen within wait.
func until401(client *http.Client, site string, cookie *http.Cookie, start time.Time, poll, wait time.Duration) (time.Duration, error) {
	for {
		code, err := get(client, site, cookie)
		now := time.Now()
		switch {
		case err != nil:
			return 0, err
		case code == http.StatusUnauthorized:
			return now.Sub(start), nil
		case code != http.StatusOK:
			return 0, fmt.Errorf("B answered %d to the session, want 200 or 401", code)
		case now.Sub(start) >= wait:
			return -1, nil
		}
		time.Sleep(poll)
	}
}

func drain(res *http.Response) {
	_, _ = io.Copy(io.Discard, io.LimitReader(res.Body, 1<<20))
	res.Body.Close()
}

// rank returns the nearest-rank q-quantile of sorted d, or -1 when d is empty.
func rank(d []time.Duration, q float64) time.Duration {
	if len(d) == 0 {
		return -1
	}
	i := int(math.Ceil(q*float64(len(d)))) - 1
	return d[max(i, 0)]
}

func ms(d time.Duration) float64 {
	if d < 0 {
		return math.NaN()
	}
	return float64(d) / float64(time.Millisecond)
}
