package ext4

import (
	"errors"
	"fmt"
)

// ErrNoSpace reports that the filesystem ran out of blocks or inodes.
// Errors that wrap it say what did not fit.
var ErrNoSpace = errors.New("no space left on the filesystem")

var (
	errTooManyInodes = errors.New("too many inodes for the size")
	errClosed        = errorf("writer is closed")
)

// errorf makes the errors this package's exported functions and methods
// return: the message prefixed "ext4: ". The prefix is applied here, once,
// where an error leaves the package. Errors made inside the package carry
// no prefix, and errorf wraps them with %w so that errors.Is still finds
// their causes ([ErrNoSpace], the reader's and the file's errors).
func errorf(format string, a ...any) error {
	return fmt.Errorf("ext4: "+format, a...)
}
