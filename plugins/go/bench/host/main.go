// host: times, with Go's own clock, a call to a function looked up in a Go plugin and a
// call to the same function compiled in, directly and through a registry (notebook 08).
//
//	host -calls N -repeats R [PLUGIN.so]
//
// With a plugin it opens it with plugin.Open, looks up Add once, then calls it through the
// func value Lookup returned (an indirect call the compiler cannot inline). Without one it
// times only the compiled-in add: a direct call that //go:noinline keeps a call, and the
// same add registered in a map of interfaces, as compile-time plugin registries hold their
// plugins (notebook 07), called through the interface (a dynamic dispatch). Every sum goes
// to a package variable, so no loop can be optimised away.
//
// Prints one line per figure, in nanoseconds measured with time.Now (monotonic):
//
//	open NS     plugin.Open and Lookup("Add"), once per process (the first open of the file)
//	plugin NS   per call of the plugin's Add, one line per batch
//	direct NS   per call of the compiled-in add, one line per batch
//	registry NS per call of the compiled-in add through the registry's interface
//
// labkit/lab/benchhosts.py reads these lines. A runtime error exits with status 1.
package main

import (
	"flag"
	"fmt"
	"os"
	"plugin"
	"time"
)

// sink receives every sum, so the compiler must make every call.
var sink int

//go:noinline
func add(a, b int) int { return a + b }

// Adder is the interface the registry holds its plugins by.
type Adder interface{ Add(a, b int) int }

type adder struct{}

//go:noinline
func (adder) Add(a, b int) int { return a + b }

// registry is filled at init, as a compiled-in plugin's init registers it.
var registry = map[string]Adder{}

func init() { registry["add"] = adder{} }

func main() {
	calls := flag.Int("calls", 1_000_000, "calls per batch")
	repeats := flag.Int("repeats", 5, "batches")
	flag.Parse()
	if *calls <= 0 || *repeats < 0 || flag.NArg() > 1 {
		fmt.Fprintln(os.Stderr, "usage: host -calls N -repeats R [PLUGIN.so]")
		os.Exit(2)
	}
	if flag.NArg() == 1 {
		start := time.Now()
		p, err := plugin.Open(flag.Arg(0))
		if err != nil {
			fmt.Fprintln(os.Stderr, "host:", err)
			os.Exit(1)
		}
		sym, err := p.Lookup("Add")
		if err != nil {
			fmt.Fprintln(os.Stderr, "host:", err)
			os.Exit(1)
		}
		took := time.Since(start)
		pluginAdd, ok := sym.(func(int, int) int)
		if !ok {
			fmt.Fprintf(os.Stderr, "host: Add is a %T, not a func(int, int) int\n", sym)
			os.Exit(1)
		}
		fmt.Printf("open %d\n", took.Nanoseconds())
		batches("plugin", pluginAdd, *calls, *repeats)
	}
	batches("direct", nil, *calls, *repeats)
	viaRegistry(registry["add"], *calls, *repeats)
}

// viaRegistry times batches of calls through the registered interface value, as batches does.
func viaRegistry(plugin Adder, calls, repeats int) {
	sum := 0
	for r := -1; r < repeats; r++ {
		n := calls
		if r < 0 {
			n = calls/10 + 1
		}
		start := time.Now()
		for i := 0; i < n; i++ {
			sum += plugin.Add(i, 1)
		}
		took := time.Since(start)
		if r >= 0 {
			fmt.Printf("registry %.4f\n", float64(took.Nanoseconds())/float64(n))
		}
	}
	sink += sum
}

// batches times repeats batches of calls calls, after a warm-up of a tenth of a batch:
// through f when it is not nil, else to the compiled-in add.
func batches(label string, f func(int, int) int, calls, repeats int) {
	sum := 0
	for r := -1; r < repeats; r++ {
		n := calls
		if r < 0 {
			n = calls/10 + 1 // warm-up, not printed
		}
		start := time.Now()
		if f != nil {
			for i := 0; i < n; i++ {
				sum += f(i, 1)
			}
		} else {
			for i := 0; i < n; i++ {
				sum += add(i, 1)
			}
		}
		took := time.Since(start)
		if r >= 0 {
			fmt.Printf("%s %.4f\n", label, float64(took.Nanoseconds())/float64(n))
		}
	}
	sink += sum
}
