package main

import (
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"testing"
)

const meminfoFixture = `MemTotal:       16314456 kB
MemFree:         1234567 kB
MemAvailable:    8157228 kB
Buffers:          345678 kB
Cached:          4567890 kB
SwapTotal:             0 kB
HugePages_Total:       0
`

func TestParseMeminfo(t *testing.T) {
	m, err := ParseMeminfo(meminfoFixture)
	if err != nil {
		t.Fatal(err)
	}
	if m.Total != 16314456*1024 || m.Available != 8157228*1024 {
		t.Fatalf("got %+v", m)
	}
	if m.Used() != (16314456-8157228)*1024 {
		t.Fatalf("used %d", m.Used())
	}
}

func TestParseMeminfoWithoutMemAvailable(t *testing.T) {
	m, err := ParseMeminfo("MemTotal: 1000 kB\nMemFree: 100 kB\nBuffers: 50 kB\nCached: 250 kB\n")
	if err != nil {
		t.Fatal(err)
	}
	if m.Available != 400*1024 || m.Used() != 600*1024 {
		t.Fatalf("got %+v used %d", m, m.Used())
	}
	if _, err := ParseMeminfo("MemFree: 1 kB\n"); err == nil {
		t.Fatal("want error without MemTotal")
	}
}

const stat1 = `cpu  100 0 50 800 50 0 0 0 0 0
cpu0 50 0 25 400 25 0 0 0 0 0
cpu1 50 0 25 400 25 0 0 0 0 0
intr 12345
ctxt 999
cpu_extra 1
`

const stat2 = `cpu  160 0 70 900 70 0 0 0 20 0
cpu0 80 0 35 450 35 0 0 0 10 0
cpu1 80 0 35 450 35 0 0 0 10 0
`

func TestParseStatAndCPUDelta(t *testing.T) {
	a, n, err := ParseStat(stat1)
	if err != nil {
		t.Fatal(err)
	}
	if n != 2 || a.Total != 1000 || a.Idle != 850 {
		t.Fatalf("got %+v n=%d", a, n)
	}
	b, _, err := ParseStat(stat2)
	if err != nil {
		t.Fatal(err)
	}
	// guest (20) is already inside user, so it is not added: total 1200.
	if b.Total != 1200 || b.Idle != 970 {
		t.Fatalf("got %+v", b)
	}
	// delta total 200, idle 120 -> busy 80 -> 40 %.
	if p := CPUPercent(a, b); p != 40 {
		t.Fatalf("cpu %% = %v, want 40", p)
	}
	if p := CPUPercent(b, a); p != 0 {
		t.Fatalf("counters going backwards: %v, want 0", p)
	}
	if p := CPUPercent(a, a); p != 0 {
		t.Fatalf("no time passed: %v, want 0", p)
	}
	if _, _, err := ParseStat("intr 1\n"); err == nil {
		t.Fatal("want error without cpu line")
	}
}

func TestParseLoadavgAndUptime(t *testing.T) {
	l1, l5, l15, err := ParseLoadavg("0.52 1.58 2.59 2/1234 5678\n")
	if err != nil || l1 != 0.52 || l5 != 1.58 || l15 != 2.59 {
		t.Fatalf("got %v %v %v %v", l1, l5, l15, err)
	}
	if _, _, _, err := ParseLoadavg("0.1 x"); err == nil {
		t.Fatal("want error")
	}
	up, err := ParseUptime("350735.97 234388.90\n")
	if err != nil || up != 350735 {
		t.Fatalf("got %v %v", up, err)
	}
	if _, err := ParseUptime(""); err == nil {
		t.Fatal("want error")
	}
}

const mountsFixture = `overlay / overlay rw,relatime,lowerdir=/l,upperdir=/u,workdir=/w 0 0
proc /proc proc rw,nosuid,nodev,noexec,relatime 0 0
tmpfs /dev tmpfs rw,nosuid,size=65536k,mode=755 0 0
devpts /dev/pts devpts rw 0 0
sysfs /sys sysfs ro 0 0
cgroup /sys/fs/cgroup cgroup2 ro 0 0
cgroup /sys/fs/cgroup/cpu cgroup rw,cpu 0 0
mqueue /dev/mqueue mqueue rw 0 0
/dev/sda1 /etc/hosts ext4 rw,relatime 0 0
/dev/sda1 /etc/resolv.conf ext4 rw,relatime 0 0
/dev/sda1 /var/lib/data ext4 rw,relatime 0 0
/dev/sdb1 /mnt/My\040Disk xfs rw 0 0
overlay /var/lib/docker/overlay2/abc/merged overlay rw 0 0
/dev/loop3 /snap/core/1 squashfs ro 0 0
srv:/export /mnt/nfs nfs4 rw 0 0
/dev/sdc1 /data ext4 rw 0 0
/dev/sdd1 /data xfs rw 0 0
tmpfs /run tmpfs rw 0 0
devtmpfs /dev devtmpfs rw 0 0
`

