package main

import (
	"testing"
	"time"
)

func TestBackoffBounds(t *testing.T) {
	for _, r := range []float64{0, 0.5, 0.999999} {
		b := &Backoff{Min: time.Second, Max: 60 * time.Second, rnd: func() float64 { return r }}
		bases := []time.Duration{1, 2, 4, 8, 16, 32, 60, 60, 60}
		for i, base := range bases {
			base *= time.Second
			d := b.Next()
			if d < base/2 || d > base {
				t.Fatalf("r=%v attempt %d: %v not in [%v, %v]", r, i, d, base/2, base)
			}
		}
		b.Reset()
		if d := b.Next(); d < 500*time.Millisecond || d > time.Second {
			t.Fatalf("after reset: %v", d)
		}
	}
}

func TestBackoffRandomNeverExceedsCap(t *testing.T) {
	b := &Backoff{Min: time.Second, Max: 60 * time.Second}
	for i := 0; i < 1000; i++ {
		if d := b.Next(); d < 500*time.Millisecond || d > 60*time.Second {
			t.Fatalf("attempt %d: %v", i, d)
		}
	}
	if d := b.Next(); d < 30*time.Second {
		t.Fatalf("at cap: %v, want >= 30s", d)
	}
}
