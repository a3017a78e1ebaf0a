// host: times, with Go's own clock, a call to a function looked up in a Go plugin and a
// call to the same function compiled in (notebook 08).
//
//	host -calls N -repeats R [PLUGIN.so]
//
// With a plugin it opens it with plugin.Open, looks up Add once, then calls it through the
// func value Lookup returned (an indirect call the compiler cannot inline). Without one it
// times only the compiled-in add, a direct call that //go:noinline keeps a call. Every sum
// goes to a package variable, so neither loop can be optimised away.
//
// Prints one line per figure, in nanoseconds measured with time.Now (monotonic):
//
//	open NS     plugin.Open and Lookup("Add"), once per process (the first open of the file)
//	plugin NS   per call of the plugin's Add, one line per batch
//	direct NS   per call of the compiled-in add, one line per batch
//
// labkit/nativebench.py reads these lines. A runtime error exits with status 1.
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
