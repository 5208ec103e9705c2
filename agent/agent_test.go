package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

const testToken = "agt_test_secret_token"

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// fakeAPI is an AgentService speaking Connect JSON; hooks decide the answers.
type fakeAPI struct {
	t          *testing.T
	mu         sync.Mutex
	registers  int
	heartbeats int // all heartbeat calls
	okBeats    []time.Time
	bodies     []map[string]any
	onRegister func(n int) (int, string)
	onBeat     func(n int, r *http.Request) (int, string)
}

func (f *fakeAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/json" {
		f.t.Errorf("bad request: %s %s", r.Method, r.Header.Get("Content-Type"))
	}
	w.Header().Set("Content-Type", "application/json")
	if r.Header.Get("Authorization") != "Bearer "+testToken {
		f.t.Errorf("Authorization = %q", r.Header.Get("Authorization"))
		w.WriteHeader(401)
		io.WriteString(w, `{"code":"unauthenticated","message":"bad token"}`)
		return
	}
	body, _ := io.ReadAll(r.Body)
	var m map[string]any
	if err := json.Unmarshal(body, &m); err != nil {
		f.t.Errorf("body is not JSON: %s", body)
	}
	f.mu.Lock()
	var status int
	var resp string
	switch r.URL.Path {
	case "/axion.infrastructure.v1.AgentService/Register":
		f.registers++
		n := f.registers
		f.mu.Unlock()
		status, resp = f.onRegister(n)
	case "/axion.infrastructure.v1.AgentService/Heartbeat":
		if f.registers == 0 {
			f.t.Errorf("heartbeat before register")
		}
		f.heartbeats++
		n := f.heartbeats
		f.bodies = append(f.bodies, m)
		f.mu.Unlock()
		status, resp = f.onBeat(n, r)
		if status == 200 {
			f.mu.Lock()
			f.okBeats = append(f.okBeats, time.Now())
			f.mu.Unlock()
		}
	default:
		f.mu.Unlock()
		status, resp = 404, ""
	}
	w.WriteHeader(status)
	io.WriteString(w, resp)
}

func (f *fakeAPI) counts() (int, int, int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.registers, f.heartbeats, len(f.okBeats)
}

func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func startAgent(t *testing.T, url string, intervalSeconds float64) (*Agent, *syncBuffer, context.CancelFunc, chan struct{}) {
	t.Helper()
	logs := &syncBuffer{}
	cfg := Config{APIURL: url, ServerID: "7d1c7a52-0000-4000-8000-000000000001", Token: testToken, HeartbeatIntervalSeconds: intervalSeconds}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	a := NewAgent(cfg, "0.1.0-test", log.New(logs, "", 0))
	a.BackoffMin, a.BackoffMax, a.SlowRetry = 50*time.Millisecond, 200*time.Millisecond, 100*time.Millisecond
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		a.Run(ctx)
		close(done)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
		t.Logf("agent log:\n%s", logs.String())
	})
	return a, logs, cancel, done
}

func stopWithin(t *testing.T, cancel context.CancelFunc, done chan struct{}, d time.Duration) {
	t.Helper()
	start := time.Now()
	cancel()
	select {
	case <-done:
		t.Logf("stopped in %s", time.Since(start))
	case <-time.After(d):
		t.Fatalf("agent did not stop within %s", d)
	}
}

func TestEndToEnd(t *testing.T) {
	api := &fakeAPI{t: t,
		onRegister: func(n int) (int, string) {
			if n <= 3 {
				return 503, `{"code":"unavailable","message":"starting up"}`
			}
			return 200, `{"heartbeatIntervalSeconds":1}` // wins over the config's 30 s
		},
		onBeat: func(n int, _ *http.Request) (int, string) {
			if n == 2 || n == 3 {
				return 503, "" // no Connect body: mapped from the status
			}
			return 200, `{}`
		},
	}
	srv := httptest.NewServer(api)
	defer srv.Close()
	_, logs, cancel, done := startAgent(t, srv.URL, 30)

	waitFor(t, 8*time.Second, "3 successful heartbeats", func() bool { _, _, ok := api.counts(); return ok >= 3 })
	stopWithin(t, cancel, done, time.Second)

	regs, beats, ok := api.counts()
	if regs != 4 || beats < 5 || ok < 3 {
		t.Fatalf("registers=%d heartbeats=%d ok=%d", regs, beats, ok)
	}
	api.mu.Lock()
	gap := api.okBeats[2].Sub(api.okBeats[1])
	body := api.bodies[0]
	api.mu.Unlock()
	if gap < 900*time.Millisecond || gap > 1500*time.Millisecond {
		t.Fatalf("interval after recovery = %s, want about 1s", gap)
	}
	if body["serverId"] != "7d1c7a52-0000-4000-8000-000000000001" {
		t.Fatalf("serverId: %v", body["serverId"])
	}
	m := body["metrics"].(map[string]any)
	for _, k := range []string{"memoryUsedBytes", "memoryTotalBytes", "uptimeSeconds"} {
		if _, isString := m[k].(string); !isString {
			t.Fatalf("metrics.%s = %#v, want a JSON string", k, m[k])
		}
	}
	for _, k := range []string{"cpuPercent", "load1", "load5", "load15"} {
		if _, isNum := m[k].(float64); !isNum {
			t.Fatalf("metrics.%s = %#v, want a number", k, m[k])
		}
	}
	if _, err := time.Parse(time.RFC3339Nano, body["sampleTime"].(string)); err != nil {
		t.Fatalf("sampleTime: %v", err)
	}
	l := logs.String()
	if strings.Contains(l, testToken) {
		t.Fatal("token in the log")
	}
	for _, want := range []string{"register failed (attempt 3)", "registered server", "heartbeat every 1s", "heartbeat failed (2 in a row)", "heartbeat ok again after 2"} {
		if !strings.Contains(l, want) {
			t.Fatalf("log lacks %q:\n%s", want, l)
		}
	}
}

