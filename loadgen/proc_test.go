package loadgen

import (
	"os"
	"os/exec"
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
// named as this one, before and after burning CPU here and in a child
// that ends before the second reading: both count, the child through
// this process, which waited for it.
func TestCommandUsageFindsThisProcess(t *testing.T) {
	comm, err := os.ReadFile("/proc/self/comm")
	if err != nil {
		t.Skip("no /proc:", err)
	}
	name := strings.TrimSpace(string(comm))
	before := CommandUsage(name) // 0 for a process younger than a tick of CPU
	spin(t, 300*time.Millisecond)
	child := exec.Command("sh", "-c", `i=0; while [ $i -lt 300000 ]; do i=$((i+1)); done`)
	if err := child.Run(); err != nil {
		t.Fatal(err)
	}
	childCPU := child.ProcessState.UserTime() + child.ProcessState.SystemTime()
	// Ticks are 10 ms: two of slack for each reading of each process.
	if got, want := CommandUsage(name)-before, 300*time.Millisecond+childCPU-40*time.Millisecond; got < want {
		t.Errorf("CommandUsage grew by %v over a spin of 300ms and a child of %v, want at least %v", got, childCPU, want)
	}
	if other := CommandUsage(name + "-no-such-command"); other != 0 {
		t.Errorf("CommandUsage of a name nothing has: %v", other)
	}
}

// TestParseProcStat: the command name runs from the first '(' to the last
// ')', spaces and parentheses in it included.
func TestParseProcStat(t *testing.T) {
	for _, c := range []struct {
		stat, comm, state string
		ok                bool
	}{
		{"42 (postgres) S 1 42 42 0 -1", "postgres", "S", true},
		{"7 (a) (b c) R 1 7", "a) (b c", "R", true},
		{"7 () Z 1", "", "Z", true},
		{"7 postgres S 1", "", "", false},
		{"7 )postgres( S 1", "", "", false},
	} {
		comm, fields, ok := parseProcStat(c.stat)
		if ok != c.ok || comm != c.comm || (ok && (len(fields) == 0 || fields[0] != c.state)) {
			t.Errorf("parseProcStat(%q) = %q, %q, %v; want %q, state %q, %v", c.stat, comm, fields, ok, c.comm, c.state, c.ok)
		}
	}
	fields := strings.Fields("S 1 1 1 0 -1 4194560 100 0 0 0 250 30 7 3 20 0")
	if cpu, ok := sumTicks(fields, statUTime, statSTime); !ok || cpu != 2800*time.Millisecond {
		t.Errorf("user and system time %v, %v; want 2.8s", cpu, ok)
	}
	if cpu, ok := sumTicks(fields, statUTime, statSTime, statCUTime, statCSTime); !ok || cpu != 2900*time.Millisecond {
		t.Errorf("with the children's %v, %v; want 2.9s", cpu, ok)
	}
}

// TestParseMachineUsage: busy is every tick but idle and iowait; guest
// times, counted within user already, are not added again.
func TestParseMachineUsage(t *testing.T) {
	u, err := parseMachineUsage("cpu  100 20 30 500 50 5 5 10 40 0")
	if err != nil || u.Total != 7200*time.Millisecond || u.Busy != 1700*time.Millisecond {
		t.Errorf("parseMachineUsage = %+v, %v; want busy 1.7s of 7.2s", u, err)
	}
	for _, bad := range []string{"", "cpu0 1 2 3 4 5 6 7 8", "cpu 1 2 3 4 5 6 7", "cpu 1 2 3 x 5 6 7 8"} {
		if _, err := parseMachineUsage(bad); err == nil {
			t.Errorf("parseMachineUsage(%q) accepted", bad)
		}
	}
}
