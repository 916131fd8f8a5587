// Package llb will hold pure functions from a target state, its image config
// and c2vm's options to the LLB that bootstraps the rootfs and runs
// `c2vm assemble` in an unprivileged exec step. Empty until the frontend
// issue lands.
package llb
