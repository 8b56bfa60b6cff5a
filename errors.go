package coffer

import (
	"errors"
	"fmt"
)

// Code is a stable, machine-readable error code. The httpapi package maps
// each code to an HTTP status and to its zh and en messages in one table.
type Code string

// The error codes. Every failure the service reports carries one of them;
// anything else is ErrInternal, the only kind that is logged.
const (
	ErrInvalidJSON        Code = "INVALID_JSON"
	ErrInvalidField       Code = "INVALID_FIELD"
	ErrMissingField       Code = "MISSING_FIELD"
	ErrBodyTooLarge       Code = "BODY_TOO_LARGE"
	ErrUnsupportedMedia   Code = "UNSUPPORTED_MEDIA_TYPE"
	ErrRouteNotFound      Code = "NOT_FOUND"
	ErrMethodNotAllowed   Code = "METHOD_NOT_ALLOWED"
	ErrUsernameTaken      Code = "USERNAME_TAKEN"
	ErrMobileTaken        Code = "MOBILE_TAKEN"
	ErrEmailTaken         Code = "EMAIL_TAKEN"
	ErrCardTaken          Code = "CARD_TAKEN"
	ErrBadCredentials     Code = "BAD_CREDENTIALS"
	ErrUnauthorized       Code = "UNAUTHORIZED"
	ErrForbidden          Code = "FORBIDDEN"
	ErrBadPassword        Code = "BAD_PASSWORD"
	ErrBadPayPassword     Code = "BAD_PAY_PASSWORD"
	ErrPayLocked          Code = "PAY_LOCKED"
	ErrTooManyAttempts    Code = "TOO_MANY_ATTEMPTS"
	ErrRateLimited        Code = "RATE_LIMITED"
	ErrUserNotFound       Code = "USER_NOT_FOUND"
	ErrPayeeNotFound      Code = "PAYEE_NOT_FOUND"
	ErrProductNotFound    Code = "PRODUCT_NOT_FOUND"
	ErrSamePayee          Code = "SAME_PAYEE"
	ErrInsufficientFunds  Code = "INSUFFICIENT_FUNDS"
	ErrInsufficientHold   Code = "INSUFFICIENT_HOLDING"
	ErrLimitSingle        Code = "LIMIT_SINGLE"
	ErrLimitDaily         Code = "LIMIT_DAILY"
	ErrAmountOutOfRange   Code = "AMOUNT_OUT_OF_RANGE"
	ErrBelowMinimum       Code = "BELOW_MINIMUM"
	ErrAmountTooSmall     Code = "AMOUNT_TOO_SMALL"
	ErrPriceChanged       Code = "PRICE_CHANGED"
	ErrProductRetired     Code = "PRODUCT_RETIRED"
	ErrNotMatured         Code = "NOT_MATURED"
	ErrUnknownMode        Code = "UNKNOWN_MODE"
	ErrIdempotencyReuse   Code = "IDEMPOTENCY_KEY_REUSED"
	ErrIdempotencyPending Code = "IDEMPOTENCY_IN_PROGRESS"
	ErrDayClosed          Code = "DAY_CLOSED"
	ErrUnavailable        Code = "UNAVAILABLE"
	ErrOverloaded         Code = "OVERLOADED"
	ErrInternal           Code = "INTERNAL"
)

// Error is a failure with a code. Field names the request field at fault,
// where there is one; Detail is extra English text for operators and logs.
type Error struct {
	Code   Code
	Field  string
	Detail string
}

// Error implements the error interface.
func (e *Error) Error() string {
	msg := string(e.Code)
	if e.Field != "" {
		msg += " " + e.Field
	}
	if e.Detail != "" {
		msg += ": " + e.Detail
	}
	return msg
}

// Errorf returns an *Error with the given code and a formatted detail.
func Errorf(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Detail: fmt.Sprintf(format, args...)}
}

// FieldError returns an *Error about one request field.
func FieldError(code Code, field string) *Error {
	return &Error{Code: code, Field: field}
}

// ErrorCode returns the code of err: its own for an *Error anywhere in the
// chain, ErrInternal for anything else and "" for nil.
func ErrorCode(err error) Code {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return ErrInternal
}

// IsCode reports whether err carries code.
func IsCode(err error, code Code) bool { return ErrorCode(err) == code }
