package store

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"
)

// backend opens a fresh, empty store of one kind for a test.
type backend struct {
	name string
	open func(t *testing.T) Store
}

// backends lists every Store implementation, so that the contract tests run
// against each; redisBackend skips or fails as redistest decides when
// redis-server is missing.
func backends() []backend {
	return []backend{
		{"file", func(t *testing.T) Store { return openTestFile(t) }},
		{"redis", func(t *testing.T) Store { return openTestRedis(t, startRedis(t).Addr) }},
	}
}

func openTestFile(t testing.TB) *FileStore {
	t.Helper()
	s, err := OpenFile(filepath.Join(t.TempDir(), "state.db"), FileOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// events collects what a subscription delivers.
type events struct {
	mu   sync.Mutex
	list []Event
	ch   chan Event
}

func subscribe(t *testing.T, s Store) *events {
	t.Helper()
	e := &events{ch: make(chan Event, 100)}
	stop := s.Subscribe(func(ev Event) {
		e.mu.Lock()
		e.list = append(e.list, ev)
		e.mu.Unlock()
		e.ch <- ev
	})
	t.Cleanup(stop)
	return e
}

// next returns the next event, failing the test after d.
func (e *events) next(t *testing.T, d time.Duration) Event {
	t.Helper()
	select {
	case ev := <-e.ch:
		return ev
	case <-time.After(d):
		t.Fatalf("no event within %v", d)
		return Event{}
	}
}

func TestConsume(t *testing.T) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			s := b.open(t)
			ctx := context.Background()
			until := time.Now().Add(time.Hour)
			steps := []struct {
				id    string
				until time.Time
				first bool
			}{
				{"link-a", until, true},
				{"link-a", until, false},
				{"link-a", until.Add(time.Hour), false},
				{"link-b", until, true},
				{"short", time.Now().Add(300 * time.Millisecond), true},
			}
			for i, st := range steps {
				first, err := s.Consume(ctx, st.id, st.until)
				if err != nil || first != st.first {
					t.Fatalf("step %d: Consume(%q) = %v, %v; want %v", i, st.id, first, err, st.first)
				}
			}
			time.Sleep(400 * time.Millisecond)
			if first, err := s.Consume(ctx, "short", until); err != nil || !first {
				t.Fatalf("Consume after the record expired = %v, %v; want true", first, err)
			}
			if first, err := s.Consume(ctx, "past", time.Now().Add(-time.Second)); err == nil || first || errors.Is(err, ErrUnavailable) {
				t.Fatalf("Consume until a past moment = %v, %v; want a plain error", first, err)
			}
		})
	}
}

// TestUsedAt checks that a consumption is read back with its moment, and only a consumption.
func TestUsedAt(t *testing.T) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			s := b.open(t)
			ctx := context.Background()
			if _, used, err := s.UsedAt(ctx, "link-u"); err != nil || used {
				t.Fatalf("UsedAt of an unused link = %v, %v; want false", used, err)
			}
			before := time.Now().Truncate(time.Millisecond)
			if first, err := s.Consume(ctx, "link-u", time.Now().Add(time.Hour)); err != nil || !first {
				t.Fatalf("Consume = %v, %v", first, err)
			}
			after := time.Now()
			at, used, err := s.UsedAt(ctx, "link-u")
			if err != nil || !used || at.Before(before) || at.After(after) {
				t.Fatalf("UsedAt = %v, %v, %v; want used between %v and %v", at, used, err, before, after)
			}
			if _, err := s.Consume(ctx, "link-u", time.Now().Add(time.Hour)); err != nil {
				t.Fatal(err)
			}
			if again, _, _ := s.UsedAt(ctx, "link-u"); !again.Equal(at) {
				t.Errorf("a second use moved the moment of the first: %v, was %v", again, at)
			}
		})
	}
}

