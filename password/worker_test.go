package password

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"coffer"

	"golang.org/x/crypto/argon2"
)

// workerArg makes this test binary a password worker (see TestMain).
const workerArg = "password-worker-for-test"

func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == workerArg {
		if err := ServeWorker(os.Stdin, os.Stdout); err != nil {
			os.Exit(1)
		}
		os.Exit(0)
	}
	quickRaceExit()
	os.Exit(m.Run())
}

// quickRaceExit spares each worker this test binary starts the race
// detector's second of sleep at exit, which Worker.Close waits out.
func quickRaceExit() {
	if os.Getenv("GORACE") == "" {
		os.Setenv("GORACE", "atexit_sleep_ms=0")
	}
}

// testWorker runs this test binary as a worker.
func testWorker(t testing.TB) *Worker {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	w := NewWorker(func() *exec.Cmd {
		cmd := exec.Command(exe, workerArg)
		cmd.Stderr = os.Stderr
		return cmd
	})
	t.Cleanup(func() { w.Close() })
	return w
}

// testWorkerHasher is a Hasher with params on a worker of its own.
func testWorkerHasher(t testing.TB, params Params) (*Worker, *Hasher) {
	t.Helper()
	w := testWorker(t)
	h, err := NewWorkerHasher(params, w)
	if err != nil {
		t.Fatal(err)
	}
	return w, h
}

func benchmarkHasher(b *testing.B, h *Hasher) {
	encoded, err := h.Hash(context.Background(), "correct horse")
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	b.SetParallelism(8)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if ok, err := h.Verify(context.Background(), encoded, "correct horse"); !ok || err != nil {
				b.Errorf("verify: %v %v", ok, err)
			}
		}
	})
}

// BenchmarkVerifyHere and BenchmarkVerifyWorker compare the rate of
// argon2id verifications with the default parameters in this process and
// in a worker process, one verification in flight per processor.
func BenchmarkVerifyHere(b *testing.B) { benchmarkHasher(b, NewHasher(DefaultParams)) }

func BenchmarkVerifyWorker(b *testing.B) {
	_, h := testWorkerHasher(b, DefaultParams)
	benchmarkHasher(b, h)
}

// workerPID is the process id of w's running worker, 0 when none runs.
func workerPID(w *Worker) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.proc == nil {
		return 0
	}
	return w.proc.cmd.Process.Pid
}

// pendingCount is how many hashes w's running worker has been sent and
// has not answered.
func pendingCount(w *Worker) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.proc == nil {
		return 0
	}
	w.proc.mu.Lock()
	defer w.proc.mu.Unlock()
	return len(w.proc.pending)
}

// TestWorkerDiesAndIsStartedAgain: hashes in flight when the worker dies
// fail as unavailable (503, retry later), not as a wrong password; the
// next hash starts a new worker.
func TestWorkerDiesAndIsStartedAgain(t *testing.T) {
	ctx := context.Background()
	defer func(d time.Duration) { restartBackoff = d }(restartBackoff)
	restartBackoff = 0
	// Slow parameters, so that the hashes are still in flight at the kill.
	w, h := testWorkerHasher(t, Params{TimeCost: 3, MemoryKiB: 64 * 1024, Parallelism: 1})
	encoded, err := h.Hash(ctx, "pw")
	if err != nil {
		t.Fatal(err)
	}
	first := workerPID(w)
	errs := make(chan error, 2)
	for range 2 {
		go func() {
			_, err := h.Verify(ctx, encoded, "pw")
			errs <- err
		}()
	}
	for deadline := time.Now().Add(10 * time.Second); pendingCount(w) < 2; {
		if time.Now().After(deadline) {
			t.Fatal("the two hashes were not sent")
		}
		time.Sleep(time.Millisecond)
	}
	syscall.Kill(first, syscall.SIGKILL)
	for range 2 {
		if err := <-errs; !coffer.IsCode(err, coffer.ErrUnavailable) {
			t.Errorf("a hash in flight when the worker died: %v, want %s", err, coffer.ErrUnavailable)
		}
	}
	if ok, err := h.Verify(ctx, encoded, "pw"); !ok || err != nil {
		t.Fatalf("after the worker died: %v, %v", ok, err)
	}
	if second := workerPID(w); second == 0 || second == first {
		t.Fatalf("worker pid %d after restart, was %d", second, first)
	}
}

