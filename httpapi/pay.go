package httpapi

import (
	"net/http"
	"strconv"
	"time"

	"coffer"
)

// Ceilings of the quantities a payment may carry.
const (
	maxWeightMG = 1_000_000_000      // one tonne of gold
	maxShares   = 1_000_000_000_0000 // a billion shares
)

type balanceData struct {
	Balance string `json:"balance"`
}

type priceData struct {
	Balance string `json:"balance"`
	Price   string `json:"price"`
}

// handlePay checks the session in the payment's first read transaction.
// A request refused before that (its body) is answered 401 first when it
// has no live session, else with the refusal and the card balance.
func (s *server) handlePay(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	req, err := parsePay(w, r)
	var res coffer.PayResult
	if err != nil {
		user, aerr := s.authenticate(r)
		if aerr != nil {
			s.writeError(w, r, aerr, nil)
			return
		}
		if bal, berr := s.bank.CardBalance(ctx, user); berr == nil {
			res.Balance = bal
		}
	} else {
		var user coffer.UserID
		user, res, err = s.bank.PayAs(ctx, sessionToken(r), req)
		if user == 0 { // the session was refused, or could not be read
			s.writeError(w, r, err, nil)
			return
		}
		setLogUser(ctx, user)
	}
	if err != nil {
		var data any = balanceData{Balance: res.Balance.String()}
		if coffer.IsCode(err, coffer.ErrPriceChanged) {
			data = priceData{Balance: res.Balance.String(), Price: res.Price.String()}
		}
		s.writeError(w, r, err, data)
		return
	}
	if res.Replayed {
		w.Header().Set("Idempotent-Replayed", "true")
	}
	writeOK(w, http.StatusOK, balanceData{Balance: res.Balance.String()})
}

// parsePay reads and validates a payment request's fields for its mode.
func parsePay(w http.ResponseWriter, r *http.Request) (coffer.PayRequest, error) {
	var req coffer.PayRequest
	f, err := decode(w, r)
	if err != nil {
		return req, err
	}
	if req.Mode, err = f.str("mode", true); err != nil {
		return req, err
	}
	if req.IdempotencyKey, err = idempotencyKey(f, r); err != nil {
		return req, err
	}
	if err := readPassword(f, &req); err != nil {
		return req, err
	}
	switch req.Mode {
	case coffer.ModeTransfer:
		if req.Money, err = f.amount("money"); err != nil {
			return req, err
		}
		if req.Payee, err = mobileField(f, "payee", true); err != nil {
			return req, err
		}
		if req.Payer, err = mobileField(f, "payer", false); err != nil {
			return req, err
		}
		if req.Detail, err = f.str("detail", false); err != nil {
			return req, err
		}
		if len(req.Detail) > coffer.MaxDetail {
			return req, coffer.FieldError(coffer.ErrInvalidField, "detail")
		}
	case coffer.ModeMobilePay:
		if req.Money, err = f.amount("money"); err != nil {
			return req, err
		}
		req.Mobile, err = mobileField(f, "mobile", true)
	case coffer.ModeMoneyManagement, coffer.ModeRedeem:
		if req.Money, err = f.amount("money"); err != nil {
			return req, err
		}
		if req.Kind, err = f.str("kind", true); err != nil {
			return req, err
		}
		if req.Mode == coffer.ModeMoneyManagement {
			req.ClientTime, err = clientTime(f)
		}
	case coffer.ModeGold, coffer.ModeGoldSell:
		var v int64
		if v, err = f.decimal("weight", coffer.WeightScale, maxWeightMG); err != nil {
			return req, err
		}
		req.Weight = coffer.Weight(v)
		if v, err = f.decimal("price", coffer.AmountScale, int64(coffer.MaxAmount)); err != nil {
			return req, err
		}
		req.Price = coffer.Amount(v)
	case coffer.ModeFund:
		if req.Money, err = f.amount("money"); err != nil {
			return req, err
		}
		req.Code, err = f.str("code", true)
	case coffer.ModeFundRedeem:
		if req.Code, err = f.str("code", true); err != nil {
			return req, err
		}
		var v int64
		v, err = f.decimal("shares", coffer.SharesScale, maxShares)
		req.Shares = coffer.Shares(v)
	default:
		return req, coffer.FieldError(coffer.ErrUnknownMode, "mode")
	}
	return req, err
}

// idempotencyKey is the Idempotency-Key header or the request_id field;
// both sent must agree.
func idempotencyKey(f fields, r *http.Request) (string, error) {
	header := r.Header.Get("Idempotency-Key")
	body, err := f.str("request_id", false)
	if err != nil {
		return "", err
	}
	if header != "" && body != "" && header != body {
		return "", coffer.FieldError(coffer.ErrInvalidField, "request_id")
	}
	key := header
	if key == "" {
		key = body
	}
	if len(key) > coffer.MaxIdempotencyKey {
		return "", coffer.FieldError(coffer.ErrInvalidField, "Idempotency-Key")
	}
	for i := 0; i < len(key); i++ {
		if key[i] < 0x20 || key[i] > 0x7e { // printable ASCII only: keys are stored as text
			return "", coffer.FieldError(coffer.ErrInvalidField, "Idempotency-Key")
		}
	}
	return key, nil
}

// readPassword takes the payment password from password or the seed's
// passwrd; both sent must agree.
func readPassword(f fields, req *coffer.PayRequest) error {
	pw, err := f.str("password", false)
	if err != nil {
		return err
	}
	alt, err := f.str("passwrd", false)
	if err != nil {
		return err
	}
	if pw != "" && alt != "" && pw != alt {
		return coffer.FieldError(coffer.ErrInvalidField, "passwrd")
	}
	if pw == "" {
		pw = alt
	}
	req.Password, req.PasswordSent = pw, pw != ""
	return nil
}

func mobileField(f fields, name string, required bool) (string, error) {
	v, err := f.digits(name, required)
	if err != nil || v == "" {
		return "", err
	}
	m, ok := coffer.NormalizeMobile(v)
	if !ok {
		return "", coffer.FieldError(coffer.ErrInvalidField, name)
	}
	return m, nil
}

// clientTime reads the optional purchase time: RFC 3339 or Unix seconds.
func clientTime(f fields) (string, error) {
	v, sent, err := f.number("time", false)
	if err != nil || !sent {
		return "", err
	}
	if t, err := time.Parse(time.RFC3339, v); err == nil {
		return t.Format(time.RFC3339), nil
	}
	if secs, err := strconv.ParseInt(v, 10, 64); err == nil && secs > 0 && secs < 1<<40 {
		return time.Unix(secs, 0).UTC().Format(time.RFC3339), nil
	}
	return "", coffer.FieldError(coffer.ErrInvalidField, "time")
}
