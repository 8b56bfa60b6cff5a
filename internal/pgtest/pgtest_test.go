package pgtest

import (
	"context"
	"database/sql"
	"os"
	"os/exec"
	"strings"
	"testing"

	"coffer/storetest"
)

func TestMain(m *testing.M) { Main(m) }

func TestServerSettings(t *testing.T) {
	db, err := sql.Open("pgx", DSN(t))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx := context.Background()
	for setting, want := range map[string]string{
		"fsync":              "on",
		"synchronous_commit": "on",
		"listen_addresses":   "127.0.0.1",
		"server_encoding":    "UTF8",
		"lc_collate":         "C",
	} {
		var got string
		if err := db.QueryRowContext(ctx, "SELECT current_setting($1)", setting).Scan(&got); err != nil {
			t.Fatal(err)
		}
		if got != want {
			t.Errorf("%s = %q, want %q", setting, got, want)
		}
	}
	var tables int
	if err := db.QueryRowContext(ctx, `SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = 'public'`).Scan(&tables); err != nil {
		t.Fatal(err)
	}
	if tables != 0 {
		t.Errorf("a fresh database holds %d tables", tables)
	}
}

func TestDatabasesAreSeparate(t *testing.T) {
	a, b := DSN(t), DSN(t)
	if a == b {
		t.Fatalf("two calls gave the same database %s", a)
	}
}

func TestOpenIsMigratedAndEmpty(t *testing.T) {
	s := Open(t)
	counts := storetest.CountRows(t, s)
	for table, n := range counts {
		if n != 0 {
			t.Errorf("%s has %d rows in a fresh store", table, n)
		}
	}
	storetest.AssertLedger(t, s)
}

func TestDatabaseName(t *testing.T) {
	for _, c := range []struct {
		seq        int64
		test, want string
	}{
		{1, "TestX", "t1_testx"},
		{12, "TestRun/sub test#01", "t12_testrun_sub_test_01"},
		{3, `Quote"Me; DROP`, "t3_quote_me__drop"},
	} {
		if got := databaseName(c.seq, c.test); got != c.want {
			t.Errorf("databaseName(%d, %q) = %q, want %q", c.seq, c.test, got, c.want)
		}
	}
	if got := databaseName(99, strings.Repeat("Long", 40)); len(got) > 63 {
		t.Errorf("name of %d bytes passes PostgreSQL's limit of 63", len(got))
	}
}

// TestCannotStartSkipsUnlessCI runs this test binary again with no usable
// PostgreSQL: a test needing it is skipped, and fails when CI is set.
func TestCannotStartSkipsUnlessCI(t *testing.T) {
	if os.Getenv("PGTEST_CHILD") != "" {
		t.Skip("child run")
	}
	for _, c := range []struct {
		ci       string
		wantFail bool
		want     string
	}{
		{"", false, "--- SKIP: TestServerSettings"},
		{"true", true, "--- FAIL: TestServerSettings"},
	} {
		cmd := exec.Command(os.Args[0], "-test.run=^TestServerSettings$", "-test.v")
		cmd.Env = append(os.Environ(), "PGTEST_CHILD=1", EnvBinDir+"="+t.TempDir(), EnvCI+"="+c.ci)
		out, err := cmd.CombinedOutput()
		if failed := err != nil; failed != c.wantFail || !strings.Contains(string(out), c.want) {
			t.Errorf("CI=%q: exit error %v, output:\n%s\nwant %q", c.ci, err, out, c.want)
		}
	}
}
