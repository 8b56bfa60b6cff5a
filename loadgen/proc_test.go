package loadgen

import (
	"os"
	"strings"
	"testing"
	"time"
)

// spin keeps this goroutine's CPU busy for about d of its own CPU time.
func spin(t *testing.T, d time.Duration) {
	t.Helper()
	start, err := SelfUsage()
	if err != nil {
		t.Fatal(err)
	}
	for n := 0; ; n++ {
		if n%100000 == 0 {
			if now, _ := SelfUsage(); now.CPU-start.CPU >= d {
				return
			}
		}
	}
}

// TestReadMachineUsageCountsABusyCore burns CPU and checks that the
// machine's busy time grew by at least as much, and its total by more.
func TestReadMachineUsageCountsABusyCore(t *testing.T) {
	before, err := ReadMachineUsage()
	if err != nil {
		t.Skip("no /proc/stat:", err)
	}
	spin(t, 300*time.Millisecond)
	after, err := ReadMachineUsage()
	if err != nil {
		t.Fatal(err)
	}
	busy, total := after.Busy-before.Busy, after.Total-before.Total
	// The ticks of /proc/stat and of this process's own CPU time are
	// sampled apart: a tick's slack on each side.
	if busy < 300*time.Millisecond-20*time.Millisecond || total < busy {
		t.Errorf("busy %v of %v over a spin of 300ms", busy, total)
	}
}

// TestCommandUsageFindsThisProcess reads the CPU time of the processes
// named as this one, before and after burning CPU: this process is among
// them, and CommandCPU counts what it burned.
func TestCommandUsageFindsThisProcess(t *testing.T) {
	comm, err := os.ReadFile("/proc/self/comm")
	if err != nil {
		t.Skip("no /proc:", err)
	}
	name := strings.TrimSpace(string(comm))
	before := CommandUsage(name)
	if _, ok := before[os.Getpid()]; !ok {
		t.Fatalf("CommandUsage(%q) = %v, without this process %d", name, before, os.Getpid())
	}
	spin(t, 300*time.Millisecond)
	if got := CommandCPU(before, CommandUsage(name)); got < 300*time.Millisecond-20*time.Millisecond {
		t.Errorf("CommandCPU over a spin of 300ms: %v", got)
	}
	if other := CommandUsage(name + "-no-such-command"); len(other) != 0 {
		t.Errorf("CommandUsage of a name nothing has: %v", other)
	}
}

// TestCommandCPU: a process seen twice counts what it spent in between,
// a new one (or a reused id, its time lower than before) counts whole, an
// ended one not at all.
func TestCommandCPU(t *testing.T) {
	before := map[int]time.Duration{1: 5 * time.Second, 2: 3 * time.Second, 4: time.Second}
	after := map[int]time.Duration{1: 6 * time.Second, 2: time.Second, 3: 2 * time.Second}
	if got, want := CommandCPU(before, after), 4*time.Second; got != want {
		t.Errorf("CommandCPU = %v, want %v", got, want)
	}
}
