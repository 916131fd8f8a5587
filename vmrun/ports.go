package vmrun

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"syscall"

	"github.com/c2vm/c2vm/internal/usererr"
)

// Forward is one host TCP port forwarded to a guest port through QEMU's
// user network.
type Forward struct {
	HostIP string // IPv4; "0.0.0.0" is every address of the host
	Host   int
	Guest  int
}

func (f Forward) hostAddr() string { return net.JoinHostPort(f.HostIP, strconv.Itoa(f.Host)) }

// hostfwd is the -netdev user suboption. Every part was checked by
// ParsePort or comes from a number, so none holds a comma.
func (f Forward) hostfwd() string {
	return fmt.Sprintf("hostfwd=tcp:%s:%d-:%d", f.HostIP, f.Host, f.Guest)
}

const portFix = "use HOST:GUEST or IP:HOST:GUEST with ports from 1 to 65535 and an IPv4 address, such as -p 8080:80 or -p 127.0.0.1:8080:80"

// ParsePort reads a -p value: HOST:GUEST binds every host address, as
// docker run -p does; IP:HOST:GUEST binds one. A "/tcp" suffix is allowed.
func ParsePort(s string) (Forward, error) {
	bad := func(why string) (Forward, error) {
		return Forward{}, usererr.New(fmt.Sprintf("bad port forward %q: %s", s, why), portFix)
	}
	if strings.ContainsAny(s, ", \t\n=") {
		return bad("it holds a comma, space or '=' (QEMU would read those as more options)")
	}
	spec, proto, hasProto := strings.Cut(s, "/")
	if hasProto && proto != "tcp" {
		return bad("only TCP ports are forwarded")
	}
	if strings.HasPrefix(spec, "[") || strings.Count(spec, ":") > 2 {
		return bad("IPv6 addresses cannot be forwarded; use an IPv4 address such as 127.0.0.1")
	}
	parts := strings.Split(spec, ":")
	f := Forward{HostIP: "0.0.0.0"}
	switch len(parts) {
	case 3:
		a, err := netip.ParseAddr(parts[0])
		if err != nil || !a.Is4() {
			return bad(fmt.Sprintf("%q is not an IPv4 address (host names are not resolved)", parts[0]))
		}
		f.HostIP = a.String()
		parts = parts[1:]
	case 2:
	default:
		return bad("it needs HOST:GUEST or IP:HOST:GUEST")
	}
	var err error
	if f.Host, err = parsePortNumber(parts[0]); err != nil {
		return bad("host " + err.Error())
	}
	if f.Guest, err = parsePortNumber(parts[1]); err != nil {
		return bad("guest " + err.Error())
	}
	return f, nil
}

func parsePortNumber(s string) (int, error) {
	n, err := strconv.Atoi(s)
	if !allDigits(s) || err != nil || n < 1 || n > 65535 {
		return 0, fmt.Errorf("port %q is not a number from 1 to 65535", s)
	}
	return n, nil
}

// parseExposed reads a c2vm.json entry, "8000/tcp" or "8000"; ok is false
// for other protocols, which are not forwarded.
func parseExposed(s string) (port int, ok bool, err error) {
	num, proto, _ := strings.Cut(s, "/")
	if proto != "" && proto != "tcp" {
		return 0, false, nil
	}
	port, err = parsePortNumber(num)
	return port, err == nil, err
}

// planForwards checks the -p forwards and adds the disk's exposed TCP ports
// that no -p already covers, each on 127.0.0.1 (the user did not ask to
// open them to the network) at the same port when free, else at a free one.
// It binds every host address while it decides, so that forwards clashing
// with each other or with another program are refused here, with a message,
// rather than by QEMU; notes say which exposed ports were left out.
func planForwards(ports, exposed []string) (fwds []Forward, notes []string, err error) {
	var held []net.Listener
	defer func() {
		for _, l := range held {
			l.Close()
		}
	}()
	covered := map[int]bool{}
	for _, s := range ports {
		f, err := ParsePort(s)
		if err != nil {
			return nil, nil, err
		}
		l, err := net.Listen("tcp4", f.hostAddr())
		if err != nil {
			return nil, nil, bindError(s, f, err)
		}
		held = append(held, l)
		covered[f.Guest] = true
		fwds = append(fwds, f)
	}
	for _, s := range exposed {
		port, ok, err := parseExposed(s)
		if err != nil || !ok {
			notes = append(notes, fmt.Sprintf("c2vm: not forwarding exposed port %q: only TCP ports from 1 to 65535 are", s))
			continue
		}
		if covered[port] {
			continue
		}
		covered[port] = true
		l, err := net.Listen("tcp4", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		if err != nil {
			if l, err = net.Listen("tcp4", "127.0.0.1:0"); err != nil {
				return nil, nil, fmt.Errorf("finding a free host port for exposed port %d: %v", port, err)
			}
		}
		held = append(held, l)
		fwds = append(fwds, Forward{HostIP: "127.0.0.1", Host: l.Addr().(*net.TCPAddr).Port, Guest: port})
	}
	return fwds, notes, nil
}

// bindError explains why a -p host address cannot be used.
func bindError(spec string, f Forward, err error) error {
	switch {
	case errors.Is(err, syscall.EADDRINUSE):
		return usererr.New(fmt.Sprintf("port forward %s: host address %s is in use (by another program or another -p)", spec, f.hostAddr()),
			"choose another HOST port, or stop what listens there")
	case errors.Is(err, syscall.EADDRNOTAVAIL):
		return usererr.New(fmt.Sprintf("port forward %s: %s is not an address of this machine", spec, f.HostIP),
			"use one of this machine's addresses, 127.0.0.1 for this machine only, or HOST:GUEST for all")
	case errors.Is(err, syscall.EACCES):
		return usererr.New(fmt.Sprintf("port forward %s: host port %d needs privileges", spec, f.Host),
			"use a host port above 1023")
	}
	return usererr.New(fmt.Sprintf("port forward %s: cannot listen on %s: %v", spec, f.hostAddr(), err), "choose another host address or port")
}
