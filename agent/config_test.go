package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func writeConfig(t *testing.T, s string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "config.json")
	if err := os.WriteFile(p, []byte(s), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLoadConfig(t *testing.T) {
	p := writeConfig(t, `{"api_url":"http://10.213.0.1:8080/","server_id":"7d1c7a52-0000-4000-8000-000000000001","token":"sekret","heartbeat_interval_seconds":0.5}`)
	c, err := LoadConfig(p)
	if err != nil {
		t.Fatal(err)
	}
	if c.APIURL != "http://10.213.0.1:8080" || c.HeartbeatInterval() != 500*time.Millisecond {
		t.Fatalf("got %+v", c)
	}
}

func TestLoadConfigErrors(t *testing.T) {
	cases := map[string]string{
		`{`:                                      "invalid JSON",
		`{"api_url":"http://x","server_id":"s"}`: "token is required",
		`{"api_url":"ftp://x","server_id":"s","token":"sekret"}`:                                    "api_url",
		`{"server_id":"s","token":"sekret"}`:                                                        "api_url is required",
		`{"api_url":"http://x","token":"sekret"}`:                                                   "server_id is required",
		`{"api_url":"http://x","server_id":"s","token":"sekret","heartbeat_interval_seconds":-1}`:   "heartbeat_interval_seconds",
		`{"api_url":"http://x","server_id":"s","token":"sekret","heartbeat_interval_seconds":"10"}`: "heartbeat_interval_seconds",
	}
	for in, want := range cases {
		_, err := LoadConfig(writeConfig(t, in))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: got %v, want %q", in, err, want)
		}
		if err != nil && strings.Contains(err.Error(), "sekret") {
			t.Errorf("%s: error leaks the token: %v", in, err)
		}
	}
	if _, err := LoadConfig(filepath.Join(t.TempDir(), "missing.json")); err == nil {
		t.Fatal("want error for a missing file")
	}
}

func TestRunExitsTwoOnBadConfig(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run(context.Background(), []string{"-config", filepath.Join(t.TempDir(), "nope.json")}, &out, &errb); code != 2 {
		t.Fatalf("exit %d, want 2", code)
	}
	if !strings.Contains(errb.String(), "cannot start") {
		t.Fatalf("stderr: %s", errb.String())
	}
	errb.Reset()
	if code := run(context.Background(), []string{"-config", writeConfig(t, `{"api_url":"http://x","server_id":"s","token":"sekret","extra":`)}, &out, &errb); code != 2 {
		t.Fatalf("exit %d, want 2", code)
	}
	if strings.Contains(errb.String(), "sekret") {
		t.Fatalf("token logged: %s", errb.String())
	}
	if code := run(context.Background(), []string{"-version"}, &out, &errb); code != 0 || !strings.Contains(out.String(), "axion-agent") {
		t.Fatalf("version: %d %q", code, out.String())
	}
}
