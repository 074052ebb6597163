package caddymodule

import (
	"strings"
	"sync"
	"time"
)

// maxCachedSessions bounds the entries of a sessionCache.
const maxCachedSessions = 10000

// identity is an opened session with its strings boxed once for the placeholders, which take
// values of type any.
type identity struct {
	session
	user, email, name any
}

func newIdentity(s session) *identity {
	return &identity{session: s, user: s.Subject, email: s.Email, name: s.Name}
}

// sessionCache remembers the identities of session cookie values that opened, so that a cookie
// seen again costs a map lookup instead of a decryption. Only values that authenticated are
// stored, each still expires on time, and a full cache starts over. It is safe for concurrent use.
type sessionCache struct {
	codec *sessionCodec
	mu    sync.RWMutex
	m     map[string]*identity
}

func newSessionCache(codec *sessionCodec) *sessionCache {
	return &sessionCache{codec: codec, m: make(map[string]*identity)}
}

// open returns the identity of a session cookie value, as sessionCodec.open would.
func (c *sessionCache) open(value string, now time.Time) (*identity, error) {
	if id, err := c.cached(value, now); id != nil || err != nil {
		return id, err
	}
	return c.openNew(value, now)
}

// cached returns the identity of a session cookie value that opened before, or errSessionExpired
// when it has expired since; or nil and no error when the value is not in the cache.
func (c *sessionCache) cached(value string, now time.Time) (*identity, error) {
	c.mu.RLock()
	id := c.m[value]
	c.mu.RUnlock()
	if id != nil && !now.Before(id.Expiry) {
		return nil, errSessionExpired
	}
	return id, nil
}

// openNew opens a session cookie value that is not in the cache, as sessionCodec.open would, and
// caches its identity when it opens.
func (c *sessionCache) openNew(value string, now time.Time) (*identity, error) {
	s, err := c.codec.open(value, now)
	if err != nil {
		return nil, err
	}
	id := newIdentity(s)
	c.mu.Lock()
	if len(c.m) >= maxCachedSessions {
		c.m = make(map[string]*identity)
	}
	c.m[strings.Clone(value)] = id
	c.mu.Unlock()
	return id, nil
}
