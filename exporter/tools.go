package exporter

import "github.com/c2vm/c2vm/internal/hosttools"

// lookTool and runIn are the shared tool helpers; a missing tool is reported
// with its Debian package.
var (
	lookTool = hosttools.Look
	runIn    = hosttools.RunIn
)

// MissingToolError names a tool that is not installed and its package.
type MissingToolError = hosttools.MissingToolError
