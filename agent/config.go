package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
	"time"
)

// DefaultConfigPath is where the installer writes the config file.
const DefaultConfigPath = "/etc/axion-agent/config.json"

// DefaultHeartbeatInterval is used when neither the server nor the config sets one.
const DefaultHeartbeatInterval = 10 * time.Second

// Config is the agent's config file, written by the installer.
type Config struct {
	APIURL   string `json:"api_url"`
	ServerID string `json:"server_id"`
	Token    string `json:"token"`
	// Seconds between heartbeats; fractions allowed (tests). 0/absent: the
	// server's value, else 10 s. A value from the server wins over this one.
	HeartbeatIntervalSeconds float64 `json:"heartbeat_interval_seconds"`
}

// HeartbeatInterval is the configured interval, 0 when not set.
func (c Config) HeartbeatInterval() time.Duration {
	return time.Duration(c.HeartbeatIntervalSeconds * float64(time.Second))
}

// LoadConfig reads and validates the config file. Errors never contain the token.
func LoadConfig(path string) (Config, error) {
	var c Config
	b, err := os.ReadFile(path)
	if err != nil {
		return c, fmt.Errorf("read config: %w", err)
	}
	if err := json.Unmarshal(b, &c); err != nil {
		var syn *json.SyntaxError
		var typ *json.UnmarshalTypeError
		switch {
		case errors.As(err, &syn):
			return Config{}, fmt.Errorf("config %s: invalid JSON at byte %d", path, syn.Offset)
		case errors.As(err, &typ):
			return Config{}, fmt.Errorf("config %s: field %q must be a %s", path, typ.Field, typ.Type)
		default:
			return Config{}, fmt.Errorf("config %s: invalid JSON", path)
		}
	}
	if err := c.Validate(); err != nil {
		return Config{}, fmt.Errorf("config %s: %w", path, err)
	}
	return c, nil
}

// Validate checks every field and normalises api_url and token.
func (c *Config) Validate() error {
	c.APIURL = strings.TrimRight(strings.TrimSpace(c.APIURL), "/")
	c.ServerID = strings.TrimSpace(c.ServerID)
	c.Token = strings.TrimSpace(c.Token)
	var problems []string
	if c.APIURL == "" {
		problems = append(problems, "api_url is required")
	} else if u, err := url.Parse(c.APIURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		problems = append(problems, fmt.Sprintf("api_url %q must be an http(s) URL like http://10.213.0.1:8080", c.APIURL))
	}
	if c.ServerID == "" {
		problems = append(problems, "server_id is required")
	} else if strings.ContainsAny(c.ServerID, " \t\r\n") {
		problems = append(problems, "server_id must not contain whitespace")
	}
	if c.Token == "" {
		problems = append(problems, "token is required")
	} else if strings.ContainsFunc(c.Token, func(r rune) bool { return r <= ' ' || r == 0x7f }) {
		problems = append(problems, "token contains whitespace or control characters")
	}
	if c.HeartbeatIntervalSeconds < 0 || c.HeartbeatIntervalSeconds > 86400 {
		problems = append(problems, "heartbeat_interval_seconds must be between 0 and 86400")
	}
	if len(problems) > 0 {
		return errors.New(strings.Join(problems, "; "))
	}
	return nil
}
