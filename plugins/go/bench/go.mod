module pluginlab/bench

go 1.22
