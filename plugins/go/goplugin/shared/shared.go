// Package shared is what the lab's go-plugin host and plugins agree on: the handshake, the
// plugin map, the glue between the Transformer interface and its gRPC service, the host's
// counter offered through go-plugin's GRPCBroker, and the reattach information in the JSON
// shape Terraform's TF_REATTACH_PROVIDERS uses.
// Written from go-plugin's examples/grpc and examples/bidirectional layouts: host / shared
// interface / one implementation per language.
package shared

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"sync"

	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"pluginlab/goplugin/proto"
)

// Handshake must match labkit.rpc.LAB_HANDSHAKE: a host starts only plugins that carry
// this cookie and this app protocol version.
var Handshake = plugin.HandshakeConfig{
	ProtocolVersion:  1,
	MagicCookieKey:   "PLUGIN_LAB_COOKIE",
	MagicCookieValue: "plugin-lab-v1",
}

// Counter is the host's service a plugin may call back during Transform: the next number
// of a named count, kept by the host.
type Counter interface {
	Next(name string) (int64, error)
}

// Transformer is what a plugin does: take a request's headers, return the response's.
// counter is the host's Counter when the host offers one, else nil.
type Transformer interface {
	Transform(headers map[string]string, counter Counter) (map[string]string, error)
}

// Host is what a host calls: Transform, and Transform with a Counter of its own offered to
// the plugin for the length of the call.
type Host interface {
	Transform(headers map[string]string) (map[string]string, error)
	TransformCounting(headers map[string]string, counter Counter) (map[string]string, error)
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
	proto.RegisterHeaderTransformerServer(s, &server{impl: p.Impl, broker: broker})
	return nil
}

func (p *TransformerPlugin) GRPCClient(ctx context.Context, broker *plugin.GRPCBroker, c *grpc.ClientConn) (interface{}, error) {
	return &client{rpc: proto.NewHeaderTransformerClient(c), broker: broker}, nil
}

type server struct {
	proto.UnimplementedHeaderTransformerServer
	impl   Transformer
	broker *plugin.GRPCBroker

	mu    sync.Mutex
	conns map[uint32]*grpc.ClientConn // broker connections, by id: a Dial takes the id once
}

func (s *server) Transform(ctx context.Context, req *proto.TransformRequest) (*proto.TransformResponse, error) {
	var counter Counter
	if req.HostService != 0 {
		counter = &counterClient{server: s, id: req.HostService, ctx: ctx}
	}
	headers, err := s.impl.Transform(req.Headers, counter)
	if err != nil {
		return nil, err
	}
	return &proto.TransformResponse{Headers: headers}, nil
}

// dial returns the connection to the host's service id, dialling it through the broker the
// first time: go-plugin hands each connection info to one Dial only.
func (s *server) dial(id uint32) (*grpc.ClientConn, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if conn, ok := s.conns[id]; ok {
		return conn, nil
	}
	conn, err := s.broker.Dial(id)
	if err != nil {
		return nil, err
	}
	if s.conns == nil {
		s.conns = map[uint32]*grpc.ClientConn{}
	}
	s.conns[id] = conn
	return conn, nil
}

// forget drops the connection to id: its host is gone (another host may reuse the id).
func (s *server) forget(id uint32) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if conn, ok := s.conns[id]; ok {
		_ = conn.Close()
		delete(s.conns, id)
	}
}

type counterClient struct {
	server *server
	id     uint32
	ctx    context.Context
}

// Next calls the host's counter; a connection kept from a host that has gone is dialled
// again once, through the broker.
func (c *counterClient) Next(name string) (int64, error) {
	var err error
	for attempt := 0; attempt < 2; attempt++ {
		var conn *grpc.ClientConn
		if conn, err = c.server.dial(c.id); err != nil {
			return 0, fmt.Errorf("the host offered service %d, but dialling it failed: %w", c.id, err)
		}
		var reply *proto.CounterReply
		reply, err = proto.NewHostCounterClient(conn).Next(c.ctx, &proto.CounterRequest{Name: name})
		if err == nil {
			return reply.Value, nil
		}
		if status.Code(err) != codes.Unavailable {
			break
		}
		c.server.forget(c.id)
	}
	return 0, err
}

