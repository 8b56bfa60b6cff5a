package password

import (
	"context"
	"strings"
	"testing"

	"coffer"
)

// testParams are cheap parameters for tests that hash often.
var testParams = Params{TimeCost: 1, MemoryKiB: 64, Parallelism: 1}

// hashers are the two ways a Hasher runs, for tests that hold for both.
func hashers(t *testing.T) map[string]*Hasher {
	t.Helper()
	_, w := testWorkerHasher(t, testParams)
	return map[string]*Hasher{"here": NewHasher(testParams), "worker": w}
}

func TestHashThenVerify(t *testing.T) {
	ctx := context.Background()
	for name, h := range hashers(t) {
		t.Run(name, func(t *testing.T) {
			encoded, err := h.Hash(ctx, "correct horse battery")
			if err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(encoded, "$argon2id$v=19$m=64,t=1,p=1$") {
				t.Fatalf("encoded %q", encoded)
			}
			again, err := h.Hash(ctx, "correct horse battery")
			if err != nil || again == encoded {
				t.Fatalf("a second hash of the same password: %q, %v; want a fresh salt", again, err)
			}
			for pw, want := range map[string]bool{"correct horse battery": true, "correct horse batterY": false, "": false} {
				ok, err := h.Verify(ctx, encoded, pw)
				if err != nil || ok != want {
					t.Errorf("Verify(%q) = %v, %v; want %v", pw, ok, err, want)
				}
			}
			// An unknown user's empty hash is checked against the dummy.
			if ok, err := h.Verify(ctx, "", "correct horse battery"); ok || err != nil {
				t.Errorf("Verify of an empty hash = %v, %v", ok, err)
			}
			// A password longer than any stored one, as a login may send:
			// false, and the worker, if any, still answers.
			long := strings.Repeat("correct horse battery", 2000)
			if ok, err := h.Verify(ctx, encoded, long); ok || err != nil {
				t.Errorf("Verify of a %d-byte password = %v, %v", len(long), ok, err)
			}
			if _, err := h.Hash(ctx, long); err == nil {
				t.Errorf("Hash of a %d-byte password succeeded", len(long))
			}
			if ok, err := h.Verify(ctx, encoded, "correct horse battery"); !ok || err != nil {
				t.Errorf("Verify after a long password = %v, %v", ok, err)
			}
		})
	}
}

// TestVerifyOfHashesNotToBeComputed: a stored hash that cannot be read, or
// whose parameters would cost gigabytes, matches no password and is not
// computed (a worker would refuse it; here it would take 4 TiB).
func TestVerifyOfHashesNotToBeComputed(t *testing.T) {
	ctx := context.Background()
	const salt, key = "c2FsdHNhbHRzYWx0c2FsdA", "a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2U"
	for name, h := range hashers(t) {
		for _, encoded := range []string{
			"$argon2id$v=19$m=4294967295,t=1,p=1$" + salt + "$" + key,
			"$argon2id$v=19$m=64,t=4000000000,p=1$" + salt + "$" + key,
			"$argon2id$v=19$m=64,t=1,p=0$" + salt + "$" + key,
			"$argon2id$v=19$m=64,t=1,p=1$" + salt + "$",
			"$argon2i$v=19$m=64,t=1,p=1$" + salt + "$" + key,
			"$argon2id$v=19$m=64,t=1,p=1$!!!$" + key,
			"not a hash",
		} {
			if ok, err := h.Verify(ctx, encoded, "pw"); ok || err != nil {
				t.Errorf("%s: Verify(%q) = %v, %v; want false, nil", name, encoded, ok, err)
			}
		}
	}
}

func TestBusyWhenTheQueueIsFull(t *testing.T) {
	h := NewHasher(testParams)
	if h.Busy() {
		t.Fatal("busy at rest")
	}
	h.waiting.Store(h.maxWaiting)
	if !h.Busy() {
		t.Fatal("not busy with a full queue")
	}
	if _, err := h.Hash(context.Background(), "pw"); !coffer.IsCode(err, coffer.ErrOverloaded) {
		t.Fatalf("Hash with a full queue: %v, want %s", err, coffer.ErrOverloaded)
	}
}
