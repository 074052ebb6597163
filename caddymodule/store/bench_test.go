package store

import (
	"context"
	"strconv"
	"sync/atomic"
	"testing"
	"time"
)

// benchmarkConsume consumes distinct ids from parallel goroutines: each is
// the first use of a link, the path of every one-time redemption.
func benchmarkConsume(b *testing.B, s Store) {
	var n atomic.Int64
	until := time.Now().Add(time.Hour)
	b.ReportAllocs()
	b.SetParallelism(8)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		ctx := context.Background()
		for pb.Next() {
			first, err := s.Consume(ctx, "bench-"+strconv.FormatInt(n.Add(1), 10), until)
			if err != nil || !first {
				b.Fatalf("Consume = %v, %v", first, err)
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "consumes/s")
}

func BenchmarkConsumeFile(b *testing.B) {
	benchmarkConsume(b, openTestFile(b))
}

func BenchmarkConsumeRedis(b *testing.B) {
	benchmarkConsume(b, openTestRedis(b, startRedis(b).Addr))
}

// BenchmarkConsumeRedisAlone consumes from one goroutine at a time: the
// latency of a redemption when no other is in flight, which batching must
// not lengthen.
func BenchmarkConsumeRedisAlone(b *testing.B) {
	s := openTestRedis(b, startRedis(b).Addr)
	until := time.Now().Add(time.Hour)
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		first, err := s.Consume(ctx, "alone-"+strconv.Itoa(i), until)
		if err != nil || !first {
			b.Fatalf("Consume = %v, %v", first, err)
		}
	}
}
