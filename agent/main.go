// Command axion-agent runs on each managed server: it registers with the
// Axion Infra API and sends heartbeats with CPU, memory, disk and load.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"os/signal"
	"syscall"
)

// version is stamped at build time: -ldflags "-X main.version=0.1.0".
var version = "dev"

func main() {
	os.Exit(run(context.Background(), os.Args[1:], os.Stdout, os.Stderr))
}

// run is main without os.Exit: 0 after a clean stop, 2 on bad flags or config.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("axion-agent", flag.ContinueOnError)
	fs.SetOutput(stderr)
	configPath := fs.String("config", DefaultConfigPath, "path of the config file")
	showVersion := fs.Bool("version", false, "print the version and exit")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if *showVersion {
		fmt.Fprintln(stdout, "axion-agent", version)
		return 0
	}
	flags := log.LstdFlags
	if os.Getenv("JOURNAL_STREAM") != "" {
		flags = 0 // journald adds its own timestamps
	}
	logger := log.New(stderr, "axion-agent: ", flags|log.Lmsgprefix)

	cfg, err := LoadConfig(*configPath)
	if err != nil {
		logger.Printf("cannot start: %v", err)
		return 2
	}
	if st, err := os.Stat(*configPath); err == nil && st.Mode().Perm()&0o004 != 0 {
		logger.Printf("warning: %s is readable by every user and holds the agent token; chmod 600 it", *configPath)
	}

	ctx, stop := signal.NotifyContext(ctx, syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	logger.Printf("starting version %s, server %s, api %s", version, cfg.ServerID, cfg.APIURL)
	NewAgent(cfg, version, logger).Run(ctx)
	logger.Printf("stopped")
	return 0
}
