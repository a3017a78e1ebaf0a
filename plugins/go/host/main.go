// host: a Go program that opens plugins with the standard plugin package. For each path on
// its command line it opens the plugin, sets the variable Greeting, calls the function
// Greet and checks that Plugin implements api.Transformer (self-validation), printing one
// line per step. It exits with status 1 at the first plugin it cannot use.
package main

import (
	"fmt"
	"os"
	"plugin"

	"pluginlab/api"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: host PLUGIN.so...")
		os.Exit(2)
	}
	seen := map[*plugin.Plugin]string{}
	for _, path := range os.Args[1:] {
		p, err := plugin.Open(path)
		if err != nil {
			fmt.Println("open", path+":", err)
			os.Exit(1)
		}
		if first, ok := seen[p]; ok {
			fmt.Println("open", path+": the same *plugin.Plugin as", first, "(Go opens a plugin once)")
			continue
		}
		seen[p] = path
		fmt.Println("open", path+": ok")
		if err := use(p); err != nil {
			fmt.Println("  refused:", err)
			os.Exit(1)
		}
	}
}

func use(p *plugin.Plugin) error {
	sym, err := p.Lookup("Greeting")
	if err != nil {
		return err
	}
	greeting, ok := sym.(*string)
	if !ok {
		return fmt.Errorf("Greeting is a %T, not a *string", sym)
	}
	fmt.Printf("  Greeting = %q, set to %q\n", *greeting, "bonjour")
	*greeting = "bonjour"
	if sym, err = p.Lookup("Greet"); err != nil {
		return err
	}
	greet, ok := sym.(func(string) string)
	if !ok {
		return fmt.Errorf("Greet is a %T, not a func(string) string", sym)
	}
	fmt.Printf("  Greet(%q) = %q\n", "gopher", greet("gopher"))
	if sym, err = p.Lookup("Plugin"); err != nil {
		return err
	}
	transformer, ok := sym.(*api.Transformer)
	if !ok {
		return fmt.Errorf("Plugin is a %T, not an api.Transformer (api release %s)", sym, api.Release)
	}
	fmt.Printf("  Plugin is an api.Transformer (api release %s): Transform(%q) = %q\n",
		api.Release, "plugin", (*transformer).Transform("plugin"))
	return nil
}
