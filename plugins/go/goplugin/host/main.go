// Command host is a go-plugin host: it starts the plugin whose command line it is given,
// sends one request and prints the response's headers, sorted, one per line.
//
//	host [-header k=v]... [-times N] [-counter] [-checksum SHA256] [-automtls] [-bench N [-repeats R]] PLUGIN-COMMAND [ARGS...]
//	host [-header k=v]... [-times N] [-counter] -reattach JSON
//
// -times N sends the request N times and prints the last response. -counter offers the
// plugin the host's counter through go-plugin's GRPCBroker with every request. -checksum
// is go-plugin's SecureConfig: the host starts the plugin only if the SHA-256 of the
// plugin's executable is this (hex). -reattach attaches to a plugin that is already running,
// given its reattach information (the JSON the lab's plugins print with -debug); the host
// then did not start the plugin, and stops it at the end only if it is not in test mode.
// -automtls is go-plugin's AutoMTLS: the host makes a certificate for itself and one run,
// hands it to the plugin in PLUGIN_CLIENT_CERT, and trusts only the certificate the plugin
// sends back in its handshake line; both are ECDSA P-521, made by go-plugin.
//
// With -bench N it also times N more calls and prints the mean round trip per call, for R
// batches of N calls (one line each, R is 1 by default), then how long starting the plugin
// took: the process, the handshake, the gRPC connection and Dispense, with Go's clock.
package main

import (
	"crypto/sha256"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sort"
	"strings"
	"sync"
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
	times := flag.Int("times", 1, "send the request this many times, print the last response")
	counter := flag.Bool("counter", false, "offer the plugin the host's counter through the broker")
	checksum := flag.String("checksum", "", "start the plugin only if its executable's SHA-256 is this")
	reattach := flag.String("reattach", "", "attach to a running plugin: its reattach JSON")
	automtls := flag.Bool("automtls", false, "go-plugin's AutoMTLS: mutual TLS with certificates made for this run")
	awaitStdout := flag.Bool("await-stdout", false, "before stopping the plugin, wait (up to 5 s) until its stdout has reached this host")
	flag.Parse()
	if (flag.NArg() == 0) == (*reattach == "") {
		fmt.Fprintln(os.Stderr, "usage: host [-header k=v]... [-times N] [-counter] [-checksum SHA256] [-automtls] [-bench N [-repeats R]] PLUGIN-COMMAND [ARGS...]")
		fmt.Fprintln(os.Stderr, "       host [-header k=v]... [-times N] [-counter] -reattach JSON")
		os.Exit(2)
	}
	log := hclog.New(&hclog.LoggerOptions{Name: "host", Output: os.Stderr, Level: hclog.Warn})
	// go-plugin copies the plugin's stdout from its own goroutine, which nothing waits for:
	// a host that exits right after its last call may leave a line the plugin printed unread
	stdout := &firstWrite{Writer: os.Stderr, seen: make(chan struct{})}
	config := &plugin.ClientConfig{
		HandshakeConfig:  shared.Handshake,
		Plugins:          shared.PluginMap,
		AllowedProtocols: []plugin.Protocol{plugin.ProtocolGRPC},
		Logger:           log,
		SyncStdout:       stdout, // the plugin's own stdout, kept apart from the answer
		SyncStderr:       os.Stderr,
		AutoMTLS:         *automtls,
	}
	if *reattach != "" {
		r, err := shared.DecodeReattach(*reattach, "transformer")
		if err != nil {
			fmt.Fprintln(os.Stderr, "host:", err)
			os.Exit(2)
		}
		config.Reattach = r
	} else {
		config.Cmd = exec.Command(flag.Arg(0), flag.Args()[1:]...)
	}
	if *checksum != "" {
		sum, err := hex.DecodeString(*checksum)
		if err != nil || len(sum) != sha256.Size {
			fmt.Fprintf(os.Stderr, "host: -checksum wants 64 hex digits (a SHA-256), not %q\n", *checksum)
			os.Exit(2)
		}
		config.SecureConfig = &plugin.SecureConfig{Checksum: sum, Hash: sha256.New()}
	}
	client := plugin.NewClient(config)
	defer client.Kill()
	var counts shared.Counter
	if *counter {
		counts = &shared.Counts{}
	}
	if err := run(client, headers, *times, counts, *bench, *repeats); err != nil {
		fmt.Fprintln(os.Stderr, "host:", err)
		client.Kill()
		os.Exit(1)
	}
	if *awaitStdout {
		select {
		case <-stdout.seen:
		case <-time.After(5 * time.Second):
			fmt.Fprintln(os.Stderr, "host: the plugin's stdout did not arrive within 5 s")
		}
	}
}

// firstWrite passes writes on and closes seen at the first one.
type firstWrite struct {
	io.Writer
	seen chan struct{}
	once sync.Once
}

func (w *firstWrite) Write(p []byte) (int, error) {
	n, err := w.Writer.Write(p)
	w.once.Do(func() { close(w.seen) })
	return n, err
}

func run(client *plugin.Client, headers map[string]string, times int, counter shared.Counter, bench, repeats int) error {
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
	t := raw.(shared.Host)
	call := t.Transform
	if counter != nil {
		call = func(h map[string]string) (map[string]string, error) { return t.TransformCounting(h, counter) }
	}
	var out map[string]string
	for i := 0; i < max(times, 1); i++ {
		if out, err = call(headers); err != nil {
			return err
		}
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
				if _, err := call(headers); err != nil {
					return err
				}
			}
			fmt.Printf("bench: %d calls, %d ns per call\n", bench, time.Since(start).Nanoseconds()/int64(bench))
		}
		fmt.Printf("bench: start %d ns\n", started.Nanoseconds())
	}
	return nil
}
