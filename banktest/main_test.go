//go:build linux

package banktest

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"coffer/internal/pgtest"
)

// The bank test's knobs. The defaults keep `go test ./...` short; a long
// run sets -bank.duration (and -timeout, go test's own limit).
var (
	flagDuration   = flag.Duration("bank.duration", 0, "how long clients make transfers, per store (default 20s, 5s with -short)")
	flagUsers      = flag.Int("bank.users", 8, "users with funds")
	flagClients    = flag.Int("bank.clients", 16, "concurrent clients making transfers")
	flagReaders    = flag.Int("bank.readers", 2, "concurrent clients reading balances")
	flagKillEvery  = flag.Duration("bank.kill-every", 0, "mean time between SIGKILLs of the server, 0 for the default (duration/8, from 1s to 5s); negative: never")
	flagFaultEvery = flag.Duration("bank.fault-every", 0, "mean time between spells of the database refusing writes (SQLite files made immutable, PostgreSQL read-only), 0 for the default (as -bank.kill-every); negative: never")
	flagTermEvery  = flag.Duration("bank.terminate-every", time.Second, "mean time between terminations of PostgreSQL backends; 0 or negative: never")
	flagStores     = flag.String("bank.stores", "sqlite,postgres", "stores to run the bank test on")
	flagSeed       = flag.Int64("bank.seed", 0, "random seed (0: from the clock; the seed is logged)")
)

// duration is the bank test's run time per store.
func duration() time.Duration {
	switch {
	case *flagDuration > 0:
		return *flagDuration
	case testing.Short():
		return 5 * time.Second
	}
	return 20 * time.Second
}

func TestMain(m *testing.M) { pgtest.Main(m) }

// buildTimeout bounds `go build` of the binary.
const buildTimeout = 5 * time.Minute

// binDirPrefix names the folders the binary is built into; each holds its
// owner's pid so that a later run removes those left behind (pgtest.Main
// exits the test binary, so nothing runs after the tests to remove it).
const binDirPrefix = "coffer-banktest-"

var (
	buildOnce sync.Once
	builtBin  string
	buildErr  error
)

// binary returns the path of the coffer binary, built once per test binary
// with `go build` (without -race: it is a separate program).
func binary(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() { builtBin, buildErr = build() })
	if buildErr != nil {
		t.Fatalf("build coffer: %v", buildErr)
	}
	return builtBin
}

func build() (string, error) {
	removeStaleBinDirs()
	dir, err := os.MkdirTemp("", binDirPrefix+strconv.Itoa(os.Getpid())+"-")
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "coffer")
	goTool, err := exec.LookPath("go")
	if err != nil {
		return "", err
	}
	cmd := exec.Command(goTool, "build", "-o", bin, "coffer/cmd/coffer")
	out, err := runBounded(cmd, buildTimeout)
	if err != nil {
		os.RemoveAll(dir)
		return "", fmt.Errorf("%v\n%s", err, out)
	}
	return bin, nil
}

// removeStaleBinDirs removes the build folders of test binaries that are
// no longer running.
func removeStaleBinDirs() {
	matches, _ := filepath.Glob(filepath.Join(os.TempDir(), binDirPrefix+"*"))
	for _, m := range matches {
		rest := strings.TrimPrefix(filepath.Base(m), binDirPrefix)
		pidText, _, _ := strings.Cut(rest, "-")
		pid, err := strconv.Atoi(pidText)
		if err != nil || pid == os.Getpid() {
			continue
		}
		if syscall.Kill(pid, 0) == syscall.ESRCH {
			os.RemoveAll(m)
		}
	}
}

// runBounded runs cmd, killing it after limit, and returns its combined output.
func runBounded(cmd *exec.Cmd, limit time.Duration) ([]byte, error) {
	var out syncBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		return out.Bytes(), err
	case <-time.After(limit):
		cmd.Process.Kill()
		<-done
		return out.Bytes(), fmt.Errorf("%s did not finish within %s", filepath.Base(cmd.Path), limit)
	}
}
