// Package usererr is the error users see for bad input: one message naming
// the cause and one line saying what to do about it.
package usererr

// Error is a problem with what the user gave.
type Error struct {
	Msg string
	Fix string
}

func (e *Error) Error() string {
	if e.Fix == "" {
		return e.Msg
	}
	return e.Msg + "\n  fix: " + e.Fix
}

// New returns an Error.
func New(msg, fix string) *Error { return &Error{Msg: msg, Fix: fix} }
