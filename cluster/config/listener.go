package config

import (
	"fmt"
	"net"
	"strconv"
	"strings"
)

// Listener is one entry of listeners or advertised.listeners:
// NAME://host:port.
type Listener struct {
	// Name is the listener name, upper-cased as Kafka normalizes it.
	Name string
	// Host is empty for "all interfaces" (as in PLAINTEXT://:9092).
	// IPv6 addresses are stored without brackets.
	Host string
	// Port is 0..65535; 0 in listeners asks the OS for a free port, and
	// an advertised port of 0 stands for the port actually bound.
	Port int
}

// Addr is the address to bind or dial: host:port, with IPv6 hosts
// bracketed and an empty host meaning all interfaces (as net.Listen
// reads ":port").
func (l Listener) Addr() string {
	return net.JoinHostPort(l.Host, strconv.Itoa(l.Port))
}

// String renders the listener as it is written in the config.
func (l Listener) String() string {
	return l.Name + "://" + l.Addr()
}

// Wildcard reports whether the listener binds every interface (empty
// host, 0.0.0.0 or ::). Such an address means nothing to a client, so it
// can never be advertised.
func (l Listener) Wildcard() bool {
	if l.Host == "" {
		return true
	}
	ip := net.ParseIP(l.Host)
	return ip != nil && ip.IsUnspecified()
}

// parseListener parses NAME://host:port.
func parseListener(s string) (Listener, error) {
	name, hostPort, ok := strings.Cut(s, "://")
	if !ok {
		return Listener{}, fmt.Errorf("listener %q: want NAME://host:port", s)
	}
	if !validListenerName(name) {
		return Listener{}, fmt.Errorf("listener %q: name must be letters, digits and _ (like PLAINTEXT)", s)
	}
	host, port, err := splitHostPort(hostPort)
	if err != nil {
		return Listener{}, fmt.Errorf("listener %q: %w", s, err)
	}
	return Listener{Name: strings.ToUpper(name), Host: host, Port: port}, nil
}

// parseListenerList parses a comma-separated list of listeners; empty
// items are ignored, duplicate names are an error.
func parseListenerList(s string) ([]Listener, error) {
	var out []Listener
	for _, item := range splitList(s) {
		l, err := parseListener(item)
		if err != nil {
			return nil, err
		}
		for _, prev := range out {
			if prev.Name == l.Name {
				return nil, fmt.Errorf("listener name %s appears twice", l.Name)
			}
		}
		out = append(out, l)
	}
	return out, nil
}

func formatListeners(ls []Listener) string {
	parts := make([]string, len(ls))
	for i, l := range ls {
		parts[i] = l.String()
	}
	return strings.Join(parts, ",")
}

func validListenerName(name string) bool {
	if name == "" {
		return false
	}
	for _, c := range []byte(name) {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

// splitHostPort splits host:port (IPv6 hosts in brackets) and checks the
// port is a number in 0..65535. The host may be empty.
func splitHostPort(s string) (host string, port int, err error) {
	host, p, err := net.SplitHostPort(s)
	if err != nil {
		return "", 0, fmt.Errorf("want host:port: %w", err)
	}
	if strings.ContainsAny(host, " \t/@,") {
		return "", 0, fmt.Errorf("bad host %q", host)
	}
	port, err = strconv.Atoi(p)
	if err != nil || port < 0 || port > 65535 {
		return "", 0, fmt.Errorf("port %q is not a number in 0..65535", p)
	}
	return host, port, nil
}

// Voter is one entry of controller.quorum.voters: id@host:port.
type Voter struct {
	ID   int32
	Host string
	Port int
}

// String renders the voter as it is written in the config.
func (v Voter) String() string {
	return strconv.Itoa(int(v.ID)) + "@" + net.JoinHostPort(v.Host, strconv.Itoa(v.Port))
}

func parseVoters(s string) ([]Voter, error) {
	var out []Voter
	for _, item := range splitList(s) {
		id, hostPort, ok := strings.Cut(item, "@")
		if !ok {
			return nil, fmt.Errorf("voter %q: want id@host:port", item)
		}
		n, err := strconv.ParseInt(id, 10, 32)
		if err != nil || n < 0 {
			return nil, fmt.Errorf("voter %q: id %q is not a non-negative integer", item, id)
		}
		host, port, err := splitHostPort(hostPort)
		if err != nil {
			return nil, fmt.Errorf("voter %q: %w", item, err)
		}
		if host == "" || port == 0 {
			return nil, fmt.Errorf("voter %q: needs a host and a non-zero port", item)
		}
		for _, prev := range out {
			if prev.ID == int32(n) {
				return nil, fmt.Errorf("voter id %d appears twice", n)
			}
		}
		out = append(out, Voter{ID: int32(n), Host: host, Port: port})
	}
	return out, nil
}

// securityProtocols are Kafka's security protocol names. Only PLAINTEXT
// is served today; the others are recognized so the error can say "not
// supported yet" rather than "unknown".
var securityProtocols = []string{"PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"}

// parseProtocolMap parses listener.security.protocol.map: NAME:PROTOCOL,...
func parseProtocolMap(s string) (map[string]string, []string, error) {
	m := make(map[string]string)
	var order []string
	for _, item := range splitList(s) {
		name, proto, ok := strings.Cut(item, ":")
		name, proto = strings.ToUpper(strings.TrimSpace(name)), strings.ToUpper(strings.TrimSpace(proto))
		if !ok || !validListenerName(name) {
			return nil, nil, fmt.Errorf("entry %q: want LISTENER_NAME:PROTOCOL", item)
		}
		if !contains(securityProtocols, proto) {
			return nil, nil, fmt.Errorf("entry %q: unknown security protocol %q (known: %s)", item, proto, strings.Join(securityProtocols, ", "))
		}
		if _, dup := m[name]; dup {
			return nil, nil, fmt.Errorf("listener name %s appears twice", name)
		}
		m[name] = proto
		order = append(order, name+":"+proto)
	}
	return m, order, nil
}

// splitList splits a comma-separated value, trimming items and dropping
// empty ones (Kafka's list parsing does the same).
func splitList(s string) []string {
	var out []string
	for _, item := range strings.Split(s, ",") {
		if item = strings.TrimSpace(item); item != "" {
			out = append(out, item)
		}
	}
	return out
}

func contains(set []string, v string) bool {
	for _, s := range set {
		if s == v {
			return true
		}
	}
	return false
}
