#!/usr/bin/env python3
"""A header transformer plugin in Python, served with go-plugin's gRPC protocol.

Any go-plugin host of the lab can start it: labkit.rpc.PluginClient in Python, or the Go
host in plugins/go/goplugin/host built with hashicorp/go-plugin. It returns the request's
headers plus "x-plugin-lang: python" (labkit.rpc.serve adds that). A request with an
"x-trace" header also makes it say what it does on its stdout, which travels to the host
over go-plugin's stdio stream.
"""

from labkit.rpc import serve


def transform(headers: dict[str, str]) -> dict[str, str]:
    if "x-trace" in headers:
        print(f"python plugin: transforming {len(headers)} header(s)")
    return {**headers, "x-transformed-by": "transformer_plugin.py"}


if __name__ == "__main__":
    serve(transform)
