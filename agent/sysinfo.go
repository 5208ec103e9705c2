package main

import (
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"time"
)

// ---- /proc/meminfo ----

// MemInfo holds the /proc/meminfo values the agent uses, in bytes.
type MemInfo struct {
	Total, Available uint64
}

// Used is Total - Available.
func (m MemInfo) Used() uint64 {
	if m.Available > m.Total {
		return 0
	}
	return m.Total - m.Available
}

// ParseMeminfo parses /proc/meminfo ("MemTotal:  16314456 kB"). Without
// MemAvailable (kernels before 3.14) it estimates MemFree + Buffers + Cached.
func ParseMeminfo(s string) (MemInfo, error) {
	vals := map[string]uint64{}
	for _, line := range strings.Split(s, "\n") {
		key, rest, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		f := strings.Fields(rest)
		if len(f) == 0 {
			continue
		}
		v, err := strconv.ParseUint(f[0], 10, 64)
		if err != nil {
			continue
		}
		if len(f) > 1 && strings.EqualFold(f[1], "kB") {
			v *= 1024
		}
		vals[strings.TrimSpace(key)] = v
	}
	total, ok := vals["MemTotal"]
	if !ok || total == 0 {
		return MemInfo{}, errors.New("meminfo: no MemTotal")
	}
	avail, ok := vals["MemAvailable"]
	if !ok {
		avail = vals["MemFree"] + vals["Buffers"] + vals["Cached"]
	}
	if avail > total {
		avail = total
	}
	return MemInfo{Total: total, Available: avail}, nil
}

// ---- /proc/stat ----

// CPUTimes are the aggregate "cpu" jiffies of /proc/stat.
type CPUTimes struct {
	Total, Idle uint64
}

// ParseStat reads the aggregate cpu line and counts the cpuN lines (online CPUs).
func ParseStat(s string) (CPUTimes, int, error) {
	var t CPUTimes
	found := false
	n := 0
	for _, line := range strings.Split(s, "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || !strings.HasPrefix(f[0], "cpu") {
			continue
		}
		if f[0] != "cpu" {
			if _, err := strconv.Atoi(f[0][3:]); err == nil {
				n++
			}
			continue
		}
		if len(f) < 5 {
			return t, 0, errors.New("stat: short cpu line")
		}
		// user nice system idle iowait irq softirq steal guest guest_nice;
		// guest times are already counted in user and nice.
		var v [8]uint64
		for i := 0; i < 8 && i+1 < len(f); i++ {
			x, err := strconv.ParseUint(f[i+1], 10, 64)
			if err != nil {
				return t, 0, fmt.Errorf("stat: bad cpu field %q", f[i+1])
			}
			v[i] = x
		}
		for _, x := range v {
			t.Total += x
		}
		t.Idle = v[3] + v[4]
		found = true
	}
	if !found {
		return t, 0, errors.New("stat: no cpu line")
	}
	return t, n, nil
}

// CPUPercent is the busy share between two samples, 0-100 (0 if unknown).
func CPUPercent(prev, cur CPUTimes) float64 {
	if cur.Total <= prev.Total || cur.Idle < prev.Idle {
		return 0
	}
	dt := float64(cur.Total - prev.Total)
	di := float64(cur.Idle - prev.Idle)
	p := (dt - di) / dt * 100
	if p < 0 || math.IsNaN(p) {
		return 0
	}
	if p > 100 {
		return 100
	}
	return math.Round(p*100) / 100
}

// ---- /proc/loadavg, /proc/uptime ----

// ParseLoadavg parses "0.52 0.58 0.59 2/1234 5678".
func ParseLoadavg(s string) (l1, l5, l15 float64, err error) {
	f := strings.Fields(s)
	if len(f) < 3 {
		return 0, 0, 0, errors.New("loadavg: too few fields")
	}
	var v [3]float64
	for i := range v {
		v[i], err = strconv.ParseFloat(f[i], 64)
		if err != nil || math.IsNaN(v[i]) || math.IsInf(v[i], 0) || v[i] < 0 {
			return 0, 0, 0, fmt.Errorf("loadavg: bad value %q", f[i])
		}
	}
	return v[0], v[1], v[2], nil
}

// ParseUptime parses "350735.47 234388.90" into whole seconds.
func ParseUptime(s string) (uint64, error) {
	f := strings.Fields(s)
	if len(f) == 0 {
		return 0, errors.New("uptime: empty")
	}
	v, err := strconv.ParseFloat(f[0], 64)
	if err != nil || v < 0 || math.IsNaN(v) || math.IsInf(v, 0) {
		return 0, fmt.Errorf("uptime: bad value %q", f[0])
	}
	return uint64(v), nil
}

