#!/usr/bin/env python3
"""The lab's header transformer with go-plugin's two advanced tricks, for notebook 12.

- It calls its host back: when a request offers the host's counter through go-plugin's
  broker (``TransformRequest.host_service``), it asks the counter for the next number and
  returns it as "x-call-number". The count lives in the host.
- It can be started by hand, the way a plugin is debugged: with --debug it needs no magic
  cookie, prints its reattach information as one line of JSON, and serves any host that
  attaches, until Shutdown or Ctrl-C.

Like transformer_plugin.py, it returns the request's headers plus "x-plugin-lang: python".
"""

import sys

from labkit.rpc import Call, serve


def transform(headers: dict[str, str], call: Call) -> dict[str, str]:
    out = {**headers, "x-transformed-by": "callback_plugin.py"}
    if call.counter is not None:
        out["x-call-number"] = str(call.counter.next("transform"))
    return out


if __name__ == "__main__":
    serve(transform, debug="--debug" in sys.argv[1:])
