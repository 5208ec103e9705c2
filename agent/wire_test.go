package main

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

func TestRegisterRequestJSON(t *testing.T) {
	req := RegisterRequest{ServerID: "s-1", Info: AgentInfo{
		Hostname: "web-1", OS: "Debian GNU/Linux 12 (bookworm)", Kernel: "6.1.0", Arch: "x86_64",
		CPUCount: 4, MemoryTotalBytes: 25165824000, DiskTotalBytes: 1 << 40, AgentVersion: "0.1.0",
	}}
	b, err := json.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"serverId":"s-1","info":{"hostname":"web-1","os":"Debian GNU/Linux 12 (bookworm)","kernel":"6.1.0","arch":"x86_64","cpuCount":4,"memoryTotalBytes":"25165824000","diskTotalBytes":"1099511627776","agentVersion":"0.1.0"}}`
	if string(b) != want {
		t.Fatalf("got  %s\nwant %s", b, want)
	}
}

func TestHeartbeatRequestJSON(t *testing.T) {
	at := time.Date(2026, 11, 23, 17, 0, 0, 123456789, time.FixedZone("CET", 3600))
	req := HeartbeatRequest{ServerID: "s-1", SampleTime: Timestamp(at), Metrics: Metrics{
		CPUPercent: 12.5, MemoryUsedBytes: 1024, MemoryTotalBytes: 4096,
		Disks: []DiskUsage{{Mount: "/", UsedBytes: 10, TotalBytes: 20}},
		Load1: 0.5, Load5: 0.25, Load15: 0, UptimeSeconds: 3600,
	}}
	b, err := json.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"serverId":"s-1","metrics":{"cpuPercent":12.5,"memoryUsedBytes":"1024","memoryTotalBytes":"4096","disks":[{"mount":"/","usedBytes":"10","totalBytes":"20"}],"load1":0.5,"load5":0.25,"load15":0,"uptimeSeconds":"3600"},"sampleTime":"2026-11-23T16:00:00.123Z"}`
	if string(b) != want {
		t.Fatalf("got  %s\nwant %s", b, want)
	}
	// No disks is an empty list, not null.
	b, _ = json.Marshal(HeartbeatRequest{Metrics: Metrics{Disks: []DiskUsage{}}})
	if !strings.Contains(string(b), `"disks":[]`) {
		t.Fatalf("got %s", b)
	}
}

func TestRegisterResponseJSON(t *testing.T) {
	for in, want := range map[string]uint32{
		`{}`:                                   0,
		`{"heartbeatIntervalSeconds":15}`:      15,
		`{"heartbeatIntervalSeconds":"20"}`:    20,
		`{"heartbeatIntervalSeconds":null}`:    0,
		`{"heartbeatIntervalSeconds":5,"x":1}`: 5,
	} {
		var r RegisterResponse
		if err := json.Unmarshal([]byte(in), &r); err != nil {
			t.Fatalf("%s: %v", in, err)
		}
		if uint32(r.HeartbeatIntervalSeconds) != want {
			t.Fatalf("%s: got %d", in, r.HeartbeatIntervalSeconds)
		}
	}
	var r RegisterResponse
	if err := json.Unmarshal([]byte(`{"heartbeatIntervalSeconds":-1}`), &r); err == nil {
		t.Fatal("want error for negative")
	}
}
