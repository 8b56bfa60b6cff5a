package loadgen

import (
	"context"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestHistogramQuantilesWithinResolution(t *testing.T) {
	h := newHistogram()
	for us := 1; us <= 100_000; us++ {
		h.record(time.Duration(us) * time.Microsecond)
	}
	for _, q := range []float64{0.5, 0.9, 0.99} {
		want := time.Duration(q*100_000) * time.Microsecond
		got := h.quantile(q)
		if got < want || float64(got-want) > float64(want)/subBuckets {
			t.Errorf("quantile %.2f = %s, want %s within 1/%d", q, got, want, subBuckets)
		}
	}
	if h.max != 100*time.Millisecond || h.quantile(1) != h.max {
		t.Errorf("max %s, quantile(1) %s", h.max, h.quantile(1))
	}
	if newHistogram().quantile(0.5) != 0 {
		t.Error("an empty histogram has a quantile")
	}
}

func TestHistogramBucketsCoverEveryValueInOrder(t *testing.T) {
	prev := -1
	for us := uint64(0); us < 1<<22; us += 1 + us/97 {
		b := bucketOf(us)
		if b < prev || bucketValue(b) < us {
			t.Fatalf("value %d: bucket %d (previous %d) holds up to %d", us, b, prev, bucketValue(b))
		}
		prev = b
	}
	if huge := 10 * maxLatency; bucketOf(uint64(huge/time.Microsecond)) < bucketCount-1 {
		t.Error("latencies past maxLatency do not land in the last bucket")
	}
}

func TestCheckLoopbackRefusesOtherHosts(t *testing.T) {
	for _, ok := range []string{"http://127.0.0.1:8080", "http://localhost:1", "http://[::1]:80"} {
		if err := CheckLoopback(ok); err != nil {
			t.Errorf("%s: %v", ok, err)
		}
	}
	for _, bad := range []string{"http://192.0.2.1:8080", "https://127.0.0.1:8080", "http://example.com", "127.0.0.1:8080", ""} {
		if err := CheckLoopback(bad); err == nil {
			t.Errorf("%s accepted", bad)
		}
	}
}

func TestLuhnCardsPassTheCheck(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for range 100 {
		c := luhnCard(rng)
		sum := 0
		for i := range c {
			d := int(c[len(c)-1-i] - '0')
			if i%2 == 1 {
				if d *= 2; d > 9 {
					d -= 9
				}
			}
			sum += d
		}
		if len(c) != 16 || sum%10 != 0 {
			t.Fatalf("card %s fails the Luhn check", c)
		}
	}
}

// TestRawSenderReadsEveryKindOfAnswer: fixed-length, chunked, empty and
// closing answers, on one connection reused where the server allows it.
func TestRawSenderReadsEveryKindOfAnswer(t *testing.T) {
	var conns atomic.Int32
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer tok" || r.Header.Get("Idempotency-Key") != "k1" {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		switch r.URL.Path {
		case "/fixed":
			w.Header().Set("Content-Length", "5")
			w.Write([]byte("hello"))
		case "/chunked":
			w.WriteHeader(http.StatusCreated)
			for range 3 {
				w.Write([]byte(strings.Repeat("x", 5000)))
				w.(http.Flusher).Flush()
			}
		case "/empty":
			w.WriteHeader(http.StatusNoContent)
		case "/close":
			w.Header().Set("Connection", "close")
			w.Header().Set("Retry-After", "2")
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	defer srv.Close()
	snd, err := newRawSender(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer snd.close()
	ctx := context.Background()
	for i, c := range []struct {
		path string
		want answer
	}{{"/fixed", answer{200, 0}}, {"/chunked", answer{201, 0}}, {"/empty", answer{204, 0}}, {"/fixed", answer{200, 0}},
		{"/close", answer{503, 2 * time.Second}}, {"/fixed", answer{200, 0}}} {
		got := snd.send(ctx, call{method: http.MethodPost, path: c.path, token: "tok", key: "k1", body: []byte(`{}`)})
		if got != c.want {
			t.Errorf("request %d to %s: %+v, want %+v", i, c.path, got, c.want)
		}
	}
	if n := conns.Load(); n != 2 {
		t.Errorf("%d connections, want 2 (one closed by the server)", n)
	}
	srv.Close()
	if got := snd.send(ctx, call{method: http.MethodGet, path: "/fixed"}); got != (answer{}) {
		t.Errorf("a stopped server answered %+v, want none", got)
	}
}

func TestParseRetryAfter(t *testing.T) {
	for v, want := range map[string]time.Duration{
		"1": time.Second, " 30 ": 30 * time.Second, "3600": maxRetryAfter,
		"0": 0, "-1": 0, "": 0, "Wed, 21 Oct 2015 07:28:00 GMT": 0,
		"9223372037": maxRetryAfter, "18446744074": maxRetryAfter, "99999999999999999999": maxRetryAfter,
	} {
		if got := parseRetryAfter([]byte(v)); got != want {
			t.Errorf("Retry-After %q: %v, want %v", v, got, want)
		}
	}
}

// BenchmarkTrivialServer is the floor under every scenario: this load
// generator against a net/http handler that answers a fixed JSON body, in
// one process, at 64 connections. It reports requests per second; b.N is
// the request count (go test -run '^$' -bench TrivialServer -benchtime
// 400000x ./loadgen).
func BenchmarkTrivialServer(b *testing.B) {
	body := []byte(`{"code":0,"message":"ok","data":[{"balance":"100.00"}]}`)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write(body)
	}))
	defer srv.Close()
	const connections = 64
	var left, ok atomic.Int64
	left.Store(int64(b.N))
	done := make(chan struct{})
	b.ResetTimer()
	for range connections {
		go func() {
			defer func() { done <- struct{}{} }()
			snd, err := newRawSender(srv.URL)
			if err != nil {
				return
			}
			defer snd.close()
			for left.Add(-1) >= 0 {
				if snd.send(context.Background(), call{method: http.MethodGet, path: "/api/info", token: strings.Repeat("t", 43)}).status == http.StatusOK {
					ok.Add(1)
				}
			}
		}()
	}
	for range connections {
		<-done
	}
	b.StopTimer()
	if ok.Load() != int64(b.N) {
		b.Fatalf("%d of %d requests answered 200", ok.Load(), b.N)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "req/s")
}

