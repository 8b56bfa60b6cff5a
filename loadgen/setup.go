package loadgen

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// setup registers the users (with a payment password), logs each in,
// deposits their funds and, for scenarios that read statements, gives
// them a history.
func (r *Runner) setup(ctx context.Context) error {
	r.users = make([]benchUser, r.cfg.Users)
	steps := []struct {
		what string
		n    int
		fn   func(ctx context.Context, i int) error
		need bool
	}{
		{"registering", len(r.users), r.register, true},
		{"logging in", len(r.users), r.login, true},
		{"backfilling a history for", 1, r.backfill, r.cfg.Backfill != nil},
		{"depositing funds for", len(r.users), r.fund, r.cfg.Fund != nil},
		{"making a history of bills for", len(r.users), r.history, readsBills(r.cfg.Scenarios)},
	}
	for _, s := range steps {
		if !s.need {
			continue
		}
		start := time.Now()
		fmt.Fprintf(r.cfg.Progress, "setup: %s %d users\n", s.what, len(r.users))
		if err := parallel(ctx, s.n, s.fn); err != nil {
			return fmt.Errorf("setup: %s users: %w", s.what, err)
		}
		fmt.Fprintf(r.cfg.Progress, "setup: done in %.1f s\n", time.Since(start).Seconds())
	}
	return nil
}

// parallel runs fn for 0..n-1 on setupWorkers goroutines and returns the
// first error.
func parallel(ctx context.Context, n int, fn func(ctx context.Context, i int) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var next atomic.Int64
	var once sync.Once
	var first error
	var wg sync.WaitGroup
	for range min(setupWorkers, n) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= n || ctx.Err() != nil {
					return
				}
				if err := fn(ctx, i); err != nil {
					once.Do(func() { first = err; cancel() })
					return
				}
			}
		}()
	}
	wg.Wait()
	if first == nil {
		first = ctx.Err()
	}
	return first
}

// do sends a setup request, trying again while the server answers 429
// or 503 (its hashing queue is full), and returns the final answer.
func (r *Runner) do(ctx context.Context, build func() call) (int, []byte, error) {
	for try := 1; ; try++ {
		resp, err := r.client.Do(r.httpRequest(ctx, build()))
		if err != nil {
			return 0, nil, err
		}
		body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		resp.Body.Close()
		if err != nil {
			return 0, nil, err
		}
		busy := resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable
		if !busy || try == setupTries {
			return resp.StatusCode, body, nil
		}
		select {
		case <-ctx.Done():
			return 0, nil, ctx.Err()
		case <-time.After(time.Duration(try) * 20 * time.Millisecond):
		}
	}
}

// register creates user i with random unique identifiers, drawing new ones
// when they are taken (409).
func (r *Runner) register(ctx context.Context, i int) error {
	rng := rand.New(rand.NewPCG(rand.Uint64(), uint64(i)))
	username := "b" + r.runID + "_" + strconv.Itoa(i)
	for try := 0; try < setupTries; try++ {
		mobile := "1" + strconv.Itoa(3+rng.IntN(7)) + fmt.Sprintf("%09d", rng.IntN(1_000_000_000))
		body, _ := json.Marshal(map[string]string{
			"username": username, "password": userPassword, "email": username + "@bench.example.com",
			"mobile": mobile, "cardnum": luhnCard(rng), "pay_password": payPassword,
		})
		status, answer, err := r.do(ctx, func() call { return call{method: http.MethodPost, path: "/api/user", body: body} })
		if err != nil {
			return err
		}
		switch status {
		case http.StatusCreated:
			r.users[i] = benchUser{username: username, mobile: mobile}
			return nil
		case http.StatusConflict: // a mobile or card of an earlier run: draw again
			continue
		default:
			return fmt.Errorf("register %s: HTTP %d %s", username, status, answer)
		}
	}
	return fmt.Errorf("register %s: identifiers taken %d times", username, setupTries)
}

// luhnCard draws a 16-digit card number that passes the Luhn check.
func luhnCard(rng *rand.Rand) string {
	digits := make([]byte, 16)
	copy(digits, "6222")
	for k := 4; k < 15; k++ {
		digits[k] = byte('0' + rng.IntN(10))
	}
	sum := 0
	for k := 14; k >= 0; k-- {
		d := int(digits[k] - '0')
		if (14-k)%2 == 0 { // doubled: every second digit from the check digit's left neighbour
			d *= 2
			if d > 9 {
				d -= 9
			}
		}
		sum += d
	}
	digits[15] = byte('0' + (10-sum%10)%10)
	return string(digits)
}

// login opens user i's session.
func (r *Runner) login(ctx context.Context, i int) error {
	u := &r.users[i]
	status, answer, err := r.do(ctx, func() call { return call{method: http.MethodPost, path: "/api/login", body: loginBody(u.username)} })
	if err != nil {
		return err
	}
	var env struct {
		Token string `json:"token"`
	}
	if status != http.StatusOK || json.Unmarshal(answer, &env) != nil || env.Token == "" {
		return fmt.Errorf("login %s: HTTP %d %s", u.username, status, answer)
	}
	u.token = env.Token
	return nil
}

// fund deposits user i's starting balance.
func (r *Runner) fund(ctx context.Context, i int) error {
	return r.cfg.Fund(ctx, r.users[i].mobile, depositFen)
}

// backfill hands the users to the configured Backfill; it runs once.
func (r *Runner) backfill(ctx context.Context, _ int) error {
	mobiles := make([]string, len(r.users))
	for i, u := range r.users {
		mobiles[i] = u.mobile
	}
	return r.cfg.Backfill(ctx, mobiles)
}

// history makes historyPerUser transfers from user i to random others.
func (r *Runner) history(ctx context.Context, i int) error {
	rng := rand.New(rand.NewPCG(rand.Uint64(), uint64(i)))
	for range historyPerUser {
		_, j := r.pair(rng, len(r.users))
		if j == i {
			j = (i + 1) % len(r.users)
		}
		status, answer, err := r.do(ctx, func() call { return r.transfer(r.users[i], r.users[j], rng) })
		if err != nil {
			return err
		}
		if status != http.StatusOK {
			return fmt.Errorf("transfer from %s: HTTP %d %s", r.users[i].username, status, answer)
		}
	}
	return nil
}
