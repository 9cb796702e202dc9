package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"regexp"
	"strings"
)

// runCrictl is the lab's crictl, for what the program's node scripts ask of it: `ps` (by name
// pattern and state, ids only) and `exec` into a container. Containers are the static pods' processes
// the kubelet stand-in recorded (podStateDir); an exec runs the lab's build of the container image's
// program on the host, as `kubectl exec` does through the stand-in's API.
func runCrictl(args []string) error {
	global := flag.NewFlagSet("crictl", flag.ContinueOnError)
	global.String("runtime-endpoint", "", "ignored: the lab has one runtime")
	global.String("r", "", "ignored")
	global.String("timeout", "", "ignored")
	if err := global.Parse(args); err != nil {
		return err
	}
	rest := global.Args()
	if len(rest) == 0 {
		return errors.New("usage: crictl [--runtime-endpoint E] ps|exec ...")
	}
	switch rest[0] {
	case "ps":
		return crictlPs(rest[1:], os.Stdout)
	case "exec":
		return crictlExec(rest[1:])
	default:
		return fmt.Errorf("the lab's crictl has no %q (only ps and exec)", rest[0])
	}
}

func crictlPs(args []string, out io.Writer) error {
	fs := flag.NewFlagSet("ps", flag.ContinueOnError)
	name := fs.String("name", "", "regular expression the container's name matches")
	state := fs.String("state", "", "running or exited")
	quiet := fs.Bool("q", false, "ids only")
	all := fs.Bool("a", false, "every container, also exited ones")
	if err := fs.Parse(args); err != nil {
		return err
	}
	pattern, err := regexp.Compile(*name)
	if err != nil {
		return err
	}
	if !*quiet {
		fmt.Fprintln(out, "CONTAINER\tIMAGE\tSTATE\tNAME\tATTEMPT\tPOD")
	}
	for _, p := range readPodStates() {
		for _, c := range p.Containers {
			running := !p.Stopped && alive(c.PID)
			st := map[bool]string{true: "Running", false: "Exited"}[running]
			if !pattern.MatchString(c.Name) || (*state != "" && !strings.EqualFold(*state, st)) || (*state == "" && !*all && !running) {
				continue
			}
			if *quiet {
				fmt.Fprintln(out, c.ID)
			} else {
				fmt.Fprintf(out, "%s\t%s\t%s\t%s\t%d\t%s\n", c.ID, c.Image, st, c.Name, c.Restarts, p.Name)
			}
		}
	}
	return nil
}

func crictlExec(args []string) error {
	fs := flag.NewFlagSet("exec", flag.ContinueOnError)
	fs.Bool("i", false, "stdin is passed on in any case")
	fs.Bool("t", false, "no terminal in the lab")
	fs.Bool("s", false, "always synchronous")
	if err := fs.Parse(args); err != nil {
		return err
	}
	rest := fs.Args()
	if len(rest) < 2 {
		return errors.New("usage: crictl exec CONTAINER-ID COMMAND [ARG...]")
	}
	cache := os.Getenv("LAB_CACHE")
	if cache == "" {
		return errors.New("LAB_CACHE must be set (the lab's crictl wrapper sets it)")
	}
	for _, p := range readPodStates() {
		for _, c := range p.Containers {
			if c.ID != rest[0] || p.Stopped || !alive(c.PID) {
				continue
			}
			cmd := containerCommand(context.Background(), cache, c.Image, rest[1:])
			cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
			var exitErr *exec.ExitError
			if err := cmd.Run(); errors.As(err, &exitErr) {
				os.Exit(exitErr.ExitCode())
			} else if err != nil {
				return err
			}
			return nil
		}
	}
	return fmt.Errorf("no running container %s", rest[0])
}
