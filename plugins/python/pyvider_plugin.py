#!/usr/bin/env python3
"""The lab's header transformer served by someone else's go-plugin server for Python:
pyvider-rpcplugin (pinned in environment.yml), for ``python -m labkit bench rpc``.

It serves the same ``pluginlab.v1.HeaderTransformer`` as transformer_plugin.py, with the
lab's magic cookie, to the same hosts (labkit's and the Go host), and returns the request's
headers plus "x-plugin-lang: python". Only the protobuf messages come from labkit (its
generated ``transformer_pb2``); the server, the handshake and go-plugin's services are
pyvider's.
"""

import asyncio

import grpc
from pyvider.rpcplugin import RPCPluginProtocol, plugin_server

from labkit.rpc.stubs import messages

SERVICE = "pluginlab.v1.HeaderTransformer"
pb = messages("transformer")


async def transform(request, context):
    return pb.TransformResponse(headers={**request.headers, "x-plugin-lang": "python"})


class Transformer(RPCPluginProtocol):
    service_name = SERVICE
    supported_protocol_versions = [1]  # the lab's app protocol version

    async def get_grpc_descriptors(self):
        return None, SERVICE  # pyvider reads only the service's name

    async def add_to_server(self, server, handler):
        server.add_generic_rpc_handlers([grpc.method_handlers_generic_handler(SERVICE, {
            "Transform": grpc.unary_unary_rpc_method_handler(
                transform, pb.TransformRequest.FromString,
                pb.TransformResponse.SerializeToString)})])


async def main():
    # built inside the running loop: pyvider's server makes asyncio futures when constructed
    await plugin_server(protocol=Transformer(), handler=None, config={
        "PLUGIN_MAGIC_COOKIE_KEY": "PLUGIN_LAB_COOKIE",
        "PLUGIN_MAGIC_COOKIE_VALUE": "plugin-lab-v1",
        "PLUGIN_AUTO_MTLS": False,  # the lab's hosts ask for AutoMTLS only when told to
    }).serve()


if __name__ == "__main__":
    asyncio.run(main())
