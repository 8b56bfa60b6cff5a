package main

import (
	"context"
	"fmt"
	"io"
	"net/url"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"coffer/internal/pgbin"
)

// pgbenchScale is the scale of the pgbench tables: ten branches, so that
// the default script's updates of pgbench_branches do not all queue on a
// handful of rows at 64 clients (pgbench's advice is a scale of at least
// the client count for that; ten keeps the initialisation a few seconds).
const pgbenchScale = 10

// pgbenchResult is what pgbench's default script (TPC-B-like: three
// updates, a select and an insert per transaction) did against the same
// PostgreSQL server.
type pgbenchResult struct {
	Clients int     `json:"clients"`
	Scale   int     `json:"scale"`
	TPS     float64 `json:"tps"`
	Command string  `json:"command"`
}

// findPgbench finds the pgbench of the PostgreSQL installation.
func findPgbench() (string, error) {
	dir, err := pgbin.Dir("pgbench")
	if err != nil {
		return "", err
	}
	return filepath.Join(dir, "pgbench"), nil
}

// libpqURL is dsn without the pool parameters that only Coffer reads,
// which libpq would refuse.
func libpqURL(dsn string) (string, error) {
	u, err := url.Parse(dsn)
	if err != nil {
		return "", err
	}
	q := u.Query()
	for k := range q {
		if strings.HasPrefix(k, "pool_") {
			q.Del(k)
		}
	}
	u.RawQuery = q.Encode()
	return u.String(), nil
}

var tpsLine = regexp.MustCompile(`(?m)^tps = ([0-9.]+) \(without initial connection time\)`)

// runPgbench initialises pgbench's tables in the database of dsn (they are
// dropped and made again) and runs its default script with clients
// connections for duration.
func runPgbench(ctx context.Context, dsn string, clients int, duration time.Duration, progress io.Writer) (*pgbenchResult, error) {
	bin, err := findPgbench()
	if err != nil {
		return nil, err
	}
	conn, err := libpqURL(dsn)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(progress, "pgbench: initialising scale %d\n", pgbenchScale)
	if out, err := exec.CommandContext(ctx, bin, "-i", "-q", "-s", strconv.Itoa(pgbenchScale), conn).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("pgbench -i: %w\n%s", err, out)
	}
	args := []string{"-n", "-c", strconv.Itoa(clients), "-j", "2", "-T", strconv.Itoa(max(1, int(duration.Seconds())))}
	fmt.Fprintf(progress, "pgbench: %s\n", strings.Join(args, " "))
	out, err := exec.CommandContext(ctx, bin, append(args, conn)...).CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("pgbench: %w\n%s", err, out)
	}
	m := tpsLine.FindSubmatch(out)
	if m == nil {
		return nil, fmt.Errorf("pgbench printed no tps line:\n%s", out)
	}
	tps, err := strconv.ParseFloat(string(m[1]), 64)
	if err != nil {
		return nil, err
	}
	return &pgbenchResult{Clients: clients, Scale: pgbenchScale, TPS: tps, Command: "pgbench " + strings.Join(args, " ")}, nil
}
