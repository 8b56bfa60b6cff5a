package loadgen

import (
	"context"
	"errors"
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

// clockTicksPerS is the unit of the CPU times in /proc/PID/stat and
// /proc/stat (USER_HZ), 100 on every Linux architecture Go runs on.
const clockTicksPerS = 100

// ticks converts a count of clock ticks to a duration, 10 ms each: the
// product overflows only past 2^63 ns, about 292 years of CPU time (a
// machine's total grows by that many CPUs each year), where multiplying
// by a second before dividing by 100 would overflow past 3.
func ticks(n int64) time.Duration { return time.Duration(n) * (time.Second / clockTicksPerS) }

// ProcessUsage is a process's CPU time so far and its peak resident memory.
type ProcessUsage struct {
	CPU        time.Duration
	PeakRSSKiB int64
}

// ChildUsage reads the CPU time (user and system) and the peak resident
// set (VmHWM) of process pid from /proc: a child, a server given by its
// id, or this process itself.
func ChildUsage(pid int) (ProcessUsage, error) {
	fields, err := statFields(strconv.Itoa(pid))
	if err != nil {
		return ProcessUsage{}, err
	}
	cpu, ok := sumTicks(fields, statUTime, statSTime)
	if !ok {
		return ProcessUsage{}, fmt.Errorf("unexpected /proc/%d/stat", pid)
	}
	u := ProcessUsage{CPU: cpu}
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

// statFields reads /proc/PID/stat and returns its fields from the third
// on (the state).
func statFields(pid string) ([]string, error) {
	_, fields, err := procStat(pid)
	return fields, err
}

// procStat reads /proc/PID/stat and returns, as parseProcStat does, the
// command name and the fields from the third on.
func procStat(pid string) (comm string, fields []string, err error) {
	stat, err := os.ReadFile("/proc/" + pid + "/stat")
	if err != nil {
		return "", nil, err
	}
	comm, fields, ok := parseProcStat(string(stat))
	if !ok {
		return "", nil, fmt.Errorf("unexpected /proc/%s/stat", pid)
	}
	return comm, fields, nil
}

// parseProcStat splits a /proc/PID/stat line into the command name, field
// 2, and the fields from the third on (the state): the name may hold
// spaces and parentheses, so it runs from the first '(' to the last ')'.
func parseProcStat(stat string) (comm string, fields []string, ok bool) {
	open, end := strings.IndexByte(stat, '('), strings.LastIndexByte(stat, ')')
	if open < 0 || end < open {
		return "", nil, false
	}
	return stat[open+1 : end], strings.Fields(stat[end+1:]), true
}

// Indexes in the fields of parseProcStat (field N of /proc/PID/stat is
// index N-3): the CPU time of the process, user and system, and of its
// children that it waited for.
const (
	statUTime  = 11 // field 14
	statSTime  = 12 // field 15
	statCUTime = 13 // field 16
	statCSTime = 14 // field 17
)

// sumTicks adds up the fields at idx, counts of clock ticks.
func sumTicks(fields []string, idx ...int) (time.Duration, bool) {
	var sum int64
	for _, i := range idx {
		if i >= len(fields) {
			return 0, false
		}
		n, err := strconv.ParseInt(fields[i], 10, 64)
		if err != nil {
			return 0, false
		}
		sum += n
	}
	return ticks(sum), true
}

// TreeUsage is ChildUsage of process pid and its descendants added up: a
// server with the password worker it runs. The peak resident sets are
// added too, an upper bound of their peak together. A descendant that
// exits between the reads is left out.
func TreeUsage(pid int) (ProcessUsage, error) {
	u, err := ChildUsage(pid)
	if err != nil {
		return u, err
	}
	for _, d := range descendants(pid) {
		if du, err := ChildUsage(d); err == nil {
			u.CPU += du.CPU
			u.PeakRSSKiB += du.PeakRSSKiB
		}
	}
	return u, nil
}

// descendants lists the processes below pid, from the parent ids in
// /proc/*/stat.
func descendants(pid int) []int {
	children := map[int][]int{}
	eachProcess(func(p int, _ string, fields []string) {
		if len(fields) < 2 {
			return
		}
		if ppid, err := strconv.Atoi(fields[1]); err == nil { // field 4
			children[ppid] = append(children[ppid], p)
		}
	})
	var out []int
	for queue := children[pid]; len(queue) > 0; queue = queue[1:] {
		out = append(out, queue[0])
		queue = append(queue, children[queue[0]]...)
	}
	return out
}

// ResetPeakRSS starts the peak resident set (VmHWM) of process pid and of
// its descendants over from their current sizes, so that a later
// TreeUsage reports the peak of what came after (the load) rather than of
// the setup before it. It needs Linux and the right to write
// /proc/PID/clear_refs.
func ResetPeakRSS(pid int) error {
	err := os.WriteFile("/proc/"+strconv.Itoa(pid)+"/clear_refs", []byte("5"), 0)
	for _, d := range descendants(pid) {
		os.WriteFile("/proc/"+strconv.Itoa(d)+"/clear_refs", []byte("5"), 0)
	}
	return err
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

// MachineUsage is the CPU time of the whole machine so far, all its CPUs
// added up: Total, and Busy, what was neither idle nor waiting for I/O.
type MachineUsage struct {
	Busy, Total time.Duration
}

// ReadMachineUsage reads the machine's CPU times from /proc/stat.
func ReadMachineUsage() (MachineUsage, error) {
	stat, err := os.ReadFile("/proc/stat")
	if err != nil {
		return MachineUsage{}, err
	}
	line, _, _ := strings.Cut(string(stat), "\n")
	return parseMachineUsage(line)
}

// parseMachineUsage reads /proc/stat's first line: "cpu", then user,
// nice, system, idle, iowait, irq, softirq and steal, in clock ticks (the
// guest times that may follow are counted within user and nice already).
func parseMachineUsage(line string) (MachineUsage, error) {
	fields := strings.Fields(line)
	if len(fields) < 9 || fields[0] != "cpu" {
		return MachineUsage{}, errors.New("unexpected /proc/stat")
	}
	all, ok1 := sumTicks(fields, 1, 2, 3, 4, 5, 6, 7, 8)
	idle, ok2 := sumTicks(fields, 4, 5) // idle, iowait
	if !ok1 || !ok2 {
		return MachineUsage{}, errors.New("unexpected /proc/stat")
	}
	return MachineUsage{Busy: all - idle, Total: all}, nil
}

// CommandUsage is the CPU time so far of this machine's processes whose
// command name (field 2 of /proc/PID/stat, which the kernel cuts to 15
// bytes) is name, added up with that of the children they waited for.
// The difference of two readings is then what the processes of that name
// spent in between, those that ended in between too as long as their
// parent bears the name: PostgreSQL's processes are all "postgres", and
// the first of them waits for every other.
func CommandUsage(name string) time.Duration {
	var sum time.Duration
	eachProcess(func(_ int, comm string, fields []string) {
		if comm != name {
			return
		}
		if cpu, ok := sumTicks(fields, statUTime, statSTime, statCUTime, statCSTime); ok {
			sum += cpu
		}
	})
	return sum
}

// eachProcess calls fn with the id, command name and stat fields (see
// procStat) of each process of this machine; one that exits while
// /proc is read is left out.
func eachProcess(fn func(pid int, comm string, fields []string)) {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return
	}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue // not a process
		}
		if comm, fields, err := procStat(e.Name()); err == nil {
			fn(pid, comm, fields)
		}
	}
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
