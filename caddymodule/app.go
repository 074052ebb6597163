package caddymodule

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"github.com/caddyserver/caddy/v2"

	"github.com/magiclink-dev/magiclink/caddymodule/store"
	"github.com/magiclink-dev/magiclink/token"
)

func init() {
	caddy.RegisterModule(App{})
}

// Values of StoreConfig.Type.
const (
	StoreFile  = "file"
	StoreRedis = "redis"
)

// Defaults of the app's fields.
const (
	DefaultKeyPrefix    = store.DefaultKeyPrefix
	DefaultStoreTimeout = store.DefaultTimeout
)

// How the in-memory revocation list follows the store.
const (
	resyncInterval = 30 * time.Second // a full reload, even when no message was missed
	retryInterval  = time.Second      // the next try after a failed reload
	sweepInterval  = time.Minute      // dropping revocations that no longer matter
)

// App is the Caddy app magic_link: the state that one-time links, revocation and sign-out need,
// shared by every magic_link handler of the process (and, with a Redis store, by every instance
// pointed at the same Redis). It holds the store and the in-memory list of revocations that
// sessions are checked against without I/O. A config reload keeps the same store connection and
// the same list. A site that uses none of this never loads the app and never opens a store.
type App struct {
	// Store says where the state is kept. The default is a file under Caddy's data directory
	// (magic_link/state.db), for one Caddy process.
	Store *StoreConfig `json:"store,omitempty"`

	// KeyPrefix starts every key the Redis store writes, and its pub/sub channel. The default is
	// magic_link:.
	KeyPrefix string `json:"key_prefix,omitempty"`

	// Timeout bounds each store operation, retries included. The default is 2s.
	Timeout caddy.Duration `json:"timeout,omitempty"`

	state  *appState
	key    string // this configuration's key in states
	logger *zap.Logger

	mu      *sync.Mutex
	horizon time.Duration // the longest max_link_age + session_ttl of the handlers using the app
}

// StoreConfig says which store the app uses.
type StoreConfig struct {
	// Type is file (the default) or redis.
	Type string `json:"type,omitempty"`

	// Path is the file of the file store. The default is magic_link/state.db under Caddy's data
	// directory.
	Path string `json:"path,omitempty"`

	// URL is the Redis server of the redis store: redis://, rediss:// (TLS) or unix://.
	// Placeholders such as {env.REDIS_URL} are expanded. Use either URL or Addresses.
	URL string `json:"url,omitempty"`

	// Addresses are the host:port of the Redis server, of the Sentinels (with MasterName) or of
	// some Cluster nodes (with Cluster).
	Addresses []string `json:"addresses,omitempty"`

	// MasterName is the name of the master the Sentinels at Addresses watch.
	MasterName string `json:"master_name,omitempty"`

	// Cluster says that Addresses are nodes of a Redis Cluster.
	Cluster bool `json:"cluster,omitempty"`

	// Username and Password authenticate to Redis; placeholders are expanded.
	Username string `json:"username,omitempty"`
	Password string `json:"password,omitempty"`

	// DB is the Redis database number (not with Cluster).
	DB int `json:"db,omitempty"`

	// TLS makes the connections to Addresses use TLS.
	TLS bool `json:"tls,omitempty"`
}

// CaddyModule returns the Caddy module information.
func (App) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "magic_link",
		New: func() caddy.Module { return new(App) },
	}
}

// states holds the open stores and their revocation lists by configuration, so that a config
// reload with the same store reuses them.
var states = caddy.NewUsagePool()

// Provision checks the configuration and opens the store, or takes the one already open for the
// same configuration.
func (a *App) Provision(ctx caddy.Context) error {
	a.logger = ctx.Logger()
	if err := registerMetrics(ctx.GetMetricsRegistry()); err != nil {
		return fmt.Errorf("metrics: %w", err)
	}
	a.mu = new(sync.Mutex)
	a.setDefaults()
	if err := a.Validate(); err != nil {
		return err
	}
	repl := caddy.NewReplacer()
	cfg := *a.Store
	cfg.URL = repl.ReplaceKnown(cfg.URL, "")
	cfg.Username = repl.ReplaceKnown(cfg.Username, "")
	cfg.Password = repl.ReplaceKnown(cfg.Password, "")
	a.key = fmt.Sprintf("%#v %q %d", cfg, a.KeyPrefix, a.Timeout)
	if cfg.Type == StoreFile {
		path, err := filepath.Abs(cfg.Path)
		if err != nil {
			return fmt.Errorf("store file %s: %w", cfg.Path, err)
		}
		cfg.Path = path
		// One process opens the file once: a reload that changes another setting keeps it open.
		a.key = "file " + path
	}
	logger := caddy.Log().Named("magic_link")
	v, _, err := states.LoadOrNew(a.key, func() (caddy.Destructor, error) {
		st, err := openStore(cfg, a.KeyPrefix, time.Duration(a.Timeout), logger)
		if err != nil {
			return nil, err
		}
		return newAppState(st, time.Duration(a.Timeout), logger), nil
	})
	if err != nil {
		return fmt.Errorf("store: %w", err)
	}
	a.state = v.(*appState)
	return nil
}

