module pluginlab

go 1.22
