package main

import (
	"strings"
	"testing"
)

// Regression: a password given as a query parameter, or without a user
// name, reached the startup log.
func TestRedactDSNHidesEveryPassword(t *testing.T) {
	for _, dsn := range []string{
		"postgres://coffer:s3cret@db.internal:5432/coffer?sslmode=require",
		"postgres://coffer@db/coffer?password=s3cret",
		"postgresql:///coffer?host=/run/pg&user=coffer&password=s3cret",
		"postgres://:s3cret@db/coffer",
	} {
		got := redactDSN(dsn)
		if strings.Contains(got, "s3cret") || !strings.HasPrefix(got, "postgres") {
			t.Errorf("redactDSN(%q) = %q", dsn, got)
		}
	}
	if got := redactDSN("coffer.db"); got != "coffer.db" {
		t.Errorf("an SQLite path changed: %q", got)
	}
}
