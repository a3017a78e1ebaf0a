// Command host is a go-plugin host: it starts the plugin whose command line it is given,
// sends one request and prints the response's headers, sorted, one per line.
//
//	host [-header k=v]... [-bench N [-repeats R]] PLUGIN-COMMAND [ARGS...]
//
// With -bench N it also times N more calls and prints the mean round trip per call, for R
// batches of N calls (one line each, R is 1 by default), then how long starting the plugin
// took: the process, the handshake, the gRPC connection and Dispense, with Go's clock.
package main

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"sort"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"

	"pluginlab/goplugin/shared"
)

type headerFlags map[string]string

func (h headerFlags) String() string { return fmt.Sprint(map[string]string(h)) }

func (h headerFlags) Set(v string) error {
	k, val, ok := strings.Cut(v, "=")
	if !ok || k == "" {
		return fmt.Errorf("want KEY=VALUE, got %q", v)
	}
	h[k] = val
	return nil
}

func main() {
	headers := headerFlags{"x-request-from": "go-host"}
	flag.Var(headers, "header", "a request header KEY=VALUE (repeatable)")
	bench := flag.Int("bench", 0, "time this many more calls")
	repeats := flag.Int("repeats", 1, "with -bench: time that many calls this many times")
	flag.Parse()
	if flag.NArg() == 0 {
		fmt.Fprintln(os.Stderr, "usage: host [-header k=v]... [-bench N [-repeats R]] PLUGIN-COMMAND [ARGS...]")
		os.Exit(2)
	}
	log := hclog.New(&hclog.LoggerOptions{Name: "host", Output: os.Stderr, Level: hclog.Warn})
	client := plugin.NewClient(&plugin.ClientConfig{
		HandshakeConfig:  shared.Handshake,
		Plugins:          shared.PluginMap,
		Cmd:              exec.Command(flag.Arg(0), flag.Args()[1:]...),
		AllowedProtocols: []plugin.Protocol{plugin.ProtocolGRPC},
		Logger:           log,
		SyncStdout:       os.Stderr, // the plugin's own stdout, kept apart from the answer
		SyncStderr:       os.Stderr,
	})
	defer client.Kill()
	if err := run(client, headers, *bench, *repeats); err != nil {
		fmt.Fprintln(os.Stderr, "host:", err)
		client.Kill()
		os.Exit(1)
	}
}

func run(client *plugin.Client, headers map[string]string, bench, repeats int) error {
	begin := time.Now()
	rpc, err := client.Client()
	if err != nil {
		return err
	}
	raw, err := rpc.Dispense("transformer")
	if err != nil {
		return err
	}
	started := time.Since(begin)
	t := raw.(shared.Transformer)
	out, err := t.Transform(headers)
	if err != nil {
		return err
	}
	keys := make([]string, 0, len(out))
	for k := range out {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Printf("%s: %s\n", k, out[k])
	}
	if bench > 0 {
		for r := 0; r < repeats; r++ {
			start := time.Now()
			for i := 0; i < bench; i++ {
				if _, err := t.Transform(headers); err != nil {
					return err
				}
			}
			fmt.Printf("bench: %d calls, %d ns per call\n", bench, time.Since(start).Nanoseconds()/int64(bench))
		}
		fmt.Printf("bench: start %d ns\n", started.Nanoseconds())
	}
	return nil
}