func TestRevocations(t *testing.T) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			s := b.open(t)
			ctx := context.Background()
			at := time.Now().Truncate(time.Millisecond)
			live := []Revocation{
				{Kind: KindLink, Value: "jti-1", At: at, Until: at.Add(time.Hour)},
				{Kind: KindSubject, Value: "user\x00with nul", At: at, Until: at.Add(2 * time.Hour)},
				{Kind: KindSession, Value: "sess-1", At: at.Add(-time.Minute), Until: at.Add(time.Hour)},
			}
			short := Revocation{Kind: KindLink, Value: "jti-short", At: at, Until: at.Add(300 * time.Millisecond)}
			for _, r := range append(live, short, live[0]) {
				if err := s.Revoke(ctx, r); err != nil {
					t.Fatalf("Revoke(%v): %v", r, err)
				}
			}
			if got := list(t, s); !sameRevocations(got, append(live, short)) {
				t.Fatalf("Revocations = %v; want %v", got, append(live, short))
			}
			time.Sleep(400 * time.Millisecond)
			if got := list(t, s); !sameRevocations(got, live) {
				t.Fatalf("after expiry Revocations = %v; want %v", got, live)
			}

			invalid := []Revocation{
				{Kind: "user", Value: "x", At: at, Until: at.Add(time.Hour)},
				{Kind: KindLink, Value: "", At: at, Until: at.Add(time.Hour)},
			}
			for _, r := range invalid {
				if err := s.Revoke(ctx, r); err == nil || errors.Is(err, ErrUnavailable) {
					t.Errorf("Revoke(%v) = %v; want a validation error", r, err)
				}
			}
		})
	}
}

func TestSubscribe(t *testing.T) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			s := b.open(t)
			e := subscribe(t, s)
			if ev := e.next(t, 5*time.Second); !ev.Resync {
				t.Fatalf("first event = %+v; want a resync", ev)
			}
			at := time.Now().Truncate(time.Millisecond)
			r := Revocation{Kind: KindSubject, Value: "user-1", At: at, Until: at.Add(time.Hour)}
			if err := s.Revoke(context.Background(), r); err != nil {
				t.Fatal(err)
			}
			if ev := e.next(t, 5*time.Second); ev.Resync || !sameRevocations([]Revocation{ev.Revocation}, []Revocation{r}) {
				t.Fatalf("event = %+v; want %v", ev, r)
			}
		})
	}
}

func TestSubscribeStop(t *testing.T) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			s := b.open(t)
			var mu sync.Mutex
			var n int
			resynced := make(chan struct{}, 1)
			stop := s.Subscribe(func(ev Event) {
				mu.Lock()
				n++
				mu.Unlock()
				if ev.Resync {
					resynced <- struct{}{}
				}
			})
			select {
			case <-resynced:
			case <-time.After(5 * time.Second):
				t.Fatal("no resync")
			}
			stop()
			at := time.Now()
			if err := s.Revoke(context.Background(), Revocation{Kind: KindLink, Value: "j", At: at, Until: at.Add(time.Hour)}); err != nil {
				t.Fatal(err)
			}
			time.Sleep(200 * time.Millisecond)
			mu.Lock()
			defer mu.Unlock()
			if n != 1 {
				t.Fatalf("fn called %d times; want only the resync before stop", n)
			}
		})
	}
}

