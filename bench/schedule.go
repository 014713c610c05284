package bench

// Slot is one repetition of one mode in a run's order.
type Slot struct {
	Rep  int // 0-based repetition
	Mode int // index into the run's modes
}

// Schedule orders reps repetitions of n modes round-robin: every mode runs
// once per round, and each round starts one mode later than the previous
// one (a rotation), so no mode always runs first after a pause or always
// right after the same neighbour. Drift over the run is thus shared by all
// modes instead of biasing whichever ran in a block at the end.
func Schedule(n, reps int) []Slot {
	if n <= 0 || reps <= 0 {
		return nil
	}
	out := make([]Slot, 0, n*reps)
	for r := range reps {
		for i := range n {
			out = append(out, Slot{Rep: r, Mode: (r + i) % n})
		}
	}
	return out
}
