package main

import (
	"encoding/json"
	"fmt"
	"strconv"
	"time"
)

// Messages of axion.infrastructure.v1.AgentService in the proto3 JSON mapping:
// lowerCamelCase names, 64-bit integers as JSON strings (the ",string" option),
// 32-bit integers and doubles as JSON numbers, Timestamp as an RFC 3339 string.

// AgentInfo mirrors axion.infrastructure.v1.AgentInfo.
type AgentInfo struct {
	Hostname         string `json:"hostname"`
	OS               string `json:"os"`
	Kernel           string `json:"kernel"`
	Arch             string `json:"arch"`
	CPUCount         uint32 `json:"cpuCount"`
	MemoryTotalBytes uint64 `json:"memoryTotalBytes,string"`
	DiskTotalBytes   uint64 `json:"diskTotalBytes,string"`
	AgentVersion     string `json:"agentVersion"`
}

// DiskUsage mirrors axion.infrastructure.v1.DiskUsage.
type DiskUsage struct {
	Mount      string `json:"mount"`
	UsedBytes  uint64 `json:"usedBytes,string"`
	TotalBytes uint64 `json:"totalBytes,string"`
}

// Metrics mirrors axion.infrastructure.v1.Metrics.
type Metrics struct {
	CPUPercent       float64     `json:"cpuPercent"`
	MemoryUsedBytes  uint64      `json:"memoryUsedBytes,string"`
	MemoryTotalBytes uint64      `json:"memoryTotalBytes,string"`
	Disks            []DiskUsage `json:"disks"`
	Load1            float64     `json:"load1"`
	Load5            float64     `json:"load5"`
	Load15           float64     `json:"load15"`
	UptimeSeconds    uint64      `json:"uptimeSeconds,string"`
}

// RegisterRequest mirrors axion.infrastructure.v1.RegisterRequest.
type RegisterRequest struct {
	ServerID string    `json:"serverId"`
	Info     AgentInfo `json:"info"`
}

// RegisterResponse mirrors axion.infrastructure.v1.RegisterResponse. The
// field is absent when the server wants the default interval.
type RegisterResponse struct {
	HeartbeatIntervalSeconds flexUint32 `json:"heartbeatIntervalSeconds"`
}

// HeartbeatRequest mirrors axion.infrastructure.v1.HeartbeatRequest.
type HeartbeatRequest struct {
	ServerID   string    `json:"serverId"`
	Metrics    Metrics   `json:"metrics"`
	SampleTime Timestamp `json:"sampleTime"`
}

// HeartbeatResponse mirrors axion.infrastructure.v1.HeartbeatResponse (empty).
type HeartbeatResponse struct{}

// Timestamp is google.protobuf.Timestamp in JSON: UTC, "Z", millisecond digits.
type Timestamp time.Time

const timestampLayout = "2006-01-02T15:04:05.000Z"

func (t Timestamp) MarshalJSON() ([]byte, error) {
	return []byte(`"` + time.Time(t).UTC().Format(timestampLayout) + `"`), nil
}

// flexUint32 accepts a uint32 written as a JSON number or a string (both are
// valid proto3 JSON), and null.
type flexUint32 uint32

func (f *flexUint32) UnmarshalJSON(b []byte) error {
	s := string(b)
	if s == "null" {
		*f = 0
		return nil
	}
	if len(s) >= 2 && s[0] == '"' {
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil || v < 0 || v > 4294967295 || v != float64(uint32(v)) {
		return fmt.Errorf("not a uint32: %s", b)
	}
	*f = flexUint32(v)
	return nil
}
