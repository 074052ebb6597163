package store

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// RedisOptions says which Redis a RedisStore uses: either URL, or Addresses
// with MasterName for Sentinel or Cluster for a Redis Cluster.
type RedisOptions struct {
	// URL is a redis://, rediss:// (TLS) or unix:// URL, which may carry
	// the username, password and database. When set, the fields up to TLS
	// must be left empty.
	URL string

	// Addresses are host:port pairs: of the one server, of the Sentinels
	// (with MasterName) or of some Cluster nodes (with Cluster).
	Addresses  []string
	MasterName string
	Cluster    bool
	Username   string
	Password   string
	DB         int
	// TLS, when set, makes every connection use TLS with this config.
	TLS *tls.Config

	// KeyPrefix starts every key and the pub/sub channel; default
	// "magic_link:".
	KeyPrefix string
	// Timeout bounds each operation, retries included; default 2s.
	Timeout time.Duration
}

// Defaults of RedisOptions.
const (
	DefaultKeyPrefix = "magic_link:"
	DefaultTimeout   = 2 * time.Second
)

// RedisStore is a Store in Redis, shared by every instance that uses the
// same Redis and key prefix. It connects lazily: OpenRedis never contacts
// Redis, each operation fails with ErrUnavailable while Redis cannot be
// reached and works again by itself when it can.
//
// Keys, after the prefix: used:<link id> (a string per consumed link),
// link:<id> (a hash per issued link), revocations (one sorted set scored by
// Until); revocations are announced on the channel <prefix>revocations with
// PUBLISH, which a Redis Cluster delivers to subscribers on every node.
type RedisStore struct {
	client  redis.UniversalClient
	prefix  string
	timeout time.Duration

	mu     sync.Mutex
	subs   map[*redisSub]struct{}
	closed bool

	batches chan *batch   // commands waiting for the batcher
	quit    chan struct{} // closed by Close: the batcher stops
	stopped chan struct{} // closed when the batcher has stopped
}

var _ Store = (*RedisStore)(nil)

// maxBatch bounds the commands the batcher sends in one pipeline.
const maxBatch = 64

// A batch is the commands of one caller: queue adds them to a pipeline, done is closed once the
// pipeline has run (their results are then in the commands queue made), or once the batcher has
// dropped the batch because its caller had given up (ctx ended) before it was sent: then sent is
// false.
type batch struct {
	ctx   context.Context
	queue func(ctx context.Context, p redis.Pipeliner)
	sent  bool
	done  chan struct{}
}

// OpenRedis returns a RedisStore for opts. It fails only for options that
// make no sense; it does not contact Redis.
func OpenRedis(opts RedisOptions) (*RedisStore, error) {
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	if opts.KeyPrefix == "" {
		opts.KeyPrefix = DefaultKeyPrefix
	}
	client, err := newRedisClient(opts)
	if err != nil {
		return nil, err
	}
	s := &RedisStore{
		client: client, prefix: opts.KeyPrefix, timeout: opts.Timeout,
		batches: make(chan *batch, maxBatch), quit: make(chan struct{}), stopped: make(chan struct{}),
	}
	go s.batcher()
	return s, nil
}

