package main

import (
	"context"
	"fmt"
	"log"
	"net/http"
	"time"
)

// Agent registers with the API and then sends heartbeats until its context ends.
type Agent struct {
	Config  Config
	Version string
	Log     *log.Logger
	Client  *Client
	Host    *Host

	// BackoffMin/BackoffMax bound the retry delays of transient failures
	// (defaults 1 s and 60 s). SlowRetry is the delay after a config problem
	// (unauthenticated, permission_denied, invalid_argument), default 60 s,
	// jittered down to half.
	BackoffMin, BackoffMax, SlowRetry time.Duration
}

// NewAgent builds an agent with production defaults.
func NewAgent(cfg Config, version string, logger *log.Logger) *Agent {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.ResponseHeaderTimeout = 15 * time.Second
	return &Agent{
		Config:  cfg,
		Version: version,
		Log:     logger,
		Client: &Client{
			BaseURL:   cfg.APIURL,
			Token:     cfg.Token,
			UserAgent: "axion-agent/" + version,
			HTTP:      &http.Client{Transport: tr},
		},
		Host: &Host{},
	}
}

func (a *Agent) backoff() *Backoff {
	b := &Backoff{Min: a.BackoffMin, Max: a.BackoffMax}
	if b.Min <= 0 {
		b.Min = time.Second
	}
	if b.Max <= 0 {
		b.Max = 60 * time.Second
	}
	return b
}

func (a *Agent) slowDelay() time.Duration {
	d := a.SlowRetry
	if d <= 0 {
		d = 60 * time.Second
	}
	return jitter(d, nil)
}

// Run registers, then heartbeats; it registers again when the server no
// longer knows the agent. It returns only when ctx is done.
func (a *Agent) Run(ctx context.Context) {
	s := &Sampler{Host: a.Host}
	s.Prime()
	for ctx.Err() == nil {
		interval, ok := a.register(ctx)
		if !ok {
			return
		}
		a.heartbeats(ctx, s, interval)
	}
}

// register retries until the server accepts; false when ctx ended first.
func (a *Agent) register(ctx context.Context) (time.Duration, bool) {
	bo := a.backoff()
	for attempt := 1; ; attempt++ {
		info, err := a.Host.Info(a.Version)
		if err != nil && attempt == 1 {
			a.Log.Printf("warning: some system facts could not be read: %v", err)
		}
		resp, err := a.Client.Register(ctx, &RegisterRequest{ServerID: a.Config.ServerID, Info: info})
		if err == nil {
			interval := a.interval(resp)
			a.Log.Printf("registered server %s with %s (host %q, %s, %s, %s, %d CPUs, agent %s); heartbeat every %s",
				a.Config.ServerID, a.Config.APIURL, info.Hostname, info.OS, info.Kernel, info.Arch, info.CPUCount, info.AgentVersion, interval)
			return interval, true
		}
		if ctx.Err() != nil {
			return 0, false
		}
		var d time.Duration
		if isConfigProblem(err) {
			d = a.slowDelay()
			a.Log.Printf("register rejected: %v; check token and server_id in the config file (reinstall the agent to issue a new token); retrying in %s", err, roundDur(d))
		} else {
			d = bo.Next()
			a.Log.Printf("register failed (attempt %d): %v; retrying in %s", attempt, err, roundDur(d))
		}
		if !sleep(ctx, d) {
			return 0, false
		}
	}
}

// interval: the server's value, else the config's, else 10 s.
func (a *Agent) interval(resp *RegisterResponse) time.Duration {
	if resp != nil && resp.HeartbeatIntervalSeconds > 0 {
		return time.Duration(resp.HeartbeatIntervalSeconds) * time.Second
	}
	if d := a.Config.HeartbeatInterval(); d > 0 {
		return d
	}
	return DefaultHeartbeatInterval
}

// heartbeats sends one heartbeat right away and then one every interval. On
// failure it backs off (doubling, jittered, up to BackoffMax) and returns to
// the interval after the next success. It returns when ctx is done, or when
// the server says it does not know the agent (the caller registers again).
func (a *Agent) heartbeats(ctx context.Context, s *Sampler, interval time.Duration) {
	bo := a.backoff()
	failures := 0
	first := true
	lastWarn := ""
	next := time.Now()
	for {
		if !sleep(ctx, time.Until(next)) {
			return
		}
		start := time.Now()
		m, at, serr := s.Sample()
		if w := fmt.Sprint(serr); serr != nil && w != lastWarn {
			a.Log.Printf("warning: some metrics could not be read: %v", serr)
			lastWarn = w
		} else if serr == nil {
			lastWarn = ""
		}
		err := a.Client.Heartbeat(ctx, &HeartbeatRequest{ServerID: a.Config.ServerID, Metrics: m, SampleTime: Timestamp(at)})
		if err == nil {
			if failures > 0 {
				a.Log.Printf("heartbeat ok again after %d failed attempt(s); back to every %s", failures, interval)
			} else if first {
				a.Log.Printf("first heartbeat sent (cpu %.1f%%, memory %d/%d bytes, %d disk(s))", m.CPUPercent, m.MemoryUsedBytes, m.MemoryTotalBytes, len(m.Disks))
			}
			first = false
			failures = 0
			bo.Reset()
			next = start.Add(interval)
			continue
		}
		if ctx.Err() != nil {
			return
		}
		failures++
		var d time.Duration
		switch code := rpcCode(err); {
		case code == "not_found" || code == "failed_precondition":
			a.Log.Printf("heartbeat refused: %v; registering again", err)
			return
		case code == "unauthenticated":
			d = a.slowDelay()
			a.Log.Printf("heartbeat rejected: %v; the agent token was probably revoked or rotated (reinstall the agent to get a new one); retrying in %s", err, roundDur(d))
		case isConfigProblem(err):
			d = a.slowDelay()
			a.Log.Printf("heartbeat rejected: %v; check server_id and token in the config file; retrying in %s", err, roundDur(d))
		default:
			d = bo.Next()
			a.Log.Printf("heartbeat failed (%d in a row): %v; retrying in %s", failures, err, roundDur(d))
		}
		next = time.Now().Add(d)
	}
}

// sleep waits d; false if ctx ended first.
func sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// roundDur keeps log lines short: whole seconds from 10 s up, else milliseconds.
func roundDur(d time.Duration) time.Duration {
	if d >= 10*time.Second {
		return d.Round(time.Second)
	}
	return d.Round(time.Millisecond)
}
