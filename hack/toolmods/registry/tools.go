//go:build tools

// Package tools pins the registry commands the test world builds;
// go.sum verifies every module they are built from.
package tools

import (
	_ "github.com/distribution/distribution/v3/cmd/registry"
)
