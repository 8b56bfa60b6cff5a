package main

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestBenchRunsAMixedLoad runs the bench subcommand for about a second on
// an in-process server and checks that it answered requests, none with a
// 5xx, and left the ledger whole. It asserts nothing about speed.
func TestBenchRunsAMixedLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a server and registers users")
	}
	stdout, stderr, code := runCmd(t, "bench", "--server", "inprocess", "--duration", "1s", "--connections", "4", "--users", "6", "--scenario", "mixed", "--json")
	if code != 0 {
		t.Fatalf("bench: exit %d\nstderr: %s\nstdout: %s", code, stderr, stdout)
	}
	var r struct {
		Requests     int64  `json:"requests"`
		Succeeded    int64  `json:"succeeded"`
		ServerErrors int64  `json:"server_errors"`
		Ledger       string `json:"ledger"`
		Statuses     []struct {
			Status int   `json:"status"`
			Count  int64 `json:"count"`
		} `json:"statuses"`
	}
	if err := json.Unmarshal([]byte(stdout), &r); err != nil {
		t.Fatalf("bench --json printed %q: %v", stdout, err)
	}
	if r.Requests == 0 || r.Succeeded == 0 {
		t.Errorf("bench reported %d requests, %d succeeded", r.Requests, r.Succeeded)
	}
	for _, s := range r.Statuses {
		if s.Status == 0 || s.Status >= 500 {
			t.Errorf("%d requests answered %d (0: no answer)", s.Count, s.Status)
		}
	}
	if r.ServerErrors != 0 || !strings.HasPrefix(r.Ledger, "ok") {
		t.Errorf("server errors %d, ledger %q", r.ServerErrors, r.Ledger)
	}
}

func TestBenchRejectsBadFlags(t *testing.T) {
	for _, args := range [][]string{
		{"bench", "--scenario", "nonsense"},
		{"bench", "--duration", "0s"},
		{"bench", "--connections", "0"},
		{"bench", "--users", "1"},
		{"bench", "--server", "elsewhere"},
		{"bench", "--target", "http://192.0.2.1:8080", "--scenario", "info"},
		{"bench", "--target", "http://127.0.0.1:8080", "--scenario", "transfer"},
	} {
		_, stderr, code := runCmd(t, args...)
		if code != 2 || strings.TrimSpace(stderr) == "" {
			t.Errorf("coffer %v: exit %d, stderr %q; want exit 2 with a message", args, code, stderr)
		}
	}
}
