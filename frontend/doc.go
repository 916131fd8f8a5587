// Package frontend will hold the BuildKit gateway frontend: options through
// BuildKit's dockerui, the user's Dockerfile built with dockerfile2llb, the
// result handed to llb. It is empty until the frontend issue lands; disk
// assembly (exporter) and the c2vm binary work without it.
package frontend
