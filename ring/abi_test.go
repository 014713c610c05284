package ring

import (
	"bufio"
	"bytes"
	"os/exec"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/restrack/restrack/internal/ctest"
)

type cLayout struct {
	sizes   map[string]uint64    // struct -> sizeof
	fields  map[string][2]uint64 // struct.field -> offset, size
	consts  map[string]uint64
	ops     map[int][2]string // number -> name, access
	opOrder []int
	layouts map[uint32][4]uint64 // nsub -> ctl, cut, data offsets, cut size
}

func dumpCLayout(t *testing.T) cLayout {
	t.Helper()
	bin := ctest.Build(t, "abi_dump", []string{"libcshim/tests/abi_dump.c"})
	out, err := exec.Command(bin).Output()
	require.NoError(t, err)
	l := cLayout{sizes: map[string]uint64{}, fields: map[string][2]uint64{}, consts: map[string]uint64{}, ops: map[int][2]string{}, layouts: map[uint32][4]uint64{}}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		num := func(s string) uint64 {
			v, err := strconv.ParseUint(s, 10, 64)
			require.NoError(t, err, sc.Text())
			return v
		}
		switch f[0] {
		case "sizeof":
			l.sizes[f[1]] = num(f[2])
		case "field":
			l.fields[f[1]] = [2]uint64{num(f[2]), num(f[3])}
		case "const":
			l.consts[f[1]] = num(f[2])
		case "layout":
			l.layouts[uint32(num(f[1]))] = [4]uint64{num(f[2]), num(f[3]), num(f[4]), num(f[5])}
		case "op":
			n := int(num(f[1]))
			l.ops[n] = [2]string{f[2], f[3]}
			l.opOrder = append(l.opOrder, n)
		default:
			t.Fatalf("unknown abi_dump line %q", sc.Text())
		}
	}
	return l
}

func TestGoStructsMatchTheCHeaderFieldByField(t *testing.T) {
	l := dumpCLayout(t)
	for _, tc := range []struct {
		cName string
		goVal any
	}{
		{"rt_ring_header", Header{}},
		{"rt_sub", Sub{}},
		{"rt_cut", Cut{}},
		{"rt_record", RecordHeader{}},
	} {
		t.Run(tc.cName, func(t *testing.T) {
			typ := reflect.TypeOf(tc.goVal)
			require.Equal(t, l.sizes[tc.cName], uint64(typ.Size()), "sizeof")
			seen := 0
			var end uint64
			for i := 0; i < typ.NumField(); i++ {
				f := typ.Field(i)
				name := tc.cName + "." + f.Tag.Get("abi")
				c, ok := l.fields[name]
				require.True(t, ok, "Go field %s has no C twin %s", f.Name, name)
				assert.Equal(t, c[0], uint64(f.Offset), "offset of %s", name)
				assert.Equal(t, c[1], uint64(f.Type.Size()), "size of %s", name)
				// No implicit padding: each field starts where the last ended.
				assert.Equal(t, end, uint64(f.Offset), "implicit padding before %s", name)
				end = uint64(f.Offset) + uint64(f.Type.Size())
				seen++
			}
			assert.Equal(t, uint64(typ.Size()), end, "implicit trailing padding")
			n := 0
			for k := range l.fields {
				if strings.HasPrefix(k, tc.cName+".") && k != "rt_cut.pos" {
					n++
				}
			}
			assert.Equal(t, n, seen, "C fields without a Go twin")
		})
	}
	assert.Equal(t, uint64(recordHeaderSize), l.sizes["rt_record"])
	assert.Equal(t, [2]uint64{cutHeaderSize, 0}, l.fields["rt_cut.pos"], "a cut's positions follow its 64-byte head")
}

func TestGoComputesTheSameFileLayoutAsTheCHeaderForEverySubRingCount(t *testing.T) {
	l := dumpCLayout(t)
	require.Len(t, l.layouts, 7, "nsub 1, 2, 4 … 64")
	for nsub, c := range l.layouts {
		ctl, cut, data := layout(nsub)
		assert.Equal(t, c, [4]uint64{ctl, cut, data, uint64(cutSize(nsub))}, "%d sub-rings", nsub)
		assert.Zero(t, data%PageSize, "data starts on a page")
	}
}

func TestGoConstantsMatchTheCHeader(t *testing.T) {
	l := dumpCLayout(t)
	want := map[string]uint64{
		"RT_MAGIC": Magic, "RT_ABI_MAJOR": ABIMajor, "RT_ABI_MINOR": ABIMinor, "RT_PAGE_SIZE": PageSize,
		"RT_HEADER_SIZE": HeaderSize, "RT_CACHE_LINE": CacheLine, "RT_SLOT_SIZE": SlotSize,
		"RT_SLOT_SHIFT": SlotShift, "RT_SUB_CTL_SIZE": SubCtlSize, "RT_MAX_SUB": MaxSub, "RT_MIN_SUB_SIZE": MinSubSize,
		"RT_MIN_DATA_SIZE": MinDataSize, "RT_MAX_DATA_SIZE": MaxDataSize,
		"RT_DEFAULT_DATA_SIZE": DefaultDataSize, "RT_NCUTS": NCuts, "RT_MAX_RECORD_SIZE": MaxRecordSize,
		"RT_PATH_MAX": PathMax, "RT_DEFAULT_FULL_WAIT_NS": DefaultFullWait,
		"RT_HIGH_WATER_PERCENT": HighWaterPercent, "RT_STAMP_XOR": StampXor,
		"RT_HF_FUTEX_DOORBELL": FlagFutexDoorbell,
		"RT_TYPE_EVENT":        TypeEvent, "RT_TYPE_PROC": TypeProc,
		"RT_ACCESS_NONE": AccessNone, "RT_ACCESS_READ": AccessRead, "RT_ACCESS_WRITE": AccessWrite,
		"RT_ACCESS_LOOKUP":     AccessLookup,
		"RT_RF_ARGV_TRUNCATED": RFArgvTruncated, "RT_RF_UNRESOLVED": RFUnresolved,
		"RT_RF_PRE_INIT": RFPreInit, "RT_RF_PATH2_UNRESOLVED": RFPath2Unresolved,
		"RT_RF_TOO_LONG": RFTooLong, "RT_RF_SANDBOXED": RFSandboxed,
		"RT_RF_IN_PROGRESS": RFInProgress,
	}
	for name, v := range want {
		c, ok := l.consts[name]
		if assert.True(t, ok, "abi_dump does not print %s", name) {
			assert.Equal(t, c, v, name)
		}
	}
	assert.Len(t, l.consts, len(want), "a C constant is not checked on the Go side")
}

func TestGoOpTableMatchesTheCOpList(t *testing.T) {
	l := dumpCLayout(t)
	require.Len(t, opTable, len(l.opOrder))
	for i, n := range l.opOrder {
		info := opTable[i]
		assert.Equal(t, n, int(info.num))
		assert.Equal(t, l.ops[n][0], info.name)
		assert.Equal(t, l.ops[n][1], strconv.Itoa(int(info.access)), "access of %s", info.name)
		assert.Equal(t, info.name, Op(n).String())
	}
	assert.Equal(t, "op#65000", Op(65000).String(), "an op from a newer minor prints, not fails")
}
