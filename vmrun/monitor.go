package vmrun

import (
	"context"
	"encoding/json"
	"sync"
	"time"
)

// monitor is c2vm's connection to its own QMP socket, shared by the power
// button and the readiness checks: QEMU serves one client per QMP socket,
// so they take turns on one connection instead of waiting for each other's
// to close. It connects on first use and again after a failure.
type monitor struct {
	sock string
	mu   sync.Mutex
	q    *qmpClient
}

// execute runs one command; ctx bounds the connecting and the command.
func (m *monitor) execute(ctx context.Context, command string, args any) (json.RawMessage, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.q == nil {
		q, err := dialQMP(ctx, m.sock)
		if err != nil {
			return nil, err
		}
		m.q = q
	}
	// A cancelled ctx ends a pending read at once.
	q := m.q
	stop := context.AfterFunc(ctx, func() { q.conn.SetDeadline(time.Now()) })
	r, err := q.execute(ctx, command, args)
	stop()
	if err != nil {
		q.Close()
		m.q = nil
	}
	return r, err
}

// hmp runs a human monitor command and returns its text.
func (m *monitor) hmp(ctx context.Context, command string) (string, error) {
	r, err := m.execute(ctx, "human-monitor-command", map[string]string{"command-line": command})
	if err != nil {
		return "", err
	}
	var s string
	err = json.Unmarshal(r, &s)
	return s, err
}

func (m *monitor) close() {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.q != nil {
		m.q.Close()
		m.q = nil
	}
}
