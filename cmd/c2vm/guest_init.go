package main

import "github.com/c2vm/c2vm/appinit"

// In an app-mode VM this binary is the initramfs's /init. The kernel starts
// it as PID 1 with what it did not understand of its command line as
// arguments, which the CLI must never see: package initialization comes
// before main, so Main (which never returns) takes over here. IsGuestInit
// checks more than the PID, because c2vm is also PID 1 of containers
// (BuildKit's frontend, docker run), where it must stay the CLI.
func init() {
	if appinit.IsGuestInit() {
		appinit.Main()
	}
}
