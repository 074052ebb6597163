package store

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
)

// FileOptions tunes a FileStore; the zero value gives the defaults.
type FileOptions struct {
	// SweepInterval is how often expired records are deleted from the file.
	// Default: one minute.
	SweepInterval time.Duration
	// LockTimeout is how long OpenFile waits for another process holding
	// the file to let go of it. Default: one second.
	LockTimeout time.Duration
	// SweepError, when set, is called with any error of a periodic sweep.
	SweepError func(error)
}

// FileStore is a Store in a bbolt file, for a single process: bbolt locks
// the file, so a second process cannot open it. Subscribers hear only of
// revocations made through this FileStore, from the goroutine calling Revoke.
//
// Writes are committed to disk before they return. Concurrent writes share
// a commit: one that arrives while the file is idle is committed at once,
// those that arrive during a commit go together in the next one.
type FileStore struct {
	db   *bolt.DB
	w    writer
	hub  hub
	stop chan struct{}
	done chan struct{}
	once sync.Once
}

var _ Store = (*FileStore)(nil)

// A record's value starts with its expiry (big-endian Unix milliseconds)
// followed by its payload. The expiry bucket indexes every record by expiry
// (8 bytes), then the tag of its bucket (1 byte), then its key, so that a
// sweep reads only the expired entries.
const (
	tagUsed byte = iota
	tagRevocations
	tagLinks
)

var (
	bucketNames = [...][]byte{
		tagUsed:        []byte("used"),
		tagRevocations: []byte("revocations"),
		tagLinks:       []byte("links"),
	}
	bucketExpiry = []byte("expiry")
)

// sweepBatch bounds the records one sweep transaction deletes, so that a
// large sweep does not hold the writer lock for long.
const sweepBatch = 1000

// OpenFile opens the bbolt file at path, creating it (mode 0600) and its
// parent directories (mode 0700) if needed, and starts the periodic sweep of
// expired records that Close stops.
func OpenFile(path string, opts FileOptions) (*FileStore, error) {
	if opts.SweepInterval <= 0 {
		opts.SweepInterval = time.Minute
	}
	if opts.LockTimeout <= 0 {
		opts.LockTimeout = time.Second
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: opts.LockTimeout})
	if errors.Is(err, bolt.ErrTimeout) {
		return nil, fmt.Errorf("store: %s is held by another process", path)
	}
	if err != nil {
		return nil, fmt.Errorf("store: open %s: %w", path, err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, name := range append(bucketNames[:], bucketExpiry) {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("store: open %s: %w", path, err)
	}
	s := &FileStore{db: db, w: writer{db: db}, stop: make(chan struct{}), done: make(chan struct{})}
	go s.sweepEvery(opts.SweepInterval, opts.SweepError)
	return s, nil
}

// Consume implements Store.
func (s *FileStore) Consume(ctx context.Context, linkID string, until time.Time) (bool, error) {
	if err := checkUntil(until); err != nil {
		return false, err
	}
	if err := ctx.Err(); err != nil {
		return false, err
	}
	now := ms(time.Now())
	key := []byte(linkID)
	var first bool
	err := s.w.update(func(tx *bolt.Tx) error {
		if _, _, ok := get(tx, tagUsed, key, now); ok {
			first = false
			return nil
		}
		first = true
		return put(tx, tagUsed, key, ms(until), binary.BigEndian.AppendUint64(nil, uint64(now)))
	})
	if err != nil {
		return false, fileError(err)
	}
	return first, nil
}

// UsedAt implements Store.
func (s *FileStore) UsedAt(ctx context.Context, linkID string) (time.Time, bool, error) {
	if err := ctx.Err(); err != nil {
		return time.Time{}, false, err
	}
	var at time.Time
	var used bool
	err := s.db.View(func(tx *bolt.Tx) error {
		v, _, ok := get(tx, tagUsed, []byte(linkID), ms(time.Now()))
		if ok && len(v) == 8 {
			at, used = fromMS(int64(binary.BigEndian.Uint64(v))), true
		}
		return nil
	})
	if err != nil {
		return time.Time{}, false, fileError(err)
	}
	return at, used, nil
}

// Revoke implements Store; subscribers are called before it returns.
func (s *FileStore) Revoke(ctx context.Context, r Revocation) error {
	if err := r.validate(); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	r.At, r.Until = fromMS(ms(r.At)), fromMS(ms(r.Until))
	err := s.w.update(func(tx *bolt.Tx) error {
		return put(tx, tagRevocations, revocationKey(r), ms(r.Until), nil)
	})
	if err != nil {
		return fileError(err)
	}
	s.hub.publish(Event{Revocation: r})
	return nil
}

// Revocations implements Store.
func (s *FileStore) Revocations(ctx context.Context) ([]Revocation, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	now := ms(time.Now())
	var list []Revocation
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketNames[tagRevocations]).ForEach(func(k, v []byte) error {
			until := expiry(v)
			if until <= now {
				return nil
			}
			r, err := parseRevocationKey(k)
			if err != nil {
				return err
			}
			r.Until = fromMS(until)
			list = append(list, r)
			return nil
		})
	})
	if err != nil {
		return nil, fileError(err)
	}
	return list, nil
}

