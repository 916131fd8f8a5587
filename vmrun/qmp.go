package vmrun

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"time"
)

// qmpClient speaks the QEMU Machine Protocol: JSON objects over a Unix
// socket, a greeting, then commands answered by "return" or "error" with
// asynchronous "event" objects in between. c2vm needs two commands, so a
// few lines here replace a dependency.
type qmpClient struct {
	conn net.Conn
	dec  *json.Decoder
}

type qmpMessage struct {
	QMP    json.RawMessage `json:"QMP"`
	Return json.RawMessage `json:"return"`
	Event  string          `json:"event"`
	Error  *struct {
		Class string `json:"class"`
		Desc  string `json:"desc"`
	} `json:"error"`
}

// dialQMP connects and leaves the greeting's capability negotiation done.
// QEMU creates the socket while it starts, so dialing retries until ctx
// ends.
func dialQMP(ctx context.Context, path string) (*qmpClient, error) {
	var d net.Dialer
	for {
		conn, err := d.DialContext(ctx, "unix", path)
		if err == nil {
			q := &qmpClient{conn: conn, dec: json.NewDecoder(conn)}
			if err := q.handshake(ctx); err != nil {
				conn.Close()
				return nil, err
			}
			return q, nil
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("connecting to QMP at %s: %v", path, err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func (q *qmpClient) handshake(ctx context.Context) error {
	q.setDeadline(ctx)
	var greeting qmpMessage
	if err := q.dec.Decode(&greeting); err != nil {
		return fmt.Errorf("reading the QMP greeting: %v", err)
	}
	if greeting.QMP == nil {
		return fmt.Errorf("not a QMP greeting")
	}
	_, err := q.execute(ctx, "qmp_capabilities", nil)
	return err
}

// execute runs one command and returns its "return" value.
func (q *qmpClient) execute(ctx context.Context, command string, args any) (json.RawMessage, error) {
	q.setDeadline(ctx)
	req := map[string]any{"execute": command}
	if args != nil {
		req["arguments"] = args
	}
	if err := json.NewEncoder(q.conn).Encode(req); err != nil {
		return nil, fmt.Errorf("QMP %s: %v", command, err)
	}
	for {
		var m qmpMessage
		if err := q.dec.Decode(&m); err != nil {
			return nil, fmt.Errorf("QMP %s: %v", command, err)
		}
		switch {
		case m.Error != nil:
			return nil, fmt.Errorf("QMP %s: %s: %s", command, m.Error.Class, m.Error.Desc)
		case m.Return != nil:
			return m.Return, nil
		}
		// An event, such as POWERDOWN: not the answer.
	}
}

func (q *qmpClient) setDeadline(ctx context.Context) {
	d, ok := ctx.Deadline()
	if !ok {
		d = time.Now().Add(10 * time.Second)
	}
	q.conn.SetDeadline(d)
}

func (q *qmpClient) Close() error { return q.conn.Close() }
