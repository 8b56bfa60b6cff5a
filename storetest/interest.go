package storetest

import (
	"testing"
	"time"

	"coffer"
)

func testBusinessDays(t *testing.T, s coffer.Store) {
	last := func() string {
		t.Helper()
		var d string
		view(t, s, func(tx coffer.ReadTx) error {
			var err error
			d, err = tx.LastClosedDay(bg)
			return err
		})
		return d
	}
	if d := last(); d != "" {
		t.Errorf("fresh store: last closed day %q", d)
	}
	closeDay := func(day string) error {
		return s.Update(bg, func(tx coffer.Tx) error { return tx.CloseDay(bg, day, Start) })
	}
	if err := closeDay("2026-11-22"); err != nil {
		t.Fatal(err)
	}
	if d := last(); d != "2026-11-22" {
		t.Errorf("last closed day %q, want 2026-11-22", d)
	}
	before := CountRows(t, s)
	wantCode(t, "closing a day twice", closeDay("2026-11-22"), coffer.ErrDayClosed)
	sameCounts(t, "closing a day twice", before, CountRows(t, s))
	for _, d := range []string{"2026-11-23", "2026-11-20"} {
		if err := closeDay(d); err != nil {
			t.Fatalf("close %s: %v", d, err)
		}
	}
	if d := last(); d != "2026-11-23" {
		t.Errorf("last closed day %q after closing an earlier one, want 2026-11-23", d)
	}
	countDelta(t, "two more days", before, CountRows(t, s), map[string]int64{"business_days": 2})
}

func testFirstEntryAt(t *testing.T, s coffer.Store) {
	first := func() (time.Time, bool) {
		t.Helper()
		var at time.Time
		var ok bool
		view(t, s, func(tx coffer.ReadTx) error {
			var err error
			at, ok, err = tx.FirstEntryAt(bg, coffer.KindWealth)
			return err
		})
		return at, ok
	}
	if at, ok := first(); ok {
		t.Errorf("fresh store: first wealth entry at %v", at)
	}
	u := createUsers(t, s, 1, 1)[0]
	Deposit(t, s, u.ID, 100_00)
	if at, ok := first(); ok {
		t.Errorf("a card deposit counts as a wealth entry at %v", at)
	}
	t2, t1 := Start.Add(3*time.Hour), Start.Add(time.Hour+123*time.Millisecond)
	post(t, s, t2, coffer.Leg{From: coffer.CardAccount(u.ID), To: wealthAccount(u.ID, "demand", 0), Amount: 10_00})
	if at, ok := first(); !ok || !at.Equal(t2) {
		t.Errorf("first wealth entry %v %v, want %v", at, ok, t2)
	}
	post(t, s, t1, coffer.Leg{From: coffer.CardAccount(u.ID), To: wealthAccount(u.ID, "demand", 0), Amount: 10_00})
	if at, ok := first(); !ok || !at.Equal(t1) {
		t.Errorf("first wealth entry %v %v, want the earlier %v", at, ok, t1)
	}
	AssertLedger(t, s)
}

func testWealthHoldingsAndCarry(t *testing.T, s coffer.Store) {
	users := createUsers(t, s, 1, 2)
	a, b := users[0].ID, users[1].ID
	Deposit(t, s, a, 10_000_00)
	Deposit(t, s, b, 10_000_00)
	var lot coffer.AccountKey
	update(t, s, func(tx coffer.Tx) error {
		var err error
		lot, err = tx.CreateLot(bg, b, "fixed90", "2027-02-21")
		return err
	})
	demand := wealthAccount(a, "demand", 0)
	post(t, s, Start,
		coffer.Leg{From: coffer.CardAccount(a), To: demand, Amount: 100_00},
		coffer.Leg{From: coffer.CardAccount(b), To: lot, Amount: 1000_00},
		coffer.Leg{From: goldDesk, To: goldAccount(a), Amount: 1000},
		coffer.Leg{From: coffer.SystemAccount(coffer.KindInterest, coffer.AssetCNY), To: coffer.CardAccount(b), Amount: 1},
	)
	update(t, s, func(tx coffer.Tx) error { return tx.SetInterestCarry(bg, lot, 9_999) })
	holdings := func() map[coffer.AccountKey]coffer.Holding {
		t.Helper()
		var hs []coffer.Holding
		view(t, s, func(tx coffer.ReadTx) error {
			var err error
			hs, err = tx.WealthHoldings(bg)
			return err
		})
		out := map[coffer.AccountKey]coffer.Holding{}
		for _, h := range hs {
			out[h.Key] = h
		}
		if len(out) != len(hs) {
			t.Errorf("wealth holdings list an account twice: %+v", hs)
		}
		return out
	}
	want := map[coffer.AccountKey]coffer.Holding{
		demand: {Key: demand, Balance: 100_00},
		lot:    {Key: lot, Balance: 1000_00, MaturesOn: "2027-02-21", Carry: 9_999},
	}
	if got := holdings(); len(got) != len(want) || got[demand] != want[demand] || got[lot] != want[lot] {
		t.Errorf("wealth holdings %+v, want %+v", got, want)
	}
	update(t, s, func(tx coffer.Tx) error {
		if err := tx.SetInterestCarry(bg, lot, 0); err != nil {
			return err
		}
		return tx.SetInterestCarry(bg, demand, 42)
	})
	got := holdings()
	if got[lot].Carry != 0 || got[demand].Carry != 42 || got[demand].Balance != 100_00 {
		t.Errorf("after changing carries: %+v", got)
	}
	// The carry is not money: the ledger does not see it.
	AssertLedger(t, s)
}