// Subscribe implements Store. The first Resync is delivered before Subscribe
// returns; then fn runs in the goroutine of each Revoke.
func (s *FileStore) Subscribe(fn func(Event)) (stop func()) {
	return s.hub.subscribe(fn)
}

// fileLink is a Link as the file keeps it.
type fileLink struct {
	UserID    string     `json:"u"`
	Status    LinkStatus `json:"s"`
	CreatedAt int64      `json:"c"`
	UpdatedAt int64      `json:"m"`
}

// PutLink implements Store.
func (s *FileStore) PutLink(ctx context.Context, l Link) error {
	if err := l.validate(); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	err := s.w.update(func(tx *bolt.Tx) error {
		return putLink(tx, l)
	})
	return fileError(err)
}

// GetLink implements Store.
func (s *FileStore) GetLink(ctx context.Context, id string) (Link, error) {
	if err := ctx.Err(); err != nil {
		return Link{}, err
	}
	var l Link
	err := s.db.View(func(tx *bolt.Tx) error {
		var err error
		l, err = getLink(tx, id, ms(time.Now()))
		return err
	})
	if err != nil {
		return Link{}, fileError(err)
	}
	return l, nil
}

// SetLinkStatus implements Store.
func (s *FileStore) SetLinkStatus(ctx context.Context, id string, st LinkStatus, at time.Time) (Link, error) {
	if err := checkTarget(st); err != nil {
		return Link{}, err
	}
	if err := ctx.Err(); err != nil {
		return Link{}, err
	}
	var l Link
	var found bool
	err := s.w.update(func(tx *bolt.Tx) error {
		cur, err := getLink(tx, id, ms(time.Now()))
		// Not found is an answer, not a failure of the shared commit.
		found = !errors.Is(err, ErrNotFound)
		if !found {
			return nil
		}
		if err != nil {
			return err
		}
		var changed bool
		l, changed = cur.transition(st, fromMS(ms(at)))
		if !changed {
			return nil
		}
		return putLink(tx, l)
	})
	if err != nil {
		return Link{}, fileError(err)
	}
	if !found {
		return Link{}, ErrNotFound
	}
	return l, nil
}

// Close implements Store: it stops the sweep and the subscriptions, then
// closes the file.
func (s *FileStore) Close() error {
	var err error
	s.once.Do(func() {
		close(s.stop)
		<-s.done
		s.hub.close()
		err = s.db.Close()
	})
	return err
}

// sweepEvery deletes expired records every interval until Close.
func (s *FileStore) sweepEvery(interval time.Duration, report func(error)) {
	defer close(s.done)
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case now := <-t.C:
			if _, err := s.sweep(now); err != nil && report != nil {
				report(err)
			}
		}
	}
}