// TestWorkerWaitsAsRetryAfterAsks: a connection told 503 with
// Retry-After waits before its next request when the run honors it, and
// asks again at once when it does not.
func TestWorkerWaitsAsRetryAfterAsks(t *testing.T) {
	var requests atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		w.Header().Set("Retry-After", "1")
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	defer srv.Close()
	for _, honor := range []bool{true, false} {
		requests.Store(0)
		r := &Runner{cfg: Config{BaseURL: srv.URL, HonorRetryAfter: honor, MaxRequests: 100_000}, scenario: ScenarioInfo,
			users: []benchUser{{token: "tok"}}}
		stats := &workerStats{all: newHistogram(), byStatus: map[int]*histogram{}}
		start := time.Now()
		r.worker(context.Background(), 1, start.Add(1500*time.Millisecond), stats)
		n := requests.Load()
		switch {
		case honor && n != 2: // at 0 s and at 1 s; the wait after the second ends at the deadline
			t.Errorf("honoring Retry-After: %d requests in 1.5 s, want 2", n)
		case !honor && n < 50:
			t.Errorf("not honoring Retry-After: %d requests in 1.5 s, want many", n)
		}
		if took := time.Since(start); took > 2500*time.Millisecond {
			t.Errorf("honor=%v: the worker ran %v past a 1.5 s deadline", honor, took)
		}
		if got := stats.byStatus[http.StatusServiceUnavailable]; got == nil || got.total != n {
			t.Errorf("honor=%v: 503s recorded %v, want %d", honor, got, n)
		}
	}
}
