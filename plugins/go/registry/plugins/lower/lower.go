// Package lower is an in-tree plugin: it lower-cases text.
package lower

import "strings"

// Plugin is the lower plugin.
type Plugin struct{}

// New makes the plugin.
func New() Plugin { return Plugin{} }

// Name is the plugin's registry name.
func (Plugin) Name() string { return "lower" }

// Transform lower-cases the text.
func (Plugin) Transform(text string) string { return strings.ToLower(text) }