// ---- /proc/self/mounts ----

// Mount is one line of /proc/self/mounts.
type Mount struct {
	Device, Path, FSType string
}

// ParseMounts parses /proc/self/mounts, decoding octal escapes (\040 = space).
func ParseMounts(s string) []Mount {
	var out []Mount
	for _, line := range strings.Split(s, "\n") {
		f := strings.Fields(line)
		if len(f) < 3 {
			continue
		}
		out = append(out, Mount{Device: unescapeMount(f[0]), Path: unescapeMount(f[1]), FSType: f[2]})
	}
	return out
}

func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// pseudoFS are file systems with no disk capacity of their own (kernel
// interfaces, memory-backed) or that are not this server's disks (network
// file systems: statfs can hang on a dead server; squashfs images are always full).
var pseudoFS = map[string]bool{
	"proc": true, "sysfs": true, "tmpfs": true, "devtmpfs": true, "devpts": true,
	"cgroup": true, "cgroup2": true, "securityfs": true, "debugfs": true, "tracefs": true,
	"pstore": true, "bpf": true, "mqueue": true, "hugetlbfs": true, "configfs": true,
	"fusectl": true, "autofs": true, "binfmt_misc": true, "rpc_pipefs": true, "nsfs": true,
	"efivarfs": true, "ramfs": true, "selinuxfs": true, "squashfs": true, "rootfs": true,
	"nfs": true, "nfs4": true, "cifs": true, "smb3": true, "smbfs": true, "ceph": true,
	"glusterfs": true, "fuse.lxcfs": true, "fuse.gvfsd-fuse": true,
	"fuse.portal": true, "fuse.sshfs": true, "fuse.snapfuse": true, "fuse.rclone": true,
}