// setDefaults fills in every empty field that has a default.
func (a *App) setDefaults() {
	if a.Store == nil {
		a.Store = new(StoreConfig)
	}
	if a.Store.Type == "" {
		a.Store.Type = StoreFile
	}
	if a.Store.Type == StoreFile && a.Store.Path == "" {
		a.Store.Path = defaultStorePath()
	}
	if a.KeyPrefix == "" {
		a.KeyPrefix = DefaultKeyPrefix
	}
	if a.Timeout == 0 {
		a.Timeout = caddy.Duration(DefaultStoreTimeout)
	}
}

// defaultStorePath is the file store's default: magic_link/state.db under Caddy's data directory.
func defaultStorePath() string {
	return filepath.Join(caddy.AppDataDir(), "magic_link", "state.db")
}

// Validate checks the configuration for mistakes.
func (a *App) Validate() error {
	if a.Timeout < 0 {
		return fmt.Errorf("timeout %s: must be positive", time.Duration(a.Timeout))
	}
	s := a.Store
	if s == nil {
		return nil
	}
	switch s.Type {
	case "", StoreFile:
		if s.URL != "" || len(s.Addresses) > 0 || s.MasterName != "" || s.Cluster || s.Username != "" ||
			s.Password != "" || s.DB != 0 || s.TLS {
			return errors.New("store file: takes only a path; the other store options are for store redis")
		}
	case StoreRedis:
		if s.Path != "" {
			return errors.New("store redis: path is for store file")
		}
		if (s.URL == "") == (len(s.Addresses) == 0) {
			return errors.New("store redis: give either a URL (redis://, rediss://, unix://) or addresses")
		}
		if s.URL != "" && (s.MasterName != "" || s.Cluster || s.Username != "" || s.Password != "" || s.DB != 0 || s.TLS) {
			return errors.New("store redis: with a URL, put the username, password, database and TLS in the URL")
		}
		if s.Cluster && (s.MasterName != "" || s.DB != 0) {
			return errors.New("store redis: a cluster has no master_name and no db")
		}
		if s.DB < 0 {
			return fmt.Errorf("store redis: db %d: must not be negative", s.DB)
		}
	default:
		return fmt.Errorf("store %q: use file or redis", s.Type)
	}
	return nil
}

// use records that a handler with these settings relies on the app, so that revocations are kept
// as long as they can matter to it.
func (a *App) use(maxLinkAge, sessionTTL time.Duration) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.horizon = max(a.horizon, maxLinkAge+sessionTTL)
}

// revocationLifetime is how long a revocation made now can matter: a link issued just before it
// lives max_link_age, and a session it opened session_ttl after that.
func (a *App) revocationLifetime() time.Duration {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.horizon == 0 {
		return token.DefaultMaxLinkAge + DefaultSessionTTL
	}
	return a.horizon
}

// Start implements caddy.App; the store is already open.
func (a *App) Start() error { return nil }

// Stop implements caddy.App; the store is closed by Cleanup once no configuration uses it.
func (a *App) Stop() error { return nil }

// Cleanup releases this configuration's use of the store.
func (a *App) Cleanup() error {
	if a.key == "" {
		return nil
	}
	_, err := states.Delete(a.key)
	return err
}

