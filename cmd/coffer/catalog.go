package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"coffer"
)

func cmdAccrue(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	var c common
	fs := newFlags("accrue", getenv, stderr, &c)
	date := fs.String("date", "", "close every business day up to and including this one, YYYY-MM-DD (default: yesterday)")
	if err := parse(fs, args); err != nil {
		return err
	}
	return withBank(ctx, c, func(bank *coffer.Bank) error {
		d := *date
		if d == "" {
			d = bank.Yesterday()
		}
		r, err := bank.CloseDays(ctx, d)
		if coffer.IsCode(err, coffer.ErrInvalidField) {
			return usageError{fmt.Sprintf("bad --date %q: want YYYY-MM-DD, today or earlier (%v)", d, err)}
		}
		if err != nil {
			return err
		}
		if r.AlreadyClosed {
			fmt.Fprintf(stdout, "nothing to close through %s\n", d)
			return nil
		}
		fmt.Fprintf(stdout, "closed %d days (%s to %s): interest %s in %d postings; %d lots matured, %s returned to cards\n",
			len(r.Days), r.Days[0], r.Days[len(r.Days)-1], r.InterestFen, r.Postings, r.LotsMatured, r.MaturedFen)
		return nil
	})
}

// accrueEvery is how often the server looks for a day to close.
const accrueEvery = time.Minute

