// Command plugin is the lab's header transformer written in Go and served with
// hashicorp/go-plugin: any go-plugin host of the lab can start it (labkit.rpc.PluginClient,
// or the Go host next door). It returns the request's headers plus "x-plugin-lang: go"; a
// request with an "x-trace" header also makes it print and log what it does. When the host
// offers its counter through go-plugin's broker, the plugin calls it back and returns the
// number as "x-call-number".
//
// With -debug it runs as Terraform's providers do under a debugger: no magic cookie needed,
// it prints its reattach information as one line of JSON and serves until interrupted; a
// host attaches with that line and does not own the process.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"syscall"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"

	"pluginlab/goplugin/shared"
)

type transformer struct {
	log hclog.Logger
}

func (t *transformer) Transform(headers map[string]string, counter shared.Counter) (map[string]string, error) {
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
	if counter != nil {
		n, err := counter.Next("transform")
		if err != nil {
			return nil, fmt.Errorf("the host's counter failed: %w", err)
		}
		out["x-call-number"] = strconv.FormatInt(n, 10)
	}
	return out, nil
}

func main() {
	debug := flag.Bool("debug", false, "serve for a host that attaches: print the reattach JSON")
	flag.Parse()
	log := hclog.New(&hclog.LoggerOptions{
		Name:       "go-transformer",
		Level:      hclog.Debug,
		Output:     os.Stderr,
		JSONFormat: true,
	})
	config := &plugin.ServeConfig{
		HandshakeConfig: shared.Handshake,
		Plugins: map[string]plugin.Plugin{
			"transformer": &shared.TransformerPlugin{Impl: &transformer{log: log}},
		},
		GRPCServer: plugin.DefaultGRPCServer,
		Logger:     log,
	}
	if *debug {
		serveForDebugging(config, log)
		return
	}
	plugin.Serve(config)
}

// serveForDebugging serves in go-plugin's test mode, which Terraform's providers use for
// -debug: the reattach information goes to stdout, SIGINT or SIGTERM ends the plugin, and
// a host's Kill leaves it running.
func serveForDebugging(config *plugin.ServeConfig, log hclog.Logger) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	reattach := make(chan *plugin.ReattachConfig, 1)
	closed := make(chan struct{})
	config.Test = &plugin.ServeTestConfig{Context: ctx, ReattachConfigCh: reattach, CloseCh: closed}
	go plugin.Serve(config)
	select {
	case r := <-reattach:
		line, err := shared.EncodeReattach("transformer", r)
		if err != nil {
			log.Error("cannot encode the reattach information", "error", err)
			os.Exit(1)
		}
		fmt.Println(string(line))
	case <-closed:
		os.Exit(1)
	}
	<-closed
}
