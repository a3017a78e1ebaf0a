//go:build !api_v2

// Package api is the contract between the Go host and its plugins: the one package both
// sides import. Release 1.0. (api_v2.go is release 1.1, selected with -tags api_v2.)
package api

// Release names this release of the contract.
const Release = "1.0"

// Transformer is what a plugin's exported Plugin variable must implement.
type Transformer interface {
	Transform(text string) string
}