// RealMounts keeps the mounts that are real disks: no pseudo file systems,
// overlay only as "/" (the root of a container or test host; other overlay
// mounts are container layers), the last mount on a path (it shadows earlier
// ones), one mount per device (the shortest path: bind mounts share capacity).
// The result is sorted by path.
func RealMounts(all []Mount) []Mount {
	byPath := map[string]Mount{}
	order := []string{}
	for _, m := range all {
		if pseudoFS[m.FSType] || strings.HasPrefix(m.FSType, "cgroup") || m.Path == "" || m.Path[0] != '/' {
			continue
		}
		if m.FSType == "overlay" && m.Path != "/" {
			continue
		}
		if _, seen := byPath[m.Path]; !seen {
			order = append(order, m.Path)
		}
		byPath[m.Path] = m
	}
	byDev := map[string]Mount{}
	for _, p := range order {
		m := byPath[p]
		if cur, ok := byDev[m.Device]; !ok || len(m.Path) < len(cur.Path) {
			byDev[m.Device] = m
		}
	}
	out := make([]Mount, 0, len(byDev))
	for _, m := range byDev {
		out = append(out, m)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out
}

// ---- /etc/os-release ----

// ParseOSRelease returns PRETTY_NAME (else "NAME VERSION", else "").
func ParseOSRelease(s string) string {
	vals := map[string]string{}
	for _, line := range strings.Split(s, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || line[0] == '#' {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			continue
		}
		vals[k] = unquoteShell(v)
	}
	if v := vals["PRETTY_NAME"]; v != "" {
		return v
	}
	return strings.TrimSpace(vals["NAME"] + " " + vals["VERSION"])
}

func unquoteShell(v string) string {
	v = strings.TrimSpace(v)
	if len(v) >= 2 && (v[0] == '"' || v[0] == '\'') && v[len(v)-1] == v[0] {
		q := v[0]
		v = v[1 : len(v)-1]
		if q == '"' {
			var b strings.Builder
			for i := 0; i < len(v); i++ {
				if v[i] == '\\' && i+1 < len(v) && strings.ContainsRune("\"\\$`", rune(v[i+1])) {
					i++
				}
				b.WriteByte(v[i])
			}
			v = b.String()
		}
	}
	return v
}

// UnameArch maps runtime.GOARCH to the name `uname -m` prints.
func UnameArch(goarch string) string {
	switch goarch {
	case "amd64":
		return "x86_64"
	case "arm64":
		return "aarch64"
	case "386":
		return "i686"
	case "arm":
		return "armv7l"
	case "ppc64le", "ppc64", "s390x", "riscv64":
		return goarch
	case "loong64":
		return "loongarch64"
	}
	return goarch
}

// ---- Host: reads the live system ----

// Host reads system facts from Root (the real system when Root is "").
type Host struct {
	Root string
	// Statfs returns total and used bytes of the file system at path.
	Statfs func(path string) (total, used uint64, err error)
}

func (h *Host) read(path string) (string, error) {
	b, err := os.ReadFile(filepath.Join("/", h.Root, path))
	return string(b), err
}

func (h *Host) statfs(path string) (uint64, uint64, error) {
	f := h.Statfs
	if f == nil {
		f = statfs
	}
	return f(filepath.Join("/", h.Root, path))
}

// Info gathers what Register reports. Parts it cannot read stay empty and are
// reported in the error; the info is usable either way.
func (h *Host) Info(version string) (AgentInfo, error) {
	info := AgentInfo{Arch: UnameArch(runtime.GOARCH), AgentVersion: version}
	var errs []error
	var err error
	if info.Hostname, err = os.Hostname(); err != nil {
		errs = append(errs, fmt.Errorf("hostname: %w", err))
	}
	if s, err := h.read("/etc/os-release"); err == nil {
		info.OS = ParseOSRelease(s)
	} else if s, err2 := h.read("/usr/lib/os-release"); err2 == nil {
		info.OS = ParseOSRelease(s)
	} else {
		errs = append(errs, fmt.Errorf("os-release: %w", err))
	}
	if info.OS == "" {
		info.OS = "Linux"
	}
	if s, err := h.read("/proc/sys/kernel/osrelease"); err == nil {
		info.Kernel = strings.TrimSpace(s)
	} else {
		info.Kernel = unameRelease()
	}
	info.CPUCount = uint32(runtime.NumCPU())
	if s, err := h.read("/proc/stat"); err == nil {
		if _, n, err := ParseStat(s); err == nil && n > 0 {
			info.CPUCount = uint32(n)
		}
	}
	if s, err := h.read("/proc/meminfo"); err != nil {
		errs = append(errs, err)
	} else if m, err := ParseMeminfo(s); err != nil {
		errs = append(errs, err)
	} else {
		info.MemoryTotalBytes = m.Total
	}
	if total, _, err := h.statfs("/"); err != nil {
		errs = append(errs, fmt.Errorf("statfs /: %w", err))
	} else {
		info.DiskTotalBytes = total
	}
	return info, errors.Join(errs...)
}

// Sampler takes metrics; CPU % is the delta since its previous sample.
type Sampler struct {
	Host *Host
	prev CPUTimes
	have bool
}

// Prime takes the first CPU sample so the first heartbeat has a delta.
func (s *Sampler) Prime() {
	if st, err := s.Host.read("/proc/stat"); err == nil {
		if t, _, err := ParseStat(st); err == nil {
			s.prev, s.have = t, true
		}
	}
}

// Sample reads every metric. What it cannot read stays zero and is reported
// in the error; the metrics are usable either way.
func (s *Sampler) Sample() (Metrics, time.Time, error) {
	m := Metrics{Disks: []DiskUsage{}}
	now := time.Now()
	var errs []error
	h := s.Host
	if st, err := h.read("/proc/stat"); err != nil {
		errs = append(errs, err)
	} else if t, _, err := ParseStat(st); err != nil {
		errs = append(errs, err)
	} else {
		if s.have {
			m.CPUPercent = CPUPercent(s.prev, t)
		}
		s.prev, s.have = t, true
	}
	if st, err := h.read("/proc/meminfo"); err != nil {
		errs = append(errs, err)
	} else if mi, err := ParseMeminfo(st); err != nil {
		errs = append(errs, err)
	} else {
		m.MemoryTotalBytes, m.MemoryUsedBytes = mi.Total, mi.Used()
	}
	if st, err := h.read("/proc/self/mounts"); err != nil {
		errs = append(errs, err)
	} else {
		for _, mt := range RealMounts(ParseMounts(st)) {
			total, used, err := h.statfs(mt.Path)
			if err != nil || total == 0 {
				continue // unreadable or gone since the mounts were read
			}
			m.Disks = append(m.Disks, DiskUsage{Mount: mt.Path, UsedBytes: used, TotalBytes: total})
		}
	}
	if st, err := h.read("/proc/loadavg"); err != nil {
		errs = append(errs, err)
	} else if l1, l5, l15, err := ParseLoadavg(st); err != nil {
		errs = append(errs, err)
	} else {
		m.Load1, m.Load5, m.Load15 = l1, l5, l15
	}
	if st, err := h.read("/proc/uptime"); err != nil {
		errs = append(errs, err)
	} else if up, err := ParseUptime(st); err != nil {
		errs = append(errs, err)
	} else {
		m.UptimeSeconds = up
	}
	return m, now, errors.Join(errs...)
}
