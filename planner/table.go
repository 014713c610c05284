package planner

import (
	"strings"
	"unicode/utf8"
)

// textTable lays out a table for a terminal of a given width: columns
// keep their natural width while the row fits; past that, the elided
// column (a path) loses its middle and the last column (a reason)
// wraps onto continuation lines under itself. JSON keeps every byte.
type textTable struct {
	indent string
	header []string
	rows   [][]string
	elide  int // index of the column shortened in the middle; -1 none
	// stack: when a row does not fit, the last column (a sentence) goes
	// under the others, indented, rather than into a narrow column.
	stack bool
}

func newTextTable(indent string, elide int, header ...string) *textTable {
	return &textTable{indent: indent, header: header, elide: elide}
}

func (t *textTable) row(cells ...string) { t.rows = append(t.rows, cells) }

func runeLen(s string) int { return utf8.RuneCountInString(s) }

// minCol is the narrowest an elastic column is made: below it a path or a
// sentence stops being readable.
const minCol = 16

func (t *textTable) write(bw *errWriter, width int) {
	n := len(t.header)
	w := make([]int, n)
	for i, h := range t.header {
		w[i] = runeLen(h)
	}
	for _, r := range t.rows {
		for i, c := range r {
			w[i] = max(w[i], runeLen(c))
		}
	}
	last := n - 1
	total := runeLen(t.indent) + 2*(n-1)
	for _, x := range w {
		total += x
	}
	if t.stack && total > width {
		t.writeStacked(bw, width)
		return
	}
	if over := total - width; over > 0 {
		// Take from the last column first (it wraps, nothing is lost) down
		// to a third of the line, then from the elided one (a path keeps
		// its ends), then from the last again, then from the widest of
		// the others (elided in the middle too).
		take := func(i, floor int) {
			if i < 0 || over <= 0 || w[i] <= floor {
				return
			}
			d := min(w[i]-floor, over)
			w[i] -= d
			over -= d
		}
		take(last, max(minCol, width/3))
		take(t.elide, minCol)
		take(last, minCol)
		for over > 0 {
			widest := -1
			for i := 0; i < last; i++ {
				if w[i] > minCol && (widest < 0 || w[i] > w[widest]) {
					widest = i
				}
			}
			if widest < 0 {
				break // too narrow to fit: lines stay long rather than unreadable
			}
			take(widest, max(minCol, w[widest]-over))
		}
	}
	start := runeLen(t.indent)
	for i := 0; i < last; i++ {
		start += w[i] + 2
	}
	emit := func(cells []string) {
		var b strings.Builder
		b.WriteString(t.indent)
		for i := 0; i < last; i++ {
			c := cells[i]
			if runeLen(c) > w[i] {
				c = elideMiddle(c, w[i])
			}
			b.WriteString(c)
			b.WriteString(strings.Repeat(" ", w[i]-runeLen(c)+2))
		}
		lines := wrapWords(cells[last], w[last])
		if last == t.elide && runeLen(cells[last]) > w[last] {
			lines = []string{elideMiddle(cells[last], w[last])}
		}
		b.WriteString(lines[0])
		out := strings.TrimRight(b.String(), " ") + "\n"
		for _, l := range lines[1:] {
			out += strings.Repeat(" ", start) + l + "\n"
		}
		bw.printf("%s", out)
	}
	emit(t.header)
	for _, r := range t.rows {
		emit(r)
	}
}

// writeStacked writes each row's last cell on lines of its own under the
// row, so that the other columns get the width.
func (t *textTable) writeStacked(bw *errWriter, width int) {
	inner := &textTable{indent: t.indent, header: t.header[:len(t.header)-1], elide: t.elide}
	if inner.elide == len(t.header)-1 {
		inner.elide = -1
	}
	sub := t.indent + "    "
	last := len(t.header) - 1
	for _, r := range t.rows {
		inner.rows = append(inner.rows, r[:last])
	}
	// Lay the row columns out once, for widths, then print row by row.
	var head strings.Builder
	tmp := &errWriter{w: &head}
	inner.write(tmp, width)
	lines := strings.SplitAfter(head.String(), "\n")
	bw.printf("%s", strings.TrimRight(lines[0], "\n")+"\n")
	for i, r := range t.rows {
		bw.printf("%s", lines[i+1])
		bw.printf("%s", wrapText(sub+r[last], width, sub))
	}
}

// ElideMiddle shortens s to n runes around an ellipsis, keeping its start
// and its end, for a terminal: a path keeps its root and its file name.
func ElideMiddle(s string, n int) string { return elideMiddle(s, n) }

// elideMiddle shortens s to n runes, keeping its start and its end (for a
// path, the root and the file name) around an ellipsis.
func elideMiddle(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	if n < 5 {
		return string(r[:n])
	}
	head := (n - 1) / 3
	tail := n - 1 - head
	return string(r[:head]) + "…" + string(r[len(r)-tail:])
}

// wrapWords breaks s into lines of at most n runes at spaces; a word
// longer than a line is cut.
func wrapWords(s string, n int) []string {
	if n <= 0 || runeLen(s) <= n {
		return []string{s}
	}
	var lines []string
	var cur []rune
	for _, word := range strings.Fields(s) {
		wr := []rune(word)
		for len(wr) > n {
			if len(cur) > 0 {
				lines = append(lines, string(cur))
				cur = nil
			}
			lines = append(lines, string(wr[:n]))
			wr = wr[n:]
		}
		switch {
		case len(cur) == 0:
			cur = wr
		case len(cur)+1+len(wr) <= n:
			cur = append(append(cur, ' '), wr...)
		default:
			lines = append(lines, string(cur))
			cur = wr
		}
	}
	if len(cur) > 0 || len(lines) == 0 {
		lines = append(lines, string(cur))
	}
	return lines
}

// WrapText wraps a paragraph to width for a terminal (restrack explain's
// sentences); continuation lines start with indent, and a word longer than
// a line (a path) loses its middle.
func WrapText(s string, width int, indent string) string { return wrapText(s, width, indent) }

// wrapText wraps a paragraph to width; continuation lines start with
// indent. Runs of spaces inside s are kept only on its first line.
func wrapText(s string, width int, indent string) string {
	if runeLen(s) <= width {
		return s + "\n"
	}
	lead := s[:len(s)-len(strings.TrimLeft(s, " "))]
	var b strings.Builder
	b.WriteString(lead)
	limit, line := width, len(lead)
	for i, word := range strings.Fields(s) {
		if room := width - runeLen(indent); runeLen(word) > room {
			word = elideMiddle(word, room) // a path longer than a line
		}
		wl := runeLen(word)
		switch {
		case i == 0:
		case line+1+wl <= limit:
			b.WriteByte(' ')
			line++
		default:
			b.WriteString("\n" + indent)
			limit, line = width, runeLen(indent)
		}
		b.WriteString(word)
		line += wl
	}
	return b.String() + "\n"
}