// TestWorkerThatCannotStart: unavailable, and a second attempt waits for
// the backoff instead of costing a fork per login. So does a worker that
// dies at once.
func TestWorkerThatCannotStart(t *testing.T) {
	var starts atomic.Int64
	w := NewWorker(func() *exec.Cmd {
		starts.Add(1)
		return exec.Command("/nonexistent/coffer-worker")
	})
	defer w.Close()
	if _, err := NewWorkerHasher(testParams, w); !coffer.IsCode(err, coffer.ErrUnavailable) {
		t.Fatalf("NewWorkerHasher: %v, want %s", err, coffer.ErrUnavailable)
	}
	if _, err := w.deriveKey(context.Background(), []byte("pw"), []byte("salt"), testParams, 32); !coffer.IsCode(err, coffer.ErrUnavailable) {
		t.Fatalf("deriveKey: %v, want %s", err, coffer.ErrUnavailable)
	}
	if n := starts.Load(); n != 1 {
		t.Fatalf("%d starts within the backoff, want 1", n)
	}

	starts.Store(0)
	dies := NewWorker(func() *exec.Cmd {
		starts.Add(1)
		return exec.Command("true")
	})
	defer dies.Close()
	for range 3 {
		if _, err := dies.deriveKey(context.Background(), []byte("pw"), []byte("salt"), testParams, 32); !coffer.IsCode(err, coffer.ErrUnavailable) {
			t.Fatalf("a worker that dies at once: %v, want %s", err, coffer.ErrUnavailable)
		}
	}
	if n := starts.Load(); n != 1 {
		t.Fatalf("%d starts of a worker that dies at once, want 1", n)
	}
}

// TestCallerGivesUpOnAWorkerHash: a caller whose context has ended sends
// nothing; one whose context ends while the worker hashes still waits for
// the answer, holding its slot, so that callers who give up cannot queue
// more work in the worker than the slots allow.
func TestCallerGivesUpOnAWorkerHash(t *testing.T) {
	w, _ := testWorkerHasher(t, testParams)
	ended, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := w.deriveKey(ended, []byte("pw"), []byte("saltsaltsaltsalt"), testParams, 32); !coffer.IsCode(err, coffer.ErrOverloaded) {
		t.Fatalf("a caller that gave up before: %v, want %s", err, coffer.ErrOverloaded)
	}
	slow := Params{TimeCost: 3, MemoryKiB: 64 * 1024, Parallelism: 1}
	ctx, cancel := context.WithTimeout(context.Background(), time.Millisecond)
	defer cancel()
	key, err := w.deriveKey(ctx, []byte("pw"), []byte("saltsaltsaltsalt"), slow, 32)
	if err != nil || len(key) != 32 {
		t.Fatalf("a caller whose context ended during the hash: %x, %v; want the key", key, err)
	}
	if n := pendingCount(w); n != 0 {
		t.Fatalf("%d answers still awaited", n)
	}
}

// threadStats returns, for each thread of process pid, the fields of
// /proc/PID/task/TID/stat after the command name: fields[0] is field 3
// (the state). A thread that exits meanwhile is left out.
func threadStats(pid int) map[string][]string {
	tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/stat", pid))
	out := map[string][]string{}
	for _, task := range tasks {
		stat, err := os.ReadFile(task)
		if err != nil {
			continue
		}
		out[task] = strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+1:]))
	}
	return out
}

// stopped reports whether every thread of process pid is stopped
// (state T).
func stopped(pid int) bool {
	threads := threadStats(pid)
	for _, fields := range threads {
		if len(fields) == 0 || fields[0] != "T" {
			return false
		}
	}
	return len(threads) > 0
}

// TestHungWorkerIsKilled: a worker that stops answering is killed after
// the deadline, its hashes fail as unavailable, and the next hash starts a
// new worker.
func TestHungWorkerIsKilled(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("reads /proc")
	}
	defer func(d, b time.Duration) { hashDeadline, restartBackoff = d, b }(hashDeadline, restartBackoff)
	hashDeadline, restartBackoff = 300*time.Millisecond, 0
	w, h := testWorkerHasher(t, testParams)
	first := workerPID(w)
	syscall.Kill(first, syscall.SIGSTOP)
	for deadline := time.Now().Add(10 * time.Second); !stopped(first); { // the stop is asynchronous
		if time.Now().After(deadline) {
			t.Fatalf("worker %d did not stop", first)
		}
		time.Sleep(time.Millisecond)
	}
	if _, err := h.Hash(context.Background(), "pw"); !coffer.IsCode(err, coffer.ErrUnavailable) {
		t.Fatalf("a hash on a stopped worker: %v, want %s", err, coffer.ErrUnavailable)
	}
	if _, err := h.Hash(context.Background(), "pw"); err != nil {
		t.Fatalf("after the hung worker was killed: %v", err)
	}
	if second := workerPID(w); second == first {
		t.Fatalf("the hung worker %d is still the one used", first)
	}
}