// openStore opens the store cfg describes.
func openStore(cfg StoreConfig, prefix string, timeout time.Duration, logger *zap.Logger) (store.Store, error) {
	if cfg.Type == StoreFile {
		return store.OpenFile(cfg.Path, store.FileOptions{
			SweepError: func(err error) { logger.Error("sweeping expired records", zap.Error(err)) },
		})
	}
	routeRedisLog.Do(func() { redis.SetLogger(redisLogger{}) })
	opts := store.RedisOptions{
		URL:        cfg.URL,
		Addresses:  cfg.Addresses,
		MasterName: cfg.MasterName,
		Cluster:    cfg.Cluster,
		Username:   cfg.Username,
		Password:   cfg.Password,
		DB:         cfg.DB,
		KeyPrefix:  prefix,
		Timeout:    timeout,
	}
	if cfg.TLS {
		opts.TLS = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	return store.OpenRedis(opts)
}

// routeRedisLog points the Redis client's own log at Caddy's, once a Redis store is opened.
var routeRedisLog sync.Once

// redisLogger writes what the Redis client logs by itself (failed dials, lost pub/sub connections)
// to Caddy's log, not to standard error. The client's logger is global: it is set only when a
// Redis store is used.
type redisLogger struct{}

// Printf implements the Redis client's logging interface.
func (redisLogger) Printf(_ context.Context, format string, v ...any) {
	caddy.Log().Named("magic_link.redis").Warn(strings.TrimSpace(fmt.Sprintf(format, v...)))
}

// appState is an open store with the revocation list that follows it. It outlives config reloads
// (see states).
type appState struct {
	store       store.Store
	revocations revocationList
	timeout     time.Duration
	logger      *zap.Logger

	synced  atomic.Int64 // Unix nanoseconds of the last full reload that succeeded; 0 before it
	warned  time.Time    // when the last failed reload was logged; zero once one succeeds (follow's goroutine only)
	resync  chan struct{}
	quit    chan struct{}
	done    chan struct{}
	stopSub func()
}

// newAppState starts following the revocations of st.
func newAppState(st store.Store, timeout time.Duration, logger *zap.Logger) *appState {
	s := &appState{
		store:   st,
		timeout: timeout,
		logger:  logger,
		resync:  make(chan struct{}, 1),
		quit:    make(chan struct{}),
		done:    make(chan struct{}),
	}
	s.stopSub = st.Subscribe(s.event)
	go s.follow()
	return s
}

// event takes a message of the store's subscription.
func (s *appState) event(ev store.Event) {
	if ev.Resync {
		select {
		case s.resync <- struct{}{}:
		default:
		}
		return
	}
	s.revocations.add(ev.Revocation)
}

// follow reloads the whole list when the subscription asks, periodically, and sooner after a
// failure; it drops revocations that no longer matter.
func (s *appState) follow() {
	defer close(s.done)
	reload := time.NewTimer(resyncInterval)
	defer reload.Stop()
	sweep := time.NewTicker(sweepInterval)
	defer sweep.Stop()
	for {
		select {
		case <-s.quit:
			return
		case <-s.resync:
		case <-reload.C:
		case now := <-sweep.C:
			s.revocations.sweep(now)
			continue
		}
		next := resyncInterval
		if !s.reload() {
			next = retryInterval
		}
		reload.Reset(next)
	}
}

// reload replaces the list with the store's; it reports whether that worked.
func (s *appState) reload() bool {
	ctx, cancel := context.WithTimeout(context.Background(), s.timeout)
	defer cancel()
	start := time.Now()
	all, err := s.store.Revocations(ctx)
	observeStore(opRevocations, start, err)
	if err != nil {
		age := "never loaded"
		if t := s.synced.Load(); t != 0 {
			age = time.Since(time.Unix(0, t)).Round(time.Second).String()
		}
		// While the store stays away the reload is retried every second; say so every
		// resyncInterval, not every second.
		if now := time.Now(); now.Sub(s.warned) >= resyncInterval {
			s.warned = now
			s.logger.Warn("store unreachable: keeping the last known revocations", zap.Error(err),
				zap.Int("revocations", s.revocations.len()), zap.String("age", age))
		}
		return false
	}
	if !s.warned.IsZero() {
		s.warned = time.Time{}
		s.logger.Info("store reachable again: revocations reloaded")
	}
	s.revocations.replace(all)
	now := time.Now()
	s.synced.Store(now.UnixNano())
	metrics.revocationsAge.Set(float64(now.Unix()))
	return true
}

// revoke records r in the store (which tells every instance) and in this process's list at
// once. The store bounds the operation by its timeout; a deadline of ctx's own at the same moment
// would make a store that does not answer look like a cancelled request rather than unavailable.
func (s *appState) revoke(ctx context.Context, r store.Revocation) error {
	start := time.Now()
	err := s.store.Revoke(ctx, r)
	observeStore(opRevoke, start, err)
	if err != nil {
		return err
	}
	s.revocations.add(r)
	return nil
}

// accepted records that the link id opened a session at the moment at, for the statuses of the
// issuing API. Links the API did not mint have no record and are left alone. It runs off the
// request path: the status is not worth delaying a sign-in for.
func (s *appState) accepted(id string, at time.Time) {
	ctx, cancel := context.WithTimeout(context.Background(), s.timeout)
	defer cancel()
	start := time.Now()
	_, err := s.store.SetLinkStatus(ctx, id, store.StatusAccepted, at)
	if errors.Is(err, store.ErrNotFound) {
		err = nil
	}
	observeStore(opSetLinkStatus, start, err)
	if err != nil {
		s.logger.Warn("recording a link as accepted failed", zap.String("jti", id), zap.Error(err))
	}
}

// Destruct stops following the store and closes it.
func (s *appState) Destruct() error {
	close(s.quit)
	<-s.done
	s.stopSub()
	return s.store.Close()
}

// Interface guards
var (
	_ caddy.App          = (*App)(nil)
	_ caddy.Provisioner  = (*App)(nil)
	_ caddy.Validator    = (*App)(nil)
	_ caddy.CleanerUpper = (*App)(nil)
	_ caddy.Destructor   = (*appState)(nil)
)
