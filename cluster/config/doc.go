// Package config reads a Troupe node's configuration: a Java properties
// file using Kafka's server.properties key names, then "key=value"
// overrides from the command line, checked against the keys Troupe
// supports and resolved into a typed Config.
//
// Without a file or overrides the embedded defaults describe a working
// single node: PLAINTEXT on 127.0.0.1:9092, data in ./data.
//
// Strictness is deliberate: an unknown key, a malformed value or a
// listener set Troupe cannot serve stops startup with an error that names
// the key and where it was set (file:line or --override), so a typo never
// passes silently for a setting.
package config
