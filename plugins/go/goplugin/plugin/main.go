// Command plugin is the lab's header transformer written in Go and served with
// hashicorp/go-plugin: any go-plugin host of the lab can start it (labkit.rpc.PluginClient,
// or the Go host next door). It returns the request's headers plus "x-plugin-lang: go"; a
// request with an "x-trace" header also makes it print and log what it does.
package main

import (
	"fmt"
	"os"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"

	"pluginlab/goplugin/shared"
)

type transformer struct {
	log hclog.Logger
}

func (t *transformer) Transform(headers map[string]string) (map[string]string, error) {
	if _, trace := headers["x-trace"]; trace {
		// os.Stdout is go-plugin's stdio stream by now: this line reaches the host.
		fmt.Printf("go plugin: transforming %d header(s)\n", len(headers))
		t.log.Info("transform", "headers", len(headers))
	}
	out := make(map[string]string, len(headers)+1)
	for k, v := range headers {
		out[k] = v
	}
	out["x-plugin-lang"] = "go"
	return out, nil
}

func main() {
	log := hclog.New(&hclog.LoggerOptions{
		Name:       "go-transformer",
		Level:      hclog.Debug,
		Output:     os.Stderr,
		JSONFormat: true,
	})
	plugin.Serve(&plugin.ServeConfig{
		HandshakeConfig: shared.Handshake,
		Plugins: map[string]plugin.Plugin{
			"transformer": &shared.TransformerPlugin{Impl: &transformer{log: log}},
		},
		GRPCServer: plugin.DefaultGRPCServer,
		Logger:     log,
	})
}