func TestLinks(t *testing.T) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			s := b.open(t)
			ctx := context.Background()
			created := time.Now().Truncate(time.Millisecond)
			put := func(id string, status LinkStatus) Link {
				l := Link{ID: id, UserID: "user_" + id, Status: status, CreatedAt: created, UpdatedAt: created, ExpiresAt: created.Add(time.Hour)}
				if err := s.PutLink(ctx, l); err != nil {
					t.Fatal(err)
				}
				return l
			}
			l := put("l1", StatusPending)
			if got, err := s.GetLink(ctx, "l1"); err != nil || !sameLink(got, l) {
				t.Fatalf("GetLink = %+v, %v; want %+v", got, err, l)
			}
			if _, err := s.GetLink(ctx, "nope"); !errors.Is(err, ErrNotFound) {
				t.Fatalf("GetLink(unknown) error = %v; want ErrNotFound", err)
			}

			t1, t2 := created.Add(time.Second), created.Add(2*time.Second)
			tests := []struct {
				name        string
				from        LinkStatus
				to          LinkStatus
				wantStatus  LinkStatus
				wantUpdated time.Time
			}{
				{"pending to accepted", StatusPending, StatusAccepted, StatusAccepted, t1},
				{"pending to revoked", StatusPending, StatusRevoked, StatusRevoked, t1},
				{"accepted to revoked", StatusAccepted, StatusRevoked, StatusRevoked, t1},
				{"accepted stays", StatusAccepted, StatusAccepted, StatusAccepted, created},
				{"revoked wins over accepted", StatusRevoked, StatusAccepted, StatusRevoked, created},
				{"revoked stays", StatusRevoked, StatusRevoked, StatusRevoked, created},
			}
			for i, tc := range tests {
				t.Run(tc.name, func(t *testing.T) {
					id := fmt.Sprintf("t%d", i)
					want := put(id, tc.from)
					want.Status, want.UpdatedAt = tc.wantStatus, tc.wantUpdated
					got, err := s.SetLinkStatus(ctx, id, tc.to, t1)
					if err != nil || !sameLink(got, want) {
						t.Fatalf("SetLinkStatus = %+v, %v; want %+v", got, err, want)
					}
					// A later call must see what the first one stored.
					if got, err := s.SetLinkStatus(ctx, id, tc.to, t2); err != nil || !sameLink(got, want) {
						t.Fatalf("second SetLinkStatus = %+v, %v; want %+v", got, err, want)
					}
					if got, err := s.GetLink(ctx, id); err != nil || !sameLink(got, want) {
						t.Fatalf("GetLink = %+v, %v; want %+v", got, err, want)
					}
				})
			}

			if _, err := s.SetLinkStatus(ctx, "l1", StatusPending, t1); err == nil {
				t.Error("SetLinkStatus(pending) succeeded; want an error")
			}
			if _, err := s.SetLinkStatus(ctx, "nope", StatusRevoked, t1); !errors.Is(err, ErrNotFound) {
				t.Errorf("SetLinkStatus(unknown) error = %v; want ErrNotFound", err)
			}
			if err := s.PutLink(ctx, Link{ID: "bad", Status: "used", ExpiresAt: created.Add(time.Hour)}); err == nil {
				t.Error("PutLink with an unknown status succeeded")
			}

			short := Link{ID: "short", UserID: "u", Status: StatusPending, CreatedAt: created, UpdatedAt: created, ExpiresAt: time.Now().Add(300 * time.Millisecond)}
			if err := s.PutLink(ctx, short); err != nil {
				t.Fatal(err)
			}
			time.Sleep(400 * time.Millisecond)
			if _, err := s.GetLink(ctx, "short"); !errors.Is(err, ErrNotFound) {
				t.Errorf("GetLink(expired) error = %v; want ErrNotFound", err)
			}
			if _, err := s.SetLinkStatus(ctx, "short", StatusAccepted, t1); !errors.Is(err, ErrNotFound) {
				t.Errorf("SetLinkStatus(expired) error = %v; want ErrNotFound", err)
			}
		})
	}
}

func TestClosed(t *testing.T) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			s := b.open(t)
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			if _, err := s.Consume(ctx, "x", time.Now().Add(time.Hour)); !errors.Is(err, ErrUnavailable) {
				t.Errorf("Consume after Close error = %v; want ErrUnavailable", err)
			}
			if _, err := s.Revocations(ctx); !errors.Is(err, ErrUnavailable) {
				t.Errorf("Revocations after Close error = %v; want ErrUnavailable", err)
			}
			called := make(chan Event, 1)
			stop := s.Subscribe(func(ev Event) { called <- ev })
			defer stop()
			select {
			case ev := <-called:
				t.Errorf("Subscribe after Close delivered %+v; want nothing", ev)
			case <-time.After(200 * time.Millisecond):
			}
		})
	}
}

func list(t *testing.T, s Store) []Revocation {
	t.Helper()
	l, err := s.Revocations(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// sameRevocations reports whether a and b hold the same revocations, in any
// order, times compared to the millisecond.
func sameRevocations(a, b []Revocation) bool {
	key := func(r Revocation) string {
		return fmt.Sprintf("%s\x00%s\x00%d\x00%d", r.Kind, r.Value, r.At.UnixMilli(), r.Until.UnixMilli())
	}
	ka, kb := make([]string, len(a)), make([]string, len(b))
	for i, r := range a {
		ka[i] = key(r)
	}
	for i, r := range b {
		kb[i] = key(r)
	}
	slices.Sort(ka)
	slices.Sort(kb)
	return slices.Equal(ka, kb)
}

func sameLink(a, b Link) bool {
	return a.ID == b.ID && a.UserID == b.UserID && a.Status == b.Status &&
		a.CreatedAt.Equal(b.CreatedAt) && a.UpdatedAt.Equal(b.UpdatedAt) &&
		a.ExpiresAt.UnixMilli() == b.ExpiresAt.UnixMilli()
}