// sweep deletes the records that expired by now and returns how many.
func (s *FileStore) sweep(now time.Time) (int, error) {
	limit := ms(now)
	total := 0
	for {
		n := 0
		err := s.db.Update(func(tx *bolt.Tx) error {
			idx := tx.Bucket(bucketExpiry)
			var expired [][]byte
			c := idx.Cursor()
			for k, _ := c.First(); k != nil && len(expired) < sweepBatch; k, _ = c.Next() {
				if len(k) >= 8 && int64(binary.BigEndian.Uint64(k)) > limit {
					break
				}
				expired = append(expired, bytes.Clone(k))
			}
			for _, k := range expired {
				if err := idx.Delete(k); err != nil {
					return err
				}
				if len(k) < 9 || int(k[8]) >= len(bucketNames) {
					continue // not an index entry this package wrote
				}
				b := tx.Bucket(bucketNames[k[8]])
				key := k[9:]
				if v := b.Get(key); v != nil && expiry(v) <= limit {
					if err := b.Delete(key); err != nil {
						return err
					}
				}
			}
			n = len(expired)
			return nil
		})
		total += n
		if err != nil || n < sweepBatch {
			return total, fileError(err)
		}
	}
}

// put stores payload under key in the bucket of tag until the moment until
// (Unix milliseconds), keeping the expiry index in step.
func put(tx *bolt.Tx, tag byte, key []byte, until int64, payload []byte) error {
	b := tx.Bucket(bucketNames[tag])
	idx := tx.Bucket(bucketExpiry)
	if old := b.Get(key); old != nil {
		if err := idx.Delete(indexKey(expiry(old), tag, key)); err != nil {
			return err
		}
	}
	v := binary.BigEndian.AppendUint64(make([]byte, 0, 8+len(payload)), uint64(max(until, 0)))
	if err := b.Put(key, append(v, payload...)); err != nil {
		return err
	}
	return idx.Put(indexKey(until, tag, key), nil)
}

// get returns the payload under key in the bucket of tag and its expiry, and false when it
// is absent or expired by now (Unix milliseconds). The payload is valid only
// during tx.
func get(tx *bolt.Tx, tag byte, key []byte, now int64) (payload []byte, until int64, ok bool) {
	v := tx.Bucket(bucketNames[tag]).Get(key)
	if v == nil || expiry(v) <= now {
		return nil, 0, false
	}
	return v[8:], expiry(v), true
}

// expiry reads the expiry at the start of a record's value.
func expiry(v []byte) int64 {
	if len(v) < 8 {
		return 0
	}
	return int64(binary.BigEndian.Uint64(v))
}

func indexKey(until int64, tag byte, key []byte) []byte {
	k := binary.BigEndian.AppendUint64(make([]byte, 0, 9+len(key)), uint64(max(until, 0)))
	return append(append(k, tag), key...)
}

// revocationKey is kind, NUL, value, NUL, then At in big-endian Unix
// milliseconds. A kind holds no NUL and At is the last 8 bytes, so a value
// holding NULs still parses back.
func revocationKey(r Revocation) []byte {
	k := make([]byte, 0, len(r.Kind)+len(r.Value)+10)
	k = append(append(append(k, r.Kind...), 0), r.Value...)
	return binary.BigEndian.AppendUint64(append(k, 0), uint64(ms(r.At)))
}

func parseRevocationKey(k []byte) (Revocation, error) {
	kind, rest, ok := bytes.Cut(k, []byte{0})
	if !ok || len(rest) < 9 || rest[len(rest)-9] != 0 {
		return Revocation{}, fmt.Errorf("store: corrupt revocation key %q", k)
	}
	return Revocation{
		Kind:  Kind(kind),
		Value: string(rest[:len(rest)-9]),
		At:    fromMS(int64(binary.BigEndian.Uint64(rest[len(rest)-8:]))),
	}, nil
}

func putLink(tx *bolt.Tx, l Link) error {
	payload, err := json.Marshal(fileLink{
		UserID:    l.UserID,
		Status:    l.Status,
		CreatedAt: ms(l.CreatedAt),
		UpdatedAt: ms(l.UpdatedAt),
	})
	if err != nil {
		return err
	}
	return put(tx, tagLinks, []byte(l.ID), ms(l.ExpiresAt), payload)
}