// pipelined runs the commands queue adds in the batcher's next pipeline, together with those of
// concurrent callers: under load, many one-time redemptions cost one write to Redis and one read
// instead of one each (on loopback, the system calls are most of a command's cost). A lone caller
// is sent at once. It returns the batch when the pipeline has run, or with ctx's error or
// ErrUnavailable when the store is closed. When ctx ends first, the commands are dropped if they
// were not sent yet; if they were, they may still run, as a command whose reply was lost does:
// the batch's done tells when that is settled.
func (s *RedisStore) pipelined(ctx context.Context, queue func(ctx context.Context, p redis.Pipeliner)) (*batch, error) {
	b := &batch{ctx: ctx, queue: queue, done: make(chan struct{})}
	select {
	case s.batches <- b:
	case <-s.quit:
		return nil, fmt.Errorf("%w: closed", ErrUnavailable)
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	select {
	case <-b.done:
		return b, nil
	case <-ctx.Done():
		return b, ctx.Err()
	}
}

// batcher sends the waiting batches as pipelines, one at a time, until Close. A batch whose
// caller has given up while it waited (during an outage, the pipeline before it can take the
// whole timeout) is dropped, not sent: its caller has answered that nothing happened.
func (s *RedisStore) batcher() {
	defer close(s.stopped)
	pending := make([]*batch, 0, maxBatch)
	for {
		select {
		case b := <-s.batches:
			pending = append(pending[:0], b)
		case <-s.quit:
			return
		}
		pending = s.takeWaiting(pending)
		if len(pending) < maxBatch {
			// Under load, handlers about to queue their commands are runnable: yielding once
			// lets them, and the pipeline carries more commands per write to Redis (a third
			// fewer system calls on both sides). With nothing else runnable, Gosched returns at
			// once: a lone caller does not wait.
			runtime.Gosched()
			pending = s.takeWaiting(pending)
		}
		ctx, cancel := context.WithTimeout(context.Background(), s.timeout)
		p := s.client.Pipeline()
		for _, b := range pending {
			if b.ctx.Err() == nil {
				b.queue(ctx, p)
				b.sent = true
			}
		}
		if p.Len() > 0 {
			_, _ = p.Exec(ctx) // each caller reads the outcome of its own commands
		}
		cancel()
		for _, b := range pending {
			close(b.done)
		}
	}
}

// takeWaiting appends the batches already waiting to pending, up to maxBatch in all.
func (s *RedisStore) takeWaiting(pending []*batch) []*batch {
	for len(pending) < maxBatch {
		select {
		case b := <-s.batches:
			pending = append(pending, b)
		default:
			return pending
		}
	}
	return pending
}

func newRedisClient(o RedisOptions) (redis.UniversalClient, error) {
	if o.URL != "" {
		if len(o.Addresses) > 0 || o.MasterName != "" || o.Cluster || o.Username != "" || o.Password != "" || o.DB != 0 || o.TLS != nil {
			return nil, errors.New("store: a Redis URL cannot be combined with addresses, master_name, cluster, username, password, db or tls")
		}
		opt, err := redis.ParseURL(o.URL)
		if err != nil {
			// A url.Error repeats the URL, password included.
			if ue := (*url.Error)(nil); errors.As(err, &ue) {
				err = ue.Err
			}
			return nil, fmt.Errorf("store: invalid Redis URL: %w", err)
		}
		opt.DialTimeout, opt.ReadTimeout, opt.WriteTimeout = o.Timeout, o.Timeout, o.Timeout
		opt.ContextTimeoutEnabled = true
		return redis.NewClient(opt), nil
	}
	switch {
	case len(o.Addresses) == 0:
		return nil, errors.New("store: Redis needs a URL or addresses")
	case o.MasterName != "" && o.Cluster:
		return nil, errors.New("store: Redis master_name (Sentinel) and cluster exclude each other")
	case o.MasterName == "" && !o.Cluster && len(o.Addresses) > 1:
		return nil, errors.New("store: several Redis addresses need master_name (Sentinel) or cluster")
	case o.Cluster && o.DB != 0:
		return nil, errors.New("store: a Redis Cluster has only db 0")
	}
	return redis.NewUniversalClient(&redis.UniversalOptions{
		Addrs:                 o.Addresses,
		MasterName:            o.MasterName,
		IsClusterMode:         o.Cluster,
		Username:              o.Username,
		Password:              o.Password,
		DB:                    o.DB,
		TLSConfig:             o.TLS,
		DialTimeout:           o.Timeout,
		ReadTimeout:           o.Timeout,
		WriteTimeout:          o.Timeout,
		ContextTimeoutEnabled: true,
	}), nil
}

// Consume implements Store with one SET key value NX EXAT until (PXAT when
// until has milliseconds). The value is random per call, so when the SET
// finds the key taken a GET tells a first use whose reply was lost and
// retried by go-redis (the value is ours) from a second use; and when the
// call fails after its SET was sent (a timeout, a lost reply), the record is
// deleted if it holds that value, once the SET has run.
func (s *RedisStore) Consume(ctx context.Context, linkID string, until time.Time) (first bool, err error) {
	if err := checkUntil(until); err != nil {
		return false, err
	}
	octx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	key := s.prefix + "used:" + linkID
	// The value is the moment of the use and a random text of this call, so that a retry of a
	// SET that did happen can tell its own record from another caller's.
	value := strconv.FormatInt(ms(time.Now()), 10) + ":" + rand.Text()
	var set *redis.StatusCmd
	b, err := s.pipelined(octx, func(ctx context.Context, p redis.Pipeliner) {
		set = p.SetArgs(ctx, key, value, redis.SetArgs{Mode: "NX", ExpireAt: until.Truncate(time.Millisecond)})
	})
	if b != nil {
		defer func() {
			if err != nil {
				// The caller answers that the link was not used: if the SET was sent,
				// take back whatever it recorded once it has run, so that a retry of the
				// link works.
				go s.undoConsume(b, func() error { return set.Err() }, key, value, until)
			}
		}()
	}
	if err == nil {
		err = set.Err()
	}
	if err == nil {
		return true, nil
	}
	if !errors.Is(err, redis.Nil) {
		return false, s.fail(ctx, err)
	}
	held, err := s.client.Get(octx, key).Result()
	switch {
	case errors.Is(err, redis.Nil):
		// Taken, then expired: whoever took it was not this call.
		return false, nil
	case err != nil:
		return false, s.fail(ctx, err)
	}
	return held == value, nil
}

// undoFor bounds how long undoConsume keeps trying while Redis is unreachable.
const undoFor = time.Minute

// undoConsume deletes the use record key holds if it is value, once the batch b that sent the
// SET has run (setErr then returns the SET's error): at once, or as soon as Redis answers again (for at most undoFor, and not past until, when
// the record expires anyway). Nothing is done for a SET that was never sent: dropped by the
// batcher, or failed to dial. The link stays used if Redis does not come back in time, or the
// store closes; that opens no session.
func (s *RedisStore) undoConsume(b *batch, setErr func() error, key, value string, until time.Time) {
	select {
	case <-b.done:
	case <-s.quit:
		return
	}
	var op *net.OpError
	if !b.sent || errors.As(setErr(), &op) && op.Op == "dial" {
		return
	}
	deadline := time.Now().Add(undoFor)
	if until.Before(deadline) {
		deadline = until
	}
	for pause := 100 * time.Millisecond; ; pause = min(2*pause, 2*time.Second) {
		ctx, cancel := context.WithTimeout(context.Background(), s.timeout)
		// EVAL, not EVALSHA: it runs even when its reply is late.
		err := undoConsumeScript.Eval(ctx, s.client, []string{key}, value).Err()
		cancel()
		if err == nil || !errors.Is(s.fail(context.Background(), err), ErrUnavailable) || time.Now().Add(pause).After(deadline) {
			return
		}
		select {
		case <-time.After(pause):
		case <-s.quit:
			return
		}
	}
}

// undoConsumeScript deletes KEYS[1] when it holds ARGV[1].
var undoConsumeScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then
	return redis.call('DEL', KEYS[1])
end
return 0
`)

// UsedAt implements Store.
func (s *RedisStore) UsedAt(ctx context.Context, linkID string) (time.Time, bool, error) {
	octx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	v, err := s.client.Get(octx, s.prefix+"used:"+linkID).Result()
	switch {
	case errors.Is(err, redis.Nil):
		return time.Time{}, false, nil
	case err != nil:
		return time.Time{}, false, s.fail(ctx, err)
	}
	at, _, _ := strings.Cut(v, ":")
	n, err := strconv.ParseInt(at, 10, 64)
	if err != nil {
		return time.Time{}, false, fmt.Errorf("store: the use record of a link is malformed")
	}
	return fromMS(n), true, nil
}

// wireRevocation is a Revocation as a sorted-set member (without Until, the
// member's score) and as a pub/sub message (with it).
type wireRevocation struct {
	Kind  Kind   `json:"k"`
	Value string `json:"v"`
	At    int64  `json:"a"`
	Until int64  `json:"u,omitempty"`
}

// Revoke implements Store: one transaction drops the expired revocations,
// adds r and publishes it, so that r is never stored without being announced.
func (s *RedisStore) Revoke(ctx context.Context, r Revocation) error {
	if err := r.validate(); err != nil {
		return err
	}
	octx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	w := wireRevocation{Kind: r.Kind, Value: r.Value, At: ms(r.At)}
	member, err := json.Marshal(w)
	if err != nil {
		return err
	}
	w.Until = ms(r.Until)
	message, err := json.Marshal(w)
	if err != nil {
		return err
	}
	key := s.prefix + "revocations"
	_, err = s.client.TxPipelined(octx, func(p redis.Pipeliner) error {
		p.ZRemRangeByScore(octx, key, "-inf", strconv.FormatInt(ms(time.Now()), 10))
		p.ZAdd(octx, key, redis.Z{Score: float64(w.Until), Member: member})
		p.Publish(octx, key, message)
		return nil
	})
	return s.fail(ctx, err)
}

// Revocations implements Store with one ZRANGEBYSCORE.
func (s *RedisStore) Revocations(ctx context.Context) ([]Revocation, error) {
	octx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	zs, err := s.client.ZRangeByScoreWithScores(octx, s.prefix+"revocations", &redis.ZRangeBy{
		Min: "(" + strconv.FormatInt(ms(time.Now()), 10),
		Max: "+inf",
	}).Result()
	if err != nil {
		return nil, s.fail(ctx, err)
	}
	list := make([]Revocation, 0, len(zs))
	for _, z := range zs {
		member, _ := z.Member.(string)
		var w wireRevocation
		if err := json.Unmarshal([]byte(member), &w); err != nil {
			return nil, fmt.Errorf("store: corrupt revocation in Redis: %w", err)
		}
		list = append(list, Revocation{Kind: w.Kind, Value: w.Value, At: fromMS(w.At), Until: fromMS(int64(z.Score))})
	}
	return list, nil
}

// redisSub is one subscription of a RedisStore.
type redisSub struct {
	ps       *redis.PubSub
	done     chan struct{} // closed by stop
	finished chan struct{} // closed when fn will not be called again
}

// Subscribe implements Store. Events arrive on a goroutine of the store;
// a Resync comes each time the subscription is (re)established, including
// the first time, so while Redis is unreachable no event comes at all. A
// connection that stops answering is noticed by a ping every second.
func (s *RedisStore) Subscribe(fn func(Event)) (stop func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return func() {}
	}
	channel := s.prefix + "revocations"
	sub := &redisSub{
		ps:       s.client.Subscribe(context.Background()),
		done:     make(chan struct{}),
		finished: make(chan struct{}),
	}
	if s.subs == nil {
		s.subs = make(map[*redisSub]struct{})
	}
	s.subs[sub] = struct{}{}
	go func() {
		defer close(sub.finished)
		// Subscribe records the channel even when Redis cannot be reached;
		// the receiving loop then connects and subscribes again.
		ctx, cancel := context.WithTimeout(context.Background(), s.timeout)
		_ = sub.ps.Subscribe(ctx, channel)
		cancel()
		ch := sub.ps.ChannelWithSubscriptions(
			redis.WithChannelSize(1024),
			redis.WithChannelHealthCheckInterval(time.Second),
			redis.WithChannelPingTimeout(s.timeout),
			redis.WithChannelReconnectTimeout(s.timeout),
		)
		for {
			var m any
			select {
			case <-sub.done:
				return
			case m = <-ch:
			}
			select {
			case <-sub.done:
				return
			default:
			}
			switch m := m.(type) {
			case nil:
				return
			case *redis.Subscription:
				if m.Kind == "subscribe" {
					fn(Event{Resync: true})
				}
			case *redis.Message:
				var w wireRevocation
				if err := json.Unmarshal([]byte(m.Payload), &w); err != nil {
					// Not ours to read: reload rather than miss anything.
					fn(Event{Resync: true})
					continue
				}
				fn(Event{Revocation: Revocation{Kind: w.Kind, Value: w.Value, At: fromMS(w.At), Until: fromMS(w.Until)}})
			}
		}
	}()
	return func() { s.unsubscribe(sub) }
}

func (s *RedisStore) unsubscribe(sub *redisSub) {
	s.mu.Lock()
	_, ok := s.subs[sub]
	delete(s.subs, sub)
	s.mu.Unlock()
	if ok {
		close(sub.done)
		_ = sub.ps.Close()
	}
	<-sub.finished
}

// PutLink implements Store: one transaction replaces the hash and sets its
// expiry.
func (s *RedisStore) PutLink(ctx context.Context, l Link) error {
	if err := l.validate(); err != nil {
		return err
	}
	octx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	key := s.prefix + "link:" + l.ID
	var put *redis.Cmd
	_, err := s.pipelined(octx, func(ctx context.Context, p redis.Pipeliner) {
		put = putLinkScript.Eval(ctx, p, []string{key}, l.UserID, string(l.Status), ms(l.CreatedAt), ms(l.UpdatedAt),
			ms(l.ExpiresAt))
	})
	if err == nil {
		err = put.Err()
	}
	if errors.Is(err, redis.Nil) {
		err = nil
	}
	return s.fail(ctx, err)
}

// putLinkScript replaces the hash of a link record and sets its expiry, in one step: ARGV holds the
// user id, the status, and the creation, update and expiry moments in Unix milliseconds.
var putLinkScript = redis.NewScript(`
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'u', ARGV[1], 's', ARGV[2], 'c', ARGV[3], 'm', ARGV[4], 'e', ARGV[5])
redis.call('PEXPIREAT', KEYS[1], ARGV[5])
return 1
`)

// GetLink implements Store with one HGETALL.
func (s *RedisStore) GetLink(ctx context.Context, id string) (Link, error) {
	octx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	h, err := s.client.HGetAll(octx, s.prefix+"link:"+id).Result()
	if err != nil {
		return Link{}, s.fail(ctx, err)
	}
	return parseLink(id, h)
}

// setLinkStatus is SetLinkStatus in one step: ARGV[1] is the status,
// ARGV[2] the moment; it answers nil for an unknown link, else the hash.
// It keeps the rule of Link.transition.
var setLinkStatus = redis.NewScript(`
local s = redis.call('HGET', KEYS[1], 's')
if not s then return nil end
if s ~= 'revoked' and s ~= ARGV[1] then
	redis.call('HSET', KEYS[1], 's', ARGV[1], 'm', ARGV[2])
