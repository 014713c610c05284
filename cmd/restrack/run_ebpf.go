package main

import (
	"errors"
	"os"
	"time"

	"github.com/restrack/restrack/collector"
	"github.com/restrack/restrack/collector/ebpf"
	"github.com/restrack/restrack/collector/store"
)

// The eBPF modes (issue 7, docs/ebpf.md): "ebpf" traces CMD from the kernel
// alone; "ring+ebpf" runs the shim and the kernel tracer on the same run so
// that `restrack coverage` can compare them.
func init() {
	runModes["ebpf"] = runMode{open: openEBPFMode}
	runModes["ring+ebpf"] = runMode{open: openRingEBPFMode, preload: true}
}

// openEBPFMode starts the tracer before CMD exists, following restrack's
// own future children: CMD is traced from its first instruction, restrack
// itself not at all.
func openEBPFMode(e *runEnv) (collector.Source, []string, func(), error) {
	size := int(e.ringSize)
	if size <= 0 || size&(size-1) != 0 {
		size = 0 // the tracer's default
	}
	src, err := ebpf.NewSource(ebpf.Options{PID: os.Getpid(), ChildrenOnly: true, RingSize: size})
	if err != nil {
		return nil, nil, nil, err
	}
	return src, nil, func() { _ = src.Close() }, nil
}

func openRingEBPFMode(e *runEnv) (collector.Source, []string, func(), error) {
	rsrc, env, rclean, err := openRingMode(e)
	if err != nil {
		return nil, nil, nil, err
	}
	esrc, _, eclean, err := openEBPFMode(e)
	if err != nil {
		rclean()
		return nil, nil, nil, err
	}
	return &pairSource{srcs: [2]collector.Source{rsrc, esrc}}, env, func() { eclean(); rclean() }, nil
}

// pairSource drains two sources through one collector, round robin. Each
// chunk is committed under the checkpoint of the source it came from,
// because the collector asks Info and Counters right after Next: they
// answer for the source of the last chunk.
type pairSource struct {
	srcs [2]collector.Source
	cur  int // source of the last chunk
}

func (p *pairSource) Info() store.SourceInfo { return p.srcs[p.cur].Info() }

// Resume is asked once, for the first source; both are new in a run.
func (p *pairSource) Resume(pos uint64) error { return p.srcs[p.cur].Resume(pos) }

// Wait sleeps on the ring, whose producers ring a doorbell; the kernel
// side's records wait at most one interval more.
func (p *pairSource) Wait(interval time.Duration) { p.srcs[0].Wait(interval) }

func (p *pairSource) Next() (*collector.Chunk, error) {
	var last *collector.Chunk
	first := p.cur + 1 // round robin: start with the source not drained last
	for i := range 2 {
		k := (first + i) % 2
		ch, err := p.srcs[k].Next()
		if err != nil {
			return nil, err
		}
		p.cur, last = k, ch
		if ch.Progressed() {
			return ch, nil
		}
	}
	return last, nil
}

func (p *pairSource) Ack(c *collector.Chunk) { p.srcs[p.cur].Ack(c) }

func (p *pairSource) Counters() collector.SourceCounters { return p.srcs[p.cur].Counters() }

func (p *pairSource) Close() error {
	return errors.Join(p.srcs[0].Close(), p.srcs[1].Close())
}