type client struct {
	rpc    proto.HeaderTransformerClient
	broker *plugin.GRPCBroker

	mu      sync.Mutex
	offered uint32 // the broker id of the counter this host serves, once it does
}

func (c *client) Transform(headers map[string]string) (map[string]string, error) {
	return c.call(headers, 0)
}

// TransformCounting serves counter through the broker (once: the plugin keeps the
// connection) and names it in the request.
func (c *client) TransformCounting(headers map[string]string, counter Counter) (map[string]string, error) {
	c.mu.Lock()
	if c.offered == 0 {
		c.offered = c.broker.NextId()
		go c.broker.AcceptAndServe(c.offered, func(opts []grpc.ServerOption) *grpc.Server {
			s := grpc.NewServer(opts...)
			proto.RegisterHostCounterServer(s, &counterServer{impl: counter})
			return s
		})
	}
	id := c.offered
	c.mu.Unlock()
	return c.call(headers, id)
}

func (c *client) call(headers map[string]string, service uint32) (map[string]string, error) {
	resp, err := c.rpc.Transform(context.Background(), &proto.TransformRequest{Headers: headers, HostService: service})
	if err != nil {
		return nil, err
	}
	return resp.Headers, nil
}

type counterServer struct {
	proto.UnimplementedHostCounterServer
	impl Counter
}

func (s *counterServer) Next(ctx context.Context, req *proto.CounterRequest) (*proto.CounterReply, error) {
	value, err := s.impl.Next(req.Name)
	if err != nil {
		return nil, err
	}
	return &proto.CounterReply{Value: value}, nil
}

// Counts is a Counter kept in memory.
type Counts struct {
	mu     sync.Mutex
	counts map[string]int64
}

func (c *Counts) Next(name string) (int64, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.counts == nil {
		c.counts = map[string]int64{}
	}
	c.counts[name]++
	return c.counts[name], nil
}

// Reattach is one plugin's reattach information as Terraform's TF_REATTACH_PROVIDERS
// spells it: {"transformer": {"Protocol": "grpc", "ProtocolVersion": 1, "Pid": 123,
// "Test": true, "Addr": {"Network": "unix", "String": "/tmp/plugin.../plugin.sock"}}}.
type Reattach struct {
	Protocol        string
	ProtocolVersion int
	Pid             int
	Test            bool
	Addr            struct {
		Network string
		String  string
	}
}

// EncodeReattach writes a ReattachConfig as the JSON above, under the plugin's name.
func EncodeReattach(name string, config *plugin.ReattachConfig) ([]byte, error) {
	var r Reattach
	r.Protocol = string(config.Protocol)
	r.ProtocolVersion = config.ProtocolVersion
	r.Pid = config.Pid
	r.Test = config.Test
	r.Addr.Network = config.Addr.Network()
	r.Addr.String = config.Addr.String()
	return json.Marshal(map[string]Reattach{name: r})
}

// DecodeReattach reads the JSON above back into the ReattachConfig of the plugin name.
func DecodeReattach(text, name string) (*plugin.ReattachConfig, error) {
	var all map[string]Reattach
	if err := json.Unmarshal([]byte(text), &all); err != nil {
		return nil, fmt.Errorf("the reattach information is not JSON of the shape {\"%s\": {...}}: %w", name, err)
	}
	r, ok := all[name]
	if !ok {
		return nil, fmt.Errorf("the reattach information has no plugin %q", name)
	}
	var addr net.Addr
	var err error
	switch r.Addr.Network {
	case "unix":
		addr, err = net.ResolveUnixAddr("unix", r.Addr.String)
	case "tcp":
		addr, err = net.ResolveTCPAddr("tcp", r.Addr.String)
	default:
		err = fmt.Errorf("unknown network %q (go-plugin uses unix or tcp)", r.Addr.Network)
	}
	if err != nil {
		return nil, err
	}
	return &plugin.ReattachConfig{
		Protocol:        plugin.Protocol(r.Protocol),
		ProtocolVersion: r.ProtocolVersion,
		Addr:            addr,
		Pid:             r.Pid,
		Test:            r.Test,
	}, nil
}
