// stock: the host as shipped, with its in-tree plugins only.
package main

import (
	"os"

	"pluginlab/registry/framework"
)

func main() { framework.Main(os.Args[1:]) }
