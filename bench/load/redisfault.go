package main

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/magiclink-dev/magiclink/caddymodule/store"
)

// usedPage is in the page of a one-time link already used.
const usedPage = "already been used"

// redisFault sends e.onceLinks one-time links, each to instance A and to instance B of a gateway
// sharing one Redis, at e.rate requests per second; 30% into the run it kills Redis (SIGKILL)
// and starts it again 3 s later (a fifth of the run, if that is shorter), from its append-only
// file. No link may open two sessions, no
// session may be issued without its use recorded in Redis, no answer may be other than 303, 401
// (used) or 503 (while Redis is gone), and both instances must redeem links again within seconds
// of Redis's return. Links that only got 503 are sent once more at the end, and must then redeem:
// in the end every link has opened exactly one session.
func redisFault(e *env, r *report) {
	up, ports, ok := e.prepare(r, 3)
	if !ok {
		return
	}
	rp, pa, pb := ports[0], ports[1], ports[2]
	rds, err := e.startRedis("redis-fault", rp)
	if err != nil {
		r.fail("%v", err)
		return
	}
	global := fmt.Sprintf("\tmagic_link {\n\t\tstore redis redis://127.0.0.1:%d\n\t}\n", rp)
	var sites [2]string
	for i, p := range []int{pa, pb} {
		name := "redis-" + string(rune('a'+i))
		if _, err := e.startCaddy(name, e.globals(name, "off", global)+e.block(site{name: name, port: p, upstream: up.addr, gateway: "\t\tonce\n", logged: true}), p); err != nil {
			r.fail("%v", err)
			return
		}
		sites[i] = fmt.Sprintf("http://127.0.0.1:%d", p)
	}

	links := make([]string, e.onceLinks)
	ids := make([]string, e.onceLinks)
	parallel(len(links), func(i int) { links[i], ids[i] = e.link(fmt.Sprintf("%sonce-%d", userPrefix, i), true) })
	sessions := make([]atomic.Int32, len(links))

	// Request k sends link k/2 to instance (k+k/2)%2: each link goes to A and to B back to back,
	// A first for even links and B first for odd ones.
	total := 2 * len(links)
	interval := time.Second / time.Duration(e.rate)
	runFor := time.Duration(total) * interval
	killAt, downFor := runFor*3/10, min(3*time.Second, runFor/5)
	var killed, restarted atomic.Int64 // unix nanoseconds
	// phase names when a request ran: before the kill (answered before it), after the
	// restart (sent after it), or while Redis was gone (all the rest).
	phase := func(sent, answered time.Time) string {
		switch k := killed.Load(); {
		case k == 0 || answered.UnixNano() < k:
			return "before the kill"
		case restarted.Load() != 0 && sent.UnixNano() >= restarted.Load():
			return "after the restart"
		default:
			return "Redis gone"
		}
	}
	var answers counts
	client := newClient(workers, 10*time.Second)
	record := func(i int, o outcome, when string) {
		switch {
		case o.status == http.StatusSeeOther && o.session != "":
			n := sessions[i].Add(1)
			answers.add(when+": 303 with a session", "")
			if n > 1 {
				answers.add("a second session", fmt.Sprintf("link %d", i))
			}
		case o.status == http.StatusUnauthorized && o.session == "" && strings.Contains(o.body, usedPage):
			answers.add(when+": 401 used", "")
		case o.status == http.StatusServiceUnavailable && o.session == "":
			answers.add(when+": 503", "")
		default:
			answers.add(when+": "+o.label(), o.example())
		}
	}

	start := time.Now()
	var faults sync.WaitGroup
	var recovery [2]time.Duration
	faults.Go(func() {
		time.Sleep(killAt)
		killed.Store(time.Now().UnixNano())
		rds.kill()
		time.Sleep(downFor)
		if err := rds.restart(); err != nil {
			r.fail("restarting Redis: %v", err)
			return
		}
		back := time.Now()
		restarted.Store(back.UnixNano())
		// A fresh one-time link on each instance every 50 ms until it redeems.
		var probes sync.WaitGroup
		for i, s := range sites {
			probes.Go(func() {
				recovery[i] = -1
				for time.Since(back) < 30*time.Second {
					tok, _ := e.link(userPrefix+"probe", true)
					if o := get(client, s+"/probe?token="+tok, ""); o.status == http.StatusSeeOther && o.session != "" {
						recovery[i] = time.Since(back)
						return
					}
					time.Sleep(50 * time.Millisecond)
				}
			})
		}
		probes.Wait()
	})
	took := parallel(total, func(k int) {
		i := k / 2
		time.Sleep(time.Until(start.Add(time.Duration(k) * interval)))
		sent := time.Now()
		o := get(client, sites[(k+i)%2]+"/once?token="+links[i], "")
		record(i, o, phase(sent, time.Now()))
	})
	faults.Wait()
	r.figure("%d requests (%d one-time links, each to A and B) in %.1fs; Redis killed at %.1fs, back %.1fs later",
		total, len(links), took.Seconds(), killAt.Seconds(), downFor.Seconds())
	for i, d := range recovery {
		name := "AB"[i : i+1]
		if d < 0 {
			r.fail("instance %s redeemed no one-time link within 30s of Redis's return", name)
			continue
		}
		r.figure("instance %s redeemed a fresh one-time link %s after Redis's return", name, d.Round(time.Millisecond))
		r.check(d <= 10*time.Second, "instance %s took %s to recover, want within 10s", name, d.Round(time.Millisecond))
	}

	// Links that never opened a session are sent once more, to A.
	retried := 0
	for i := range links {
		if sessions[i].Load() == 0 {
			retried++
			record(i, get(client, sites[0]+"/once?token="+links[i], ""), "retry")
		}
	}
	r.figure("answers: %s", &answers)
	r.figure("retried %d links that had no session", retried)
	for _, u := range answers.unexpected(
		"before the kill: 303 with a session", "before the kill: 401 used",
		"Redis gone: 303 with a session", "Redis gone: 401 used", "Redis gone: 503",
		"after the restart: 303 with a session", "after the restart: 401 used", "after the restart: 503",
		"retry: 303 with a session", "retry: 401 used") {
		r.fail("unexpected: %s", u)
	}

	// Every session's use is recorded in Redis, and no use is left recorded without a session: a
	// use recorded by a Consume that failed (Redis died after running the SET, before answering)
	// is taken back once Redis returns.
	rc := redis.NewClient(&redis.Options{Addr: fmt.Sprintf("127.0.0.1:%d", rp)})
	defer rc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	pipe := rc.Pipeline()
	exists := make([]*redis.IntCmd, len(ids))
	for i, id := range ids {
		exists[i] = pipe.Exists(ctx, store.DefaultKeyPrefix+"used:"+id)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		r.fail("reading the uses from Redis: %v", err)
		return
	}
	var one, unrecorded, usedWithout int
	for i := range links {
		n, recorded := sessions[i].Load(), exists[i].Val() == 1
		switch {
		case n == 1 && recorded:
			one++
		case n >= 1 && !recorded:
			unrecorded++
		case n == 0 && recorded:
			usedWithout++
		}
	}
	r.figure("links with exactly one session: %d of %d; used up without a session: %d", one, len(links), usedWithout)
	r.check(unrecorded == 0, "%d links opened a session whose use Redis does not hold", unrecorded)
	r.check(usedWithout == 0, "%d links are used up without having opened a session: a 503 promises the link still works", usedWithout)
	checkUpstream(r, up)
}