end
return redis.call('HGETALL', KEYS[1])
`)

// SetLinkStatus implements Store with one script.
func (s *RedisStore) SetLinkStatus(ctx context.Context, id string, st LinkStatus, at time.Time) (Link, error) {
	if err := checkTarget(st); err != nil {
		return Link{}, err
	}
	octx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	flat, err := setLinkStatus.Run(octx, s.client, []string{s.prefix + "link:" + id}, string(st), ms(at)).StringSlice()
	if errors.Is(err, redis.Nil) {
		return Link{}, ErrNotFound
	}
	if err != nil {
		return Link{}, s.fail(ctx, err)
	}
	h := make(map[string]string, len(flat)/2)
	for i := 0; i+1 < len(flat); i += 2 {
		h[flat[i]] = flat[i+1]
	}
	return parseLink(id, h)
}

func parseLink(id string, h map[string]string) (Link, error) {
	if len(h) == 0 {
		return Link{}, ErrNotFound
	}
	var t [3]int64
	for i, f := range []string{"c", "m", "e"} {
		v, err := strconv.ParseInt(h[f], 10, 64)
		if err != nil {
			return Link{}, fmt.Errorf("store: corrupt link record in Redis: %w", err)
		}
		t[i] = v
	}
	return Link{
		ID:        id,
		UserID:    h["u"],
		Status:    LinkStatus(h["s"]),
		CreatedAt: fromMS(t[0]),
		UpdatedAt: fromMS(t[1]),
		ExpiresAt: fromMS(t[2]),
	}, nil
}

// Close implements Store: it ends the subscriptions, then closes the
// connections.
func (s *RedisStore) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	subs := make([]*redisSub, 0, len(s.subs))
	for sub := range s.subs {
		subs = append(subs, sub)
	}
	s.mu.Unlock()
	for _, sub := range subs {
		s.unsubscribe(sub)
	}
	close(s.quit)
	<-s.stopped
	return s.client.Close()
}

// fail wraps the error of an operation called with ctx: ErrUnavailable for
// anything that says Redis could not be reached or answer in time, the
// caller's own cancellation as such, Redis's refusals as plain errors.
func (s *RedisStore) fail(ctx context.Context, err error) error {
	switch {
	case err == nil:
		return nil
	case ctx.Err() != nil:
		return fmt.Errorf("store: %w", ctx.Err())
	}
	var rerr redis.Error
	if errors.As(err, &rerr) && !redis.IsLoadingError(err) && !redis.IsReadOnlyError(err) &&
		!redis.IsClusterDownError(err) && !redis.IsTryAgainError(err) && !redis.IsMasterDownError(err) &&
		!redis.IsMaxClientsError(err) && !redis.IsNoReplicasError(err) {
		return fmt.Errorf("store: redis: %w", err)
	}
	return fmt.Errorf("%w: %w", ErrUnavailable, err)
}
