package store

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

func TestFileCreatesPrivateFile(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data", "magic_link")
	path := filepath.Join(dir, "state.db")
	s, err := OpenFile(path, FileOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, c := range []struct {
		path string
		mode os.FileMode
	}{{dir, 0o700}, {path, 0o600}} {
		fi, err := os.Stat(c.path)
		if err != nil {
			t.Fatal(err)
		}
		if got := fi.Mode().Perm(); got != c.mode {
			t.Errorf("%s mode = %v; want %v", c.path, got, c.mode)
		}
	}
}

func TestFileSurvivesReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	ctx := context.Background()
	now := time.Now().Truncate(time.Millisecond)
	r := Revocation{Kind: KindSubject, Value: "user-1", At: now, Until: now.Add(time.Hour)}
	l := Link{ID: "l1", UserID: "user-1", Status: StatusPending, CreatedAt: now, UpdatedAt: now, ExpiresAt: now.Add(time.Hour)}

	s, err := OpenFile(path, FileOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if first, err := s.Consume(ctx, "once", now.Add(time.Hour)); err != nil || !first {
		t.Fatalf("Consume = %v, %v; want true", first, err)
	}
	if err := s.Revoke(ctx, r); err != nil {
		t.Fatal(err)
	}
	if err := s.PutLink(ctx, l); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s, err = OpenFile(path, FileOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if first, err := s.Consume(ctx, "once", now.Add(time.Hour)); err != nil || first {
		t.Fatalf("Consume after reopen = %v, %v; want false", first, err)
	}
	if got := list(t, s); !sameRevocations(got, []Revocation{r}) {
		t.Fatalf("Revocations after reopen = %v; want %v", got, r)
	}
	if got, err := s.GetLink(ctx, "l1"); err != nil || !sameLink(got, l) {
		t.Fatalf("GetLink after reopen = %+v, %v; want %+v", got, err, l)
	}
}

func TestFileLockedByAnotherOpen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	s, err := OpenFile(path, FileOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	start := time.Now()
	_, err = OpenFile(path, FileOptions{LockTimeout: 100 * time.Millisecond})
	if err == nil || !strings.Contains(err.Error(), "held by another process") {
		t.Fatalf("second OpenFile error = %v; want held by another process", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("second OpenFile took %v; want about the lock timeout", d)
	}
}

func TestFileConsumeConcurrent(t *testing.T) {
	s := openTestFile(t)
	var firsts atomic.Int32
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			first, err := s.Consume(context.Background(), "shared", time.Now().Add(time.Hour))
			if err != nil {
				t.Error(err)
			}
			if first {
				firsts.Add(1)
			}
		})
	}
	wg.Wait()
	if n := firsts.Load(); n != 1 {
		t.Fatalf("%d of 20 concurrent Consume calls were first; want 1", n)
	}
}

// counts returns the number of entries in each bucket of s.
func counts(t *testing.T, s *FileStore) map[string]int {
	t.Helper()
	n := map[string]int{}
	err := s.db.View(func(tx *bolt.Tx) error {
		for _, name := range append(bucketNames[:], bucketExpiry) {
			n[string(name)] = tx.Bucket(name).Stats().KeyN
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestFileSweep(t *testing.T) {
	s := openTestFile(t)
	ctx := context.Background()
	now := time.Now()
	soon, later := now.Add(time.Minute), now.Add(time.Hour)
	mustConsume := func(id string, until time.Time) {
		t.Helper()
		if first, err := s.Consume(ctx, id, until); err != nil || !first {
			t.Fatalf("Consume(%q) = %v, %v; want true", id, first, err)
		}
	}
	mustConsume("short", soon)
	mustConsume("long", later)
	// Expired records read as absent before any sweep: the id is consumed
	// anew, and its index entry moves with it.
	mustConsume("renewed", time.Now().Add(50*time.Millisecond))
	time.Sleep(100 * time.Millisecond)
	mustConsume("renewed", later)
	for _, r := range []Revocation{
		{Kind: KindLink, Value: "short", At: now, Until: soon},
		{Kind: KindLink, Value: "long", At: now, Until: later},
	} {
		if err := s.Revoke(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	for _, l := range []Link{
		{ID: "short", Status: StatusPending, ExpiresAt: soon},
		{ID: "long", Status: StatusPending, ExpiresAt: later},
	} {
		if err := s.PutLink(ctx, l); err != nil {
			t.Fatal(err)
		}
	}
	want := map[string]int{"used": 3, "revocations": 2, "links": 2, "expiry": 7}
	if got := counts(t, s); !equalCounts(got, want) {
		t.Fatalf("before sweeping: %v; want %v", got, want)
	}

	n, err := s.sweep(now.Add(30 * time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if n != 3 {
		t.Errorf("sweep removed %d records; want 3", n)
	}
	want = map[string]int{"used": 2, "revocations": 1, "links": 1, "expiry": 4}
	if got := counts(t, s); !equalCounts(got, want) {
		t.Fatalf("after sweeping: %v; want %v", got, want)
	}
	if first, err := s.Consume(ctx, "renewed", later); err != nil || first {
		t.Fatalf("renewed record lost by the sweep: Consume = %v, %v", first, err)
	}
}

func TestFileSweepsOnItsOwn(t *testing.T) {
	s, err := OpenFile(filepath.Join(t.TempDir(), "state.db"), FileOptions{
		SweepInterval: 20 * time.Millisecond,
		SweepError:    func(err error) { t.Error(err) },
	})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.Consume(context.Background(), "x", time.Now().Add(50*time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for counts(t, s)["used"] != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("expired record still in the file: %v", counts(t, s))
		}
		time.Sleep(20 * time.Millisecond)
	}
	if n := counts(t, s)["expiry"]; n != 0 {
		t.Fatalf("%d index entries left after the sweep", n)
	}
}

func TestFileCanceledContext(t *testing.T) {
	s := openTestFile(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := s.Consume(ctx, "x", time.Now().Add(time.Hour)); !errors.Is(err, context.Canceled) {
		t.Fatalf("Consume with a canceled context error = %v; want context.Canceled", err)
	}
	if first, err := s.Consume(context.Background(), "x", time.Now().Add(time.Hour)); err != nil || !first {
		t.Fatalf("Consume after a canceled one = %v, %v; want true (nothing recorded)", first, err)
	}
}

func equalCounts(a, b map[string]int) bool {
	for k, v := range b {
		if a[k] != v {
			return false
		}
	}
	return len(a) == len(b)
}

func TestFileFailingWriteFailsAlone(t *testing.T) {
	s := openTestFile(t)
	tooLong := strings.Repeat("x", bolt.MaxKeySize+1)
	for round := range 5 {
		var wg sync.WaitGroup
		errs := make([]error, 20)
		firsts := make([]bool, 20)
		for i := range 20 {
			id := fmt.Sprintf("r%d-%d", round, i)
			if i == 7 {
				id = tooLong
			}
			wg.Go(func() {
				firsts[i], errs[i] = s.Consume(context.Background(), id, time.Now().Add(time.Hour))
			})
		}
		wg.Wait()
		for i := range 20 {
			if wantErr := i == 7; (errs[i] != nil) != wantErr || (errs[i] == nil && !firsts[i]) {
				t.Fatalf("round %d, call %d: Consume = %v, %v; only call 7 (key too long) should fail", round, i, firsts[i], errs[i])
			}
		}
	}
}
