package coffer

import (
	"fmt"
	"strings"
	"time"
)

// Asset names what a ledger amount counts.
type Asset string

// The assets: CNY in fen, gold in milligrams, and one asset per fund whose
// amounts are shares x 10^4 ("FUND:000001").
const (
	AssetCNY  Asset = "CNY"
	AssetGold Asset = "XAU"
)

// FundAsset is the asset of fund code's shares.
func FundAsset(code string) Asset { return Asset("FUND:" + code) }

// AccountKind says what an account holds or who stands behind it.
type AccountKind string

// Account kinds. User accounts (card, wealth, gold, fund) never go negative;
// system accounts stand on the other side of the user's movements and may.
const (
	KindCard     AccountKind = "card"
	KindWealth   AccountKind = "wealth"
	KindGold     AccountKind = "gold"
	KindFund     AccountKind = "fund"
	KindCash     AccountKind = "cash"     // cash deposited at the counter
	KindCarrier  AccountKind = "carrier"  // mobile carriers' settlement
	KindGoldDesk AccountKind = "golddesk" // the bank's gold trading desk
	KindFundDesk AccountKind = "funddesk" // the bank's fund distribution desk
	KindInterest AccountKind = "interest" // interest expense on wealth products
)

// AccountKey identifies a ledger account. System accounts have User 0.
// Product is the wealth kind or fund code where the account holds one;
// Lot numbers the fixed-term purchases of one product (0 otherwise).
type AccountKey struct {
	User    UserID
	Kind    AccountKind
	Asset   Asset
	Product string
	Lot     int64
}

// IsUser reports whether the account belongs to a user and so may never go negative.
func (k AccountKey) IsUser() bool { return k.User != 0 }

// String is a readable, unique name of the account.
func (k AccountKey) String() string {
	var b strings.Builder
	if k.IsUser() {
		fmt.Fprintf(&b, "user:%d:%s", k.User, k.Kind)
	} else {
		fmt.Fprintf(&b, "system:%s", k.Kind)
	}
	fmt.Fprintf(&b, ":%s", k.Asset)
	if k.Product != "" {
		fmt.Fprintf(&b, ":%s", k.Product)
	}
	if k.Lot != 0 {
		fmt.Fprintf(&b, ":lot%d", k.Lot)
	}
	return b.String()
}

// Less orders account keys; transactions touch accounts in this order so
// that concurrent payments never lock in opposite orders.
func (k AccountKey) Less(o AccountKey) bool {
	if k.User != o.User {
		return k.User < o.User
	}
	if k.Kind != o.Kind {
		return k.Kind < o.Kind
	}
	if k.Asset != o.Asset {
		return k.Asset < o.Asset
	}
	if k.Product != o.Product {
		return k.Product < o.Product
	}
	return k.Lot < o.Lot
}

// CardAccount is user's bank card account.
func CardAccount(user UserID) AccountKey {
	return AccountKey{User: user, Kind: KindCard, Asset: AssetCNY}
}

// SystemAccount is the system account of kind for asset.
func SystemAccount(kind AccountKind, asset Asset) AccountKey {
	return AccountKey{Kind: kind, Asset: asset}
}

// Method is the kind of a movement as a bill shows it.
type Method string

// The bill methods of the contract.
const (
	MethodDeposit         Method = "deposit"
	MethodTransferIn      Method = "transfer_in"
	MethodTransferOut     Method = "transfer_out"
	MethodMobilePay       Method = "mobilepay"
	MethodMoneyManagement Method = "moneymanagement"
	MethodRedeem          Method = "redeem"
	MethodMaturity        Method = "maturity"
	MethodFund            Method = "fund"
	MethodFundRedeem      Method = "fund_redeem"
	MethodGold            Method = "gold"
	MethodGoldSell        Method = "gold_sell"
	MethodInterest        Method = "interest"
)

// Leg moves Amount of one asset from one account to another. Each side has
// its own method and details, as each owner's bill shows them.
type Leg struct {
	From, To      AccountKey
	Amount        int64
	FromMethod    Method
	ToMethod      Method
	FromDetails   string
	ToDetails     string
	ShortfallCode Code // returned when From would go negative; default ErrInsufficientFunds
}

// Transaction is one atomic ledger posting: all legs or none.
type Transaction struct {
	User      UserID // who initiated it; 0 for operators and the system
	Kind      string // the mode or operator action
	Legs      []Leg
	Memo      string // kept for the record, e.g. the client's purchase time
	CreatedAt time.Time
}

