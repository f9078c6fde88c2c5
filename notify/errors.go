package notify

import (
	"errors"
	"fmt"
	"time"
)

// permanentError marks a failure that no retry will mend.
type permanentError struct{ err error }

// Error returns the wrapped error's text.
func (e permanentError) Error() string { return e.err.Error() }

// Unwrap returns the wrapped error.
func (e permanentError) Unwrap() error { return e.err }

// Permanent marks err as a failure that retrying will not mend: an invalid
// token, a revoked webhook, a message the receiver refuses. The alert is
// dropped, counted and logged once instead of retried.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return permanentError{err}
}

// IsPermanent reports whether err was marked with Permanent.
func IsPermanent(err error) bool {
	var p permanentError
	return errors.As(err, &p)
}

// RetryAfterError is a failure whose receiver said when to try again, as
// HTTP 429 with Retry-After does.
type RetryAfterError struct {
	After time.Duration
	Err   error
}

// Error says what failed and when to try again.
func (e *RetryAfterError) Error() string {
	return fmt.Sprintf("%v (retry after %s)", e.Err, e.After)
}

// Unwrap returns the failure.
func (e *RetryAfterError) Unwrap() error { return e.Err }
