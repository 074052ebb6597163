package freeport

import (
	"net"
	"strconv"
	"testing"
)

func TestTakeNeverRepeats(t *testing.T) {
	seen := map[int]bool{}
	for range 300 {
		port, err := Take()
		if err != nil {
			t.Fatal(err)
		}
		if seen[port] {
			t.Fatalf("port %d returned twice", port)
		}
		seen[port] = true
	}
	for range 20 {
		port, err := TakeWithBus(10000)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range []int{port, port + 10000} {
			if seen[p] {
				t.Fatalf("port %d returned twice", p)
			}
			seen[p] = true
			l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
			if err != nil {
				t.Fatalf("port %d is not free: %v", p, err)
			}
			l.Close()
		}
	}
}