// MaxLegs bounds the legs of one transaction.
const MaxLegs = 16

// Validate checks that every leg is balanced by construction: a positive
// amount, two distinct accounts of one asset.
func (t *Transaction) Validate() error {
	if len(t.Legs) == 0 || len(t.Legs) > MaxLegs {
		return Errorf(ErrInternal, "transaction has %d legs", len(t.Legs))
	}
	for i, l := range t.Legs {
		if l.Amount <= 0 {
			return Errorf(ErrInternal, "leg %d amount %d is not positive", i, l.Amount)
		}
		if l.From == l.To {
			return Errorf(ErrInternal, "leg %d moves %s to itself", i, l.From)
		}
		if l.From.Asset != l.To.Asset {
			return Errorf(ErrInternal, "leg %d mixes assets %s and %s", i, l.From.Asset, l.To.Asset)
		}
	}
	return nil
}

// AccountChange is the net change of one account in a transaction.
type AccountChange struct {
	Key   AccountKey
	Delta int64
	// ShortfallCode is the code to report if a user account would go negative.
	ShortfallCode Code
}

// NetChanges sums the legs per account, ordered by AccountKey.Less: the
// order in which a store must update balances.
func (t *Transaction) NetChanges() []AccountChange {
	var out []AccountChange
	add := func(k AccountKey, d int64, code Code) {
		for i := range out {
			if out[i].Key == k {
				out[i].Delta += d
				if code != "" {
					out[i].ShortfallCode = code
				}
				return
			}
		}
		out = append(out, AccountChange{Key: k, Delta: d, ShortfallCode: code})
	}
	for _, l := range t.Legs {
		code := l.ShortfallCode
		if code == "" {
			code = ErrInsufficientFunds
		}
		add(l.From, -l.Amount, code)
		add(l.To, l.Amount, "")
	}
	for i := 1; i < len(out); i++ {
		for j := i; j > 0 && out[j].Key.Less(out[j-1].Key); j-- {
			out[j], out[j-1] = out[j-1], out[j]
		}
	}
	return out
}

// Entry is one side of a leg as stored: the signed change of one account
// and its balance right after.
type Entry struct {
	Key          AccountKey
	Amount       int64
	BalanceAfter int64
	Method       Method
	Details      string
}

// Entries expands the legs into entries given each account's final balance,
// so that consecutive entries of an account chain exactly.
func (t *Transaction) Entries(final map[AccountKey]int64) []Entry {
	running := make(map[AccountKey]int64, len(final))
	for _, c := range t.NetChanges() {
		running[c.Key] = final[c.Key] - c.Delta
	}
	out := make([]Entry, 0, 2*len(t.Legs))
	for _, l := range t.Legs {
		running[l.From] -= l.Amount
		out = append(out, Entry{Key: l.From, Amount: -l.Amount, BalanceAfter: running[l.From], Method: l.FromMethod, Details: l.FromDetails})
		running[l.To] += l.Amount
		out = append(out, Entry{Key: l.To, Amount: l.Amount, BalanceAfter: running[l.To], Method: l.ToMethod, Details: l.ToDetails})
	}
	return out
}

// moves reports whether a leg of t moves account k.
func (t *Transaction) moves(k AccountKey) bool {
	for _, l := range t.Legs {
		if l.From == k || l.To == k {
			return true
		}
	}
	return false
}

// Posted is what a store reports after posting a transaction.
type Posted struct {
	ID       int64
	Balances map[AccountKey]int64 // final balance of every touched account
}

// balance is k's final balance, when p (which may be nil) touched it.
func (p *Posted) balance(k AccountKey) (int64, bool) {
	if p == nil {
		return 0, false
	}
	b, ok := p.Balances[k]
	return b, ok
}

// Bill is one entry of an account's statement.
type Bill struct {
	ID           int64
	Date         time.Time
	Amount       int64
	BalanceAfter int64
	Method       Method
	Details      string
}

// Holding is one of a user's accounts with its balance.
type Holding struct {
	Key       AccountKey
	Balance   int64
	MaturesOn string // YYYY-MM-DD for fixed-term wealth lots
	// Carry is accrued interest below one fen, in ten-thousandths of a fen.
	Carry int64
}

// LedgerReport is the result of verifying the ledger's invariants.
type LedgerReport struct {
	Accounts     int
	Entries      int
	Transactions int
	Problems     []string // empty when every invariant holds
}

// OK reports whether every invariant holds.
func (r LedgerReport) OK() bool { return len(r.Problems) == 0 }
