package caddymodule

import (
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Outcomes of the links_total and sessions_total metrics.
const (
	outcomeAccepted    = "accepted"
	outcomeConfirmPage = "confirm_page"
	outcomeRejected    = "rejected"
	outcomeValid       = "valid"
)

// Operations of the store_errors_total and store_operation_seconds metrics.
const (
	opConsume       = "consume"
	opRevoke        = "revoke"
	opRevocations   = "revocations"
	opSetLinkStatus = "set_link_status"
)

// linkReasons and sessionReasons are every reason label the counters take: label values come from
// fixed sets only, so the number of series stays bounded whatever the requests.
var (
	linkReasons    = []string{ReasonExpired, ReasonNotYetValid, ReasonOutsideScope, ReasonInvalid, ReasonUsed, ReasonRevoked, ReasonUnavailable}
	sessionReasons = []string{ReasonExpired, ReasonOutsideScope, ReasonInvalid, ReasonRevoked}
	storeOps       = []string{opConsume, opRevoke, opRevocations, opSetLinkStatus}
)

// metrics holds the collectors of the magic_link module, created once per process and registered
// on the metrics registry of every configuration that uses the module. The label children the
// request path counts with are looked up once, so counting is one atomic add.
var metrics = newMetrics()

// moduleMetrics are the collectors of the module and their label children.
type moduleMetrics struct {
	links, sessions, storeErrors, apiRequests *prometheus.CounterVec
	storeSeconds                              *prometheus.HistogramVec
	revocations, revocationsAge               prometheus.Gauge

	linkAccepted, linkConfirmPage, sessionValid prometheus.Counter
	linkRejected, sessionRejected               map[string]prometheus.Counter
	storeError                                  map[string]prometheus.Counter
	storeTime                                   map[string]prometheus.Observer
	apiOK                                       map[string]prometheus.Counter // by endpoint, code 200
}

// newMetrics creates the collectors and looks up the label children.
func newMetrics() *moduleMetrics {
	m := new(moduleMetrics)
	const ns, sub = "caddy", "magic_link"
	m.links = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: ns, Subsystem: sub, Name: "links_total",
		Help: "Requests carrying a link token, by outcome (accepted, confirm_page, rejected) and rejection reason.",
	}, []string{"outcome", "reason"})
	m.sessions = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: ns, Subsystem: sub, Name: "sessions_total",
		Help: "Requests carrying a session cookie, by outcome (valid, rejected) and rejection reason.",
	}, []string{"outcome", "reason"})
	m.storeErrors = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: ns, Subsystem: sub, Name: "store_errors_total",
		Help: "Store operations that failed, by operation.",
	}, []string{"op"})
	m.apiRequests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: ns, Subsystem: sub, Name: "api_requests_total",
		Help: "Requests to the issuing API, by endpoint (create, get, revoke) and status code.",
	}, []string{"endpoint", "code"})
	m.storeSeconds = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: ns, Subsystem: sub, Name: "store_operation_seconds",
		Help:    "Time taken by store operations, failed ones included, by operation.",
		Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
	}, []string{"op"})
	m.revocations = prometheus.NewGauge(prometheus.GaugeOpts{
		Namespace: ns, Subsystem: sub, Name: "revocations",
		Help: "Revocations held in memory.",
	})
	m.revocationsAge = prometheus.NewGauge(prometheus.GaugeOpts{
		Namespace: ns, Subsystem: sub, Name: "revocations_synced_timestamp_seconds",
		Help: "When the in-memory revocations were last reloaded in full from the store, in Unix seconds.",
	})

	m.linkAccepted = m.links.WithLabelValues(outcomeAccepted, "")
	m.linkConfirmPage = m.links.WithLabelValues(outcomeConfirmPage, "")
	m.sessionValid = m.sessions.WithLabelValues(outcomeValid, "")
	m.linkRejected = make(map[string]prometheus.Counter, len(linkReasons))
	for _, r := range linkReasons {
		m.linkRejected[r] = m.links.WithLabelValues(outcomeRejected, r)
	}
	m.sessionRejected = make(map[string]prometheus.Counter, len(sessionReasons))
	for _, r := range sessionReasons {
		m.sessionRejected[r] = m.sessions.WithLabelValues(outcomeRejected, r)
	}
	m.storeError = make(map[string]prometheus.Counter, len(storeOps))
	m.storeTime = make(map[string]prometheus.Observer, len(storeOps))
	for _, op := range storeOps {
		m.storeError[op] = m.storeErrors.WithLabelValues(op)
		m.storeTime[op] = m.storeSeconds.WithLabelValues(op)
	}
	m.apiOK = make(map[string]prometheus.Counter, len(endpointNames))
	for _, ep := range endpointNames {
		m.apiOK[ep] = m.apiRequests.WithLabelValues(ep, "200")
	}
	return m
}

// registerMetrics registers the module's collectors on registry, which may already hold them (an
// already registered collector is kept).
func registerMetrics(registry *prometheus.Registry) error {
	if registry == nil {
		return nil
	}
	for _, c := range []prometheus.Collector{
		metrics.links, metrics.sessions, metrics.storeErrors, metrics.apiRequests, metrics.storeSeconds, metrics.revocations,
		metrics.revocationsAge,
	} {
		if err := registry.Register(c); err != nil && !errors.As(err, new(prometheus.AlreadyRegisteredError)) {
			return err
		}
	}
	return nil
}

// countLinkRejected counts a link rejected for reason.
func countLinkRejected(reason string) {
	if c := metrics.linkRejected[reason]; c != nil {
		c.Inc()
	}
}

// countSessionRejected counts a session rejected for reason.
func countSessionRejected(reason string) {
	if c := metrics.sessionRejected[reason]; c != nil {
		c.Inc()
	}
}

// observeStore records the duration of the store operation op that started at start, and its
// failure when err is not nil.
func observeStore(op string, start time.Time, err error) {
	metrics.storeTime[op].Observe(time.Since(start).Seconds())
	if err != nil {
		metrics.storeError[op].Inc()
	}
}

// countAPIRequest counts a request to an endpoint of the issuing API answered with status (0: the
// response was not written, counted as 200 as net/http would send it).
func countAPIRequest(endpoint string, status int) {
	if status == 0 || status == http.StatusOK {
		metrics.apiOK[endpoint].Inc()
		return
	}
	metrics.apiRequests.WithLabelValues(endpoint, strconv.Itoa(status)).Inc()
}
