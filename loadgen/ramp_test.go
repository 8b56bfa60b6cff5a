package loadgen

import (
	"context"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"
)

// firstRequests runs an info load on connections connections with ramp
// and returns when each connection's first request arrived, counted from
// just before the load started, earliest first.
func firstRequests(t *testing.T, connections int, ramp time.Duration) []time.Duration {
	t.Helper()
	var mu sync.Mutex
	first := map[string]time.Time{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		if _, ok := first[r.RemoteAddr]; !ok {
			first[r.RemoteAddr] = time.Now()
		}
		mu.Unlock()
		w.Write([]byte(`{"success":true,"error":"","data":[]}`))
	}))
	defer srv.Close()
	cfg := Config{BaseURL: srv.URL, Scenarios: []string{ScenarioInfo}, Duration: ramp + 300*time.Millisecond,
		Connections: connections, MaxRequests: 1_000_000, Progress: io.Discard, Ramp: ramp}
	r := &Runner{cfg: cfg, users: []benchUser{{token: "tok"}}}
	start := time.Now()
	if _, err := r.Load(context.Background(), ScenarioInfo); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(first) != connections {
		t.Fatalf("%d connections asked, want %d", len(first), connections)
	}
	var after []time.Duration
	for _, at := range first {
		after = append(after, at.Sub(start))
	}
	slices.Sort(after)
	return after
}

// TestRampSpreadsTheFirstRequests: four connections over a 400 ms ramp
// start 100 ms apart, none before its turn (a timer never fires early, so
// this holds on a machine however loaded); without a ramp, together.
func TestRampSpreadsTheFirstRequests(t *testing.T) {
	const ramp, connections = 400 * time.Millisecond, 4
	for i, at := range firstRequests(t, connections, ramp) {
		if turn := ramp * time.Duration(i) / connections; at < turn {
			t.Errorf("connection %d of %d asked first %v after the start, before its turn at %v", i+1, connections, at, turn)
		}
	}
	// Without a ramp the last connection's turn would come 300 ms in.
	if after := firstRequests(t, connections, 0); after[connections-1] >= 300*time.Millisecond {
		t.Errorf("without a ramp, first requests came %v after the start", after)
	}
}

func TestRampMustBeShorterThanTheDuration(t *testing.T) {
	cfg := Config{BaseURL: "http://127.0.0.1:1", Scenarios: []string{ScenarioInfo}, Duration: time.Second, Connections: 1, Users: 2}
	for ramp, ok := range map[time.Duration]bool{0: true, 999 * time.Millisecond: true, time.Second: false, -time.Millisecond: false} {
		cfg.Ramp = ramp
		if err := cfg.Validate(); (err == nil) != ok {
			t.Errorf("ramp %v: %v", ramp, err)
		}
	}
}

// TestRetryJitterIsUpToAFifth: spread over [0, retryAfter/5), so that
// connections refused together do not come back together.
func TestRetryJitterIsUpToAFifth(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	lo, hi := time.Hour, time.Duration(0)
	for range 1000 {
		j := retryJitter(rng, time.Second)
		lo, hi = min(lo, j), max(hi, j)
	}
	if lo < 0 || hi >= 200*time.Millisecond || lo > 20*time.Millisecond || hi < 180*time.Millisecond {
		t.Errorf("jitter of a 1 s Retry-After within [%v, %v], want spread over [0, 200ms)", lo, hi)
	}
	if j := retryJitter(rng, 0); j != 0 {
		t.Errorf("jitter of no wait: %v", j)
	}
}

// TestTreeUsageAddsTheDescendants starts a shell that burns some CPU and
// waits on a child of its own: both are this process's descendants, and
// their CPU counts in TreeUsage.
func TestTreeUsageAddsTheDescendants(t *testing.T) {
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skip("no /proc")
	}
	sh := exec.Command("sh", "-c", `i=0; while [ $i -lt 200000 ]; do i=$((i+1)); done; sleep 30 & wait`)
	if err := sh.Start(); err != nil {
		t.Fatal(err)
	}
	var below []int
	defer func() {
		for _, pid := range below { // the sleep would outlive the shell
			if pid > 0 && pid != sh.Process.Pid {
				syscall.Kill(pid, syscall.SIGKILL)
			}
		}
		sh.Process.Kill()
		sh.Wait()
	}()
	for deadline := time.Now().Add(20 * time.Second); len(below) < 2 && time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond)
		below = descendants(os.Getpid())
	}
	if len(below) < 2 || below[0] != sh.Process.Pid {
		t.Fatalf("descendants %v, want the shell %d and its sleep", below, sh.Process.Pid)
	}
	self, err1 := ChildUsage(os.Getpid())
	shell, err2 := ChildUsage(sh.Process.Pid)
	tree, err3 := TreeUsage(os.Getpid())
	if err1 != nil || err2 != nil || err3 != nil {
		t.Fatal(err1, err2, err3)
	}
	if shell.CPU == 0 || tree.CPU < self.CPU+shell.CPU || tree.PeakRSSKiB < self.PeakRSSKiB+shell.PeakRSSKiB {
		t.Errorf("tree %+v, this process %+v, the shell %+v", tree, self, shell)
	}
}
