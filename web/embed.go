// Package web holds the browser pages (studio, player, console, dashboard) and their
// static assets, embedded into the binary.
package web

import "embed"

// Files are the pages (*.html) and assets (static/).
//
//go:embed *.html static
var Files embed.FS