func testBalanceBefore(t *testing.T, s coffer.Store) {
	u := createUsers(t, s, 1, 1)[0]
	card, demand := coffer.CardAccount(u.ID), wealthAccount(u.ID, "demand", 0)
	t1, t2, t3 := Start.Add(time.Hour), Start.Add(2*time.Hour), Start.Add(3*time.Hour)
	Deposit(t, s, u.ID, 1000_00)
	post(t, s, t1, coffer.Leg{From: card, To: demand, Amount: 100_00})
	post(t, s, t2, coffer.Leg{From: card, To: demand, Amount: 50_00})
	post(t, s, t3, coffer.Leg{From: demand, To: card, Amount: 30_00})
	ms := time.Millisecond
	for _, c := range []struct {
		key    coffer.AccountKey
		before time.Time
		want   int64
	}{
		{demand, Start, 0},
		{demand, t1, 0}, // an entry at the instant itself does not count
		{demand, t1.Add(ms), 100_00},
		{demand, t2, 100_00},
		{demand, t2.Add(ms), 150_00},
		{demand, t3.Add(ms), 120_00},
		{demand, t3.Add(1000 * time.Hour), 120_00},
		{card, t1, 1000_00},
		{card, t3.Add(ms), 880_00},
		{wealthAccount(u.ID, "fixed90", 1), t3, 0},
	} {
		var got int64
		view(t, s, func(tx coffer.ReadTx) error {
			var err error
			got, err = tx.BalanceBefore(bg, c.key, c.before)
			return err
		})
		if got != c.want {
			t.Errorf("balance of %v before %v = %d, want %d", c.key, c.before, got, c.want)
		}
	}
	AssertLedger(t, s)
}

func testSetFundNAV(t *testing.T, s coffer.Store) {
	err := s.Update(bg, func(tx coffer.Tx) error { return tx.SetFundNAV(bg, "000001", "2026-11-23", 1_0000) })
	wantCode(t, "NAV of an unknown fund", err, coffer.ErrProductNotFound)
	f := coffer.Fund{Code: "000001", Name: "华夏成长混合", NAV: 1_2345, NAVDate: "2026-11-23"}
	update(t, s, func(tx coffer.Tx) error { return tx.PutFund(bg, f) })
	current := func() coffer.Fund {
		t.Helper()
		var got coffer.Fund
		view(t, s, func(tx coffer.ReadTx) error {
			var err error
			got, err = tx.Fund(bg, f.Code)
			return err
		})
		return got
	}
	set := func(date string, nav coffer.NAV) {
		t.Helper()
		update(t, s, func(tx coffer.Tx) error { return tx.SetFundNAV(bg, f.Code, date, nav) })
	}
	before := CountRows(t, s)
	set("2026-11-24", 1_3000)
	if got := current(); got.NAV != 1_3000 || got.NAVDate != "2026-11-24" || got.Name != f.Name {
		t.Errorf("after a newer NAV: %+v", got)
	}
	set("2026-11-20", 1_1000) // history only: the current NAV is newer
	if got := current(); got.NAV != 1_3000 || got.NAVDate != "2026-11-24" {
		t.Errorf("an older NAV replaced the current one: %+v", got)
	}
	set("2026-11-24", 1_3100) // a correction of the latest
	if got := current(); got.NAV != 1_3100 || got.NAVDate != "2026-11-24" {
		t.Errorf("after correcting the latest NAV: %+v", got)
	}
	countDelta(t, "NAV history", before, CountRows(t, s), map[string]int64{"fund_navs": 2})
}