func getLink(tx *bolt.Tx, id string, now int64) (Link, error) {
	key := []byte(id)
	payload, until, ok := get(tx, tagLinks, key, now)
	if !ok {
		return Link{}, ErrNotFound
	}
	var f fileLink
	if err := json.Unmarshal(payload, &f); err != nil {
		return Link{}, fmt.Errorf("store: corrupt link record: %w", err)
	}
	return Link{
		ID:        id,
		UserID:    f.UserID,
		Status:    f.Status,
		CreatedAt: fromMS(f.CreatedAt),
		UpdatedAt: fromMS(f.UpdatedAt),
		ExpiresAt: fromMS(until),
	}, nil
}

// fileError marks the errors of a closed file as ErrUnavailable.
func fileError(err error) error {
	switch {
	case err == nil, errors.Is(err, ErrNotFound):
		return err
	case errors.Is(err, bolt.ErrDatabaseNotOpen):
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	return fmt.Errorf("store: %w", err)
}

// writer groups the writes of concurrent callers into shared commits,
// without waiting for company as bbolt's Batch does: a write that finds the
// writer idle starts a commit at once.
type writer struct {
	db    *bolt.DB
	mu    sync.Mutex
	queue []write
	busy  bool
}

type write struct {
	fn   func(*bolt.Tx) error
	done chan error
}

// update runs fn in a read-write transaction, possibly shared with other
// callers, and returns once that transaction is committed. fn may run more
// than once and must set all its results on each run.
func (w *writer) update(fn func(*bolt.Tx) error) error {
	c := write{fn: fn, done: make(chan error, 1)}
	w.mu.Lock()
	w.queue = append(w.queue, c)
	if !w.busy {
		w.busy = true
		go w.drain()
	}
	w.mu.Unlock()
	return <-c.done
}

// drain commits the queued writes, a batch at a time, until none is left.
func (w *writer) drain() {
	w.mu.Lock()
	for len(w.queue) > 0 {
		batch := w.queue
		w.queue = nil
		w.mu.Unlock()
		w.commit(batch)
		w.mu.Lock()
	}
	w.busy = false
	w.mu.Unlock()
}

// commit runs batch in one transaction. When one of them fails, the
// transaction is rolled back and each runs again in a transaction of its
// own, so that it fails alone.
func (w *writer) commit(batch []write) {
	failed := -1
	err := w.db.Update(func(tx *bolt.Tx) error {
		for i, c := range batch {
			if err := c.fn(tx); err != nil {
				failed = i
				return err
			}
		}
		return nil
	})
	if err != nil && failed >= 0 && len(batch) > 1 {
		for _, c := range batch {
			c.done <- w.db.Update(c.fn)
		}
		return
	}
	for _, c := range batch {
		c.done <- err
	}
}

// hub delivers events to the subscribers of a FileStore.
type hub struct {
	mu     sync.Mutex
	subs   map[*subscriber]struct{}
	closed bool
}

type subscriber struct {
	mu      sync.Mutex // held while fn runs, so that calls never overlap
	fn      func(Event)
	stopped bool
}

func (h *hub) subscribe(fn func(Event)) (stop func()) {
	sub := &subscriber{fn: fn}
	sub.mu.Lock()
	defer sub.mu.Unlock()
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return func() {}
	}
	if h.subs == nil {
		h.subs = make(map[*subscriber]struct{})
	}
	h.subs[sub] = struct{}{}
	h.mu.Unlock()
	fn(Event{Resync: true})
	return func() {
		h.mu.Lock()
		delete(h.subs, sub)
		h.mu.Unlock()
		sub.end()
	}
}

func (h *hub) publish(ev Event) {
	h.mu.Lock()
	subs := make([]*subscriber, 0, len(h.subs))
	for sub := range h.subs {
		subs = append(subs, sub)
	}
	h.mu.Unlock()
	for _, sub := range subs {
		sub.mu.Lock()
		if !sub.stopped {
			sub.fn(ev)
		}
		sub.mu.Unlock()
	}
}

func (h *hub) close() {
	h.mu.Lock()
	subs := h.subs
	h.subs, h.closed = nil, true
	h.mu.Unlock()
	for sub := range subs {
		sub.end()
	}
}

// end waits for a running fn and stops further calls.
func (sub *subscriber) end() {
	sub.mu.Lock()
	sub.stopped = true
	sub.mu.Unlock()
}
