// Command sleeper is the program in the test image. It listens on each
// port named in its arguments ("tcp:8080", "udp:53") and waits for a
// signal, so that a test can probe a container's ports and stop it fast.
package main

import (
	"fmt"
	"net"
	"os"
	"os/signal"
	"strings"
	"syscall"
)

func main() {
	for _, arg := range os.Args[1:] {
		proto, port, _ := strings.Cut(arg, ":")
		if err := listen(proto, ":"+port); err != nil {
			fmt.Fprintf(os.Stderr, "sleeper: %s: %v\n", arg, err)
			os.Exit(1)
		}
	}
	signals := make(chan os.Signal, 1)
	signal.Notify(signals, syscall.SIGTERM, syscall.SIGINT)
	<-signals
}

func listen(proto, addr string) error {
	switch proto {
	case "tcp":
		l, err := net.Listen("tcp", addr)
		if err != nil {
			return err
		}
		go func() {
			for {
				c, err := l.Accept()
				if err != nil {
					return
				}
				c.Write([]byte("sleeper\n"))
				c.Close()
			}
		}()
	case "udp":
		c, err := net.ListenPacket("udp", addr)
		if err != nil {
			return err
		}
		go func() {
			buf := make([]byte, 512)
			for {
				n, from, err := c.ReadFrom(buf)
				if err != nil {
					return
				}
				c.WriteTo(buf[:n], from)
			}
		}()
	default:
		return fmt.Errorf("protocol %q is not tcp or udp", proto)
	}
	return nil
}
