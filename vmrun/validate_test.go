package vmrun

import (
	"net"
	"strconv"
	"strings"
	"testing"
)

func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
}

func TestParseMemory(t *testing.T) {
	for in, want := range map[string]int64{"1024M": 1 << 30, "2G": 2 << 30, "2g": 2 << 30, "1.5G": 3 << 29, "512": 512 << 20, "65536K": 64 << 20, "1T": 1 << 40} {
		if got, err := ParseMemory(in); err != nil || got != want {
			t.Errorf("%q: %d %v, want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"lots", "", "1G,slots=2", "1 G", "-1G", "1GB", "1e3M", "0x100M", "16M", "2T", "1.G"} {
		if _, err := ParseMemory(in); err == nil {
			t.Errorf("%q accepted", in)
		} else if !strings.Contains(err.Error(), "fix:") {
			t.Errorf("%q: no fix in %v", in, err)
		}
	}
}

func TestParseCPUs(t *testing.T) {
	if n, err := ParseCPUs("4"); err != nil || n != 4 {
		t.Errorf("4: %d %v", n, err)
	}
	for _, in := range []string{"two", "0", "-1", "+2", "256", "1.5", "", "2,maxcpus=8"} {
		if _, err := ParseCPUs(in); err == nil {
			t.Errorf("%q accepted", in)
		}
	}
}

func TestParsePort(t *testing.T) {
	for in, want := range map[string]Forward{
		"8080:80":            {"0.0.0.0", 8080, 80},
		"127.0.0.1:8080:80":  {"127.0.0.1", 8080, 80},
		"10.1.2.3:1:65535":   {"10.1.2.3", 1, 65535},
		"8080:80/tcp":        {"0.0.0.0", 8080, 80},
		"0.0.0.0:65535:8000": {"0.0.0.0", 65535, 8000},
	} {
		if got, err := ParsePort(in); err != nil || got != want {
			t.Errorf("%q: %+v %v, want %+v", in, got, err, want)
		}
	}
	for in, why := range map[string]string{
		"8080,hostfwd=tcp::22-:22:80": "comma",
		"127.0.0.1:8080:80,guestfwd":  "comma",
		"8080:80 ":                    "space",
		"0:80":                        "host port",
		"8080:0":                      "guest port",
		"65536:80":                    "host port",
		"8080:99999":                  "guest port",
		"+80:80":                      "host port",
		"http:80":                     "host port",
		"80":                          "HOST:GUEST",
		"1:2:3:4":                     "IPv6",
		"[::1]:8080:80":               "IPv6",
		"localhost:8080:80":           "not an IPv4",
		"256.0.0.1:8080:80":           "not an IPv4",
		"::ffff:1.2.3.4:80":           "IPv6",
		"127.000.0.1:8080:80":         "not an IPv4",
		":8080:80":                    "not an IPv4",
		"8080:80/udp":                 "only TCP",
		"a=b:80":                      "'='",
	} {
		_, err := ParsePort(in)
		if err == nil || !strings.Contains(err.Error(), why) || !strings.Contains(err.Error(), "fix:") {
			t.Errorf("%q: want an error about %s, got %v", in, why, err)
		}
	}
}

func TestPlanForwards(t *testing.T) {
	p1, p2 := freePort(t), freePort(t)
	// Exposed ports go to 127.0.0.1 at their own number when it is free.
	fw, notes, err := planForwards([]string{"127.0.0.1:" + p1 + ":22"}, []string{p2 + "/tcp", "22/tcp", "53/udp", "99999/tcp", "x,y"})
	if err != nil {
		t.Fatal(err)
	}
	if len(fw) != 2 || fw[0] != (Forward{"127.0.0.1", atoi(p1), 22}) || fw[1] != (Forward{"127.0.0.1", atoi(p2), atoi(p2)}) {
		t.Errorf("forwards %+v", fw)
	}
	if len(notes) != 3 {
		t.Errorf("notes %q", notes)
	}
	// A taken port: an exposed one moves, a -p one is refused.
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	taken := strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
	fw, _, err = planForwards(nil, []string{taken})
	if err != nil || len(fw) != 1 || fw[0].Host == atoi(taken) || fw[0].Guest != atoi(taken) {
		t.Errorf("exposed port on a taken host port: %+v %v", fw, err)
	}
	if _, _, err := planForwards([]string{"127.0.0.1:" + taken + ":80"}, nil); err == nil || !strings.Contains(err.Error(), "is in use") {
		t.Errorf("taken -p port: %v", err)
	}
	// Two -p on one host port clash with each other.
	if _, _, err := planForwards([]string{p1 + ":80", "127.0.0.1:" + p1 + ":81"}, nil); err == nil || !strings.Contains(err.Error(), "is in use") {
		t.Errorf("clashing -p: %v", err)
	}
	if _, _, err := planForwards([]string{"192.0.2.1:" + p1 + ":80"}, nil); err == nil || !strings.Contains(err.Error(), "not an address of this machine") {
		t.Errorf("foreign address: %v", err)
	}
}

func atoi(s string) int { n, _ := strconv.Atoi(s); return n }

func TestCheckOptions(t *testing.T) {
	for _, tc := range []struct {
		o    Options
		want string
	}{
		{Options{QuitOnExpect: true}, "--quit-on-expect needs --expect"},
		{Options{Memory: "lots"}, "bad memory size"},
		{Options{CPUs: 1000}, "CPU count 1000"},
		{Options{Firmware: "efi"}, "unknown firmware"},
		{Options{Accel: "hvf"}, "unknown accelerator"},
		{Options{Ports: []string{"1,2:3"}}, "bad port forward"},
		{Options{QMP: "/" + strings.Repeat("x", 120)}, "at most 107"},
		{Options{Timeout: -1}, "negative"},
		{Options{QMP: "/etc/passwd"}, "is not a socket"},
		{Options{Display: "sdl"}, "unknown display"},
		{Options{CloudInit: "/nonexistent/user-data"}, "--cloud-init /nonexistent/user-data: no such file"},
		{Options{CloudInit: "/etc"}, "not a regular file"},
	} {
		err := checkOptions(withDefaults(tc.o))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: want %q, got %v", tc.o, tc.want, err)
		}
	}
	if err := checkOptions(withDefaults(Options{Expect: "x", QuitOnExpect: true})); err != nil {
		t.Error(err)
	}
}