// accrualScheduler closes yesterday (and any missed day) shortly after
// midnight in the configured zone. Several servers may run it at once:
// each day is closed exactly once.
func accrualScheduler(ctx context.Context, bank *coffer.Bank, logf func(msg string, args ...any)) {
	t := time.NewTicker(accrueEvery)
	defer t.Stop()
	for {
		r, err := bank.CloseDays(ctx, bank.Yesterday())
		switch {
		case err != nil && ctx.Err() == nil:
			logf("accrual failed", "err", err.Error())
		case err == nil && !r.AlreadyClosed:
			logf("days closed", "days", len(r.Days), "last", r.Days[len(r.Days)-1], "interest", r.InterestFen.String(), "lots_matured", r.LotsMatured)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func cmdProduct(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return usageError{"usage: coffer product add|set|retire|list [flags]"}
	}
	sub, args := args[0], args[1:]
	var c common
	fs := newFlags("product "+sub, getenv, stderr, &c)
	kind := fs.String("kind", "", "the product's kind (its key in purchases)")
	name := fs.String("name", "", "display name")
	fs.String("yield", "", "annual yield in percent, e.g. 2.35")
	fs.String("min", "", "minimum purchase in yuan")
	term := fs.Int("term-days", -1, "term in days; 0 for a demand product")
	if err := parse(fs, args); err != nil {
		return err
	}
	return withBank(ctx, c, func(bank *coffer.Bank) error {
		switch sub {
		case "list":
			return listProducts(ctx, bank, stdout)
		case "add":
			p := coffer.WealthProduct{Kind: *kind, Name: *name, TermDays: *term}
			if err := productFlags(fs, &p); err != nil {
				return err
			}
			return reportCatalog(stdout, bank.PutWealthProduct(ctx, p, true), "added", *kind)
		case "set", "retire":
			p, err := bank.WealthProduct(ctx, *kind)
			if err != nil {
				return fmt.Errorf("wealth product %q: %w", *kind, err)
			}
			if sub == "retire" {
				p.Retired = true
			} else {
				if *name != "" {
					p.Name = *name
				}
				if *term >= 0 {
					p.TermDays = *term
				}
				if err := productFlags(fs, &p); err != nil {
					return err
				}
			}
			return reportCatalog(stdout, bank.PutWealthProduct(ctx, p, false), sub, *kind)
		}
		return usageError{fmt.Sprintf("unknown product command %q", sub)}
	})
}

// productFlags applies --yield and --min when given.
func productFlags(fs *flag.FlagSet, p *coffer.WealthProduct) error {
	var err error
	fs.Visit(func(f *flag.Flag) {
		v := f.Value.String()
		switch f.Name {
		case "yield":
			bp, ok := coffer.ParseDecimal(v, 2)
			if !ok {
				err = usageError{fmt.Sprintf("bad --yield %q: want a percentage with at most two decimals", v)}
			}
			p.AnnualYieldBP = bp
		case "min":
			a, ok := coffer.ParseAmount(v)
			if !ok {
				err = usageError{fmt.Sprintf("bad --min %q", v)}
			}
			p.MinAmount = a
		}
	})
	return err
}

func reportCatalog(stdout io.Writer, err error, what, key string) error {
	if coffer.IsCode(err, coffer.ErrInvalidField) {
		return usageError{err.Error()}
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s %s\n", what, key)
	return nil
}

func listProducts(ctx context.Context, bank *coffer.Bank, stdout io.Writer) error {
	var wealth []coffer.WealthProduct
	var funds []coffer.Fund
	err := bank.Store().View(ctx, func(tx coffer.ReadTx) error {
		var err error
		if wealth, err = tx.WealthProducts(ctx); err != nil {
			return err
		}
		funds, err = tx.Funds(ctx)
		return err
	})
	if err != nil {
		return err
	}
	w := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "wealth\tname\tyield %\tmin\tterm days\tretired")
	for _, p := range wealth {
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%d\t%v\n", p.Kind, p.Name, coffer.FormatDecimal(p.AnnualYieldBP, 2), p.MinAmount, p.TermDays, p.Retired)
	}
	fmt.Fprintln(w, "fund\tname\tnav\tnav date\t\tretired")
	for _, f := range funds {
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t\t%v\n", f.Code, f.Name, f.NAV, f.NAVDate, f.Retired)
	}
	return w.Flush()
}

func cmdFund(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return usageError{"usage: coffer fund add|nav|set|retire|list [flags]"}
	}
	sub, args := args[0], args[1:]
	var c common
	fs := newFlags("fund "+sub, getenv, stderr, &c)
	code := fs.String("code", "", "the fund's code")
	name := fs.String("name", "", "display name")
	navFlag := fs.String("nav", "", "net asset value per share in yuan, at most four decimals")
	date := fs.String("date", "", "the NAV's date, YYYY-MM-DD (default: today)")
	if err := parse(fs, args); err != nil {
		return err
	}
	return withBank(ctx, c, func(bank *coffer.Bank) error {
		day := *date
		if day == "" {
			day = bank.Day(time.Now())
		}
		var nav coffer.NAV
		if sub == "add" || sub == "nav" {
			v, ok := coffer.ParseDecimal(*navFlag, coffer.NAVScale)
			if !ok || v <= 0 {
				return usageError{fmt.Sprintf("bad --nav %q: want a positive decimal with at most four decimals", *navFlag)}
			}
			nav = coffer.NAV(v)
		}
		switch sub {
		case "list":
			return listProducts(ctx, bank, stdout)
		case "add":
			return reportCatalog(stdout, bank.PutFund(ctx, coffer.Fund{Code: *code, Name: *name, NAV: nav, NAVDate: day}, true), "added", *code)
		case "nav":
			err := bank.SetFundNAV(ctx, *code, day, nav)
			if coffer.IsCode(err, coffer.ErrProductNotFound) {
				return usageError{fmt.Sprintf("no fund has code %q", *code)}
			}
			return reportCatalog(stdout, err, "nav "+nav.String()+" on "+day+" for", *code)
		case "set", "retire":
			f, err := bank.Fund(ctx, *code)
			if err != nil {
				return fmt.Errorf("fund %q: %w", *code, err)
			}
			if sub == "retire" {
				f.Retired = true
			} else if *name != "" {
				f.Name = *name
			}
			return reportCatalog(stdout, bank.PutFund(ctx, f, false), sub, *code)
		}
		return usageError{fmt.Sprintf("unknown fund command %q", sub)}
	})
}
