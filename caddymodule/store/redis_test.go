package store

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/magiclink-dev/magiclink/internal/freeport"
	"github.com/magiclink-dev/magiclink/internal/redistest"
)

func TestOpenRedisRejectsBadOptions(t *testing.T) {
	tests := []struct {
		name string
		opts RedisOptions
		want string
	}{
		{"nothing", RedisOptions{}, "needs a URL or addresses"},
		{"url and addresses", RedisOptions{URL: "redis://h:6379", Addresses: []string{"h:6379"}}, "cannot be combined"},
		{"url and password", RedisOptions{URL: "redis://h:6379", Password: "p"}, "cannot be combined"},
		{"bad scheme", RedisOptions{URL: "http://h:6379"}, "invalid URL scheme"},
		{"bad db", RedisOptions{URL: "redis://h:6379/x"}, "invalid database"},
		{"sentinel and cluster", RedisOptions{Addresses: []string{"h:26379"}, MasterName: "m", Cluster: true}, "exclude each other"},
		{"several addresses alone", RedisOptions{Addresses: []string{"a:6379", "b:6379"}}, "need master_name"},
		{"cluster db", RedisOptions{Addresses: []string{"a:6379"}, Cluster: true, DB: 1}, "only db 0"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, err := OpenRedis(tc.opts)
			if err == nil {
				s.Close()
				t.Fatalf("OpenRedis(%+v) succeeded; want an error containing %q", tc.opts, tc.want)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("OpenRedis error = %q; want it to contain %q", err, tc.want)
			}
		})
	}
}

func TestOpenRedisURLErrorHidesPassword(t *testing.T) {
	_, err := OpenRedis(RedisOptions{URL: "redis://user:s3cr3t-pass@host:notaport/0"})
	if err == nil {
		t.Fatal("OpenRedis with a bad port succeeded")
	}
	if strings.Contains(err.Error(), "s3cr3t-pass") {
		t.Fatalf("error leaks the password: %v", err)
	}
}

// closedPort returns a loopback address nothing listens on: connecting is
// refused at once.
func closedPort(t *testing.T) string {
	t.Helper()
	port, err := freeport.Take()
	if err != nil {
		t.Fatal(err)
	}
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
}

// silentPort returns a loopback address that accepts connections and never
// answers, as a hung server would.
func silentPort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		l.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	return l.Addr().String()
}

func TestRedisUnreachable(t *testing.T) {
	const timeout = 300 * time.Millisecond
	for _, down := range []struct {
		name string
		addr func(t *testing.T) string
	}{{"refused", closedPort}, {"silent", silentPort}} {
		t.Run(down.name, func(t *testing.T) {
			start := time.Now()
			s, err := OpenRedis(RedisOptions{Addresses: []string{down.addr(t)}, Timeout: timeout})
			if err != nil {
				t.Fatalf("OpenRedis with Redis down = %v; want success (connect lazily)", err)
			}
			defer s.Close()
			if d := time.Since(start); d >= timeout {
				t.Errorf("OpenRedis took %v with Redis down; want no waiting", d)
			}
			ops := []struct {
				name string
				do   func(ctx context.Context) error
			}{
				{"Consume", func(ctx context.Context) error {
					_, err := s.Consume(ctx, "x", time.Now().Add(time.Hour))
					return err
				}},
				{"Revoke", func(ctx context.Context) error {
					return s.Revoke(ctx, Revocation{Kind: KindLink, Value: "x", At: time.Now(), Until: time.Now().Add(time.Hour)})
				}},
				{"Revocations", func(ctx context.Context) error { _, err := s.Revocations(ctx); return err }},
				{"GetLink", func(ctx context.Context) error { _, err := s.GetLink(ctx, "x"); return err }},
				{"SetLinkStatus", func(ctx context.Context) error {
					_, err := s.SetLinkStatus(ctx, "x", StatusAccepted, time.Now())
					return err
				}},
			}
			for _, op := range ops {
				start := time.Now()
				err := op.do(context.Background())
				if !errors.Is(err, ErrUnavailable) {
					t.Errorf("%s with Redis down error = %v; want ErrUnavailable", op.name, err)
				}
				if d := time.Since(start); d > timeout+500*time.Millisecond {
					t.Errorf("%s took %v; want about the %v timeout at most", op.name, d, timeout)
				}
			}
		})
	}
}

