// greeter: a Go plugin (go build -buildmode=plugin) with a variable, a function and a
// Transformer, the three kinds of symbol a host can look up.
package main

import (
	"strings"

	"pluginlab/api"
)

// Greeting is an exported variable: the host's Lookup returns a *string it can set.
var Greeting = "hello"

// Greet is an exported function: the host's Lookup returns a func(string) string.
func Greet(name string) string { return Greeting + ", " + name }

type upper struct{}

func (upper) Transform(text string) string { return strings.ToUpper(text) }

// Plugin is the well-known symbol the host validates with a type assertion.
var Plugin api.Transformer = upper{}