func TestRealMounts(t *testing.T) {
	got := RealMounts(ParseMounts(mountsFixture))
	want := []Mount{
		{Device: "overlay", Path: "/", FSType: "overlay"},
		{Device: "/dev/sdd1", Path: "/data", FSType: "xfs"}, // last mount on a path wins
		{Device: "/dev/sda1", Path: "/etc/hosts", FSType: "ext4"},
		{Device: "/dev/sdb1", Path: "/mnt/My Disk", FSType: "xfs"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got  %+v\nwant %+v", got, want)
	}
}

func TestRealMountsHost(t *testing.T) {
	got := RealMounts(ParseMounts(`/dev/nvme0n1p2 / ext4 rw 0 0
/dev/nvme0n1p1 /boot/efi vfat rw 0 0
/dev/nvme0n1p2 /var/lib/docker ext4 rw 0 0
/dev/mapper/vg-home /home btrfs rw 0 0
`))
	want := []string{"/", "/boot/efi", "/home"}
	var paths []string
	for _, m := range got {
		paths = append(paths, m.Path)
	}
	if !reflect.DeepEqual(paths, want) {
		t.Fatalf("got %v want %v", paths, want)
	}
}

func TestParseOSRelease(t *testing.T) {
	s := "NAME=\"Debian GNU/Linux\"\nVERSION_ID=\"12\"\nPRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\n"
	if got := ParseOSRelease(s); got != "Debian GNU/Linux 12 (bookworm)" {
		t.Fatalf("got %q", got)
	}
	if got := ParseOSRelease("NAME='Alpine Linux'\nVERSION=3.20\n"); got != "Alpine Linux 3.20" {
		t.Fatalf("got %q", got)
	}
	if got := ParseOSRelease(`PRETTY_NAME="Say \"hi\""`); got != `Say "hi"` {
		t.Fatalf("got %q", got)
	}
}

func TestUnameArch(t *testing.T) {
	if UnameArch("amd64") != "x86_64" || UnameArch("arm64") != "aarch64" {
		t.Fatal("arch mapping")
	}
}

// A fake root with fixture files: Info and Sample read from it.
func TestHostFromFixtureRoot(t *testing.T) {
	root := t.TempDir()
	write := func(p, s string) {
		full := filepath.Join(root, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("etc/os-release", "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\n")
	write("proc/sys/kernel/osrelease", "6.1.0-18-amd64\n")
	write("proc/meminfo", meminfoFixture)
	write("proc/stat", stat1)
	write("proc/loadavg", "0.50 0.40 0.30 1/100 42\n")
	write("proc/uptime", "1234.5 99.0\n")
	write("proc/self/mounts", mountsFixture)
	h := &Host{Root: root, Statfs: func(p string) (uint64, uint64, error) {
		return 100 << 30, 40 << 30, nil
	}}
	info, err := h.Info("1.2.3")
	if err != nil {
		t.Fatal(err)
	}
	if info.OS != "Debian GNU/Linux 12 (bookworm)" || info.Kernel != "6.1.0-18-amd64" || info.CPUCount != 2 ||
		info.MemoryTotalBytes != 16314456*1024 || info.DiskTotalBytes != 100<<30 || info.AgentVersion != "1.2.3" ||
		info.Arch != UnameArch(runtime.GOARCH) || info.Hostname == "" {
		t.Fatalf("info %+v", info)
	}
	s := &Sampler{Host: h}
	s.Prime()
	write("proc/stat", stat2)
	m, _, err := s.Sample()
	if err != nil {
		t.Fatal(err)
	}
	if m.CPUPercent != 40 || m.Load1 != 0.5 || m.Load15 != 0.3 || m.UptimeSeconds != 1234 ||
		m.MemoryUsedBytes != (16314456-8157228)*1024 || len(m.Disks) != 4 || m.Disks[0].Mount != "/" || m.Disks[0].UsedBytes != 40<<30 {
		t.Fatalf("metrics %+v", m)
	}
}

// The real system: whatever it is, / must be found and sized.
func TestHostLive(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("linux only")
	}
	h := &Host{}
	info, err := h.Info("test")
	if err != nil {
		t.Logf("partial info: %v", err)
	}
	if info.CPUCount == 0 || info.MemoryTotalBytes == 0 || info.DiskTotalBytes == 0 || info.Kernel == "" {
		t.Fatalf("info %+v", info)
	}
	s := &Sampler{Host: h}
	s.Prime()
	m, _, err := s.Sample()
	if err != nil {
		t.Fatal(err)
	}
	hasRoot := false
	for _, d := range m.Disks {
		hasRoot = hasRoot || d.Mount == "/"
	}
	if !hasRoot || m.MemoryTotalBytes == 0 || m.UptimeSeconds == 0 {
		t.Fatalf("metrics %+v", m)
	}
	t.Logf("info %+v", info)
	t.Logf("metrics %+v", m)
}