func TestRedisURLs(t *testing.T) {
	srv := startRedis(t)
	for _, url := range []string{"redis://" + srv.Addr + "/2", "unix://" + srv.Socket + "?db=3"} {
		t.Run(strings.SplitN(url, ":", 2)[0], func(t *testing.T) {
			s, err := OpenRedis(RedisOptions{URL: url})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			ctx := context.Background()
			for _, want := range []bool{true, false} {
				if first, err := s.Consume(ctx, "via-url", time.Now().Add(time.Hour)); err != nil || first != want {
					t.Fatalf("Consume over %s = %v, %v; want %v", url, first, err, want)
				}
			}
		})
	}
	// Each URL chose its own database, so neither saw the other's record.
	info, err := srv.Do("INFO", "keyspace")
	if err != nil {
		t.Fatal(err)
	}
	for db, want := range map[string]bool{"db0:": false, "db2:keys=1,": true, "db3:keys=1,": true} {
		if strings.Contains(info, db) != want {
			t.Errorf("INFO keyspace has %q: %v; want %v (%q)", db, !want, want, info)
		}
	}
}

func TestRedisKeyPrefix(t *testing.T) {
	srv := startRedis(t)
	s, err := OpenRedis(RedisOptions{Addresses: []string{srv.Addr}, KeyPrefix: "site-a:"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	other := openTestRedis(t, srv.Addr)
	ctx := context.Background()
	until := time.Now().Add(time.Hour)
	for _, st := range []Store{s, other} {
		if first, err := st.Consume(ctx, "same-id", until); err != nil || !first {
			t.Fatalf("Consume under its own prefix = %v, %v; want true", first, err)
		}
	}
	if got, err := srv.Do("EXISTS", "site-a:used:same-id"); err != nil || got != "1" {
		t.Fatalf("EXISTS site-a:used:same-id = %q, %v; want 1", got, err)
	}
	if got, err := srv.Do("EXISTS", "magic_link:used:same-id"); err != nil || got != "1" {
		t.Fatalf("EXISTS magic_link:used:same-id = %q, %v; want 1 (the default prefix)", got, err)
	}
}

// consumeRace has 20 goroutines, spread over the given stores, consume one
// id at once and returns how many were first.
func consumeRace(t *testing.T, stores []Store, id string) int32 {
	t.Helper()
	var firsts atomic.Int32
	var wg sync.WaitGroup
	startGate := make(chan struct{})
	for i := range 20 {
		s := stores[i%len(stores)]
		wg.Go(func() {
			<-startGate
			first, err := s.Consume(context.Background(), id, time.Now().Add(time.Hour))
			if err != nil {
				t.Error(err)
			}
			if first {
				firsts.Add(1)
			}
		})
	}
	close(startGate)
	wg.Wait()
	return firsts.Load()
}

func TestRedisConsumeAcrossInstances(t *testing.T) {
	srv := startRedis(t)
	a, b := openTestRedis(t, srv.Addr), openTestRedis(t, srv.Addr)
	for round := range 5 {
		if n := consumeRace(t, []Store{a, b}, fmt.Sprintf("race-%d", round)); n != 1 {
			t.Fatalf("round %d: %d of 20 concurrent Consume calls over two instances were first; want 1", round, n)
		}
	}
}

func TestRedisConsumeRetryAfterLostReply(t *testing.T) {
	srv := startRedis(t)
	proxy := newReplyProxy(t, srv.Addr, "used:lost-reply", 0, true)
	s := openTestRedis(t, proxy.addr)
	ctx := context.Background()
	first, err := s.Consume(ctx, "lost-reply", time.Now().Add(time.Hour))
	if proxy.dropped.Load() != 1 {
		t.Fatal("the proxy dropped no reply; the test proves nothing")
	}
	if err != nil || !first {
		t.Fatalf("Consume whose first reply was lost = %v, %v; want true (go-redis retried our own SET)", first, err)
	}
	if first, err := openTestRedis(t, srv.Addr).Consume(ctx, "lost-reply", time.Now().Add(time.Hour)); err != nil || first {
		t.Fatalf("second Consume = %v, %v; want false (the first was recorded)", first, err)
	}
}

// A Consume that fails after its SET reached Redis (the reply came too late) takes the use back,
// so that the link, which the caller was told nothing about, still works.
func TestRedisConsumeTakenBackAfterTimeout(t *testing.T) {
	srv := startRedis(t)
	slow, err := OpenRedis(RedisOptions{Addresses: []string{newReplyProxy(t, srv.Addr, "used:late-reply", 300*time.Millisecond, false).addr}, Timeout: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { slow.Close() })
	direct := openTestRedis(t, srv.Addr)
	until := time.Now().Add(time.Hour)

	if first, err := slow.Consume(context.Background(), "late-reply", until); !errors.Is(err, ErrUnavailable) || first {
		t.Fatalf("Consume whose reply comes after the timeout = %v, %v; want false, ErrUnavailable", first, err)
	}
	if _, used := waitUnused(t, direct, "late-reply", 5*time.Second); used {
		t.Fatal("the use recorded by a Consume that failed is still there 5s later; want it taken back")
	}
	if first, err := direct.Consume(context.Background(), "late-reply", until); err != nil || !first {
		t.Fatalf("Consume after the failed one = %v, %v; want true", first, err)
	}
}

// A Consume whose SET Redis ran and persisted, but which died before answering, is taken back
// once Redis returns: the undo keeps trying while Redis is gone.
func TestRedisConsumeTakenBackAfterCrash(t *testing.T) {
	srv := redistest.StartDurable(t)
	s, err := OpenRedis(RedisOptions{Addresses: []string{newReplyProxy(t, srv.Addr, "used:crash", 5*time.Second, false).addr}, Timeout: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	failed := make(chan error, 1)
	go func() {
		_, err := s.Consume(context.Background(), "crash", time.Now().Add(time.Hour))
		failed <- err
	}()
	time.Sleep(100 * time.Millisecond) // the SET has run; its reply waits in the proxy
	srv.Kill()
	if err := <-failed; !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Consume whose Redis died before answering: %v; want ErrUnavailable", err)
	}
	time.Sleep(time.Second)
	srv.Restart()

	direct := openTestRedis(t, srv.Addr)
	if waited, used := waitUnused(t, direct, "crash", 10*time.Second); used {
		t.Fatal("the use recorded before Redis died is still there 10s after it returned; want it taken back")
	} else {
		t.Logf("taken back %s after Redis returned", waited)
	}
	if first, err := direct.Consume(context.Background(), "crash", time.Now().Add(time.Hour)); err != nil || !first {
		t.Fatalf("Consume after the undo = %v, %v; want true", first, err)
	}
}

// Consumes whose callers give up while Redis is down are not sent when it returns: the batcher
// drops them instead of recording uses nobody was told about.
func TestRedisConsumeDroppedAfterOutage(t *testing.T) {
	srv := startRedis(t)
	s, err := OpenRedis(RedisOptions{Addresses: []string{srv.Addr}, Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	until := time.Now().Add(time.Hour)
	if first, err := s.Consume(context.Background(), "warm-up", until); err != nil || !first {
		t.Fatalf("Consume = %v, %v", first, err)
	}

	srv.Kill()
	links := []string{"down-1", "down-2", "down-3", "down-4"}
	var wg sync.WaitGroup
	for _, id := range links {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
			defer cancel()
			if first, err := s.Consume(ctx, id, until); err == nil || first {
				t.Errorf("Consume(%s) with Redis down = %v, %v; want an error", id, first, err)
			}
		})
	}
	wg.Wait()
	srv.Restart()

	// A pipeline the batcher had started when Redis returned runs within the store's timeout,
	// and the uses it recorded are then taken back.
	time.Sleep(3 * time.Second)
	direct := openTestRedis(t, srv.Addr)
	for _, id := range links {
		if _, used, err := direct.UsedAt(context.Background(), id); err != nil || used {
			t.Errorf("%s: used = %v (%v) after Redis returned, though its Consume failed while it was down", id, used, err)
		}
	}
	for _, id := range links {
		if first, err := s.Consume(context.Background(), id, until); err != nil || !first {
			t.Errorf("Consume(%s) after Redis returned = %v, %v; want true", id, first, err)
		}
	}
}

// waitUnused polls UsedAt until the link is not used or timeout passes, and returns how long it
// waited and whether the link is still used.
func waitUnused(t *testing.T, s Store, id string, timeout time.Duration) (time.Duration, bool) {
	t.Helper()
	start := time.Now()
	for {
		_, used, err := s.UsedAt(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		if !used || time.Since(start) > timeout {
			return time.Since(start), used
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// propagation revokes n times through from and returns how long each
// revocation took to reach the subscription of to, sorted.
func propagation(t *testing.T, from, to Store, n int) []time.Duration {
	t.Helper()
	e := subscribe(t, to)
	if ev := e.next(t, 10*time.Second); !ev.Resync {
		t.Fatalf("first event = %+v; want a resync", ev)
	}
	delays := make([]time.Duration, 0, n)
	for i := range n {
		at := time.Now()
		r := Revocation{Kind: KindLink, Value: fmt.Sprintf("jti-%d", i), At: at, Until: at.Add(time.Hour)}
		if err := from.Revoke(context.Background(), r); err != nil {
			t.Fatal(err)
		}
		ev := e.next(t, time.Second)
		delays = append(delays, time.Since(at))
		if ev.Resync || ev.Revocation.Value != r.Value || ev.Revocation.Kind != r.Kind {
			t.Fatalf("event %d = %+v; want %v", i, ev, r)
		}
		if !ev.Revocation.At.Equal(at.Truncate(time.Millisecond)) || ev.Revocation.Until.UnixMilli() != r.Until.UnixMilli() {
			t.Fatalf("event %d times = %v, %v; want %v, %v", i, ev.Revocation.At, ev.Revocation.Until, r.At, r.Until)
		}
	}
	slices.Sort(delays)
	return delays
}

func TestRedisPropagation(t *testing.T) {
	srv := startRedis(t)
	a, b := openTestRedis(t, srv.Addr), openTestRedis(t, srv.Addr)
	d := propagation(t, a, b, 50)
	t.Logf("revocation from one instance to another: p50 %v, p99 %v, max %v over %d", d[len(d)/2], d[len(d)*99/100], d[len(d)-1], len(d))
	if d[len(d)-1] > time.Second {
		t.Fatalf("slowest propagation %v; want within 1s", d[len(d)-1])
	}
	if got := list(t, b); len(got) != 50 {
		t.Fatalf("Revocations through the other instance lists %d; want 50", len(got))
	}
}

func TestRedisOutage(t *testing.T) {
	srv := startRedis(t)
	const timeout = 500 * time.Millisecond
	s, err := OpenRedis(RedisOptions{Addresses: []string{srv.Addr}, Timeout: timeout})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	e := subscribe(t, s)
	if ev := e.next(t, 5*time.Second); !ev.Resync {
		t.Fatalf("first event = %+v; want a resync", ev)
	}
	ctx := context.Background()
	if first, err := s.Consume(ctx, "before", time.Now().Add(time.Hour)); err != nil || !first {
		t.Fatalf("Consume = %v, %v", first, err)
	}

	srv.Kill()
	start := time.Now()
	first, err := s.Consume(ctx, "during", time.Now().Add(time.Hour))
	if !errors.Is(err, ErrUnavailable) || first {
		t.Fatalf("Consume with Redis killed = %v, %v; want false, ErrUnavailable", first, err)
	}
	if d := time.Since(start); d > timeout+500*time.Millisecond {
		t.Errorf("failing Consume took %v; want about the %v timeout at most", d, timeout)
	}
	t.Logf("Consume with Redis killed failed after %v: %v", time.Since(start), err)

	srv.Restart()
	deadline := time.Now().Add(10 * time.Second)
	for {
		first, err := s.Consume(ctx, "during", time.Now().Add(time.Hour))
		if err == nil {
			if !first {
				t.Fatal("Consume after recovery = false; the failed one must not have recorded anything")
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("Consume still failing 10s after Redis returned: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}

	// The subscription reconnects by itself and asks for a resync, since
	// revocations made meanwhile were not heard.
	ev := e.next(t, 10*time.Second)
	if !ev.Resync {
		t.Fatalf("first event after the restart = %+v; want a resync", ev)
	}
	at := time.Now()
	r := Revocation{Kind: KindSession, Value: "after-restart", At: at, Until: at.Add(time.Hour)}
	if err := s.Revoke(ctx, r); err != nil {
		t.Fatal(err)
	}
	if ev := e.next(t, 2*time.Second); ev.Revocation.Value != r.Value {
		t.Fatalf("event after the restart = %+v; want %v", ev, r)
	}
}

func TestRedisCluster(t *testing.T) {
	nodes := redistest.StartCluster(t, 3)
	addrs := make([]string, len(nodes))
	for i, n := range nodes {
		addrs[i] = n.Addr
	}
	open := func(seed string) *RedisStore {
		s, err := OpenRedis(RedisOptions{Addresses: []string{seed}, Cluster: true})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}
	// Two instances that each know a different node.
	a, b := open(addrs[0]), open(addrs[2])
	ctx := context.Background()

	// Ids hash to slots on different masters.
	for i := range 10 {
		if n := consumeRace(t, []Store{a, b}, fmt.Sprintf("cluster-%d", i)); n != 1 {
			t.Fatalf("id %d: %d of 20 concurrent Consume calls were first; want 1", i, n)
		}
	}
	keys := 0
	for _, n := range nodes {
		got, err := n.Do("DBSIZE")
		if err != nil {
			t.Fatal(err)
		}
		if got != "0" {
			keys++
		}
	}
	if keys < 2 {
		t.Errorf("the used records sit on %d master(s); want them spread over the cluster", keys)
	}

	d := propagation(t, a, b, 10)
	t.Logf("cluster: revocation from one instance to another: p50 %v, max %v", d[len(d)/2], d[len(d)-1])

	if got := list(t, a); len(got) != 10 {
		t.Fatalf("Revocations in the cluster lists %d; want 10", len(got))
	}
	now := time.Now().Truncate(time.Millisecond)
	l := Link{ID: "cl", UserID: "u", Status: StatusPending, CreatedAt: now, UpdatedAt: now, ExpiresAt: now.Add(time.Hour)}
	if err := a.PutLink(ctx, l); err != nil {
		t.Fatal(err)
	}
	if got, err := b.SetLinkStatus(ctx, "cl", StatusAccepted, now); err != nil || got.Status != StatusAccepted {
		t.Fatalf("SetLinkStatus in the cluster = %+v, %v", got, err)
	}
}

func TestRedisSentinel(t *testing.T) {
	master := startRedis(t)
	sentinel := redistest.StartSentinel(t, master, "gateway")
	s, err := OpenRedis(RedisOptions{Addresses: []string{sentinel.Addr}, MasterName: "gateway", DB: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, want := range []bool{true, false} {
		if first, err := s.Consume(context.Background(), "via-sentinel", time.Now().Add(time.Hour)); err != nil || first != want {
			t.Fatalf("Consume through Sentinel = %v, %v; want %v", first, err, want)
		}
	}
	info, err := master.Do("INFO", "keyspace")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(info, "db1:keys=1,") {
		t.Fatalf("the master's db 1 does not hold the record: %q", info)
	}
}
