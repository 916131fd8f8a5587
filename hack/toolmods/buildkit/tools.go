//go:build tools

// Package tools pins the buildkit commands the test world builds;
// go.sum verifies every module they are built from.
package tools

import (
	_ "github.com/moby/buildkit/cmd/buildctl"
	_ "github.com/moby/buildkit/cmd/buildkitd"
)
