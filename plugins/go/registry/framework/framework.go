// Package framework is a host with compile-time plugins, in the style of the Kubernetes
// scheduler: plugins register a factory under a name in a registry, the binary is built
// with every plugin it will ever run, and an out-of-tree plugin gets in by building a new
// binary whose main passes WithPlugin(name, factory).
package framework

import (
	"fmt"
	"os"
	"sort"
	"strings"

	"pluginlab/registry/plugins/lower"
	"pluginlab/registry/plugins/trim"
)

// Plugin transforms text. Every plugin of the registry implements it.
type Plugin interface {
	Name() string
	Transform(text string) string
}

// Factory makes a plugin.
type Factory func() Plugin

// Registry maps plugin names to factories.
type Registry map[string]Factory

// Option changes the registry before the host runs (WithPlugin).
type Option func(Registry) error

// WithPlugin registers an out-of-tree plugin. A name already taken is an error.
func WithPlugin(name string, factory Factory) Option {
	return func(r Registry) error {
		if _, taken := r[name]; taken {
			return fmt.Errorf("a plugin named %q already exists", name)
		}
		r[name] = factory
		return nil
	}
}

// InTree is the registry of the plugins that ship with the host.
func InTree() Registry {
	return Registry{
		"lower": func() Plugin { return lower.New() },
		"trim":  func() Plugin { return trim.New() },
	}
}

// Main builds the registry (in-tree plugins plus options), then runs the pipeline named
// by args[0] (comma-separated plugin names) on the text args[1]. It exits the process.
func Main(args []string, options ...Option) {
	registry := InTree()
	for _, option := range options {
		if err := option(registry); err != nil {
			fmt.Println("registry:", err)
			os.Exit(1)
		}
	}
	names := make([]string, 0, len(registry))
	for name := range registry {
		names = append(names, name)
	}
	sort.Strings(names)
	fmt.Println("compiled-in plugins:", strings.Join(names, ", "))
	if len(args) != 2 {
		fmt.Println("usage: host PLUGIN[,PLUGIN...] TEXT")
		os.Exit(2)
	}
	text := args[1]
	for _, name := range strings.Split(args[0], ",") {
		factory, ok := registry[name]
		if !ok {
			fmt.Printf("unknown plugin %q: this binary was built without it; add it with "+
				"framework.WithPlugin and rebuild\n", name)
			os.Exit(1)
		}
		before := text
		text = factory().Transform(text)
		fmt.Printf("%-6s %q -> %q\n", name, before, text)
	}
}
