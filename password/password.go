// Package password hashes login passwords with argon2id and keys payment
// passwords with HMAC-SHA-256. Hashing is bounded by a semaphore sized to the
// cores: past a bounded queue it fails fast with ErrOverloaded instead of
// piling requests up. It runs in the calling process or in a worker process
// of its own (Worker).
package password

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"runtime"
	"strings"
	"sync/atomic"

	"coffer"

	"golang.org/x/crypto/argon2"
)

// Params are argon2id's cost parameters.
type Params struct {
	TimeCost    uint32 // iterations
	MemoryKiB   uint32
	Parallelism uint8
}

// DefaultParams are OWASP's argon2id recommendation: 19 MiB, 2 iterations,
// one lane. About 10 ms of one core per hash.
var DefaultParams = Params{TimeCost: 2, MemoryKiB: 19 * 1024, Parallelism: 1}

const (
	saltBytes = 16
	keyBytes  = 32
	// maxWaitingPerCore bounds the queue of hashes waiting for a core.
	maxWaitingPerCore = 16
)

// Hasher hashes and verifies login passwords.
type Hasher struct {
	params     Params
	slots      chan struct{} // hashes in flight
	waiting    atomic.Int64
	maxWaiting int64
	dummy      string // verified against for unknown users, to equalise time
	deriveKey  func(ctx context.Context, pw, salt []byte, p Params, keyLen uint32) ([]byte, error)
}

// NewHasher returns a Hasher with params that hashes in this process,
// running at most one hash per core.
func NewHasher(params Params) *Hasher {
	h, err := newHasher(params, deriveKeyHere, 1)
	if err != nil {
		panic(err) // hashing here fails only when crypto/rand does
	}
	return h
}

// NewWorkerHasher returns a Hasher with params that hashes in w's process.
// It keeps two hashes per core in flight, so that a worker core that
// finishes one finds the next already waiting instead of idling for a
// round trip between the processes; the worker still runs one per core.
// It fails when the worker cannot hash.
func NewWorkerHasher(params Params, w *Worker) (*Hasher, error) {
	return newHasher(params, w.deriveKey, 2)
}

func newHasher(params Params, deriveKey func(context.Context, []byte, []byte, Params, uint32) ([]byte, error), inFlightPerCore int) (*Hasher, error) {
	cores := runtime.GOMAXPROCS(0)
	h := &Hasher{
		params:     params,
		slots:      make(chan struct{}, cores*inFlightPerCore),
		maxWaiting: int64(cores * maxWaitingPerCore),
		deriveKey:  deriveKey,
	}
	dummy, err := h.hash(context.Background(), "coffer-dummy-password")
	if err != nil {
		return nil, err
	}
	h.dummy = dummy
	return h, nil
}

func deriveKeyHere(_ context.Context, pw, salt []byte, p Params, keyLen uint32) ([]byte, error) {
	if !p.withinBounds(keyLen) {
		return nil, fmt.Errorf("argon2id parameters out of bounds: %+v", p)
	}
	return argon2.IDKey(pw, salt, p.TimeCost, p.MemoryKiB, p.Parallelism, keyLen), nil
}

func (h *Hasher) acquire(ctx context.Context) error {
	if h.waiting.Add(1) > h.maxWaiting {
		h.waiting.Add(-1)
		return coffer.Errorf(coffer.ErrOverloaded, "password hashing queue full")
	}
	defer h.waiting.Add(-1)
	select {
	case h.slots <- struct{}{}:
		return nil
	case <-ctx.Done():
		return coffer.Errorf(coffer.ErrOverloaded, "gave up waiting for a hashing slot")
	}
}

func (h *Hasher) release() { <-h.slots }

// Busy reports whether a hash asked for now would be refused: the queue
// is full.
func (h *Hasher) Busy() bool { return h.waiting.Load() >= h.maxWaiting }