func TestConfigIntervalWhenServerGivesNone(t *testing.T) {
	api := &fakeAPI{t: t,
		onRegister: func(int) (int, string) { return 200, `{}` },
		onBeat:     func(int, *http.Request) (int, string) { return 200, `{}` },
	}
	srv := httptest.NewServer(api)
	defer srv.Close()
	start := time.Now()
	_, _, cancel, done := startAgent(t, srv.URL, 0.2)
	waitFor(t, 3*time.Second, "4 heartbeats", func() bool { _, _, ok := api.counts(); return ok >= 4 })
	if el := time.Since(start); el < 550*time.Millisecond {
		t.Fatalf("4 heartbeats at 0.2 s took only %s", el)
	}
	stopWithin(t, cancel, done, time.Second)
}

func TestUnauthenticatedKeepsRetrying(t *testing.T) {
	api := &fakeAPI{t: t,
		onRegister: func(int) (int, string) {
			return 401, `{"code":"unauthenticated","message":"unknown agent token"}`
		},
		onBeat: func(int, *http.Request) (int, string) { return 200, `{}` },
	}
	srv := httptest.NewServer(api)
	defer srv.Close()
	_, logs, cancel, done := startAgent(t, srv.URL, 1)
	waitFor(t, 3*time.Second, "3 register attempts", func() bool { r, _, _ := api.counts(); return r >= 3 })
	select {
	case <-done:
		t.Fatal("agent gave up")
	default:
	}
	stopWithin(t, cancel, done, time.Second)
	if !strings.Contains(logs.String(), "register rejected: unauthenticated: unknown agent token") {
		t.Fatalf("log:\n%s", logs.String())
	}
}

func TestHeartbeatRevokedTokenAndUnknownAgent(t *testing.T) {
	api := &fakeAPI{t: t,
		onRegister: func(int) (int, string) { return 200, `{}` },
		onBeat: func(n int, _ *http.Request) (int, string) {
			switch n {
			case 1:
				return 401, `{"code":"unauthenticated","message":"token revoked"}`
			case 2:
				return 404, `{"code":"not_found","message":"agent not registered"}`
			}
			return 200, `{}`
		},
	}
	srv := httptest.NewServer(api)
	defer srv.Close()
	_, logs, cancel, done := startAgent(t, srv.URL, 0.1)
	waitFor(t, 3*time.Second, "a successful heartbeat", func() bool { _, _, ok := api.counts(); return ok >= 1 })
	stopWithin(t, cancel, done, time.Second)
	if r, _, _ := api.counts(); r != 2 {
		t.Fatalf("registers = %d, want 2 (again after not_found)", r)
	}
	l := logs.String()
	if !strings.Contains(l, "revoked or rotated") || !strings.Contains(l, "registering again") {
		t.Fatalf("log:\n%s", l)
	}
}

func TestCancelInFlightRequest(t *testing.T) {
	api := &fakeAPI{t: t,
		onRegister: func(int) (int, string) { return 200, `{}` },
		onBeat: func(_ int, r *http.Request) (int, string) {
			<-r.Context().Done() // hang until the client goes away
			return 200, `{}`
		},
	}
	srv := httptest.NewServer(api)
	defer srv.Close()
	_, _, cancel, done := startAgent(t, srv.URL, 1)
	waitFor(t, 3*time.Second, "a heartbeat in flight", func() bool { _, b, _ := api.counts(); return b >= 1 })
	time.Sleep(100 * time.Millisecond)
	stopWithin(t, cancel, done, time.Second)
}

func TestNetworkErrorsAreRetried(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens: connection refused
	_, logs, cancel, done := startAgent(t, "http://"+addr, 1)
	waitFor(t, 3*time.Second, "4 failed attempts", func() bool { return strings.Contains(logs.String(), "attempt 4)") })
	stopWithin(t, cancel, done, time.Second)
}
