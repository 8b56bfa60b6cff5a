package history_test

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"coffer"
	"coffer/history"
	"coffer/internal/pgtest"
	"coffer/internal/teststores"
	"coffer/sqlite"
	"coffer/storetest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

var bg = context.Background()

// users registers n users through the bank and returns them as stored.
func users(t testing.TB, bank *coffer.Bank, n int) []coffer.User {
	t.Helper()
	out := make([]coffer.User, n)
	for i := range out {
		r := storetest.Registration(i)
		if err := bank.Register(bg, r); err != nil {
			t.Fatalf("register: %v", err)
		}
		err := bank.Store().View(bg, func(tx coffer.ReadTx) error {
			var err error
			out[i], err = tx.UserByMobile(bg, r.Mobile)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return out
}

func TestWrite(t *testing.T) {
	for _, st := range teststores.All(t) {
		t.Run(st.Name, func(t *testing.T) {
			store := st.Open(t)
			bank, clock := storetest.NewBank(t, store)
			us := users(t, bank, 5)
			before := storetest.CountRows(t, store)
			var progress bytes.Buffer
			const bills = 2*history.PerUpdate + 3 // three store transactions, the last one short; odd
			now := clock.Now().Add(-time.Hour)
			res, err := history.Write(bg, store, history.Plan{Users: us, Bills: bills, Now: now, Span: 24 * time.Hour, Seed: 7, Progress: &progress})
			if err != nil {
				t.Fatal(err)
			}
			if res.Transfers != history.PerUpdate+2 || res.Bills != bills+1 {
				t.Errorf("wrote %d transfers, %d bills; want %d, %d", res.Transfers, res.Bills, history.PerUpdate+2, bills+1)
			}
			after := storetest.CountRows(t, store)
			if got, want := after["entries"]-before["entries"], int64(bills+1+2*len(us)); got != want {
				t.Errorf("entries grew by %d, want %d (the bills and a deposit's two legs per user)", got, want)
			}
			if got, want := after["transactions"]-before["transactions"], res.Transfers+int64(len(us)); got != want {
				t.Errorf("transactions grew by %d, want %d", got, want)
			}
			storetest.AssertLedger(t, store)
			if end := fmt.Sprintf("history: %d of %d bills", bills+1, bills+1); !strings.Contains(progress.String(), end) {
				t.Errorf("progress %q does not report the end", progress.String())
			}

			// Transfers conserve money: the cards hold what was deposited,
			// every user both paid and was paid, and the newest bill is at
			// the plan's end.
			var total, deposited coffer.Amount
			var newest time.Time
			for _, u := range us {
				in, err := bank.Info(bg, u.ID)
				if err != nil {
					t.Fatal(err)
				}
				total += in.Balance
				page, err := bank.Wallet(bg, u.ID, coffer.KindCard, "", coffer.WalletMaxLimit)
				if err != nil {
					t.Fatal(err)
				}
				methods := map[coffer.Method]int{}
				for _, b := range page.Bills {
					methods[b.Method]++
					if b.Date.After(newest) {
						newest = b.Date
					}
				}
				if methods[coffer.MethodTransferIn] == 0 || methods[coffer.MethodTransferOut] == 0 {
					t.Errorf("user %d's newest bills %v: want both directions", u.ID, methods)
				}
			}
			err = store.View(bg, func(tx coffer.ReadTx) error {
				b, err := tx.Balance(bg, coffer.SystemAccount(coffer.KindCash, coffer.AssetCNY))
				deposited = -coffer.Amount(b)
				return err
			})
			if err != nil {
				t.Fatal(err)
			}
			if total != deposited || total <= 0 {
				t.Errorf("cards hold %s, %s was deposited", total, deposited)
			}
			if !newest.Equal(now.Truncate(time.Millisecond)) {
				t.Errorf("newest bill at %s, want the plan's end %s", newest, now)
			}
		})
	}
}

func TestWriteRefuses(t *testing.T) {
	store := teststores.SQLite(t)
	bank, clock := storetest.NewBank(t, store)
	us := users(t, bank, 2)
	for _, c := range []struct {
		name string
		plan history.Plan
		want string
	}{
		{"one user", history.Plan{Users: us[:1], Bills: 10}, "two users"},
		{"no bills", history.Plan{Users: us, Bills: 0}, "positive"},
		{"too many per user", history.Plan{Users: us, Bills: 1 << 50}, "more users"},
	} {
		c.plan.Now = clock.Now()
		_, err := history.Write(bg, store, c.plan)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want one saying %q", c.name, err, c.want)
		}
	}
	if n := storetest.CountRows(t, store)["entries"]; n != 0 {
		t.Errorf("refused plans wrote %d entries", n)
	}
}

// BenchmarkWrite measures writing bills to a SQLite store, b.N bills
// among 100 users.
func BenchmarkWrite(b *testing.B) {
	store, err := sqlite.Open(bg, filepath.Join(b.TempDir(), "coffer.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer store.Close()
	bank, clock := storetest.NewBank(b, store)
	us := users(b, bank, 100)
	b.ResetTimer()
	if _, err := history.Write(bg, store, history.Plan{Users: us, Bills: int64(b.N), Now: clock.Now(), Seed: 1}); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "bills/s")
}
