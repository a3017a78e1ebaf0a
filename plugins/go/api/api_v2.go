//go:build api_v2

// Package api, release 1.1: one constant changed and one helper added. Every Transformer
// of release 1.0 still compiles against it; the Go runtime will still refuse to mix them.
package api

import "strings"

// Release names this release of the contract.
const Release = "1.1"

// Transformer is what a plugin's exported Plugin variable must implement.
type Transformer interface {
	Transform(text string) string
}

// Shout is new in release 1.1.
func Shout(text string) string { return strings.ToUpper(text) + "!" }