func TestClosedWorker(t *testing.T) {
	w, h := testWorkerHasher(t, testParams)
	pid := workerPID(w)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(pid, 0); err == nil {
		t.Errorf("worker %d still running after Close", pid)
	}
	if _, err := h.Hash(context.Background(), "pw"); !coffer.IsCode(err, coffer.ErrUnavailable) {
		t.Fatalf("Hash after Close: %v, want %s", err, coffer.ErrUnavailable)
	}
}

// TestWorkerRefusesParametersOutOfBounds speaks the protocol to
// ServeWorker directly: an answer for each request, by id, and an empty
// key for parameters it will not compute.
func TestWorkerRefusesParametersOutOfBounds(t *testing.T) {
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	done := make(chan error, 1)
	go func() { done <- serveRequests(inR, outW) }() // not ServeWorker: it would lower this test process's priority
	huge := Params{TimeCost: 1, MemoryKiB: maxMemoryKiB + 1, Parallelism: 1}
	go func() {
		inW.Write(appendRequest(nil, 7, []byte("pw"), []byte("saltsaltsaltsalt"), huge, 32))
		inW.Write(appendRequest(nil, 8, []byte("pw"), []byte("saltsaltsaltsalt"), testParams, 32))
	}()
	r := bufio.NewReader(outR)
	keys := map[uint32][]byte{}
	for range 2 {
		id, key, err := readAnswer(r)
		if err != nil {
			t.Fatal(err)
		}
		keys[id] = key
	}
	want := argon2.IDKey([]byte("pw"), []byte("saltsaltsaltsalt"), 1, 64, 1, 32)
	if len(keys[7]) != 0 || !bytes.Equal(keys[8], want) {
		t.Fatalf("answers %x", keys)
	}
	inW.Close()
	if err := <-done; err != nil {
		t.Fatalf("ServeWorker at the end of its input: %v", err)
	}
}

// TestWorkerRunsAtALowerPriority reads the nice value of each of the
// worker's threads.
func TestWorkerRunsAtALowerPriority(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("priority is lowered on Linux only")
	}
	w, _ := testWorkerHasher(t, testParams)
	threads := threadStats(workerPID(w))
	if len(threads) == 0 {
		t.Fatal("no threads of the worker found")
	}
	for task, fields := range threads {
		if nice := fields[16]; nice != strconv.Itoa(workerNice) { // field 19
			t.Errorf("%s: nice %s, want %d", task, nice, workerNice)
		}
	}
}

// TestPollableMakesABlockingPipePollable: a read deadline, which works
// only on files the runtime polls, works on the pipe pollable returns.
func TestPollableMakesABlockingPipePollable(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("pipes are made pollable on Linux only")
	}
	var fds [2]int
	if err := syscall.Pipe(fds[:]); err != nil {
		t.Fatal(err)
	}
	blocking := os.NewFile(uintptr(fds[0]), "pipe")
	defer blocking.Close()
	defer syscall.Close(fds[1])
	if err := blocking.SetReadDeadline(time.Now()); !errors.Is(err, os.ErrNoDeadline) {
		t.Fatalf("a blocking pipe took a deadline: %v", err)
	}
	f := pollable(blocking)
	if f == nil {
		t.Fatal("pollable returned nil for a pipe")
	}
	defer f.Close()
	if err := f.SetReadDeadline(time.Now().Add(10 * time.Millisecond)); err != nil {
		t.Fatalf("SetReadDeadline: %v", err)
	}
	if _, err := f.Read(make([]byte, 1)); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read of an empty pollable pipe: %v, want a deadline error", err)
	}
	if pollable(strings.NewReader("x")) != nil {
		t.Fatal("pollable of a reader that is no file")
	}
}

// TestPollableLeavesOtherFilesBlocking: a device (as a terminal is) or a
// regular file is not made non-blocking: the mode belongs to the open
// file, which the worker shares with whoever started it by hand.
func TestPollableLeavesOtherFilesBlocking(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("pipes are made pollable on Linux only")
	}
	devNull, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	defer devNull.Close()
	regular, err := os.Create(filepath.Join(t.TempDir(), "file"))
	if err != nil {
		t.Fatal(err)
	}
	defer regular.Close()
	for _, f := range []*os.File{devNull, regular} {
		if p := pollable(f); p != nil {
			p.Close()
			t.Errorf("pollable made %s pollable", f.Name())
		}
		flags, _, errno := syscall.Syscall(syscall.SYS_FCNTL, f.Fd(), syscall.F_GETFL, 0)
		if errno != 0 {
			t.Fatal(errno)
		}
		if flags&syscall.O_NONBLOCK != 0 {
			t.Errorf("%s was left non-blocking", f.Name())
		}
	}
}
