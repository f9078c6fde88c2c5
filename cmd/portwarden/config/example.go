package config

import _ "embed"

// Example is a commented config file with every key at its default and an
// allow entry for MKE's own ucp-controller. Packages install it.
//
//go:embed example.yaml
var Example []byte
