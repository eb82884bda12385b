// Command capture relays TINE traffic between a client and a server and
// prints every datagram decoded (and optionally writes the numbered files
// the replay tests read). Development tool:
//
//	capture -listen 127.0.0.1:22002 -up 127.0.0.1:22000 [-tcp-listen :23002 -tcp-up :23000] [-dir D -name N]
//
// It stops on SIGINT and then writes the files.
package main

import (
	"encoding/hex"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"

	"tioga/adapters/tine/internal/tinecap"
	"tioga/adapters/tine/wire"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:22002", "UDP address clients send to")
	up := flag.String("up", "127.0.0.1:22000", "UDP address of the server")
	tl := flag.String("tcp-listen", "", "TCP address clients connect to")
	tu := flag.String("tcp-up", "", "TCP address of the server")
	dir := flag.String("dir", "", "write numbered files here on exit")
	name := flag.String("name", "capture", "file name stem")
	flag.Parse()
	p, err := tinecap.Start(*listen, *up, *tl, *tu)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt)
	<-sig
	p.Close()
	pk := p.Packets()
	for i, x := range pk {
		fmt.Printf("#%d %s\n", i, Describe(x))
	}
	if *dir != "" {
		if err := tinecap.WriteFiles(*dir, *name, pk); err != nil {
			fmt.Fprintln(os.Stderr, err)
		}
	}
}

// Describe decodes a packet for reading.
func Describe(x tinecap.Packet) string {
	var sb strings.Builder
	dir := "rep"
	if x.ToServer {
		dir = "REQ"
	}
	fmt.Fprintf(&sb, "%s %s tcp=%v %s len=%d\n", x.At.Format("15:04:05.000000"), dir, x.TCP, x.Client, len(x.Data))
	b := x.Data
	if x.ToServer {
		var r wire.Request
		if err := r.Parse(b); err != nil {
			fmt.Fprintf(&sb, "  unparsed: %v\n%s", err, hex.Dump(b[:min(len(b), 256)]))
			return sb.String()
		}
		fmt.Fprintf(&sb, "  hdr %+v\n", r.Header)
		for _, l := range r.Links {
			fmt.Fprintf(&sb, "  sub %+v\n  con %+v\n  in %x\n", l.Subscription, l.Contract, l.Input[:min(len(l.Input), 64)])
		}
		return sb.String()
	}
	blocks, err := wire.ParseReply(b, nil)
	if err != nil {
		fmt.Fprintf(&sb, "  unparsed: %v\n%s", err, hex.Dump(b[:min(len(b), 256)]))
		return sb.String()
	}
	for _, bl := range blocks {
		fmt.Fprintf(&sb, "  hdr %+v sts=%q\n  data(%d) %x\n", bl.Header, bl.StatusText(), len(bl.Data), bl.Data[:min(len(bl.Data), 96)])
	}
	return sb.String()
}
