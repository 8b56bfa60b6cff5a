package httpapi

import (
	"net/http"
	"strconv"
	"time"

	"coffer"
)

func (s *server) handleRegister() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f, err := decode(w, r)
		if err != nil {
			s.writeError(w, r, err, nil)
			return
		}
		var reg coffer.Registration
		for _, p := range []struct {
			name   string
			dst    *string
			digits bool
		}{
			{"username", &reg.Username, false}, {"password", &reg.Password, false}, {"email", &reg.Email, false},
			{"mobile", &reg.Mobile, true}, {"cardnum", &reg.CardNum, true},
		} {
			if p.digits {
				*p.dst, err = f.digits(p.name, true)
			} else {
				*p.dst, err = f.str(p.name, true)
			}
			if err != nil {
				s.writeError(w, r, err, nil)
				return
			}
		}
		if reg.PayPassword, err = f.str("pay_password", false); err != nil {
			s.writeError(w, r, err, nil)
			return
		}
		if err := s.bank.Register(r.Context(), reg); err != nil {
			s.writeError(w, r, err, nil)
			return
		}
		writeOK(w, http.StatusCreated, "ok")
	})
}

func (s *server) handleLogin() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f, err := decode(w, r)
		if err != nil {
			s.writeError(w, r, err, nil)
			return
		}
		username, err := f.str("username", true)
		if err != nil {
			s.writeError(w, r, err, nil)
			return
		}
		pw, err := f.str("password", true)
		if err != nil {
			s.writeError(w, r, err, nil)
			return
		}
		token, user, err := s.bank.Login(r.Context(), username, pw, s.clientAddr(r))
		if err != nil {
			s.writeError(w, r, err, nil)
			return
		}
		setLogUser(r.Context(), user.ID)
		http.SetCookie(w, &http.Cookie{
			Name: SessionCookie, Value: token, Path: "/", HttpOnly: true, SameSite: http.SameSiteLaxMode,
			Secure: s.secureRequest(r), MaxAge: int(s.bank.Config().SessionAbsolute.Seconds()),
		})
		writeJSON(w, http.StatusOK, envelope{Success: true, Data: user.Mobile, Token: token})
	})
}

func (s *server) handleLogout(w http.ResponseWriter, r *http.Request, user coffer.UserID) {
	if err := s.bank.Logout(r.Context(), sessionToken(r)); err != nil {
		s.writeError(w, r, err, nil)
		return
	}
	http.SetCookie(w, &http.Cookie{Name: SessionCookie, Value: "", Path: "/", HttpOnly: true, SameSite: http.SameSiteLaxMode, Secure: s.secureRequest(r), MaxAge: -1})
	writeOK(w, http.StatusOK, "ok")
}

// ownMobile checks that an optional mobile parameter names the caller.
func ownMobile(f fields, name string, u coffer.User) error {
	m, err := mobileField(f, name, false)
	if err != nil || m == "" {
		return err
	}
	if m != u.Mobile {
		return &coffer.Error{Code: coffer.ErrForbidden, Field: name}
	}
	return nil
}

// infoData is one element of GET /api/info's data.
type infoData struct {
	UserID          string `json:"userid"`
	Username        string `json:"username"`
	Mobile          string `json:"mobile"`
	Email           string `json:"email"`
	TotalAssets     string `json:"total_assets"`
	Balance         string `json:"balance"`
	MoneyManagement string `json:"money_management"`
	CardNum         string `json:"cardnum"`
	Funds           string `json:"funds"`
	Gold            string `json:"gold"`
	GoldWeight      string `json:"gold_weight"`
}

// handleInfo checks the session in the read transaction of the info
// itself (see sessionFirst for the order of refusals).
func (s *server) handleInfo(w http.ResponseWriter, r *http.Request) {
	f, err := decode(w, r)
	if err != nil {
		s.sessionFirst(w, r, err)
		return
	}
	user, info, err := s.bank.InfoAs(r.Context(), sessionToken(r))
	if user != 0 {
		setLogUser(r.Context(), user)
	}
	if err == nil {
		err = ownMobile(f, "mobile", info.User)
	}
	if err != nil {
		s.writeError(w, r, err, nil)
		return
	}
	data := infoData{
		UserID: strconv.FormatInt(int64(info.User.ID), 10), Username: info.User.Username, Mobile: info.User.Mobile,
		Email: info.User.Email, TotalAssets: info.TotalAssets.String(), Balance: info.Balance.String(),
		MoneyManagement: info.MoneyManagment.String(), CardNum: info.User.CardNum, Funds: info.Funds.String(),
		Gold: info.Gold.String(), GoldWeight: info.GoldWeight.String(),
	}
	// A one-element array, as the seed shows; written without reflection
	// (info is the most frequent request).
	writeOKJSON(w, http.StatusOK, append(data.appendJSON(append(make([]byte, 0, 512), '[')), ']'))
}

type billData struct {
	Date    string `json:"date"`
	Money   string `json:"money"`
	Balance string `json:"balance"`
	Method  string `json:"method"`
	Details string `json:"details"`
}

type walletData struct {
	BillList   []billData `json:"bill_list"`
	NextCursor string     `json:"next_cursor"`
}

