// adder: a Go plugin (go build -buildmode=plugin) exporting the cheapest function there is,
// for timing a call from a Go host through the func value plugin.Lookup returns.
package main

// Add returns a + b: the same body as the host's compiled-in add.
func Add(a, b int) int { return a + b }
