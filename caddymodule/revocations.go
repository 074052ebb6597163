package caddymodule

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/magiclink-dev/magiclink/caddymodule/store"
)

// revocationList holds every revocation in memory, so that links and sessions are checked against
// it with no I/O. Reads take no lock; a list with nothing in it costs one atomic load. It is safe
// for concurrent use.
type revocationList struct {
	links    sync.Map // link id (jti) → *revoked
	sessions sync.Map // session id → *revoked
	subjects sync.Map // sub → *revoked, the latest revocation of the subject
	n        atomic.Int64

	mu sync.Mutex // serializes writers
}

// revoked is when one revocation was made and until when it matters.
type revoked struct {
	at, until time.Time
}

// kinds are the kinds of revocation the list holds.
var kinds = [...]store.Kind{store.KindLink, store.KindSession, store.KindSubject}

// mapOf returns the map of kind, or nil for an unknown kind.
func (l *revocationList) mapOf(kind store.Kind) *sync.Map {
	switch kind {
	case store.KindLink:
		return &l.links
	case store.KindSession:
		return &l.sessions
	case store.KindSubject:
		return &l.subjects
	}
	return nil
}

// count adds delta to the number of revocations held, which the revocations gauge shows.
func (l *revocationList) count(delta int64) {
	metrics.revocations.Set(float64(l.n.Add(delta)))
}

// empty reports whether the list holds no revocation.
func (l *revocationList) empty() bool { return l.n.Load() == 0 }

// len returns the number of revocations held.
func (l *revocationList) len() int { return int(l.n.Load()) }

// linkRevoked reports whether the link id, issued at issuedAt by subject sub, is revoked.
func (l *revocationList) linkRevoked(id, sub string, issuedAt time.Time) bool {
	if l.empty() {
		return false
	}
	if _, ok := l.links.Load(id); ok {
		return true
	}
	return l.subjectRevokedBefore(sub, issuedAt)
}

// sessionRevoked reports whether a session is revoked: by its own id (sign-out), by the link that
// opened it, or by a revocation of its subject after it started.
func (l *revocationList) sessionRevoked(s *session) bool {
	if l.empty() {
		return false
	}
	if s.ID != "" {
		if _, ok := l.sessions.Load(s.ID); ok {
			return true
		}
	}
	if s.LinkID != "" {
		if _, ok := l.links.Load(s.LinkID); ok {
			return true
		}
	}
	return l.subjectRevokedBefore(s.Subject, s.Start)
}

// subjectRevokedBefore reports whether sub was revoked after t (at the same second counts: a
// revocation ends what was issued up to its moment).
func (l *revocationList) subjectRevokedBefore(sub string, t time.Time) bool {
	v, ok := l.subjects.Load(sub)
	return ok && !t.After(v.(*revoked).at)
}

// add records r.
func (l *revocationList) add(r store.Revocation) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.addLocked(r)
}

// addLocked records r. l.mu must be held.
func (l *revocationList) addLocked(r store.Revocation) {
	m := l.mapOf(r.Kind)
	if m == nil {
		return
	}
	prev, loaded := m.Load(r.Value)
	if loaded {
		p := prev.(*revoked)
		// A subject's latest revocation decides; a link or session revoked again only lives longer.
		if r.Kind == store.KindSubject && !r.At.After(p.at) || r.Kind != store.KindSubject && !r.Until.After(p.until) {
			return
		}
	}
	m.Store(r.Value, &revoked{at: r.At, until: r.Until})
	if !loaded {
		l.count(1)
	}
}

// replace makes the list hold exactly all, as after a full resync.
func (l *revocationList) replace(all []store.Revocation) {
	l.mu.Lock()
	defer l.mu.Unlock()
	keep := map[store.Kind]map[string]bool{store.KindLink: {}, store.KindSession: {}, store.KindSubject: {}}
	for _, r := range all {
		if k := keep[r.Kind]; k != nil {
			k[r.Value] = true
		}
		l.addLocked(r)
	}
	l.deleteIf(func(kind store.Kind, value string, _ time.Time) bool { return !keep[kind][value] })
}

// sweep drops the revocations that no longer matter at now.
func (l *revocationList) sweep(now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.deleteIf(func(_ store.Kind, _ string, until time.Time) bool { return !now.Before(until) })
}

// deleteIf deletes the entries drop reports true for. l.mu must be held.
func (l *revocationList) deleteIf(drop func(kind store.Kind, value string, until time.Time) bool) {
	for _, kind := range kinds {
		m := l.mapOf(kind)
		m.Range(func(k, v any) bool {
			if drop(kind, k.(string), v.(*revoked).until) {
				m.Delete(k)
				l.count(-1)
			}
			return true
		})
	}
}

// list returns every revocation held, for the admin API.
func (l *revocationList) list() []store.Revocation {
	out := make([]store.Revocation, 0, l.len())
	for _, kind := range kinds {
		l.mapOf(kind).Range(func(k, v any) bool {
			r := v.(*revoked)
			out = append(out, store.Revocation{Kind: kind, Value: k.(string), At: r.at, Until: r.until})
			return true
		})
	}
	return out
}
