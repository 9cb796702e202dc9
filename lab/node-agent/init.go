package main

import (
	"os"
	"os/signal"
	"syscall"
)

// runInit is PID 1 of a lab host's PID namespace: it reaps every orphan until it is told to stop.
// The kernel ends the namespace's other processes when it exits, so stopping a host is killing it.
func runInit(_ []string) error {
	signals := make(chan os.Signal, 8)
	signal.Notify(signals, syscall.SIGCHLD, syscall.SIGTERM, syscall.SIGINT)
	for sig := range signals {
		if sig != syscall.SIGCHLD {
			return nil
		}
		for {
			var status syscall.WaitStatus
			pid, err := syscall.Wait4(-1, &status, syscall.WNOHANG, nil)
			if pid <= 0 || err != nil {
				break
			}
		}
	}
	return nil
}
