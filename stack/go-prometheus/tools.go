//go:build tools

// Package tools records the main packages that stack/scripts/lib/prometheus.sh builds
// (the local stack's Prometheus and its promtool) so that `go mod tidy` keeps their
// dependencies in go.sum.
package tools

import (
	_ "github.com/prometheus/prometheus/cmd/prometheus"
	_ "github.com/prometheus/prometheus/cmd/promtool"
)