// Hash returns the argon2id hash of pw in the PHC string format.
func (h *Hasher) Hash(ctx context.Context, pw string) (string, error) {
	if err := h.acquire(ctx); err != nil {
		return "", err
	}
	defer h.release()
	return h.hash(ctx, pw)
}

func (h *Hasher) hash(ctx context.Context, pw string) (string, error) {
	if len(pw) > maxInput {
		// Callers validate passwords first (at most 128 characters).
		return "", fmt.Errorf("password of %d bytes is too long to hash", len(pw))
	}
	salt := make([]byte, saltBytes)
	if _, err := rand.Read(salt); err != nil {
		return "", err
	}
	p := h.params
	key, err := h.deriveKey(ctx, []byte(pw), salt, p, keyBytes)
	if err != nil {
		return "", err
	}
	enc := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, p.MemoryKiB, p.TimeCost, p.Parallelism, enc.EncodeToString(salt), enc.EncodeToString(key)), nil
}

// Verify reports whether pw matches encoded. An empty encoded (an unknown
// user) is checked against a dummy hash so that it takes the same time.
func (h *Hasher) Verify(ctx context.Context, encoded, pw string) (bool, error) {
	if err := h.acquire(ctx); err != nil {
		return false, err
	}
	defer h.release()
	if encoded == "" || len(pw) > maxInput {
		// No stored password is that long (at most 128 characters): the
		// dummy check takes the time a real one would.
		_, err := h.verify(ctx, h.dummy, pw[:min(len(pw), maxInput)])
		return false, err
	}
	return h.verify(ctx, encoded, pw)
}

// verify reports false, without an error, for an encoded hash it cannot
// read or whose parameters are out of bounds: no password matches it.
func (h *Hasher) verify(ctx context.Context, encoded, pw string) (bool, error) {
	parts := strings.Split(encoded, "$")
	if len(parts) != 6 || parts[1] != "argon2id" {
		return false, nil
	}
	var p Params
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &p.MemoryKiB, &p.TimeCost, &p.Parallelism); err != nil {
		return false, nil
	}
	enc := base64.RawStdEncoding
	salt, err1 := enc.DecodeString(parts[4])
	want, err2 := enc.DecodeString(parts[5])
	if err1 != nil || err2 != nil || len(salt) > maxInput || !p.withinBounds(uint32(len(want))) {
		return false, nil
	}
	got, err := h.deriveKey(ctx, []byte(pw), salt, p, uint32(len(want)))
	if err != nil {
		return false, err
	}
	return subtle.ConstantTimeCompare(got, want) == 1, nil
}

// PayKeyer keys 6-digit payment passwords with HMAC-SHA-256 under a server
// secret kept outside the database.
type PayKeyer struct{ secret []byte }

// NewPayKeyer returns a PayKeyer for secret, which must be at least 32 bytes.
func NewPayKeyer(secret []byte) (*PayKeyer, error) {
	if len(secret) < 32 {
		return nil, fmt.Errorf("server secret is %d bytes, want at least 32", len(secret))
	}
	return &PayKeyer{secret: append([]byte(nil), secret...)}, nil
}

// Key returns salt||HMAC(secret, salt||pin) with a fresh random salt, so
// that equal PINs of two users do not look equal in the database.
func (k *PayKeyer) Key(pin string) []byte {
	salt := make([]byte, saltBytes)
	if _, err := rand.Read(salt); err != nil {
		panic(err)
	}
	return append(salt, k.mac(salt, pin)...)
}

// Match reports whether pin matches a stored key.
func (k *PayKeyer) Match(stored []byte, pin string) bool {
	if len(stored) != saltBytes+sha256.Size {
		return false
	}
	return hmac.Equal(stored[saltBytes:], k.mac(stored[:saltBytes], pin))
}

func (k *PayKeyer) mac(salt []byte, pin string) []byte {
	m := hmac.New(sha256.New, k.secret)
	m.Write(salt)
	m.Write([]byte(pin))
	return m.Sum(nil)
}
