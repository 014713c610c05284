package fleet

import (
	"bufio"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"os"
	"path/filepath"
)

// CursorFile is the publisher's cursor inside the store directory. It is
// the publisher's own file, not a store table: the store's schema stays the
// store's, and the cursor is read and written by the publisher alone.
const CursorFile = "fleet-cursor"

const cursorMagic = "RTFLEET1"

// cursor remembers what the database already holds, as one fingerprint per
// published row: identity hash → content hash. A row is pushed when its
// content hash changed. Losing the file costs one full, idempotent
// republish; a stale one (older than the last pushes) only re-pushes rows.
type cursor struct {
	Publisher string `json:"publisher"` // random id of this store as a publisher: owns its host id
	HostID    string `json:"host_id"`
	Instance  string `json:"instance"` // the database's instance id the fingerprints describe
	rows      map[uint64]uint64
	// idents keeps the identity of every network file as first seen: a
	// later pass may run where the mount is not (restrack publish after
	// the traced namespace is gone) and must not turn it into a local file.
	idents map[string]FileID
}

func loadCursor(dir string) (*cursor, error) {
	c := &cursor{rows: map[uint64]uint64{}, idents: map[string]FileID{}}
	f, err := os.Open(filepath.Join(dir, CursorFile))
	if errors.Is(err, os.ErrNotExist) {
		b := make([]byte, 16)
		_, _ = rand.Read(b)
		c.Publisher = hex.EncodeToString(b)
		return c, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read the publish cursor: %w", err)
	}
	defer f.Close()
	r := bufio.NewReader(f)
	bad := func(why string) (*cursor, error) {
		return nil, fmt.Errorf("publish cursor %s is damaged (%s): delete it to republish everything (publishing is idempotent)",
			filepath.Join(dir, CursorFile), why)
	}
	magic := make([]byte, len(cursorMagic))
	if _, err := io.ReadFull(r, magic); err != nil || string(magic) != cursorMagic {
		return bad("not a restrack publish cursor")
	}
	var hdrLen uint32
	if err := binary.Read(r, binary.LittleEndian, &hdrLen); err != nil || hdrLen > 1<<16 {
		return bad("header")
	}
	hdr := make([]byte, hdrLen)
	if _, err := io.ReadFull(r, hdr); err != nil || json.Unmarshal(hdr, c) != nil {
		return bad("header")
	}
	var n uint64
	if err := binary.Read(r, binary.LittleEndian, &n); err != nil {
		return bad("row count")
	}
	buf := make([]byte, 16)
	for i := uint64(0); i < n; i++ {
		if _, err := io.ReadFull(r, buf); err != nil {
			return bad("truncated")
		}
		c.rows[binary.LittleEndian.Uint64(buf)] = binary.LittleEndian.Uint64(buf[8:])
	}
	var ni uint64
	if err := binary.Read(r, binary.LittleEndian, &ni); err != nil {
		return bad("identity count")
	}
	for i := uint64(0); i < ni; i++ {
		var f [3]string
		for j := range f {
			var n uint32
			if err := binary.Read(r, binary.LittleEndian, &n); err != nil || n > 1<<20 {
				return bad("truncated identities")
			}
			b := make([]byte, n)
			if _, err := io.ReadFull(r, b); err != nil {
				return bad("truncated identities")
			}
			f[j] = string(b)
		}
		c.idents[f[0]] = FileID{Path: f[0], Source: f[1], Inner: f[2]}
	}
	if c.Publisher == "" {
		return bad("no publisher id")
	}
	return c, nil
}

// save replaces the cursor file atomically: a crash leaves the old or the
// new one, never a mix.
func (c *cursor) save(dir string) error {
	tmp, err := os.CreateTemp(dir, CursorFile+".tmp*")
	if err != nil {
		return fmt.Errorf("write the publish cursor: %w", err)
	}
	defer os.Remove(tmp.Name())
	w := bufio.NewWriterSize(tmp, 1<<16)
	hdr, _ := json.Marshal(c)
	w.WriteString(cursorMagic)
	_ = binary.Write(w, binary.LittleEndian, uint32(len(hdr)))
	w.Write(hdr)
	_ = binary.Write(w, binary.LittleEndian, uint64(len(c.rows)))
	buf := make([]byte, 16)
	for k, v := range c.rows {
		binary.LittleEndian.PutUint64(buf, k)
		binary.LittleEndian.PutUint64(buf[8:], v)
		w.Write(buf)
	}
	_ = binary.Write(w, binary.LittleEndian, uint64(len(c.idents)))
	for _, id := range c.idents {
		for _, f := range []string{id.Path, id.Source, id.Inner} {
			_ = binary.Write(w, binary.LittleEndian, uint32(len(f)))
			w.WriteString(f)
		}
	}
	if err := w.Flush(); err != nil {
		tmp.Close()
		return fmt.Errorf("write the publish cursor: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("write the publish cursor: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write the publish cursor: %w", err)
	}
	if err := os.Rename(tmp.Name(), filepath.Join(dir, CursorFile)); err != nil {
		return fmt.Errorf("write the publish cursor: %w", err)
	}
	return nil
}

// fingerprint hashes fields with a separator no field can hold in its
// length prefix, so ("ab","c") and ("a","bc") differ.
type fingerprint struct {
	h interface {
		Write([]byte) (int, error)
		Sum64() uint64
	}
}

func newFP(kind byte) fingerprint {
	h := fnv.New64a()
	h.Write([]byte{kind})
	return fingerprint{h}
}

func (f fingerprint) str(s string) fingerprint {
	var n [8]byte
	binary.LittleEndian.PutUint64(n[:], uint64(len(s)))
	f.h.Write(n[:])
	f.h.Write([]byte(s))
	return f
}

func (f fingerprint) u64(vs ...uint64) fingerprint {
	var n [8]byte
	for _, v := range vs {
		binary.LittleEndian.PutUint64(n[:], v)
		f.h.Write(n[:])
	}
	return f
}

func (f fingerprint) sum() uint64 { return f.h.Sum64() }
