// Package bootstrap will hold the per-distro recipes (detect from
// os-release; install kernel, init and initramfs; write guest configuration).
// Empty until the frontend issue lands.
package bootstrap
