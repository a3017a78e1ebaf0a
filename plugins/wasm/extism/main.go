// main.go: an Extism plugin in Go (notebook 09), built by the Go toolchain as a WASI reactor
// (GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared). An export takes no wasm parameters
// and returns 0 for success: its bytes come in and go out through Extism's functions, which
// go-pdk wraps (pdk.Input, pdk.Output), and a failure is a message (pdk.SetErrorString).
package main

import (
	"strconv"
	"strings"

	"github.com/extism/go-pdk"
)

// transform upper-cases its input, like the lab's other transform plugins.
//
//go:wasmexport transform
func transform() int32 {
	pdk.OutputString(strings.ToUpper(pdk.InputString()))
	return 0
}

// nextNumber is a host function: the plugin declares it, the host supplies it. Bytes cross by
// reference to Extism's memory: the offset of a block holding the question goes in, the offset
// of a block holding the host's answer comes back.
//
//go:wasmimport extism:host/user next_number
func nextNumber(offset uint64) uint64

// numbered shows the host its input, gets a number back, and returns "N: INPUT": the count
// lives in the host, not in the plugin.
//
//go:wasmexport numbered
func numbered() int32 {
	text := pdk.Input()
	question := pdk.AllocateBytes(text)
	defer question.Free()
	answer := pdk.FindMemory(nextNumber(question.Offset()))
	defer answer.Free()
	pdk.OutputString(string(answer.ReadBytes()) + ": " + strings.ToUpper(string(text)))
	return 0
}

// hoarded keeps what hog allocates, so that the memory stays in use.
var hoarded [][]byte

// hog allocates as many MiB as its input says, and keeps them: the memory limit decides.
//
//go:wasmexport hog
func hog() int32 {
	mib, err := strconv.Atoi(pdk.InputString())
	if err != nil || mib < 0 {
		pdk.SetErrorString("hog wants a whole number of MiB, not " + strconv.Quote(pdk.InputString()))
		return 1
	}
	block := make([]byte, mib<<20)
	for i := range block {
		block[i] = 1
	}
	hoarded = append(hoarded, block)
	pdk.OutputString(strconv.Itoa(mib) + " MiB allocated")
	return 0
}

// spin never returns: the manifest's timeout stops it.
//
//go:wasmexport spin
func spin() int32 {
	for n := 0; ; n++ {
	}
}

func main() {}
