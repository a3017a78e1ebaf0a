"""The sample plugins and hosts of ``plugins/``, built and run the way each one needs: C
(:mod:`.c`), Go in every variant notebook 05 compares (:mod:`.go`), go-plugin RPC in Go and
Python (:mod:`.rpc`), and the wasm plugin built for wasm and natively (:mod:`.wasm`)."""
