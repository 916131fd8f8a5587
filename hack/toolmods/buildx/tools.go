//go:build tools

// Package tools pins the buildx commands the test world builds;
// go.sum verifies every module they are built from.
package tools

import (
	_ "github.com/docker/buildx/cmd/buildx"
)
