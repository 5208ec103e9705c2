package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// ServicePath is the Connect route prefix of AgentService.
const ServicePath = "/axion.infrastructure.v1.AgentService/"

// Client calls AgentService with the Connect protocol, unary, JSON codec.
type Client struct {
	BaseURL   string // e.g. http://10.213.0.1:8080 (no trailing slash)
	Token     string // agent token, sent as "Authorization: Bearer <token>"
	UserAgent string
	Timeout   time.Duration // per request; 0 means 15 s
	HTTP      *http.Client
}

// RPCError is a Connect error answer (or a non-200 answer mapped to a code).
type RPCError struct {
	HTTPStatus int
	Code       string
	Message    string
}

func (e *RPCError) Error() string {
	if e.Message == "" {
		return fmt.Sprintf("%s (HTTP %d)", e.Code, e.HTTPStatus)
	}
	return fmt.Sprintf("%s: %s (HTTP %d)", e.Code, e.Message, e.HTTPStatus)
}

// rpcCode returns the Connect code of err, "" for network and other errors.
func rpcCode(err error) string {
	var re *RPCError
	if errors.As(err, &re) {
		return re.Code
	}
	return ""
}

// isConfigProblem reports errors that retrying fast cannot fix: a wrong or
// revoked token, a server id the token is not for, a request the server rejects.
func isConfigProblem(err error) bool {
	switch rpcCode(err) {
	case "unauthenticated", "permission_denied", "invalid_argument":
		return true
	}
	return false
}

// Register calls AgentService/Register.
func (c *Client) Register(ctx context.Context, req *RegisterRequest) (*RegisterResponse, error) {
	var resp RegisterResponse
	if err := c.call(ctx, "Register", req, &resp); err != nil {
		return nil, err
	}
	return &resp, nil
}

// Heartbeat calls AgentService/Heartbeat.
func (c *Client) Heartbeat(ctx context.Context, req *HeartbeatRequest) error {
	var resp HeartbeatResponse
	return c.call(ctx, "Heartbeat", req, &resp)
}

const maxResponseBytes = 1 << 20

func (c *Client) call(ctx context.Context, method string, in, out any) error {
	body, err := json.Marshal(in)
	if err != nil {
		return fmt.Errorf("encode %s request: %w", method, err)
	}
	timeout := c.Timeout
	if timeout <= 0 {
		timeout = 15 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.BaseURL+ServicePath+method, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("%s: %w", method, err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	req.Header.Set("Connect-Protocol-Version", "1")
	req.Header.Set("Connect-Timeout-Ms", strconv.FormatInt(timeout.Milliseconds(), 10))
	req.Header.Set("Authorization", "Bearer "+c.Token)
	if c.UserAgent != "" {
		req.Header.Set("User-Agent", c.UserAgent)
	}
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	res, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("%s: %w", method, c.redactErr(err))
	}
	defer res.Body.Close()
	data, err := io.ReadAll(io.LimitReader(res.Body, maxResponseBytes))
	if err != nil {
		return fmt.Errorf("%s: read response: %w", method, err)
	}
	if res.StatusCode != http.StatusOK {
		return c.errorFrom(res.StatusCode, data)
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("%s: decode response: %w", method, err)
	}
	return nil
}

// errorFrom decodes a Connect error body; without one it maps the HTTP status
// as the Connect protocol does.
func (c *Client) errorFrom(status int, body []byte) error {
	var e struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	}
	if json.Unmarshal(body, &e) != nil || e.Code == "" {
		e.Code = codeFromHTTP(status)
		e.Message = ""
	}
	return &RPCError{HTTPStatus: status, Code: e.Code, Message: c.redact(e.Message)}
}

func codeFromHTTP(status int) string {
	switch status {
	case 400:
		return "internal"
	case 401:
		return "unauthenticated"
	case 403:
		return "permission_denied"
	case 404:
		return "unimplemented"
	case 429, 502, 503, 504:
		return "unavailable"
	default:
		return "unknown"
	}
}

// redact keeps the token out of anything that might be logged.
func (c *Client) redact(s string) string {
	if c.Token == "" {
		return s
	}
	return strings.ReplaceAll(s, c.Token, "[redacted]")
}

func (c *Client) redactErr(err error) error {
	if c.Token != "" && strings.Contains(err.Error(), c.Token) {
		return errors.New(c.redact(err.Error()))
	}
	return err
}
