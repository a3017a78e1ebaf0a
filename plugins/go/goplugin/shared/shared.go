// Package shared is what the lab's go-plugin host and plugins agree on: the handshake, the
// plugin map, and the glue between the Transformer interface and its gRPC service.
// Written from go-plugin's examples/grpc layout: host / shared interface / one
// implementation per language.
package shared

import (
	"context"

	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"

	"pluginlab/goplugin/proto"
)

// Handshake must match labkit.rpc.LAB_HANDSHAKE: a host starts only plugins that carry
// this cookie and this app protocol version.
var Handshake = plugin.HandshakeConfig{
	ProtocolVersion:  1,
	MagicCookieKey:   "PLUGIN_LAB_COOKIE",
	MagicCookieValue: "plugin-lab-v1",
}

// Transformer is what a plugin does: take a request's headers, return the response's.
type Transformer interface {
	Transform(headers map[string]string) (map[string]string, error)
}

// PluginMap is the host's table of plugin kinds; "transformer" is the only one.
var PluginMap = map[string]plugin.Plugin{
	"transformer": &TransformerPlugin{},
}

// TransformerPlugin tells go-plugin how to serve a Transformer (plugin side) and how to
// call one (host side) over gRPC.
type TransformerPlugin struct {
	plugin.NetRPCUnsupportedPlugin
	Impl Transformer
}

func (p *TransformerPlugin) GRPCServer(broker *plugin.GRPCBroker, s *grpc.Server) error {
	proto.RegisterHeaderTransformerServer(s, &server{impl: p.Impl})
	return nil
}

func (p *TransformerPlugin) GRPCClient(ctx context.Context, broker *plugin.GRPCBroker, c *grpc.ClientConn) (interface{}, error) {
	return &client{rpc: proto.NewHeaderTransformerClient(c)}, nil
}

type server struct {
	proto.UnimplementedHeaderTransformerServer
	impl Transformer
}

func (s *server) Transform(ctx context.Context, req *proto.TransformRequest) (*proto.TransformResponse, error) {
	headers, err := s.impl.Transform(req.Headers)
	if err != nil {
		return nil, err
	}
	return &proto.TransformResponse{Headers: headers}, nil
}

type client struct {
	rpc proto.HeaderTransformerClient
}

func (c *client) Transform(headers map[string]string) (map[string]string, error) {
	resp, err := c.rpc.Transform(context.Background(), &proto.TransformRequest{Headers: headers})
	if err != nil {
		return nil, err
	}
	return resp.Headers, nil
}
