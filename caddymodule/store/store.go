// Package store keeps the state that one-time links, revocation and the
// issuing API need: which links have been used, which links, subjects and
// sessions are revoked, and the status of each link the issuing API minted.
//
// Two implementations share the Store interface: FileStore, a bbolt file for
// one process, and RedisStore, shared by every instance that points at the
// same Redis (standalone, Sentinel or Cluster). Nothing here is on the
// request path of a stateless site: a site that uses none of it never opens a
// store.
//
// Every record carries the moment after which it no longer matters (a used
// link its expiry plus leeway, a revocation the end of the last session it
// could end, a link status the link's expiry). Expired records read as absent
// and are dropped by the store.
//
// Errors that mean "the store could not be reached in time" wrap
// ErrUnavailable, so that a caller can answer 503; any other error is a bug or
// a misconfiguration.
package store

import (
	"context"
	"errors"
	"time"
)

// ErrUnavailable is wrapped by every error that means the store could not be
// reached or did not answer within its timeout (or was closed). The operation
// may be retried later; a Consume that fails this way must not open a session.
var ErrUnavailable = errors.New("store unavailable")

// ErrNotFound is returned by GetLink and SetLinkStatus for a link id that was
// never put or whose record has expired.
var ErrNotFound = errors.New("link not found")

// Store is the state shared by the magic_link handlers of one process, or of
// every instance pointed at the same Redis. All methods are safe for
// concurrent use. Times are kept to the millisecond.
type Store interface {
	// Consume records the single use of the link linkID and reports whether
	// this call was the first: first is true for exactly one call per linkID
	// among all the processes sharing the store, until the record expires at
	// until (the link's expiry plus leeway). first is never true unless the
	// use is recorded, and a retry inside the store never turns a first use
	// into a repeated one. until must be in the future. On error the caller
	// must not open a session; the store then takes back whatever use this
	// call may have recorded, as soon as it can, so that a retry of the link
	// works (a store that cannot reach its backend for that either leaves the
	// link used).
	Consume(ctx context.Context, linkID string, until time.Time) (first bool, err error)

	// UsedAt reports when the link linkID was consumed, and false when it has
	// not been (or its record has expired). The issuing API reads a one-time
	// link's consumption as its acceptance.
	UsedAt(ctx context.Context, linkID string) (at time.Time, used bool, err error)

	// Revoke records r until r.Until and announces it to the subscribers of
	// every process sharing the store. Revoking the same revocation again is
	// harmless, so a failed Revoke may be retried.
	Revoke(ctx context.Context, r Revocation) error

	// Revocations lists every revocation not yet past its Until, in one
	// round trip, for a full resync of an in-memory list.
	Revocations(ctx context.Context) ([]Revocation, error)

	// Subscribe calls fn for every revocation recorded from now on, this
	// process's own included, and with Event.Resync whenever revocations may
	// have been missed: the caller then reloads the whole list with
	// Revocations. The first event is always a Resync; a Redis store sends
	// another after each reconnection. A caller that also wants a periodic
	// resync runs its own timer. Calls of fn never overlap, and fn must not
	// call Revoke, stop or Close. stop ends the subscription and returns
	// once fn is no longer running; Close ends it too, and after Close
	// Subscribe delivers nothing.
	Subscribe(fn func(Event)) (stop func())

	// PutLink records the status of an issued link until l.ExpiresAt,
	// replacing any record of the same id.
	PutLink(ctx context.Context, l Link) error

	// GetLink returns the record of the link id, or ErrNotFound.
	GetLink(ctx context.Context, id string) (Link, error)

	// SetLinkStatus moves the link id to status s at the moment at and
	// returns the record as it stands afterwards. A revoked link stays
	// revoked and a status already held is kept with its UpdatedAt, so the
	// returned record may not carry s. s must be StatusAccepted or
	// StatusRevoked. It returns ErrNotFound for an unknown or expired id.
	SetLinkStatus(ctx context.Context, id string, s LinkStatus, at time.Time) (Link, error)

	// Close stops the store's background work and subscriptions and
	// releases its file or connections. Operations after Close fail with
	// ErrUnavailable.
	Close() error
}

// Kind says what a revocation applies to.
type Kind string

// The kinds of revocation.
const (
	// KindLink revokes one link by its id (the token's jti) and every
	// session it opened.
	KindLink Kind = "jti"
	// KindSubject revokes every link issued and every session started
	// before Revocation.At for one subject (the token's sub).
	KindSubject Kind = "sub"
	// KindSession revokes one session by its id (sign-out).
	KindSession Kind = "session"
)

// A Revocation revokes the links or sessions matched by Kind and Value.
type Revocation struct {
	Kind  Kind
	Value string
	// At is the moment of the revocation.
	At time.Time
	// Until is when the revocation can no longer matter and may be dropped.
	Until time.Time
}

// An Event is what Subscribe delivers: a revocation, or a request to resync.
type Event struct {
	// Resync means revocations may have been missed: reload them all with
	// Revocations. Revocation is then zero.
	Resync     bool
	Revocation Revocation
}

// LinkStatus is the status of a link minted by the issuing API.
type LinkStatus string

// The statuses of a link.
const (
	StatusPending  LinkStatus = "pending"
	StatusAccepted LinkStatus = "accepted"
	StatusRevoked  LinkStatus = "revoked"
)

// A Link is the record the issuing API keeps for each link it mints.
type Link struct {
	ID        string
	UserID    string
	Status    LinkStatus
	CreatedAt time.Time
	UpdatedAt time.Time
	// ExpiresAt is the link's expiry; the record is dropped then.
	ExpiresAt time.Time
}

// validate reports an error for a revocation no store should record.
func (r Revocation) validate() error {
	switch r.Kind {
	case KindLink, KindSubject, KindSession:
	default:
		return errors.New("store: unknown revocation kind " + string(r.Kind))
	}
	if r.Value == "" {
		return errors.New("store: empty revocation value")
	}
	return nil
}

// validate reports an error for a link record no store should keep.
func (l Link) validate() error {
	if l.ID == "" {
		return errors.New("store: empty link id")
	}
	switch l.Status {
	case StatusPending, StatusAccepted, StatusRevoked:
		return nil
	}
	return errors.New("store: unknown link status " + string(l.Status))
}

// transition returns l moved to status s at the moment at, following the
// rule of SetLinkStatus (revoked is final, a status already held keeps its
// UpdatedAt), and whether anything changed.
func (l Link) transition(s LinkStatus, at time.Time) (Link, bool) {
	if l.Status == StatusRevoked || l.Status == s {
		return l, false
	}
	l.Status = s
	l.UpdatedAt = at
	return l, true
}

// checkUntil reports an error for a consumption that would expire at once
// and so could not be recorded.
func checkUntil(until time.Time) error {
	if !until.After(time.Now()) {
		return errors.New("store: a link cannot be consumed until a moment already past")
	}
	return nil
}

// checkTarget reports an error for a status SetLinkStatus cannot move to.
func checkTarget(s LinkStatus) error {
	if s != StatusAccepted && s != StatusRevoked {
		return errors.New("store: a link can only be set accepted or revoked, not " + string(s))
	}
	return nil
}

// ms is t in Unix milliseconds, the precision every store keeps.
func ms(t time.Time) int64 { return t.UnixMilli() }

// fromMS is the time of Unix milliseconds v.
func fromMS(v int64) time.Time { return time.UnixMilli(v) }
