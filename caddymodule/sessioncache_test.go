package caddymodule

import (
	"errors"
	"strconv"
	"sync"
	"testing"
)

func TestSessionCache(t *testing.T) {
	c := mustCodec(t, "https://shop.example", testSecretA)
	cache := newSessionCache(c)
	s := testSession()
	value := mustSeal(t, c, s)

	first, err := cache.open(value, testNow)
	if err != nil || !sameSession(first.session, s) {
		t.Fatalf("open = %+v, %v; want the sealed session", first, err)
	}
	if first.user != s.Subject || first.email != s.Email || first.name != s.Name {
		t.Errorf("placeholder values = %v, %v, %v; want the session's strings", first.user, first.email, first.name)
	}
	again, err := cache.open(value, testNow)
	if err != nil || again != first {
		t.Errorf("second open = %p, %v; want the cached identity %p", again, err, first)
	}
	if _, err := cache.open(value, s.Expiry); !errors.Is(err, errSessionExpired) {
		t.Errorf("open at the expiry of a cached session: error %v, want errSessionExpired", err)
	}

	tampered := []byte(value)
	tampered[len(tampered)-3] ^= 'A' ^ 'B'
	for _, v := range []string{string(tampered), value + "A", ""} {
		if id, err := cache.open(v, testNow); err == nil {
			t.Errorf("open(%q) = %+v, want an error", v, id)
		}
	}
	if len(cache.m) != 1 {
		t.Errorf("cache holds %d entries, want only the one that opened", len(cache.m))
	}
}

func TestSessionCacheIsBounded(t *testing.T) {
	c := mustCodec(t, "https://shop.example", testSecretA)
	cache := newSessionCache(c)
	s := testSession()
	for i := range maxCachedSessions + 10 {
		s.LinkID = strconv.Itoa(i)
		if _, err := cache.open(mustSeal(t, c, s), testNow); err != nil {
			t.Fatal(err)
		}
		if len(cache.m) > maxCachedSessions {
			t.Fatalf("cache holds %d entries, more than %d", len(cache.m), maxCachedSessions)
		}
	}
}

func TestSessionCacheConcurrent(t *testing.T) {
	c := mustCodec(t, "https://shop.example", testSecretA)
	cache := newSessionCache(c)
	values := make([]string, 50)
	s := testSession()
	for i := range values {
		s.LinkID = strconv.Itoa(i)
		values[i] = mustSeal(t, c, s)
	}
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 200 {
				v := values[(i*7+g)%len(values)]
				if id, err := cache.open(v, testNow); err != nil || id.Subject != s.Subject {
					t.Errorf("open = %+v, %v", id, err)
					return
				}
			}
		})
	}
	wg.Wait()
}

func BenchmarkSessionCacheHit(b *testing.B) {
	c := mustCodec(b, "https://shop.example", testSecretA)
	cache := newSessionCache(c)
	value := mustSeal(b, c, testSession())
	now := testNow
	if _, err := cache.open(value, now); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := cache.open(value, now); err != nil {
			b.Fatal(err)
		}
	}
}
