package pgtest

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"coffer/internal/pgbin"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" driver of the admin pool
)

// Timeouts of the server's life.
const (
	initdbTimeout = 2 * time.Minute
	readyTimeout  = 60 * time.Second
	stopTimeout   = 10 * time.Second
	portTries     = 3
	superuser     = "postgres"
	dirPrefix     = "coffer-pgtest-"
	ownerFile     = "owner.pid"
)

// server is one running PostgreSQL.
type server struct {
	dir    string // the temporary folder: data/, the socket, the log
	port   int
	cmd    *exec.Cmd
	exited chan struct{}
	admin  *sql.DB
}

func (s *server) url(database string) string {
	return fmt.Sprintf("postgres://%s@127.0.0.1:%d/%s?sslmode=disable", superuser, s.port, database)
}

// start creates a cluster in a new temporary folder and starts a server
// on it; on failure nothing is left behind.
func start() (_ *server, err error) {
	removeStale()
	bin, err := pgbin.Dir("initdb", "postgres")
	if err != nil {
		return nil, err
	}
	cred, err := runAs()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", dirPrefix)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			os.RemoveAll(dir)
		}
	}()
	// The folder records its owner's pid so that a later run can remove
	// it if this process dies without cleaning up.
	if err := os.WriteFile(filepath.Join(dir, ownerFile), []byte(strconv.Itoa(os.Getpid())), 0o644); err != nil {
		return nil, err
	}
	if cred != nil {
		if err := os.Chown(dir, int(cred.Uid), int(cred.Gid)); err != nil {
			return nil, fmt.Errorf("give %s to the postgres user: %w", dir, err)
		}
	}
	data := filepath.Join(dir, "data")
	ctx, cancel := context.WithTimeout(context.Background(), initdbTimeout)
	defer cancel()
	initdb := exec.CommandContext(ctx, filepath.Join(bin, "initdb"),
		"-D", data, "-U", superuser, "-A", "trust", "-E", "UTF8", "--locale=C",
		"--no-sync", // the cluster's initial files only; the server itself runs with fsync on
	)
	prepare(initdb, dir, cred)
	if out, err := initdb.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("initdb (%s): %w\n%s", bin, err, out)
	}
	var lastErr error
	for try := 0; try < portTries; try++ {
		s, err := launch(bin, dir, data, cred)
		if err == nil {
			return s, nil
		}
		lastErr = err // most likely another process took the free port first
	}
	return nil, lastErr
}

// launch starts postgres on a free port and waits until it answers.
func launch(bin, dir, data string, cred *syscall.Credential) (*server, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	socketDir := dir
	if len(socketDir) > 90 {
		// A unix socket path is limited to about 100 bytes; TCP is enough.
		socketDir = ""
	}
	logPath := filepath.Join(dir, "postgres.log")
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return nil, err
	}
	defer logFile.Close() // the child holds its own copy
	cmd := exec.Command(filepath.Join(bin, "postgres"),
		"-D", data,
		"-c", "listen_addresses=127.0.0.1",
		"-c", "port="+strconv.Itoa(port),
		"-c", "unix_socket_directories="+socketDir,
		"-c", "fsync=on",
		"-c", "synchronous_commit=on",
		"-c", "shared_buffers=32MB",
		"-c", "max_connections=200",
		"-c", "max_wal_size=256MB",
		// Tests provoke deadlocks on purpose; each costs deadlock_timeout
		// before PostgreSQL breaks it (1s by default, kept in production).
		"-c", "deadlock_timeout=100ms",
		"-c", "log_min_messages=warning",
		"-c", "log_checkpoints=off",
	)
	prepare(cmd, dir, cred)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start postgres: %w", err)
	}
	s := &server{dir: dir, port: port, cmd: cmd, exited: make(chan struct{})}
	go func() {
		cmd.Wait()
		close(s.exited)
	}()
	s.admin = openAdmin(s.url("postgres"))
	deadline := time.Now().Add(readyTimeout)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		err := s.admin.PingContext(ctx)
		cancel()
		if err == nil {
			return s, nil
		}
		select {
		case <-s.exited:
			s.admin.Close()
			return nil, fmt.Errorf("postgres exited while starting: %s", tail(logPath))
		default:
		}
		if time.Now().After(deadline) {
			s.stopProcess()
			return nil, fmt.Errorf("postgres did not answer within %v: %v\n%s", readyTimeout, err, tail(logPath))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// stop shuts the server down and removes its folder.
func (s *server) stop() {
	s.admin.Close()
	s.stopProcess()
	os.RemoveAll(s.dir)
}

// stopProcess ends postgres with an immediate shutdown (SIGQUIT): the data
// is thrown away, so the shutdown checkpoint of a clean stop is wasted
// time. It kills it if it does not exit in time.
func (s *server) stopProcess() {
	s.cmd.Process.Signal(syscall.SIGQUIT)
	select {
	case <-s.exited:
	case <-time.After(stopTimeout):
		s.cmd.Process.Kill()
		<-s.exited
	}
}

// prepare sets what initdb and postgres need to run: as the postgres user
// when we are root (both refuse to run as root), in the folder they own,
// with no PG* variables of ours leaking into them, and dying with us.
func prepare(cmd *exec.Cmd, dir string, cred *syscall.Credential) {
	cmd.Dir = dir
	env := []string{"LC_ALL=C", "LANG=C"}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "PG") && !strings.HasPrefix(kv, "LC_") && !strings.HasPrefix(kv, "LANG=") {
			env = append(env, kv)
		}
	}
	cmd.Env = env
	cmd.SysProcAttr = sysProcAttr(cred)
}

// runAs returns the credentials to run PostgreSQL with: none when we are
// not root, the postgres user's when we are.
func runAs() (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, fmt.Errorf("running as root, and PostgreSQL refuses to run as root, but there is no postgres user to run it as: %w", err)
	}
	uid, err1 := strconv.ParseUint(u.Uid, 10, 32)
	gid, err2 := strconv.ParseUint(u.Gid, 10, 32)
	if err := errors.Join(err1, err2); err != nil {
		return nil, fmt.Errorf("user postgres: %w", err)
	}
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
}

// freePort asks the kernel for a free TCP port of 127.0.0.1. Another
// process may take it before postgres binds it; launch is then retried.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// tail returns the end of the server's log, for error messages.
func tail(path string) string {
	b, _ := os.ReadFile(path)
	b = bytes.TrimSpace(b)
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return string(b)
}

// removeStale removes the folders of earlier runs whose process died
// without cleaning up (killed, or a package that forgot pgtest.Main).
// A folder is removed only when both its owner and its postgres are gone.
func removeStale() {
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), dirPrefix+"*"))
	for _, dir := range dirs {
		if alive(pidIn(filepath.Join(dir, ownerFile))) || alive(pidIn(filepath.Join(dir, "data", "postmaster.pid"))) {
			continue
		}
		if _, err := os.Stat(filepath.Join(dir, ownerFile)); err != nil {
			continue // not one of ours, or still being created
		}
		os.RemoveAll(dir)
	}
}

// pidIn reads the pid on the first line of a pid file; 0 if none.
func pidIn(path string) int {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	pid, _ := strconv.Atoi(strings.TrimSpace(line))
	return pid
}

// alive reports whether a process with pid exists.
func alive(pid int) bool {
	if pid <= 0 {
		return false
	}
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}
