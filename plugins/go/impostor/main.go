// impostor: a Go plugin that exports the well-known names with the wrong types, so the
// host's self-validation (a type assertion) refuses it.
package main

// Greeting is an int here, not a string.
var Greeting = 42

// Greet takes no argument.
func Greet() string { return "hello from an impostor" }

// Plugin is a string, not an api.Transformer.
var Plugin = "not a transformer"
