"""Building the lab's code, cached: C into shared objects and programs (:mod:`.c`, with ``cc``
or ``zig cc``, for wasm too), Go programs, plugins and c-shared libraries (:mod:`.go`), the one
content-addressed build cache they and the protobuf stubs share (:mod:`.cache`), and the
progress line a slow build shows (:mod:`.progress`)."""
