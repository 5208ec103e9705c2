package main

import (
	"math/rand"
	"time"
)

// Backoff yields exponentially growing delays with "equal jitter": the n-th
// delay (n from 0) lies in [base/2, base] where base = min(Min·2^n, Max).
// Jitter spreads a fleet of agents out after an API outage.
type Backoff struct {
	Min, Max time.Duration
	attempt  int
	rnd      func() float64 // [0,1); nil means math/rand
}

// Next returns the next delay and advances the attempt counter.
func (b *Backoff) Next() time.Duration {
	base := b.base(b.attempt)
	if base < b.Max {
		b.attempt++
	}
	return jitter(base, b.rnd)
}

// Reset starts again from Min.
func (b *Backoff) Reset() { b.attempt = 0 }

func (b *Backoff) base(attempt int) time.Duration {
	base := b.Min
	if base <= 0 {
		base = time.Second
	}
	for i := 0; i < attempt && base < b.Max; i++ {
		base *= 2
	}
	if b.Max > 0 && base > b.Max {
		base = b.Max
	}
	return base
}

// jitter returns a delay in [d/2, d].
func jitter(d time.Duration, rnd func() float64) time.Duration {
	if rnd == nil {
		rnd = rand.Float64
	}
	half := d / 2
	return half + time.Duration(rnd()*float64(d-half))
}
