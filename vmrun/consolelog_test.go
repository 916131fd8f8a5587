package vmrun

import (
	"bytes"
	"context"
	"os"
	"testing"
)

// The console log keeps one full file beside the current one, and c2vm
// logs prints both; a new run starts them anew.
func TestConsoleLogRotates(t *testing.T) {
	defer func(n int64) { maxConsoleLog = n }(maxConsoleLog)
	maxConsoleLog = 10
	t.Setenv("XDG_STATE_HOME", t.TempDir())
	d, err := openVMDir("r", true)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	l, err := openConsoleLog(d)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"0123456789", "abcdef", "ghij", "klm"} {
		l.Write([]byte(s))
	}
	l.Close()
	var out bytes.Buffer
	if err := Logs(context.Background(), "r", false, &out); err != nil || out.String() != "abcdefghijklm" {
		t.Errorf("logs: %q %v", out.String(), err)
	}
	if b, _ := os.ReadFile(d.file(consoleFile)); string(b) != "klm" {
		t.Errorf("current log %q", b)
	}
	l, _ = openConsoleLog(d)
	l.Close()
	out.Reset()
	if err := Logs(context.Background(), "r", false, &out); err != nil || out.Len() != 0 {
		t.Errorf("a new run's log: %q %v", out.String(), err)
	}
}
