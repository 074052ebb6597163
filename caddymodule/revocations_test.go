package caddymodule

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/magiclink-dev/magiclink/caddymodule/store"
)

func TestRevocationList(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	until := now.Add(time.Hour)
	var l revocationList
	s := &session{Subject: "alice", LinkID: "link-1", ID: "sess-1", Start: now.Add(-time.Minute)}
	if !l.empty() || l.linkRevoked("link-1", "alice", now) || l.sessionRevoked(s) {
		t.Fatal("an empty list revokes something")
	}

	l.add(store.Revocation{Kind: store.KindSession, Value: "sess-2", At: now, Until: until})
	if l.sessionRevoked(s) || l.linkRevoked("link-1", "alice", now) {
		t.Error("revoking another session revoked this one")
	}
	l.add(store.Revocation{Kind: store.KindSession, Value: "sess-1", At: now, Until: until})
	if !l.sessionRevoked(s) || l.linkRevoked("link-1", "alice", now) {
		t.Error("signing out revoked the link too, or not the session")
	}

	l.replace(nil)
	if !l.empty() || l.sessionRevoked(s) {
		t.Fatal("replace(nil) kept revocations")
	}
	l.add(store.Revocation{Kind: store.KindLink, Value: "link-1", At: now, Until: until})
	if !l.linkRevoked("link-1", "bob", now) || !l.sessionRevoked(s) || l.linkRevoked("link-2", "alice", now) {
		t.Error("a link revocation must end the link and its sessions, nothing else")
	}

	l.replace([]store.Revocation{{Kind: store.KindSubject, Value: "alice", At: now, Until: until}})
	if l.len() != 1 {
		t.Fatalf("len = %d after replace with one, want 1", l.len())
	}
	tests := []struct {
		name string
		at   time.Time
		want bool
	}{
		{"issued before", now.Add(-time.Second), true},
		{"issued at the moment", now, true},
		{"issued after", now.Add(time.Second), false},
	}
	for _, tt := range tests {
		if got := l.linkRevoked("any", "alice", tt.at); got != tt.want {
			t.Errorf("subject revoked, link %s: revoked = %v, want %v", tt.name, got, tt.want)
		}
		if got := l.sessionRevoked(&session{Subject: "alice", Start: tt.at}); got != tt.want {
			t.Errorf("subject revoked, session started %s: revoked = %v, want %v", tt.name, got, tt.want)
		}
	}
	if !l.sessionRevoked(&session{Subject: "alice"}) {
		t.Error("a session of the previous cookie format (no start) outlived its subject's revocation")
	}
	if l.linkRevoked("any", "bob", now.Add(-time.Hour)) {
		t.Error("revoking alice revoked bob")
	}

	l.add(store.Revocation{Kind: store.KindSubject, Value: "alice", At: now.Add(-time.Hour), Until: until})
	if !l.linkRevoked("any", "alice", now) {
		t.Error("an older revocation of the subject replaced the newer one")
	}

	l.sweep(until.Add(-time.Second))
	if l.len() != 1 {
		t.Errorf("sweep before until dropped a revocation: len %d", l.len())
	}
	l.sweep(until)
	if !l.empty() || len(l.list()) != 0 {
		t.Errorf("sweep at until kept %d revocations", l.len())
	}
}

// TestRevocationListConcurrent reads while revocations are added, replaced and swept (run with
// -race).
func TestRevocationListConcurrent(t *testing.T) {
	var l revocationList
	now := time.Now()
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := range 500 {
				v := fmt.Sprintf("%d-%d", w, i)
				l.add(store.Revocation{Kind: store.KindLink, Value: v, At: now, Until: now.Add(time.Hour)})
				l.linkRevoked(v, "s", now)
				l.sessionRevoked(&session{Subject: "s", LinkID: v})
				if i%100 == 0 {
					l.sweep(now)
					l.list()
				}
			}
		})
	}
	wg.Wait()
	if l.len() != 2000 || len(l.list()) != 2000 {
		t.Errorf("len %d, list %d; want 2000", l.len(), len(l.list()))
	}
}

// BenchmarkRevocationCheck is a session checked against 100,000 revoked links and 10,000 revoked
// subjects, none of them its own: the cost a loaded list adds to the cookie path.
func BenchmarkRevocationCheck(b *testing.B) {
	var l revocationList
	now := time.Now()
	var all []store.Revocation
	for i := range 100_000 {
		all = append(all, store.Revocation{Kind: store.KindLink, Value: fmt.Sprintf("link-%d", i), At: now, Until: now.Add(time.Hour)})
	}
	for i := range 10_000 {
		all = append(all, store.Revocation{Kind: store.KindSubject, Value: fmt.Sprintf("user-%d", i), At: now, Until: now.Add(time.Hour)})
	}
	l.replace(all)
	s := &session{Subject: "alice", LinkID: "link-alice", ID: "sess", Start: now}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if l.sessionRevoked(s) {
				b.Fatal("revoked")
			}
		}
	})
}

// A revocation is kept max_link_age + session_ttl (the longest of the handlers using the app): a
// link issued just before it is refused until it expires (its leeway is far shorter than
// session_ttl), and a session started before it lasts session_ttl at most.
func TestRevocationLifetime(t *testing.T) {
	a := &App{mu: new(sync.Mutex)}
	if got, want := a.revocationLifetime(), 720*time.Hour+24*time.Hour; got != want {
		t.Errorf("without handlers: %v, want %v (the defaults)", got, want)
	}
	a.use(time.Hour, 2*time.Hour)
	a.use(30*time.Minute, time.Hour)
	if got, want := a.revocationLifetime(), 3*time.Hour; got != want {
		t.Errorf("with two handlers: %v, want %v (the longest)", got, want)
	}
}
