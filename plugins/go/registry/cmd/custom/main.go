// custom: the host rebuilt with one out-of-tree plugin compiled in, the way a Kubernetes
// scheduler with custom plugins is built (app.NewSchedulerCommand(app.WithPlugin(...))).
package main

import (
	"os"

	"pluginlab/registry/framework"
	"pluginlab/registry/outoftree/shout"
)

func main() { framework.Main(os.Args[1:], framework.WithPlugin("shout", shout.New)) }
