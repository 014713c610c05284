package bench

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestScheduleRunsEveryModeOncePerRoundInARotatingOrder(t *testing.T) {
	got := Schedule(3, 4)
	want := []Slot{
		{0, 0}, {0, 1}, {0, 2},
		{1, 1}, {1, 2}, {1, 0},
		{2, 2}, {2, 0}, {2, 1},
		{3, 0}, {3, 1}, {3, 2},
	}
	require.Equal(t, want, got)
}

func TestScheduleInterleavesInsteadOfRunningModesInBlocks(t *testing.T) {
	const modes, reps = 7, 12
	s := Schedule(modes, reps)
	require.Len(t, s, modes*reps)
	perMode := map[int][]int{}
	for i, slot := range s {
		assert.Equal(t, i/modes, slot.Rep, "round %d holds exactly the slots %d..%d", slot.Rep, slot.Rep*modes, slot.Rep*modes+modes-1)
		perMode[slot.Mode] = append(perMode[slot.Mode], i)
	}
	for m, pos := range perMode {
		require.Len(t, pos, reps, "mode %d runs once per round", m)
		// No two repetitions of a mode are adjacent, and no mode waits more
		// than two rounds for its next turn: drift is shared.
		for k := 1; k < len(pos); k++ {
			gap := pos[k] - pos[k-1]
			assert.Greater(t, gap, 1, "mode %d runs twice in a row at %d", m, pos[k])
			assert.Less(t, gap, 2*modes, "mode %d waits %d slots", m, gap)
		}
	}
	// Each mode runs first in some round: no mode is always first after
	// the pause a round boundary may bring.
	first := map[int]bool{}
	for r := range reps {
		first[s[r*modes].Mode] = true
	}
	assert.Len(t, first, modes)
}

func TestScheduleOfNothingIsEmpty(t *testing.T) {
	assert.Empty(t, Schedule(0, 5))
	assert.Empty(t, Schedule(3, 0))
}
