// cshared: a Go library for C callers (go build -buildmode=c-shared). Every exported
// function is a C function; strings cross the boundary as C strings, which Go allocates
// with malloc and the caller must hand back to FreeString.
package main

/*
#include <stdlib.h>
*/
import "C"

import (
	"strings"
	"unsafe"
)

// Shout returns text in capitals with "!" appended, as a new C string the caller owns:
// pass it to FreeString when done.
//
//export Shout
func Shout(text *C.char) *C.char {
	return C.CString(strings.ToUpper(C.GoString(text)) + "!")
}

// FreeString frees a string returned by Shout.
//
//export FreeString
func FreeString(text *C.char) {
	C.free(unsafe.Pointer(text))
}

// Add is the cheapest call there is, for measuring the cost of crossing into Go.
//
//export Add
func Add(a, b C.long) C.long { return a + b }

func main() {}
