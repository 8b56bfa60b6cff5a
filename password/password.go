// Package password hashes login passwords with argon2id and keys payment
// passwords with HMAC-SHA-256. Hashing is bounded by a semaphore sized to the
// cores: past a bounded queue it fails fast with ErrOverloaded instead of
// piling requests up.
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
	slots      chan struct{}
	waiting    atomic.Int64
	maxWaiting int64
	dummy      string // verified against for unknown users, to equalise time
}

// NewHasher returns a Hasher with params, running at most one hash per core.
func NewHasher(params Params) *Hasher {
	cores := runtime.GOMAXPROCS(0)
	h := &Hasher{params: params, slots: make(chan struct{}, cores), maxWaiting: int64(cores * maxWaitingPerCore)}
	h.dummy = h.hash("coffer-dummy-password")
	return h
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
	return h.hash(pw), nil
}

func (h *Hasher) hash(pw string) string {
	salt := make([]byte, saltBytes)
	if _, err := rand.Read(salt); err != nil {
		panic(err) // crypto/rand never fails on supported platforms
	}
	p := h.params
	key := argon2.IDKey([]byte(pw), salt, p.TimeCost, p.MemoryKiB, p.Parallelism, keyBytes)
	enc := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, p.MemoryKiB, p.TimeCost, p.Parallelism, enc.EncodeToString(salt), enc.EncodeToString(key))
}

// Verify reports whether pw matches encoded. An empty encoded (an unknown
// user) is checked against a dummy hash so that it takes the same time.
func (h *Hasher) Verify(ctx context.Context, encoded, pw string) (bool, error) {
	if err := h.acquire(ctx); err != nil {
		return false, err
	}
	defer h.release()
	if encoded == "" {
		verify(h.dummy, pw)
		return false, nil
	}
	return verify(encoded, pw), nil
}

func verify(encoded, pw string) bool {
	parts := strings.Split(encoded, "$")
	if len(parts) != 6 || parts[1] != "argon2id" {
		return false
	}
	var p Params
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &p.MemoryKiB, &p.TimeCost, &p.Parallelism); err != nil {
		return false
	}
	enc := base64.RawStdEncoding
	salt, err1 := enc.DecodeString(parts[4])
	want, err2 := enc.DecodeString(parts[5])
	if err1 != nil || err2 != nil || len(want) == 0 {
		return false
	}
	got := argon2.IDKey([]byte(pw), salt, p.TimeCost, p.MemoryKiB, p.Parallelism, uint32(len(want)))
	return subtle.ConstantTimeCompare(got, want) == 1
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
