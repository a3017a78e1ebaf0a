//go:build noisy

// Built with -tags noisy, the greeter says when its init runs: plugin.Open runs a plugin's
// init functions after the runtime's checks pass, never for a plugin it refuses.
package main

import "fmt"

func init() { fmt.Println("[greeter] init: plugin.Open's checks passed") }
