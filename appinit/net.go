package appinit

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sort"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/dhcpv4/nclient4"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// netConfig is what DHCP gave: enough for the interface, the default route,
// resolv.conf and hosts.
type netConfig struct {
	ifname string
	addr   net.IPNet
	router net.IP
	dns    []net.IP
	search []string
}

// dhcpBudget is how long the program's start may wait for a lease. A VM
// without DHCP still runs its program, only without a network, as a
// container with --network none would.
const dhcpBudget = 10 * time.Second

// setupNetwork brings up lo and the first ethernet interface and asks for
// a DHCPv4 lease there, then keeps renewing it in the background.
func setupNetwork(ctx context.Context, hostname string, logf func(string, ...any)) (*netConfig, error) {
	if lo, err := netlink.LinkByName("lo"); err == nil {
		if err := netlink.LinkSetUp(lo); err != nil {
			logf("lo: %v", err)
		}
	}
	ctx, cancel := context.WithTimeout(ctx, dhcpBudget)
	defer cancel()
	link, err := firstEthernet(ctx)
	if err != nil {
		return nil, err
	}
	name := link.Attrs().Name
	if err := netlink.LinkSetUp(link); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	// The DHCP library polls for random transaction IDs without a deadline.
	select {
	case <-entropyReady:
	case <-ctx.Done():
		return nil, errors.New("no DHCP: the kernel's random number generator is not ready (give the VM an entropy source such as virtio-rng)")
	}
	client, err := nclient4.New(name, nclient4.WithTimeout(2*time.Second), nclient4.WithRetry(4))
	if err != nil {
		return nil, fmt.Errorf("dhcp on %s: %w", name, err)
	}
	mods := []dhcpv4.Modifier{
		dhcpv4.WithRequestedOptions(dhcpv4.OptionDNSDomainSearchList, dhcpv4.OptionInterfaceMTU),
		dhcpv4.WithOption(dhcpv4.OptHostName(hostname)),
	}
	lease, err := client.Request(ctx, mods...)
	if err != nil {
		client.Close()
		return nil, fmt.Errorf("dhcp on %s: no lease in %s: %w", name, dhcpBudget, err)
	}
	nc, err := applyLease(link, lease.ACK)
	if err != nil {
		client.Close()
		return nil, err
	}
	go safely(logf, func() { renew(client, lease, logf) })
	return nc, nil
}

// entropyReady is closed once the kernel's random number generator is
// initialized.
var entropyReady = make(chan struct{})

// seedEntropy waits for the kernel's random number generator with a
// blocking getrandom, which makes the kernel generate entropy from timer
// jitter at once. Polling with GRND_NONBLOCK, as the DHCP library does,
// only waits for other sources: minutes on a VM without a hardware RNG.
func seedEntropy() {
	var b [1]byte
	for {
		if _, err := unix.Getrandom(b[:], 0); err != unix.EINTR {
			break
		}
	}
	close(entropyReady)
}

// firstEthernet waits for a physical ethernet device: drivers probe
// asynchronously on some hypervisors. The lowest index is the first NIC.
func firstEthernet(ctx context.Context) (netlink.Link, error) {
	for {
		links, err := netlink.LinkList()
		if err != nil {
			return nil, err
		}
		sort.Slice(links, func(i, j int) bool { return links[i].Attrs().Index < links[j].Attrs().Index })
		for _, l := range links {
			if l.Type() == "device" && l.Attrs().EncapType == "ether" {
				return l, nil
			}
		}
		select {
		case <-ctx.Done():
			return nil, errors.New("no ethernet interface")
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// applyLease configures the address, MTU and default route of an ACK.
func applyLease(link netlink.Link, ack *dhcpv4.DHCPv4) (*netConfig, error) {
	nc := &netConfig{ifname: link.Attrs().Name, dns: ack.DNS()}
	nc.addr = net.IPNet{IP: ack.YourIPAddr.To4(), Mask: ack.SubnetMask()}
	if nc.addr.IP == nil || nc.addr.Mask == nil {
		return nil, fmt.Errorf("dhcp on %s: lease without address or netmask", nc.ifname)
	}
	if mtu, err := dhcpv4.GetUint16(dhcpv4.OptionInterfaceMTU, ack.Options); err == nil && mtu >= 576 {
		netlink.LinkSetMTU(link, int(mtu))
	}
	if err := netlink.AddrReplace(link, &netlink.Addr{IPNet: &nc.addr}); err != nil {
		return nil, fmt.Errorf("%s: address %s: %w", nc.ifname, nc.addr.String(), err)
	}
	if d := ack.DomainSearch(); d != nil {
		nc.search = d.Labels
	} else if d := ack.DomainName(); d != "" {
		nc.search = []string{d}
	}
	if r := ack.Router(); len(r) > 0 {
		nc.router = r[0]
		idx := link.Attrs().Index
		if !nc.addr.Contains(nc.router) {
			// Clouds hand out /32s with a router outside: reach it on-link.
			netlink.RouteReplace(&netlink.Route{LinkIndex: idx, Dst: &net.IPNet{IP: nc.router, Mask: net.CIDRMask(32, 32)}, Scope: netlink.SCOPE_LINK})
		}
		if err := netlink.RouteReplace(&netlink.Route{LinkIndex: idx, Gw: nc.router}); err != nil {
			return nc, fmt.Errorf("%s: default route via %s: %w", nc.ifname, nc.router, err)
		}
	}
	return nc, nil
}

// renew keeps the server's binding alive at T1 (half the lease), retrying
// every minute when the server does not answer. The address is configured
// without lifetimes, so a lost server leaves the network as it was.
func renew(client *nclient4.Client, lease *nclient4.Lease, logf func(string, ...any)) {
	wait := lease.ACK.IPAddressLeaseTime(24*time.Hour) / 2
	for {
		time.Sleep(max(wait, time.Minute))
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		next, err := client.Renew(ctx, lease)
		cancel()
		if err != nil {
			logf("dhcp renew: %v", err)
			wait = time.Minute
			continue
		}
		lease, wait = next, next.ACK.IPAddressLeaseTime(24*time.Hour)/2
	}
}
