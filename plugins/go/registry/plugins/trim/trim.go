// Package trim is an in-tree plugin: it removes surrounding spaces.
package trim

import "strings"

// Plugin is the trim plugin.
type Plugin struct{}

// New makes the plugin.
func New() Plugin { return Plugin{} }

// Name is the plugin's registry name.
func (Plugin) Name() string { return "trim" }

// Transform removes leading and trailing spaces.
func (Plugin) Transform(text string) string { return strings.TrimSpace(text) }
