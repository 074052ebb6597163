// Package freeport hands out loopback TCP ports for tests and benchmarks that start servers.
//
// A port the kernel reports free may be reported free again before the server meant for it
// binds it, so two servers of one test could be given the same port. Take never returns a port
// it has returned before in the same process.
package freeport

import (
	"errors"
	"net"
	"strconv"
	"sync"
)

var (
	mu    sync.Mutex
	given = map[int]bool{}
)

// Take returns a port on 127.0.0.1 that was free a moment ago and that Take has not returned
// before in this process.
func Take() (int, error) {
	return take(0)
}

// TakeWithBus is Take for a server that also listens on port+offset (a Redis Cluster node's bus
// port): both were free a moment ago and neither has been returned before.
func TakeWithBus(offset int) (int, error) {
	return take(offset)
}

func take(offset int) (int, error) {
	mu.Lock()
	defer mu.Unlock()
	for range 100 {
		port, err := listenFree()
		if err != nil {
			return 0, err
		}
		if given[port] {
			continue
		}
		if offset != 0 {
			bus := port + offset
			if bus > 65535 || given[bus] || !isFree(bus) {
				continue
			}
			given[bus] = true
		}
		given[port] = true
		return port, nil
	}
	return 0, errors.New("no free loopback port after 100 tries")
}

func listenFree() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func isFree(port int) bool {
	l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		return false
	}
	l.Close()
	return true
}
