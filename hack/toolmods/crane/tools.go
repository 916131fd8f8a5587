//go:build tools

// Package tools pins the crane commands the test world builds;
// go.sum verifies every module they are built from.
package tools

import (
	_ "github.com/google/go-containerregistry/cmd/crane"
)
