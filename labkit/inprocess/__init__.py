"""Plugins that run inside the host's process: shared objects loaded by hand with dlopen and
dlsym through cffi (:mod:`.dlopen`), the C plugin host of ``plugins/c/plugin_api.h``
(:mod:`.host`), Python plugins found through entry points and pluggy (:mod:`.python`), and
WebAssembly plugins run by wasmtime (:mod:`.wasm`)."""
