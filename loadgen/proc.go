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
	fields, err := statFields(strconv.Itoa(pid))
	if err != nil {
		return ProcessUsage{}, err
	}
	cpu, ok := cpuOfStat(fields)
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

// procStat reads /proc/PID/stat and returns the command name, field 2,
// and the fields from the third on (the state): the name may hold spaces
// and parentheses, so fields are counted after its last ')'.
func procStat(pid string) (comm string, fields []string, err error) {
	stat, err := os.ReadFile("/proc/" + pid + "/stat")
	if err != nil {
		return "", nil, err
	}
	open, end := strings.IndexByte(string(stat), '('), strings.LastIndexByte(string(stat), ')')
	if open < 0 || end < open {
		return "", nil, fmt.Errorf("unexpected /proc/%s/stat", pid)
	}
	return string(stat[open+1 : end]), strings.Fields(string(stat[end+1:])), nil
}

// cpuOfStat is the CPU time (user and system: fields 14 and 15) in the
// fields of statFields.
func cpuOfStat(fields []string) (time.Duration, bool) {
	if len(fields) < 13 {
		return 0, false
	}
	utime, err1 := strconv.ParseInt(fields[11], 10, 64)
	stime, err2 := strconv.ParseInt(fields[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, false
	}
	return time.Duration(utime+stime) * time.Second / clockTicksPerS, true
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
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	children := map[int][]int{}
	for _, e := range entries {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		fields, err := statFields(e.Name())
		if err != nil || len(fields) < 2 {
			continue // exited
		}
		if ppid, err := strconv.Atoi(fields[1]); err == nil { // field 4
			children[ppid] = append(children[ppid], p)
		}
	}
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

// MachineUsage is the CPU time of the whole machine so far, all CPUs
// added up: Total, and Busy, what was not idle (nor waiting for I/O).
type MachineUsage struct {
	Busy, Total time.Duration
}

// ReadMachineUsage reads the machine's CPU times from /proc/stat's first
// line: user, nice, system, idle, iowait, irq, softirq and steal (guest
// time is counted within user already).
func ReadMachineUsage() (MachineUsage, error) {
	stat, err := os.ReadFile("/proc/stat")
	if err != nil {
		return MachineUsage{}, err
	}
	line, _, _ := strings.Cut(string(stat), "\n")
	fields := strings.Fields(line)
	if len(fields) < 9 || fields[0] != "cpu" {
		return MachineUsage{}, errors.New("unexpected /proc/stat")
	}
	var ticks [8]int64
	for i := range ticks {
		if ticks[i], err = strconv.ParseInt(fields[1+i], 10, 64); err != nil {
			return MachineUsage{}, errors.New("unexpected /proc/stat")
		}
	}
	var total int64
	for _, t := range ticks {
		total += t
	}
	idle := ticks[3] + ticks[4]
	return MachineUsage{Busy: time.Duration(total-idle) * time.Second / clockTicksPerS, Total: time.Duration(total) * time.Second / clockTicksPerS}, nil
}

// CommandUsage reads the CPU time (user and system) of every process of
// this machine whose command name (/proc/PID/comm) is name, by process
// id: PostgreSQL's processes, when it runs here, are all "postgres".
func CommandUsage(name string) map[int]time.Duration {
	out := map[int]time.Duration{}
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return out
	}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		comm, fields, err := procStat(e.Name())
		if err != nil || comm != name {
			continue // exited, or another command
		}
		if cpu, ok := cpuOfStat(fields); ok {
			out[pid] = cpu
		}
	}
	return out
}

// CommandCPU is the CPU time that the processes of CommandUsage's two
// readings, before and after, spent between them: a process that
// started in between counts whole (as does one whose id was reused), one
// that ended in between not at all.
func CommandCPU(before, after map[int]time.Duration) time.Duration {
	var d time.Duration
	for pid, cpu := range after {
		if b, ok := before[pid]; ok && b <= cpu {
			cpu -= b
		}
		d += cpu
	}
	return d
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