// handleWallet checks the session in the read transaction of the page
// itself (see sessionFirst for the order of refusals).
func (s *server) handleWallet(w http.ResponseWriter, r *http.Request) {
	f, err := decode(w, r)
	if err != nil {
		s.sessionFirst(w, r, err)
		return
	}
	if _, err := f.digits("userid", false); err != nil {
		s.sessionFirst(w, r, err)
		return
	}
	limit := coffer.WalletDefaultLimit
	if v, sent, err := f.number("limit", false); err != nil || sent {
		n, perr := strconv.Atoi(v)
		if err != nil || perr != nil || n < 1 || n > coffer.WalletMaxLimit {
			s.sessionFirst(w, r, coffer.FieldError(coffer.ErrInvalidField, "limit"))
			return
		}
		limit = n
	}
	cursor, err := f.str("cursor", false)
	if err != nil {
		s.sessionFirst(w, r, err)
		return
	}
	account, err := f.str("account", false)
	kind := coffer.KindCard
	switch {
	case err != nil:
	case account == "" || account == "card":
	case account == "wealth":
		kind = coffer.KindWealth
	default:
		err = coffer.FieldError(coffer.ErrInvalidField, "account")
	}
	if err != nil {
		s.sessionFirst(w, r, err)
		return
	}
	user, page, err := s.bank.WalletAs(r.Context(), sessionToken(r), kind, cursor, limit)
	if user != 0 {
		setLogUser(r.Context(), user)
	}
	if err == nil {
		err = checkUserID(f, user)
	}
	if err != nil {
		s.writeError(w, r, err, nil)
		return
	}
	zone := s.bank.Config().Zone
	data := walletData{BillList: make([]billData, len(page.Bills)), NextCursor: page.NextCursor}
	for i, b := range page.Bills {
		data.BillList[i] = billData{
			Date: b.Date.In(zone).Format(time.RFC3339), Money: coffer.Amount(b.Amount).String(),
			Balance: coffer.Amount(b.BalanceAfter).String(), Method: string(b.Method), Details: b.Details,
		}
	}
	writeOK(w, http.StatusOK, []walletData{data})
}

// checkUserID checks that an optional userid parameter names the caller.
func checkUserID(f fields, user coffer.UserID) error {
	v, err := f.digits("userid", false)
	if err != nil || v == "" {
		return err
	}
	id, err := strconv.ParseInt(v, 10, 64)
	if err != nil || id <= 0 {
		return coffer.FieldError(coffer.ErrInvalidField, "userid")
	}
	if coffer.UserID(id) != user {
		return &coffer.Error{Code: coffer.ErrForbidden, Field: "userid"}
	}
	return nil
}

type payeeData struct {
	Username string `json:"username"`
	CardNum  string `json:"cardnum"`
}

func (s *server) handleMobile(w http.ResponseWriter, r *http.Request, user coffer.UserID) {
	f, err := decode(w, r)
	if err != nil {
		s.writeError(w, r, err, nil)
		return
	}
	m, err := f.digits("mobile", true)
	if err != nil {
		s.writeError(w, r, err, nil)
		return
	}
	p, err := s.bank.LookupMobile(r.Context(), user, m)
	if err != nil {
		s.writeError(w, r, err, nil)
		return
	}
	writeJSON(w, http.StatusOK, payeeData{Username: p.Username, CardNum: p.CardNum})
}

func (s *server) handlePayPassword(w http.ResponseWriter, r *http.Request, user coffer.UserID) {
	f, err := decode(w, r)
	if err != nil {
		s.writeError(w, r, err, nil)
		return
	}
	pw, err := f.str("password", true)
	if err != nil {
		s.writeError(w, r, err, nil)
		return
	}
	pin, err := f.str("pay_password", true)
	if err != nil {
		s.writeError(w, r, err, nil)
		return
	}
	if err := s.bank.SetPayPassword(r.Context(), user, pw, pin); err != nil {
		s.writeError(w, r, err, nil)
		return
	}
	writeOK(w, http.StatusOK, "ok")
}

type productsData struct {
	Wealth []wealthData `json:"wealth"`
	Funds  []fundData   `json:"funds"`
	Gold   goldData     `json:"gold"`
}

type wealthData struct {
	Kind           string `json:"kind"`
	Name           string `json:"name"`
	AnnualYieldPct string `json:"annual_yield_pct"`
	MinAmount      string `json:"min_amount"`
	TermDays       int    `json:"term_days"`
}

type fundData struct {
	Code    string `json:"code"`
	Name    string `json:"name"`
	NAV     string `json:"nav"`
	NAVDate string `json:"nav_date"`
}

type goldData struct {
	Price     string `json:"price"`
	UpdatedAt string `json:"updated_at"`
}

func (s *server) handleProducts(w http.ResponseWriter, r *http.Request, user coffer.UserID) {
	c, err := s.bank.Products(r.Context())
	if err != nil {
		s.writeError(w, r, err, nil)
		return
	}
	data := productsData{Wealth: []wealthData{}, Funds: []fundData{}, Gold: goldData{Price: c.Gold.Price.String(), UpdatedAt: c.Gold.UpdatedAt.In(s.bank.Config().Zone).Format(time.RFC3339)}}
	for _, p := range c.Wealth {
		data.Wealth = append(data.Wealth, wealthData{Kind: p.Kind, Name: p.Name, AnnualYieldPct: coffer.FormatDecimal(p.AnnualYieldBP, 2), MinAmount: p.MinAmount.String(), TermDays: p.TermDays})
	}
	for _, f := range c.Funds {
		data.Funds = append(data.Funds, fundData{Code: f.Code, Name: f.Name, NAV: f.NAV.String(), NAVDate: f.NAVDate})
	}
	writeOK(w, http.StatusOK, data)
}

func (s *server) handleHealth() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		err := s.bank.Store().View(r.Context(), func(tx coffer.ReadTx) error {
			_, err := tx.GoldQuote(r.Context())
			return err
		})
		if err != nil {
			s.writeError(w, r, &coffer.Error{Code: coffer.ErrUnavailable, Detail: err.Error()}, nil)
			return
		}
		writeOK(w, http.StatusOK, "ok")
	})
}
