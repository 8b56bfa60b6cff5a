package loadgen

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"coffer/password"
)

// clockTicksPerS is the unit of the CPU times in /proc/PID/stat (USER_HZ),
// 100 on every Linux architecture Go runs on.
const clockTicksPerS = 100

// ProcessUsage is a process's CPU time so far and its peak resident memory.
type ProcessUsage struct {
	CPU        time.Duration
	PeakRSSKiB int64
}

// ChildUsage reads the CPU time (user and system) and the peak resident
// set (VmHWM) of process pid from /proc: a child, a server given by its
// id, or this process itself.
func ChildUsage(pid int) (ProcessUsage, error) {
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return ProcessUsage{}, err
	}
	// The command name (field 2) may hold spaces: count fields after its ')'.
	end := strings.LastIndexByte(string(stat), ')')
	if end < 0 {
		return ProcessUsage{}, fmt.Errorf("unexpected /proc/%d/stat", pid)
	}
	fields := strings.Fields(string(stat[end+1:]))
	if len(fields) < 13 {
		return ProcessUsage{}, fmt.Errorf("unexpected /proc/%d/stat", pid)
	}
	utime, err1 := strconv.ParseInt(fields[11], 10, 64) // field 14
	stime, err2 := strconv.ParseInt(fields[12], 10, 64) // field 15
	if err1 != nil || err2 != nil {
		return ProcessUsage{}, fmt.Errorf("unexpected /proc/%d/stat", pid)
	}
	u := ProcessUsage{CPU: time.Duration(utime+stime) * time.Second / clockTicksPerS}
	status, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return ProcessUsage{}, err
	}
	for _, line := range strings.Split(string(status), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kib, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			u.PeakRSSKiB = kib
		}
	}
	return u, nil
}

// ResetPeakRSS starts process pid's peak resident set (VmHWM) over from
// its current size, so that a later ChildUsage reports the peak of what
// came after (the load) rather than of the setup before it. It needs
// Linux and the right to write /proc/PID/clear_refs.
func ResetPeakRSS(pid int) error {
	return os.WriteFile("/proc/"+strconv.Itoa(pid)+"/clear_refs", []byte("5"), 0)
}

// SelfUsage is this process's CPU time and peak resident set.
func SelfUsage() (ProcessUsage, error) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return ProcessUsage{}, err
	}
	cpu := time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	return ProcessUsage{CPU: cpu, PeakRSSKiB: ru.Maxrss}, nil
}

// HashRate measures the machine's argon2id rate with the server's
// parameters (password.DefaultParams): one hash at a time on each of
// GOMAXPROCS goroutines for about d. It is the ceiling of logins per second.
func HashRate(ctx context.Context, d time.Duration) float64 {
	h := password.NewHasher(password.DefaultParams)
	var n atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	deadline := start.Add(d)
	for range runtime.GOMAXPROCS(0) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(deadline) && ctx.Err() == nil {
				if _, err := h.Hash(ctx, userPassword); err == nil {
					n.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	return float64(n.Load()) / time.Since(start).Seconds()
}
