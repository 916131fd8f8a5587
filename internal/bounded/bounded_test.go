package bounded

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
)

var errOver = errors.New("over")

func TestWriter(t *testing.T) {
	var b bytes.Buffer
	w := &Writer{W: &b, Left: 5, Err: errOver}
	if _, err := w.Write([]byte("abc")); err != nil {
		t.Fatal(err)
	}
	if n, err := w.Write([]byte("def")); n != 0 || err != errOver || b.String() != "abc" {
		t.Errorf("past the bound: %d, %v, wrote %q", n, err, b.String())
	}
}

func TestReader(t *testing.T) {
	if got, err := io.ReadAll(&Reader{R: strings.NewReader("abcde"), Left: 5, Err: errOver}); err != nil || string(got) != "abcde" {
		t.Errorf("exactly the bound: %q, %v", got, err)
	}
	if got, err := io.ReadAll(&Reader{R: strings.NewReader("abcdef"), Left: 5, Err: errOver}); err != errOver || string(got) != "abcde" {
		t.Errorf("past the bound: %q, %v", got, err)
	}
}
