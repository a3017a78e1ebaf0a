// Package shout is an out-of-tree plugin: written outside the host's repository, it gets
// into a binary only when someone builds one that registers it (see cmd/custom).
package shout

import (
	"strings"

	"pluginlab/registry/framework"
)

type plugin struct{}

// New is the factory passed to framework.WithPlugin.
func New() framework.Plugin { return plugin{} }

func (plugin) Name() string { return "shout" }

func (plugin) Transform(text string) string { return strings.ToUpper(text) + "!" }
