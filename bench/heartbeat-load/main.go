// heartbeat-load simulates a fleet of agents: each sends real AgentService
// Heartbeat calls (Connect protocol, JSON, HTTP/1.1 keep-alive, its own bearer
// token) to the API at a fixed total rate. The load is open-loop: every
// heartbeat has a scheduled send time and its latency is measured from that
// time, so a slow server shows up as latency instead of as a slower sender.
//
//	heartbeat-load -url http://127.0.0.1:8080 -agents agents.csv -rate 20000 -duration 20s
//
// agents.csv holds "server_id,token" lines. One JSON summary line is printed.
package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

type agent struct {
	serverID string
	token    string
}

type summary struct {
	TargetRate   float64 `json:"targetRate"`
	Agents       int     `json:"agents"`
	Seconds      float64 `json:"seconds"`
	Sent         int64   `json:"sent"`
	OK           int64   `json:"ok"`
	Errors       int64   `json:"errors"`
	Missed       int64   `json:"missed"`
	AchievedRate float64 `json:"achievedRate"`
	P50Ms        float64 `json:"p50Ms"`
	P90Ms        float64 `json:"p90Ms"`
	P99Ms        float64 `json:"p99Ms"`
	MaxMs        float64 `json:"maxMs"`
	CPUSeconds   float64 `json:"cpuSeconds"`
	FirstError   string  `json:"firstError,omitempty"`
}

func readAgents(path string) ([]agent, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var agents []agent
	scanner := bufio.NewScanner(f)
	for scanner.Scan() {
		id, token, ok := strings.Cut(strings.TrimSpace(scanner.Text()), ",")
		if ok {
			agents = append(agents, agent{serverID: id, token: token})
		}
	}
	return agents, scanner.Err()
}

func heartbeatBody(serverID string, now time.Time) []byte {
	body, _ := json.Marshal(map[string]any{
		"serverId":   serverID,
		"sampleTime": now.UTC().Format(time.RFC3339Nano),
		"metrics": map[string]any{
			"cpuPercent":       12.5,
			"memoryUsedBytes":  "1048576000",
			"memoryTotalBytes": "8388608000",
			"disks":            []map[string]any{{"mount": "/", "usedBytes": "5368709120", "totalBytes": "42949672960"}},
			"load1":            0.42,
			"load5":            0.36,
			"load15":           0.3,
			"uptimeSeconds":    "86400",
		},
	})
	return body
}

func percentile(sorted []time.Duration, p float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	i := int(p / 100 * float64(len(sorted)))
	if i >= len(sorted) {
		i = len(sorted) - 1
	}
	return float64(sorted[i].Microseconds()) / 1000
}

func main() {
	url := flag.String("url", "", "API base URL")
	agentsFile := flag.String("agents", "", "file of server_id,token lines")
	rate := flag.Float64("rate", 1000, "heartbeats per second, all agents together")
	duration := flag.Duration("duration", 20*time.Second, "how long to send")
	warmup := flag.Duration("warmup", 3*time.Second, "sending time before measuring starts")
	connections := flag.Int("connections", 2000, "at most this many HTTP connections")
	timeout := flag.Duration("timeout", 15*time.Second, "per-request timeout")
	flag.Parse()
	agents, err := readAgents(*agentsFile)
	if err != nil || len(agents) == 0 || *url == "" {
		fmt.Fprintln(os.Stderr, "usage: heartbeat-load -url URL -agents FILE [-rate N] [-duration D]", err)
		os.Exit(2)
	}

	client := &http.Client{
		Timeout: *timeout,
		Transport: &http.Transport{
			DialContext:         (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
			MaxConnsPerHost:     *connections,
			MaxIdleConnsPerHost: *connections,
			IdleConnTimeout:     time.Minute,
		},
	}
	endpoint := strings.TrimRight(*url, "/") + "/axion.infrastructure.v1.AgentService/Heartbeat"

	var sent, ok, failed, missed atomic.Int64
	var firstError atomic.Value
	var mu sync.Mutex
	latencies := make([]time.Duration, 0, int(*rate*duration.Seconds())+1024)

	start := time.Now()
	measureFrom := start.Add(*warmup)
	end := measureFrom.Add(*duration)
	// Each agent sends every len(agents)/rate seconds, agents evenly staggered.
	period := time.Duration(float64(len(agents)) / *rate * float64(time.Second))
	var wg sync.WaitGroup
	for i, a := range agents {
		wg.Add(1)
		go func(i int, a agent) {
			defer wg.Done()
			next := start.Add(time.Duration(float64(period) * float64(i) / float64(len(agents))))
			for next.Before(end) {
				time.Sleep(time.Until(next))
				scheduled := next
				next = next.Add(period)
				req, _ := http.NewRequest(http.MethodPost, endpoint, bytes.NewReader(heartbeatBody(a.serverID, scheduled)))
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set("Authorization", "Bearer "+a.token)
				resp, err := client.Do(req)
				if err == nil {
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != http.StatusOK {
						err = fmt.Errorf("HTTP %d", resp.StatusCode)
					}
				}
				if scheduled.Before(measureFrom) {
					continue
				}
				sent.Add(1)
				if err != nil {
					if failed.Add(1) == 1 {
						firstError.Store(err.Error())
					}
					continue
				}
				ok.Add(1)
				latency := time.Since(scheduled)
				mu.Lock()
				latencies = append(latencies, latency)
				mu.Unlock()
				// A sender that fell a whole period behind skips the heartbeats it missed, as an agent's ticker does.
				for time.Until(next) < -period && next.Before(end) {
					next = next.Add(period)
					missed.Add(1)
				}
			}
		}(i, a)
	}
	wg.Wait()

	sort.Slice(latencies, func(i, j int) bool { return latencies[i] < latencies[j] })
	s := summary{
		TargetRate: *rate, Agents: len(agents), Seconds: duration.Seconds(),
		Sent: sent.Load(), OK: ok.Load(), Errors: failed.Load(), Missed: missed.Load(),
		AchievedRate: float64(ok.Load()) / duration.Seconds(),
		P50Ms:        percentile(latencies, 50), P90Ms: percentile(latencies, 90), P99Ms: percentile(latencies, 99),
		MaxMs: percentile(latencies, 100),
	}
	var usage syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &usage) == nil {
		s.CPUSeconds = time.Duration(usage.Utime.Nano() + usage.Stime.Nano()).Seconds()
	}
	if e, isString := firstError.Load().(string); isString {
		s.FirstError = e
	}
	out, _ := json.Marshal(s)
	fmt.Println(string(out))
}
