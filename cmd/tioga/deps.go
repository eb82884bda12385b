// deps.go pins the project's chosen dependencies in go.mod while the
// packages that use them are being written. Delete it once every dependency
// is imported by real code, then run go mod tidy.
package main

import (
	_ "github.com/BurntSushi/toml"
	_ "github.com/fxamacker/cbor/v2"
	_ "github.com/go-co-op/gocron/v2"
	_ "github.com/gopcua/opcua"
	_ "github.com/gopcua/opcua/server"
	_ "github.com/klauspost/compress/gzip"
	_ "github.com/pebbe/zmq4"
	_ "github.com/pierrec/lz4/v4"
	_ "github.com/rs/zerolog"
	_ "github.com/schollz/progressbar/v3"
)
