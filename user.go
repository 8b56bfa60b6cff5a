package coffer

import (
	"golang.org/x/text/cases"
	"net/mail"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// UserID identifies a user.
type UserID int64

// User is a registered customer. Secrets are held only as hashes.
type User struct {
	ID           UserID
	Username     string
	Email        string
	Mobile       string
	CardNum      string
	PasswordHash string // argon2id, PHC string format
	// PayPasswordMAC is HMAC-SHA-256 of the 6-digit payment password under
	// the server secret; empty when the user pays with the login password.
	PayPasswordMAC []byte
	PayFailures    int       // wrong payment passwords in a row
	PayLockedUntil time.Time // zero when payments are not locked
	CreatedAt      time.Time
}

// Field rules of the contract.
const (
	UsernameMinRunes = 2
	UsernameMaxRunes = 32
	PasswordMinRunes = 8
	PasswordMaxRunes = 128
	EmailMaxBytes    = 254
	CardMinDigits    = 16
	CardMaxDigits    = 19
	PayPasswordLen   = 6
)

// NormalizeMobile returns the 11-digit mainland mobile number in s (a
// leading +86 is stripped) or false.
func NormalizeMobile(s string) (string, bool) {
	s = strings.TrimPrefix(s, "+86")
	if len(s) != 11 || s[0] != '1' || s[1] < '3' || s[1] > '9' {
		return "", false
	}
	for i := 2; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return "", false
		}
	}
	return s, true
}

// NormalizeCardNum returns the card number in s without spaces if it has
// 16-19 digits and passes the Luhn check.
func NormalizeCardNum(s string) (string, bool) {
	s = strings.ReplaceAll(s, " ", "")
	if len(s) < CardMinDigits || len(s) > CardMaxDigits {
		return "", false
	}
	sum := 0
	for i := 0; i < len(s); i++ {
		c := s[len(s)-1-i]
		if c < '0' || c > '9' {
			return "", false
		}
		d := int(c - '0')
		if i%2 == 1 {
			d *= 2
			if d > 9 {
				d -= 9
			}
		}
		sum += d
	}
	return s, sum%10 == 0
}

// ValidUsername reports whether s is 2-32 letters of any script, digits, _ or -.
func ValidUsername(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	n := utf8.RuneCountInString(s)
	if n < UsernameMinRunes || n > UsernameMaxRunes {
		return false
	}
	for _, r := range s {
		if !unicode.IsLetter(r) && !unicode.IsDigit(r) && r != '_' && r != '-' {
			return false
		}
	}
	return true
}

// ValidPassword reports whether s is an acceptable login password: 8-128
// characters, valid UTF-8, no NUL.
func ValidPassword(s string) bool {
	if !utf8.ValidString(s) || strings.ContainsRune(s, 0) {
		return false
	}
	n := utf8.RuneCountInString(s)
	return n >= PasswordMinRunes && n <= PasswordMaxRunes
}

// ValidPayPassword reports whether s is exactly six ASCII digits.
func ValidPayPassword(s string) bool {
	if len(s) != PayPasswordLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// ValidEmail reports whether s is one bare address of at most 254 bytes.
func ValidEmail(s string) bool {
	if len(s) == 0 || len(s) > EmailMaxBytes || !utf8.ValidString(s) {
		return false
	}
	addr, err := mail.ParseAddress(s)
	if err != nil || addr.Name != "" || addr.Address != s {
		return false
	}
	local, domain, ok := strings.Cut(s, "@")
	return ok && local != "" && strings.Contains(domain, ".") && !strings.ContainsAny(s, " \t\r\n\x00")
}

// FoldKey is the case-folded form under which usernames and emails are
// unique: Unicode simple folding, so that "ſam" and "SAM", or "ΟΔΥΣΣΕΥΣ"
// and "οδυσσευς", are one name as strings.EqualFold says.
// A Caser keeps state: one per call, never shared between goroutines.
func FoldKey(s string) string { return cases.Fold().String(s) }

// MaskCardNum shows only the last four digits of a card number.
func MaskCardNum(card string) string {
	if len(card) < 4 {
		return "****"
	}
	return "**** **** **** " + card[len(card)-4:]
}

// Registration is a validated request to open an account.
type Registration struct {
	Username    string
	Password    string
	Email       string
	Mobile      string
	CardNum     string
	PayPassword string // optional
}

// Validate normalizes the fields in place and returns the first invalid one
// as an ErrInvalidField error.
func (r *Registration) Validate() error {
	if !ValidUsername(r.Username) {
		return FieldError(ErrInvalidField, "username")
	}
	if !ValidPassword(r.Password) {
		return FieldError(ErrInvalidField, "password")
	}
	if !ValidEmail(r.Email) {
		return FieldError(ErrInvalidField, "email")
	}
	mobile, ok := NormalizeMobile(r.Mobile)
	if !ok {
		return FieldError(ErrInvalidField, "mobile")
	}
	r.Mobile = mobile
	card, ok := NormalizeCardNum(r.CardNum)
	if !ok {
		return FieldError(ErrInvalidField, "cardnum")
	}
	r.CardNum = card
	if r.PayPassword != "" && !ValidPayPassword(r.PayPassword) {
		return FieldError(ErrInvalidField, "pay_password")
	}
	return nil
}
